"""e3nn building blocks shared by NequIP, TFN and HIENet (not an architecture itself).

Conventions: node features are tensors [N, irreps.dim] in e3nn's basis; spherical
harmonics carry their true parity (Y^l is (-1)^l), so improper rotations act correctly.
Edge vectors come only from ``edge_lengths`` (``bench.graphs.edge_vectors``) and point
from the receiver to the sender's image, as NequIP's ``pos[neighbour] - pos[centre]``.

What lives here, and the reference each piece follows:

- :func:`feature_irreps`: NequIP's hidden irreps (``nequip/model/nequip_models.py``,
  ``NequIPGNNModel``): ``mul_l x (l, p)`` for l = 0..lmax, both parities (even first) when
  ``parity`` is set, otherwise only p = (-1)^l.
- :class:`BesselBasis` and :func:`polynomial_envelope`: NequIP's edge encoding
  (``nequip/nn/embedding/_edge.py`` ``BesselEdgeLengthEncoding`` times ``ApplyFactor(2 pi /
  r_max^2)``; ``cutoffs.py`` ``PolynomialCutoff``): (2/c) sin(n pi r/c)/r times DimeNet's
  p-envelope. HIENet's ``BesselBasis``/``PolynomialCutoff`` (``hienet/nn/edge_embedding.py``)
  are the same functions with trainable roots.
- :class:`EdgeConvolution`: the 'uvu' tensor product of neighbour features with Y(r_ij),
  weighted per edge, summed on receivers and scaled (``nequip/nn/interaction_block.py``,
  ``hienet/nn/convolution.py``; TFN's point convolution).
- :class:`ScaledMLP`: NequIP's radial network (``nequip/nn/mlp.py`` ``ScalarMLPFunction``).
- :func:`gate_for` and :class:`InteractionBlock`: NequIP's ``ConvNetLayer`` +
  ``InteractionBlock`` (``nequip/nn/convnetlayer.py``), with NequIP's species-dependent or
  HIENet's linear self-connection (``hienet/model_build.py`` ``NequIP_interaction_block``).

Suite addition (no reference has it): ``lattice`` graphs carry lattice loops (edge_type 1),
which may be longer than the cutoff and never enter or leave the graph. They get a learned
embedding appended to the radial features; its row for neighbour edges is fixed at zero, so
on graphs without loops the radial input is exactly the reference's.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn
from torch.nn import functional as F

from architectures.common import NUM_EDGE_TYPES, aggregate, edge_lengths

ACTIVATIONS = {1: F.silu, -1: torch.tanh}  # by parity: NequIP's and HIENet's {"e": silu, "o": tanh}


def feature_irreps(muls: list[int], lmax: int, parity: bool = False) -> o3.Irreps:
    """``muls[l] x (l, p)`` for l <= lmax in NequIP's order: p = +1 then -1 when ``parity``, else p = (-1)^l.

    Multiplicities of 0 are dropped. ``muls`` needs at least lmax + 1 entries.
    """
    if lmax < 0 or len(muls) <= lmax:
        raise ValueError(f"need a multiplicity for every l <= lmax={lmax}, got {muls}")
    parities = lambda deg: (1, -1) if parity else ((-1) ** deg,)  # noqa: E731
    return o3.Irreps([(muls[deg], (deg, p)) for deg in range(lmax + 1) for p in parities(deg) if muls[deg] > 0])


def reachable(irreps_in: o3.Irreps, lmax_sh: int, candidates: o3.Irreps) -> o3.Irreps:
    """The entries of ``candidates`` that some path ``ir_in x Y^l`` (l <= lmax_sh) produces (NequIP's ``tp_path_exists``)."""
    made = {ir_out for _, ir_in in o3.Irreps(irreps_in) for deg in range(lmax_sh + 1)
            for ir_out in ir_in * o3.Irrep(deg, (-1) ** deg)}
    return o3.Irreps([(mul, ir) for mul, ir in o3.Irreps(candidates) if ir in made])


def scalar_dim(irreps: o3.Irreps) -> int:
    """Number of leading 0e columns (the invariant channels of a scalars-first irreps)."""
    dim = 0
    for mul, ir in o3.Irreps(irreps):
        if ir != o3.Irrep("0e"):
            break
        dim += mul
    return dim


def polynomial_envelope(x: torch.Tensor, p: int = 6) -> torch.Tensor:
    """DimeNet envelope of x = r / cutoff: 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2) for x < 1, else 0."""
    env = 1.0 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    return torch.where(x < 1.0, env, torch.zeros_like(x))


class BesselBasis(nn.Module):
    """Lengths [E] (Å) -> (2/c) sin(w_n pi r / c) / r, [E, num_basis] (Å^-2), w_n = n initially.

    Written as (2 pi w_n / c^2) sinc(w_n r / c), finite at r = 0 (NequIP's form). ``trainable``
    makes the roots w_n parameters (HIENet's default; NequIP's tutorial config keeps them fixed).
    """

    def __init__(self, cutoff: float, num_basis: int, trainable: bool = False) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        roots = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype())
        if trainable:
            self.roots = nn.Parameter(roots)
        else:
            self.register_buffer("roots", roots)

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        c = self.cutoff
        return (2.0 * math.pi / c**2) * self.roots * torch.sinc(dist.unsqueeze(-1) * self.roots / c)


class Edges(NamedTuple):
    """Per-edge quantities shared by all layers of a forward pass (E edges)."""

    src: torch.Tensor  # [E] sender
    dst: torch.Tensor  # [E] receiver
    sh: torch.Tensor  # [E, (lmax+1)^2] spherical harmonics of the unit edge vector ('component')
    radial: torch.Tensor  # [E, radial_dim] radial features (basis, then the lattice-loop embedding)
    cut: torch.Tensor  # [E, 1] envelope for neighbour edges, 1 for lattice loops
    dist: torch.Tensor  # [E] length (Å)
    cache: dict  # per-forward coupling matrices, filled by EdgeConvolution


class EdgeEmbedding(nn.Module):
    """Edge vectors -> :class:`Edges`: Y^l (l <= lmax), radial basis, lattice-loop embedding, envelope.

    ``basis`` maps lengths [E] to [E, num_basis]; with ``envelope_basis`` it is multiplied by
    the polynomial envelope (NequIP, HIENet), otherwise left raw (TFN, whose radial network's
    output is multiplied by ``cut`` instead).
    """

    def __init__(self, cutoff: float, lmax: int, basis: nn.Module, num_basis: int, type_dim: int,
                 envelope_p: int = 6, envelope_basis: bool = True) -> None:
        super().__init__()
        self.cutoff, self.lmax, self.p, self.envelope_basis = float(cutoff), lmax, envelope_p, envelope_basis
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.basis = basis
        # padding_idx=0: neighbour edges get a fixed zero row, lattice loops a learned one.
        self.loop_embed = nn.Embedding(NUM_EDGE_TYPES, type_dim, padding_idx=0) if type_dim > 0 else None
        self.radial_dim = num_basis + type_dim

    def forward(self, data) -> Edges:
        src, dst = data.edge_index
        vec, dist = edge_lengths(data)
        # 'component': each Y^l has squared norm 2l+1 (NequIP's and HIENet's choice).
        sh = o3.spherical_harmonics(self.irreps_sh, vec, normalize=True, normalization="component")
        env = polynomial_envelope(dist / self.cutoff, self.p).unsqueeze(-1)
        radial = self.basis(dist) * env if self.envelope_basis else self.basis(dist)
        if self.loop_embed is not None:
            radial = torch.cat([radial, self.loop_embed(data.edge_type).to(dist.dtype)], dim=-1)
        cut = torch.where(data.edge_type.unsqueeze(-1) == 0, env, torch.ones_like(env))
        return Edges(src, dst, sh, radial, cut, dist, {})


class ScaledMLP(nn.Module):
    """NequIP's radial MLP: [E, dims[0]] -> [E, dims[-1]], no biases, SiLU between layers.

    Layer k computes x @ (W_k alpha_k) with W_k ~ U(-sqrt 3, sqrt 3) and alpha_k =
    gain / sqrt(fan_in), gain 1 for the first layer and sqrt 2 after a SiLU (forward-variance
    initialisation of ``ScalarMLPFunction``). Without biases, zero input gives zero weights.
    """

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(a, b).uniform_(-math.sqrt(3.0), math.sqrt(3.0))) for a, b in zip(dims, dims[1:]))
        self.alphas = [(1.0 if k == 0 else math.sqrt(2.0)) / math.sqrt(a) for k, a in enumerate(dims[:-1])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k, (w, alpha) in enumerate(zip(self.weights, self.alphas)):
            x = x @ (w * alpha)
            if k < len(self.alphas) - 1:
                x = F.silu(x)
        return x


@functools.cache
def _coupling(l_in: int, l_sh: int, l_out: int) -> torch.Tensor:
    """sqrt(2 l_out + 1) x Wigner 3j [2l_in+1, 2l_sh+1, 2l_out+1] in float64 (e3nn 'component' normalisation)."""
    return o3.wigner_3j(l_in, l_sh, l_out, dtype=torch.float64) * math.sqrt(2 * l_out + 1)


class EdgeConvolution(nn.Module):
    """Point convolution: x'_i = scale * sum_j TP(x_j, Y(r_ij); w_ij), input [N, irreps_in.dim].

    The channel-wise ('uvu') tensor product of e3nn (one weight per channel and path and
    edge, as in TFN, NequIP and HIENet), evaluated in fused form for speed on CPU: the
    couplings of an input irrep with all spherical harmonics form one per-edge matrix
    A [E, 2l_in+1, D] (cached per forward, shared by layers), so a block of features costs
    2l_in+1 outer products, one weight product and one scatter. Equal to
    ``o3.TensorProduct`` with 'uvu' instructions and sorted output (a test pins it).
    Output irreps (``irreps_out``): every path ``ir_in x Y^l`` (l <= lmax) whose result is in
    ``filter_ir_out``, stably sorted by irrep, one entry per path (NequIP's ``irreps_mid``).
    Weights [E, weight_numel] are laid out per input block as [mul, paths] (``path_index``).
    """

    def __init__(self, irreps_in: o3.Irreps, lmax: int, filter_ir_out: list[o3.Irrep], scale: float = 1.0) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        filter_ir_out = [o3.Irrep(ir) for ir in filter_ir_out]
        self.blocks: list[tuple[int, int, int, tuple[tuple[int, int], ...]]] = []  # start, mul, l_in, paths
        paths = []  # (ir_out, block, column offset in the block's D, mul)
        self.path_index: list[tuple[int, int, o3.Irrep]] = []  # per path in weight order: (input entry, l_sh, ir_out)
        start = 0
        for entry, (mul, ir_in) in enumerate(self.irreps_in):
            block_paths, offset = [], 0
            for l_sh in range(lmax + 1):
                for ir_out in ir_in * o3.Irrep(l_sh, (-1) ** l_sh):
                    if ir_out in filter_ir_out:
                        paths.append((ir_out, len(self.blocks), offset, mul))
                        block_paths.append((l_sh, ir_out.l))
                        self.path_index.append((entry, l_sh, ir_out))
                        offset += ir_out.dim
            if block_paths:
                # 0/1 matrix [paths, D] spreading each path's weight over its 2l_out+1 columns (a matmul is
                # much cheaper than an index gather, forward and backward).
                owner = torch.cat([torch.full((2 * l_out + 1,), k) for k, (_, l_out) in enumerate(block_paths)]).long()
                spread = F.one_hot(owner, len(block_paths)).T.to(torch.get_default_dtype())
                self.register_buffer(f"spread{len(self.blocks)}", spread, persistent=False)
                self.blocks.append((start, mul, ir_in.l, tuple(block_paths)))
            start += mul * ir_in.dim
        self.out_paths = sorted(paths, key=lambda p: p[0])  # stable: e3nn's Irreps.sort order
        self.irreps_out = o3.Irreps([(mul, ir) for ir, _, _, mul in self.out_paths])
        self.in_sizes = [mul * (2 * l_in + 1) for _, mul, l_in, _ in self.blocks]
        self.weight_sizes = [mul * len(block_paths) for _, mul, _, block_paths in self.blocks]
        self.weight_numel = sum(self.weight_sizes)
        self.scale = float(scale)

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

    def forward(self, x: torch.Tensor, edges: Edges, weight: torch.Tensor) -> torch.Tensor:
        """``weight`` [E, weight_numel]; returns [N, irreps_out.dim]."""
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
        return torch.cat(out, dim=-1) * self.scale


def gate_for(irreps_out: o3.Irreps, irreps_in: o3.Irreps, lmax_sh: int) -> Gate:
    """NequIP's gate producing ``irreps_out`` (``ConvNetLayer``, nonlinearity_type 'gate').

    Scalars: SiLU if even, tanh if odd. Each l > 0 irrep is multiplied by its own scalar
    gate, 0e if a path to 0e exists from ``irreps_in`` (else 0o), activated by SiLU (even
    gate) or tanh (odd gate): NequIP's and HIENet's ``{"e": silu, "o": tanh}`` for both.
    """
    scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
    gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
    gate_ir = "0e" if reachable(irreps_in, lmax_sh, o3.Irreps("1x0e")) else "0o"
    gates = o3.Irreps([(mul, gate_ir) for mul, _ in gated])
    return Gate(scalars, [ACTIVATIONS[ir.p] for _, ir in scalars], gates, [ACTIVATIONS[ir.p] for _, ir in gates], gated)


class InteractionBlock(nn.Module):
    """One NequIP convolution layer: [N, irreps_in.dim] -> [N, irreps_out.dim].

    x' = Gate( Linear_2( Conv( Linear_1(x) ) ) + SC(x) ), NequIP's ``InteractionBlock`` +
    ``ConvNetLayer`` without resnet (its default). ``hidden`` is the target irreps; like
    NequIP, entries that no path reaches from ``irreps_in`` are dropped (``reach=True``), or
    kept as HIENet does (``reach=False``; the self-connection alone feeds them). Conv: 'uvu'
    tensor product with Y^l (l <= lmax) whose per-edge weights come from ``make_radial(numel)``
    applied to ``Edges.radial``, scaled by ``conv_scale``. Self-connection SC: ``"species"`` =
    NequIP's FullyConnectedTensorProduct(x, attrs) with ``attrs`` [N, attr_dim] x 0e;
    ``"linear"`` = HIENet's o3.Linear(x); ``None`` = none (NequIP's first layer). Linears
    have no biases (NequIP; HIENet's ``use_bias_in_linear: False``).
    """

    def __init__(self, irreps_in: o3.Irreps, hidden: o3.Irreps, lmax: int, make_radial: Callable[[int], nn.Module],
                 conv_scale: float, self_connection: str | None, attr_dim: int = 0, reach: bool = True) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        hidden = o3.Irreps(hidden)
        target = reachable(self.irreps_in, lmax, hidden) if reach else hidden
        self.gate = gate_for(target, self.irreps_in, lmax)
        self.irreps_out = self.gate.irreps_out
        self.linear_1 = o3.Linear(self.irreps_in, self.irreps_in)
        self.conv = EdgeConvolution(self.irreps_in, lmax, [ir for _, ir in self.gate.irreps_in], conv_scale)
        self.radial = make_radial(self.conv.weight_numel)
        self.linear_2 = o3.Linear(self.conv.irreps_out.simplify(), self.gate.irreps_in)
        if self_connection == "species":
            self.sc = o3.FullyConnectedTensorProduct(self.irreps_in, o3.Irreps(f"{attr_dim}x0e"), self.gate.irreps_in)
        elif self_connection == "linear":
            self.sc = o3.Linear(self.irreps_in, self.gate.irreps_in)
        elif self_connection is None:
            self.sc = None
        else:
            raise ValueError(f"self_connection must be 'species', 'linear' or None, got {self_connection!r}")
        self.self_connection = self_connection

    def forward(self, x: torch.Tensor, edges: Edges, attrs: torch.Tensor | None = None) -> torch.Tensor:
        """``attrs`` [N, attr_dim]: species attributes (for the ``"species"`` self-connection)."""
        update = self.linear_2(self.conv(self.linear_1(x), edges, self.radial(edges.radial)))
        if self.self_connection == "species":
            update = update + self.sc(x, attrs)
        elif self.self_connection == "linear":
            update = update + self.sc(x)
        return self.gate(update)
