"""Run a grid of cells (tasks x architectures x variants x folds x seeds) and tabulate it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from bench import defaults
from bench.cell import DUMMY, NO_VARIANT, Cell, CellOutcome, cell_key, cell_settings, log_summary, run_cell
from bench.config import GridConfig, stable_hash
from bench.graphs import build_task_graphs
from bench.leaderboard import leaderboard, runs_frame, to_markdown, write_tables
from bench.tracking import Tracker


def load_task(name: str, cfg: GridConfig):
    import tasks

    return tasks.get_task(name).load(allow_unverified=cfg.allow_unverified_data)


def model_cells(cfg: GridConfig, task: str, variant: str) -> list[Cell]:
    return [Cell(task, fold, arch, variant, seed)
            for arch in cfg.architectures for fold in cfg.folds for seed in cfg.seeds]


def dummy_cells(cfg: GridConfig, task: str) -> list[Cell]:
    return [Cell(task, fold, DUMMY, NO_VARIANT, 0) for fold in cfg.folds]


def grid_cells(cfg: GridConfig, task: str) -> list[Cell]:
    return dummy_cells(cfg, task) + [c for v in cfg.variants for c in model_cells(cfg, task, v)]


def run_grid(cfg: GridConfig, tracking_uri: str | None = None, progress: bool = True) -> list[CellOutcome]:
    """Run every unfinished cell of ``cfg``; finished ones are skipped (resume)."""
    cfg.validate_names()
    tracker = Tracker(cfg.experiment, tracking_uri)
    outcomes: list[CellOutcome] = []
    total = sum(len(grid_cells(cfg, t)) for t in cfg.tasks)
    with tqdm(total=total, desc=f"grid {cfg.experiment}", unit="cell", disable=not progress, dynamic_ncols=True) as bar:
        for task in cfg.tasks:
            data = load_task(task, cfg)
            unit = _unit(task)
            for cell in dummy_cells(cfg, task):
                outcomes.append(run_cell(cell, cfg, data, None, tracker, progress))
                bar.update()
            for variant in cfg.variants:
                graphs = build_task_graphs(data.structures, data.ids, variant, cfg.graph.cutoff,
                                           cfg.graph.max_neighbors, data.sha256, progress=progress)
                for cell in model_cells(cfg, task, variant):
                    outcome = run_cell(cell, cfg, data, graphs, tracker, progress)
                    log_summary(outcome, unit)
                    outcomes.append(outcome)
                    bar.update()
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
    """Leaderboards of the grid's finished cells, read from MLflow and written to ``results_dir``."""
    import tasks

    tracker = Tracker(cfg.experiment, tracking_uri)
    out_dir = Path(results_dir or defaults.RESULTS_DIR) / cfg.experiment
    frame = runs_frame(tracker.search("attributes.status = 'FINISHED'"))
    tables = []
    for task in cfg.tasks:
        data = load_task(task, cfg)
        keys = {cell_key(c, data.sha256, stable_hash(cell_settings(c, cfg))) for c in grid_cells(cfg, task)}
        runs = frame[frame["cell_key"].isin(keys)] if not frame.empty else frame
        spec = tasks.get_task(task)
        table = leaderboard(runs, task, data.problem_type) if not runs.empty else pd.DataFrame()
        if table.empty:
            tables.append(TaskTable(task, table, f"{task}: no finished cells yet\n", []))
            continue
        files = write_tables(table, out_dir, task, spec.unit, data.problem_type)
        tables.append(TaskTable(task, table, to_markdown(table, task, spec.unit, data.problem_type), files))
    return tables
