"""GeoCGNN (Cheng, Zhang & Dong, Commun. Mater. 2, 92, 2021), written against the graph contract.

Follows the reference code github.com/Tinystormjojo/geo-CGNN: ``models.py`` (classes
``geo_CGNN``, ``GatedGraphConvolution``, ``Gated_pooling``, ``OLP``, ``NodeEmbedding``)
and ``data_utils.py`` (the edge basis; see ``architectures.geocgnn_basis``). Mechanism
by mechanism (H = ``hidden``, P = ``pool_dim``; i receives, j sends, r_ij = edge vector):

- **Atoms.** h_i = sigmoid(W z_i): the reference multiplies a one-hot element vector by a
  bias-free Linear and applies a sigmoid (``NodeEmbedding``), which is a learned table
  lookup; here ``nn.Embedding`` over Z = 0..118 (the reference's table has one row per
  element of its dataset, 87 for MP).
- **Edge basis.** 64 Gaussians in exp(-r) times the smoothstep envelope, and the 64
  plane waves cos(k . r_ij) / sqrt(V) over the 4x4x4 k-grid inside the first Brillouin
  zone of the edge's own cell (fractional +-1/8, +-3/8; 2 pi inside k, V the cell volume
  in Å^3: both as in the reference). r_ij includes the periodic shift, so the images of a
  pair, self-image edges and lattice loops get different plane-wave features.
- **Block** (``GatedGraphConvolution``). z = [h_i, h_j, (h_i - h_j) / |r_ij|] (3H), then

      m_ij = sigmoid(BN(W_g z)) * ELU(BN(W_m z)) * (W_1 g(r) + W_2 (pw * sigmoid(BN(W_p pw)))),
      h_i <- h_i + sum_j m_ij,

  W_p square (64 x 64), every Linear bias-free (reference default ``--conv_bias False``),
  batch norm on edges (``--use_edge_batch_norm True``). Messages of neighbour edges with
  |r| >= cutoff are masked to zero (the reference's ``mask = rij < cutoff``).
  After pooling (below), a per-block MLP h <- ELU(BN(W h)) (``MLP_psi2n``).
- **Readout.** After every block (on the block's output, before its MLP) a gated pooling
  p_b = sum_i ELU(BN(W_a h_i)) * (W_b h_i) (P wide); the graph vector is sum_b p_b; then a
  halving MLP P -> P/2 -> ... (``num_readout - 1`` Linear-BN-ELU layers, widths
  P / 2^l) and a bias-free Linear to ``out_dim``.

Deliberate departures:

- **Lattice loops.** The reference has one edge type. Each block adds a learned vector
  e_t (H wide, per edge type; row 0 fixed at zero) to the filter W_1 g + W_2 pw, so
  neighbour edges are the reference's exactly and lattice loops (edge_type 1) get their
  own term. Loops exist whatever their length, so the cutoff mask spares them; beyond
  the cutoff their Gaussian part is zero (envelope) and they carry plane waves + e_1.
- **Pooling sum.** The reference's ``Gated_pooling`` computes ``index_add_(...) /
  node_counts`` but discards the quotient (``index_add_`` is in place), so the published
  model *sums* over atoms; ``pool="sum"`` (default) reproduces that, ``pool="mean"`` is
  the evident intent, offered as an option.
- Dead parameters of the reference (``linear1_vector_gate`` and its batch norm, never
  used in ``forward``) are left out; the output is [B, out_dim] (no ``squeeze``).
- ``GraphBatchNorm`` passes batches of fewer than two rows through in training (an
  edgeless graph, a one-graph batch) where ``BatchNorm1d`` would fail.

Symmetry. Rotation, translation and permutation invariant (k rotates with the cell).
Not invariant to the choice of cell: a supercell or another basis of the same lattice
has another k-grid (``geocgnn_basis`` docstring), so the mixin's supercell/shear
invariance does not hold by construction (the tests assert the break); the basis
inversion (a, b, c) -> (-a, -b, -c) is exact. On ``distance`` graphs the model sees the
minimum-image vector of each pair only, and where several images tie for the minimum
(hcp) the graph keeps one chosen by atom order; the tied images are related by a
crystal symmetry that the basis-bound k-grid lacks, so the output depends on which one
was kept (the model is permutation invariant for a given graph; the tests pin both).
For the same reason it is not mirror invariant in a fixed cell: reflecting the atoms
(z -> -z) inside one cell permutes the k-grid channels, which the learned weights tell
apart (so it scores above chance on ``probe_chirality``; tested).

Batch norm on a one-element data set (as in the reference, not a departure). With one
element every edge row of the first block is the same vector, so its batch variance is 0:
in training BN returns beta, messages are ELU(beta)-scaled filters, and the running
variance decays by the momentum (x 0.9 per step) towards 0. In eval mode BN divides by
sqrt(running_var + eps), amplifying the running mean's lag behind the moving weights up to
1/sqrt(eps). On ``probe_self_image`` (argon only) the validation error in eval mode is
3-4x the error with batch statistics and then diverges, so the model does not learn the
probe whatever the encoding (tested: ``test_single_element_batches_starve_the_edge_batch_norms``).

Presets. ``paper``: the argparse defaults of the reference's ``process_geo_CGNN.py``
(``--n_hidden_feat 128 --n_GCN_feat 128 --N_block 6 --n_MLP_LR 3 --n_grid_K 4
--n_Gaussian 64 --cutoff 8``; its README's example run uses 192 / 192 / 5 blocks).
``matched`` (= the registered defaults): the same model with H = P = 48 and 3 blocks.
Trainable parameters (out_dim 1): paper 1,041,760 (the reference's own layer list, with
its 87-row one-hot table and its dead layers and without the edge-type table, has
1,086,816); matched 101,988.
"""
from __future__ import annotations

import torch
from torch import nn
from torch_geometric.utils import scatter

from architectures.common import NUM_EDGE_TYPES, NUM_ELEMENTS, GraphBatchNorm, aggregate, edge_lengths, graph_index, num_graphs
from architectures.geocgnn_basis import ExpGaussianBasis, k_grid_fractions, plane_waves
from architectures.registry import register

POOLS = ("sum", "mean")


def linear_bn(in_dim: int, out_dim: int, act: nn.Module) -> nn.Sequential:
    """act(BN(W x)), W bias-free: the reference's ``OLP`` / ``_bn_act`` with batch norm on."""
    return nn.Sequential(nn.Linear(in_dim, out_dim, bias=False), GraphBatchNorm(out_dim), act)


class GeoConv(nn.Module):
    """One gated graph convolution: h [N,H] and edge inputs [E,...] -> h + sum of messages [N,H]."""

    def __init__(self, hidden: int, num_gaussians: int, num_k: int) -> None:
        super().__init__()
        self.gate = linear_bn(3 * hidden, hidden, nn.Sigmoid())
        self.core = linear_bn(3 * hidden, hidden, nn.ELU())
        self.radial = nn.Linear(num_gaussians, hidden, bias=False)
        self.wave_gate = linear_bn(num_k, num_k, nn.Sigmoid())
        self.wave = nn.Linear(num_k, hidden, bias=False)
        self.edge_type = nn.Embedding(NUM_EDGE_TYPES, hidden, padding_idx=0)  # row 0 stays zero

    def forward(self, h: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, dist: torch.Tensor, gauss: torch.Tensor,
                waves: torch.Tensor, edge_type: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """dist [E] Å, gauss [E,G], waves [E,M], edge_type [E] long, mask [E] (1 keeps the message)."""
        h_i, h_j = h[dst], h[src]
        z = torch.cat([h_i, h_j, (h_i - h_j) / dist[:, None]], dim=-1)
        filt = self.radial(gauss) + self.wave(waves * self.wave_gate(waves)) + self.edge_type(edge_type).to(h.dtype)
        message = self.gate(z) * self.core(z) * filt * mask[:, None]
        return h + aggregate(message, dst, h.shape[0])


class GatedPooling(nn.Module):
    """p = sum (or mean) over a graph's atoms of ELU(BN(W_a h)) * (W_b h): [N,H] -> [B,P]."""

    def __init__(self, hidden: int, pool_dim: int, pool: str) -> None:
        super().__init__()
        self.gate = linear_bn(hidden, pool_dim, nn.ELU())
        self.value = nn.Linear(hidden, pool_dim, bias=False)
        self.pool = pool

    def forward(self, h: torch.Tensor, batch: torch.Tensor, size: int) -> torch.Tensor:
        return scatter(self.gate(h) * self.value(h), batch, dim=0, dim_size=size, reduce=self.pool)


@register(
    "geocgnn",
    defaults={
        "hidden": 48, "pool_dim": 48, "num_blocks": 3, "num_readout": 3, "num_gaussians": 64, "k_grid": 4,
        "pool": "sum", "cutoff": 8.0,
    },
    presets={
        "paper": {"hidden": 128, "pool_dim": 128, "num_blocks": 6, "num_readout": 3, "num_gaussians": 64, "k_grid": 4},
        "matched": {"hidden": 48, "pool_dim": 48, "num_blocks": 3, "num_readout": 3, "num_gaussians": 64, "k_grid": 4},
    },
    search_space={
        "hidden": {"type": "categorical", "choices": [32, 48, 64, 128]},
        "pool_dim": {"type": "categorical", "choices": [64, 128]},
        "num_blocks": {"type": "int", "low": 2, "high": 6},
        "num_readout": {"type": "int", "low": 2, "high": 3},
    },
    family="invariant",
)
class GeoCGNN(nn.Module):
    """Gated graph convolution on exp-Gaussian and Brillouin-zone plane-wave edge bases, gated pooling per block."""

    def __init__(self, out_dim: int, hidden: int, pool_dim: int, num_blocks: int, num_readout: int, num_gaussians: int,
                 k_grid: int, pool: str, cutoff: float) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {list(POOLS)}, got {pool!r}")
        if num_blocks < 1 or num_readout < 1:
            raise ValueError(f"num_blocks and num_readout must be >= 1, got {num_blocks}, {num_readout}")
        self.cutoff = float(cutoff)
        self.embed = nn.Embedding(NUM_ELEMENTS, hidden)
        self.gaussians = ExpGaussianBasis(num_gaussians, cutoff)
        self.register_buffer("k_fractions", k_grid_fractions(k_grid))
        num_k = k_grid**3
        self.convs = nn.ModuleList(GeoConv(hidden, num_gaussians, num_k) for _ in range(num_blocks))
        self.node_mlps = nn.ModuleList(linear_bn(hidden, hidden, nn.ELU()) for _ in range(num_blocks))
        self.pools = nn.ModuleList(GatedPooling(hidden, pool_dim, pool) for _ in range(num_blocks))
        widths = [pool_dim // 2**level for level in range(num_readout)]  # the reference's int(P / 2^l)
        self.readout = nn.Sequential(*(linear_bn(a, b, nn.ELU()) for a, b in zip(widths[:-1], widths[1:])),
                                     nn.Linear(widths[-1], out_dim, bias=False))

    def edge_inputs(self, data) -> tuple[torch.Tensor, ...]:
        """(dist [E] Å, gaussians [E,G], plane waves [E,k_grid^3], message mask [E]) of a batch."""
        vec, dist = edge_lengths(data)
        edge_graph = graph_index(data)[data.edge_index[1]]
        waves = plane_waves(vec, data.cell.reshape(-1, 3, 3).to(vec.dtype), edge_graph, self.k_fractions)
        mask = ((dist < self.cutoff) | (data.edge_type != 0)).to(vec.dtype)
        return dist, self.gaussians(dist), waves, mask

    def graph_vector(self, data) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Sum over blocks of the gated pooling [B,P], and the per-block poolings (list of [B,P])."""
        src, dst = data.edge_index
        dist, gauss, waves, mask = self.edge_inputs(data)
        batch, size = graph_index(data), num_graphs(data)
        h = torch.sigmoid(self.embed(data.z))
        pooled = []
        for conv, pool, node_mlp in zip(self.convs, self.pools, self.node_mlps):
            h = conv(h, src, dst, dist, gauss, waves, data.edge_type, mask)
            pooled.append(pool(h, batch, size))
            h = node_mlp(h)
        return torch.stack(pooled).sum(0), pooled

    def forward(self, data) -> torch.Tensor:
        return self.readout(self.graph_vector(data)[0])
