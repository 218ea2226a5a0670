"""EMPNN (Klipfel et al.): the equivariant battery plus known answers from pegnn's formulas."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Structure
from torch_geometric.data import Batch

import architectures
from architectures.empnn import deform, strain_invariants, triplet_index
from architectures.registry import MATCHED_PARAMS, MATCHED_TOLERANCE
from bench.graphs import build_graph, edge_vectors
from bench.testing import graph_float64, predict_structures, random_rotation, rotate
from tests import crystals
from tests.architectures.equivariant_mixin import EquivariantArchitectureTests
from tests.architectures.mixin import GRAPH, distorted_pair

HIDDEN = 8


class TestEMPNN(EquivariantArchitectureTests):
    architecture = "empnn"
    hparams = {"hidden": HIDDEN, "num_mpnn": 1, "num_steps": 2, "action_hidden": 8, "basis_step": 0.5}
    # node states are invariant (0e); the per-crystal action is a 3x3 matrix, 0e + 1e + 2e
    required_ls = (0, 1, 2)


def exact_batch(structures, variant: str = "multi_edge", **graph_kwargs) -> Batch:
    """A float64 batch whose positions and cells are the structures' own (not float32-rounded)."""
    kwargs = {**GRAPH, **graph_kwargs}
    return Batch.from_data_list([graph_float64(s, variant, structure_id=f"t{i}", **kwargs) for i, s in enumerate(structures)])


def action_of(model, structure: Structure, variant: str = "multi_edge") -> torch.Tensor:
    """The accumulated action A [3, 3] of one crystal."""
    return model.propagate(exact_batch([structure], variant))[1][0]


def zero_last_layer(projection, bias: list[float] | None = None) -> None:
    """Set a projection's output layer to a constant (its bias), so its weights are known."""
    last = projection.rest[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(bias if bias is not None else [0.0] * last.bias.numel()))


def test_presets_and_defaults():
    paper = architectures.create("empnn", preset="paper")
    assert (paper.hidden, len(paper.mpnn), len(paper.actions)) == (128, 8, 4)
    assert paper.actions[0].edge_basis.mu.numel() == 100  # 0, 0.1, ..., 9.9 Å
    matched = architectures.count_parameters(architectures.create("empnn", preset="matched"))
    assert abs(matched - MATCHED_PARAMS) <= MATCHED_TOLERANCE * MATCHED_PARAMS
    assert architectures.count_parameters(architectures.create("empnn")) == matched


@pytest.mark.parametrize("proper", [True, False])
def test_action_is_equivariant(proper):
    # rho' of a rotated crystal is the rotated rho': A -> R A R^T, so cell' = cell A^T -> cell' R^T
    model = TestEMPNN().make()
    s = distorted_pair()
    rot = random_rotation(np.random.default_rng(11), proper=proper)
    R = torch.as_tensor(rot)
    a, a_rot = action_of(model, s, "lattice"), action_of(model, rotate(s, rot), "lattice")
    assert (a - torch.eye(3, dtype=a.dtype)).abs().max() > 1e-3  # a non-trivial deformation
    torch.testing.assert_close(a_rot, R @ a @ R.T, atol=1e-10, rtol=1e-8)
    cell, cell_rot = (torch.tensor(np.array(x.lattice.matrix)) for x in (s, rotate(s, rot)))
    torch.testing.assert_close(cell_rot @ a_rot.T, cell @ a.T @ R.T, atol=1e-10, rtol=1e-8)
    invariants = strain_invariants(torch.stack([a, a_rot]))
    torch.testing.assert_close(invariants[1], invariants[0], atol=1e-10, rtol=1e-8)


def test_zero_action_weights_give_the_identity():
    model = TestEMPNN().make()
    for act in model.actions:
        zero_last_layer(act.edge_weights)
        zero_last_layer(act.triplet_weights)
    batch = exact_batch([distorted_pair(), crystals.hcp()], "lattice")
    h, action, _ = model.propagate(batch)
    assert torch.equal(action, torch.eye(3, dtype=action.dtype).expand(2, 3, 3))
    assert torch.equal(strain_invariants(action), torch.zeros(2, 3, dtype=action.dtype))


def test_operators_and_means_by_hand():
    # Simple cubic, a = 3 Å, cutoff 3.5 Å: six edges u = +-x, +-y, +-z and 30 ordered triplets.
    # With constant weights (output bias b, zero output weights):
    #   edges:    mean_e b u u^T = b I / 3              (sum_e u u^T = 2 I)
    #   u u^T:    mean over triplets = I / 3            (each edge is e1 of five triplets)
    #   u w^T:    sum_{e1 != e2} u1 u2^T = (sum u)(sum u)^T - sum u u^T = -2 I, mean -I / 15
    model = architectures.create("empnn", hidden=8, num_mpnn=0, num_steps=1, action_hidden=8, cutoff=3.5,
                                 basis_step=0.5, limit_actions=0.0).double()
    act = model.actions[0]
    batch = exact_batch([crystals.simple_cubic(3.0)], cutoff=3.5)
    assert batch.edge_index.shape[1] == 6
    eye = torch.eye(3, dtype=torch.float64)
    for edge_b, triplet_b, expected in [(0.5, [0.0, 0.0, 0.0, 0.0], 0.5 * eye / 3),
                                        (0.0, [1.0, 0.0, 0.0, 0.0], eye / 3),
                                        (0.0, [0.0, 1.0, 0.0, 0.0], eye / 3),
                                        (0.0, [0.0, 0.0, 1.0, 0.0], -eye / 15),
                                        (0.0, [0.0, 0.0, 0.0, 1.0], -eye / 15),
                                        (1.0, [2.0, 0.0, 3.0, 0.0], eye / 3 + 2 * eye / 3 - 3 * eye / 15)]:
        zero_last_layer(act.edge_weights, [edge_b])
        zero_last_layer(act.triplet_weights, triplet_b)
        torch.testing.assert_close(model.propagate(batch)[1][0], eye + expected, atol=1e-12, rtol=1e-12)
    # the equivariant limit scales M by L tanh(|M|_F / L) / |M|_F
    act.limit = 0.5
    m = eye / 3 + 2 * eye / 3 - 3 * eye / 15
    norm = torch.linalg.norm(m)
    limited = model.propagate(batch)[1][0] - eye
    torch.testing.assert_close(limited, m * 0.5 * torch.tanh(norm / 0.5) / norm, atol=1e-10, rtol=1e-8)


def test_action_weights_by_hand_on_concatenated_inputs():
    # pegnn's EdgeProj / FaceProj read concatenations; ours splits the first layer's weight
    # by input block. Naively: M = mean_e w_e u u^T + mean_t sum_k w_tk op_tk (limit off).
    model = TestEMPNN().make()
    act = model.actions[0]
    act.limit = 0.0
    batch = exact_batch([distorted_pair()], "multi_edge")
    src, dst = batch.edge_index
    vec = edge_vectors(batch)
    dist = vec.norm(dim=-1)
    unit = vec / dist[:, None]
    h = torch.randn(2, HIDDEN, dtype=torch.float64)
    we = act.edge_weights.rest(act.edge_weights.linear(torch.cat([h[dst], h[src], act.edge_basis(dist)], dim=-1)))
    edge_term = (we[:, :, None] * unit[:, :, None] * unit[:, None, :]).mean(dim=0)
    e1, e2 = triplet_index(dst, 2)
    u, w = unit[e1], unit[e2]
    basis = act.triplet_basis(dist)
    sin = torch.sqrt(torch.linalg.cross(u, w).pow(2).sum(-1, keepdim=True) + 1e-12)
    x = torch.cat([h[dst[e1]], h[src[e1]], h[src[e2]], basis[e1], basis[e2], (u * w).sum(-1, keepdim=True), sin], dim=-1)
    wt = act.triplet_weights.rest(act.triplet_weights.linear(x))
    outer = lambda a, b: a[:, :, None] * b[:, None, :]  # noqa: E731
    ops = torch.stack([outer(u, u), outer(w, w), outer(u, w), outer(w, u)], dim=1)
    triplet_term = (wt[:, :, None, None] * ops).sum(dim=1).mean(dim=0)
    got = act(h, vec, src, dst, torch.stack([e1, e2]), torch.zeros_like(dst), 1)[0]
    torch.testing.assert_close(got, torch.eye(3, dtype=torch.float64) + edge_term + triplet_term, atol=1e-12, rtol=1e-10)


def test_limit_keeps_every_step_invertible():
    model = TestEMPNN().make()
    for act in model.actions:
        zero_last_layer(act.edge_weights, [-50.0])
        zero_last_layer(act.triplet_weights, [-40.0, 30.0, 20.0, -60.0])
    step = model.propagate(exact_batch([distorted_pair()], "lattice"))[1][0]
    # two steps, each |M|_F < 0.5: singular values of A within (0.5^2, 1.5^2)
    singular = torch.linalg.svdvals(step)
    assert singular.min() > 0.25 and singular.max() < 2.25 and torch.linalg.det(step) > 0


def test_action_mean_is_per_crystal():
    model = TestEMPNN().make()
    a, b = distorted_pair(), crystals.hcp()
    together = model.propagate(exact_batch([a, b], "lattice"))[1]
    torch.testing.assert_close(together[0], action_of(model, a, "lattice"), atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(together[1], action_of(model, b, "lattice"), atol=1e-12, rtol=1e-10)


def test_mpnn_layer_by_hand_mean_and_gru():
    # h' = GRU(m, h) with m_i = mean_j MLP([h_i, h_j, basis(d_ij)]) (pegnn MPNN), computed naively
    model = TestEMPNN().make()
    layer = model.mpnn[0]
    batch = exact_batch([distorted_pair()])
    src, dst = batch.edge_index
    dist = edge_vectors(batch).norm(dim=-1)
    h = model.embedding(batch.z) + 0.3 * torch.randn(2, HIDDEN, dtype=torch.float64)
    basis = torch.exp(-(layer.basis.mu - dist[:, None]) ** 2 / 0.5)
    messages = layer.message.rest(layer.message.linear(torch.cat([h[dst], h[src], basis], dim=-1)))
    m = torch.stack([messages[dst == i].mean(dim=0) for i in range(2)])
    g = layer.gru
    wr, wz, wn = g.weight_ih.chunk(3)
    ur, uz, un = g.weight_hh.chunk(3)
    br, bz, bn = g.bias_ih.chunk(3)
    cr, cz, cn = g.bias_hh.chunk(3)
    r = torch.sigmoid(m @ wr.T + br + h @ ur.T + cr)
    z = torch.sigmoid(m @ wz.T + bz + h @ uz.T + cz)
    n = torch.tanh(m @ wn.T + bn + r * (h @ un.T + cn))
    torch.testing.assert_close(layer(h, dist, src, dst), (1 - z) * n + z * h, atol=1e-12, rtol=1e-10)
    # the state matters: the same messages with another state give another update
    assert (layer(h, dist, src, dst) - layer(h + 1.0, dist, src, dst)).abs().max() > 1e-3


def test_zeroing_the_gru_changes_predictions():
    model = TestEMPNN().make()
    s = [distorted_pair(), crystals.rocksalt()]
    before = predict_structures(model, s, "multi_edge", **GRAPH)
    with torch.no_grad():
        for layer in [*model.mpnn, *model.updates]:
            for p in layer.gru.parameters():
                p.zero_()  # then h' = 0.5 h: the GRU no longer reads the messages
    after = predict_structures(model, s, "multi_edge", **GRAPH)
    assert (after - before).abs().max() > 1e-4


def test_mean_aggregation_ignores_duplicated_edges():
    # Every edge twice: pegnn's mean gives the same messages and the same edge action term
    # (a sum would double them). Triplets are left out: duplicates would add new pairs.
    model = TestEMPNN().make()
    batch = exact_batch([distorted_pair()], "lattice")
    doubled = batch.clone()
    doubled.edge_index = batch.edge_index.repeat(1, 2)
    doubled.edge_shift = batch.edge_shift.repeat(2, 1)
    doubled.edge_type = batch.edge_type.repeat(2)
    h = model.embedding(batch.z)
    no_triplets = torch.zeros(2, 0, dtype=torch.long)
    outs = []
    for b in (batch, doubled):
        src, dst = b.edge_index
        vec = edge_vectors(b)
        layer_out = model.mpnn[0](h, vec.norm(dim=-1), src, dst)
        action = model.actions[0](h, vec, src, dst, no_triplets, torch.zeros_like(dst), 1)
        outs.append((layer_out, action))
    for a, b in zip(*outs):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=1e-10)


def test_edge_geometry_recomputed_from_the_deformed_cell():
    # Hand-checked: one atom in a 3 Å cube, A = [[1.1, 0.2, 0], [0, 1, 0], [0, 0, 0.9]]; the
    # deformed cell's rows are 3 A^T, so the image along +b sits at (0.6, 3, 0) and along +c at (0, 0, 2.7).
    batch = exact_batch([crystals.simple_cubic(3.0)], cutoff=3.5)
    a = torch.tensor([[[1.1, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.9]]], dtype=torch.float64)
    vec = deform(edge_vectors(batch), a, torch.zeros(6, dtype=torch.long))
    by_shift = {tuple(s.tolist()): v for s, v in zip(batch.edge_shift, vec)}
    torch.testing.assert_close(by_shift[(0, 1, 0)], torch.tensor([0.6, 3.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(by_shift[(0, 0, -1)], torch.tensor([0.0, 0.0, -2.7], dtype=torch.float64))
    torch.testing.assert_close(by_shift[(1, 0, 0)], torch.tensor([3.3, 0.0, 0.0], dtype=torch.float64))
    # In general: fractional coordinates fixed, cell' = cell A^T, vectors recomputed from scratch.
    batch = exact_batch([distorted_pair()], "lattice")
    a = torch.tensor([[[1.05, -0.1, 0.02], [0.03, 0.97, 0.1], [-0.04, 0.06, 1.1]]], dtype=torch.float64)
    frac = batch.pos @ torch.linalg.inv(batch.cell[0])
    moved = batch.clone()
    moved.cell = batch.cell @ a.transpose(1, 2)
    moved.pos = frac @ moved.cell[0]
    edge_graph = torch.zeros(batch.edge_index.shape[1], dtype=torch.long)
    torch.testing.assert_close(deform(edge_vectors(batch), a, edge_graph), edge_vectors(moved), atol=1e-12, rtol=1e-10)


def test_later_layers_see_the_deformed_geometry():
    # The step's MPNN update reads the distances of the deformed cell: the same states
    # through the second update give other results once the first action is not the identity.
    model = TestEMPNN().make()
    batch = exact_batch([distorted_pair()], "lattice")
    layers_before = model.propagate(batch, record=True)[2]
    for act in model.actions[:1]:
        zero_last_layer(act.edge_weights)
        zero_last_layer(act.triplet_weights)
    layers_identity = model.propagate(batch, record=True)[2]
    # step0's states agree (the update precedes the action), step1's differ
    names = [name for name, _, _ in layers_before]
    i0, i1 = names.index("step0"), names.index("step1")
    torch.testing.assert_close(layers_identity[i0][2][:, :HIDDEN], layers_before[i0][2][:, :HIDDEN])
    assert (layers_identity[i1][2][:, :HIDDEN] - layers_before[i1][2][:, :HIDDEN]).abs().max() > 1e-6


def test_triplet_index_pairs_distinct_edges_of_one_centre():
    dst = torch.tensor([0, 0, 1, 0, 1, 2])
    pairs = {tuple(p) for p in triplet_index(dst, 3).T.tolist()}
    assert pairs == {(0, 1), (1, 0), (0, 3), (3, 0), (1, 3), (3, 1), (2, 4), (4, 2)}
    assert triplet_index(torch.zeros(0, dtype=torch.long), 2).shape == (2, 0)


def test_strain_invariants_known_values():
    # A = diag(2, 1, 1): C = diag(4, 1, 1), I1 = 6, I2 = 4 + 4 + 1 = 9, I3 = 4
    a = torch.diag(torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64)).unsqueeze(0)
    torch.testing.assert_close(strain_invariants(a)[0], torch.tensor([3.0, 6.0, 3.0], dtype=torch.float64))


def test_one_atom_lattice_graph_gets_an_action():
    # a one-atom crystal on `lattice` has only loops; they still deform the cell
    model = TestEMPNN().make()
    a = action_of(model, crystals.bcc(), "lattice")
    assert torch.isfinite(a).all() and (a - torch.eye(3, dtype=a.dtype)).abs().max() > 1e-4
    graph = build_graph(crystals.simple_cubic(3.0), "distance", **GRAPH)
    assert graph.edge_index.shape[1] == 0
    edgeless = action_of(model, crystals.simple_cubic(3.0), "distance")
    assert torch.equal(edgeless, torch.eye(3, dtype=edgeless.dtype))  # no edges: the identity
