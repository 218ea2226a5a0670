"""Fair tuning with Optuna inside the outer training fold only (nested cross-validation).

One study per (task, architecture, variant, outer fold): its trials see a
:class:`TrainingView`, which holds the fold's training rows and nothing else, split into
inner train / validation parts with the fixed tuning seed. The best parameters are then
retrained on the whole training fold by the final cells (:func:`bench.cell.run_cell`),
which are the only code that reads the test rows. Every architecture and variant of a grid
gets the same budget (``tune`` section of the config), recorded on every run.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import sqlalchemy
from torch_geometric.data import Data

import architectures
from bench import defaults
from bench import interrupts
from bench.claims import ClaimStore, schema_lock
from bench.config import GridConfig
from bench.graphs import build_task_graphs, take_graphs
from bench.normalisation import fitted_hparams
from bench.provenance import device_name, git_commit, package_versions
from bench.space import search_space
from bench.study_labels import label_study, mark_pruned
from bench.tracking import Tracker
from bench.training import configure_torch, fit, split_train_val

#: Shared knobs that set the training config or the graphs rather than a model hyperparameter.
TRAIN_KNOBS = ("lr", "weight_decay", "batch_size")
GRAPH_KNOBS = ("cutoff", "max_neighbors")
optuna.logging.set_verbosity(optuna.logging.WARNING)
# heartbeats and fail_stale_trials are "experimental" in Optuna since 2.9 but stable in use
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass(frozen=True)
class TrainingView:
    """The training rows of one outer fold: everything tuning may see (no test row).

    ``targets`` [n] in target units; ``ids`` and ``structures`` in the same row order.
    """

    task: str
    fold: int
    problem_type: str
    ids: tuple[str, ...]
    structures: tuple
    targets: np.ndarray
    dataset_sha256: str
    verification: str
    groups: np.ndarray | None = None  # [n] group label per row (synthetic probes), else None

    @classmethod
    def of(cls, data, fold: int) -> TrainingView:
        rows = np.asarray(data.folds[fold].train)
        targets = np.array(data.targets[rows], dtype=float)  # a copy: the view owns its targets
        targets.setflags(write=False)
        return cls(data.name, fold, data.problem_type, tuple(data.ids[i] for i in rows),
                   tuple(data.structures[i] for i in rows), targets, data.sha256, data.verification,
                   None if getattr(data, "groups", None) is None else np.asarray(data.groups)[rows])

    def __len__(self) -> int:
        return len(self.ids)

    def graphs(self, variant: str, cutoff: float, max_neighbors: int | None) -> list[Data]:
        """Graphs of the view's rows (disk cache keyed by these ids; memoised per process)."""
        key = (self.dataset_sha256, self.fold, len(self.ids), variant, cutoff, max_neighbors)
        if key not in _VIEW_GRAPHS:
            _VIEW_GRAPHS.clear()  # keep one set in memory: trials mostly reuse the last one
            _VIEW_GRAPHS[key] = build_task_graphs(list(self.structures), list(self.ids), variant, cutoff,
                                                  max_neighbors, self.dataset_sha256, progress=False)
        return _VIEW_GRAPHS[key]


_VIEW_GRAPHS: dict[tuple, list[Data]] = {}


def trial_epochs(cfg: GridConfig) -> int:
    """Epochs each trial trains: ``tune.epochs``, else the final cells' ``train.epochs``."""
    return cfg.tune.epochs or cfg.train.epochs


def tune_budget(architecture: str, cfg: GridConfig) -> dict[str, Any]:
    """What defines a study besides data and fold: part of a tuned cell's key."""
    budget = cfg.tune.model_dump(exclude={"space"})
    budget["epochs"] = trial_epochs(cfg)
    budget["space"] = search_space(architecture, cfg)
    return budget


def budget_params(cfg: GridConfig) -> dict[str, Any]:
    """The budget as MLflow params, logged on every cell (untuned cells say n_trials 0)."""
    t = cfg.tune
    return {"tune.n_trials": t.n_trials, "tune.timeout": t.timeout, "tune.pruner": t.pruner,
            "tune.sampler_seed": t.sampler_seed, "tune.seed": t.seed, "tune.val_fraction": t.val_fraction,
            "tune.epochs": trial_epochs(cfg)}


def apply_params(cfg: GridConfig, architecture: str, params: dict[str, Any]) -> GridConfig:
    """A copy of ``cfg`` with tuned ``params`` applied (training knobs, graph knobs, hyperparameters)."""
    out = cfg.model_copy(deep=True)
    out.train = out.train.model_copy(update={k: params[k] for k in TRAIN_KNOBS if k in params})
    out.graph = out.graph.model_copy(update={k: params[k] for k in GRAPH_KNOBS if k in params})
    spec_defaults = architectures.REGISTRY.get(architecture).defaults
    hp = dict(out.hparams.get(architecture, {}))
    hp.update({k: v for k, v in params.items() if k in spec_defaults and k not in TRAIN_KNOBS})
    if "cutoff" in params and "cutoff" in spec_defaults:
        hp["cutoff"] = params["cutoff"]  # the model's cutoff follows the graph's
    out.hparams = {**out.hparams, architecture: hp}
    return out


def _suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    params = {}
    for name, e in space.items():
        if e["type"] == "categorical":
            params[name] = trial.suggest_categorical(name, list(e["choices"]))
        elif e["type"] == "int":
            params[name] = trial.suggest_int(name, int(e["low"]), int(e["high"]), log=bool(e.get("log", False)))
        else:
            params[name] = trial.suggest_float(name, float(e["low"]), float(e["high"]), log=bool(e.get("log", False)))
    return params


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def storage_for(url: str) -> optuna.storages.RDBStorage:
    """Optuna's SQL storage with heartbeats, so a dead worker's trial is failed, not waited for."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
    ClaimStore(url)  # creates the folder of a SQLite file
    for attempt in range(6):
        try:
            with schema_lock(url):  # one process at a time creates a SQLite file's Optuna tables
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs,
                                                  heartbeat_interval=int(defaults.HEARTBEAT_S),
                                                  grace_period=int(defaults.STALE_AFTER_S))
        except sqlalchemy.exc.SQLAlchemyError:
            # Two workers opening a fresh database race to create Optuna's schema (PostgreSQL:
            # "relation alembic_version already exists"); the loser retries once it exists.
            if attempt == 5:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class StudyResult:
    """Frozen outcome of a study: the parameters every final cell of the fold uses."""

    study_name: str
    params: dict[str, Any]
    best_value: float
    best_trial: int
    n_complete: int
    n_pruned: int


#: user attribute of a trial that started after other workers had already taken the budget
SURPLUS = "bench_surplus"
_COUNTED = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def close_orphan_trials(tracker: Tracker, study: optuna.Study) -> int:
    """End as KILLED the MLflow runs of this study's trials that are no longer running (their
    worker died: Optuna failed them by heartbeat); return how many were closed."""
    runs = tracker.running(f"tags.`bench.optuna_study` = '{study.study_name}' and tags.`bench.kind` = 'trial'")
    if not runs:
        return 0
    alive = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
    closed = 0
    for run in runs:
        number = run.data.tags.get("bench.optuna_trial", "")
        if number.isdigit() and int(number) not in alive:
            tracker.terminate(run.info.run_id, "KILLED")
            closed += 1
    return closed


def budget_taken(study: optuna.Study, number: int, n_trials: int) -> bool:
    """True when ``n_trials`` trials numbered before ``number`` are running or done.

    Workers check the budget and then start a trial, so two of them can race past the check
    together. Storage numbers trials atomically, so "the first ``n_trials`` trials that did not
    fail" is one answer for every worker; a trial beyond it does no work and is marked
    surplus (never counted, never a best). Every study thus spends exactly its budget.
    """
    earlier = [t for t in study.get_trials(deepcopy=False, states=_COUNTED)
               if t.number < number and not t.user_attrs.get(SURPLUS)]
    return len(earlier) >= n_trials


def study_name(experiment: str, task: str, architecture: str, variant: str, fold: int, config_hash: str) -> str:
    return f"{experiment}/{task}/{architecture}/{variant}/fold{fold}/{config_hash}"


def run_study(view: TrainingView, architecture: str, variant: str, cfg: GridConfig, storage_url: str,
              tracker: Tracker, name: str, parent_run_id: str | None = None, progress: bool = False,
              poll_s: float = 2.0) -> StudyResult:
    """Run (or continue, or join) the study ``name`` until its budget is spent; freeze its best.

    Trials (COMPLETE or PRUNED) are counted in the shared storage, so several workers fill
    one budget together and a rerun continues an interrupted study. ``timeout`` bounds the
    time this worker spends here. The best parameters are frozen once (write-once row), so
    every final cell of the fold, in whatever worker, trains with the same ones.
    """
    claims = ClaimStore(storage_url)
    frozen = claims.frozen(f"study:{name}")
    if frozen is not None:
        return StudyResult(**frozen)
    space = search_space(architecture, cfg)
    study = optuna.create_study(study_name=name, storage=storage_for(storage_url), load_if_exists=True,
                                direction="minimize", sampler=optuna.samplers.TPESampler(seed=cfg.tune.sampler_seed),
                                pruner=make_pruner(cfg.tune.pruner))
    label_study(study, experiment=cfg.experiment, task=view.task, architecture=architecture, variant=variant,
                fold=view.fold, problem_type=view.problem_type, budget=tune_budget(architecture, cfg),
                dataset_sha256=view.dataset_sha256, parent_run_id=parent_run_id)
    inner_train, inner_val = split_train_val(np.arange(len(view)), cfg.tune.val_fraction, cfg.tune.seed,
                                             view.groups)
    train_cfg = cfg.train.model_copy(update={"epochs": trial_epochs(cfg)})
    device = device_name(configure_torch(cfg.train.num_threads, cfg.train.device))
    base_tags = {"task": view.task, "fold": view.fold, "architecture": architecture, "variant": variant,
                 "kind": "trial", "optuna_study": name, "dataset_sha256": view.dataset_sha256,
                 "data_verification": view.verification, "config_hash": name.rsplit("/", 1)[-1],
                 "git_commit": git_commit(), "device": device, "problem_type": view.problem_type,
                 **{f"version.{k}": v for k, v in package_versions().items()}}

    n_target = cfg.tune.n_trials

    def objective(trial: optuna.Trial) -> float:
        if budget_taken(study, trial.number, n_target):
            trial.set_user_attr(SURPLUS, True)
            raise optuna.TrialPruned("the budget was taken by trials of other workers")
        params = _suggest(trial, space)
        eff = apply_params(cfg, architecture, params)
        hparams = eff.model_hparams(architecture)
        graphs = view.graphs(variant, eff.graph.cutoff, eff.graph.max_neighbors)
        tcfg = train_cfg.model_copy(update={k: params[k] for k in TRAIN_KNOBS if k in params})
        tags = {**base_tags, "optuna_trial": trial.number}
        run_params = {**{f"hp.{k}": v for k, v in hparams.items()}, **{f"train.{k}": v for k, v in tcfg.model_dump().items()},
                      "cutoff": eff.graph.cutoff, "max_neighbors": eff.graph.max_neighbors, **budget_params(cfg),
                      "n_inner_train": len(inner_train), "n_inner_val": len(inner_val)}
        pruned, last_epoch = False, [None]
        run_name = f"{view.task}|{architecture}|{variant}|fold{view.fold}|trial{trial.number}"
        with tracker.run(run_name, tags, run_params, parent_run_id) as log:
            trial.set_user_attr("mlflow_run_id", log.run_id)
            log.log_dict({"params": params, "space": space, "hparams": hparams}, "config.json")

            def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                last_epoch[0] = epoch
                log.log_metrics(metrics, step=epoch)
                trial.report(metrics["val_score"], epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {epoch}")

            try:
                train_graphs = take_graphs(graphs, inner_train)
                fitted = fitted_hparams(architecture, hparams, train_graphs, fixed=eff.hparams.get(architecture, {}))
                result = fit(architecture, fitted, train_graphs, view.targets[inner_train],
                             take_graphs(graphs, inner_val), view.targets[inner_val], view.problem_type, tcfg,
                             cfg.tune.seed, on_epoch=on_epoch, progress=progress, desc=f"trial {trial.number}")
            except optuna.TrialPruned:
                pruned = True
                mark_pruned(log, run_name, last_epoch[0])
            else:
                log.set_tags({"trial_state": "COMPLETE"})
                log.log_metrics({"best_val_score": result.best_val, "best_epoch": result.best_epoch,
                                 "n_params": result.n_params, "train_structures_per_s": result.structures_per_second})
        if pruned:
            raise optuna.TrialPruned()
        if not np.isfinite(result.best_val):
            raise ValueError(f"trial {trial.number}: validation score {result.best_val}")
        return result.best_val

    start = time.monotonic()
    while True:
        if interrupts.stop_requested():
            raise interrupts.Interrupted(f"study {name}: stopped before its budget was spent (resumes on rerun)")
        optuna.storages.fail_stale_trials(study)
        close_orphan_trials(tracker, study)
        trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS)]
        states = [t.state for t in trials]
        done = sum(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for s in states)
        running = states.count(optuna.trial.TrialState.RUNNING)
        failed = states.count(optuna.trial.TrialState.FAIL)
        if done >= n_target or (cfg.tune.timeout and time.monotonic() - start > cfg.tune.timeout):
            break
        if failed >= max(n_target, 3):
            raise RuntimeError(f"study {name}: {failed} trials failed; see the trial runs in MLflow")
        if done + running < n_target:
            study.optimize(objective, n_trials=1, catch=(RuntimeError, ValueError))
        else:
            time.sleep(poll_s)  # the last trials run in other workers
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"study {name}: no trial completed within the budget")
    best = min(complete, key=lambda t: (t.value, t.number))
    result = {"study_name": name, "params": dict(best.params), "best_value": float(best.value),
              "best_trial": best.number, "n_complete": len(complete),
              "n_pruned": sum(t.state == optuna.trial.TrialState.PRUNED and not t.user_attrs.get(SURPLUS)
                              for t in study.get_trials(deepcopy=False))}
    return StudyResult(**claims.freeze(f"study:{name}", result))
