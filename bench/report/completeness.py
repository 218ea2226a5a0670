"""Honest reports: which cells of a grid have no record, and never overwriting a complete report
with a partial one unless asked (``--allow-partial``).

``REPORT.md`` states its coverage on one line (:func:`coverage_line`); a report whose line
says ``(complete)``, or an older one without such a line, is *complete*. Writing a report or the tables of a grid with missing
cells over a complete report raises :class:`PartialGridError`, so an interrupted or
narrowed grid (``--folds 0``) never silently replaces committed results.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from bench.report.runs import GridRecords

REPORT_NAME = "REPORT.md"
COMPLETE = "(complete)"


class PartialGridError(ValueError):
    """A grid with missing cells would overwrite a complete report."""


def coverage_line(grid: GridRecords) -> str:
    n, found = len(grid.expected), len(grid.expected) - len(grid.missing)
    state = COMPLETE if grid.complete else f"(INCOMPLETE: {len(grid.missing)} missing, listed under Missing cells)"
    return f"- cells: {found} of {n} cells of the grid have a run record {state}"


def committed_complete(root: Path) -> bool:
    """True when ``root/REPORT.md`` exists and does not say it is incomplete.

    A report without a coverage line (written before reports stated one) counts as complete:
    when in doubt, an existing report is protected."""
    path = Path(root) / REPORT_NAME
    if not path.is_file():
        return False
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("- cells: ")]
    return all(line.rstrip().endswith(COMPLETE) for line in lines)


def check_overwrite(root: Path, grid: GridRecords, allow_partial: bool) -> None:
    """Refuse to write a partial grid's files over a complete report in ``root``."""
    if grid.complete or allow_partial or not committed_complete(root):
        return
    raise PartialGridError(
        f"{len(grid.missing)} of {len(grid.expected)} cells of this grid have no run record, and "
        f"{Path(root) / REPORT_NAME} is a complete report: not overwriting it. Finish the grid "
        "(bench ablation), write elsewhere (--results-dir), or pass --allow-partial.")


def incomplete_groups(grid: GridRecords) -> dict[tuple[str, str, str], tuple[int, int]]:
    """``{(task, architecture, variant): (recorded, expected)}`` for every group with a missing cell."""
    expected: dict[tuple[str, str, str], int] = defaultdict(int)
    missing: dict[tuple[str, str, str], int] = defaultdict(int)
    for cell in grid.expected.values():
        expected[(cell.task, cell.architecture, cell.variant)] += 1
    for cell in grid.missing:
        missing[(cell.task, cell.architecture, cell.variant)] += 1
    return {g: (expected[g] - m, expected[g]) for g, m in sorted(missing.items())}


def incomplete_note(grid: GridRecords, task: str) -> str:
    """One line under a task's leaderboard naming its incomplete rows, or "" when none."""
    rows = [f"`{a}`/`{v}` ({found} of {n} cells)" for (t, a, v), (found, n) in incomplete_groups(grid).items()
            if t == task]
    return f"**Incomplete rows** (means over fewer cells than the grid has): {', '.join(rows)}.\n" if rows else ""


def missing_markdown(grid: GridRecords) -> str:
    """``## Missing cells``: each (task, architecture, variant) with missing cells and which ones."""
    if grid.complete:
        return ""
    lines = ["## Missing cells", "", f"{len(grid.missing)} cells of this grid have no run record yet; the rows "
             "marked incomplete average fewer cells than the others.", "",
             "| task | architecture | variant | recorded | missing (fold/seed) |", "|---|---|---|---|---|"]
    by_group: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for cell in grid.missing:
        by_group[(cell.task, cell.architecture, cell.variant)].append(f"{cell.fold}/{cell.seed}")
    counts = incomplete_groups(grid)
    for group, cells in sorted(by_group.items()):
        found, n = counts[group]
        lines.append(f"| {group[0]} | {group[1]} | {group[2]} | {found} of {n} | {', '.join(cells)} |")
    return "\n".join(lines) + "\n"
