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

from bench import defaults
from bench.cell import CellOutcome, log_summary
from bench.cells import (DUMMY, NO_VARIANT, Cell, Unit, cell_identity, dummy_cells, grid_cells,  # noqa: F401
                         grid_units, load_task, model_cells, parent_key)
from bench.config import GridConfig, GridError
from bench.graphs import build_task_graphs
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
    from bench.claims import ClaimStore
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
        out += [(task, v) for v in cfg.variants
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
    outcomes: list[CellOutcome] = []
    failed: list[str] = []
    with _results_env(root), tqdm(total=sum(len(u.seeds) for u in units), desc=f"grid {cfg.experiment}",
                                  unit="cell", disable=not progress, dynamic_ncols=True) as bar:
        for unit, result in run_units(units, cfg, tracking_uri, storage, progress):
            if isinstance(result, BaseException):
                failed.append(f"{unit.label()}: {type(result).__name__}: {result}")
                tqdm.write(f"{unit.label()}: FAILED: {type(result).__name__}: {result}")
                continue
            for outcome in result:
                if outcome.record is not None:  # a worker on another machine (Ray) wrote its own disk
                    records.append(outcome.record)
                if outcome.extra.get("claimed_elsewhere"):
                    tqdm.write(f"{outcome.cell.label()}: running in another worker")
                elif outcome.cell.architecture != DUMMY:
                    log_summary(outcome, _unit(unit.task))
                outcomes.append(outcome)
                bar.update()
    if failed:
        raise GridError(f"{len(failed)} unit(s) failed (rerun to retry them; finished cells are kept):\n  "
                        + "\n  ".join(failed))
    return outcomes


def _unit(task: str) -> str:
    import tasks

    return tasks.get_task(task).unit
