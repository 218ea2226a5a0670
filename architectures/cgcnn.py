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
    GaussianBasis,
    GraphBatchNorm,
    aggregate,
    edge_lengths,
    mean_pool,
    mlp_head,
)
from architectures.registry import register


class GatedConv(nn.Module):
    """One CGCNN convolution: node features [N,F] + edge features [E,G] -> [N,F]."""

    def __init__(self, hidden: int, edge_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * hidden + edge_dim, 2 * hidden)
        self.bn_edge = GraphBatchNorm(2 * hidden)
        self.bn_node = GraphBatchNorm(hidden)

    def forward(self, h: torch.Tensor, edge_attr: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        z = self.bn_edge(self.linear(torch.cat([h[dst], h[src], edge_attr], dim=-1)))
        gate, core = z.chunk(2, dim=-1)
        summed = aggregate(torch.sigmoid(gate) * F.softplus(core), dst, h.shape[0])
        return F.softplus(h + self.bn_node(summed))


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
