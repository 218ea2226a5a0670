import math

import numpy as np
import torch
from torch_geometric.data import Batch

import architectures
from architectures.matformer import MatformerConv, RBFExpansion
from bench.graphs import build_graph
from bench.testing import graph_float64, to_double
from tests import crystals
from tests.architectures.mixin import GRAPH, ArchitectureTests

SMALL = {"hidden": 8, "heads": 2, "num_layers": 2, "num_rbf": 16, "fc_hidden": 16}


class TestMatformer(ArchitectureTests):
    architecture = "matformer"
    hparams = SMALL


def make(**kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return architectures.create("matformer", **{"cutoff": GRAPH["cutoff"], **SMALL, **kwargs}).double().eval()


def lattice_graph():
    return to_double(build_graph(crystals.hcp(), "lattice", **GRAPH))


def test_attention_is_3c_wide_and_heads_are_full_width():
    hidden, heads = 8, 3
    layer = MatformerConv(hidden, heads).double()
    for lin in (layer.lin_query, layer.lin_key, layer.lin_value, layer.lin_edge):
        assert (lin.in_features, lin.out_features) == (hidden, heads * hidden)  # H heads of width C
    assert layer.layer_norm.normalized_shape == (3 * hidden,)
    assert (layer.lin_msg_update.in_features, layer.lin_msg_update.out_features) == (3 * hidden, 3 * hidden)
    assert (layer.msg_layer[0].in_features, layer.msg_layer[0].out_features) == (3 * hidden, hidden)
    assert (layer.lin_concate.in_features, layer.lin_concate.out_features) == (heads * hidden, hidden)
    h = torch.randn(4, hidden, dtype=torch.float64)
    e = torch.randn(5, hidden, dtype=torch.float64)
    src, dst = torch.tensor([0, 1, 2, 3, 3]), torch.tensor([1, 0, 3, 2, 0])
    query, key, value = layer.attention(h, e, src, dst)
    assert query.shape == key.shape == value.shape == (5, heads, 3 * hidden)
    alpha, msg = layer.messages(h, e, src, dst)
    assert alpha.shape == (5, heads, 3 * hidden) and msg.shape == (5, heads, hidden)
    # The query is repeated three times; the key's parts are [k_i | k_j | W_e e].
    torch.testing.assert_close(query[..., :hidden], query[..., hidden:2 * hidden])
    torch.testing.assert_close(key[..., :hidden], layer.lin_key(h).view(-1, heads, hidden)[dst])
    torch.testing.assert_close(key[..., hidden:2 * hidden], layer.lin_key(h).view(-1, heads, hidden)[src])


def hand_layer() -> MatformerConv:
    """C = 2, H = 2: W_q = [I; 2I], W_k = [I; I] with bias (0.5, 0 | 0, 0), W_e = [I; -I]."""
    layer = MatformerConv(2, 2).double().eval()
    eye = torch.eye(2, dtype=torch.float64)
    with torch.no_grad():
        layer.lin_query.weight.copy_(torch.cat([eye, 2 * eye]))
        layer.lin_query.bias.zero_()
        layer.lin_key.weight.copy_(torch.cat([eye, eye]))
        layer.lin_key.bias.copy_(torch.tensor([0.5, 0.0, 0.0, 0.0]))
        layer.lin_edge.weight.copy_(torch.cat([eye, -eye]))
    return layer


def test_alpha_of_a_two_node_graph_equals_the_hand_computation():
    # alpha_ij = [q_i | q_i | q_i] * [k_i | k_j | W_e e_ij] / sqrt(3C), C = 2, per head.
    layer = hand_layer()
    h = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    e = torch.tensor([[0.5, -2.0], [1.0, 1.0]], dtype=torch.float64)
    src, dst = torch.tensor([0, 1]), torch.tensor([1, 0])
    alpha, _ = layer.messages(h, e, src, dst)
    # Edge 0 -> 1 (i = 1, j = 0). Head 0: q = (3, -1), k_i = (3.5, -1), k_j = (1.5, 2), e = (0.5, -2).
    # Head 1: q = (6, -2), k_i = (3, -1), k_j = (1, 2), e = (-0.5, 2).
    # Edge 1 -> 0 (i = 0, j = 1). Head 0: q = (1, 2), k_i = (1.5, 2), k_j = (3.5, -1), e = (1, 1).
    # Head 1: q = (2, 4), k_i = (1, 2), k_j = (3, -1), e = (-1, -1).
    expected = torch.tensor([
        [[10.5, 1.0, 4.5, -2.0, 1.5, 2.0], [18.0, 2.0, 6.0, -4.0, -3.0, -4.0]],
        [[1.5, 4.0, 3.5, -2.0, 1.0, 2.0], [2.0, 8.0, 6.0, -4.0, -2.0, -4.0]],
    ], dtype=torch.float64) / math.sqrt(6.0)
    torch.testing.assert_close(alpha, expected, rtol=0, atol=1e-14)


def numpy_layer(layer: MatformerConv, h: np.ndarray, e: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The reference's MatformerConv written out edge by edge and head by head (eval mode)."""
    def w(lin):
        return lin.weight.detach().numpy(), (lin.bias.detach().numpy() if lin.bias is not None else 0.0)

    def layer_norm(x, ln):
        return (x - x.mean()) / np.sqrt(x.var() + ln.eps) * ln.weight.detach().numpy() + ln.bias.detach().numpy()

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    c, heads = layer.width, layer.heads
    (wq, bq), (wk, bk), (wv, bv), (we, _) = (w(layer.lin_query), w(layer.lin_key), w(layer.lin_value), w(layer.lin_edge))
    (wu, bu), (wm, bm) = w(layer.lin_msg_update), w(layer.msg_layer[0])
    summed = np.zeros((len(h), heads * c))
    for i, j, e_ij in zip(dst, src, e):
        for head in range(heads):
            rows = slice(head * c, (head + 1) * c)
            q = wq[rows] @ h[i] + bq[rows]
            key = np.concatenate([wk[rows] @ h[i] + bk[rows], wk[rows] @ h[j] + bk[rows], we[rows] @ e_ij])
            value = np.concatenate([wv[rows] @ h[i] + bv[rows], wv[rows] @ h[j] + bv[rows], we[rows] @ e_ij])
            alpha = np.tile(q, 3) * key / np.sqrt(3 * c)
            gated = (wu @ value + bu) * sigmoid(layer_norm(alpha, layer.layer_norm))
            summed[i, rows] += layer_norm(wm @ gated + bm, layer.msg_layer[1])
    wc, bc = w(layer.lin_concate)
    bn = layer.bn
    out = summed @ wc.T + bc
    out = (out - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps) * bn.weight.detach().numpy() \
        + bn.bias.detach().numpy()
    ws, bs = w(layer.lin_skip)
    return h @ ws.T + bs + out / (1 + np.exp(-out))  # lin_skip(h) + SiLU(BN(.))


def test_layer_equals_the_reference_formulas_on_a_real_crystal():
    model = make()
    layer = model.layers[0]
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():  # non-trivial LayerNorm / BatchNorm parameters and statistics
        for ln in (layer.layer_norm, layer.msg_layer[1]):
            ln.weight.copy_(1 + 0.3 * torch.randn(ln.weight.shape, generator=gen, dtype=torch.float64))
            ln.bias.copy_(0.3 * torch.randn(ln.bias.shape, generator=gen, dtype=torch.float64))
        layer.bn.running_mean.copy_(torch.randn(SMALL["hidden"], generator=gen, dtype=torch.float64))
        layer.bn.running_var.copy_(0.5 + torch.rand(SMALL["hidden"], generator=gen, dtype=torch.float64))
    graph = graph_float64(crystals.skewed_triclinic(), "lattice", **GRAPH)
    _, dist = architectures.common.edge_lengths(graph)
    with torch.no_grad():
        e = model.rbf(dist)
        h = model.embed(graph.z)
        ours = layer(h, e, *graph.edge_index)
    src, dst = graph.edge_index.numpy()
    expected = numpy_layer(layer, h.numpy(), e.numpy(), src, dst)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_rbf_is_the_references_expansion():
    # RBFExpansion(vmin=0, vmax=8, bins=128): gamma = 1 / Δ (not 1 / Δ^2), Δ = 8 / 127.
    basis = RBFExpansion(0.0, 8.0, 128).double()
    delta = 8.0 / 127
    assert abs(basis.gamma - 1 / delta) < 1e-4
    centres = np.linspace(0.0, 8.0, 128)
    d = np.array([0.0, 1.7, 2.0 + delta, 5.55, 7.9, 12.0])
    expected = np.exp(-((d[:, None] - centres) ** 2) / delta)
    np.testing.assert_allclose(basis(torch.tensor(d)).numpy(), expected, rtol=1e-5, atol=1e-12)
    k = int(round(2.0 / delta))  # one spacing beyond a centre: exp(-Δ)
    assert abs(float(basis(torch.tensor([centres[k] + delta], dtype=torch.float64))[0, k]) - math.exp(-delta)) < 1e-5


def test_lattice_loops_are_plain_edges():
    # As in the reference, the model has no edge type: a loop is an edge with its length.
    model = make()
    graph = lattice_graph()
    assert (graph.edge_type == 1).sum() == 18 * 2
    relabelled = graph.clone()
    relabelled.edge_type = torch.zeros_like(graph.edge_type)
    with torch.no_grad():
        outs = [model(Batch.from_data_list([g])) for g in (graph, relabelled)]
        without_loops = model(Batch.from_data_list([to_double(build_graph(crystals.hcp(), "multi_edge", **GRAPH))]))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    assert (outs[0] - without_loops).abs().max() > 1e-6  # the loops' lengths do enter


def test_sigmoid_gated_sum_counts_duplicated_edges():
    # Unlike a softmax, the gated sum sees multiplicity: duplicating every edge doubles each
    # layer's aggregate (so periodic images and lattice loops are counted, not averaged).
    model = make()
    graph = lattice_graph()
    doubled = graph.clone()
    doubled.edge_index = torch.cat([graph.edge_index, graph.edge_index], dim=1)
    doubled.edge_shift = torch.cat([graph.edge_shift, graph.edge_shift])
    doubled.edge_type = torch.cat([graph.edge_type, graph.edge_type])
    seen = []
    handle = model.layers[0].lin_concate.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    with torch.no_grad():
        model(Batch.from_data_list([graph]))
        model(Batch.from_data_list([doubled]))
    handle.remove()
    torch.testing.assert_close(seen[1], 2 * seen[0])


def test_edgeless_layer_adds_a_constant_to_the_skip_and_stays_finite():
    model = make()
    layer = model.layers[0]
    h = torch.randn(3, SMALL["hidden"], dtype=torch.float64)
    empty = torch.zeros(0, dtype=torch.long)
    with torch.no_grad():
        out = layer(h, torch.zeros(0, SMALL["hidden"], dtype=torch.float64), empty, empty)
        # No incoming edge: zero aggregate, so every atom gets lin_skip(h) + SiLU(BN(bias)).
        update = out - layer.lin_skip(h)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(update, update[:1].expand_as(update))


def test_presets():
    paper = architectures.create("matformer", preset="paper")
    layer = paper.layers[0]
    assert (layer.width, layer.heads, len(paper.layers), paper.rbf[0].centers.numel(), paper.fc[0].out_features,
            float(paper.rbf[0].centers[-1])) == (128, 4, 5, 128, 128, 8.0)
    budget = architectures.registry.MATCHED_PARAMS
    matched = architectures.count_parameters(architectures.create("matformer", preset="matched"))
    assert abs(matched - budget) <= architectures.registry.MATCHED_TOLERANCE * budget
    assert matched == architectures.count_parameters(architectures.create("matformer"))
