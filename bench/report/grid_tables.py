"""Leaderboards of a grid from its run records (``bench table``, and after ``bench ablation``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.records import results_root
from bench.report.completeness import PartialGridError, check_overwrite, incomplete_note
from bench.report.runs import grid_records


@dataclass
class TaskTable:
    task: str
    table: pd.DataFrame
    markdown: str
    files: list[Path]


def grid_tables(cfg, results_dir: Path | None = None, allow_partial: bool = False) -> list[TaskTable]:
    """Leaderboards of the grid's recorded cells, written to ``results_dir/<experiment>/tables/``
    (the same files ``bench report`` writes). A grid with missing cells does not overwrite the
    tables of a complete report unless ``allow_partial``: its tables are then shown, not written."""
    import tasks

    from bench.report.tables import TABLES_DIR, task_tables, to_markdown

    root = results_root(results_dir) / cfg.experiment
    grid = grid_records(cfg, results_dir)
    try:
        check_overwrite(root, grid, allow_partial)
        out_dir, note = root / TABLES_DIR, ""
    except PartialGridError as err:
        out_dir, note = None, f"(not written: {err})\n"
    tables = []
    for task in cfg.tasks:
        spec = tasks.get_task(task)
        if out_dir is None:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                table, _, _ = task_tables(grid.frame, task, spec.unit, Path(tmp), spec.problem_type)
            files: list[Path] = []
        else:
            table, _, files = task_tables(grid.frame, task, spec.unit, out_dir, spec.problem_type)
        markdown = (to_markdown(table, task, spec.unit, spec.problem_type) if not table.empty
                    else f"{task}: no finished cells yet\n")
        tables.append(TaskTable(task, table, markdown + incomplete_note(grid, task) + note, files))
    return tables
