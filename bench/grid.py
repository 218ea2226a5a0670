"""Run a grid of cells (tasks x architectures x variants x folds x seeds).

Planning (cells, units, keys) lives in :mod:`bench.cells`, one unit's work in
:mod:`bench.unit`, where units run in :mod:`bench.executors`; tables and reports are in
:mod:`bench.report` and read the run records, never this module.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

from bench import defaults, interrupts
from bench.cell import CellOutcome, log_summary
from bench.cells import (DUMMY, NO_VARIANT, Cell, Unit, cell_identity, dummy_cells, grid_cells,  # noqa: F401
                         grid_units, load_task, model_cells, parent_key)
from bench.claims import ClaimStore
from bench.config import GridConfig, GridError
from bench.eta import BAR_FORMAT, GridETA
from bench.graphs import build_task_graphs
from bench.lifecycle import end_of_grid
from bench.records import RecordStore, results_root
from bench.tracking import Tracker
from bench.unit import run_unit  # noqa: F401 (the entry point of one unit, re-exported)


@contextmanager
def _results_env(results_dir: Path):
    """``$BENCH_RESULTS`` set for the duration of a grid: spawned workers inherit it and append
    their records where this process reads them."""
    old = os.environ.get("BENCH_RESULTS")
    os.environ["BENCH_RESULTS"] = str(results_dir)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("BENCH_RESULTS", None)
        else:
            os.environ["BENCH_RESULTS"] = old


def sync_records(cfg: GridConfig, tracker: Tracker, records: RecordStore, storage: str) -> int:
    """Import the grid's committed records that the MLflow store lacks; returns how many."""
    from bench.records.mlflow_sync import import_records

    recorded = records.load()
    if not len(recorded):
        return 0
    keys = set()
    for task in cfg.tasks:
        sha = load_task(task, cfg).sha256
        keys |= {cell_identity(c, cfg, sha)[2] for c in grid_cells(cfg, task)}
    wanted = [recorded.get(k) for k in sorted(keys) if k in recorded]
    return len(import_records(tracker, wanted, ClaimStore(storage)))


def _unfinished_graph_sets(cfg: GridConfig, tracker: Tracker) -> list[tuple[str, str]]:
    """(task, variant) pairs with a model cell that is not finished: only their graphs are needed."""
    from bench.records.mlflow_sync import finished_keys

    done = finished_keys(tracker)
    out = []
    for task in cfg.tasks:
        sha = load_task(task, cfg).sha256
        out += [(task, v) for v in cfg.all_variants
                if any(cell_identity(c, cfg, sha)[2] not in done for c in model_cells(cfg, task, v))]
    return out


def run_grid(cfg: GridConfig, tracking_uri: str | None = None, progress: bool = True,
             storage: str | None = None, results_dir: Path | None = None) -> list[CellOutcome]:
    """Run every unfinished cell of ``cfg`` through its executor; finished ones are skipped (resume).

    Finished means a FINISHED MLflow run or a run record under ``results_dir/<experiment>/runs/``
    (records the store lacks are imported first). Every cell that finishes appends its record.
    """
    from bench.executors import run_units

    cfg.validate_names()
    storage = storage or defaults.optuna_storage(tracking_uri)
    root = results_root(results_dir).resolve()
    records = RecordStore.for_experiment(cfg.experiment, root)
    tracker = Tracker(cfg.experiment, tracking_uri)  # create the experiment once, before workers race to
    imported = sync_records(cfg, tracker, records, storage)
    if imported and progress:
        tqdm.write(f"imported {imported} recorded cell(s) from {records.root.name}/ into MLflow")
    units = grid_units(cfg)
    for task, variant in _unfinished_graph_sets(cfg, tracker):  # built once, before workers start
        data = load_task(task, cfg)
        build_task_graphs(data.structures, data.ids, variant, cfg.graph.cutoff, cfg.graph.max_neighbors,
                          data.sha256, progress=progress)
    loaded = {task: load_task(task, cfg) for task in cfg.tasks}
    cells, groups = _grid_keys(cfg, loaded)
    eta = GridETA.for_grid(cfg, cells.values(), loaded, tracker, cfg.executor.workers or os.cpu_count() or 1)
    outcomes: list[CellOutcome] = []
    failed: dict[str, str] = {}
    with _results_env(root), tqdm(total=sum(len(u.seeds) for u in units), desc=f"grid {cfg.experiment}",
                                  unit="cell", disable=not progress, dynamic_ncols=True, bar_format=BAR_FORMAT,
                                  postfix=eta.text()) as bar:
        for unit, result in run_units(units, cfg, tracking_uri, storage, progress):
            if isinstance(result, interrupts.Interrupted):
                continue
            if isinstance(result, BaseException):
                failed[unit.label()] = f"{type(result).__name__}: {result}"
                tqdm.write(f"{unit.label()}: FAILED: {type(result).__name__}: {result}")
                continue
            for outcome in result:
                if outcome.extra.get("interrupted"):
                    continue
                if outcome.record is not None:  # a worker on another machine (Ray) wrote its own disk
                    records.append(outcome.record)
                if outcome.extra.get("claimed_elsewhere"):
                    tqdm.write(f"{outcome.cell.label()}: running in another worker")
                elif outcome.cell.architecture != DUMMY:
                    log_summary(outcome, _unit(unit.task))
                outcomes.append(outcome)
                eta.finished(outcome.cell.task, outcome.cell.architecture,
                             None if outcome.skipped else outcome.metrics.get("wall_time_s"))
                bar.set_postfix_str(eta.text(), refresh=False)
                bar.update()
    # every cell is now done, running in a live worker elsewhere, or lost (and then said why)
    end = end_of_grid(cells, groups, tracker, ClaimStore(storage), failed, interrupts.stop_requested())
    if end.running or end.lost:
        tqdm.write(end.summary())
    if interrupts.stop_requested():
        raise interrupts.GridInterrupted(f"{len(end.lost)} cell(s) not run")
    if failed or end.lost:
        raise GridError(f"{len(failed)} unit(s) failed, {len(end.lost)} cell(s) not done (rerun to retry them; "
                        "finished cells are kept):\n  " + "\n  ".join(
                            [f"{u}: {e}" for u, e in failed.items()]
                            + [f"{c.label()}: {why}" for c, why in end.lost.items()
                               if c.label().rsplit("|", 1)[0] not in failed]))
    return outcomes


def _unit(task: str) -> str:
    import tasks

    return tasks.get_task(task).unit


def _grid_keys(cfg: GridConfig, loaded: dict) -> tuple[dict[str, Cell], dict[str, list[str]]]:
    """(cell key -> cell, parent key -> its cells' keys) of every cell of ``cfg``."""
    cells: dict[str, Cell] = {}
    groups: dict[str, list[str]] = {}
    for task in cfg.tasks:
        sha = loaded[task].sha256
        for cell in grid_cells(cfg, task):
            key = cell_identity(cell, cfg, sha)[2]
            cells[key] = cell
            if cell.architecture != DUMMY:
                groups.setdefault(parent_key(task, cell.architecture, cell.variant, cfg, sha), []).append(key)
    return cells, groups
