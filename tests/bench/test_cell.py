import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from bench.cell import DUMMY, NO_VARIANT, Cell, run_cell
from bench.config import load_config
from bench.graphs import build_graph
from bench.tracking import Tracker
from tests.bench.toy import toy_task

SMALL = {"cgcnn": {"hidden": 8, "num_layers": 1, "fc_hidden": 8, "num_gaussians": 10}}


@pytest.fixture
def setup(tmp_path):
    cfg = load_config(None, ["train.epochs=2", "train.batch_size=4", "graph.cutoff=5.0", "train.device=cpu"])
    cfg.hparams = SMALL
    data = toy_task()
    graphs = [build_graph(s, "multi_edge", cutoff=5.0, structure_id=i) for s, i in zip(data.structures, data.ids)]
    tracker = Tracker("test", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return cfg, data, graphs, tracker


def test_cell_logs_one_complete_run_and_resumes(setup):
    cfg, data, graphs, tracker = setup
    cell = Cell("toy", 1, "cgcnn", "multi_edge", 0)
    first = run_cell(cell, cfg, data, graphs, tracker, progress=False)
    assert not first.skipped
    run = MlflowClient(tracker.uri).get_run(first.run_id)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    for key in ("task", "fold", "architecture", "variant", "seed", "dataset_sha256", "config_hash", "git_commit",
                "version.torch", "device", "cell_key"):
        assert f"bench.{key}" in tags, key
    assert tags["bench.dataset_sha256"] == data.sha256
    assert run.data.params["variant"] == "multi_edge" and run.data.params["max_neighbors"] == "12"
    assert run.data.params["hp.hidden"] == "8"
    for key in ("test_mae", "test_rmse", "n_params", "wall_time_s", "train_structures_per_s"):
        assert key in run.data.metrics
    history = MlflowClient(tracker.uri).get_metric_history(first.run_id, "val_score")
    assert [m.step for m in history] == [0, 1]
    # predictions artifact agrees with the logged MAE
    path = MlflowClient(tracker.uri).download_artifacts(first.run_id, "predictions.csv")
    preds = pd.read_csv(path)
    assert list(preds["id"]) == [data.ids[i] for i in data.folds[1].test]
    assert np.mean(np.abs(preds.y_pred - preds.y_true)) == pytest.approx(run.data.metrics["test_mae"])

    again = run_cell(cell, cfg, data, graphs, tracker, progress=False)
    assert again.skipped and again.run_id == first.run_id
    assert len(tracker.search()) == 1

    cfg.train.epochs = 3  # another budget is another cell
    assert not run_cell(cell, cfg, data, graphs, tracker, progress=False).skipped


def test_a_task_with_its_own_budget_trains_with_it_and_is_keyed_by_it(setup):
    from bench.cells import cell_identity
    from bench.config import BudgetConfig

    cfg, data, graphs, tracker = setup
    cell = Cell("toy", 0, "cgcnn", "multi_edge", 0)
    key_before = cell_identity(cell, cfg, data.sha256)[2]
    cfg.budget_for = {"other_task": BudgetConfig(epochs=7)}  # another task's budget changes nothing here
    assert cell_identity(cell, cfg, data.sha256)[2] == key_before
    cfg.budget_for = {"toy": BudgetConfig(epochs=3)}  # train.epochs is 2
    assert cell_identity(cell, cfg, data.sha256)[2] != key_before
    outcome = run_cell(cell, cfg, data, graphs, tracker, progress=False)
    run = MlflowClient(tracker.uri).get_run(outcome.run_id)
    assert run.data.metrics["epochs_run"] == 3 and run.data.params["train.epochs"] == "3"


def test_failed_cell_is_marked_failed_and_rerun(setup, monkeypatch):
    cfg, data, graphs, tracker = setup
    cell = Cell("toy", 0, "cgcnn", "multi_edge", 0)
    import bench.cell

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(bench.cell, "fit", boom)
    with pytest.raises(RuntimeError):
        run_cell(cell, cfg, data, graphs, tracker, progress=False)
    assert [r.info.status for r in tracker.search()] == ["FAILED"]
    monkeypatch.undo()
    outcome = run_cell(cell, cfg, data, graphs, tracker, progress=False)
    assert not outcome.skipped
    assert sorted(r.info.status for r in tracker.search()) == ["FAILED", "FINISHED"]


def test_dummy_cell_predicts_the_training_fold_mean(setup):
    cfg, data, _, tracker = setup
    outcome = run_cell(Cell("toy", 2, DUMMY, NO_VARIANT, 0), cfg, data, None, tracker, progress=False)
    fold = data.folds[2]
    expected = np.mean(np.abs(data.targets[fold.test] - data.targets[fold.train].mean()))
    assert outcome.metrics["test_mae"] == pytest.approx(expected)
