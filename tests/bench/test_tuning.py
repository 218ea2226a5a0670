"""Optuna tuning inside the outer training fold, nested MLflow runs, resume and status,
on the real matbench_jdft2d data (fold 0) with a tiny budget."""
from __future__ import annotations

import dataclasses

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

import bench.tuning
from bench.cell import Cell, cell_identity, cell_settings, run_cell
from bench.cli import main
from bench.config import load_config, stable_hash
from bench.graphs import build_task_graphs
from bench.grid import load_task
from bench.status import grid_status
from bench.tracking import Tracker
from bench.tuning import SURPLUS, TrainingView, apply_params, budget_taken, run_study, search_space, study_name

TINY = "hparams={cgcnn: {hidden: 8, num_layers: 1, fc_hidden: 8, num_fc: 1}}"
#: only the training knobs are searched, so every trial reuses one set of graphs
FAST_SPACE = "tune.space={cutoff: null, max_neighbors: null, batch_size: {type: categorical, choices: [64]}}"


def _cfg(*extra: str):
    return load_config("quick", ["tasks=[matbench_jdft2d]", "architectures=[cgcnn]", "folds=[0]", "seeds=[0]", "variants=[distance]", "train.epochs=2", TINY,
                                 FAST_SPACE, "tune.n_trials=2", "executor.workers=1", *extra])


@pytest.fixture
def stores(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}", f"sqlite:///{tmp_path / 'optuna.db'}"


def test_tuning_is_off_by_default_and_the_tune_section_does_not_key_untuned_cells():
    assert load_config("quick").tune.n_trials == 0 and not load_config("quick").tune.enabled
    # without trials, the rest of the tune section (pruner, seeds, space) changes no cell's key
    cfg = load_config(None, ["train.epochs=100", "train.patience=25", "train.batch_size=32", "train.lr=0.002"])
    other = load_config(None, ["train.epochs=100", "train.patience=25", "train.batch_size=32", "train.lr=0.002",
                               "tune.pruner=none", "tune.sampler_seed=7", "tune.space={lr: null}"])
    for variant in ("distance", "lattice"):
        cell = Cell("matbench_jdft2d", 0, "cgcnn", variant, 0)
        assert "tune" not in cell_settings(cell, cfg)
        assert stable_hash(cell_settings(cell, cfg)) == stable_hash(cell_settings(cell, other))


def test_search_space_shared_knobs_architecture_space_and_overrides():
    cfg = load_config("quick", ["tune.n_trials=3"])
    space = search_space("cgcnn", cfg)
    assert {"lr", "weight_decay", "batch_size", "cutoff", "max_neighbors", "hidden", "num_layers"} <= set(space)
    cfg = load_config("quick", ["tune.n_trials=3", TINY, "tune.space={lr: {type: float, low: 0.01, high: 0.1}, cutoff: null}"])
    space = search_space("cgcnn", cfg)
    assert "hidden" not in space and "cutoff" not in space  # fixed under hparams / removed
    assert space["lr"]["low"] == 0.01
    with pytest.raises(ValueError, match="unknown knob"):
        search_space("cgcnn", load_config("quick", ["tune.n_trials=3", "tune.space={nope: null}"]))
    tuned = apply_params(cfg, "cgcnn", {"lr": 0.05, "cutoff": 6.0, "batch_size": 16, "num_fc": 2})
    assert tuned.train.lr == 0.05 and tuned.train.batch_size == 16 and tuned.graph.cutoff == 6.0
    assert tuned.hparams["cgcnn"]["cutoff"] == 6.0 and tuned.hparams["cgcnn"]["num_fc"] == 2
    assert cfg.train.lr != 0.05  # the original config is untouched


def test_tuning_never_reads_test_rows(stores):
    """Poison the outer test fold's targets with NaN: every trial still scores finite (so no
    test target reached tuning), and only the final evaluation sees them (test MAE is NaN)."""
    uri, storage = stores
    cfg = _cfg()
    real = load_task("matbench_jdft2d", cfg)
    targets = real.targets.copy()
    test_rows = real.folds[0].test
    targets[test_rows] = np.nan
    data = dataclasses.replace(real, name="poisoned_jdft2d", targets=targets)

    view = TrainingView.of(data, 0)
    assert set(view.ids).isdisjoint(data.ids[i] for i in test_rows)
    assert len(view) == len(data.folds[0].train) and np.isfinite(view.targets).all()

    tracker = Tracker("poison", uri)
    parent = tracker.parent_run("p", "parent", {"task": data.name})
    name = study_name("poison", data.name, "cgcnn", "distance", 0, "h")
    result = run_study(view, "cgcnn", "distance", cfg, storage, tracker, name, parent)
    study = optuna.load_study(study_name=name, storage=storage)
    values = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(values) == 2 and np.isfinite(values).all()
    assert result.n_complete == 2 and result.params == study.best_params

    run_cfg = apply_params(cfg, "cgcnn", result.params)
    graphs = build_task_graphs(data.structures, data.ids, "distance", run_cfg.graph.cutoff,
                               run_cfg.graph.max_neighbors, data.sha256, progress=False)
    outcome = run_cell(Cell(data.name, 0, "cgcnn", "distance", 0), cfg, data, graphs, tracker, False, result, parent)
    assert np.isnan(outcome.metrics["test_mae"])  # the NaNs are read here, and only here

    # nesting and tags: trials and the final cell are children of the parent run
    client = MlflowClient(uri)
    runs = tracker.search()
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    kinds = sorted(r.data.tags["bench.kind"] for r in children)
    assert kinds == ["cell", "trial", "trial"]
    for r in children:
        assert r.data.tags["bench.optuna_study"] == name and "bench.optuna_trial" in r.data.tags
        assert r.data.params["tune.n_trials"] == "2" and r.data.params["tune.pruner"] == "median"
        assert "config.json" in {a.path for a in client.list_artifacts(r.info.run_id)}
    cell_run = next(r for r in children if r.data.tags["bench.kind"] == "cell")
    assert cell_run.data.tags["bench.optuna_trial"] == str(result.best_trial)
    assert float(cell_run.data.params["train.lr"]) == pytest.approx(result.params["lr"])
    assert "predictions.csv" in {a.path for a in client.list_artifacts(cell_run.info.run_id)}


def test_interrupted_study_continues_where_it_stopped(stores, monkeypatch):
    uri, storage = stores
    cfg = _cfg("tune.n_trials=3")
    data = load_task("matbench_jdft2d", cfg)
    view = TrainingView.of(data, 0)
    tracker = Tracker("resume", uri)
    name = study_name("resume", data.name, "cgcnn", "distance", 0, "h")
    real_fit, calls = bench.tuning.fit, []

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of trial 1
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(bench.tuning, "fit", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_study(view, "cgcnn", "distance", cfg, storage, tracker, name)
    monkeypatch.setattr(bench.tuning, "fit", real_fit)
    result = run_study(view, "cgcnn", "distance", cfg, storage, tracker, name)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert result.n_complete == 3
    # frozen: asking again returns the same parameters without another trial
    assert run_study(view, "cgcnn", "distance", cfg, storage, tracker, name) == result
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 4


def test_tuned_grid_resumes_and_status_shows_states(stores, tmp_path, capsys):
    uri, storage = stores
    common = ["--profile", "quick", "--tasks", "matbench_jdft2d", "--architectures", "cgcnn", "--experiment", "tg", "--tracking-uri", uri, "--storage", storage,
              "--folds", "0", "--seeds", "0", "--variants", "distance", "--set", "train.epochs=1", "--set", TINY,
              "--set", FAST_SPACE, "--set", "tune.n_trials=2", "--workers", "1", "--no-progress"]
    assert main(["status", *common]) == 0
    out = capsys.readouterr().out
    assert "pending  matbench_jdft2d|cgcnn|distance|fold0|seed0" in out and "pending 2" in out

    assert main(["ablation", *common, "--results-dir", str(tmp_path / "res")]) == 0
    n_runs = len(Tracker("tg", uri).search())
    assert n_runs == 5  # dummy, parent, 2 trials, 1 final cell
    capsys.readouterr()
    assert main(["ablation", *common, "--results-dir", str(tmp_path / "res")]) == 0
    assert "skipped (already finished)" in capsys.readouterr().out
    assert len(Tracker("tg", uri).search()) == n_runs  # nothing recomputed, no study reopened

    assert main(["status", *common]) == 0
    assert "done 2 | running 0 | failed 0 | pending 0" in capsys.readouterr().out

    # a failed final run shows as failed; a live claim as running
    cfg = _cfg("train.epochs=1", "experiment=tg", "tune.n_trials=2")
    cfg.validate_names()
    data = load_task("matbench_jdft2d", cfg)
    lattice = Cell("matbench_jdft2d", 0, "cgcnn", "lattice", 0)
    cfg.variants = ["distance", "lattice"]
    _, _, key = cell_identity(lattice, cfg, data.sha256)
    with Tracker("tg", uri).run("broken", {"cell_key": key, "kind": "cell"}, {}):
        pass
    Tracker("tg", uri).client.set_terminated(Tracker("tg", uri).finished_run(key).info.run_id, "FAILED")
    frame = grid_status(cfg, uri, storage)
    assert dict(zip(frame.variant, frame.state)) == {"none": "done", "distance": "done", "lattice": "failed"}
    from bench.claims import ClaimStore

    with ClaimStore(storage).claim(key) as mine:
        assert mine
        frame = grid_status(cfg, uri, storage)
        assert frame.set_index("variant").loc["lattice", "state"] == "running"


def test_a_trial_started_after_the_budget_was_taken_is_surplus():
    """Two workers that both passed the budget check start trials 1 and 2 of a 2-trial budget.

    Trial numbers are atomic, so both agree: 0 and 1 are the budget, 2 is surplus. When an
    earlier trial fails it stops counting, and a later trial takes its place.
    """
    study = optuna.create_study()
    trials = [study.ask() for _ in range(3)]  # all RUNNING, as in three workers
    assert [budget_taken(study, t.number, 2) for t in trials] == [False, False, True]
    study.tell(trials[0], state=optuna.trial.TrialState.FAIL)
    assert not budget_taken(study, 2, 2)
    surplus = study.ask()  # number 3: 1 and 2 hold the budget
    assert budget_taken(study, surplus.number, 2)
    surplus.set_user_attr(SURPLUS, True)
    study.tell(surplus, state=optuna.trial.TrialState.PRUNED)
    assert not budget_taken(study, 4, 3)  # a surplus trial never counts towards a budget
