"""e3nn building blocks shared by the equivariant architectures (not an architecture itself).

Conventions: node features are tensors [N, irreps.dim] in e3nn's basis; hidden irreps
carry the parity of spherical harmonics (0e, 1o, 2e, ...), so improper rotations act
correctly. Edge geometry comes only from ``edge_lengths`` (``bench.graphs.edge_vectors``).

Radial part (NequIP, Batzner et al. 2022): Bessel functions sqrt(2/c) sin(n pi r/c)/r
times the polynomial envelope of DimeNet (p = 6), which goes to 0 with vanishing first
and second derivatives at the cutoff c. A learned edge-type embedding (neighbour edge /
``lattice`` loop) is concatenated to it as the radial-MLP input. Matformer lattice loops
may be longer than the cutoff and never enter or leave the graph, so their radial-MLP
output is not multiplied by the envelope (their radial basis simply vanishes beyond c);
neighbour edges' weights are, so a neighbour crossing the cutoff changes nothing abruptly.

Messages are summed and divided by sqrt(avg_neighbors), a fixed constant (NequIP's
normalisation), so edgeless graphs give zeros, never 0/0.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn
from torch.nn import functional as F

from architectures.common import NUM_EDGE_TYPES, aggregate, edge_lengths

#: Hyperparameters and search space shared with the other e3nn models.
EQUIVARIANT_DEFAULTS = {"scalars": 16, "vectors": 8, "tensors": 4, "lmax": 2, "num_layers": 3, "num_basis": 8,
                        "radial_hidden": 16, "type_dim": 4, "avg_neighbors": 16.0, "fc_hidden": 32, "cutoff": 8.0}
EQUIVARIANT_SEARCH_SPACE = {
    "scalars": {"type": "categorical", "choices": [16, 32, 64]},
    "vectors": {"type": "categorical", "choices": [4, 8, 16]},
    "tensors": {"type": "categorical", "choices": [2, 4, 8]},
    "num_layers": {"type": "int", "low": 2, "high": 4},
    "radial_hidden": {"type": "categorical", "choices": [16, 32, 64]},
}


def hidden_irreps(scalars: int, vectors: int, tensors: int, lmax: int) -> o3.Irreps:
    """``scalars x 0e + vectors x 1o + tensors x 2e`` truncated to ``lmax`` (parity of Y^l)."""
    muls = [scalars, vectors, tensors]
    if not 0 <= lmax <= 2:
        raise ValueError(f"lmax must be 0, 1 or 2, got {lmax}")
    return o3.Irreps([(muls[deg], (deg, (-1) ** deg)) for deg in range(lmax + 1) if muls[deg] > 0])


def scalar_dim(irreps: o3.Irreps) -> int:
    """Number of leading 0e columns of a sorted irreps (the invariant channels)."""
    dim = 0
    for mul, ir in irreps:
        if ir != o3.Irrep("0e"):
            break
        dim += mul
    return dim


def polynomial_envelope(x: torch.Tensor, p: int = 6) -> torch.Tensor:
    """DimeNet envelope of x = r / cutoff: 1 at 0, smoothly 0 for x >= 1 (C^2 at 1)."""
    env = 1.0 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    return torch.where(x < 1.0, env, torch.zeros_like(x))


class Edges(NamedTuple):
    """Per-edge quantities shared by all layers of a forward pass (E edges)."""

    src: torch.Tensor  # [E] sender
    dst: torch.Tensor  # [E] receiver
    sh: torch.Tensor  # [E, irreps_sh.dim] spherical harmonics of the unit edge vector
    radial: torch.Tensor  # [E, num_basis + type_dim] radial-MLP input
    cut: torch.Tensor  # [E, 1] envelope for neighbour edges, 1 for lattice loops
    dist: torch.Tensor  # [E] length (Å)
    cache: dict  # per-forward coupling matrices, filled by EdgeConvolution


class EdgeEmbedding(nn.Module):
    """Edge vectors -> spherical harmonics (lmax), Bessel x envelope basis, edge-type embedding."""

    def __init__(self, cutoff: float, num_basis: int, lmax: int, type_dim: int) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.register_buffer("freq", torch.arange(1, num_basis + 1) * math.pi / self.cutoff)
        self.type_embed = nn.Embedding(NUM_EDGE_TYPES, type_dim)
        self.radial_dim = num_basis + type_dim

    def forward(self, data) -> Edges:
        src, dst = data.edge_index
        vec, dist = edge_lengths(data)
        # 'component': each Y^l has squared norm 2l+1, so channels stay O(1).
        sh = o3.spherical_harmonics(self.irreps_sh, vec, normalize=True, normalization="component")
        env = polynomial_envelope(dist / self.cutoff).unsqueeze(-1)
        bessel = math.sqrt(2.0 / self.cutoff) * torch.sin(self.freq * dist.unsqueeze(-1)) / dist.unsqueeze(-1)
        radial = torch.cat([bessel * env, self.type_embed(data.edge_type).to(dist.dtype)], dim=-1)
        cut = torch.where(data.edge_type.unsqueeze(-1) == 0, env, torch.ones_like(env))
        return Edges(src, dst, sh, radial, cut, dist, {})


class RadialMLP(nn.Module):
    """Radial features [E, in_dim] -> per-edge tensor-product weights [E, out_dim] (times ``cut``)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, out_dim, bias=False))

    def forward(self, radial: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
        return self.net(radial) * cut


@functools.cache
def _coupling(l_in: int, l_sh: int, l_out: int) -> torch.Tensor:
    """sqrt(2 l_out + 1) x Wigner 3j [2l_in+1, 2l_sh+1, 2l_out+1] in float64 (e3nn 'component' normalisation)."""
    return o3.wigner_3j(l_in, l_sh, l_out, dtype=torch.float64) * math.sqrt(2 * l_out + 1)


class EdgeConvolution(nn.Module):
    """Point convolution: x'_i = sum_j TP(x_j, Y(r_ij); R(r_ij)) / sqrt(avg_neighbors).

    The channel-wise ('uvu') tensor product of e3nn (one learned radial function per
    channel and path, as in TFN and NequIP), evaluated in fused form for speed on CPU
    (about 1.8x faster than o3.TensorProduct + scatter on CPU): the couplings of an input irrep with all
    spherical harmonics form one per-edge matrix A [E, 2l_in+1, D] (cached per forward,
    shared by layers), so a block of features costs 2l_in+1 outer products, one weight
    product and one scatter, and the per-path layout is rebuilt on nodes, not edges.
    Equal to ``o3.TensorProduct`` with 'uvu' instructions (a test pins it). Output irreps: every ``ir_in x Y^l`` path whose
    result is in ``filter_ir_out``, sorted by irrep, one block per path.
    Input [N, irreps_in.dim] -> output [N, irreps_out.dim].
    """

    def __init__(self, irreps_in: o3.Irreps, lmax: int, filter_ir_out: list[o3.Irrep], radial_dim: int,
                 radial_hidden: int, avg_neighbors: float) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.blocks: list[tuple[int, int, int, tuple[tuple[int, int], ...]]] = []  # start, mul, l_in, paths
        paths = []  # (ir_out, block, column offset in the block's D, mul)
        start = 0
        for mul, ir_in in self.irreps_in:
            block_paths, offset = [], 0
            for l_sh in range(lmax + 1):
                for ir_out in ir_in * o3.Irrep(l_sh, (-1) ** l_sh):
                    if ir_out in filter_ir_out:
                        paths.append((ir_out, len(self.blocks), offset, mul))
                        block_paths.append((l_sh, ir_out.l))
                        offset += ir_out.dim
            if block_paths:
                # 0/1 matrix [paths, D] spreading each path's weight over its 2l_out+1 columns (a matmul is
                # much cheaper than an index gather, forward and backward).
                owner = torch.cat([torch.full((2 * l_out + 1,), k) for k, (_, l_out) in enumerate(block_paths)]).long()
                spread = F.one_hot(owner, len(block_paths)).T.to(torch.get_default_dtype())
                self.register_buffer(f"spread{len(self.blocks)}", spread, persistent=False)
                self.blocks.append((start, mul, ir_in.l, tuple(block_paths)))
            start += mul * ir_in.dim
        self.out_paths = sorted(paths, key=lambda p: (p[0].l, p[0].p))
        self.irreps_out = o3.Irreps([(mul, ir) for ir, _, _, mul in self.out_paths])
        self.in_sizes = [mul * (2 * l_in + 1) for _, mul, l_in, _ in self.blocks]
        self.weight_sizes = [mul * len(block_paths) for _, mul, _, block_paths in self.blocks]
        self.weight_numel = sum(self.weight_sizes)
        self.radial = RadialMLP(radial_dim, radial_hidden, self.weight_numel)
        self.norm = 1.0 / math.sqrt(avg_neighbors)

    @staticmethod
    def coupling_matrix(edges: Edges, l_in: int, paths: tuple[tuple[int, int], ...]) -> torch.Tensor:
        """[E, 2l_in+1, D]: the per-edge linear map x_j -> all path outputs of one input irrep.

        For l_in = 0 it is instead [E, paths, D], A spread over path rows: a scalar channel
        times its per-path weights then needs one batched matmul (faster than broadcasting).
        """
        key = (l_in, paths)
        if key not in edges.cache:
            parts = []
            for l_sh, l_out in paths:
                c = _coupling(l_in, l_sh, l_out).to(edges.sh)
                parts.append(torch.einsum("ijk,ej->eik", c, edges.sh[:, l_sh**2:(l_sh + 1) ** 2]))
            a = torch.cat(parts, dim=-1)
            if l_in == 0:  # row p keeps only path p's columns
                a = torch.block_diag(*[a.new_ones(1, 2 * l_out + 1) for _, l_out in paths]) * a
            edges.cache[key] = a
        return edges.cache[key]

    def forward(self, x: torch.Tensor, edges: Edges, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``weight`` [E, weight_numel] overrides the radial MLP (tests); layout: per block [mul, paths]."""
        weight = self.radial(edges.radial, edges.cut) if weight is None else weight
        num_nodes, num_edges = x.shape[0], edges.src.shape[0]
        # One gather for all blocks, each block laid out [d_in, mul] so that the steps below are
        # outer products of contiguous rows; split() keeps the backward to one pass per tensor.
        xt = torch.cat([x[:, start:start + mul * (2 * l_in + 1)].reshape(num_nodes, mul, 2 * l_in + 1).transpose(1, 2)
                        .reshape(num_nodes, -1) for start, mul, l_in, _ in self.blocks], dim=1)
        xs = torch.split(xt.index_select(0, edges.src), self.in_sizes, dim=1)
        ws = torch.split(weight, self.weight_sizes, dim=1)
        summed = []
        for b, (_, mul, l_in, paths) in enumerate(self.blocks):
            d_in, num_paths = 2 * l_in + 1, len(paths)
            a = self.coupling_matrix(edges, l_in, paths)  # [E, d_in, D]
            spread = getattr(self, f"spread{b}")  # [paths, D]
            dim = spread.shape[1]
            xb = xs[b].reshape(num_edges, d_in, mul, 1)
            w = ws[b].reshape(num_edges, mul, num_paths)
            if l_in == 0:
                y = torch.bmm(xb[:, 0] * w, a)
            else:
                y = xb[:, 0] * a[:, None, 0]
                for i in range(1, d_in):
                    y = y.addcmul(xb[:, i], a[:, None, i])
                y = y * (w.reshape(-1, num_paths) @ spread).reshape(num_edges, mul, dim)  # [E, mul, D]
            summed.append(aggregate(y.reshape(num_edges, mul * dim), edges.dst, num_nodes).reshape(num_nodes, mul, dim))
        out = [summed[b][:, :, o:o + ir.dim].reshape(num_nodes, mul * ir.dim) for ir, b, o, mul in self.out_paths]
        return torch.cat(out, dim=-1) * self.norm


def gate_for(irreps_out: o3.Irreps) -> Gate:
    """e3nn Gate producing ``irreps_out``: SiLU on 0e, each l>0 irrep times sigmoid(its own 0e gate)."""
    scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
    gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
    gates = o3.Irreps([(gated.num_irreps, "0e")]) if gated.num_irreps else o3.Irreps("")
    return Gate(scalars, [F.silu] * len(scalars), gates, [torch.sigmoid] * len(gates), gated)


class GatedInteraction(nn.Module):
    """One NequIP interaction block: features [N, irreps_in.dim] -> [N, irreps_out.dim].

    x' = Gate( Linear(Conv(Linear(x))) + SelfConnection(x, species) ), where the
    self-connection is a tensor product of x with a learned species embedding
    (``species_dim`` x 0e), NequIP's element-dependent residual update.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, lmax: int, species_dim: int,
                 radial_dim: int, radial_hidden: int, avg_neighbors: float) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.gate = gate_for(self.irreps_out)
        if self.gate.irreps_out != self.irreps_out:
            raise ValueError(f"irreps_out must be sorted and simplified, got {self.irreps_out}")
        self.linear_in = o3.Linear(self.irreps_in, self.irreps_in)
        self.conv = EdgeConvolution(self.irreps_in, lmax, [ir for _, ir in self.gate.irreps_in], radial_dim,
                                    radial_hidden, avg_neighbors)
        self.linear_out = o3.Linear(self.conv.irreps_out, self.gate.irreps_in)
        self.self_connection = o3.FullyConnectedTensorProduct(self.irreps_in, f"{species_dim}x0e", self.gate.irreps_in)

    def forward(self, x: torch.Tensor, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """``species`` [N, species_dim] embedding of Z; returns [N, irreps_out.dim]."""
        update = self.linear_out(self.conv(self.linear_in(x), edges))
        return self.gate(update + self.self_connection(x, species))
