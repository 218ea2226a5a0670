"""Records and a live MLflow store kept in step: records into MLflow, and back.

The runner resumes from MLflow (a FINISHED run with the cell's key) and the UI shows MLflow;
on a machine whose store lacks some committed cells (a fresh clone, another machine of the
grid), :func:`import_records` creates one FINISHED run per missing record, with the same
tags, final metrics, per-epoch history, ``predictions.csv`` and ``config.json`` a run of
:func:`bench.cell.run_cell` has, tagged ``bench.source=record``. Not
``mlflow-export-import``: it moves MLflow's own export format between stores, while these
records are this project's own committed format. The other way, :func:`record_from_run`
rebuilds the record of a FINISHED cell run that has none (a cell finished by a worker whose
disk is elsewhere, or into another results folder), so every finished cell ends up recorded.
"""
from __future__ import annotations

import datetime
import io
import os
import json
import tempfile
from pathlib import Path
from collections.abc import Iterable

import pandas as pd
from mlflow.entities import Metric, RunStatus
from mlflow.utils.time import get_current_time_millis

from bench.cells import Cell
from bench.records.build import jsonable
from bench.records.store import SCHEMA
from bench.tracking import TAG_PREFIX, RunLogger, Tracker

_BATCH = 1000  # MLflow's limit of metrics per log_batch
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per artifact otherwise


def record_tags(record: dict) -> dict[str, str]:
    """The ``bench.*`` tags (without prefix) of a cell run, as :func:`bench.cell.run_cell` sets them."""
    tags = {k: record[k] for k in ("task", "fold", "architecture", "variant", "seed", "cell_key", "config_hash",
                                    "dataset_sha256", "data_verification", "git_commit", "problem_type", "device")}
    tags["unverified_data"] = record["data_verification"] == "UNVERIFIED"
    tags["kind"] = "cell"
    tags.update({k: record[k] for k in ("threads", "stopped_early", "preset") if record.get(k) is not None})
    tags.update({f"version.{k}": v for k, v in record.get("versions", {}).items()})
    tuning = record.get("tuning") or {}
    if tuning:
        tags.update({"optuna_study": tuning.get("study"), "optuna_trial": tuning.get("trial")})
    return {k: str(v) for k, v in tags.items()}


def predictions_csv(record: dict) -> str:
    p = record["predictions"]
    buf = io.StringIO()
    pd.DataFrame({"id": p["id"], "y_true": p["y_true"], "y_pred": p["y_pred"]}).to_csv(buf, index=False)
    return buf.getvalue()


def import_record(tracker: Tracker, record: dict) -> str:
    """One FINISHED MLflow run holding ``record``; returns its run id."""
    cell = Cell(record["task"], record["fold"], record["architecture"], record["variant"], record["seed"])
    tags = {f"{TAG_PREFIX}{k}": v for k, v in record_tags(record).items()}
    tags[f"{TAG_PREFIX}source"] = "record"
    run = tracker.client.create_run(tracker.experiment_id, run_name=cell.run_name(), tags=tags)
    run_id = run.info.run_id
    try:
        settings = record.get("settings", {})
        params = {"architecture": cell.architecture, "variant": cell.variant, "fold": cell.fold, "seed": cell.seed}
        params.update({f"hp.{k}": v for k, v in settings.get("hparams", {}).items()})
        logger = RunLogger(tracker.client, run_id)
        logger.log_params(params)
        now = get_current_time_millis()
        metrics = [Metric(k, float(v), now, 0) for k, v in record.get("metrics", {}).items()]
        for name, values in (record.get("history") or {}).items():
            metrics += [Metric(name, float(v), now, step) for step, v in enumerate(values)]
        for start in range(0, len(metrics), _BATCH):
            tracker.client.log_batch(run_id, metrics=metrics[start:start + _BATCH])
        logged = {**settings, **({"effective": record["effective"]} if "effective" in record else {})}
        logger.log_dict(logged, "config.json")
        logger.log_text(predictions_csv(record), "predictions.csv")
        tracker.client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FINISHED))
    except BaseException:
        tracker.client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FAILED))
        raise
    return run_id


def ensure_recorded(tracker: Tracker, run, records) -> bool:
    """Append the record of the FINISHED cell ``run`` to ``records`` unless it is there; True if written."""
    tags = run.data.tags
    task, arch, key = (tags[f"{TAG_PREFIX}{k}"] for k in ("task", "architecture", "cell_key"))
    if records.find(task, arch, key) is not None:
        return False
    return records.append(record_from_run(tracker, run))


def finished_keys(tracker: Tracker) -> set[str]:
    """Cell keys with a FINISHED run in the tracker's experiment (one search)."""
    runs = tracker.search("attributes.status = 'FINISHED'")
    return {r.data.tags[f"{TAG_PREFIX}cell_key"] for r in runs if f"{TAG_PREFIX}cell_key" in r.data.tags}


def import_records(tracker: Tracker, records: Iterable[dict], claims=None) -> list[str]:
    """Import every record whose cell key has no FINISHED run; returns the imported keys.

    With a :class:`bench.claims.ClaimStore`, concurrent processes import each record once:
    the import is claimed under ``import:<key>`` and the store is checked again inside.
    """
    done = finished_keys(tracker)
    imported = []
    for record in records:
        key = record["cell_key"]
        if key in done:
            continue
        if claims is None:
            import_record(tracker, record)
            imported.append(key)
            continue
        with claims.claim(f"import:{key}") as mine:
            if mine and tracker.finished_run(key) is None:
                import_record(tracker, record)
                imported.append(key)
    return imported



def _artifact(tracker: Tracker, run_id: str, name: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return Path(tracker.client.download_artifacts(run_id, name, tmp)).read_text()


def record_from_run(tracker: Tracker, run) -> dict:
    """The record of a FINISHED cell run of MLflow (the inverse of :func:`import_record`)."""
    tags = {k[len(TAG_PREFIX):]: v for k, v in run.data.tags.items() if k.startswith(TAG_PREFIX)}
    run_id = run.info.run_id
    logged = json.loads(_artifact(tracker, run_id, "config.json"))
    effective = logged.pop("effective", None)
    tuned_params = logged.pop("tuned_params", None)
    preds = pd.read_csv(io.StringIO(_artifact(tracker, run_id, "predictions.csv")), dtype={"id": str},
                        float_precision="round_trip")  # the exact floats that were logged
    history = {name: [m.value for m in sorted(tracker.client.get_metric_history(run_id, name), key=lambda m: m.step)]
               for name in ("train_loss", "val_score", "lr")}
    history = {k: v for k, v in history.items() if v}
    metrics = dict(run.data.metrics)
    for name in history:  # the final metrics, not the last epoch's values MLflow lists beside them
        metrics.pop(name, None)
    epochs = len(history.get("val_score", []))
    budget = logged.get("train", {}).get("epochs")
    finished = datetime.datetime.fromtimestamp((run.info.end_time or 0) / 1000, datetime.timezone.utc)
    record = {
        "schema": SCHEMA, "kind": "cell", "cell_key": tags["cell_key"], "config_hash": tags["config_hash"],
        "task": tags["task"], "fold": int(tags["fold"]), "architecture": tags["architecture"],
        "variant": tags["variant"], "seed": int(tags["seed"]), "settings": logged,
        "dataset_sha256": tags["dataset_sha256"], "data_verification": tags.get("data_verification", ""),
        "problem_type": tags.get("problem_type", ""), "git_commit": tags.get("git_commit", ""),
        "versions": {k[len("version."):]: v for k, v in tags.items() if k.startswith("version.")},
        "device": tags.get("device", ""), "threads": int(tags["threads"]) if "threads" in tags else logged.get("threads"),
        "preset": tags.get("preset", logged.get("preset")), "history": history, "epochs_run": epochs,
        # runs from before the tag: patience ended a run that stopped short of its budget
        "stopped_early": tags["stopped_early"] == "True" if "stopped_early" in tags else
        bool(budget and epochs and epochs < budget),
        "best_epoch": int(metrics["best_epoch"]) if "best_epoch" in metrics else None,
        "n_params": int(metrics["n_params"]) if "n_params" in metrics else None,
        "wall_time_s": metrics.get("wall_time_s"), "metrics": metrics,
        "predictions": {"id": preds["id"].tolist(), "y_true": preds["y_true"].tolist(),
                        "y_pred": preds["y_pred"].tolist()},
        "finished_at": finished.strftime("%Y-%m-%dT%H:%M:%SZ"), "mlflow_run_id": run_id,
    }
    if effective is not None:
        record["effective"] = effective
    if "optuna_study" in tags:
        record["tuning"] = {"study": tags["optuna_study"], "trial": tags.get("optuna_trial"), "params": tuned_params,
                            "n_complete": run.data.params.get("tune.n_complete"),
                            "n_pruned": run.data.params.get("tune.n_pruned")}
    return jsonable(record)
