"""EMPNN: the equivariant battery plus known answers (parity, symmetry zeros, loops beyond the cutoff)."""
import math

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from architectures.common import cosine_cutoff
from architectures.empnn import safe_norm
from bench.graphs import build_graph
from bench.testing import graph_float64, predict_structures
from tests import crystals
from tests.architectures.equivariant_mixin import EquivariantArchitectureTests
from tests.architectures.mixin import GRAPH, distorted_pair

HIDDEN = 8


def exact_batch(structure: Structure, variant: str, **graph_kwargs) -> Batch:
    """A one-graph float64 batch whose positions and cell are the structure's own (not float32-rounded)."""
    return Batch.from_data_list([graph_float64(structure, variant, structure_id="equivariance-test", **graph_kwargs)])


class TestEMPNN(EquivariantArchitectureTests):
    architecture = "empnn"
    hparams = {"hidden": HIDDEN, "num_layers": 2, "num_rbf": 8}
    # PaiNN-style: scalars (0e) and vectors (1o) only; no l=2 channel by design.
    required_ls = (0, 1)



def _layers(model, structure, variant):
    return model.node_features(exact_batch(structure, variant, **GRAPH))


def test_inversion_flips_vectors_and_keeps_scalars():
    model = TestEMPNN().make()
    s = distorted_pair()
    inverted = Structure(Lattice(-s.lattice.matrix), s.species, -s.cart_coords, coords_are_cartesian=True)
    for (name, _, f), (_, _, g) in zip(_layers(model, s, "lattice"), _layers(model, inverted, "lattice")):
        torch.testing.assert_close(g[:, :HIDDEN], f[:, :HIDDEN], atol=1e-10, rtol=1e-8, msg=name)
        torch.testing.assert_close(g[:, HIDDEN:], -f[:, HIDDEN:], atol=1e-10, rtol=1e-8, msg=name)
    assert f[:, HIDDEN:].abs().max() > 1e-3  # the vectors are not trivially zero


def test_edgeless_graph_keeps_zero_vectors_and_finite_gradients():
    model = TestEMPNN().make(double=False).train()
    batch = Batch.from_data_list([build_graph(crystals.simple_cubic(3.0), "distance", **GRAPH)])
    layers = model.node_features(batch)
    assert len(layers) == 1 + 2 * 2  # embedding + (message, update) per layer
    for _, _, f in layers:
        assert torch.equal(f[:, HIDDEN:], torch.zeros_like(f[:, HIDDEN:]))
    model(batch).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_safe_norm_gradient_at_zero_is_finite():
    v = torch.zeros(2, 3, 4, requires_grad=True)
    safe_norm(v, dim=1).sum().backward()
    assert torch.equal(v.grad, torch.zeros_like(v))
    torch.testing.assert_close(safe_norm(torch.tensor([[3.0, 4.0]]), dim=-1), torch.tensor([5.0]))


def test_cosine_cutoff_known_values():
    r = torch.tensor([0.0, 2.5, 5.0, 6.0], dtype=torch.float64)
    torch.testing.assert_close(cosine_cutoff(r, 5.0), torch.tensor([1.0, 0.5, 0.0, 0.0], dtype=torch.float64))
    assert math.isclose(float(cosine_cutoff(torch.tensor([4.999]), 5.0)), 0.0, abs_tol=1e-6)


def test_lattice_loops_beyond_cutoff_are_seen():
    # A layer crystal whose c axis (vacuum) is longer than the cutoff: only lattice loops
    # reach across it, so `lattice` sees the vacuum length and `multi_edge` does not.
    def slab(c: float) -> Structure:
        return Structure(Lattice.hexagonal(3.2, c), ["Mo", "S"], [[0, 0, 0.5], [1 / 3, 2 / 3, 0.5 + 1.5 / c]])

    model = TestEMPNN().make()
    thick, thicker = slab(15.0), slab(20.0)
    assert float(build_graph(thick, "lattice", **GRAPH).edge_type.sum()) > 0
    with torch.no_grad():
        diff = {v: float((predict_structures(model, [thick], v, **GRAPH)
                          - predict_structures(model, [thicker], v, **GRAPH)).abs().max()) for v in ("multi_edge", "lattice")}
    assert diff["multi_edge"] < 1e-12
    assert diff["lattice"] > 1e-6


def test_features_use_e3nn_mul_major_layout():
    # A rotation by 90 degrees about z maps (x, y, z) -> (-y, x, z) for every channel's triple.
    model = TestEMPNN().make()
    s = distorted_pair()
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rotated = Structure(Lattice(s.lattice.matrix @ rot.T), s.species, s.cart_coords @ rot.T, coords_are_cartesian=True)
    f = _layers(model, s, "multi_edge")[-1][2][:, HIDDEN:].reshape(-1, HIDDEN, 3)
    g = _layers(model, rotated, "multi_edge")[-1][2][:, HIDDEN:].reshape(-1, HIDDEN, 3)
    torch.testing.assert_close(g, torch.stack([-f[..., 1], f[..., 0], f[..., 2]], dim=-1), atol=1e-10, rtol=1e-8)


def test_vectors_vanish_at_inversion_centres():
    # An equivariant polar vector at a site with inversion symmetry must be zero: every
    # atom of rocksalt and fcc is one (the lattice loops come in +-pairs too).
    model = TestEMPNN().make()
    for structure in (crystals.rocksalt(), crystals.fcc()):
        for name, _, f in _layers(model, structure, "lattice"):
            assert f[:, HIDDEN:].abs().max() < 1e-10, name
    # ... whereas a low-symmetry crystal has non-zero vectors after the first message
    assert _layers(model, distorted_pair(), "lattice")[1][2][:, HIDDEN:].abs().max() > 1e-3


def test_first_layer_shortcut_is_exact():
    model = TestEMPNN().make()
    batch = exact_batch(distorted_pair(), "lattice", **GRAPH)
    filters, unit = model.edge_filters(batch)
    s = model.embed(batch.z)
    v = s.new_zeros(s.shape[0], 3, HIDDEN)
    src, dst = batch.edge_index
    full = model.messages[0](s, v, filters[0], unit, src, dst)
    short = model.messages[0](s, v, filters[0], unit, src, dst, zero_vectors=True)
    for a, b in zip(full, short):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
