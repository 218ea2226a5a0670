"""Run a grid of cells (tasks x architectures x variants x folds x seeds) and tabulate it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from bench import defaults
from bench.cell import (DUMMY, NO_VARIANT, Cell, CellOutcome, cell_identity, cell_settings, log_summary,
                        run_cell)
from bench.config import GridConfig, GridError, stable_hash
from bench.graphs import build_task_graphs
from bench.tracking import Tracker


def load_task(name: str, cfg: GridConfig):
    import tasks
    from tasks.user import register_task_files

    register_task_files(cfg.task_files)  # a worker process registers the grid's user tasks too
    return tasks.get_task(name).load(allow_unverified=cfg.allow_unverified_data)


def model_cells(cfg: GridConfig, task: str, variant: str) -> list[Cell]:
    return [Cell(task, fold, arch, variant, seed)
            for arch in cfg.architectures for fold in cfg.folds for seed in cfg.seeds]


def dummy_cells(cfg: GridConfig, task: str) -> list[Cell]:
    return [Cell(task, fold, DUMMY, NO_VARIANT, 0) for fold in cfg.folds]


def grid_cells(cfg: GridConfig, task: str) -> list[Cell]:
    return dummy_cells(cfg, task) + [c for v in cfg.variants for c in model_cells(cfg, task, v)]


@dataclass(frozen=True)
class Unit:
    """What one worker does at a time: one fold of one (task, architecture, variant), all
    seeds (tune the fold's study when tuning is on, then the final cells); or a dummy fold."""

    task: str
    architecture: str
    variant: str
    fold: int
    seeds: tuple[int, ...]

    def label(self) -> str:
        return f"{self.task}|{self.architecture}|{self.variant}|fold{self.fold}"

    def cells(self) -> list[Cell]:
        return [Cell(self.task, self.fold, self.architecture, self.variant, s) for s in self.seeds]


def grid_units(cfg: GridConfig) -> list[Unit]:
    units = []
    for task in cfg.tasks:
        units += [Unit(task, DUMMY, NO_VARIANT, fold, (0,)) for fold in cfg.folds]
        units += [Unit(task, arch, variant, fold, tuple(cfg.seeds))
                  for variant in cfg.variants for arch in cfg.architectures for fold in cfg.folds]
    return units


def parent_key(task: str, architecture: str, variant: str, cfg: GridConfig, dataset_sha256: str) -> str:
    """One parent run per (task, architecture, variant) and settings (fold and seed aside)."""
    settings = cell_settings(Cell(task, 0, architecture, variant, 0), cfg)
    return stable_hash({"experiment": cfg.experiment, "task": task, "data": dataset_sha256, "settings": settings},
                       length=24)


def run_unit(unit: Unit, cfg: GridConfig, tracking_uri: str | None, storage: str,
             progress: bool = False) -> list[CellOutcome]:
    """Run one unit in this process. Each final cell is claimed first (see :mod:`bench.claims`),
    so concurrent workers never run the same cell; a cell claimed by a live worker is left to it."""
    from bench.claims import ClaimStore
    from bench.tuning import TrainingView, apply_params, run_study, study_name

    data = load_task(unit.task, cfg)
    tracker = Tracker(cfg.experiment, tracking_uri)
    claims = ClaimStore(storage)
    idents = {c: cell_identity(c, cfg, data.sha256) for c in unit.cells()}
    finished = {c: tracker.finished_run(key) for c, (_, _, key) in idents.items()}
    if all(run is not None for run in finished.values()):  # resume: nothing to do, no study reopened
        return [CellOutcome(c, dict(r.data.metrics), r.info.run_id, skipped=True) for c, r in finished.items()]
    if unit.architecture == DUMMY:
        return [_claimed(c, idents[c][2], claims, lambda c=c: run_cell(c, cfg, data, None, tracker, progress))
                for c in unit.cells()]
    pkey = parent_key(unit.task, unit.architecture, unit.variant, cfg, data.sha256)
    parent = tracker.parent_run(pkey, f"{unit.task}|{unit.architecture}|{unit.variant}",
                                {"task": unit.task, "architecture": unit.architecture, "variant": unit.variant,
                                 "dataset_sha256": data.sha256, "tune_n_trials": cfg.tune.n_trials}, claims)
    tuned, run_cfg = None, cfg
    if cfg.tune.enabled:
        name = study_name(cfg.experiment, unit.task, unit.architecture, unit.variant, unit.fold,
                          idents[unit.cells()[0]][1])
        tuned = run_study(TrainingView.of(data, unit.fold), unit.architecture, unit.variant, cfg, storage, tracker,
                          name, parent, progress)
        run_cfg = apply_params(cfg, unit.architecture, tuned.params)
    graphs = build_task_graphs(data.structures, data.ids, unit.variant, run_cfg.graph.cutoff,
                               run_cfg.graph.max_neighbors, data.sha256, progress=progress)
    outcomes = [_claimed(c, idents[c][2], claims,
                         lambda c=c: run_cell(c, cfg, data, graphs, tracker, progress, tuned, parent))
                for c in unit.cells()]
    _close_parent_when_complete(tracker, parent, pkey, cfg, unit, data.sha256)
    return outcomes


def _claimed(cell: Cell, key: str, claims, work) -> CellOutcome:
    with claims.claim(key) as mine:
        if mine:
            return work()
    return CellOutcome(cell, {}, "", skipped=True, extra={"claimed_elsewhere": True})


def _close_parent_when_complete(tracker: Tracker, parent: str, pkey: str, cfg: GridConfig, unit: Unit,
                                sha: str) -> None:
    keys = {cell_identity(Cell(unit.task, f, unit.architecture, unit.variant, s), cfg, sha)[2]
            for f in cfg.folds for s in cfg.seeds}
    if all(tracker.finished_run(k) is not None for k in keys):
        tracker.finish_parent(parent)


def run_grid(cfg: GridConfig, tracking_uri: str | None = None, progress: bool = True,
             storage: str | None = None) -> list[CellOutcome]:
    """Run every unfinished cell of ``cfg`` through its executor; finished ones are skipped (resume)."""
    from bench.executors import run_units

    cfg.validate_names()
    storage = storage or defaults.optuna_storage(tracking_uri)
    Tracker(cfg.experiment, tracking_uri)  # create the experiment once, before workers race to
    units = grid_units(cfg)
    for task in cfg.tasks:  # build the base graphs once, before workers start
        data = load_task(task, cfg)
        for variant in cfg.variants:
            build_task_graphs(data.structures, data.ids, variant, cfg.graph.cutoff, cfg.graph.max_neighbors,
                              data.sha256, progress=progress)
    outcomes: list[CellOutcome] = []
    failed: list[str] = []
    with tqdm(total=sum(len(u.seeds) for u in units), desc=f"grid {cfg.experiment}", unit="cell",
              disable=not progress, dynamic_ncols=True) as bar:
        for unit, result in run_units(units, cfg, tracking_uri, storage, progress):
            if isinstance(result, BaseException):
                failed.append(f"{unit.label()}: {type(result).__name__}: {result}")
                tqdm.write(f"{unit.label()}: FAILED: {type(result).__name__}: {result}")
                continue
            for outcome in result:
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


@dataclass
class TaskTable:
    task: str
    table: pd.DataFrame
    markdown: str
    files: list[Path]


def grid_tables(cfg: GridConfig, tracking_uri: str | None = None, results_dir: Path | None = None) -> list[TaskTable]:
    """Leaderboards of the grid's finished cells, read from MLflow and written to
    ``results_dir/<experiment>/tables/`` (the same files ``bench report`` writes)."""
    import tasks

    from bench.report.runs import grid_frame
    from bench.report.tables import TABLES_DIR, task_tables, to_markdown

    out_dir = Path(results_dir or defaults.RESULTS_DIR) / cfg.experiment / TABLES_DIR
    frame = grid_frame(cfg, tracking_uri)
    tables = []
    for task in cfg.tasks:
        spec = tasks.get_task(task)
        table, _, files = task_tables(frame, task, spec.unit, out_dir, spec.problem_type)
        markdown = (to_markdown(table, task, spec.unit, spec.problem_type) if not table.empty
                    else f"{task}: no finished cells yet\n")
        tables.append(TaskTable(task, table, markdown, files))
    return tables
