"""The control variants (multi_edge_noself, distance_lattice, multi_edge_degree) and a forward
pass of a registered architecture on every new variant."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

import architectures
from bench.graphs import VARIANTS, build_graph
from bench.graphs.variants.multi_edge_degree import matching_radius
from tests import crystals
from tests.bench.graphs._helpers import assert_same_rows, edge_set

NEW_VARIANTS = ["multi_edge_noself", "distance_lattice", "multi_edge_degree", "voronoi"]
GRAPH = {"cutoff": 6.0, "max_neighbors": 12}
CRYSTALS = {"fcc": crystals.fcc, "rocksalt": crystals.rocksalt, "hcp": crystals.hcp,
            "triclinic": crystals.skewed_triclinic, "sc": lambda: crystals.simple_cubic(3.0)}


def keys(data) -> set[tuple]:
    rows = np.column_stack([data.edge_index.t().numpy(), data.edge_shift.numpy(), data.edge_type.numpy()])
    return {tuple(r) for r in rows.tolist()}


def test_registered():
    assert set(NEW_VARIANTS) <= set(VARIANTS.names())


@pytest.mark.parametrize("variant", NEW_VARIANTS)
@pytest.mark.parametrize("name", sorted(CRYSTALS))
def test_edges_unique_with_reverses(variant, name):
    data = build_graph(CRYSTALS[name](), variant, **GRAPH)
    k = keys(data)
    assert len(k) == data.num_edges
    assert {(b, a, -x, -y, -z, t) for a, b, x, y, z, t in k} == k


@pytest.mark.parametrize("name", sorted(CRYSTALS))
@pytest.mark.parametrize("cap", [None, 12])
def test_multi_edge_noself_is_multi_edge_without_self_images(name, cap):
    s = CRYSTALS[name]()
    data = build_graph(s, "multi_edge_noself", cutoff=6.0, max_neighbors=cap)
    assert (data.edge_index[0] != data.edge_index[1]).all()
    if cap is None:  # without a cap it is exactly the multi_edge graph minus its self-images
        full = build_graph(s, "multi_edge", cutoff=6.0, max_neighbors=None)
        assert keys(data) == {k for k in keys(full) if k[0] != k[1]}


def test_multi_edge_noself_one_atom_cell_is_edgeless():
    assert build_graph(crystals.fcc(), "multi_edge_noself", **GRAPH).num_edges == 0


@pytest.mark.parametrize("name", sorted(CRYSTALS))
def test_distance_lattice_is_distance_plus_loops(name):
    s = CRYSTALS[name]()
    data = build_graph(s, "distance_lattice", **GRAPH)
    assert_same_rows(edge_set(s, data, 0), edge_set(s, build_graph(s, "distance", **GRAPH), 0))
    assert_same_rows(edge_set(s, data, 1), edge_set(s, build_graph(s, "lattice", **GRAPH), 1))


@pytest.mark.parametrize("name", sorted(CRYSTALS))
def test_multi_edge_degree_is_the_closest_shell_to_distance_count(name):
    s = CRYSTALS[name]()
    data = build_graph(s, "multi_edge_degree", **GRAPH)
    budget = build_graph(s, "distance", **GRAPH).num_edges
    full = build_graph(s, "multi_edge", cutoff=6.0, max_neighbors=None)
    assert keys(data) <= keys(full)
    if budget == 0:
        assert data.num_edges == 0
        return
    # the selection is a prefix of whole shells, and no other shell boundary is closer to the budget
    lengths = np.round(np.sort(np.linalg.norm(edge_set(s, full)[:, 2:5], axis=1)), 4)
    boundaries = [k + 1 for k in range(len(lengths)) if k + 1 == len(lengths) or lengths[k + 1] > lengths[k]]
    assert data.num_edges in boundaries
    assert all(abs(data.num_edges - budget) <= abs(b - budget) for b in boundaries)


def test_matching_radius_rules():
    dist = np.array([1.0] * 4 + [2.0] * 6 + [3.0] * 2)  # boundaries at 4, 10, 12 edges
    assert matching_radius(dist, 5) == pytest.approx(1.0, abs=1e-3)
    assert matching_radius(dist, 7) == pytest.approx(2.0, abs=1e-3)  # |10-7| = 3 = |4-7|: the larger count
    assert matching_radius(dist, 1) == pytest.approx(1.0, abs=1e-3)  # never inside the first shell
    assert matching_radius(dist, 40) == pytest.approx(3.0, abs=1e-3)


def test_multi_edge_degree_differs_from_distance_in_kind():
    # conventional rock salt at 6 Å: distance joins all 8 x 7 ordered pairs once; the matched
    # graph takes the nearest images instead (the closest shell boundary is the first shell)
    s = crystals.rocksalt()
    data = build_graph(s, "multi_edge_degree", **GRAPH)
    assert data.num_edges == 48  # the first shell (6 per atom); distance has 56 (7 per atom)
    assert build_graph(s, "distance", **GRAPH).num_edges == 56
    hcp = build_graph(crystals.hcp(), "multi_edge_degree", **GRAPH)
    assert (hcp.edge_index[0] == hcp.edge_index[1]).sum() == 12  # in-plane self-images of the first shell


@pytest.mark.parametrize("variant", NEW_VARIANTS)
def test_forward_of_a_registered_architecture(variant):
    torch.manual_seed(0)
    model = architectures.create("schnet", hidden=16, num_filters=16, num_interactions=2, num_gaussians=10,
                                 cutoff=6.0).eval()
    graphs = [build_graph(s(), variant, **GRAPH) for s in (crystals.rocksalt, crystals.hcp, crystals.skewed_triclinic)]
    out = model(Batch.from_data_list(graphs))
    assert out.shape == (3, 1) and torch.isfinite(out).all()
