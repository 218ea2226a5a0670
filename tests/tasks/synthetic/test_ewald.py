"""probe_ewald: pymatgen's Ewald energies against Madelung constants, and the generator."""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Element, Lattice, Structure

from tasks import get_task
from tasks.synthetic import ewald

COULOMB = 14.399645  # e^2 / (4 pi eps0) in eV Å
MADELUNG_ROCKSALT = 1.747565  # per ion pair, referred to the nearest-neighbour distance
MADELUNG_CSCL = 1.762675


@pytest.mark.parametrize("a", [4.2, 5.64])
@pytest.mark.parametrize("conventional", [False, True])
def test_rocksalt_madelung(a, conventional):
    family = "rocksalt-conventional" if conventional else "rocksalt"
    cell, sites, frac = ewald.ideal_cell(family, ("Na", "Cl"), a)
    s = Structure(Lattice(cell), sites, frac)
    expected = -MADELUNG_ROCKSALT * COULOMB / (a / 2) / 2  # per atom = half per ion pair
    assert ewald.ewald_energy_per_atom(s, {"Na": 1, "Cl": -1}) == pytest.approx(expected, rel=1e-5)


def test_cscl_madelung_and_charge_scaling():
    a = 4.12
    cell, sites, frac = ewald.ideal_cell("cscl", ("Cs", "Cl"), a)
    s = Structure(Lattice(cell), sites, frac)
    expected = -MADELUNG_CSCL * COULOMB / (a * np.sqrt(3) / 2) / 2
    assert ewald.ewald_energy_per_atom(s, {"Cs": 1, "Cl": -1}) == pytest.approx(expected, rel=1e-5)
    assert ewald.ewald_energy_per_atom(s, {"Cs": 2, "Cl": -2}) == pytest.approx(4 * expected, rel=1e-5)


@pytest.fixture(scope="module")
def data():
    return get_task("probe_ewald").load()


def test_generated_rows(data):
    assert len(data) == 300
    families = [rid.split("-")[2] for rid in data.ids]
    assert {f: families.count(f) for f in set(families)} == {"rocksalt": 150, "cscl": 75, "perovskite": 75}
    for s in data.structures:
        assert s.is_ordered and all(isinstance(sp, Element) for sp in s.species)  # charges not stored
        assert np.min(s.distance_matrix + np.eye(len(s)) * 99) > 1.2  # no clashing ions
    assert data.targets.max() < 0


def test_targets_recomputed_and_supercell_invariant(data):
    for i in (0, 1, 2, 3, 150):
        s = data.structures[i]
        formula = next(row for row in sum(ewald.FAMILIES.values(), [])
                       if data.ids[i].endswith("".join(row[0])))
        charges = dict(zip(formula[0], formula[1]))
        assert sum(charges[site.specie.symbol] for site in s) == 0
        assert ewald.ewald_energy_per_atom(s, charges) == pytest.approx(data.targets[i], abs=1e-9)
        bigger = s.copy()
        bigger.make_supercell([2, 1, 1])
        assert ewald.ewald_energy_per_atom(bigger, charges) == pytest.approx(data.targets[i], abs=1e-4)


def test_expectations_are_all_approximate():
    task = get_task("probe_ewald")
    assert all(task.expected_distinguishable.values())
    assert all(r.startswith("approximately") for r in task.expected_reasons.values())
