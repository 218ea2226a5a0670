"""One cell = (task, fold, architecture, variant, seed): train, test once, log one MLflow run.

A cell is identified by a key that hashes everything that can change its result
(dataset sha256, fold, seed, variant, graph settings, resolved hyperparameters,
training budget); a finished run with that key is never recomputed.
"""
from __future__ import annotations

import io
import os
import socket
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from torch_geometric.data import Data
from tqdm.auto import tqdm

from bench.config import GridConfig, stable_hash
from bench.metrics import dummy_predictions, evaluate
from bench.models import log_cell_model
from bench.provenance import device_name, git_commit, package_versions
from bench.tracking import Tracker
from bench.training import fit, predict, resolve_device, split_train_val
from bench.tuning import apply_params, budget_params, tune_budget

DUMMY = "dummy"
NO_VARIANT = "none"


@dataclass(frozen=True)
class Cell:
    task: str
    fold: int
    architecture: str
    variant: str
    seed: int

    def label(self) -> str:
        return f"{self.task}|{self.architecture}|{self.variant}|fold{self.fold}|seed{self.seed}"


@dataclass
class CellOutcome:
    cell: Cell
    metrics: dict[str, float]
    run_id: str
    skipped: bool = False
    extra: dict = field(default_factory=dict)


def cell_settings(cell: Cell, cfg: GridConfig) -> dict:
    """Everything besides data, fold and seed that determines a cell's result."""
    if cell.architecture == DUMMY:
        return {"architecture": DUMMY}
    settings = {
        "architecture": cell.architecture,
        "variant": cell.variant,
        "hparams": cfg.model_hparams(cell.architecture),
        "graph": cfg.graph.model_dump(),
        "train": cfg.train.model_dump(exclude={"device", "num_threads"}),
    }
    if cfg.arch_preset is not None:
        settings["preset"] = cfg.arch_preset
    if cfg.tune.enabled:
        # a tuned cell is keyed by its starting point and budget (search space included):
        # known before its study runs, so resume and `bench status` work at any time
        settings["tune"] = tune_budget(cell.architecture, cfg)
    return settings


def cell_key(cell: Cell, dataset_sha256: str, config_hash: str) -> str:
    return stable_hash({"task": cell.task, "data": dataset_sha256, "fold": cell.fold, "seed": cell.seed,
                        "config": config_hash}, length=24)


def _base_tags(cell: Cell, data, cfg: GridConfig, config_hash: str, key: str) -> dict:
    tags = {
        "task": cell.task, "fold": cell.fold, "architecture": cell.architecture, "variant": cell.variant,
        "seed": cell.seed, "cell_key": key, "config_hash": config_hash, "dataset_sha256": data.sha256,
        "data_verification": data.verification, "unverified_data": data.verification == "UNVERIFIED",
        "git_commit": git_commit(), "problem_type": data.problem_type,
    }
    tags.update({f"version.{k}": v for k, v in package_versions().items()})
    return tags


def _predictions_csv(ids: list[str], y_true: np.ndarray, y_pred: np.ndarray) -> str:
    buf = io.StringIO()
    pd.DataFrame({"id": ids, "y_true": y_true, "y_pred": y_pred}).to_csv(buf, index=False)
    return buf.getvalue()


def _record_matbench(data, fold: int, y_pred: np.ndarray) -> dict[str, float]:
    """Record the fold through the ``matbench`` API (checks ids and order) and return its scores."""
    from tasks import MATBENCH_TASKS, matbench_recorder
    from tasks.matbench import FOLD_SOURCE_MATBENCH

    # A Matbench-named file without Matbench's own folds (e.g. a small or unverified
    # copy) cannot be recorded through the matbench API; our own metrics still stand.
    if data.name not in MATBENCH_TASKS or data.fold_source != FOLD_SOURCE_MATBENCH:
        return {}
    logging.getLogger("matbench").setLevel(logging.WARNING)  # one INFO line per fold otherwise
    recorder = matbench_recorder(data)
    recorder.record(fold, y_pred)
    scores = recorder.results[f"fold_{fold}"]["scores"]
    return {f"matbench_{k}": float(v) for k, v in scores.items()}


def cell_identity(cell: Cell, cfg: GridConfig, dataset_sha256: str) -> tuple[dict, str, str]:
    """(settings, config hash, cell key) of ``cell`` under ``cfg``."""
    settings = cell_settings(cell, cfg)
    config_hash = stable_hash(settings)
    return settings, config_hash, cell_key(cell, dataset_sha256, config_hash)


def run_cell(cell: Cell, cfg: GridConfig, data, graphs: list[Data] | None, tracker: Tracker,
             progress: bool = True, tuned=None, parent_run_id: str | None = None) -> CellOutcome:
    """Run (or skip, when already finished) one cell and log it to ``tracker``.

    ``tuned`` (a :class:`bench.tuning.StudyResult`) gives the parameters found by the fold's
    study; the cell then trains with them on the whole training fold (``graphs`` must be
    built with the tuned cutoff and cap), while its key stays that of ``cfg``.
    """
    settings, config_hash, key = cell_identity(cell, cfg, data.sha256)
    done = tracker.finished_run(key)
    if done is not None:
        return CellOutcome(cell, dict(done.data.metrics), done.info.run_id, skipped=True)
    logged_settings = settings
    if tuned is not None:
        cfg = apply_params(cfg, cell.architecture, tuned.params)
        effective = cell_settings(cell, cfg.model_copy(update={"tune": type(cfg.tune)()}))
        logged_settings = {**settings, "tuned_params": tuned.params, "effective": effective}
        settings = effective

    fold = data.folds[cell.fold]
    test_ids = [data.ids[i] for i in fold.test]
    y_test = data.targets[fold.test]
    device = resolve_device(cfg.train.device)
    tags = _base_tags(cell, data, cfg, config_hash, key)
    tags["device"] = device_name(device)
    tags["kind"] = "cell"
    tags.update({"worker_host": socket.gethostname(), "worker_pid": os.getpid()})
    if tuned is not None:
        tags.update({"optuna_study": tuned.study_name, "optuna_trial": tuned.best_trial})
    params = {"architecture": cell.architecture, "variant": cell.variant, "fold": cell.fold, "seed": cell.seed,
              "n_train_fold": len(fold.train), "n_test": len(fold.test)}
    if cell.architecture != DUMMY:
        params.update({f"hp.{k}": v for k, v in settings["hparams"].items()})
        params.update({f"train.{k}": v for k, v in cfg.train.model_dump().items()})
        params.update({"cutoff": cfg.graph.cutoff, "max_neighbors": cfg.graph.max_neighbors})
        params.update(budget_params(cfg))
        if tuned is not None:
            params.update({"tune.n_complete": tuned.n_complete, "tune.n_pruned": tuned.n_pruned,
                           "tune.best_inner_val_score": tuned.best_value})

    start = time.perf_counter()
    with tracker.run(cell.label(), tags, params, parent_run_id) as log:
        log.log_dict(logged_settings, "config.json")
        if cell.architecture == DUMMY:
            y_pred = dummy_predictions(data.problem_type, data.targets[fold.train], len(fold.test))
            extra: dict[str, float] = {}
        else:
            if graphs is None:
                raise ValueError(f"{cell.label()}: graphs are required for a model cell")
            train_idx, val_idx = split_train_val(fold.train, cfg.train.val_fraction, cell.seed,
                                                 getattr(data, "groups", None))
            result = fit(
                cell.architecture, settings["hparams"],
                [graphs[i] for i in train_idx], data.targets[train_idx],
                [graphs[i] for i in val_idx], data.targets[val_idx],
                data.problem_type, cfg.train, cell.seed,
                on_epoch=lambda epoch, m: log.log_metrics(m, step=epoch),
                progress=progress, desc=cell.label(),
            )
            log_cell_model(log, cell, cfg, settings["hparams"], result, data)  # best epoch: bench predict
            y_pred = predict(result.model, [graphs[i] for i in fold.test], result.scaler, data.problem_type,
                             cfg.train.batch_size, device)
            extra = {"n_params": result.n_params, "best_epoch": result.best_epoch, "best_val_score": result.best_val,
                     "epochs_run": len(result.history), "train_structures_per_s": result.structures_per_second,
                     "n_train": len(train_idx), "n_val": len(val_idx)}
        metrics = {f"test_{k}": v for k, v in evaluate(data.problem_type, y_test, y_pred).items()}
        metrics.update(_record_matbench(data, cell.fold, y_pred))
        metrics.update(extra)
        metrics["wall_time_s"] = time.perf_counter() - start
        log.log_text(_predictions_csv(test_ids, y_test, y_pred), "predictions.csv")
        log.log_metrics(metrics)
        run_id = log.run_id
    return CellOutcome(cell, metrics, run_id)


def summary_line(outcome: CellOutcome, unit: str = "") -> str:
    m = outcome.metrics
    head = "test MAE" if "test_mae" in m else "test ROC-AUC"
    value = m.get("test_mae", m.get("test_roc_auc", float("nan")))
    status = "skipped (already finished)" if outcome.skipped else f"{m.get('wall_time_s', 0):.0f} s"
    parts = [f"{outcome.cell.label()}: {head} {value:.4g} {unit}".rstrip(), status]
    if "n_params" in m:
        parts.append(f"{int(m['n_params'])} params, best epoch {int(m['best_epoch'])}")
    return " | ".join(parts)


def log_summary(outcome: CellOutcome, unit: str = "") -> None:
    tqdm.write(summary_line(outcome, unit))

