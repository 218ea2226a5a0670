"""probe_chirality: mirror pairs look identical to O(3)-invariant encodings; labels balanced."""
from __future__ import annotations

import numpy as np
import pytest

from tasks import get_task
from tests.tasks.synthetic.helpers import graph, neighbour_multisets


@pytest.fixture(scope="module")
def data():
    return get_task("probe_chirality").load()


def handedness(structure) -> float:
    """Mean sign of the chain's dihedrals from minimum-image bonds (+1 right-handed)."""
    frac = structure.frac_coords
    n = len(frac)
    bonds = []
    for k in range(n):  # atom k bonds to atom k+1 (generation order), minimum image
        d = frac[(k + 1) % n] - frac[k]
        bonds.append((d - np.round(d)) @ structure.lattice.matrix)
    bonds = np.array(bonds)
    b1, b2, b3 = bonds, np.roll(bonds, -1, axis=0), np.roll(bonds, -2, axis=0)
    return float(np.mean(np.sign(np.einsum("ij,ij->i", np.cross(b1, b2), b3))))


def test_pairs_labels_and_balance(data):
    assert len(data) == 300 and data.targets.mean() == 0.5
    for pair in range(150):
        rows = np.flatnonzero(data.groups == pair)
        assert sorted(data.targets[rows].tolist()) == [0.0, 1.0]
    for fold in data.folds:
        assert data.targets[fold.test].mean() == 0.5
        assert not set(data.groups[fold.test].tolist()) & set(data.groups[fold.train].tolist())


def test_label_is_the_geometric_handedness(data):
    for s, y in zip(data.structures, data.targets):
        assert handedness(s) == (1.0 if y == 1.0 else -1.0)


@pytest.mark.parametrize("variant", ["distance", "multi_edge", "lattice"])
def test_mirror_images_have_identical_distance_multisets(data, variant):
    for pair in (0, 1, 2, 77):
        right, left = np.flatnonzero(data.groups == pair)
        a, b = data.structures[right], data.structures[left]
        assert np.array_equal(a.lattice.matrix, b.lattice.matrix)
        assert neighbour_multisets(a, variant) == neighbour_multisets(b, variant)


def test_mirror_images_are_not_the_same_crystal(data):
    # a proper rotation cannot map a helix onto its mirror image: the dihedrals' signs differ
    right, left = np.flatnonzero(data.groups == 5)
    assert handedness(data.structures[right]) == -handedness(data.structures[left]) == 1.0
    assert graph(data.structures[right], "multi_edge").edge_index.shape[1] > 0


def test_expectations_blind_except_the_positive_control():
    from bench.graphs import VARIANTS
    from bench.report.theory import expected_can

    for variant in VARIANTS.names():
        assert not expected_can("probe_chirality", "nequip", variant).can
        assert expected_can("probe_chirality", "chiral_probe", variant).can


def test_lattice_loops_are_mirror_symmetric(data):
    # The loop set is mirror-closed (docs/design.md): in this mirror-symmetric cell it holds
    # ±(a+c) and ±(a-c) alike, so the loops add no handedness (Matformer's 12 had only a+c).
    from bench.graphs import build_graph

    right = data.structures[int(np.flatnonzero(data.groups == 0)[0])]
    g = build_graph(right, "lattice", cutoff=8.0, max_neighbors=12)
    loops = (g.edge_type == 1) & (g.edge_index[1] == 0)
    vec = right.cart_coords[g.edge_index[0][loops].numpy()] + g.edge_shift[loops].numpy() @ right.lattice.matrix \
        - right.cart_coords[0]
    as_set = {tuple(np.round(v, 6)) for v in vec}
    assert len(as_set) == 18
    assert {tuple(np.round(v, 6)) for v in vec * np.array([1.0, 1.0, -1.0])} == as_set
