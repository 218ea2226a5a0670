"""GeoCGNN (Cheng, Zhang & Dai, Commun. Mater. 2, 92, 2021), written against the graph contract.

A CGCNN-like gated convolution whose edge features see the displacement vector r_ij
of every periodic image, not only its length, through a mixed basis:

1. a Gaussian basis of |r_ij| on [0, cutoff], times the smooth polynomial cutoff
   envelope u(d / cutoff) of DimeNet (p = 5);
2. a plane-wave basis built from the reciprocal lattice of the edge's own cell
   (``data.cell``, rows a_i; b_i = 2 pi (A^-1)^T rows, so a_i . b_j = 2 pi delta_ij):
   for K shells in |G| with smooth weights phi_k(|G|),

       pw_k(r) = 1 / (Omega c_k) * sum_{G in L*, 0 < |G| < g_max} phi_k(|G|) cos(G . r),

   Omega the cell volume and c_k = int phi_k(|q|) d^3q / (2 pi)^3, so pw_k is a
   Riemann sum of a shell-averaged plane wave (O(1) whatever the cell size).
   It depends on r only through G . r with G rotating with the cell: rotation invariant.

Then h_i <- softplus(h_i + BN(sum_j sigmoid(z W_f) * softplus(z W_s))), z = [h_i, h_j, e_ij],
with e_ij = [gaussians * u, pw, embedding(edge_type)] (the lattice loops of the
``lattice`` variant get their own learned type vector). Mean pooling, MLP head.

Choice of G (basis independence). The paper takes G from a fixed (h, k, l) grid of the
given basis, so its features change with the basis of the same lattice. Here G runs
over *every* reciprocal vector with |G| < g_max, enumerated with the exact bound
|h_i| = |G . a_i| / 2 pi <= g_max |a_i| / 2 pi (works for any skewed cell), and
phi_k(g_max) = 0, so a G lying on the sphere (a tie) contributes nothing: the same
crystal in another basis gets the same features to rounding.
Only cos appears: the set is symmetric under G -> -G and phi_k depends on |G|, so
the sin terms cancel exactly (one of each +-G pair is summed, twice).

Supercell invariance is impossible for this construction. A supercell's reciprocal
lattice L*' is finer (it contains L*), and by Poisson summation
(1 / Omega) sum_{G in L*} phi(|G|) e^{iG.r} = sum_{R in L} phi^(r + R), with phi^ the
real-space kernel of phi: the supercell sums phi^ over the super-lattice L' only, so
the two differ by sum_{R in L \\ L'} phi^(r + R), which is not zero in general (the
extra G have cos(G . r) != 0 and do not cancel). The Gaussian part and the
convolution are supercell invariant; with ``num_plane_waves = 0`` the whole model is
(the tests pin both the break and this).

Simplifications against the paper: atoms are embedded from Z by a learned table (the
paper uses elemental descriptors), plain mean pooling replaces its gated pooling, G
runs over a sphere (not the paper's fixed index grid) weighted by fixed Gaussian shells
in |G| whose mixing the convolutions learn, and the gated convolution is CGCNN's (with
batch norm) rather than the paper's exact block.
On ``distance`` graphs the model sees the minimum-image vector of each pair only.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from architectures.common import (
    NUM_EDGE_TYPES,
    NUM_ELEMENTS,
    GatedConv,
    GaussianBasis,
    edge_lengths,
    graph_index,
    mean_pool,
    mlp_head,
)
from architectures.registry import register


def envelope(x: torch.Tensor, p: int = 5) -> torch.Tensor:
    """DimeNet's polynomial cutoff u(x): 1 at x = 0, zero with two derivatives at x >= 1 (same shape as x)."""
    x = x.clamp(0.0, 1.0)
    u = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    return torch.where(x < 1.0, u, torch.zeros_like(u))


def reciprocal_cell(cell: torch.Tensor) -> torch.Tensor:
    """Reciprocal basis [...,3,3] (rows b_i, Å^-1, a_i . b_j = 2 pi delta_ij) of cells [...,3,3] (rows a_i, Å)."""
    return 2 * math.pi * torch.linalg.inv(cell).transpose(-1, -2)


@torch.no_grad()
def reciprocal_indices(cell: torch.Tensor, g_max: float) -> torch.Tensor:
    """Integer coordinates [M,3] (long) of the reciprocal vectors G with 0 < |G| < g_max, one per +-G pair.

    The coefficient of b_i in G is G . a_i / 2 pi, so |h_i| <= g_max |a_i| / 2 pi bounds
    the search exactly for any (skewed) cell [3,3]. The kept half has its first
    nonzero coordinate positive.
    """
    recip = reciprocal_cell(cell)
    n = torch.floor(g_max * cell.norm(dim=-1) / (2 * math.pi)).long().tolist()
    hkl = torch.cartesian_prod(*(torch.arange(-k, k + 1, device=cell.device) for k in n)).reshape(-1, 3)
    h1, h2, h3 = hkl.unbind(-1)
    half = (h1 > 0) | ((h1 == 0) & (h2 > 0)) | ((h1 == 0) & (h2 == 0) & (h3 > 0))
    hkl = hkl[half]
    return hkl[(hkl.to(cell.dtype) @ recip).norm(dim=-1) < g_max]


class PlaneWaveBasis(nn.Module):
    """Shell-averaged plane waves of edge vectors [E,3] (Å) in their cell's reciprocal lattice -> [E, num].

    ``num`` Gaussian shells phi_k in |G| (centres g_max (k + 1/2) / num, width g_max / num),
    times the envelope u(|G| / g_max); see the module docstring for the formula.
    """

    def __init__(self, num: int, g_max: float) -> None:
        super().__init__()
        self.num, self.g_max = num, float(g_max)
        self.register_buffer("centers", g_max * (torch.arange(num, dtype=torch.float64) + 0.5) / max(num, 1))
        self.width = g_max / max(num, 1)
        q = torch.linspace(0.0, g_max, 4001, dtype=torch.float64)
        density = 4 * math.pi * q[:, None] ** 2 * self.shells(q) / (2 * math.pi) ** 3
        self.register_buffer("norm", torch.trapezoid(density, q, dim=0))  # c_k, Å^-3

    def shells(self, q: torch.Tensor) -> torch.Tensor:
        """phi_k(q) for |G| values q [M] (Å^-1) -> [M, num]."""
        centers = self.centers.to(q.dtype)
        return torch.exp(-(((q[:, None] - centers) / self.width) ** 2)) * envelope(q / self.g_max)[:, None]

    def forward(self, vec: torch.Tensor, edge_graph: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """vec [E,3] Å, edge_graph [E] (graph of each edge), cell [B,3,3] -> [E, num]."""
        out = vec.new_zeros(vec.shape[0], self.num)
        if self.num == 0 or vec.shape[0] == 0:
            return out
        recip = reciprocal_cell(cell)
        volume = torch.linalg.det(cell).abs()
        order = torch.argsort(edge_graph, stable=True)
        counts = torch.bincount(edge_graph, minlength=cell.shape[0]).tolist()
        feats = []
        for b, r in enumerate(torch.split(vec[order], counts)):
            if r.shape[0] == 0:
                continue
            g = reciprocal_indices(cell[b].detach(), self.g_max).to(vec.dtype) @ recip[b]  # [M,3]
            weight = 2 * self.shells(g.norm(dim=-1)) / (volume[b] * self.norm.to(vec.dtype))  # [M,num]; 2: +-G
            feats.append(torch.cos(r @ g.T) @ weight)
        return out.index_copy(0, order, torch.cat(feats))

    def extra_repr(self) -> str:
        return f"num={self.num}, g_max={self.g_max}"


@register(
    "geocgnn",
    defaults={
        "hidden": 64, "num_layers": 3, "fc_hidden": 128, "num_fc": 1, "num_gaussians": 32,
        "num_plane_waves": 8, "g_max": 2.5, "type_dim": 8, "cutoff": 8.0,
    },
    search_space={
        "hidden": {"type": "categorical", "choices": [32, 64, 128]},
        "num_layers": {"type": "int", "low": 2, "high": 5},
        "fc_hidden": {"type": "categorical", "choices": [64, 128, 256]},
        "num_plane_waves": {"type": "categorical", "choices": [4, 8, 16]},
        "g_max": {"type": "float", "low": 1.5, "high": 3.5},
    },
    family="invariant",
)
class GeoCGNN(nn.Module):
    """Gated crystal graph convolution on Gaussian + reciprocal-lattice plane-wave edge bases."""

    def __init__(self, out_dim: int, hidden: int, num_layers: int, fc_hidden: int, num_fc: int, num_gaussians: int,
                 num_plane_waves: int, g_max: float, type_dim: int, cutoff: float) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.embed = nn.Embedding(NUM_ELEMENTS, hidden)
        self.gaussians = GaussianBasis(cutoff, num_gaussians)
        self.plane_waves = PlaneWaveBasis(num_plane_waves, g_max)
        self.edge_type = nn.Embedding(NUM_EDGE_TYPES, type_dim)
        edge_dim = num_gaussians + num_plane_waves + type_dim
        self.convs = nn.ModuleList(GatedConv(hidden, edge_dim) for _ in range(num_layers))
        self.head = mlp_head(hidden, fc_hidden, out_dim, num_hidden=num_fc)

    def edge_features(self, data) -> torch.Tensor:
        """[E, num_gaussians + num_plane_waves + type_dim] edge features of a batch."""
        vec, dist = edge_lengths(data)
        edge_graph = graph_index(data)[data.edge_index[1]]
        radial = self.gaussians(dist) * envelope(dist / self.cutoff)[:, None]
        waves = self.plane_waves(vec, edge_graph, data.cell.reshape(-1, 3, 3))
        return torch.cat([radial, waves, self.edge_type(data.edge_type).to(vec.dtype)], dim=-1)

    def forward(self, data) -> torch.Tensor:
        src, dst = data.edge_index
        edge_attr = self.edge_features(data)
        h = self.embed(data.z)
        for conv in self.convs:
            h = conv(h, edge_attr, src, dst)
        return self.head(mean_pool(h, data))
