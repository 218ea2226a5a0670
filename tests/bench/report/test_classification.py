"""Classification through the suite on small Matbench-format mp_is_metal files written here.

The structures and labels are toys (not Matbench data); the file only has Matbench's name
and columns, so it loads with --allow-unverified-data and gets the recipe folds.
"""
import numpy as np
import pandas as pd
import pytest
from matbench.data_ops import score_array
from matminer.utils.io import store_dataframe_as_json
from pymatgen.core import Lattice, Structure
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from bench.config import load_config
from bench.grid import run_grid
from bench.report.document import build_report
from bench.report.matbench_export import ExportError, export_matbench
from bench.report.runs import grid_records, read_predictions
from bench.tracking import Tracker


@pytest.fixture
def is_metal_file(tmp_path, monkeypatch):
    n = 30
    structures = [Structure(Lattice.cubic(3.0 + 0.05 * i), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
                  for i in range(n)]
    labels = [bool(i % 3) for i in range(n)]
    folder = tmp_path / "mb"
    folder.mkdir()
    store_dataframe_as_json(pd.DataFrame({"structure": structures, "is_metal": labels}),
                            str(folder / "matbench_mp_is_metal.json.gz"), orient="split", pbar=False)
    monkeypatch.setenv("MATBENCH_DATA", str(folder))
    return folder


def test_roc_auc_and_matbench_balanced_accuracy_are_reported_separately(is_metal_file, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config("quick", ["experiment=clf", "architectures=[cgcnn]", "tasks=[matbench_mp_is_metal]", "folds=[0,1]", "seeds=[0]",
                                "variants=[distance,multi_edge]", "train.epochs=1", "allow_unverified_data=true",
                                "hparams={cgcnn: {hidden: 8, num_layers: 1}}"])
    run_grid(cfg, uri, progress=False, results_dir=tmp_path / "results")
    report = build_report(cfg, tmp_path / "results", command="bench report (test)", figures=True)
    table = report.tables["matbench_mp_is_metal"]
    grid = grid_records(cfg, tmp_path / "results")
    frame = grid.frame
    for run in frame[frame.architecture == "cgcnn"].itertuples():
        preds = read_predictions(grid.records, run.run_id)
        logged = read_predictions(Tracker("clf", uri).client, run.mlflow_run_id)  # the record holds what MLflow has
        assert list(logged.id) == list(preds.id) and np.allclose(logged.y_pred, preds.y_pred, rtol=1e-12, atol=0)
        p, y = preds.y_pred.to_numpy(), preds.y_true.to_numpy().astype(int)
        assert ((p >= 0) & (p <= 1)).all()  # probabilities are stored
        assert run.test_roc_auc == pytest.approx(roc_auc_score(y, p))
        assert run.test_matbench_balanced_accuracy == pytest.approx(balanced_accuracy_score(y, p >= 0.5))
        # Matbench's own scorer calls the thresholded value "rocauc": it is balanced accuracy
        assert score_array(y.astype(bool), p.tolist(), "classification")["rocauc"] == \
            pytest.approx(run.test_matbench_balanced_accuracy)
    for row in table.itertuples():
        cells = frame[(frame.architecture == row.architecture) & (frame.variant == row.variant)]
        assert row.roc_auc_mean == pytest.approx(cells.test_roc_auc.mean(), rel=1e-12, nan_ok=True)
        assert row.matbench_balanced_accuracy_mean == pytest.approx(cells.test_matbench_balanced_accuracy.mean())
    assert np.isfinite(table.roc_auc_mean).all()
    md = (tmp_path / "results" / "clf" / "tables" / "matbench_mp_is_metal_leaderboard.md").read_text()
    assert "ROC-AUC mean" in md and "Matbench 'rocauc' (= balanced acc.)" in md and "ref" not in md.split("\n\n")[0]
    assert "balanced accuracy" in report.path.read_text()
    assert (tmp_path / "results" / "clf" / "figures" / "parity_matbench_mp_is_metal.png").exists()
    # unverified data with recipe folds is never a Matbench submission
    with pytest.raises(ExportError, match="UNVERIFIED"):
        export_matbench(cfg, "cgcnn", "distance", tmp_path / "out", tmp_path / "results")
