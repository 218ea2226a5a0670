"""The content of one run record (schema 1), built by the runner as a cell finishes.

A record holds everything needed to regenerate the reports and to audit the cell:

- identity: ``task, fold, architecture, variant, seed, cell_key, config_hash, kind``;
- ``settings``: what the key hashes (resolved hyperparameters, graph settings, training
  budget, threads, device type, code fingerprint and versions, tuning budget); for a tuned
  cell also ``effective`` (the settings it trained with) and ``tuning`` (study, trial,
  trial counts, best inner validation score);
- provenance: ``dataset_sha256, data_verification, problem_type, git_commit, versions``
  (packages), ``device`` (e.g. ``cpu:x86_64x1threads``), ``threads``, ``preset``;
- training: ``history`` (per epoch, columns ``train_loss``, ``val_score``, ``lr``),
  ``epochs_run``, ``stopped_early``, ``best_epoch``, ``n_params``, ``wall_time_s``;
- ``metrics``: the final metrics as logged to MLflow (``test_*``, ``matbench_*``, ...);
- ``predictions``: columns ``id, y_true, y_pred`` of the test fold, in its order;
- ``finished_at`` (UTC, seconds) and ``mlflow_run_id`` (of the machine that ran it).
"""
from __future__ import annotations

import datetime
import math
from typing import Any

import numpy as np

from bench.records.store import SCHEMA


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return value


def history_columns(history: list[dict[str, float]]) -> dict[str, list[float]]:
    """``[{train_loss, val_score, lr}, ...]`` (one dict per epoch) -> one list per metric."""
    names = sorted({k for epoch in history for k in epoch})
    return {name: [float(epoch.get(name, math.nan)) for epoch in history] for name in names}


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_record(*, cell, cell_key: str, config_hash: str, settings: dict, data, metrics: dict[str, float],
               ids: list[str], y_true, y_pred, device: str, threads: int, git_commit: str,
               versions: dict[str, str], wall_time_s: float, history: list[dict[str, float]] | None = None,
               stopped_early: bool = False, best_epoch: int | None = None, n_params: int | None = None,
               preset: str | None = None, effective: dict | None = None, tuning: dict | None = None,
               mlflow_run_id: str = "") -> dict:
    """A record of a finished cell (see the module docstring); JSON-ready."""
    record = {
        "schema": SCHEMA, "kind": "cell", "cell_key": cell_key, "config_hash": config_hash,
        "task": cell.task, "fold": cell.fold, "architecture": cell.architecture, "variant": cell.variant,
        "seed": cell.seed, "settings": settings,
        "dataset_sha256": data.sha256, "data_verification": data.verification, "problem_type": data.problem_type,
        "git_commit": git_commit, "versions": versions, "device": device, "threads": threads, "preset": preset,
        "history": history_columns(history or []), "epochs_run": len(history or []),
        "stopped_early": bool(stopped_early), "best_epoch": best_epoch, "n_params": n_params,
        "wall_time_s": wall_time_s, "metrics": metrics,
        "predictions": {"id": [str(i) for i in ids], "y_true": np.asarray(y_true, dtype=float),
                        "y_pred": np.asarray(y_pred, dtype=float)},
        "finished_at": now_utc(), "mlflow_run_id": mlflow_run_id,
    }
    if effective is not None:
        record["effective"] = effective
    if tuning is not None:
        record["tuning"] = tuning
    return jsonable(record)
