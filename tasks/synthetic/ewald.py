"""``probe_ewald``: the Ewald (point-charge Coulomb) energy of distorted ionic crystals.

Three families of ionic cells with formal oxidation-state charges: rock salt (2-atom
primitive or 8-atom conventional cell), CsCl (2 atoms) and cubic perovskite ABO3
(5 atoms). Each crystal gets a random lattice constant (0.92-1.08 times a typical
one), a random symmetric strain (components up to ``MAX_STRAIN``) and random atomic
displacements (up to ``MAX_DISPLACEMENT`` Å per component).

Target: the Ewald energy per atom (eV/atom) from pymatgen's ``EwaldSummation``
(charges from ``add_oxidation_state_by_element``; its default accuracy, ~1e-6 eV
here). The Coulomb sum is conditionally convergent and reaches far beyond any
cutoff; the stored structures carry plain elements, the charges are fixed per
element (``FAMILIES``).
"""
from __future__ import annotations

import functools

import numpy as np

from tasks.base import TASKS
from tasks.synthetic.base import Generated, SyntheticTask, make_structure

VERSION = "1"
SEED = 8104
N_SAMPLES = 300
SCALE_RANGE = (0.92, 1.08)
MAX_STRAIN = 0.04
MAX_DISPLACEMENT = 0.12  # Å
# family -> list of (species of the formula unit, charges, typical cubic a in Å)
FAMILIES: dict[str, list[tuple[tuple[str, ...], tuple[int, ...], float]]] = {
    "rocksalt": [(("Na", "Cl"), (1, -1), 5.64), (("K", "Cl"), (1, -1), 6.29), (("Li", "F"), (1, -1), 4.03),
                 (("Na", "F"), (1, -1), 4.63), (("K", "Br"), (1, -1), 6.60), (("Mg", "O"), (2, -2), 4.21),
                 (("Ca", "O"), (2, -2), 4.81), (("Sr", "O"), (2, -2), 5.16), (("Ba", "O"), (2, -2), 5.52)],
    "cscl": [(("Cs", "Cl"), (1, -1), 4.12), (("Cs", "Br"), (1, -1), 4.29), (("Cs", "I"), (1, -1), 4.57),
             (("Tl", "Cl"), (1, -1), 3.84)],
    "perovskite": [(("Sr", "Ti", "O"), (2, 4, -2), 3.905), (("Ba", "Ti", "O"), (2, 4, -2), 4.00),
                   (("Ca", "Ti", "O"), (2, 4, -2), 3.84), (("K", "Nb", "O"), (1, 5, -2), 4.02),
                   (("La", "Al", "O"), (3, 3, -2), 3.79), (("Na", "Ta", "O"), (1, 5, -2), 3.93)],
}
FAMILY_ORDER = ("rocksalt", "rocksalt-conventional", "cscl", "perovskite")


def ideal_cell(family: str, species: tuple[str, ...], a: float) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Cell rows [3, 3] (Å), species per site and fractional positions of the undistorted crystal."""
    if family == "rocksalt":
        cell = 0.5 * a * np.array([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]])
        return cell, list(species), np.array([[0, 0, 0], [0.5, 0.5, 0.5]])
    if family == "rocksalt-conventional":
        fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
        frac = np.concatenate([fcc, np.mod(fcc + 0.5 * np.array([1, 0, 0]), 1.0)])
        return np.eye(3) * a, [species[0]] * 4 + [species[1]] * 4, frac
    if family == "cscl":
        return np.eye(3) * a, list(species), np.array([[0, 0, 0], [0.5, 0.5, 0.5]])
    if family == "perovskite":
        frac = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        return np.eye(3) * a, [species[0], species[1]] + [species[2]] * 3, frac
    raise ValueError(f"unknown family {family!r}; expected one of {FAMILY_ORDER}")


def ewald_energy_per_atom(structure, charges: dict[str, int]) -> float:
    """pymatgen ``EwaldSummation`` total energy per atom (eV/atom) with ``charges`` per element."""
    from pymatgen.analysis.ewald import EwaldSummation

    decorated = structure.copy()
    decorated.add_oxidation_state_by_element(charges)
    return float(EwaldSummation(decorated).total_energy) / len(structure)


@functools.lru_cache(maxsize=2)
def generate(seed: int = SEED) -> Generated:
    """``N_SAMPLES`` crystals, the four families in turn, each with a random formula."""
    rng = np.random.default_rng(seed)
    ids, structures, targets = [], [], []
    for row in range(N_SAMPLES):
        family = FAMILY_ORDER[row % len(FAMILY_ORDER)]
        choices = FAMILIES[family.replace("-conventional", "")]
        species, charges, a0 = choices[rng.integers(len(choices))]
        cell, sites, frac = ideal_cell(family, species, a0 * rng.uniform(*SCALE_RANGE))
        strain = rng.uniform(-MAX_STRAIN, MAX_STRAIN, size=(3, 3))
        cell = cell @ (np.eye(3) + 0.5 * (strain + strain.T))
        frac = frac + rng.uniform(-MAX_DISPLACEMENT, MAX_DISPLACEMENT, size=frac.shape) @ np.linalg.inv(cell)
        s = make_structure(cell, sites, np.mod(frac, 1.0))
        ids.append(f"ewald-{row:03d}-{family}-{''.join(species)}")
        structures.append(s)
        targets.append(ewald_energy_per_atom(s, dict(zip(species, charges))))
    return Generated(tuple(ids), tuple(structures), np.array(targets))


PROBE_EWALD = TASKS.register("probe_ewald", SyntheticTask(
    name="probe_ewald",
    target="ewald_energy_per_atom",
    unit="eV/atom",
    problem_type="regression",
    n_samples=N_SAMPLES,
    leaderboard_comparable=False,
    description=(
        "Periodicity probe: 300 randomly scaled, strained and rattled ionic crystals (rock salt, CsCl, "
        "cubic perovskite; 2-8 atoms; formal charges fixed per element); target the Ewald energy per "
        "atom from pymatgen's EwaldSummation, a long-range periodic sum that no cutoff contains."
    ),
    citation="Ewald, Ann. Phys. 369, 253 (1921); pymatgen EwaldSummation (Ong et al., Comput. Mater. "
             "Sci. 68, 314 (2013)).",
    generator="ewald", version=VERSION, seed=SEED, generate=generate,
    question="fit a long-range Coulomb energy (approximately, from local geometry)",
    expectations=(
        ("distance", True, "approximately: composition and nearest distances set most of it; no "
                           "charge beyond 8 Å is seen and two-atom cells show one distance per pair"),
        ("multi_edge", True, "approximately: all images within 8 Å; the tail beyond stays implicit"),
        ("lattice", True, "approximately: as multi_edge, plus the cell shape through the loops"),
    ),
))
