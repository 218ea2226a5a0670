"""HIENet: the shared batteries and known answers for the reference's mechanisms (OpenMat/HIENet hienet/nn/*.py)."""
from __future__ import annotations

import math

import torch
from e3nn import o3
from torch.nn import functional as F
from torch_geometric.data import Batch

import architectures
from architectures.e3nn_blocks import BesselBasis, Edges
from architectures.hienet import ComformerNodeConv
from architectures.registry import MATCHED_PARAMS, MATCHED_TOLERANCE
from bench.graphs import build_graph
from tests import crystals
from tests.architectures.equivariant_mixin import EquivariantArchitectureTests
from tests.architectures.mixin import GRAPH

SMALL = {"invariant_dim": 8, "num_invariant_layers": 2, "scalars": 8, "vectors": 4, "tensors": 2, "num_layers": 3,
         "num_basis": 6, "radial_hidden": 8}


class TestHIENet(EquivariantArchitectureTests):
    architecture = "hienet"
    hparams = SMALL



def _layer_norm(x: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def test_comformer_attention_on_two_nodes_matches_the_formulas():
    torch.manual_seed(0)
    channels, edge_dim = 4, 3
    layer = ComformerNodeConv(channels, edge_dim).double()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for norm in (layer.norm, layer.norm_att):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    h = torch.randn(2, channels, dtype=torch.float64)
    emb = torch.randn(2, edge_dim, dtype=torch.float64)
    src, dst = torch.tensor([0, 1]), torch.tensor([1, 0])  # edge 0: 0 -> 1, edge 1: 1 -> 0
    edges = Edges(src, dst, None, emb, None, None, {})

    def lin(module, x):
        return x @ module.weight.T + module.bias

    def mlp(seq, x):
        return lin(seq[2], F.silu(lin(seq[0], x)))

    expected_sum = torch.zeros(2, channels, dtype=torch.float64)
    for e in range(2):
        i, j = int(dst[e]), int(src[e])  # receiver i, sender j
        q_i = lin(layer.query, h[i])
        k_i, k_j = lin(layer.key, h[i]), lin(layer.key, h[j])
        v_i, v_j = lin(layer.value, h[i]), lin(layer.value, h[j])
        e_ij = lin(layer.edge, emb[e])
        key = mlp(layer.key_update, torch.cat([k_i, k_j, e_ij]))  # key_update over [k_i | k_j | e]
        alpha = q_i * key / math.sqrt(channels)  # per channel, not summed
        message = mlp(layer.msg_update, torch.cat([v_i, v_j, e_ij])) * torch.sigmoid(_layer_norm(alpha, layer.norm_att))
        expected_sum[i] += message
    out = lin(layer.concat, expected_sum)
    reset, update = torch.sigmoid(lin(layer.reset, h)), torch.sigmoid(lin(layer.update, h))
    candidate = (1 - update) * h + update * F.softplus(_layer_norm(out, layer.norm))
    expected = (1 - update) * (reset * h) + update * candidate
    torch.testing.assert_close(layer(h, edges), expected)
    assert (layer(h, edges) - h).abs().max() > 1e-3


def test_equivariant_blocks_use_linear_self_connections_and_end_in_scalars():
    model = architectures.create("hienet", **SMALL)
    assert all(isinstance(layer.sc, o3.Linear) and layer.self_connection == "linear" for layer in model.layers)
    assert model.layers[0].irreps_in == o3.Irreps("8x0e")  # the invariant features
    assert model.layers[-1].irreps_out == o3.Irreps("8x0e")
    assert model.layers[1].irreps_out == o3.Irreps("8x0e+4x1o+2x2e")
    # neighbour sums are divided by avg_neighbors (HIENet's conv_denominator), not by its square root
    assert all(layer.conv.scale == 1.0 / 16.0 for layer in model.layers)


def test_one_bessel_edge_embedding_feeds_both_halves():
    model = architectures.create("hienet", cutoff=GRAPH["cutoff"], **SMALL).double()
    assert sum(isinstance(m, BesselBasis) for m in model.modules()) == 1
    assert isinstance(model.edges.basis, BesselBasis) and model.edges.basis.roots.requires_grad  # trainable roots
    seen = []
    model.invariant_layers[0].edge.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    model.layers[0].radial.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    batch = Batch.from_data_list([build_graph(crystals.rocksalt(), "lattice", **GRAPH)])
    batch.pos, batch.cell = batch.pos.double(), batch.cell.double()
    model(batch)
    assert len(seen) == 2 and seen[0] is seen[1] and seen[0].shape[1] == model.edges.radial_dim


def test_invariant_layers_come_first_and_seed_the_scalars():
    model = architectures.create("hienet", cutoff=GRAPH["cutoff"], **SMALL).double()
    batch = Batch.from_data_list([build_graph(crystals.rocksalt(), "lattice", **GRAPH)])
    batch.pos, batch.cell = batch.pos.double(), batch.cell.double()
    layers = model.node_features(batch)
    names = [name for name, _, _ in layers]
    assert names == ["embedding", "invariant1", "invariant2", "equivariant1", "equivariant2", "equivariant3"]
    assert all(str(irreps) == "8x0e" for _, irreps, _ in layers[:3])
    assert {ir.l for _, ir in layers[-2][1]} == {0, 1, 2}
    assert architectures.REGISTRY.get("hienet").family == "hybrid"


def test_presets():
    spec = architectures.REGISTRY.get("hienet")
    assert {k: spec.defaults[k] for k in spec.presets["matched"]} == spec.presets["matched"]
    matched = architectures.count_parameters(architectures.create("hienet", preset="matched"))
    assert abs(matched - MATCHED_PARAMS) <= MATCHED_TOLERANCE * MATCHED_PARAMS
    paper = architectures.create("hienet", preset="paper")  # train.yaml
    assert len(paper.invariant_layers) == 1 and paper.invariant_layers[0].channels == 384
    assert [str(layer.irreps_out) for layer in paper.layers] == ["512x0e+128x1o+64x2e+32x3o"] * 3 + ["512x0e"]
