"""Neighbour search: analytic shells, other bases, skewed cells, the cap, errors."""
from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from bench.graphs import GraphError, build_graph
from tests import crystals
from tests.bench.graphs._helpers import (
    assert_same_rows,
    brute_force_edges,
    edge_set,
    per_atom_distances,
    vectors64,
)

# conventional-cell basis (fractions of the cubic edge) of each cubic lattice
CONVENTIONAL = {
    "sc": [[0, 0, 0]],
    "bcc": [[0, 0, 0], [0.5, 0.5, 0.5]],
    "fcc": [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
}


def analytic_shells(kind: str, a: float, cutoff: float) -> Counter:
    """Counter {distance rounded to 1e-6: count} of lattice points within the cutoff."""
    n = int(np.ceil(cutoff / a)) + 1
    cells = np.array(list(itertools.product(range(-n, n + 1), repeat=3)), dtype=float)
    points = (cells[:, None, :] + np.array(CONVENTIONAL[kind], dtype=float)[None]).reshape(-1, 3) * a
    d = np.linalg.norm(points, axis=1)
    return Counter(np.round(d[(d > 1e-9) & (d <= cutoff)], 6).tolist())


@pytest.mark.parametrize(
    "kind, structure, a",
    [("sc", crystals.simple_cubic(3.0), 3.0), ("bcc", crystals.bcc(3.3), 3.3), ("fcc", crystals.fcc(3.6), 3.6)],
)
def test_one_atom_cells_give_analytic_shells(kind: str, structure: Structure, a: float) -> None:
    cutoff = 8.0
    data = build_graph(structure, "multi_edge", cutoff=cutoff, max_neighbors=None)
    dist = np.linalg.norm(vectors64(structure, data), axis=1)
    assert Counter(np.round(dist, 6).tolist()) == analytic_shells(kind, a, cutoff)
    assert (dist > 1e-6).all()
    src, dst = data.edge_index
    assert (src == 0).all() and (dst == 0).all()  # all self-image edges
    assert (data.edge_shift != 0).any(dim=1).all()


def test_simple_cubic_first_shells_are_6_12_8_6_24() -> None:
    a = 3.0
    data = build_graph(crystals.simple_cubic(a), "multi_edge", cutoff=a * np.sqrt(5) + 1e-3, max_neighbors=None)
    dist = np.round(data.edge_shift.double().norm(dim=1).numpy() * a, 6)
    expected = {round(a * np.sqrt(k), 6): c for k, c in [(1, 6), (2, 12), (3, 8), (4, 6), (5, 24)]}
    assert Counter(dist.tolist()) == expected


@pytest.mark.parametrize("make", [crystals.rocksalt, crystals.hcp])
@pytest.mark.parametrize("cap", [None, 12])
def test_supercell_and_sheared_basis_keep_every_atoms_distances(make, cap) -> None:
    base = make()
    ref = per_atom_distances(base, build_graph(base, "multi_edge", cutoff=6.0, max_neighbors=cap))
    for other in (crystals.supercell(base, [2, 2, 1]), crystals.sheared(base)):
        got = per_atom_distances(other, build_graph(other, "multi_edge", cutoff=6.0, max_neighbors=cap))
        for atom, orig in enumerate(crystals.same_site_map(other, base)):
            np.testing.assert_allclose(got[atom], ref[orig], atol=1e-6)


def test_skewed_cell_matches_niggli_cell_and_brute_force() -> None:
    skewed = crystals.skewed_triclinic()
    lat = skewed.lattice
    widths = lat.volume / np.linalg.norm(np.cross(lat.matrix[[1, 2, 0]], lat.matrix[[2, 0, 1]]), axis=1)
    cutoff = 6.0
    assert widths.min() < 0.5 < cutoff / 10  # vector lengths alone would miss most images
    reduced = Structure(
        lat.get_niggli_reduced_lattice(), skewed.species, skewed.cart_coords, coords_are_cartesian=True
    )
    r_widths = reduced.lattice.volume / np.linalg.norm(
        np.cross(reduced.lattice.matrix[[1, 2, 0]], reduced.lattice.matrix[[2, 0, 1]]), axis=1
    )
    assert np.ceil(cutoff / r_widths).max() + 1 <= 6  # -6..6 is generous for the reduced cell
    truth = brute_force_edges(reduced, cutoff, 6)  # same Cartesian frame and positions
    for structure in (skewed, reduced):
        data = build_graph(structure, "multi_edge", cutoff=cutoff, max_neighbors=None)
        assert_same_rows(edge_set(structure, data), truth)
    for cap in (None, 12):
        a = per_atom_distances(skewed, build_graph(skewed, "multi_edge", cutoff=cutoff, max_neighbors=cap))
        b = per_atom_distances(reduced, build_graph(reduced, "multi_edge", cutoff=cutoff, max_neighbors=cap))
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, atol=1e-6)


def test_cap_is_tie_inclusive_on_simple_cubic() -> None:
    sc = crystals.simple_cubic(3.0)
    data = build_graph(sc, "multi_edge", cutoff=8.0, max_neighbors=12)
    vec = vectors64(sc, data)
    assert data.num_edges == 18  # 6 at a and all 12 at a*sqrt(2)
    np.testing.assert_allclose(np.sort(np.linalg.norm(vec, axis=1)), [3.0] * 6 + [3.0 * np.sqrt(2)] * 12)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    np.testing.assert_allclose(unit.sum(axis=0), 0.0, atol=1e-12)
    assert build_graph(sc, "multi_edge", cutoff=8.0, max_neighbors=6).num_edges == 6
    assert build_graph(sc, "multi_edge", cutoff=8.0, max_neighbors=7).num_edges == 18


def test_cap_symmetrises_with_reverse_edges() -> None:
    # atom 0's nearest is atom 2 (1.0 Å), atom 1's nearest is atom 0 (1.5 Å): with k=1,
    # atom 0 keeps only 2 -> 0, and the union must add 1 -> 0 as the reverse of 0 -> 1
    s = Structure(Lattice.cubic(10.0), ["H"] * 3, [[0, 0, 0], [1.5, 0, 0], [-1, 0, 0]], coords_are_cartesian=True)
    data = build_graph(s, "multi_edge", cutoff=8.0, max_neighbors=1)
    pairs = sorted(map(tuple, data.edge_index.t().tolist()))
    assert pairs == [(0, 1), (0, 2), (1, 0), (2, 0)]


@pytest.mark.parametrize("variant", ["multi_edge", "distance", "lattice"])
def test_isolated_atom_is_an_error_naming_the_structure(variant: str) -> None:
    lone = crystals.simple_cubic(10.0)
    with pytest.raises(GraphError, match=r"mp-lonely.*atom 0.*8\.0"):
        build_graph(lone, variant, cutoff=8.0, structure_id="mp-lonely")
    assert issubclass(GraphError, ValueError)


def test_one_atom_cell_under_distance_has_no_edges() -> None:
    sc = crystals.simple_cubic(3.0)
    data = build_graph(sc, "distance", cutoff=8.0, max_neighbors=None)
    assert data.edge_index.shape == (2, 0) and data.edge_shift.shape == (0, 3) and data.num_nodes == 1
    assert build_graph(sc, "multi_edge", cutoff=3.5, max_neighbors=None).num_edges == 6


def test_coinciding_atoms_are_an_error() -> None:
    s = Structure(Lattice.cubic(3.0), ["H", "H"], [[0.1, 0, 0], [1.1, 0, 0]])
    with pytest.raises(GraphError, match="coincide"):
        build_graph(s, "multi_edge", structure_id="dup")


@pytest.mark.parametrize("variant", ["multi_edge", "distance", "lattice"])
def test_positions_outside_the_cell_give_the_same_edges(variant: str) -> None:
    lattice = Lattice.from_parameters(4.1, 4.6, 5.2, 80, 95, 104)
    frac = [[1.3, -0.4, 0.2], [0.25, 2.7, -1.1], [-0.6, 0.45, 0.95]]
    outside = Structure(lattice, ["Na", "Cl", "K"], frac)
    inside = Structure(lattice, ["Na", "Cl", "K"], frac, to_unit_cell=True)
    assert (outside.frac_coords.min() < 0) and (outside.frac_coords.max() > 1)
    a = build_graph(outside, variant, cutoff=6.0, max_neighbors=12)
    b = build_graph(inside, variant, cutoff=6.0, max_neighbors=12)
    assert_same_rows(edge_set(outside, a), edge_set(inside, b))
    neighbour = a.edge_type.numpy() == 0  # lattice loops may be longer than the cutoff
    assert np.linalg.norm(vectors64(outside, a)[neighbour], axis=1).max() <= 6.0 + 1e-8
