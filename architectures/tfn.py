"""Tensor Field Network (Thomas et al., arXiv:1802.08219, 2018), written against the graph contract.

Atoms are embedded from Z into ``scalars`` x 0e channels. Each layer is TFN's point
convolution, concatenation, self-interaction and norm nonlinearity:
x'_i = eta( SI( sum_j R(r_ij) x_j (x) Y(r_ij) ) + SI_0(x_i) ). The filter is a
channel-wise tensor product of neighbour features with the spherical harmonics of the
edge vector (lmax 2), with one learned radial function per (channel, path) from an MLP
of Bessel x smooth-envelope features (``e3nn_blocks.EdgeConvolution``); SI are
o3.Linear channel mixings. SI_0 is the r = 0 term of TFN's point convolution (the atom
itself, where only the l_f = 0 filter survives), i.e. a channel-wise linear map of its
own features. The nonlinearity is TFN's: scalars eta(x + b), l > 0 features
eta(|V| + b) V. Lattice loops (edge_type 1) get a learned type embedding in the
radial-MLP input. Readout: invariant MLP on the mean of the last layer's scalars.

Simplifications: eta is SiLU on scalars and a sigmoid on norms (bounded; the paper
leaves eta generic and uses shifted softplus); messages are normalised by a fixed
sqrt(avg_neighbors); features are truncated at l = 2 with the parities of Y^l.
"""
from __future__ import annotations

import torch
from e3nn import o3
from torch import nn
from torch.nn import functional as F

from architectures.common import NUM_ELEMENTS, mean_pool, mlp_head
from architectures.e3nn_blocks import (
    EQUIVARIANT_DEFAULTS,
    EQUIVARIANT_SEARCH_SPACE,
    EdgeConvolution,
    EdgeEmbedding,
    Edges,
    hidden_irreps,
    scalar_dim,
)
from architectures.registry import register


class NormNonlinearity(nn.Module):
    """TFN nonlinearity on [N, irreps.dim]: SiLU on the 0e channels, sigmoid(|V| + b) V on each l > 0 irrep."""

    def __init__(self, irreps: o3.Irreps, eps: float = 1e-12) -> None:
        super().__init__()
        self.irreps, self.eps = o3.Irreps(irreps), eps
        self.num_scalars = scalar_dim(self.irreps)
        if self.num_scalars != sum(mul for mul, ir in self.irreps if ir.l == 0):
            raise ValueError(f"irreps must start with all their scalars, all 0e, got {self.irreps}")
        self.blocks = [(s.start, mul, ir.dim) for (mul, ir), s in zip(self.irreps, self.irreps.slices()) if ir.l > 0]
        self.bias = nn.Parameter(torch.zeros(sum(mul for _, mul, _ in self.blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, k = [F.silu(x[:, : self.num_scalars])], 0
        for start, mul, dim in self.blocks:
            v = x[:, start:start + mul * dim].reshape(x.shape[0], mul, dim)
            norm = (v.pow(2).sum(-1) + self.eps).sqrt()  # smooth at V = 0 (edgeless atoms have V = 0)
            out.append((v * torch.sigmoid(norm + self.bias[k:k + mul]).unsqueeze(-1)).reshape(x.shape[0], -1))
            k += mul
        return torch.cat(out, dim=-1)


class TFNLayer(nn.Module):
    """Point convolution + self-interaction + norm nonlinearity: [N, irreps_in.dim] -> [N, irreps_out.dim]."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, lmax: int, radial_dim: int, radial_hidden: int,
                 avg_neighbors: float) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.conv = EdgeConvolution(self.irreps_in, lmax, [ir for _, ir in self.irreps_out], radial_dim,
                                    radial_hidden, avg_neighbors)
        self.self_interaction = o3.Linear(self.conv.irreps_out, self.irreps_out, biases=True)
        self.self_term = o3.Linear(self.irreps_in, self.irreps_out)
        self.act = NormNonlinearity(self.irreps_out)

    def forward(self, x: torch.Tensor, edges: Edges) -> torch.Tensor:
        return self.act(self.self_interaction(self.conv(x, edges)) + self.self_term(x))


@register("tfn", defaults=dict(EQUIVARIANT_DEFAULTS), search_space=EQUIVARIANT_SEARCH_SPACE, family="equivariant")
class TFN(nn.Module):
    """Tensor field network: e3nn point convolutions with norm nonlinearities, invariant readout."""

    def __init__(self, out_dim: int, scalars: int, vectors: int, tensors: int, lmax: int, num_layers: int,
                 num_basis: int, radial_hidden: int, type_dim: int, avg_neighbors: float, fc_hidden: int,
                 cutoff: float) -> None:
        super().__init__()
        self.irreps_hidden = hidden_irreps(scalars, vectors, tensors, lmax)
        self.irreps_embed = o3.Irreps(f"{scalars}x0e")
        self.embed = nn.Embedding(NUM_ELEMENTS, scalars)
        self.edges = EdgeEmbedding(cutoff, num_basis, lmax, type_dim)
        irreps = [self.irreps_embed] + [self.irreps_hidden] * num_layers
        self.layers = nn.ModuleList(
            TFNLayer(irreps[i], irreps[i + 1], lmax, self.edges.radial_dim, radial_hidden, avg_neighbors)
            for i in range(num_layers))
        self.num_scalars = scalar_dim(self.irreps_hidden)
        self.head = mlp_head(self.num_scalars, fc_hidden, out_dim, act=nn.SiLU)

    def node_features(self, data) -> list[tuple[str, o3.Irreps, torch.Tensor]]:
        """(name, irreps, [N, irreps.dim]) after the embedding and after every TFN layer."""
        edges = self.edges(data)
        x = self.embed(data.z).to(data.pos.dtype)
        out = [("embedding", self.irreps_embed, x)]
        for i, layer in enumerate(self.layers):
            x = layer(x, edges)
            out.append((f"layer{i + 1}", layer.irreps_out, x))
        return out

    def forward(self, data) -> torch.Tensor:
        x = self.node_features(data)[-1][2]
        return self.head(mean_pool(x[:, : self.num_scalars], data))
