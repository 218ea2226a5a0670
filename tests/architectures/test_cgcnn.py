import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torch_geometric.data import Batch
from torch_geometric.nn import CGConv, global_mean_pool

import architectures
from architectures.cgcnn import CGCNN
from architectures.common import GatedConv
from bench.testing import graph_float64
from tests import crystals
from tests.architectures.mixin import GRAPH, ArchitectureTests, distorted_pair

SMALL = {"hidden": 16, "num_layers": 2, "fc_hidden": 16, "num_gaussians": 20}


class TestCGCNN(ArchitectureTests):
    architecture = "cgcnn"
    hparams = SMALL


def make(**kwargs) -> CGCNN:
    torch.manual_seed(0)
    return architectures.create("cgcnn", **{"cutoff": GRAPH["cutoff"], **SMALL, **kwargs}).double().eval()


def real_batch(variant: str) -> Batch:
    structures = [crystals.rocksalt(), distorted_pair(), crystals.hcp(), crystals.skewed_triclinic()]
    return Batch.from_data_list([graph_float64(s, variant, **GRAPH) for s in structures])


def randomise_batchnorm(model: torch.nn.Module, seed: int = 1) -> None:
    """Non-trivial running statistics and affine parameters, so BN placement matters."""
    gen = torch.Generator().manual_seed(seed)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)):
        n = bn.num_features
        bn.running_mean.copy_(torch.randn(n, generator=gen, dtype=torch.float64))
        bn.running_var.copy_(0.5 + torch.rand(n, generator=gen, dtype=torch.float64))
        with torch.no_grad():
            bn.weight.copy_(1 + 0.3 * torch.randn(n, generator=gen, dtype=torch.float64))
            bn.bias.copy_(0.3 * torch.randn(n, generator=gen, dtype=torch.float64))


def pyg_cgconv_from(conv: GatedConv) -> CGConv:
    """torch_geometric's CGConv carrying the weights of our (eval-mode) gated convolution.

    PyG's CGConv computes x_i + BN(sum_j sigmoid(z W_f + b_f) * softplus(z W_s + b_s)) with
    z = [x_i | x_j | e_ij]: the reference's ConvLayer without its BatchNorm over the edges
    (bn1) and without the final softplus. In eval mode bn1 is a per-channel affine map,
    a * x + c, so it folds into the Linear: W' = a W, b' = a b + c; the first F outputs
    (the reference's filter half) become lin_f, the second F (the core half) lin_s.
    """
    hidden = conv.bn_node.num_features
    edge_dim = conv.linear.in_features - 2 * hidden
    bn = conv.bn_edge
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    weight = scale.unsqueeze(1) * conv.linear.weight
    bias = scale * conv.linear.bias + shift
    ref = CGConv(hidden, dim=edge_dim, aggr="add", batch_norm=True).double().eval()
    with torch.no_grad():
        ref.lin_f.weight.copy_(weight[:hidden])
        ref.lin_f.bias.copy_(bias[:hidden])
        ref.lin_s.weight.copy_(weight[hidden:])
        ref.lin_s.bias.copy_(bias[hidden:])
    ref.bn.load_state_dict(conv.bn_node.state_dict())
    return ref


@pytest.mark.parametrize("variant", ["multi_edge", "lattice"])
def test_conv_layer_equals_pyg_cgconv_plus_softplus_on_real_crystals(variant):
    model = make()
    randomise_batchnorm(model)
    batch = real_batch(variant)
    edge_attr = model.edge_features(batch)
    h = model.embed(batch.z)
    with torch.no_grad():
        for conv in model.convs:
            ours = conv(h, edge_attr, *batch.edge_index)
            ref = F.softplus(pyg_cgconv_from(conv)(h, batch.edge_index, edge_attr))
            torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
            h = ours


def test_whole_model_equals_a_pyg_cgconv_pipeline():
    # Edge features, direction (row 0 sender, messages summed on row 1), pooling and head
    # wired as the reference: the model equals embedding -> (CGConv, softplus) x n ->
    # mean pool -> the reference head.
    model = make(num_fc=2)
    randomise_batchnorm(model, seed=3)
    batch = real_batch("multi_edge")
    with torch.no_grad():
        edge_attr = model.edge_features(batch)
        h = model.embed(batch.z)
        for conv in model.convs:
            h = F.softplus(pyg_cgconv_from(conv)(h, batch.edge_index, edge_attr))
        pooled = global_mean_pool(h, batch.batch)
        head = model.head
        x = F.softplus(head.conv_to_fc(F.softplus(pooled)))
        x = F.softplus(head.fcs[0](x))
        expected = head.fc_out(x)
        torch.testing.assert_close(model(batch), expected, rtol=1e-12, atol=1e-12)


def test_head_applies_softplus_before_conv_to_fc():
    # Reference: conv_to_fc(softplus(pooled)), softplus, fc_out. With conv_to_fc = I, zero
    # biases and fc_out = ones, a zero pooled vector gives F softplus(softplus(0)) = F ln 3
    # (without the first softplus it would be F ln 2).
    head = make(fc_hidden=SMALL["hidden"]).head
    with torch.no_grad():
        head.conv_to_fc.weight.copy_(torch.eye(SMALL["hidden"]))
        head.conv_to_fc.bias.zero_()
        head.fc_out.weight.fill_(1.0)
        head.fc_out.bias.zero_()
    with torch.no_grad():
        out = head(torch.zeros(1, SMALL["hidden"], dtype=torch.float64))
    assert abs(float(out) - SMALL["hidden"] * math.log(3.0)) < 1e-12


def test_num_fc_counts_the_references_hidden_layers():
    assert len(make(num_fc=1).head.fcs) == 0  # n_h = 1: conv_to_fc only
    assert len(make(num_fc=3).head.fcs) == 2
    with pytest.raises(ValueError, match="num_fc"):
        make(num_fc=0)


def test_paper_gaussians_are_the_references_expansion():
    # data.py GaussianDistance(dmin=0, dmax=8, step=0.2): centres np.arange(0, 8.2, 0.2),
    # exp(-(d - mu)^2 / var^2) with var = step.
    model = architectures.create("cgcnn", preset="paper").double()
    centres = np.arange(0.0, 8.0 + 0.2, 0.2)
    d = np.array([0.0, 1.234, 3.3, 7.95])
    expected = np.exp(-((d[:, None] - centres) ** 2) / 0.2**2)
    assert model.basis.centers.numel() == len(centres) == 41
    got = model.basis(torch.tensor(d, dtype=torch.float64))
    # rtol covers the float32 centres (torch.linspace) against numpy's float64 ones.
    np.testing.assert_allclose(got.numpy(), expected, rtol=2e-5, atol=1e-9)


def test_presets():
    paper = architectures.create("cgcnn", preset="paper")
    assert (paper.embed.embedding_dim, len(paper.convs), paper.head.conv_to_fc.out_features, len(paper.head.fcs)) == (
        64, 3, 128, 0)
    budget = architectures.registry.MATCHED_PARAMS
    matched = architectures.count_parameters(architectures.create("cgcnn", preset="matched"))
    assert abs(matched - budget) <= architectures.registry.MATCHED_TOLERANCE * budget
    assert matched == architectures.count_parameters(architectures.create("cgcnn"))
