"""The probe section of a report: theory beside the measured score, and the supercell spread."""
import math

import pandas as pd
import pytest

import tasks
from bench.config import load_config
from bench.grid import run_grid
from bench.report.document import build_report
from bench.report.probes import probe_markdown, probe_table, representation_spread
from bench.report.runs import read_predictions
from bench.tracking import Tracker


def test_representation_spread_known_answer():
    preds = pd.DataFrame({"id": ["a0", "a1", "a2", "b0", "b1"], "y_pred": [1.0, 1.5, 0.5, 2.0, 2.0]})
    groups = {"a0": 7, "a1": 7, "a2": 7, "b0": 9, "b1": 9}
    assert representation_spread(preds, groups) == pytest.approx((1.0 + 0.0) / 2)


def test_probe_report_shows_theory_and_spread(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config("quick", ["experiment=probe", "tasks=[probe_supercell]", "architectures=[cgcnn]",
                                "variants=[distance,lattice]", "folds=[0]", "seeds=[0]", "train.epochs=1",
                                "hparams={cgcnn: {hidden: 8, num_layers: 1}}", "executor.workers=1"])
    run_grid(cfg, uri, progress=False, results_dir=tmp_path / "results")
    report = build_report(cfg, tmp_path / "results", command="test", figures=False)
    text = report.path.read_text()
    assert "## Periodicity probes" in text and "[theory: cannot]" in text and "[theory: can]" in text
    assert "theory cannot: the graph changes with the cell" in text
    table = pd.read_csv(tmp_path / "results" / "probe" / "tables" / "probes.csv")
    assert set(table.variant) == {"distance", "lattice"} and (table.metric == "MAE/MAD").all()

    # the spread is recomputed here from the runs' predictions and the task's groups
    data = tasks.get_task("probe_supercell").load()
    group_of = dict(zip(data.ids, data.groups.tolist()))
    client = Tracker("probe", uri).client
    for run in Tracker("probe", uri).search("attributes.status = 'FINISHED'"):
        tags = run.data.tags
        if tags.get("bench.kind") != "cell" or tags["bench.architecture"] != "cgcnn":
            continue
        preds = read_predictions(client, run.info.run_id)
        spans = preds.assign(g=preds.id.map(group_of)).groupby("g").y_pred.agg(lambda p: p.max() - p.min())
        row = table[table.variant == tags["bench.variant"]].iloc[0]
        assert row.spread_mean == pytest.approx(spans.mean())
        assert row["mean"] == pytest.approx(run.data.metrics["test_mae_over_mad"])


def test_probe_marks_come_from_the_fold_level_corrected_test():
    # 3 folds x 2 seeds, as in the committed probe grid. Seed-wise differences lattice − distance (MAE):
    #   fold 0: −1.0, −1.2;  fold 1: −0.9, −1.1;  fold 2: −1.0, −1.0  → fold means −1.1, −1.0, −1.0
    # The unit is the fold (J = 3, 2 dof), not the 6 seed pairs.
    diffs = {(0, 0): -1.0, (0, 1): -1.2, (1, 0): -0.9, (1, 1): -1.1, (2, 0): -1.0, (2, 1): -1.0}
    rows = []
    for (fold, seed), d in diffs.items():
        rows.append({"variant": "distance", "fold": fold, "seed": seed, "test_mae": 2.0})
        rows.append({"variant": "lattice", "fold": fold, "seed": seed, "test_mae": 2.0 + d})
    frame = pd.DataFrame(rows).assign(task="probe_lattice_length", architecture="cgcnn",
                                      test_mae_over_mad=lambda d: d.test_mae / 2.0)
    table = probe_table(frame, "probe_lattice_length", fold_sizes={k: (400, 100) for k in range(5)})
    lat = table.set_index("variant").loc["lattice"]
    assert lat.n_folds == 3 and lat.n_runs == 6
    assert lat.delta == pytest.approx(-3.1 / 3)  # in Å; the matrix shows MAE/MAD = MAE/2: (5.8/6)/2 = 0.483
    # mean −31/30, sd of (−1.1, −1.0, −1.0) = 0.057735; corrected se = 0.057735·√(1/3 + 1/4) = 0.044096;
    # t = −1.033333/0.044096 = −23.43, two-sided p with 2 dof = 1 − |t|/√(t² + 2) = 0.0018
    assert lat.p_corrected == pytest.approx(1 - 23.4340 / math.sqrt(23.4340 ** 2 + 2), rel=1e-3)
    assert lat.significant and math.isnan(table.set_index("variant").loc["distance"].p_adjusted)
    text = probe_markdown(table, "probe_lattice_length")
    assert "| cgcnn | 1.000 ± 0.000 [theory: cannot] | 0.483 ± 0.052** [theory: cannot] |" in text
    assert "Nadeau–Bengio" in text and "theory cannot: loops (>= 9 Å) lie beyond its basis" in text
    assert list(table.expected) == ["cannot", "cannot"] and not table.expected_can.any()


def test_pair_accuracy_from_predictions():
    from bench.report.probes import pair_accuracy

    preds = pd.DataFrame({"id": ["p0/r", "p0/l", "p1/r", "p1/l"], "y_true": [1.0, 0.0, 1.0, 0.0],
                          "y_pred": [0.9, 0.1, 0.4, 0.6]})
    assert pair_accuracy(preds, {"p0/r": 0, "p0/l": 0, "p1/r": 1, "p1/l": 1}) == 0.5
