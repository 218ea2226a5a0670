"""HIENet-style hybrid (Yan et al., "A Materials Foundation Model via Hybrid Invariant-Equivariant
Architectures", arXiv:2503.05771, 2025), written against the graph contract.

Serial hybrid: cheap invariant message passing on distances first, equivariant layers
after. Atoms are embedded from Z; ``num_invariant_layers`` gated convolutions in the
style of CGCNN update them from edge lengths only, m_ij = sigmoid(z W_g) * SiLU(z W_s)
with z = [h_i, h_j, Gaussians(r_ij), edge-type embedding] and h_i <- h_i + SiLU(W sum_j m_ij).
Their output initialises the scalar (0e) channels of ``num_layers`` NequIP interaction
blocks (``e3nn_blocks.GatedInteraction``: tensor-product convolution with spherical
harmonics up to lmax, gate nonlinearity, species self-connection), which add the l > 0
channels. The readout is invariant: an MLP on the mean of the last layer's scalars.
Lattice loops (edge_type 1) carry learned type embeddings in both halves.

Simplifications: the paper's invariant layers are attention-based (ComFormer lineage,
with lattice-aware edge features) and its equivariant half follows its own e3nn blocks;
here the invariant half is a CGCNN-like gated convolution without batch norm (messages
scaled by a fixed 1/avg_neighbors, so edgeless graphs are fine) and the equivariant half
reuses this suite's NequIP blocks. No forces/stresses (the targets are intensive).
"""
from __future__ import annotations

import torch
from e3nn import o3
from torch import nn
from torch.nn import functional as F

from architectures.common import NUM_EDGE_TYPES, NUM_ELEMENTS, GaussianBasis, aggregate, mean_pool, mlp_head
from architectures.e3nn_blocks import (
    EQUIVARIANT_DEFAULTS,
    EdgeEmbedding,
    Edges,
    GatedInteraction,
    hidden_irreps,
    scalar_dim,
)
from architectures.registry import register


class InvariantConv(nn.Module):
    """Gated invariant convolution on node features [N, hidden] with edge features [E, edge_dim]."""

    def __init__(self, hidden: int, edge_dim: int, avg_neighbors: float) -> None:
        super().__init__()
        self.message = nn.Linear(2 * hidden + edge_dim, 2 * hidden)
        self.update = nn.Linear(hidden, hidden)
        self.norm = 1.0 / avg_neighbors

    def forward(self, h: torch.Tensor, edge_attr: torch.Tensor, edges: Edges) -> torch.Tensor:
        z = self.message(torch.cat([h[edges.dst], h[edges.src], edge_attr], dim=-1))
        gate, core = z.chunk(2, dim=-1)
        messages = torch.sigmoid(gate) * F.silu(core) * edges.cut  # cut: smooth at the cutoff
        return h + F.silu(self.update(aggregate(messages, edges.dst, h.shape[0]) * self.norm))


@register(
    "hienet",
    defaults={**EQUIVARIANT_DEFAULTS, "num_layers": 2, "num_invariant_layers": 2, "invariant_hidden": 32,
              "num_gaussians": 16, "species_dim": 8},
    search_space={
        "invariant_hidden": {"type": "categorical", "choices": [32, 64, 128]},
        "num_invariant_layers": {"type": "int", "low": 1, "high": 3},
        "num_layers": {"type": "int", "low": 1, "high": 3},
        "scalars": {"type": "categorical", "choices": [16, 32, 64]},
        "vectors": {"type": "categorical", "choices": [4, 8, 16]},
        "tensors": {"type": "categorical", "choices": [2, 4, 8]},
    },
    family="hybrid",
)
class HIENet(nn.Module):
    """Hybrid: invariant gated convolutions first, their output seeds NequIP-style equivariant layers."""

    def __init__(self, out_dim: int, scalars: int, vectors: int, tensors: int, lmax: int, num_layers: int,
                 num_basis: int, radial_hidden: int, type_dim: int, avg_neighbors: float, fc_hidden: int,
                 num_invariant_layers: int, invariant_hidden: int, num_gaussians: int, species_dim: int,
                 cutoff: float) -> None:
        super().__init__()
        self.irreps_invariant = o3.Irreps(f"{invariant_hidden}x0e")
        self.irreps_hidden = hidden_irreps(scalars, vectors, tensors, lmax)
        self.embed = nn.Embedding(NUM_ELEMENTS, invariant_hidden)
        self.species = nn.Embedding(NUM_ELEMENTS, species_dim)
        self.edges = EdgeEmbedding(cutoff, num_basis, lmax, type_dim)
        self.gaussians = GaussianBasis(cutoff, num_gaussians)
        self.invariant_type = nn.Embedding(NUM_EDGE_TYPES, type_dim)
        self.invariant_layers = nn.ModuleList(
            InvariantConv(invariant_hidden, num_gaussians + type_dim, avg_neighbors)
            for _ in range(num_invariant_layers))
        irreps = [self.irreps_invariant] + [self.irreps_hidden] * num_layers
        self.layers = nn.ModuleList(
            GatedInteraction(irreps[i], irreps[i + 1], lmax, species_dim, self.edges.radial_dim, radial_hidden,
                             avg_neighbors) for i in range(num_layers))
        self.num_scalars = scalar_dim(self.irreps_hidden)
        self.head = mlp_head(self.num_scalars, fc_hidden, out_dim, act=nn.SiLU)

    def node_features(self, data) -> list[tuple[str, o3.Irreps, torch.Tensor]]:
        """(name, irreps, [N, irreps.dim]) after the embedding and every invariant and equivariant layer."""
        edges = self.edges(data)
        h = self.embed(data.z).to(data.pos.dtype)
        out = [("embedding", self.irreps_invariant, h)]
        edge_attr = torch.cat([self.gaussians(edges.dist), self.invariant_type(data.edge_type).to(h.dtype)], dim=-1)
        for i, layer in enumerate(self.invariant_layers):
            h = layer(h, edge_attr, edges)
            out.append((f"invariant{i + 1}", self.irreps_invariant, h))
        species = self.species(data.z).to(h.dtype)
        for i, layer in enumerate(self.layers):
            h = layer(h, species, edges)
            out.append((f"equivariant{i + 1}", layer.irreps_out, h))
        return out

    def forward(self, data) -> torch.Tensor:
        x = self.node_features(data)[-1][2]
        return self.head(mean_pool(x[:, : self.num_scalars], data))
