"""``probe_supercell``: one crystal, several cells; the target must not care.

Each of ``N_CRYSTALS`` argon LJ crystals (the ``probe_self_image`` family: sc, bcc,
fcc one-atom cells, hcp two-atom cells) appears in ``len(REPRESENTATIONS)`` cells:

- ``rep0`` the primitive cell;
- ``rep1`` a sheared basis (a random unimodular integer matrix) with a shifted origin;
- ``rep2`` a diagonal supercell (2 to 4 cells) with the atoms permuted;
- ``rep3`` a sheared supercell (2 to 4 cells), shifted origin, permuted atoms and a
  rotated Cartesian frame.

Target: the LJ energy per atom (meV/atom, intensive, identical for every cell of a
crystal). ``groups`` (and the ids ``supercell-<crystal>/rep<k>``) say which rows are
one crystal; folds are made over crystals, so all cells of a test crystal are in the
test fold and the spread of predictions across them is measured on unseen crystals.
"""
from __future__ import annotations

import functools

import numpy as np

from tasks.base import TASKS
from tasks.synthetic.base import Generated, SyntheticTask, make_structure
from tasks.synthetic.self_image import ELEMENT, LATTICES, lj_energy_per_atom, random_lj_crystal

VERSION = "1"
SEED = 8102
N_CRYSTALS = 80
REPRESENTATIONS = ("primitive", "sheared", "supercell", "sheared-supercell")
_DIAGONALS = ((2, 1, 1), (1, 2, 1), (1, 1, 2), (2, 2, 1), (2, 1, 2), (1, 2, 2), (3, 1, 1), (1, 1, 3), (4, 1, 1))


def random_unimodular(rng: np.random.Generator) -> np.ndarray:
    """[3, 3] integer matrix with determinant 1: a product of two elementary shears."""
    m = np.eye(3, dtype=np.int64)
    for _ in range(2):
        i, j = rng.choice(3, size=2, replace=False)
        e = np.eye(3, dtype=np.int64)
        e[i, j] = rng.choice((-1, 1))
        m = e @ m
    return m


def transform(cell: np.ndarray, frac: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same crystal in the cell ``matrix @ cell`` (integer ``matrix``, det >= 1).

    Returns the new rows [3, 3] and the wrapped fractional positions of every atom of
    the new cell ([n * det, 3]), found by enumerating old-cell translates.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    det = int(round(abs(np.linalg.det(matrix))))
    new_cell = matrix @ cell
    inv = np.linalg.inv(matrix.astype(np.float64))
    # corners of the new cell in old fractional units bound the translates to try
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) @ matrix
    lo, hi = corners.min(0) - 1, corners.max(0) + 1
    grid = np.stack(np.meshgrid(*(np.arange(a, b + 1) for a, b in zip(lo, hi)), indexing="ij"), -1).reshape(-1, 3)
    cand = (frac[None, :, :] + grid[:, None, :]).reshape(-1, 3) @ inv  # new fractional
    cand = cand[np.all((cand > -1e-9) & (cand < 1 - 1e-9), axis=1)]
    cand = np.mod(np.round(cand, 12), 1.0)
    if len(cand) != det * len(frac):
        raise RuntimeError(f"supercell enumeration found {len(cand)} atoms, expected {det * len(frac)}")
    return new_cell, cand


def representations(rng: np.random.Generator, cell: np.ndarray, frac: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The four cells (rows [3, 3], fractional positions) of one crystal, in ``REPRESENTATIONS`` order."""
    out = [(cell, frac)]
    c1, f1 = transform(cell, frac, random_unimodular(rng))
    out.append((c1, np.mod(f1 + rng.uniform(size=3), 1.0)))
    c2, f2 = transform(cell, frac, np.diag(_DIAGONALS[rng.integers(len(_DIAGONALS))]))
    out.append((c2, f2[rng.permutation(len(f2))]))
    diag = np.diag(_DIAGONALS[rng.integers(len(_DIAGONALS))])
    c3, f3 = transform(cell, frac, diag @ random_unimodular(rng))
    from scipy.spatial.transform import Rotation

    rotation = Rotation.random(random_state=rng).as_matrix()
    f3 = np.mod(f3 + rng.uniform(size=3), 1.0)[rng.permutation(len(f3))]
    out.append((c3 @ rotation.T, f3))
    return out


@functools.lru_cache(maxsize=2)
def generate(seed: int = SEED) -> Generated:
    """``N_CRYSTALS`` crystals (lattice types in turn) x ``REPRESENTATIONS``."""
    rng = np.random.default_rng(seed)
    ids, structures, targets, groups = [], [], [], []
    for crystal in range(N_CRYSTALS):
        cell, frac, _ = random_lj_crystal(rng, LATTICES[crystal % len(LATTICES)])
        energy = lj_energy_per_atom(cell, frac)
        for k, (c, f) in enumerate(representations(rng, cell, frac)):
            ids.append(f"supercell-{crystal:03d}/rep{k}")
            structures.append(make_structure(c, [ELEMENT] * len(f), f))
            targets.append(energy)
            groups.append(crystal)
    return Generated(tuple(ids), tuple(structures), np.array(targets), np.array(groups, dtype=np.int64))


PROBE_SUPERCELL = TASKS.register("probe_supercell", SyntheticTask(
    name="probe_supercell",
    target="lj_energy_per_atom",
    unit="meV/atom",
    problem_type="regression",
    n_samples=N_CRYSTALS * len(REPRESENTATIONS),
    leaderboard_comparable=False,
    description=(
        "Periodicity probe: 80 argon Lennard-Jones crystals (sc/bcc/fcc/hcp), each as primitive cell, "
        "sheared basis, supercell and sheared rotated supercell (1-8 atoms); target the LJ energy per "
        "atom (identical across a crystal's cells). `groups` marks a crystal's rows and folds are made "
        "over crystals; the probe's score is the spread of predictions across one test crystal's cells "
        "(ideally zero)."
    ),
    citation="Lennard-Jones, Proc. R. Soc. A 106, 463 (1924).",
    generator="supercell", version=VERSION, seed=SEED, generate=generate,
    question="give every cell of one crystal the same prediction",
))
