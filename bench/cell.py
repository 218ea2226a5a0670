"""Run one cell = (task, fold, architecture, variant, seed): train, test once, log one MLflow
run and append its run record (:mod:`bench.records`).

A cell is identified by a key that hashes everything that can change its result (see
:mod:`bench.cells`); a cell with a FINISHED run or a record under that key is never
recomputed (a record the MLflow store lacks is imported into it instead).
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

from bench.cells import (DUMMY, NO_VARIANT, Cell, cell_identity, cell_key, cell_settings,  # noqa: F401 (re-exported)
                         effective_threads)
from bench.config import GridConfig
from bench.graphs import take_graphs
from bench.metrics import dummy_predictions, evaluate
from bench.normalisation import AVG_NEIGHBORS, fitted_hparams
from bench.models import log_cell_model
from bench.provenance import device_name, git_commit, package_versions
from bench.records import RecordStore, new_record
from bench.tracking import Tracker
from bench.training import configure_torch, fit, predict, split_train_val
from bench.tuning import apply_params, budget_params


@dataclass
class CellOutcome:
    cell: Cell
    metrics: dict[str, float]
    run_id: str
    skipped: bool = False
    extra: dict = field(default_factory=dict)
    record: dict | None = None  # the run record written (None when skipped)


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


def _skip_if_finished(cell: Cell, key: str, tracker: Tracker, records: RecordStore) -> CellOutcome | None:
    """The outcome of an already finished cell: its FINISHED MLflow run, else its record
    (imported into MLflow so the UI and later look-ups see it); None when it must run."""
    from bench.records.mlflow_sync import ensure_recorded, import_record

    done = tracker.finished_run(key)
    if done is not None:
        ensure_recorded(tracker, done, records)  # finished where this results folder did not see it
        return CellOutcome(cell, dict(done.data.metrics), done.info.run_id, skipped=True)
    record = records.find(cell.task, cell.architecture, key)
    if record is None:
        return None

    run_id = import_record(tracker, record)
    return CellOutcome(cell, dict(record["metrics"]), run_id, skipped=True, extra={"from_record": True})


def run_cell(cell: Cell, cfg: GridConfig, data, graphs: list[Data] | None, tracker: Tracker,
             progress: bool = True, tuned=None, parent_run_id: str | None = None,
             records: RecordStore | None = None) -> CellOutcome:
    """Run (or skip, when already finished) one cell, log it to ``tracker`` and append its record.

    ``tuned`` (a :class:`bench.tuning.StudyResult`) gives the parameters found by the fold's
    study; the cell then trains with them on the whole training fold (``graphs`` must be
    built with the tuned cutoff and cap), while its key stays that of ``cfg``. ``records``
    defaults to the experiment's store under ``$BENCH_RESULTS`` or ``results/``. The record is
    written before the MLflow run ends FINISHED: a cell MLflow calls finished always has one.
    """
    records = records or RecordStore.for_experiment(cfg.experiment)
    settings, config_hash, key = cell_identity(cell, cfg, data.sha256)
    cfg = cfg.for_task(cell.task)  # the task's own epoch cap and patience (budget_for), if it has them
    skipped = _skip_if_finished(cell, key, tracker, records)
    if skipped is not None:
        return skipped
    keyed, logged_settings, effective = settings, settings, None
    threads = effective_threads(cfg)
    if tuned is not None:
        cfg = apply_params(cfg, cell.architecture, tuned.params)
        effective = cell_settings(cell, cfg.model_copy(update={"tune": type(cfg.tune)()}))
        logged_settings = {**settings, "tuned_params": tuned.params, "effective": effective}
        settings = effective
    # the cell trains with the thread count its key names (see bench.cells.effective_threads)
    train_cfg = cfg.train.model_copy(update={"num_threads": threads})

    fold = data.folds[cell.fold]
    test_ids = [data.ids[i] for i in fold.test]
    y_test = data.targets[fold.test]
    device = configure_torch(threads, cfg.train.device)  # every path sets the threads its key names
    tags = _base_tags(cell, data, cfg, config_hash, key)
    tags["kind"] = "cell"
    tags["threads"] = threads
    preset = cfg.preset_for(cell.architecture)
    if preset is not None:
        tags["preset"] = preset
    tags.update({"worker_host": socket.gethostname(), "worker_pid": os.getpid()})
    tuning = None
    if tuned is not None:
        tags.update({"optuna_study": tuned.study_name, "optuna_trial": tuned.best_trial})
        tuning = {"study": tuned.study_name, "trial": tuned.best_trial, "params": tuned.params,
                  "n_complete": tuned.n_complete, "n_pruned": tuned.n_pruned, "best_inner_val_score": tuned.best_value}
    params = {"architecture": cell.architecture, "variant": cell.variant, "fold": cell.fold, "seed": cell.seed,
              "n_train_fold": len(fold.train), "n_test": len(fold.test)}
    if cell.architecture != DUMMY:
        params.update({f"hp.{k}": v for k, v in settings["hparams"].items()})
        params.update({f"train.{k}": v for k, v in train_cfg.model_dump().items()})
        params.update({"cutoff": cfg.graph.cutoff, "max_neighbors": cfg.graph.max_neighbors})
        params.update(budget_params(cfg))
        if tuned is not None:
            params.update({"tune.n_complete": tuned.n_complete, "tune.n_pruned": tuned.n_pruned,
                           "tune.best_inner_val_score": tuned.best_value})

    start = time.perf_counter()
    result = None
    with tracker.run(cell.run_name(), tags, params, parent_run_id) as log:
        log.log_dict(logged_settings, "config.json")
        if cell.architecture == DUMMY:
            y_pred = dummy_predictions(data.problem_type, data.targets[fold.train], len(fold.test))
            extra: dict[str, float] = {}
        else:
            if graphs is None:
                raise ValueError(f"{cell.label()}: graphs are required for a model cell")
            train_idx, val_idx = split_train_val(fold.train, cfg.train.val_fraction, cell.seed,
                                                 getattr(data, "groups", None))
            train_graphs = take_graphs(graphs, train_idx)
            # message normalisation (avg_neighbors) fitted on the training graphs only
            hparams = fitted_hparams(cell.architecture, settings["hparams"], train_graphs,
                                     fixed=cfg.hparams.get(cell.architecture, {}))
            result = fit(
                cell.architecture, hparams,
                train_graphs, data.targets[train_idx],
                take_graphs(graphs, val_idx), data.targets[val_idx],
                data.problem_type, train_cfg, cell.seed,
                on_epoch=lambda epoch, m: log.log_metrics(m, step=epoch),
                progress=progress, desc=cell.label(),
            )
            log_cell_model(log, cell, cfg, hparams, result, data)  # best epoch: bench predict
            y_pred = predict(result.model, take_graphs(graphs, fold.test), result.scaler, data.problem_type,
                             cfg.train.batch_size, device)
            extra = {"n_params": result.n_params, "best_epoch": result.best_epoch, "best_val_score": result.best_val,
                     "epochs_run": len(result.history), "train_structures_per_s": result.structures_per_second,
                     "n_train": len(train_idx), "n_val": len(val_idx),
                     **({"fitted_avg_neighbors": hparams[AVG_NEIGHBORS]} if AVG_NEIGHBORS in hparams else {})}
        # after fit: it names the threads the cell trained with; a dummy cell runs no model
        device_label = device_name(device) if cell.architecture != DUMMY else "none"
        log.set_tags({"device": device_label, "stopped_early": bool(result and result.stopped_early)})
        metrics = {f"test_{k}": v for k, v in evaluate(data.problem_type, y_test, y_pred).items()}
        metrics.update(_record_matbench(data, cell.fold, y_pred))
        metrics.update(extra)
        metrics["wall_time_s"] = time.perf_counter() - start
        log.log_text(_predictions_csv(test_ids, y_test, y_pred), "predictions.csv")
        log.log_metrics(metrics)
        record = new_record(
            cell=cell, cell_key=key, config_hash=config_hash, settings=keyed,
            data=data, metrics=metrics, ids=test_ids, y_true=y_test, y_pred=y_pred, device=device_label,
            threads=threads, git_commit=git_commit(), versions=package_versions(), wall_time_s=metrics["wall_time_s"],
            history=result.history if result else None, stopped_early=bool(result and result.stopped_early),
            best_epoch=result.best_epoch if result else None, n_params=result.n_params if result else None,
            preset=preset, effective=effective, tuning=tuning, mlflow_run_id=log.run_id)
        records.append(record)
        run_id = log.run_id
    return CellOutcome(cell, metrics, run_id, record=record)


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

