"""Physical sanity checks of a task's data: absurd inputs are named before anything trains.

Three checks, each naming the structure id:

- an interatomic distance below :data:`MIN_DISTANCE` (0.5 Å; periodic images included): the
  shortest real bond, H-H in H2, is 0.74 Å; the Matbench jdft2d and phonons files have none
  below 0.97 Å (O-H);
- a volume per atom outside :data:`VOLUME_PER_ATOM` (1 to 2000 Å^3): below 1 Å^3 atoms
  overlap (a simple cubic crystal with 1 Å spacing); 2000 Å^3 is a 12.6 Å cube per atom,
  six times the emptiest Matbench cell (jdft2d's slabs with vacuum, at most 331 Å^3; the
  densest cells, in phonons, have 5.7 Å^3);
- a regression target far outside the task's range: outside ``Task.target_range`` when the
  task states one, and in every case farther than :data:`TARGET_SPREADS` robust spreads
  (median absolute deviation, else the standard deviation) from the median: real tails
  reach 72 spreads (jdft2d), a unit slip (x1000) or a corrupt value (1e300) lands far beyond.

The runner refuses data that fails (exit code 2) unless ``--allow-nonphysical-data``, which
turns the refusal into a warning.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_DISTANCE = 0.5  # Å
VOLUME_PER_ATOM = (1.0, 2000.0)  # Å^3
TARGET_SPREADS = 1000.0
SHOWN = 5  # offending structures named per check in a message


@dataclass(frozen=True)
class Finding:
    """One offending row of a task."""

    structure_id: str
    check: str  # "distance" | "volume" | "target"
    detail: str

    def __str__(self) -> str:
        return f"{self.structure_id}: {self.detail}"


def structure_findings(structure_id: str, structure) -> list[Finding]:
    """Distance and volume findings for one pymatgen structure."""
    out = []
    n = len(structure)
    volume = float(structure.volume) / max(n, 1)
    low, high = VOLUME_PER_ATOM
    if not low <= volume <= high:
        out.append(Finding(structure_id, "volume", f"volume per atom {volume:.3g} Å^3 is outside "
                                                   f"[{low:g}, {high:g}] Å^3"))
    if volume > 1e-6:  # a degenerate cell has no meaningful neighbour list
        _, _, _, dist = structure.get_neighbor_list(MIN_DISTANCE)
        if len(dist):
            out.append(Finding(structure_id, "distance", f"interatomic distance {float(np.min(dist)):.3g} Å "
                                                         f"is below {MIN_DISTANCE} Å"))
    return out


def target_findings(ids: list[str], targets: np.ndarray, problem_type: str,
                    target_range: tuple[float, float] | None = None) -> list[Finding]:
    """Targets outside ``target_range`` or farther than TARGET_SPREADS spreads from the median."""
    if problem_type != "regression" or len(targets) == 0:
        return []
    y = np.asarray(targets, dtype=float)
    out = []
    if target_range is not None:
        lo, hi = target_range
        for i in np.flatnonzero((y < lo) | (y > hi)):
            out.append(Finding(ids[i], "target", f"target {y[i]:.4g} is outside the task's range [{lo:g}, {hi:g}]"))
    median = float(np.median(y))
    spread = float(np.median(np.abs(y - median))) or float(np.std(y))
    if spread > 0 and np.isfinite(spread):
        far = np.abs(y - median) > TARGET_SPREADS * spread
        flagged = {f.structure_id for f in out}
        for i in np.flatnonzero(far):
            if ids[i] not in flagged:
                out.append(Finding(ids[i], "target", f"target {y[i]:.4g} is {abs(y[i] - median) / spread:.3g} "
                                                     f"spreads from the median {median:.4g} (limit {TARGET_SPREADS:g})"))
    elif not np.isfinite(spread):  # the spread itself overflowed (values near 1e308)
        out += [Finding(ids[i], "target", f"target {y[i]:.4g} is too large to train on")
                for i in np.flatnonzero(np.abs(y) > 1e150)]
    return out


_FOUND: dict[tuple, tuple[Finding, ...]] = {}


def findings(data, target_range: tuple[float, float] | None = None) -> list[Finding]:
    """Every finding of a loaded task (:class:`tasks.TaskData`), remembered per dataset hash."""
    key = (data.name, data.sha256, len(data.ids), target_range)
    if key not in _FOUND:
        out: list[Finding] = []
        for sid, structure in zip(data.ids, data.structures):
            out += structure_findings(sid, structure)
        out += target_findings(list(data.ids), data.targets, data.problem_type, target_range)
        _FOUND[key] = tuple(out)
    return list(_FOUND[key])


def describe(task: str, found: list[Finding]) -> str:
    """A message naming up to SHOWN offending structures per check."""
    lines = [f"{task}: {len(found)} non-physical input(s):"]
    for check in ("distance", "volume", "target"):
        of_kind = [f for f in found if f.check == check]
        lines += [f"  {f}" for f in of_kind[:SHOWN]]
        if len(of_kind) > SHOWN:
            lines.append(f"  ... and {len(of_kind) - SHOWN} more {check} finding(s)")
    return "\n".join(lines)
