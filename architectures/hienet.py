"""HIENet (Yan et al., "A Materials Foundation Model via Hybrid Invariant-Equivariant Architectures",
arXiv:2503.05771, 2025), following OpenMat/HIENet in divelab/AIRS.

Serial hybrid: invariant attention layers first, NequIP interaction blocks after. Mechanisms,
each with the reference file it follows (``OpenMat/HIENet/hienet/``):

- Species: one-hot -> linear without bias (``model_build.py`` ``onehot_to_feature_x``), i.e. a
  learned embedding of Z, ``invariant_dim`` x 0e.
- ONE edge embedding serves both halves (``nn/edge_embedding.py`` ``EdgeEmbedding``,
  ``BesselBasis``, ``PolynomialCutoff``): ``num_basis`` Bessel functions (2/c) sin(w_n r/c)/r
  with trainable roots times the polynomial envelope p = 6, plus Y^l of the edge vector.
- ``num_invariant_layers`` ComFormer node-wise attention layers (``nn/iComfLayers.py``
  ``ComformerNodeConvLayer``, one head; :class:`ComformerNodeConv`): q = W_q h_i,
  k = W_k h, v = W_v h, e = W_e edge_emb (all with biases); per edge j -> i
  k'_ij = key_update([k_i | k_j | e]) and m_ij = msg_update([v_i | v_j | e]) (each
  Linear(3C, C)-SiLU-Linear(C, C)), alpha_ij = q_i * k'_ij / sqrt(C) (per channel),
  m_ij <- m_ij * sigmoid(LN_att(alpha_ij)); o_i = W_o sum_j m_ij; gated residual update
  r = sigmoid(W_r h_i), u = sigmoid(W_u h_i), h' = (1-u) h_i + u softplus(LN(o_i)),
  h_i <- (1-u) (r * h_i) + u h'.
- ``num_layers`` NequIP interaction blocks (``model_build.py`` ``NequIP_interaction_block``,
  ``nn/convolution.py``, ``nn/self_connection.py``, ``nn/equivariant_gate.py``): the first
  reads the invariant features as ``invariant_dim`` x 0e; Linear_1, 'uvu' tensor product with
  Y^l (l <= lmax) weighted by e3nn's FullyConnectedNet([edge_dim, 64, 64, numel], SiLU) of the
  shared edge embedding, sum over neighbours divided by ``avg_neighbors`` (HIENet's
  ``conv_denominator``, not its square root), Linear_2, plus a LINEAR self-connection
  (``self_connection_type: 'linear'``), then the gate (SiLU even / tanh odd, scalars and gates).
  Every target irrep is kept, reachable or not (HIENet does not filter them).
- The last equivariant layer outputs ``scalars`` x 0e only (``lmax_node = 0``, even parity).
- Readout (``reduce_input_to_hidden``, ``reduce_hidden_to_energy``): Linear(S -> S/2) then
  Linear(S/2 -> 1) per atom, no nonlinearity.

Deliberate departures:

- Parity: HIENet's ``train.yaml`` sets ``is_parity: False``, labelling every Y^l even (the
  network is then SO(3)- but not O(3)-equivariant). Here Y^l keeps its parity (-1)^l and the
  features are 0e + 1o + 2e + 3o (same multiplicities, O(3)); tensor-product paths into
  pseudo-tensors, which HIENet's all-even labelling keeps, have nowhere to go and are dropped.
- Every intermediate equivariant layer carries l <= lmax (``train.yaml``'s first one stops at l = 2).
- Intensive targets: per-atom outputs are averaged over each structure (HIENet sums energies);
  the last linear has a bias in place of HIENet's shift/scale from data statistics. No
  forces/stresses, no dropout (``train.yaml``: 0.04 MLP / 0.08 attention), no ComFormer edge
  (lattice) convolution (``use_edge_conv: False`` in ``train.yaml`` too). The cutoff is the
  suite's graph cutoff (``train.yaml``: 5 Å); ``avg_neighbors`` is a hyperparameter.
- Lattice loops (``lattice`` variant, edge_type 1) append a learned embedding to the shared
  edge embedding (zero for neighbour edges).

Presets: ``paper`` = ``train.yaml`` (inv_features [384, 384], num_invariant_conv 1; irreps
384x0e -> 512x0e+128x1e+64x2e(+32x3e) x3 -> 512x0e, lmax 3; weight_nn_hidden_neurons [64, 64];
bessel_basis_num 8; poly_cut_p_value 6). ``matched`` (= the registered defaults): one 48-wide
attention layer, then three equivariant layers (48x0e+16x1o+8x2e twice, then 48x0e) with a
[32, 32] radial network, at about 100k parameters.
"""
from __future__ import annotations

import math

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet
from torch import nn
from torch.nn import functional as F

from architectures.common import NUM_ELEMENTS, aggregate, mean_pool
from architectures.e3nn_blocks import BesselBasis, EdgeEmbedding, Edges, InteractionBlock, feature_irreps
from architectures.registry import register


def _mlp(channels: int) -> nn.Sequential:
    """ComFormer's key_update / msg_update: Linear(3C, C), SiLU, Linear(C, C)."""
    return nn.Sequential(nn.Linear(3 * channels, channels), nn.SiLU(), nn.Linear(channels, channels))


class ComformerNodeConv(nn.Module):
    """HIENet's invariant layer (ComFormer node-wise attention, one head): h [N, C], edge_emb [E, edge_dim] -> [N, C]."""

    def __init__(self, channels: int, edge_dim: int) -> None:
        super().__init__()
        self.channels = channels
        self.query, self.key, self.value = (nn.Linear(channels, channels) for _ in range(3))
        self.edge = nn.Linear(edge_dim, channels)
        self.key_update, self.msg_update = _mlp(channels), _mlp(channels)
        self.norm_att, self.norm = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.concat = nn.Linear(channels, channels)  # linear_concate (one head: C -> C)
        self.reset, self.update = nn.Linear(channels, channels), nn.Linear(channels, channels)

    def messages(self, h: torch.Tensor, edge_emb: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        """Gated messages [E, C] from sender src (j) to receiver dst (i)."""
        q, k, v, e = self.query(h), self.key(h), self.value(h), self.edge(edge_emb)
        key = self.key_update(torch.cat([k[dst], k[src], e], dim=-1))
        alpha = q[dst] * key / math.sqrt(self.channels)
        return self.msg_update(torch.cat([v[dst], v[src], e], dim=-1)) * torch.sigmoid(self.norm_att(alpha))

    def forward(self, h: torch.Tensor, edges: Edges) -> torch.Tensor:
        out = self.concat(aggregate(self.messages(h, edges.radial, edges.src, edges.dst), edges.dst, h.shape[0]))
        reset, update = torch.sigmoid(self.reset(h)), torch.sigmoid(self.update(h))
        candidate = (1 - update) * h + update * F.softplus(self.norm(out))
        return (1 - update) * (reset * h) + update * candidate


@register(
    "hienet",
    defaults={"invariant_dim": 48, "num_invariant_layers": 1, "scalars": 48, "vectors": 16, "tensors": 8,
              "octupoles": 0, "lmax": 2, "num_layers": 3, "radial_hidden": 32, "num_basis": 8, "type_dim": 4,
              "avg_neighbors": 16.0, "cutoff": 8.0},
    presets={"paper": {"invariant_dim": 384, "num_invariant_layers": 1, "scalars": 512, "vectors": 128, "tensors": 64,
                       "octupoles": 32, "lmax": 3, "num_layers": 4, "radial_hidden": 64},
             "matched": {"invariant_dim": 48, "num_invariant_layers": 1, "scalars": 48, "vectors": 16, "tensors": 8,
                         "octupoles": 0, "lmax": 2, "num_layers": 3, "radial_hidden": 32}},
    search_space={
        "invariant_dim": {"type": "categorical", "choices": [32, 48, 64]},
        "num_invariant_layers": {"type": "int", "low": 1, "high": 3},
        "num_layers": {"type": "int", "low": 2, "high": 4},
        "scalars": {"type": "categorical", "choices": [32, 48, 64]},
        "vectors": {"type": "categorical", "choices": [8, 16, 32]},
        "tensors": {"type": "categorical", "choices": [4, 8, 16]},
    },
    family="hybrid",
)
class HIENet(nn.Module):
    """Hybrid: ComFormer node attention layers, then NequIP blocks with linear self-connections, scalar last layer."""

    def __init__(self, out_dim: int, invariant_dim: int, num_invariant_layers: int, scalars: int, vectors: int,
                 tensors: int, octupoles: int, lmax: int, num_layers: int, radial_hidden: int, num_basis: int,
                 type_dim: int, avg_neighbors: float, cutoff: float) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.irreps_invariant = o3.Irreps(f"{invariant_dim}x0e")
        self.embed = nn.Embedding(NUM_ELEMENTS, invariant_dim)
        self.edges = EdgeEmbedding(cutoff, lmax, BesselBasis(cutoff, num_basis, trainable=True), num_basis, type_dim)
        self.invariant_layers = nn.ModuleList(
            ComformerNodeConv(invariant_dim, self.edges.radial_dim) for _ in range(num_invariant_layers))
        hidden = feature_irreps([scalars, vectors, tensors, octupoles], lmax)
        radial_dims = [self.edges.radial_dim, radial_hidden, radial_hidden]

        def make_radial(numel: int) -> nn.Module:
            return FullyConnectedNet(radial_dims + [numel], F.silu)

        layers, irreps = [], self.irreps_invariant
        for i in range(num_layers):
            target = o3.Irreps(f"{scalars}x0e") if i == num_layers - 1 else hidden  # last layer: scalars only
            layers.append(InteractionBlock(irreps, target, lmax, make_radial, 1.0 / avg_neighbors, "linear", reach=False))
            irreps = layers[-1].irreps_out
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Sequential(nn.Linear(scalars, scalars // 2, bias=False), nn.Linear(scalars // 2, out_dim))

    def node_features(self, data) -> list[tuple[str, o3.Irreps, torch.Tensor]]:
        """(name, irreps, [N, irreps.dim]) after the embedding and every invariant and equivariant layer."""
        edges = self.edges(data)
        h = self.embed(data.z).to(data.pos.dtype)
        out = [("embedding", self.irreps_invariant, h)]
        for i, layer in enumerate(self.invariant_layers):
            h = layer(h, edges)
            out.append((f"invariant{i + 1}", self.irreps_invariant, h))
        for i, layer in enumerate(self.layers):
            h = layer(h, edges)
            out.append((f"equivariant{i + 1}", layer.irreps_out, h))
        return out

    def forward(self, data) -> torch.Tensor:
        return mean_pool(self.readout(self.node_features(data)[-1][2]), data)
