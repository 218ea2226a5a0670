"""``probe_self_image``: Lennard-Jones energy of one- and two-atom cells.

Every neighbour of an atom in a one-atom cell is one of its own periodic images, so
the energy can only be fitted by encodings that keep self-image edges. The crystals
are argon-like LJ solids: sc, bcc and fcc as one-atom primitive cells and hcp as a
two-atom cell with a random c/a; the nearest-neighbour distance is drawn in
[1.0, 1.5] sigma, which spans both sides of the LJ minimum.

Target: LJ energy per atom (meV/atom), E = 1/(2N) sum_i sum_(j,image) phi(r), with
phi(r) = 4 eps [(sigma/r)^12 - (sigma/r)^6], sigma = 3.405 Å, eps = 10.32 meV
(argon, eps/k_B = 119.8 K). The sum runs explicitly over all images within
``R_SUM`` = 12 sigma and the rest is the continuum tail
2 pi rho * 4 eps [sigma^12 / (9 R^9) - sigma^6 / (3 R^3)] (uniform density rho beyond
R). The tail itself is ~5e-3 eps; what it misses (the lattice's deviation from a
continuum beyond 12 sigma) is ~1e-4 eps (1e-3 meV, 1e-5 of the targets' range), as
the tests check against a brute-force sum to 30 sigma (itself within 2e-6 meV of
50 sigma) and against the classical LJ lattice sums.
"""
from __future__ import annotations

import functools

import numpy as np

from tasks.base import TASKS
from tasks.synthetic.base import Generated, SyntheticTask, make_structure

VERSION = "1"
SEED = 8101
N_PER_TYPE = 75
LATTICES = ("sc", "bcc", "fcc", "hcp")
ELEMENT = "Ar"
SIGMA = 3.405  # Å
EPSILON = 10.32  # meV
R_SUM = 12.0 * SIGMA  # Å, explicit image sum; beyond it the continuum tail
NN_RANGE = (1.0, 1.5)  # nearest-neighbour distance / sigma
COVERA_RANGE = (1.55, 1.75)  # hcp c/a (ideal 1.633)


def lattice_cell(kind: str, d: float, c_over_a: float = np.sqrt(8.0 / 3.0)) -> tuple[np.ndarray, np.ndarray]:
    """Primitive cell rows [3, 3] (Å) and fractional positions [n, 3] with nearest-neighbour distance ``d``.

    sc, bcc, fcc: one atom; hcp: two atoms (a = d, c = c_over_a * d; for c/a far from
    ideal the nearest distance is min(a, sqrt(a^2/3 + c^2/4))).
    """
    if kind == "sc":
        return np.eye(3) * d, np.zeros((1, 3))
    if kind == "bcc":
        a = 2.0 * d / np.sqrt(3.0)
        return 0.5 * a * np.array([[-1.0, 1, 1], [1, -1, 1], [1, 1, -1]]), np.zeros((1, 3))
    if kind == "fcc":
        a = np.sqrt(2.0) * d
        return 0.5 * a * np.array([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]]), np.zeros((1, 3))
    if kind == "hcp":
        a, c = d, c_over_a * d
        cell = np.array([[a, 0.0, 0.0], [-0.5 * a, 0.5 * np.sqrt(3.0) * a, 0.0], [0.0, 0.0, c]])
        return cell, np.array([[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    raise ValueError(f"unknown lattice {kind!r}; expected one of {LATTICES}")


def lj_energy_per_atom(cell: np.ndarray, frac: np.ndarray, sigma: float = SIGMA, epsilon: float = EPSILON,
                       r_sum: float = R_SUM, tail: bool = True) -> float:
    """LJ energy per atom (units of ``epsilon``) of a periodic crystal.

    Args:
        cell: [3, 3] lattice rows (Å); frac: [n, 3] fractional positions.
        r_sum: explicit sum over every (i, j, image) pair closer than this (Å).
        tail: add the uniform-density continuum tail beyond ``r_sum``.
    """
    cell = np.asarray(cell, dtype=np.float64)
    pos = np.asarray(frac, dtype=np.float64) @ cell
    n = len(pos)
    volume = abs(np.linalg.det(cell))
    widths = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    reach = np.ceil(r_sum / widths).astype(int) + 1
    grid = np.stack(np.meshgrid(*(np.arange(-k, k + 1) for k in reach), indexing="ij"), -1).reshape(-1, 3)
    images = grid @ cell  # [S, 3]
    total = 0.0
    for i in range(n):
        r = np.linalg.norm((pos[None, :, :] + images[:, None, :]) - pos[i], axis=-1).ravel()
        r = r[(r > 1e-9) & (r < r_sum)]
        sr6 = (sigma / r) ** 6
        total += 0.5 * np.sum(4.0 * epsilon * (sr6 * sr6 - sr6))
    energy = total / n
    if tail:
        rho = n / volume
        energy += 2.0 * np.pi * rho * 4.0 * epsilon * (sigma**12 / (9.0 * r_sum**9) - sigma**6 / (3.0 * r_sum**3))
    return float(energy)


def random_lj_crystal(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """A random crystal of ``kind``: cell [3, 3] (Å), fractional positions, and its parameters."""
    d = SIGMA * rng.uniform(*NN_RANGE)
    c_over_a = rng.uniform(*COVERA_RANGE) if kind == "hcp" else float(np.sqrt(8.0 / 3.0))
    cell, frac = lattice_cell(kind, d, c_over_a)
    return cell, frac, {"kind": kind, "d": d, "c_over_a": c_over_a}


@functools.lru_cache(maxsize=2)
def generate(seed: int = SEED) -> Generated:
    """``N_PER_TYPE`` crystals of each lattice type, in a seeded shuffled order."""
    rng = np.random.default_rng(seed)
    kinds = [k for k in LATTICES for _ in range(N_PER_TYPE)]
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    ids, structures, targets = [], [], []
    for row, kind in enumerate(kinds):
        cell, frac, _ = random_lj_crystal(rng, kind)
        ids.append(f"self-image-{row:03d}-{kind}")
        structures.append(make_structure(cell, [ELEMENT] * len(frac), frac))
        targets.append(lj_energy_per_atom(cell, frac))
    return Generated(tuple(ids), tuple(structures), np.array(targets))


PROBE_SELF_IMAGE = TASKS.register("probe_self_image", SyntheticTask(
    name="probe_self_image",
    target="lj_energy_per_atom",
    unit="meV/atom",
    problem_type="regression",
    n_samples=N_PER_TYPE * len(LATTICES),
    leaderboard_comparable=False,
    description=(
        "Periodicity probe: argon Lennard-Jones solids (sigma 3.405 Å, eps 10.32 meV) as one-atom "
        "sc/bcc/fcc cells and two-atom hcp cells, nearest-neighbour distance 1.0-1.5 sigma; target "
        "the LJ energy per atom summed over all periodic images (explicit to 12 sigma plus the "
        "continuum tail; converged to ~1e-3 meV). Under `distance` a one-atom cell has no edge, so "
        "only encodings with self-image edges can fit it."
    ),
    citation="Lennard-Jones, Proc. R. Soc. A 106, 463 (1924); lattice sums as in Kittel, Introduction to "
             "Solid State Physics, ch. 3.",
    generator="self_image", version=VERSION, seed=SEED, generate=generate,
    question="fit an energy that lives on self-image edges",
))
