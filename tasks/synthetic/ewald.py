"""``probe_ewald``: the Coulomb energy of two charged slabs whose distance lies beyond the cutoff.

Version 2. Version 1 (ionic crystals with random strain) was a local lookup: its Ewald
energy is a Madelung constant times 1/a, so a per-formula mean already scored MAE/MAD
≈ 0.05 and no encoding could fail. Here every crystal of one formula has *the same
graph within the cutoff*, and only the arrangement beyond it changes the target.

Each crystal is a tetragonal a x a x L cell (a from ``FORMULAS``, L fixed per
formula) holding two three-layer slabs of a CsCl-type (001) stacking, each layer one
atom per a x a square, consecutive layers ``LAYER`` = a/2 apart and offset by
(a/2, a/2):

- slab A = M / X / M (charge +q per a x a column: a cation-rich, positive sheet),
- slab B = X / M / X (charge -q: the negative sheet),

so the cell is neutral, M3X3 (formula MX). Slab A sits at the bottom of the cell;
slab B is centred a random distance x above it, with both vacuum gaps (A to B and B
to A's image) at least ``MIN_GAP`` = 9 Å, beyond the suite's 8 Å cutoff. No edge of
any cutoff-based variant crosses a gap, and each slab is rigid, so for one formula
every graph has the same atoms, cell, edges, shifts, types and edge vectors; only
``pos`` of slab B differs (by a translation along z). The electrostatics does not
care about the cutoff: two sheets of charge ±q/a² in a periodic cell (tin-foil
boundary) have the energy of a capacitor, about (2 pi q² / a²) x (L - x) / L per
column times the Coulomb constant, a smooth function of x across the whole range.

Target: the Ewald energy per atom (eV/atom) from pymatgen's ``EwaldSummation``
(formal charges per element from ``FORMULAS``; its default accuracy, ~1e-6 eV).
A per-formula mean predictor scores MAE/MAD 0.75 (folds 0.67-0.80;
``tasks.synthetic.baselines``); only a model that sees beyond the cutoff (reciprocal
space, or the positions themselves) can do better. The stored structures carry plain elements.
"""
from __future__ import annotations

import functools

import numpy as np

from tasks.base import TASKS
from tasks.synthetic.base import Generated, SyntheticTask, make_structure

VERSION = "2"
SEED = 8104
N_SAMPLES = 300
MIN_GAP = 9.0  # Å, vacuum between the slabs: > the 8 Å default cutoff, so no edge crosses it
SPARE = 30.0  # Å of cell length beyond the two minimal gaps: slab B's centre ranges over it
BOTTOM = 0.5  # Å, height of slab A's lowest layer
# (species M, X), charges (q_M, q_X), CsCl-type cubic a (Å): the in-plane square and 2 x layer spacing
FORMULAS: tuple[tuple[tuple[str, str], tuple[int, int], float], ...] = (
    (("Cs", "Cl"), (1, -1), 4.12),
    (("Cs", "Br"), (1, -1), 4.29),
    (("Cs", "I"), (1, -1), 4.57),
    (("Tl", "Cl"), (1, -1), 3.84),
    (("Tl", "Br"), (1, -1), 3.97),
)


def cell_length(a: float) -> float:
    """L (Å) of a formula's cell: two slabs of thickness a, two minimal gaps and the spare length."""
    return 2 * a + 2 * MIN_GAP + SPARE


def slabs(species: tuple[str, str], a: float, x: float) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Cell [3, 3] (Å), species and Cartesian positions [6, 3] (Å) with slab B's centre x above slab A's.

    Slab A's atoms come first (bottom to top), then slab B's; x ranges over
    [a + MIN_GAP, a + MIN_GAP + SPARE] (centre distance = thickness a + gap).
    """
    m, x_el = species
    length = cell_length(a)
    layer = a / 2
    low, high = a + MIN_GAP, a + MIN_GAP + SPARE
    if not low - 1e-9 <= x <= high + 1e-9:
        raise ValueError(f"slab distance {x} Å outside [{low}, {high}]")
    corner, centre = np.array([0.0, 0.0]), np.array([a / 2, a / 2])
    centre_a = BOTTOM + layer
    rows = []
    for k, (el, xy) in enumerate(((m, corner), (x_el, centre), (m, corner))):  # slab A: M / X / M
        rows.append((el, xy, centre_a + (k - 1) * layer))
    for k, (el, xy) in enumerate(((x_el, corner), (m, centre), (x_el, corner))):  # slab B: X / M / X
        rows.append((el, xy, centre_a + x + (k - 1) * layer))
    pos = np.array([[xy[0], xy[1], z] for _, xy, z in rows])
    return np.diag([a, a, length]), [el for el, _, _ in rows], pos


def ewald_energy_per_atom(structure, charges: dict[str, int]) -> float:
    """pymatgen ``EwaldSummation`` total energy per atom (eV/atom) with ``charges`` per element."""
    from pymatgen.analysis.ewald import EwaldSummation

    decorated = structure.copy()
    decorated.add_oxidation_state_by_element(charges)
    return float(EwaldSummation(decorated).total_energy) / len(structure)


@functools.lru_cache(maxsize=2)
def generate(seed: int = SEED) -> Generated:
    """``N_SAMPLES`` crystals, the formulas in turn, slab distance uniform over its range."""
    rng = np.random.default_rng(seed)
    ids, structures, targets = [], [], []
    for row in range(N_SAMPLES):
        species, charges, a = FORMULAS[row % len(FORMULAS)]
        x = a + MIN_GAP + rng.uniform(0.0, SPARE)
        cell, sites, pos = slabs(species, a, x)
        s = make_structure(cell, sites, pos @ np.linalg.inv(cell))
        ids.append(f"ewald-{row:03d}-{''.join(species)}")
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
        "Periodicity probe: 300 cells holding a positive (M/X/M) and a negative (X/M/X) CsCl-type slab "
        "(Cs/Tl halides, formal charges) at a random distance, both vacuum gaps >= 9 Å; target the "
        "Ewald energy per atom (pymatgen). Every crystal of one formula has the same graph within the "
        "8 Å cutoff (same cell, edges and edge vectors; only slab B's position differs), so a "
        "per-formula mean scores MAE/MAD 0.75 and only long-range models can do better."
    ),
    citation="Ewald, Ann. Phys. 369, 253 (1921); pymatgen EwaldSummation (Ong et al., Comput. Mater. "
             "Sci. 68, 314 (2013)).",
    generator="ewald", version=VERSION, seed=SEED, generate=generate,
    question="fit a Coulomb energy set by charges beyond the cutoff",
))
