"""The ``voronoi`` variant: known coordinations, solid-angle weights, invariances, the contract."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.analysis.local_env import VoronoiNN
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from bench.graphs import build_graph
from bench.graphs.variants.voronoi import polygon_solid_angle
from bench.testing import random_rotation, rotate, supercell, translate
from tests import crystals
from tests.bench.graphs._helpers import vectors64

GRAPH = {"cutoff": 8.0, "max_neighbors": 12}


def diamond(a: float = 3.567) -> Structure:
    return Structure(Lattice(a / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])), ["C", "C"],
                     [[0, 0, 0], [0.25, 0.25, 0.25]])


def weights_of(data, atom: int) -> np.ndarray:
    """Solid-angle fractions of the faces of one receiving atom, largest first."""
    keep = data.edge_index[1].numpy() == atom
    return np.sort(data.edge_weight.numpy()[keep])[::-1]


def test_polygon_solid_angle_of_a_cube_face():
    # a face of the unit cube seen from its centre is 1/6 of the sphere, in any vertex order
    square = np.array([[0.5, 0.5, 0.5], [0.5, -0.5, -0.5], [0.5, 0.5, -0.5], [0.5, -0.5, 0.5]])
    omega = polygon_solid_angle(np.zeros(3), square, np.array([1.0, 0, 0]))
    assert omega == pytest.approx(4 * np.pi / 6, rel=1e-12)


@pytest.mark.parametrize("make, count, share", [
    (crystals.fcc, 12, 1 / 12),
    (crystals.hcp, 12, 1 / 12),
    (crystals.rocksalt, 6, 1 / 6),
    (lambda: crystals.simple_cubic(3.0), 6, 1 / 6),  # the 12 + 8 edge/corner contacts have zero area
])
def test_equal_face_coordinations(make, count, share):
    s = make()
    data = build_graph(s, "voronoi", **GRAPH)
    for atom in range(len(s)):
        w = weights_of(data, atom)
        assert len(w) == count
        np.testing.assert_allclose(w, share, atol=1e-6)


def test_bcc_is_eight_plus_six_by_weight():
    data = build_graph(crystals.bcc(3.3), "voronoi", **GRAPH)
    w = weights_of(data, 0)
    assert len(w) == 14
    np.testing.assert_allclose(w[:8], w[0], atol=1e-7)  # hexagons, nearest neighbours at a sqrt(3)/2
    np.testing.assert_allclose(w[8:], w[8], atol=1e-7)  # squares, second neighbours at a
    assert w[0] > 2.5 * w[8]
    dist = np.linalg.norm(vectors64(crystals.bcc(3.3), data), axis=1)
    big = data.edge_weight.numpy() > 0.06
    np.testing.assert_allclose(dist[big], 3.3 * np.sqrt(3) / 2, atol=1e-6)
    np.testing.assert_allclose(dist[~big], 3.3, atol=1e-6)


def test_diamond_is_four_by_weight():
    data = build_graph(diamond(), "voronoi", **GRAPH)
    for atom in (0, 1):
        w = weights_of(data, atom)
        assert w[:4].sum() > 0.85 and w[3] > 20 * w[4]  # 4 bonds; 12 small second-shell faces remain
        dist = np.linalg.norm(vectors64(diamond(), data), axis=1)[data.edge_index[1].numpy() == atom]
        bonds = dist[np.argsort(-data.edge_weight.numpy()[data.edge_index[1].numpy() == atom])[:4]]
        np.testing.assert_allclose(bonds, 3.567 * np.sqrt(3) / 4, atol=1e-6)


@pytest.mark.parametrize("make", [crystals.skewed_triclinic, crystals.hcp, diamond])
def test_weights_sum_to_one_and_match_pymatgen(make):
    s = make()
    data = build_graph(s, "voronoi", **GRAPH)
    reference = VoronoiNN(cutoff=12.0, compute_adj_neighbors=False)
    for atom in range(len(s)):
        w = weights_of(data, atom)
        assert w.sum() == pytest.approx(1.0, abs=1e-6)
        theirs = sorted((n["poly_info"]["solid_angle"] / (4 * np.pi) for n in reference.get_nn_info(s, atom)),
                        reverse=True)
        theirs = [t for t in theirs if t >= 1e-4]
        np.testing.assert_allclose(w, theirs, atol=1e-6)


def test_edges_symmetric_with_equal_weights():
    s = crystals.skewed_triclinic()
    data = build_graph(s, "voronoi", **GRAPH)
    keys = np.column_stack([data.edge_index.t().numpy(), data.edge_shift.numpy()])
    weight = {tuple(k): w for k, w in zip(keys.tolist(), data.edge_weight.tolist())}
    assert len(weight) == len(keys)
    for (j, i, *shift), w in weight.items():
        assert weight[(i, j, *(-np.array(shift)).tolist())] == w
    assert data.edge_type.eq(0).all()


def signature(s: Structure) -> list:
    """Per atom (element, sorted (length, weight) pairs): invariant under rotations and cell choice."""
    data = build_graph(s, "voronoi", **GRAPH)
    dist = np.linalg.norm(vectors64(s, data), axis=1)
    dst = data.edge_index[1].numpy()
    out = []
    for i in range(len(s)):
        pairs = np.round(np.column_stack([dist[dst == i], data.edge_weight.numpy()[dst == i]]), 5)
        out.append((s[i].specie.Z, sorted(map(tuple, pairs.tolist()))))
    return sorted(out)


def test_rotation_translation_and_supercell_invariance():
    s = crystals.skewed_triclinic()
    rng = np.random.default_rng(0)
    base = signature(s)
    assert signature(rotate(s, random_rotation(rng))) == base
    assert signature(translate(s, rng.normal(size=3))) == base
    big = signature(supercell(s, (2, 1, 1)))
    assert sorted(big) == sorted(base + base)


def test_faces_beyond_the_cutoff_are_dropped():
    # a square sheet with 12 Å of vacuum: the faces across the vacuum lie beyond 6 Å
    sheet = Structure(Lattice.tetragonal(3.0, 12.0), ["C"], [[0, 0, 0]])
    data = build_graph(sheet, "voronoi", cutoff=6.0, max_neighbors=12)
    dist = np.linalg.norm(vectors64(sheet, data), axis=1)
    assert (dist <= 6.0).all() and len(dist) == 4  # the 4 in-plane faces; the two 12 Å ones go
    assert data.edge_weight.sum() < 1.0  # the dropped faces' share is not redistributed
    full = build_graph(sheet, "voronoi", cutoff=12.5, max_neighbors=12)
    assert full.edge_weight.sum() == pytest.approx(1.0, abs=1e-6) and full.num_edges == 6


def test_edge_weight_batches():
    graphs = [build_graph(s, "voronoi", **GRAPH) for s in (crystals.fcc(), crystals.rocksalt())]
    batch = Batch.from_data_list(graphs)
    assert batch.edge_weight.shape == (batch.num_edges,) and batch.edge_weight.dtype == torch.float32
    assert "edge_weight" not in build_graph(crystals.fcc(), "multi_edge", **GRAPH)


def test_build_graph_rejects_unknown_or_misshapen_edge_attributes(monkeypatch):
    from bench.graphs import build as build_module

    real = build_module.VARIANTS.get("multi_edge")

    def variant_with(extra):
        def fake(*args, **kwargs):
            return (*real(*args, **kwargs), extra)
        return fake

    for extra, match in (({"edge_colour": torch.zeros(1)}, "edge_colour"), ({"edge_weight": torch.zeros(1)}, "shape")):
        fake = variant_with(extra)
        monkeypatch.setattr(build_module.VARIANTS, "get", lambda name, fn=fake: fn)
        with pytest.raises(ValueError, match=match):
            build_graph(crystals.fcc(), "multi_edge", **GRAPH)
