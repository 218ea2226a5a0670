"""NequIP (Batzner et al., Nat. Commun. 13, 2453, 2022), written against the graph contract.

Atoms are embedded from Z into ``scalars`` x 0e channels. Each interaction block
(``e3nn_blocks.GatedInteraction``) does self-interaction (o3.Linear), a channel-wise
tensor-product convolution of neighbour features with the spherical harmonics of the
edge vector (lmax 2) weighted by a radial MLP of Bessel x polynomial-envelope features,
another o3.Linear, adds NequIP's species-dependent self-connection and applies the gate
nonlinearity (SiLU on scalars, sigmoid gates on l > 0). Edge vectors come from
``bench.graphs.edge_vectors`` (positions, ``edge_shift`` and ``cell``), so periodic
images are exact. Lattice loops (edge_type 1) get their own learned type embedding in
the radial-MLP input.

Simplifications: the target here is an intensive graph property, so the readout is an
invariant MLP on the mean of the last layer's scalar channels (NequIP sums per-atom
energies); no forces; one hidden irreps for all layers (parities as spherical
harmonics, 0e + 1o + 2e, rather than NequIP's optional both-parity features).
"""
from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from architectures.common import NUM_ELEMENTS, mean_pool, mlp_head
from architectures.e3nn_blocks import (
    EQUIVARIANT_DEFAULTS,
    EQUIVARIANT_SEARCH_SPACE,
    EdgeEmbedding,
    GatedInteraction,
    hidden_irreps,
    scalar_dim,
)
from architectures.registry import register

@register("nequip", defaults={**EQUIVARIANT_DEFAULTS, "species_dim": 8},
          search_space=EQUIVARIANT_SEARCH_SPACE, family="equivariant")
class NequIP(nn.Module):
    """NequIP: gated equivariant tensor-product convolutions (e3nn), invariant readout."""

    def __init__(self, out_dim: int, scalars: int, vectors: int, tensors: int, lmax: int, num_layers: int,
                 num_basis: int, radial_hidden: int, type_dim: int, avg_neighbors: float, fc_hidden: int,
                 species_dim: int, cutoff: float) -> None:
        super().__init__()
        self.irreps_hidden = hidden_irreps(scalars, vectors, tensors, lmax)
        self.irreps_embed = o3.Irreps(f"{scalars}x0e")
        self.embed = nn.Embedding(NUM_ELEMENTS, scalars)
        self.species = nn.Embedding(NUM_ELEMENTS, species_dim)
        self.edges = EdgeEmbedding(cutoff, num_basis, lmax, type_dim)
        irreps = [self.irreps_embed] + [self.irreps_hidden] * num_layers
        self.layers = nn.ModuleList(
            GatedInteraction(irreps[i], irreps[i + 1], lmax, species_dim, self.edges.radial_dim,
                             radial_hidden, avg_neighbors) for i in range(num_layers))
        self.num_scalars = scalar_dim(self.irreps_hidden)
        self.head = mlp_head(self.num_scalars, fc_hidden, out_dim, act=nn.SiLU)

    def node_features(self, data) -> list[tuple[str, o3.Irreps, torch.Tensor]]:
        """(name, irreps, [N, irreps.dim]) after the embedding and after every interaction block."""
        edges = self.edges(data)
        species = self.species(data.z).to(data.pos.dtype)
        x = self.embed(data.z).to(data.pos.dtype)
        out = [("embedding", self.irreps_embed, x)]
        for i, layer in enumerate(self.layers):
            x = layer(x, species, edges)
            out.append((f"interaction{i + 1}", layer.irreps_out, x))
        return out

    def forward(self, data) -> torch.Tensor:
        x = self.node_features(data)[-1][2]
        return self.head(mean_pool(x[:, : self.num_scalars], data))
