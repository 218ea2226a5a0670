"""probe_supercell: one crystal in several cells has one target; folds keep crystals whole."""
from __future__ import annotations

import numpy as np
import pytest

from tasks import get_task
from tasks.synthetic import supercell as sc
from tasks.synthetic.self_image import lattice_cell, lj_energy_per_atom
from tests.tasks.synthetic.helpers import neighbour_multisets


@pytest.fixture(scope="module")
def data():
    return get_task("probe_supercell").load()


def test_layout_groups_and_ids(data):
    assert len(data) == 320 and data.groups is not None
    for i, (rid, g) in enumerate(zip(data.ids, data.groups)):
        assert rid == f"supercell-{g:03d}/rep{i % 4}"
    sizes = [len(s) for s in data.structures]
    assert min(sizes) == 1 and max(sizes) <= 8


def test_folds_hold_whole_crystals(data):
    for fold in data.folds:
        test_groups = set(data.groups[fold.test].tolist())
        assert not test_groups & set(data.groups[fold.train].tolist())
        assert len(fold.test) == 4 * len(test_groups)


def test_every_cell_of_a_crystal_has_the_recomputed_target(data):
    for crystal in (0, 1, 2, 3, 41):  # all four lattice types
        rows = np.flatnonzero(data.groups == crystal)
        assert len(set(data.targets[rows].tolist())) == 1
        assert len({len(data.structures[i]) for i in rows} | {0}) >= 2
        for i in rows:  # the energy per atom of each cell, computed on that cell
            s = data.structures[i]
            assert lj_energy_per_atom(s.lattice.matrix, s.frac_coords) == pytest.approx(data.targets[i], abs=2e-3)


def test_cells_are_the_same_crystal(data):
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher(primitive_cell=True, scale=False, attempt_supercell=True)
    for crystal in (0, 3, 6):
        rows = np.flatnonzero(data.groups == crystal)
        for i in rows[1:]:
            assert matcher.fit(data.structures[rows[0]], data.structures[i])


@pytest.mark.parametrize("variant", ["multi_edge", "lattice"])
def test_multi_edge_and_lattice_neighbourhoods_agree_across_cells(data, variant):
    for crystal in (0, 1, 2, 3):
        rows = np.flatnonzero(data.groups == crystal)
        sets = [set(neighbour_multisets(data.structures[i], variant)) for i in rows]
        assert all(s == sets[0] for s in sets)


def test_distance_graphs_differ_across_cells(data):
    one_atom = next(c for c in range(80) if len(data.structures[4 * c]) == 1)
    rows = np.flatnonzero(data.groups == one_atom)
    sets = [set(neighbour_multisets(data.structures[i], "distance")) for i in rows]
    assert sets[0] != sets[2]  # edgeless primitive cell vs a supercell with edges


def test_transform_keeps_the_energy():
    cell, frac = lattice_cell("hcp", 3.8, 1.6)
    rng = np.random.default_rng(3)
    matrix = np.diag([2, 1, 2]) @ sc.random_unimodular(rng)
    new_cell, new_frac = sc.transform(cell, frac, matrix)
    assert len(new_frac) == 8 and np.linalg.det(matrix) == pytest.approx(4)
    assert lj_energy_per_atom(new_cell, new_frac) == pytest.approx(lj_energy_per_atom(cell, frac), abs=2e-3)
