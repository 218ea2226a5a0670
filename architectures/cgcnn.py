"""CGCNN (Xie & Grossman, PRL 120, 145301, 2018), written against the graph contract.

Gated convolution: for each edge j -> i, z = [h_i, h_j, e_ij] and the message is
sigmoid(z W_f + b_f) * softplus(z W_s + b_s); messages are summed on i, batch-normed
and added residually, h_i <- softplus(h_i + BN(sum)). Edge features are a Gaussian
expansion of the edge length plus a one-hot edge type (neighbour / lattice loop), so
the ``lattice`` variant's loops are distinguishable. Atoms are embedded from Z by a
learned table (the original uses fixed elemental descriptors). Mean pooling, then an
MLP head.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from architectures.common import (
    NUM_EDGE_TYPES,
    NUM_ELEMENTS,
    GatedConv,
    GaussianBasis,
    edge_lengths,
    mean_pool,
    mlp_head,
)
from architectures.registry import register


@register(
    "cgcnn",
    defaults={"hidden": 64, "num_layers": 3, "fc_hidden": 128, "num_fc": 1, "num_gaussians": 41, "cutoff": 8.0},
    search_space={
        "hidden": {"type": "categorical", "choices": [32, 64, 128]},
        "num_layers": {"type": "int", "low": 2, "high": 5},
        "fc_hidden": {"type": "categorical", "choices": [64, 128, 256]},
        "num_fc": {"type": "int", "low": 1, "high": 3},
    },
    family="invariant",
)
class CGCNN(nn.Module):
    """Crystal graph convolutional network (gated convolutions, mean pooling)."""

    def __init__(self, out_dim: int, hidden: int, num_layers: int, fc_hidden: int, num_fc: int, num_gaussians: int, cutoff: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(NUM_ELEMENTS, hidden)
        self.basis = GaussianBasis(cutoff, num_gaussians)
        edge_dim = num_gaussians + NUM_EDGE_TYPES
        self.convs = nn.ModuleList(GatedConv(hidden, edge_dim) for _ in range(num_layers))
        self.head = mlp_head(hidden, fc_hidden, out_dim, num_hidden=num_fc)

    def forward(self, data) -> torch.Tensor:
        src, dst = data.edge_index
        _, dist = edge_lengths(data)
        edge_attr = torch.cat([self.basis(dist), F.one_hot(data.edge_type, NUM_EDGE_TYPES).to(dist.dtype)], dim=-1)
        h = self.embed(data.z)
        for conv in self.convs:
            h = conv(h, edge_attr, src, dst)
        return self.head(mean_pool(h, data))
