"""A cell's life across processes: claim it, close what a dead worker left, account at the end.

- :func:`run_claimed` runs one cell under its claim (:mod:`bench.claims`) unless the grid was
  asked to stop; before it trains, any RUNNING MLflow run of the same cell is closed as
  KILLED: holding the claim proves that run's worker is gone.
- :func:`end_of_grid` sorts every cell of a finished grid into done / running in a live
  worker / lost (with the reason), and closes orphans: RUNNING cell runs whose worker is gone
  become KILLED, parent runs become FINISHED when all their cells are, else FAILED (a unit
  failed) or KILLED (interrupted, or their worker died). A grid whose lost list is not empty
  must not report success.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench import interrupts
from bench.cell import Cell, CellOutcome
from bench.claims import ClaimStore
from bench.tracking import TAG_PREFIX, Tracker


def close_cell_orphans(tracker: Tracker, key: str, status: str = "KILLED") -> int:
    """End every RUNNING run of cell ``key`` as ``status``; return how many there were."""
    runs = tracker.running(f"tags.`{TAG_PREFIX}cell_key` = '{key}'")
    for run in runs:
        tracker.terminate(run.info.run_id, status)
    return len(runs)


def run_claimed(cell: Cell, key: str, claims: ClaimStore, tracker: Tracker,
                work: Callable[[], CellOutcome]) -> CellOutcome:
    """``work()`` under the claim of ``key``; a skipped outcome when another live worker holds it
    (``extra["claimed_elsewhere"]``) or the grid is stopping (``extra["interrupted"]``)."""
    if interrupts.stop_requested():
        return CellOutcome(cell, {}, "", skipped=True, extra={"interrupted": True})
    with claims.claim(key) as mine:
        if mine:
            closed = close_cell_orphans(tracker, key)
            outcome = work()
            if key in claims.taken_over or closed:
                outcome.extra["took_over"] = claims.taken_over.get(key, "a gone worker")
            return outcome
    return CellOutcome(cell, {}, "", skipped=True, extra={"claimed_elsewhere": True})


@dataclass
class GridEnd:
    """Where every cell of a grid stands once the grid's own work is over."""

    done: list[Cell] = field(default_factory=list)
    running: dict[Cell, str] = field(default_factory=dict)  # live elsewhere -> worker
    lost: dict[Cell, str] = field(default_factory=dict)  # neither done nor live -> why
    closed_runs: int = 0  # orphan RUNNING runs ended by this check

    def summary(self) -> str:
        lines = []
        if self.running:
            lines.append(f"{len(self.running)} cell(s) still running in other workers (see `bench status`):")
            lines += [f"  {c.label()}: {w}" for c, w in sorted(self.running.items(), key=lambda x: x[0].label())]
        if self.lost:
            lines.append(f"{len(self.lost)} cell(s) not done and not running anywhere (rerun to finish them):")
            lines += [f"  {c.label()}: {why}" for c, why in sorted(self.lost.items(), key=lambda x: x[0].label())]
        return "\n".join(lines)


def _finished_keys(tracker: Tracker) -> set[str]:
    return {r.data.tags.get(f"{TAG_PREFIX}cell_key") for r in tracker.search("attributes.status = 'FINISHED'")}


def end_of_grid(cells: dict[str, Cell], groups: dict[str, list[str]], tracker: Tracker, claims: ClaimStore,
                failed_units: dict[str, str] | None = None, interrupted: bool = False) -> GridEnd:
    """Account for ``cells`` (cell key -> cell) and close orphan runs.

    ``groups`` maps a parent key to its cells' keys; ``failed_units`` maps a unit label
    (``task|architecture|variant|foldF``) to its error. Finished runs are read before and
    after the claims: a cell's FINISHED run is written before its claim is released, so a
    cell that finishes in another worker during the check is seen either way.
    """
    failed_units = failed_units or {}
    finished = _finished_keys(tracker) & set(cells)
    rows = {r.key: r for r in claims.rows()}
    if set(cells) - finished:  # a cell that finished since the first look released its claim after
        finished |= _finished_keys(tracker) & set(cells)
    live = {k: r.owner for k, r in rows.items() if r.live}
    for key in finished & set(rows):
        if not rows[key].live:  # its worker was killed between finishing the cell and releasing it
            claims.drop_dead(key, rows[key].owner)
    end = GridEnd()
    for key, cell in cells.items():
        if key in finished:
            end.done.append(cell)
        elif key in live:
            end.running[cell] = f"worker {live[key]}"
        else:
            end.lost[cell] = _why(cell, key, rows, failed_units, interrupted)
    end.closed_runs = _close_orphans(cells, groups, finished, set(live), tracker, bool(failed_units))
    _explain_failed_runs(end, cells, tracker)
    return end


def _why(cell: Cell, key: str, rows: dict, failed_units: dict[str, str], interrupted: bool) -> str:
    unit = cell.label().rsplit("|", 1)[0]
    if unit in failed_units:
        return f"its unit failed: {failed_units[unit]}"
    if key in rows:
        return f"claimed, but {rows[key].reason} (taken over at the next run)"
    if interrupted:
        return "not run: the grid was interrupted"
    return "not run"


def _explain_failed_runs(end: GridEnd, cells: dict[str, Cell], tracker: Tracker) -> None:
    """Say which lost cells have a run that ended FAILED or KILLED (one search for all)."""
    vague = {k for k, c in cells.items() if end.lost.get(c) in ("not run", "not run: the grid was interrupted")}
    if not vague:
        return
    for run in tracker.search("attributes.status != 'FINISHED'"):
        key = run.data.tags.get(f"{TAG_PREFIX}cell_key")
        if key in vague and run.info.status in ("FAILED", "KILLED"):
            end.lost[cells[key]] = f"its last run ended {run.info.status} (run {run.info.run_id})"


def _close_orphans(cells: dict[str, Cell], groups: dict[str, list[str]], finished: set[str], live: set[str],
                   tracker: Tracker, any_failed: bool) -> int:
    closed = 0
    for run in tracker.running(f"tags.`{TAG_PREFIX}kind` = 'cell'"):
        key = run.data.tags.get(f"{TAG_PREFIX}cell_key")
        if key in cells and key not in live:
            tracker.terminate(run.info.run_id, "KILLED")
            closed += 1
    for run in tracker.running(f"tags.`{TAG_PREFIX}kind` = 'parent'"):
        keys = groups.get(run.data.tags.get(f"{TAG_PREFIX}parent_key", ""))
        if keys is None or any(k in live for k in keys):
            continue
        status = "FINISHED" if all(k in finished for k in keys) else "FAILED" if any_failed else "KILLED"
        tracker.terminate(run.info.run_id, status)  # a rerun that completes the cells ends it FINISHED
        closed += 1
    return closed
