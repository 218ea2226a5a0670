"""Time left in a grid, from what its cells cost per task and architecture.

A grid's cells differ in cost by an order of magnitude (phonons cells train on twice the
rows of jdft2d cells; an equivariant model is several times slower than CGCNN), and a grid
runs task by task, so a global mean per cell extrapolated from the first, cheaper task
underestimates the rest (the quick profile's bar said 24 minutes at 12 % of a 90-minute
grid). Here every remaining cell is priced by its own (task, architecture):

1. the mean wall time of finished cells of that (task, architecture) in this grid (earlier
   runs of the same settings included, read from MLflow at the start);
2. else the architecture's seconds per atom on other tasks times the task's size (its
   number of atoms: training cost grows with atoms and edges, which grow with atoms);
3. else the mean seconds per atom of all architectures times the task's size.

The sum is divided by the number of workers that can run at once.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from bench.cell import DUMMY, cell_identity

#: tqdm layout: tqdm's own remaining-time estimate is replaced by ours (in the postfix)
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
Key = tuple[str, str]  # (task, architecture)


class CellCosts:
    """Observed seconds per cell by (task, architecture); ``sizes`` = atoms per task."""

    def __init__(self, sizes: dict[str, float]) -> None:
        self.sizes = sizes
        self.seconds: dict[Key, list[float]] = defaultdict(list)

    def add(self, task: str, architecture: str, seconds: float) -> None:
        self.seconds[(task, architecture)].append(float(seconds))

    def _per_atom(self, architecture: str | None) -> float | None:
        rates = [s / self.sizes[t] for (t, a), values in self.seconds.items() for s in values
                 if (architecture is None or a == architecture) and a != DUMMY and self.sizes.get(t)]
        return sum(rates) / len(rates) if rates else None

    def expected(self, task: str, architecture: str) -> float | None:
        """Expected seconds of one cell, or None when nothing is known yet."""
        if architecture == DUMMY:
            return 0.0
        direct = self.seconds.get((task, architecture))
        if direct:
            return sum(direct) / len(direct)
        size = self.sizes.get(task)
        if not size:
            return None
        rate = self._per_atom(architecture)
        rate = rate if rate is not None else self._per_atom(None)
        return None if rate is None else rate * size


class GridETA:
    """Remaining cells priced by :class:`CellCosts`; ``parallel`` = workers at once."""

    def __init__(self, remaining: Iterable[Key], costs: CellCosts, parallel: int) -> None:
        self.remaining: dict[Key, int] = defaultdict(int)
        for key in remaining:
            self.remaining[key] += 1
        self.costs = costs
        self.parallel = max(1, parallel)

    @classmethod
    def for_grid(cls, cfg, cells: Iterable, data_by_task: dict, tracker, parallel: int) -> GridETA:
        """Price ``cells`` of ``cfg``, seeded with the wall times of finished runs that have the
        same settings (``bench.config_hash``) in ``tracker``'s experiment."""
        cells = list(cells)
        sizes = {t: float(sum(len(s) for s in d.structures)) for t, d in data_by_task.items()}
        costs = CellCosts(sizes)
        hashes = {cell_identity(c, cfg, data_by_task[c.task].sha256)[1]: (c.task, c.architecture) for c in cells
                  if c.architecture != DUMMY}
        for run in tracker.search("attributes.status = 'FINISHED'"):
            key = hashes.get(run.data.tags.get("bench.config_hash"))
            seconds = run.data.metrics.get("wall_time_s")
            if key is not None and seconds is not None and run.data.tags.get("bench.kind", "cell") == "cell":
                costs.add(*key, seconds)
        return cls(((c.task, c.architecture) for c in cells), costs, parallel)

    def finished(self, task: str, architecture: str, seconds: float | None) -> None:
        """One cell is over; ``seconds`` is its wall time (None: skipped, it cost nothing now)."""
        key = (task, architecture)
        if self.remaining.get(key, 0) > 0:
            self.remaining[key] -= 1
        if seconds is not None:
            self.costs.add(task, architecture, seconds)

    def seconds_left(self) -> float | None:
        """Expected wall time until the last cell ends; None while a remaining cell has no price."""
        total, count = 0.0, 0
        for (task, arch), n in self.remaining.items():
            if n <= 0:
                continue
            cost = self.costs.expected(task, arch)
            if cost is None:
                return None
            total += cost * n
            count += n
        return total / min(self.parallel, max(count, 1))

    def text(self) -> str:
        left = self.seconds_left()
        if left is None:
            return "eta ? (no cell finished yet)"
        minutes, seconds = divmod(int(round(left)), 60)
        hours, minutes = divmod(minutes, 60)
        return f"eta {hours}:{minutes:02d}:{seconds:02d}" if hours else f"eta {minutes:02d}:{seconds:02d}"
