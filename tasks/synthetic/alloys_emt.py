"""``alloys_emt`` and ``alloys_emt_stable``: EMT formation energies of random metal crystals.

``N_SAMPLES`` periodic crystals of Al, Cu, Ag, Au, Ni, Pd, Pt: fcc, bcc, hcp and sc
lattices (drawn fcc-heavy, ``BASE_P``) as primitive or conventional cells, repeated
into supercells of 1 to 32 atoms. Most fcc/bcc conventional cells carry an ordered
prototype (L1_2, L1_0, B2 of two random elements, ``ORDERED_FRACTION``); every
other crystal is a random decoration of 1-3 elements. The volume per atom follows
Vegard's law over the elements' EMT fcc volumes times a random factor (linear scale
0.98-1.02), hcp gets a random c/a in 1.55-1.70, and ``DISTORTED_FRACTION`` (30 %)
of the crystals a random symmetric strain (components up to 3 %) and a rattle
(0.03 Å rms). Structures are not relaxed. About 13 % of the crystals have E_f < 0
(mostly ordered Cu-Pt, Ni-Pt, Cu-Pd, Ag-Al, Au-Al); E_f spans -0.14 to 1.36 eV/atom
(sc cells are the high tail).

Target (``alloys_emt``): formation energy per atom (eV/atom) from ASE's EMT
calculator, E_f = (E_EMT(crystal) - sum_i E_ref(element_i)) / N, where E_ref is the
EMT energy per atom of the element's one-atom fcc cell at its EMT equilibrium
lattice constant (found once by a bounded scalar minimisation around ASE's
reference lattice constant, ``fcc_references``). ``alloys_emt_stable`` is the
classification twin on the same crystals: 1 when E_f < 0.

Generation takes ~35 s of CPU on one core (2 min wall on a busy 2-core machine), so
it is cached on disk (~0.6 MB, reloaded in ~2 s) under
``bench.defaults.cache_dir()/synthetic/`` (keyed by generator version and seed).
EMT: Jacobsen, Stoltze, Norskov, Surf. Sci. 366, 394 (1996).
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from tasks.base import TASKS
from tasks.synthetic.base import Generated, SyntheticTask, make_structure

VERSION = "1"
SEED = 8106
N_SAMPLES = 3000
ELEMENTS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")
MAX_ATOMS = 32
SCALE_RANGE = (0.98, 1.02)
COVERA_RANGE = (1.55, 1.70)
DISTORTED_FRACTION = 0.3
MAX_STRAIN = 0.03
RATTLE = 0.03  # Å, standard deviation per Cartesian component
N_ELEMENTS_P = (0.15, 0.6, 0.25)  # probability of 1, 2, 3 elements (random decorations)
ORDERED_FRACTION = 0.7  # of fcc/bcc conventional-cell crystals: L1_2, L1_0 or B2 order
# base cells: (name, lattice, atoms per cell) and how often each is drawn (fcc-heavy, so
# that enough crystals are stable relative to the fcc references)
BASES = (("fcc-prim", "fcc", 1), ("fcc-conv", "fcc", 4), ("bcc-prim", "bcc", 1), ("bcc-conv", "bcc", 2),
         ("hcp", "hcp", 2), ("sc", "sc", 1))
BASE_P = (0.2, 0.35, 0.07, 0.13, 0.17, 0.08)
REPEATS = tuple((i, j, k) for i in range(1, 5) for j in range(1, 5) for k in range(1, 5) if i * j * k <= MAX_ATOMS)
ATOMS_PER_CONVENTIONAL = {"fcc": 4, "bcc": 2, "sc": 1}


def emt_energy(cell: np.ndarray, symbols: list[str], frac: np.ndarray) -> float:
    """Total EMT energy (eV) of a periodic cell (rows [3, 3] Å, fractional positions [n, 3])."""
    from ase import Atoms
    from ase.calculators.emt import EMT

    atoms = Atoms(symbols, scaled_positions=frac, cell=cell, pbc=True)
    atoms.calc = EMT()
    return float(atoms.get_potential_energy())


def fcc_cell(a: float) -> np.ndarray:
    """Rows [3, 3] (Å) of the one-atom fcc primitive cell with cubic lattice constant ``a``."""
    return 0.5 * a * np.array([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]])


@functools.lru_cache(maxsize=1)
def fcc_references() -> dict[str, tuple[float, float]]:
    """element -> (EMT equilibrium fcc lattice constant Å, EMT energy per atom eV there)."""
    from ase.data import atomic_numbers, reference_states
    from scipy.optimize import minimize_scalar

    refs = {}
    for el in ELEMENTS:
        a0 = reference_states[atomic_numbers[el]]["a"]
        res = minimize_scalar(lambda a, el=el: emt_energy(fcc_cell(a), [el], np.zeros((1, 3))),
                              bounds=(0.9 * a0, 1.1 * a0), method="bounded", options={"xatol": 1e-7})
        refs[el] = (float(res.x), float(res.fun))
    return refs


def base_cell(lattice: str, conventional: bool, a: float, c_over_a: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows [3, 3] (Å) and fractional positions of the base cell with cubic (or hcp) constant ``a``."""
    if lattice == "hcp":
        cell = np.array([[a, 0.0, 0.0], [-0.5 * a, 0.5 * np.sqrt(3.0) * a, 0.0], [0.0, 0.0, c_over_a * a]])
        return cell, np.array([[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    if lattice == "sc":
        return np.eye(3) * a, np.zeros((1, 3))
    if not conventional:
        rows = [[0.0, 1, 1], [1, 0, 1], [1, 1, 0]] if lattice == "fcc" else [[-1.0, 1, 1], [1, -1, 1], [1, 1, -1]]
        return 0.5 * a * np.array(rows), np.zeros((1, 3))
    if lattice == "fcc":
        return np.eye(3) * a, np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    return np.eye(3) * a, np.array([[0, 0, 0], [0.5, 0.5, 0.5]])


def decorate(rng: np.random.Generator, lattice: str, conventional: bool, n0: int, n_cells: int) -> tuple[list[str], str]:
    """Species of all n0 * n_cells sites (cell-major) and a label: "L12", "L10", "B2" or "random".

    Ordered prototypes repeat one decorated conventional cell; a random decoration
    draws every site from 1-3 elements with Dirichlet-random weights.
    """
    if conventional and lattice in ("fcc", "bcc") and rng.uniform() < ORDERED_FRACTION:
        a, b = (str(e) for e in rng.choice(ELEMENTS, size=2, replace=False))
        if lattice == "bcc":
            return [a, b] * n_cells, "B2"
        if rng.uniform() < 0.5:
            return [a, a, a, b] * n_cells, "L12"
        return [a, a, b, b] * n_cells, "L10"
    k = int(rng.choice(3, p=N_ELEMENTS_P)) + 1
    chosen = [str(e) for e in rng.choice(ELEMENTS, size=k, replace=False)]
    return [str(x) for x in rng.choice(chosen, size=n0 * n_cells, p=rng.dirichlet(np.ones(k)))], "random"


def random_crystal(rng: np.random.Generator, refs: dict[str, tuple[float, float]]):
    """One random crystal: (cell [3, 3] Å, symbols, fractional positions [n, 3], label)."""
    name, lattice, n0 = BASES[rng.choice(len(BASES), p=BASE_P)]
    repeats = [r for r in REPEATS if n0 * np.prod(r) <= MAX_ATOMS]
    rep = np.array(repeats[rng.integers(len(repeats))])
    grid = np.stack(np.meshgrid(*(np.arange(r) for r in rep), indexing="ij"), -1).reshape(-1, 3)
    symbols, decoration = decorate(rng, lattice, name.endswith("conv"), n0, len(grid))
    c_over_a = rng.uniform(*COVERA_RANGE) if lattice == "hcp" else 1.0
    scale = rng.uniform(*SCALE_RANGE)
    # Vegard: mean EMT fcc volume per atom (a^3 / 4), scaled
    volume = np.mean([refs[s][0] ** 3 / 4.0 for s in symbols]) * scale**3
    if lattice == "hcp":
        a = (4.0 * volume / (np.sqrt(3.0) * c_over_a)) ** (1.0 / 3.0)
    else:
        a = (volume * ATOMS_PER_CONVENTIONAL[lattice]) ** (1.0 / 3.0)
    cell, frac = base_cell(lattice, name.endswith("conv"), a, c_over_a)
    frac = ((grid[:, None, :] + frac[None, :, :]) / rep).reshape(-1, 3)  # cell-major, like symbols
    cell = cell * rep[:, None]
    distorted = rng.uniform() < DISTORTED_FRACTION
    if distorted:
        strain = rng.uniform(-MAX_STRAIN, MAX_STRAIN, size=(3, 3))
        cell = cell @ (np.eye(3) + 0.5 * (strain + strain.T))
        frac = frac + rng.normal(0.0, RATTLE, size=frac.shape) @ np.linalg.inv(cell)
    label = f"{name}-{decoration}" + ("-distorted" if distorted else "")
    return cell, symbols, np.mod(frac, 1.0), label


@functools.lru_cache(maxsize=2)
def generate(seed: int = SEED, n: int = N_SAMPLES) -> Generated:
    """``n`` random crystals with their EMT formation energies (eV/atom).

    Rows are drawn one after another from one seeded stream, so ``generate(seed, k)``
    is the first k rows of ``generate(seed)`` (what the fast tests check).
    """
    refs = fcc_references()
    rng = np.random.default_rng(seed)
    ids, structures, targets = [], [], []
    for row in range(n):
        cell, symbols, frac, name = random_crystal(rng, refs)
        s = make_structure(cell, symbols, frac)
        energy = emt_energy(s.lattice.matrix, symbols, s.frac_coords)
        targets.append((energy - sum(refs[x][1] for x in symbols)) / len(symbols))
        ids.append(f"emt-{row:04d}-{s.composition.reduced_formula}-{name}")
        structures.append(s)
    return Generated(tuple(ids), tuple(structures), np.array(targets))


_DESCRIPTION = (
    "3000 unrelaxed crystals of Al/Cu/Ag/Au/Ni/Pd/Pt (fcc, bcc, hcp, sc as primitive or conventional "
    "cells and supercells of 1-32 atoms; ordered L1_2/L1_0/B2 prototypes and random 1-3 element "
    "decorations; 30 % strained and rattled; Vegard volumes scaled 0.98-1.02). Energies from ASE's EMT "
    "relative to each element's fcc crystal at its EMT equilibrium lattice constant; ~13 % negative."
)
_CITATION = "Jacobsen, Stoltze, Norskov, Surf. Sci. 366, 394 (1996); ASE (Larsen et al., J. Phys.: Condens. " \
            "Matter 29, 273002 (2017))."

ALLOYS_EMT = TASKS.register("alloys_emt", SyntheticTask(
    name="alloys_emt",
    target="e_form",
    unit="eV/atom",
    problem_type="regression",
    n_samples=N_SAMPLES,
    leaderboard_comparable=False,
    description="Synthetic physics task: formation energy per atom. " + _DESCRIPTION,
    citation=_CITATION,
    generator="alloys_emt", version=VERSION, seed=SEED, generate=generate, disk_cache=True,
))


def generate_stable(seed: int = SEED) -> Generated:
    """The crystals of ``alloys_emt`` with label 1 where the formation energy is negative."""
    data = dataclasses.replace(ALLOYS_EMT, seed=seed).load()
    return Generated(tuple(data.ids), tuple(data.structures), (data.targets < 0.0).astype(np.float64))


ALLOYS_EMT_STABLE = TASKS.register("alloys_emt_stable", SyntheticTask(
    name="alloys_emt_stable",
    target="e_form_negative",
    unit="",
    problem_type="classification",
    n_samples=N_SAMPLES,
    leaderboard_comparable=False,
    description="Synthetic physics task, classification twin of alloys_emt: 1 when the EMT formation "
                "energy per atom is negative. " + _DESCRIPTION,
    citation=_CITATION,
    generator="alloys_emt_stable", version=VERSION, seed=SEED, generate=generate_stable,
))
