"""``probe_lattice_length``: stacked sheets whose only difference is the stacking period c.

Each of ``N_MOTIFS`` random sheets (a square in-plane cell, a in [3.0, 4.5] Å, 2-3
atoms of random light elements, buckled by at most ``MAX_BUCKLE`` Å) is stacked in a
tetragonal cell at ``N_C`` stacking periods c drawn uniformly in [9, 14] Å. Target: c
(Å).

Atoms keep their Cartesian positions when c changes, and the nearest atom of the next
sheet is at least c - MAX_BUCKLE >= 8.4 Å away, beyond the default 8 Å cutoff. So
for any cutoff below 8.4 Å the ``distance`` and the ``multi_edge`` graphs of one sheet
(edge index, shifts, edge vectors, positions) are identical at every c: only
``data.cell`` differs. The ``lattice`` variant's loops include ±c (and ±(a+c) ...),
whose lengths are c. An architecture that reads ``data.cell`` directly can also
see c under any variant.
"""
from __future__ import annotations

import functools

import numpy as np

from tasks.base import TASKS
from tasks.synthetic.base import Generated, SyntheticTask, make_structure

VERSION = "1"
SEED = 8103
N_MOTIFS = 60
N_C = 5
C_RANGE = (9.0, 14.0)  # Å
A_RANGE = (3.0, 4.5)  # Å, in-plane square cell
MAX_BUCKLE = 0.6  # Å, height range of a sheet
MIN_SEPARATION = 1.6  # Å, between atoms of a sheet (periodic in-plane)
ELEMENTS = ("B", "C", "N", "O", "Si", "P", "S")


def random_sheet(rng: np.random.Generator) -> tuple[float, list[str], np.ndarray]:
    """In-plane a (Å), species and Cartesian positions [n, 3] (Å) of one random sheet."""
    while True:
        a = rng.uniform(*A_RANGE)
        n = int(rng.integers(2, 4))
        xy = rng.uniform(size=(n, 2))
        diff = xy[:, None, :] - xy[None, :, :]
        diff -= np.round(diff)
        dist = np.linalg.norm(diff * a, axis=-1) + np.eye(n) * 1e9
        if dist.min() >= MIN_SEPARATION:
            break
    pos = np.column_stack([xy * a, rng.uniform(0.0, MAX_BUCKLE, size=n)])
    species = [str(e) for e in rng.choice(ELEMENTS, size=n)]
    return a, species, pos


def stack(a: float, species: list[str], pos: np.ndarray, c: float):
    """The sheet in a tetragonal a x a x c cell, Cartesian positions unchanged."""
    cell = np.diag([a, a, c])
    return make_structure(cell, species, pos / np.array([a, a, c]))


@functools.lru_cache(maxsize=2)
def generate(seed: int = SEED) -> Generated:
    """``N_MOTIFS`` sheets x ``N_C`` random c each; groups = sheet index."""
    rng = np.random.default_rng(seed)
    ids, structures, targets, groups = [], [], [], []
    for motif in range(N_MOTIFS):
        a, species, pos = random_sheet(rng)
        for k, c in enumerate(np.sort(rng.uniform(*C_RANGE, size=N_C))):
            ids.append(f"lattice-length-{motif:03d}/c{k}")
            structures.append(stack(a, species, pos, float(c)))
            targets.append(float(c))
            groups.append(motif)
    return Generated(tuple(ids), tuple(structures), np.array(targets), np.array(groups, dtype=np.int64))


PROBE_LATTICE_LENGTH = TASKS.register("probe_lattice_length", SyntheticTask(
    name="probe_lattice_length",
    target="c",
    unit="Å",
    problem_type="regression",
    n_samples=N_MOTIFS * N_C,
    leaderboard_comparable=False,
    description=(
        "Periodicity probe: 60 random buckled sheets (2-3 atoms, square a 3.0-4.5 Å) stacked in "
        "tetragonal cells at 5 random periods c in 9-14 Å each; target c. The next sheet is >= 8.4 Å "
        "away, so at the default 8 Å cutoff the distance and multi_edge graphs of a sheet are "
        "identical at every c (only data.cell differs); lattice loops have length c. Folds over sheets."
    ),
    citation="",
    generator="lattice_length", version=VERSION, seed=SEED, generate=generate,
    question="tell cells apart by c",
))
