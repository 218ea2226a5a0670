"""Known answers for the paired statistics and the one rule that says which runs are cells."""
import math

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy import stats

from bench.report.runs import is_cell_run, runs_frame
from bench.report.stats import paired_comparisons, paired_test


def test_paired_t_interval_and_p_value_by_hand():
    out = paired_test(np.array([1.0, 2.0, 3.0]))
    # mean 2, sd 1, n 3: half width t(0.975, 2) / sqrt(3) = 4.302653 / 1.732051
    assert out["mean_diff"] == pytest.approx(2.0)
    assert out["ci_low"] == pytest.approx(2 - 4.302653 / math.sqrt(3), rel=1e-6)
    assert out["ci_high"] == pytest.approx(2 + 4.302653 / math.sqrt(3), rel=1e-6)
    # t = 2 / (1 / sqrt 3) = 3.4641 with 2 dof
    assert out["p_value"] == pytest.approx(2 * stats.t.sf(2 * math.sqrt(3), 2), rel=1e-9)
    assert out["method"] == "paired t-test" and out["n_pairs"] == 3


def test_wilcoxon_is_named_and_cannot_reach_005_with_five_pairs():
    out = paired_test(np.array([-1.0, -2.0, -3.0, -4.0, -5.0]), method="wilcoxon")
    assert out["method"] == "Wilcoxon signed-rank"
    assert out["p_value"] == pytest.approx(0.0625)  # 2 / 2**5: all signs equal, exact test


@pytest.mark.parametrize("diffs,note", [([], "n=0"), ([0.7], "n=1"), ([0.5, 0.5, 0.5], "all differences equal")])
def test_too_few_or_degenerate_pairs_give_nan_and_say_why(diffs, note):
    out = paired_test(np.array(diffs))
    assert math.isnan(out["p_value"]) and note in out["note"]
    if len(diffs) == 1:
        assert out["mean_diff"] == 0.7 and math.isnan(out["ci_low"])


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="unknown test"):
        paired_test(np.array([1.0, 2.0]), method="sign")


def _cells(rows):
    return pd.DataFrame([{"task": "t", "architecture": a, "variant": v, "fold": f, "seed": s, "test_mae": m,
                          "test_roc_auc": m} for a, v, f, s, m in rows])


def test_pairs_are_matched_on_fold_and_seed_and_unpaired_cells_are_ignored():
    frame = _cells([("a", "distance", 0, 0, 10.0), ("a", "distance", 1, 0, 12.0), ("a", "distance", 2, 0, 11.0),
                    ("a", "lattice", 0, 0, 8.0), ("a", "lattice", 1, 0, 9.0), ("a", "lattice", 2, 0, 8.5),
                    ("a", "lattice", 3, 0, 1.0),  # no distance partner: left out
                    ("b", "lattice", 0, 0, 5.0)])  # no baseline at all: no row
    comp = paired_comparisons(frame, "t")
    assert len(comp) == 1
    row = comp.iloc[0]
    assert row.n_pairs == 3 and row.mean_diff == pytest.approx(np.mean([-2.0, -3.0, -2.5]))
    assert row.baseline_mean == pytest.approx(11.0)
    assert row.significant and row.better == "lattice"  # lower MAE wins
    # for ROC-AUC higher is better: the same numbers mean distance wins
    clf = paired_comparisons(frame, "t", "classification")
    assert clf.iloc[0].better == "distance"


def test_only_final_cells_count_and_each_cell_once(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    exp = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    base = {"bench.task": "t", "bench.architecture": "a", "bench.variant": "distance", "bench.fold": "0",
            "bench.seed": "0"}

    def make(tags, mae):
        run = client.create_run(exp, tags={**base, **tags})
        client.log_metric(run.info.run_id, "test_mae", mae)
        client.set_terminated(run.info.run_id)
        return run.info.run_id

    make({"bench.cell_key": "k1"}, 1.0)  # a cell (no run_kind: older runs)
    newer = make({"bench.cell_key": "k1", "bench.run_kind": "cell"}, 2.0)  # same cell again: the later one counts
    make({"bench.cell_key": "k2", "bench.kind": "trial"}, 9.0)  # an Optuna trial
    make({"bench.cell_key": "k3", "bench.run_kind": "trial"}, 9.0)  # the same, by the other tag name
    make({"bench.kind": "parent", "bench.parent_key": "p"}, 9.0)  # a tuning parent run
    runs = client.search_runs([exp])
    assert sum(is_cell_run(r) for r in runs) == 2
    frame = runs_frame(runs)
    assert list(frame.run_id) == [newer] and frame.test_mae.tolist() == [2.0]
    assert frame.fold.tolist() == [0]  # tags come back as integers where they are
