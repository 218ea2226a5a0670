"""SchNet (Schütt et al., NeurIPS 2017; J. Chem. Phys. 148, 241722, 2018), against the graph contract.

The common distance-only reference: geometry enters only through edge lengths d (Å).

- Atoms are embedded from Z by a learned table, h_i in R^hidden.
- Each interaction block is a continuous-filter convolution with a residual update:
  W_ij = filter_net(rbf(d_ij) + type_emb[t_ij]) * envelope_ij, where rbf are Gaussians
  centred on 0..cutoff and filter_net is Linear-ssp-Linear;
  h_i <- h_i + Linear-ssp-Linear( sum_{j->i} (W_in h_j) * W_ij ),
  ssp(x) = softplus(x) - ln 2 (shifted softplus).
- Readout: an atom-wise MLP (Linear-ssp-Linear) to ``out_dim``, then the mean over the
  atoms of each graph (the targets are intensive; the paper sums for energies).

Additions and simplifications relative to the paper:

- **Edge type.** Lattice self-loops of the ``lattice`` variant (edge_type 1) enter as
  ordinary edges by their length; a learned embedding of the edge type
  (``NUM_EDGE_TYPES`` x ``num_gaussians``) is added to the Gaussian expansion before the
  filter network, so a loop and a neighbour edge of the same length give different
  filters. The original has one edge type.
- **Envelope.** The smooth cosine cutoff 0.5 (cos(pi d / cutoff) + 1) (zero beyond the
  cutoff; from SchNetPack / the 2018 paper) multiplies the filters of neighbour edges,
  whose presence depends on the cutoff, so the model is continuous as atoms cross it.
  Lattice loops exist whatever their length, so the envelope would only delete the long
  ones (e.g. the vacuum-direction loops of a layered crystal) with no gain in smoothness;
  they are left unenveloped. A loop longer than about cutoff + 0.5 Å has a vanishing
  Gaussian expansion, so its filter carries the loop's presence, not its length.
- One filter network per interaction block (as in the 2018 paper), filters of width
  ``hidden``; no energy/force specifics (atom-reference energies, derivatives).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from architectures.common import NUM_EDGE_TYPES, NUM_ELEMENTS, GaussianBasis, aggregate, cosine_cutoff, edge_lengths, mean_pool
from architectures.registry import register

_LN2 = math.log(2.0)


class ShiftedSoftplus(nn.Module):
    """ssp(x) = softplus(x) - ln 2, so that ssp(0) = 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(x) - _LN2


class Interaction(nn.Module):
    """One SchNet interaction block: h [N,F], filter input [E,G], envelope [E] -> update [N,F]."""

    def __init__(self, hidden: int, num_gaussians: int) -> None:
        super().__init__()
        self.filter_net = nn.Sequential(nn.Linear(num_gaussians, hidden), ShiftedSoftplus(), nn.Linear(hidden, hidden))
        self.in2f = nn.Linear(hidden, hidden, bias=False)
        self.f2out = nn.Sequential(nn.Linear(hidden, hidden), ShiftedSoftplus(), nn.Linear(hidden, hidden))

    def forward(self, h: torch.Tensor, filter_in: torch.Tensor, envelope: torch.Tensor, src: torch.Tensor,
                dst: torch.Tensor) -> torch.Tensor:
        w = self.filter_net(filter_in) * envelope.unsqueeze(-1)
        conv = aggregate(self.in2f(h)[src] * w, dst, h.shape[0])
        return self.f2out(conv)


@register(
    "schnet",
    defaults={"hidden": 64, "num_interactions": 3, "num_gaussians": 50, "cutoff": 8.0},
    search_space={
        "hidden": {"type": "categorical", "choices": [32, 64, 128]},
        "num_interactions": {"type": "int", "low": 2, "high": 6},
        "num_gaussians": {"type": "categorical", "choices": [25, 50, 100]},
    },
    family="invariant",
)
class SchNet(nn.Module):
    """SchNet: continuous-filter convolutions on edge lengths (distance-only reference)."""

    def __init__(self, out_dim: int, hidden: int, num_interactions: int, num_gaussians: int, cutoff: float) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.embed = nn.Embedding(NUM_ELEMENTS, hidden)
        self.basis = GaussianBasis(cutoff, num_gaussians)
        self.type_embed = nn.Embedding(NUM_EDGE_TYPES, num_gaussians)
        self.interactions = nn.ModuleList(Interaction(hidden, num_gaussians) for _ in range(num_interactions))
        half = max(hidden // 2, 1)
        self.atomwise = nn.Sequential(nn.Linear(hidden, half), ShiftedSoftplus(), nn.Linear(half, out_dim))

    def forward(self, data) -> torch.Tensor:
        """Batched graphs -> [num_graphs, out_dim]."""
        src, dst = data.edge_index
        _, dist = edge_lengths(data)
        filter_in = self.basis(dist) + self.type_embed(data.edge_type).to(dist.dtype)
        is_loop = data.edge_type == 1
        envelope = torch.where(is_loop, torch.ones_like(dist), cosine_cutoff(dist, self.cutoff))
        h = self.embed(data.z)
        for block in self.interactions:
            h = h + block(h, filter_in, envelope, src, dst)
        return mean_pool(self.atomwise(h), data)
