"""The probe section of a report: theory beside the measured score, and the supercell spread."""
import pandas as pd
import pytest

import tasks
from bench.config import load_config
from bench.grid import run_grid
from bench.report.document import build_report
from bench.report.probes import representation_spread
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
    assert "## Periodicity probes" in text and "distance (theory: cannot)" in text and "lattice (theory: can)" in text
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
