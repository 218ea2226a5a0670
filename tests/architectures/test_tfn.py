"""TFN: the shared batteries and known answers for the reference's mechanisms (tensorfieldnetworks/layers.py, utils.py)."""
from __future__ import annotations

import math

import torch
from e3nn import o3
from torch.nn import functional as F
from torch_geometric.data import Batch

import architectures
from architectures.e3nn_blocks import EdgeConvolution
from architectures.registry import MATCHED_PARAMS, MATCHED_TOLERANCE
from architectures.tfn import NormNonlinearity, PathRadial, TFNGaussians, ssp
from bench.graphs import build_graph
from tests import crystals
from tests.architectures.equivariant_mixin import EquivariantArchitectureTests
from tests.architectures.mixin import GRAPH

SMALL = {"scalars": 8, "vectors": 4, "tensors": 2, "num_layers": 3, "num_basis": 6, "radial_hidden": 8}


class TestTFN(EquivariantArchitectureTests):
    architecture = "tfn"
    # cells fit avg_neighbors on their training graphs (bench.normalisation); the battery's
    # lattice graphs at 5 Å have about 40 edges per atom, and with the registered 16 TFN's
    # unnormalised start makes the battery's fixed SGD step overshoot
    hparams = {**SMALL, "avg_neighbors": 40.0}



def test_shifted_softplus():
    x = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(ssp(x), torch.log(0.5 * torch.exp(x) + 0.5))


def test_norm_nonlinearity_known_values():
    act = NormNonlinearity(o3.Irreps("1x0e+1x1o")).double()
    with torch.no_grad():
        act.bias.fill_(-2.0)
    x = torch.tensor([[-1.0, 3.0, 0.0, 4.0]], dtype=torch.float64)  # |V| = 5
    expected = torch.tensor([[math.log(0.5 * math.exp(-1) + 0.5), 3.0, 0.0, 4.0]], dtype=torch.float64)
    expected[0, 1:] *= math.log(0.5 * math.exp(5.0 - 2.0) + 0.5) / 5.0  # V ssp(|V| + b) / |V|
    torch.testing.assert_close(act(x), expected)


def test_norm_nonlinearity_is_finite_at_zero():
    act = NormNonlinearity(o3.Irreps("2x0e+2x1o+1x2e"))
    with torch.no_grad():
        act.bias.fill_(0.3)
    x = torch.zeros(3, act.irreps.dim, requires_grad=True)
    out = act(x)
    out.sum().backward()
    assert torch.equal(out[:, 2:], torch.zeros_like(out[:, 2:])) and torch.isfinite(x.grad).all()


def test_gaussians_follow_the_reference_spacing():
    # centres linspace(0, high, count), gamma = 1 / spacing with spacing = high / count
    rbf = TFNGaussians(r_high=2.5, num=4).double()
    r = torch.tensor([0.3, 1.9], dtype=torch.float64)
    centres = torch.tensor([0.0, 2.5 / 3, 5.0 / 3, 2.5], dtype=torch.float64)
    torch.testing.assert_close(rbf(r), torch.exp(-(4 / 2.5) * (r[:, None] - centres) ** 2))


def test_one_radial_network_per_path():
    torch.manual_seed(0)
    conv = EdgeConvolution(o3.Irreps("3x0e+2x1o"), 1, [o3.Irrep("0e"), o3.Irrep("1o")])
    radial = PathRadial(5, 4, conv).double()
    assert radial.first.out_features == 4 * 4  # paths: 0e x Y0, 0e x Y1, 1o x Y0, 1o x Y1 -> 0e
    x = torch.randn(6, 5, dtype=torch.float64)
    out = radial(x, torch.ones(6, 1, dtype=torch.float64))
    assert out.shape == (6, conv.weight_numel)
    # path 2 (1o x Y0 -> 1o; block 1, local path 0), channel u: column 3*2 + u*2 + 0
    w1, b1 = radial.first.weight[8:12], radial.first.bias[8:12]
    expected = F.relu(x @ w1.T + b1) @ radial.second[1][0] + radial.bias[1][0]  # [E, mul=2]
    torch.testing.assert_close(out[:, [6, 8]], expected)
    with torch.no_grad():  # perturbing path 2's network changes only its columns
        radial.second[1][0].add_(1.0)
    changed = (radial(x, torch.ones(6, 1, dtype=torch.float64)) - out).abs().amax(0) > 0
    assert changed.nonzero().flatten().tolist() == [6, 8]


def test_point_convolution_includes_the_point_itself():
    # An isolated atom (edgeless distance graph) still convolves with itself at r = 0, where only the
    # l = 0 filter survives: layer 1 gives SI(R_00(0) x / sqrt(avg)) + b on scalars and zero vectors.
    torch.manual_seed(0)
    model = architectures.create("tfn", cutoff=GRAPH["cutoff"], **SMALL).double()
    batch = Batch.from_data_list([build_graph(crystals.simple_cubic(3.0), "distance", **GRAPH)])
    batch.pos, batch.cell = batch.pos.double(), batch.cell.double()
    assert batch.edge_index.shape[1] == 0
    layers = model.node_features(batch)
    x, first = layers[0][2], model.layers[0]
    radial_in = torch.cat([model.edges.basis(torch.zeros(1, dtype=torch.float64)), torch.zeros(1, 4, dtype=torch.float64)], -1)
    w = first.radial(radial_in, torch.ones(1, 1, dtype=torch.float64))  # block 0: [mul=8, paths=3]
    conv = (x * w.reshape(8, 3)[:, 0]) / math.sqrt(16.0)  # the Y^0 path 0e x 0e -> 0e
    num_paths_out = first.conv.irreps_out  # 8x0e (Y0), 8x1o (Y1), 8x2e (Y2)
    full = torch.zeros(1, num_paths_out.dim, dtype=torch.float64)
    full[:, :8] = conv
    expected = first.act(first.self_interaction(full))
    torch.testing.assert_close(layers[1][2], expected)
    assert layers[1][2][:, 8:].abs().max() == 0  # no direction at r = 0
    assert layers[1][2][:, :8].abs().max() > 1e-3


def test_last_layer_outputs_the_targets_as_scalars_without_nonlinearity():
    model = architectures.create("tfn", out_dim=3, **SMALL).double()
    assert model.layers[-1].irreps_out == o3.Irreps("3x0e") and model.layers[-1].act is None
    assert all(layer.act is not None for layer in model.layers[:-1])
    batch = Batch.from_data_list([build_graph(s, "multi_edge", **GRAPH) for s in (crystals.rocksalt(), crystals.hcp())])
    batch.pos, batch.cell = batch.pos.double(), batch.cell.double()
    last = model.node_features(batch)[-1][2]
    torch.testing.assert_close(model(batch)[1], last[batch.batch == 1].mean(0))


def test_presets():
    spec = architectures.REGISTRY.get("tfn")
    assert {k: spec.defaults[k] for k in spec.presets["matched"]} == spec.presets["matched"]
    matched = architectures.count_parameters(architectures.create("tfn", preset="matched"))
    assert abs(matched - MATCHED_PARAMS) <= MATCHED_TOLERANCE * MATCHED_PARAMS
    paper = architectures.create("tfn", preset="paper")  # missing_point_train.py: layer_dims [15, 15, 15, 1]
    assert [str(layer.irreps_out) for layer in paper.layers] == ["15x0e+15x1o", "15x0e+15x1o", "1x0e"]
    assert paper.edges.basis.centers.numel() == 4 and paper.layers[0].radial.hidden == 4
