"""alloys_emt: EMT references, formation energies recomputed independently, the stable twin."""
from __future__ import annotations

import numpy as np
import pytest

from tasks import get_task
from tasks.synthetic import alloys_emt as ae


def emt_per_atom_via_adaptor(structure) -> float:
    """EMT energy per atom through pymatgen's own ASE conversion (not the generator's)."""
    from ase.calculators.emt import EMT
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = EMT()
    return atoms.get_potential_energy() / len(atoms)


@pytest.fixture(scope="module")
def head():
    return ae.generate(ae.SEED, 12)


def test_references_are_emt_minima():
    from ase.build import bulk
    from ase.calculators.emt import EMT

    refs = ae.fcc_references()
    assert set(refs) == set(ae.ELEMENTS)
    for el, (a, e) in refs.items():
        energies = []
        for f in (0.995, 1.0, 1.005):
            atoms = bulk(el, "fcc", a=a * f)  # ASE's own one-atom fcc cell
            atoms.calc = EMT()
            energies.append(atoms.get_potential_energy())
        assert energies[1] == pytest.approx(e, abs=1e-9)
        assert energies[1] < energies[0] and energies[1] < energies[2]


def test_head_rows_recomputed(head):
    refs = ae.fcc_references()
    assert len(head.ids) == 12
    for s, y in zip(head.structures, head.targets):
        assert 1 <= len(s) <= ae.MAX_ATOMS and set(s.symbol_set) <= set(ae.ELEMENTS)
        mean_ref = np.mean([refs[site.specie.symbol][1] for site in s])
        assert emt_per_atom_via_adaptor(s) - mean_ref == pytest.approx(y, abs=1e-9)


def test_rows_are_a_prefix_of_the_stream(head):
    shorter = ae.generate(ae.SEED, 5)
    assert shorter.ids == head.ids[:5]
    assert shorter.targets.tobytes() == head.targets[:5].tobytes()


def test_pure_element_at_reference_has_zero_formation_energy():
    refs = ae.fcc_references()
    a, e = refs["Cu"]
    cell, frac = ae.base_cell("fcc", True, a, 1.0)
    assert ae.emt_energy(cell, ["Cu"] * 4, frac) / 4 == pytest.approx(e, abs=1e-9)


def test_ordered_prototypes():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        symbols, label = ae.decorate(rng, "fcc", True, 4, 2)
        seen.add(label)
        if label == "L12":
            assert sorted(symbols[:4]).count(symbols[3]) == 1 and symbols[4:] == symbols[:4]
    assert seen == {"L12", "L10", "random"}


def test_task_metadata():
    reg, cls = get_task("alloys_emt"), get_task("alloys_emt_stable")
    assert reg.n_samples == cls.n_samples == 3000 and reg.disk_cache
    assert reg.problem_type == "regression" and reg.unit == "eV/atom"
    assert cls.problem_type == "classification"


@pytest.mark.slow
def test_full_tasks():
    data = get_task("alloys_emt").load()
    stable = get_task("alloys_emt_stable").load()
    assert len(data) == 3000 and stable.ids == data.ids
    assert np.array_equal(stable.targets, (data.targets < 0).astype(float))
    assert 0.05 < stable.targets.mean() < 0.5
    sizes = {len(s) for s in data.structures}
    assert min(sizes) == 1 and max(sizes) == 32
    for fold in stable.folds:  # stratified
        assert abs(stable.targets[fold.test].mean() - stable.targets.mean()) < 0.01
    assert stable.verification.startswith("generated: alloys_emt_stable@")
