"""PaiNN (Schütt, Unke & Gastegger, ICML 2021, "Equivariant message passing for the prediction
of tensorial properties and molecular spectra") on periodic graphs.

Reference: schnetpack 2.1.1, ``schnetpack/representation/painn.py`` (``PaiNN``,
``PaiNNInteraction``, ``PaiNNMixing``), with ``schnetpack.nn.BesselRBF`` /
``CosineCutoff`` and the ``schnetpack.atomistic.Atomwise`` readout. Every atom carries F
scalars s [N, F] (irreps ``Fx0e``) and F vectors v [N, 3, F] (``Fx1o``), v = 0 at the
start. Mechanism by mechanism (r_ij: the periodic edge vector from the receiver i to the
sender j's image, Å, from :func:`architectures.common.edge_lengths`; this is schnetpack's
``_Rij`` "from center atom to neighbour", so idx_i = our dst, idx_j = our src):

* embedding: s_i = Embedding(Z_i), as schnetpack's ``nn.Embedding(100, F)``.
* radial basis: sin(n pi r / r_c) / r, n = 1..num_rbf (``BesselRBF``, the PaiNN paper's
  basis), times the cosine cutoff 0.5 (cos(pi r / r_c) + 1) for r < r_c (``CosineCutoff``).
* filters: W_ij = (Linear(num_rbf -> 3F L)(rbf) + bias) * f_cut(r), split into one [E, 3F]
  filter per block (``shared_filters``: one [E, 3F] filter for every block).
* interaction (message) block: x = Dense(F, F, SiLU) -> Dense(F, 3F) of s; for each edge
  (dq, dmu_R, dmu_mu) = x_j * W_ij; s_i += sum_j dq, v_i += sum_j dmu_R r_ij/|r_ij| + dmu_mu v_j.
* mixing (update) block: (V v, W v) = Dense(F, 2F, no bias) of v; (a_ss, a_vv, a_sv) =
  Dense(2F, F, SiLU) -> Dense(F, 3F) of [s, sqrt(|V v|^2 + eps)];
  s += a_ss + a_sv <V v, W v>, v += a_vv W v.
* ``shared_interactions``: one interaction and one mixing block reused by every layer.
* readout: ``Atomwise`` with its default pyramidal MLP, Dense(F, F/2, SiLU) -> Dense(F/2, out),
  per atom, then ``aggregation_mode="avg"`` (the mean over the atoms: targets here are intensive).
* initialisation: schnetpack's ``Dense`` (Xavier-uniform weights, zero biases).

``tests/architectures/test_painn.py`` copies identical weights into schnetpack's PaiNN and
Atomwise and checks equal outputs (float64) on real crystals.

Departures, all deliberate:

* Lattice loops (``edge_type`` 1, the ``lattice`` variant) get their own filter: a Linear on
  the basis sin(n pi u), u = r / (r + r_c) in (0, 1), which resolves any length, with its
  own bias (a learned loop-type embedding) and no cutoff envelope, since a loop exists
  whatever its length (a 2D crystal's vacuum axis is often 25-45 Å, beyond any cutoff).
  schnetpack knows no loops: a loop would be an ordinary self-image edge, silent beyond
  r_c. Neighbour edges (type 0) get exactly schnetpack's filter.
* The embedding table has 119 rows (Z = 0..118) instead of 100.
* The readout mean pools (schnetpack's ``avg``) rather than its default sum.
* No tensorial (dipole/polarisability) heads: the suite predicts scalars.

Gradients stay finite on an edgeless one-atom ``distance`` graph: v stays exactly zero and
the norm sqrt(|V v|^2 + eps) (schnetpack's epsilon, 1e-8) is differentiable there. All
vectors are polar (1o) and no cross product is used, so the model is equivariant under
improper rotations too.
"""
from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn

from architectures.common import NUM_ELEMENTS, aggregate, cosine_cutoff, edge_lengths, mean_pool
from architectures.registry import register

NORM_EPS = 1e-8  # schnetpack PaiNN's epsilon inside sqrt(|V v|^2 + eps)


def dense(in_dim: int, out_dim: int, bias: bool = True) -> nn.Linear:
    """nn.Linear initialised as schnetpack's ``Dense``: Xavier-uniform weight, zero bias."""
    layer = nn.Linear(in_dim, out_dim, bias=bias)
    nn.init.xavier_uniform_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class BesselBasis(nn.Module):
    """PaiNN's radial basis sin(n pi r / r_c) / r, n = 1..num: distances [E] (Å) -> [E, num]."""

    def __init__(self, cutoff: float, num: int) -> None:
        super().__init__()
        self.register_buffer("freq", torch.arange(1, num + 1, dtype=torch.get_default_dtype()) * math.pi / cutoff)

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        return torch.sin(dist.unsqueeze(-1) * self.freq) / dist.unsqueeze(-1)


class LoopBasis(nn.Module):
    """Lattice-loop lengths of any size: sin(n pi u), u = r / (r + r_c) in (0, 1); [E] -> [E, num].

    A sine basis rather than Gaussians: Gaussian tails underflow to subnormal floats,
    which make CPU matrix products many times slower.
    """

    def __init__(self, cutoff: float, num: int) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("freq", torch.arange(1, num + 1, dtype=torch.get_default_dtype()) * math.pi)

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        return torch.sin((dist / (dist + self.cutoff)).unsqueeze(-1) * self.freq)


class Interaction(nn.Module):
    """PaiNN interaction (message) block: (s [N,F], v [N,3,F], W [E,3F], unit r [E,3]) -> (s, v)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.context = nn.Sequential(dense(hidden, hidden), nn.SiLU(), dense(hidden, 3 * hidden))

    def forward(self, s: torch.Tensor, v: torch.Tensor, filt: torch.Tensor, unit: torch.Tensor,
                src: torch.Tensor, dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # index_select, not [src]: its backward is a plain index_add, fast in deterministic mode
        x = self.context(s).index_select(0, src) * filt  # [E, 3F]
        dq, dmu_r, dmu_mu = x.chunk(3, dim=-1)
        dmu = dmu_r.unsqueeze(1) * unit.unsqueeze(-1) + dmu_mu.unsqueeze(1) * v.index_select(0, src)  # [E, 3, F]
        out = aggregate(torch.cat([dq.unsqueeze(1), dmu], dim=1), dst, s.shape[0])  # one scatter: [N, 4, F]
        return s + out[:, 0], v + out[:, 1:]


class Mixing(nn.Module):
    """PaiNN mixing (update) block: (s [N,F], v [N,3,F]) -> (s, v)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.context = nn.Sequential(dense(2 * hidden, hidden), nn.SiLU(), dense(hidden, 3 * hidden))
        self.mix = dense(hidden, 2 * hidden, bias=False)  # no bias: a bias would break equivariance

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_v, v_w = self.mix(v).chunk(2, dim=-1)  # [N, 3, F] each: schnetpack's mu_V, mu_W
        norm = torch.sqrt(v_v.pow(2).sum(dim=1) + NORM_EPS)
        a_ss, a_vv, a_sv = self.context(torch.cat([s, norm], dim=-1)).chunk(3, dim=-1)
        return s + a_ss + a_sv * (v_v * v_w).sum(dim=1), v + a_vv.unsqueeze(1) * v_w


@register(
    "painn",
    defaults={"hidden": 48, "num_layers": 3, "num_rbf": 20, "cutoff": 8.0,
              "shared_filters": False, "shared_interactions": False},
    presets={
        # schnetpack 2.1.1 configs/model/representation/painn.yaml: n_atom_basis 128,
        # n_interactions 3, unshared filters and interactions; its radial_basis configs:
        # n_rbf 20; configs/experiment/{qm9_atomwise,md17,rmd17}.yaml: cutoff 5 Å. The same
        # sizes as the PaiNN paper's models (F = 128, 3 blocks, 20 sinc functions, 5 Å).
        "paper": {"hidden": 128, "num_layers": 3, "num_rbf": 20, "cutoff": 5.0},
        # ~100k parameters (MATCHED_PARAMS); the cutoff is the suite's graph cutoff, so
        # the envelope does not delete edges the graph carries.
        "matched": {"hidden": 48, "num_layers": 3, "num_rbf": 20, "cutoff": 8.0},
    },
    search_space={
        "hidden": {"type": "categorical", "choices": [32, 48, 64, 128]},
        "num_layers": {"type": "int", "low": 2, "high": 5},
        "num_rbf": {"type": "categorical", "choices": [16, 20, 32]},
    },
    family="equivariant",
)
class PaiNN(nn.Module):
    """PaiNN: scalar and vector (l = 1) channels, interaction + mixing blocks, atomwise mean readout."""

    def __init__(self, out_dim: int, hidden: int, num_layers: int, num_rbf: int, cutoff: float,
                 shared_filters: bool = False, shared_interactions: bool = False) -> None:
        super().__init__()
        self.hidden, self.num_layers, self.cutoff = hidden, num_layers, float(cutoff)
        self.shared_filters = bool(shared_filters)
        self.irreps = o3.Irreps(f"{hidden}x0e+{hidden}x1o")
        self.embedding = nn.Embedding(NUM_ELEMENTS, hidden)
        self.rbf = BesselBasis(self.cutoff, num_rbf)
        self.loop_rbf = LoopBasis(self.cutoff, num_rbf)
        n_filters = 1 if self.shared_filters else num_layers
        self.filter_net = dense(num_rbf, n_filters * 3 * hidden)
        self.loop_filter_net = dense(num_rbf, n_filters * 3 * hidden)  # our addition (lattice loops)
        if shared_interactions:  # one block object repeated: its parameters count once
            interaction, mixing = Interaction(hidden), Mixing(hidden)
            self.interactions = nn.ModuleList([interaction] * num_layers)
            self.mixing = nn.ModuleList([mixing] * num_layers)
        else:
            self.interactions = nn.ModuleList(Interaction(hidden) for _ in range(num_layers))
            self.mixing = nn.ModuleList(Mixing(hidden) for _ in range(num_layers))
        # schnetpack Atomwise(n_in=F, n_layers=2, n_hidden=None): pyramidal F -> F/2 -> out
        self.readout = nn.Sequential(dense(hidden, max(out_dim, hidden // 2)), nn.SiLU(),
                                     dense(max(out_dim, hidden // 2), out_dim))

    def edge_filters(self, data) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per-block filters (list of [E, 3F]) and unit edge vectors [E, 3] (receiver -> sender image)."""
        vec, dist = edge_lengths(data)
        filt = self.filter_net(self.rbf(dist)) * cosine_cutoff(dist, self.cutoff).unsqueeze(-1)
        is_loop = data.edge_type == 1
        if bool(is_loop.any()):
            filt = torch.where(is_loop.unsqueeze(-1), self.loop_filter_net(self.loop_rbf(dist)), filt)
        unit = vec / dist.unsqueeze(-1)  # edges have length > 0 by the graph contract
        filters = filt.chunk(1 if self.shared_filters else self.num_layers, dim=-1)
        return [filters[0 if self.shared_filters else i] for i in range(self.num_layers)], unit

    def _features(self, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """[s | v] in e3nn's mul-major layout: [N, F + 3F], each channel's x, y, z contiguous."""
        return torch.cat([s, v.transpose(1, 2).reshape(s.shape[0], 3 * self.hidden)], dim=-1)

    def representation(self, data, record: bool = False):
        """Final (s [N,F], v [N,3,F]) and, if ``record``, every layer's (name, irreps, features)."""
        src, dst = data.edge_index
        filters, unit = self.edge_filters(data)
        s = self.embedding(data.z)
        v = s.new_zeros(s.shape[0], 3, self.hidden)
        layers = [("embedding", self.irreps, self._features(s, v))] if record else []
        for i, (interaction, mixing) in enumerate(zip(self.interactions, self.mixing)):
            s, v = interaction(s, v, filters[i], unit, src, dst)
            if record:
                layers.append((f"interaction{i}", self.irreps, self._features(s, v)))
            s, v = mixing(s, v)
            if record:
                layers.append((f"mixing{i}", self.irreps, self._features(s, v)))
        return s, v, layers

    def node_features(self, data) -> list[tuple[str, o3.Irreps, torch.Tensor]]:
        """Node features [N, irreps.dim] (irreps ``Fx0e+Fx1o``) after the embedding and every block."""
        return self.representation(data, record=True)[2]

    def forward(self, data) -> torch.Tensor:
        s, _, _ = self.representation(data)
        return mean_pool(self.readout(s), data)
