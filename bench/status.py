"""``bench status``: every cell of a grid as done / running / failed / pending.

Read from the stores only (run records, MLflow runs by cell key, live claims in the Optuna
storage, study progress), so it works from any machine while workers run elsewhere. A cell
is done when MLflow has a FINISHED run of its key or the grid's records hold its key (a
fresh clone without an MLflow store counts the committed cells as done).
"""
from __future__ import annotations

import json
from collections import Counter

import pandas as pd
from mlflow.entities import RunStatus

from bench.cells import DUMMY, cell_identity, grid_cells, load_task
from bench.claims import ClaimStore
from bench.config import GridConfig
from bench.records import RecordStore
from bench.tracking import TAG_PREFIX, Tracker

STATES = ("done", "running", "failed", "pending")


def _study_progress(name: str, storage: str) -> str:
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return ""
    from bench.tuning import SURPLUS

    trials = study.get_trials(deepcopy=False)
    counts = Counter(t.state.name for t in trials if not t.user_attrs.get(SURPLUS))
    surplus = sum(bool(t.user_attrs.get(SURPLUS)) for t in trials)
    return f"study: {counts.get('COMPLETE', 0)} complete, {counts.get('PRUNED', 0)} pruned, " \
           f"{counts.get('RUNNING', 0)} running, {counts.get('FAIL', 0)} failed" + \
           (f" ({surplus} surplus, not counted)" if surplus else "")


COLUMNS = ["task", "architecture", "variant", "fold", "seed", "state", "run_id", "detail"]


def grid_status(cfg: GridConfig, tracking_uri: str | None, storage: str, results_dir=None) -> pd.DataFrame:
    """One row per cell: task, architecture, variant, fold, seed, state, run_id, detail.

    Records are read from ``results_dir/<experiment>/runs/`` (default ``results/``)."""
    from bench.tuning import study_name

    cfg.validate_names()
    tracker = Tracker(cfg.experiment, tracking_uri)
    by_key: dict[str, list] = {}
    for run in tracker.search():
        key = run.data.tags.get(f"{TAG_PREFIX}cell_key")
        if key:
            by_key.setdefault(key, []).append(run)
    live = ClaimStore(storage).live_claims()
    recorded = RecordStore.for_experiment(cfg.experiment, results_dir).load()
    rows = []
    for task in cfg.tasks:
        data = load_task(task, cfg)
        for cell in grid_cells(cfg, task):
            _, config_hash, key = cell_identity(cell, cfg, data.sha256)
            runs = sorted(by_key.get(key, []), key=lambda r: r.info.start_time)
            statuses = [r.info.status for r in runs]
            run_id, detail = "", ""
            if RunStatus.to_string(RunStatus.FINISHED) in statuses:
                state = "done"
                run_id = runs[statuses.index("FINISHED")].info.run_id
            elif key in recorded:
                state, detail = "done", "record only (not in this MLflow store)"
            elif key in live or (statuses and statuses[-1] == "RUNNING"):
                state = "running"
                run_id = runs[-1].info.run_id if runs else ""
                detail = f"worker {live[key]}" if key in live else "no live claim"
            elif statuses:
                state = "failed"
                run_id = runs[-1].info.run_id
                detail = f"{len(runs)} attempt(s), last {statuses[-1]}"
            else:
                state = "pending"
            if state != "done" and cfg.tune.enabled and cell.architecture != DUMMY:
                name = study_name(cfg.experiment, task, cell.architecture, cell.variant, cell.fold, config_hash)
                detail = "; ".join(x for x in (detail, _study_progress(name, storage)) if x)
            rows.append({"task": task, "architecture": cell.architecture, "variant": cell.variant, "fold": cell.fold,
                         "seed": cell.seed, "state": state, "run_id": run_id, "detail": detail})
    return pd.DataFrame(rows, columns=COLUMNS)


def format_status(frame: pd.DataFrame) -> str:
    lines = [f"{r.state:<8} {r.task}|{r.architecture}|{r.variant}|fold{r.fold}|seed{r.seed}"
             + (f"  ({r.detail})" if r.detail else "") for r in frame.itertuples()]
    counts = Counter(frame["state"]) if not frame.empty else Counter()
    lines.append(" | ".join(f"{s} {counts.get(s, 0)}" for s in STATES) + f" | total {len(frame)}")
    return "\n".join(lines)


def status_json(frame: pd.DataFrame) -> str:
    """``{"cells": [{name, state, task, architecture, variant, fold, seed, run_id, detail}, ...],
    "summary": {done, running, failed, pending, total}}`` as indented JSON."""
    cells = [{"name": f"{r.task}|{r.architecture}|{r.variant}|fold{r.fold}|seed{r.seed}", "state": r.state,
              "task": r.task, "architecture": r.architecture, "variant": r.variant, "fold": int(r.fold),
              "seed": int(r.seed), "run_id": r.run_id, "detail": r.detail} for r in frame.itertuples()]
    counts = Counter(frame["state"]) if not frame.empty else Counter()
    summary = {s: counts.get(s, 0) for s in STATES} | {"total": len(frame)}
    return json.dumps({"cells": cells, "summary": summary}, indent=1)
