"""Edge variants: uniqueness and reverses, lattice loops, minimum-image distance edges."""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from bench.graphs import VARIANTS, build_graph
from tests import crystals
from tests.bench.graphs._helpers import assert_same_rows, edge_set, min_image_distances, vectors64

CRYSTALS = {
    "sc": crystals.simple_cubic,
    "bcc": crystals.bcc,
    "fcc": crystals.fcc,
    "rocksalt": crystals.rocksalt,
    "hcp": crystals.hcp,
    "triclinic": crystals.skewed_triclinic,
}


def loop_vectors(structure: Structure, data, atom: int) -> np.ndarray:
    """[18, 3] loop vectors (Å) received by one atom, sorted."""
    dst = data.edge_index[1].numpy()
    keep = (data.edge_type.numpy() == 1) & (dst == atom)
    vec = vectors64(structure, data)[keep]
    return vec[np.lexsort(np.round(vec, 6).T[::-1])]


def gram_signature(vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation-invariant description of a vector set: sorted lengths, sorted pairwise dot products."""
    gram = vec @ vec.T
    return np.sort(np.sqrt(np.diag(gram))), np.sort(gram[np.triu_indices(len(vec), 1)])


@pytest.mark.parametrize("variant", ["multi_edge", "distance", "lattice"])
@pytest.mark.parametrize("name", sorted(CRYSTALS))
@pytest.mark.parametrize("cap", [None, 12])
def test_edges_are_unique_and_have_reverses(variant: str, name: str, cap) -> None:
    s = CRYSTALS[name]()
    data = build_graph(s, variant, cutoff=6.0, max_neighbors=cap)
    keys = np.column_stack([data.edge_index.t().numpy(), data.edge_shift.numpy(), data.edge_type.numpy()])
    as_set = {tuple(k) for k in keys.tolist()}
    assert len(as_set) == len(keys)
    reverse = np.column_stack([keys[:, 1], keys[:, 0], -keys[:, 2:5], keys[:, 5]])
    assert {tuple(k) for k in reverse.tolist()} == as_set
    assert (np.linalg.norm(vectors64(s, data), axis=1) > 1e-6).all()
    assert data.edge_type.unique().tolist() in ([0], [0, 1], [])


def test_variants_are_registered() -> None:
    assert {"multi_edge", "distance", "lattice"} <= set(VARIANTS.names())


@pytest.mark.parametrize(
    "make, lengths",
    [
        (lambda: crystals.simple_cubic(3.0), [3.0] * 6 + [3.0 * np.sqrt(2)] * 12),
        # obtuse reduced cell: sums are the cube edges, differences the face diagonals
        (lambda: crystals.bcc(3.3), [3.3 * np.sqrt(3) / 2] * 6 + [3.3] * 6 + [3.3 * np.sqrt(2)] * 6),
        # 60 degree cell: differences are nearest neighbours too (all 12 of them), sums longer
        (lambda: crystals.fcc(3.6), [3.6 / np.sqrt(2)] * 12 + [3.6 * np.sqrt(1.5)] * 6),
        (lambda: crystals.rocksalt(5.64), [5.64 / np.sqrt(2)] * 12 + [5.64 * np.sqrt(1.5)] * 6),
    ],
)
def test_lattice_adds_eighteen_loops_of_the_reduced_primitive_lattice(make, lengths) -> None:
    s = make()
    data = build_graph(s, "lattice", cutoff=5.0, max_neighbors=12)
    multi = build_graph(s, "multi_edge", cutoff=5.0, max_neighbors=12)
    assert_same_rows(edge_set(s, data, edge_type=0), edge_set(s, multi))
    loops = data.edge_type == 1
    assert np.bincount(data.edge_index[1][loops].numpy(), minlength=len(s)).tolist() == [18] * len(s)
    # Symmetric lattices have several equally reduced bases, so the loops are checked for
    # what defines them: ±(a, b, c, a±b, a±c, b±c) of a primitive basis with the analytic
    # reduced lengths, every one a translation of the primitive lattice.
    prim = s.get_primitive_structure(tolerance=0.01).lattice
    for atom in range(len(s)):
        vec = loop_vectors(s, data, atom)
        np.testing.assert_allclose(np.sort(np.linalg.norm(vec, axis=1)), lengths, atol=1e-6)
        flipped = -vec
        np.testing.assert_allclose(flipped[np.lexsort(np.round(flipped, 6).T[::-1])], vec, atol=1e-9)
        frac = vec @ np.linalg.inv(prim.matrix)
        np.testing.assert_allclose(frac, np.rint(frac), atol=1e-6)
        found = [(x, y, z) for x in vec for y in vec for z in vec
                 if abs(abs(np.linalg.det(np.stack([x, y, z]))) - prim.volume) < 1e-6
                 and all(np.isclose(np.linalg.norm(vec - t, axis=1), 0, atol=1e-6).any()
                         for t in (x + y, x - y, x + z, x - z, y + z, y - z))]
        assert found, "the loops are not a primitive basis and its pairwise sums and differences"


@pytest.mark.parametrize("make", [crystals.rocksalt, crystals.hcp, crystals.skewed_triclinic])
def test_lattice_loops_do_not_depend_on_the_cell_chosen(make) -> None:
    base = make()
    ref = gram_signature(loop_vectors(base, build_graph(base, "lattice", cutoff=4.0), 0))
    for other in (crystals.sheared(base), crystals.supercell(base, [2, 1, 1])):
        data = build_graph(other, "lattice", cutoff=4.0)
        for atom in range(len(other)):
            got = gram_signature(loop_vectors(other, data, atom))
            np.testing.assert_allclose(got[0], ref[0], atol=1e-6)
            np.testing.assert_allclose(got[1], ref[1], atol=1e-5)


def test_supercell_loop_joins_an_atom_to_its_translate() -> None:
    s = crystals.supercell(crystals.simple_cubic(3.0), [2, 1, 1])  # atoms at x = 0 and x = 3
    data = build_graph(s, "lattice", cutoff=4.0)
    vec = vectors64(s, data)
    src, dst = data.edge_index.numpy()
    along_x = (data.edge_type.numpy() == 1) & np.all(np.abs(np.abs(vec) - [3.0, 0, 0]) < 1e-6, axis=1)
    assert along_x.sum() == 4  # +a and -a for each of the two atoms
    assert (src[along_x] != dst[along_x]).all()
    pos, cell = s.cart_coords, s.lattice.matrix
    image = pos[src[along_x]] + data.edge_shift.numpy()[along_x] @ cell
    np.testing.assert_allclose(image, pos[dst[along_x]] + vec[along_x], atol=1e-9)


@pytest.mark.parametrize("name", ["rocksalt", "hcp", "triclinic", "bcc"])
@pytest.mark.parametrize("cap", [None, 12])
def test_distance_is_one_minimum_image_edge_per_pair(name: str, cap) -> None:
    s = CRYSTALS[name]()
    reduced = Structure(
        s.lattice.get_niggli_reduced_lattice(), s.species, s.cart_coords, coords_are_cartesian=True
    )
    d_min = min_image_distances(reduced, 3)  # [dst, src], physical so any basis will do
    cutoff = 5.0
    data = build_graph(s, "distance", cutoff=cutoff, max_neighbors=cap)
    src, dst = data.edge_index.numpy()
    assert (src != dst).all()
    pairs = list(zip(src.tolist(), dst.tolist()))
    assert len(set(pairs)) == len(pairs)
    dist = np.linalg.norm(vectors64(s, data), axis=1)
    np.testing.assert_allclose(dist, d_min[dst, src], atol=1e-9)
    if cap is None:
        off_diagonal = ~np.eye(len(s), dtype=bool)
        assert len(pairs) == int(((d_min <= cutoff) & off_diagonal).sum())


def test_distance_breaks_image_ties_deterministically() -> None:
    # atom 1 is exactly halfway along x: images at -2 and +2 Å are tied
    s = Structure(Lattice.cubic(4.0), ["H", "H"], [[0, 0, 0], [0.5, 0, 0]])
    data = build_graph(s, "distance", cutoff=3.0, max_neighbors=None)
    assert data.edge_index.t().tolist() == [[1, 0], [0, 1]]
    assert data.edge_shift.tolist() == [[0, 0, 0], [0, 0, 0]]  # smallest shift for (0 -> 1), reverse negated
    # body centre: 8 tied images, the chosen one is still the same every time
    s = Structure(Lattice.cubic(4.0), ["H", "H"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    data = build_graph(s, "distance", cutoff=3.5, max_neighbors=None)
    assert data.num_edges == 2
    shifts = data.edge_shift[data.edge_index[0] == 0].tolist()
    assert shifts == [[0, 0, 0]] and data.edge_shift[data.edge_index[0] == 1].tolist() == [[0, 0, 0]]


@pytest.mark.parametrize("make", [crystals.hcp, crystals.fcc, crystals.rocksalt, crystals.skewed_triclinic])
def test_lattice_loops_of_a_rotated_crystal_are_the_rotated_loops(make) -> None:
    # Symmetric lattices have several equally reduced bases (hcp: a+c or a-c); the choice
    # must not follow float noise of the orientation, or direction-aware models break.
    from bench.testing import random_rotation, rotate

    base = make()
    ref = build_graph(base, "lattice", cutoff=4.0)
    ref_loops = {atom: loop_vectors(base, ref, atom) for atom in range(len(base))}
    rng = np.random.default_rng(11)
    for _ in range(5):
        R = random_rotation(rng)
        turned = rotate(base, R)
        data = build_graph(turned, "lattice", cutoff=4.0)
        for atom in range(len(base)):
            got = loop_vectors(turned, data, atom)
            expected = ref_loops[atom] @ R.T
            expected = expected[np.lexsort(np.round(expected, 6).T[::-1])]
            np.testing.assert_allclose(got, expected, atol=1e-9)
