"""Run one unit of a grid (one fold of one task x architecture x variant, all its seeds).

What every executor calls in its workers (:mod:`bench.executors`); below it are only the
cell runner (:mod:`bench.cell`), tuning, graphs and the stores.
"""
from __future__ import annotations

import numpy as np

from bench.cell import CellOutcome, run_cell
from bench.cells import DUMMY, Cell, Unit, cell_identity, load_task, parent_key, parent_name
from bench.config import GridConfig
from bench.claims import ClaimStore
from bench.graphs import build_task_graphs
from bench.lifecycle import run_claimed
from bench.records import RecordStore
from bench.tracking import RunLogger, Tracker

#: Metrics whose fold means and standard deviations the parent run of (task, architecture, variant) carries.
PARENT_METRICS = ("test_mae", "test_rmse", "test_mae_over_mad", "test_roc_auc", "test_balanced_accuracy",
                  "best_val_score", "wall_time_s")


def run_unit(unit: Unit, cfg: GridConfig, tracking_uri: str | None, storage: str, progress: bool = False,
             results_dir=None) -> list[CellOutcome]:
    """Run one unit in this process. Each final cell is claimed first (see :mod:`bench.claims`),
    so concurrent workers never run the same cell; a cell claimed by a live worker is left to it.
    Records go to ``results_dir`` (default ``$BENCH_RESULTS`` or ``results/``)."""
    from bench.tuning import TrainingView, apply_params, run_study, study_name

    data = load_task(unit.task, cfg)
    tracker = Tracker(cfg.experiment, tracking_uri)
    records = RecordStore.for_experiment(cfg.experiment, results_dir)
    claims = ClaimStore(storage)
    idents = {c: cell_identity(c, cfg, data.sha256) for c in unit.cells()}
    finished = {c: tracker.finished_run(key) for c, (_, _, key) in idents.items()}
    if all(run is not None for run in finished.values()):  # resume: nothing to do, no study reopened
        from bench.records.mlflow_sync import ensure_recorded

        for run in finished.values():
            ensure_recorded(tracker, run, records)
        return [CellOutcome(c, dict(r.data.metrics), r.info.run_id, skipped=True) for c, r in finished.items()]
    if all(run is not None or records.find(c.task, c.architecture, idents[c][2]) is not None
           for c, run in finished.items()):  # recorded elsewhere: import, no study reopened
        return [run_cell(c, cfg, data, None, tracker, progress, records=records) for c in unit.cells()]
    if unit.architecture == DUMMY:
        return [_claimed(c, idents[c][2], claims, tracker,
                         lambda c=c: run_cell(c, cfg, data, None, tracker, progress, records=records))
                for c in unit.cells()]
    pkey = parent_key(unit.task, unit.architecture, unit.variant, cfg, data.sha256)
    parent = tracker.parent_run(pkey, parent_name(unit.task, unit.architecture, unit.variant),
                                {"task": unit.task, "architecture": unit.architecture, "variant": unit.variant,
                                 "dataset_sha256": data.sha256, "tune_n_trials": cfg.tune.n_trials}, claims)
    tuned, run_cfg = None, cfg
    if cfg.tune.enabled:
        name = study_name(cfg.experiment, unit.task, unit.architecture, unit.variant, unit.fold,
                          idents[unit.cells()[0]][1])
        tuned = run_study(TrainingView.of(data, unit.fold), unit.architecture, unit.variant, cfg.for_task(unit.task),
                          storage, tracker, name, parent, progress)
        run_cfg = apply_params(cfg, unit.architecture, tuned.params)
    graphs = build_task_graphs(data.structures, data.ids, unit.variant, run_cfg.graph.cutoff,
                               run_cfg.graph.max_neighbors, data.sha256, progress=progress)
    outcomes = [_claimed(c, idents[c][2], claims, tracker,
                         lambda c=c: run_cell(c, cfg, data, graphs, tracker, progress, tuned, parent, records))
                for c in unit.cells()]
    update_parent(tracker, parent, cfg, unit, data.sha256)
    return outcomes


def _claimed(cell: Cell, key: str, claims, tracker: Tracker, work) -> CellOutcome:
    # claim (taking over a dead worker's claim at once), close its orphan run, honour Ctrl-C
    return run_claimed(cell, key, claims, tracker, work)


def fold_summary(runs: list[tuple[int, dict[str, float]]], names=PARENT_METRICS) -> dict[str, float]:
    """``{m_mean, m_std, n_folds}`` over folds of ``(fold, metrics)`` pairs: seeds are averaged
    within a fold first (the fold is the unit), std with ddof=1 (0 for one fold)."""
    out: dict[str, float] = {}
    folds = sorted({f for f, _ in runs})
    for name in names:
        per_fold = [np.mean([m[name] for f, m in runs if f == fold and name in m]) for fold in folds
                    if any(name in m for f, m in runs if f == fold)]
        if per_fold:
            out[f"{name}_mean"] = float(np.mean(per_fold))
            out[f"{name}_std"] = float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else 0.0
    out["n_folds"] = float(len(folds))
    return out


def update_parent(tracker: Tracker, parent: str, cfg: GridConfig, unit: Unit, sha: str) -> None:
    """Log the fold means ± std of the main metrics on the parent run (step = folds done so far),
    and finish it once every fold and seed of (task, architecture, variant) is finished."""
    cells = [Cell(unit.task, f, unit.architecture, unit.variant, s)
             for f in cfg.folds for s in cfg.cell_seeds(unit.task, unit.architecture)]
    found = [(c.fold, tracker.finished_run(cell_identity(c, cfg, sha)[2])) for c in cells]
    runs = [(fold, dict(run.data.metrics)) for fold, run in found if run is not None]
    if runs:
        summary = fold_summary(runs)
        RunLogger(tracker.client, parent).log_metrics(summary, step=int(summary["n_folds"]))
    if len(runs) == len(cells):
        tracker.finish_parent(parent)
