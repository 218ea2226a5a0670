"""Optuna studies carry their metric name and attributes; pruned trials are marked in MLflow."""
from __future__ import annotations

import optuna
from mlflow.tracking import MlflowClient

from bench.config import load_config
from bench.grid import load_task
from bench.study_labels import PRUNED_SUFFIX, label_study, mark_pruned, objective_name
from bench.tracking import Tracker
from bench.tuning import TrainingView, run_study, study_name

TINY = "hparams={cgcnn: {hidden: 8, num_layers: 1, fc_hidden: 8, num_fc: 1}}"
FAST_SPACE = "tune.space={cutoff: null, max_neighbors: null, batch_size: {type: categorical, choices: [64]}}"


def test_a_study_names_its_metric_and_carries_its_cell_and_budget(tmp_path):
    uri, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", f"sqlite:///{tmp_path / 'optuna.db'}"
    cfg = load_config("quick", ["tasks=[matbench_jdft2d]", "architectures=[cgcnn]", "folds=[0]", "seeds=[0]",
                                "variants=[distance]", "train.epochs=1", TINY, FAST_SPACE, "tune.n_trials=2",
                                "experiment=labels"])
    data = load_task("matbench_jdft2d", cfg)
    tracker = Tracker("labels", uri)
    name = study_name("labels", data.name, "cgcnn", "distance", 0, "h")
    run_study(TrainingView.of(data, 0), "cgcnn", "distance", cfg, storage, tracker, name, "parent-id")
    study = optuna.load_study(study_name=name, storage=storage)
    assert study.metric_names == ["validation MAE (meV/atom)"]
    attrs = study.user_attrs
    assert {k: attrs[k] for k in ("experiment", "task", "architecture", "variant", "fold")} == \
        {"experiment": "labels", "task": "matbench_jdft2d", "architecture": "cgcnn", "variant": "distance", "fold": 0}
    assert attrs["budget.n_trials"] == 2 and attrs["budget.epochs"] == 1 and attrs["budget.pruner"] == "median"
    assert attrs["dataset_sha256"] == data.sha256 and attrs["mlflow_parent_run_id"] == "parent-id"
    run_ids = {r.info.run_id for r in tracker.search("tags.`bench.kind` = 'trial'")}
    assert {t.user_attrs["mlflow_run_id"] for t in study.trials} == run_ids


def test_pruned_trial_runs_are_marked(tmp_path):
    tracker = Tracker("pruned", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with tracker.run("t|cgcnn|distance|fold0|trial3", {"kind": "trial"}, {}) as log:
        mark_pruned(log, "t|cgcnn|distance|fold0|trial3", 4)
    run = MlflowClient(tracker.uri).get_run(log.run_id)
    assert run.info.run_name == "t|cgcnn|distance|fold0|trial3" + PRUNED_SUFFIX
    assert run.data.tags["bench.pruned"] == "true" and run.data.tags["bench.pruned_at_epoch"] == "4"
    assert run.data.tags["bench.trial_state"] == "PRUNED"


def test_objective_names_and_relabelling_is_idempotent():
    assert objective_name("classification", "") == "validation BCE"
    assert objective_name("regression", "") == "validation MAE"
    study = optuna.create_study()
    for _ in range(2):
        label_study(study, experiment="e", task="matbench_phonons", architecture="a", variant="v", fold=1,
                    problem_type="regression", budget={"n_trials": 3, "space": {}}, dataset_sha256="x",
                    parent_run_id=None)
    assert study.metric_names == ["validation MAE (cm^-1)"] and "budget.space" not in study.user_attrs
