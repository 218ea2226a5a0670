"""Tensor Field Network (Thomas et al., arXiv:1802.08219, 2018), following tensorfieldnetworks/tensorfieldnetworks.

Mechanisms, each with the reference file it follows (``tensorfieldnetworks/layers.py``,
``utils.py`` and ``missing_point_train.py`` of the reference repository):

- Embedding: one-hot species -> self-interaction with biases (an embedding of Z, ``scalars`` x 0e).
- Radial basis (``missing_point_train.py``): Gaussians exp(-gamma (r - mu_k)^2) with
  ``num_basis`` centres mu_k on linspace(0, r_high, count) and gamma = 1/spacing,
  spacing = r_high / count (here r_high = the cutoff).
- Filters F = R(r) Y^l(r_hat) (``layers.py`` ``R``, ``F_0``/``F_1``/``F_2``): one radial
  function per filter path, a two-layer MLP (ReLU, biases, Xavier-initialised weights,
  zero biases) from the basis to one value per channel (:class:`PathRadial`).
- Point convolution (``layers.py`` ``convolution``): every path ir_in x Y^l -> ir_out
  (Clebsch-Gordan / Wigner 3j coupling), channel-wise, summed over the point's
  neighbours *and over the point itself* (TFN's point clouds include r_ij = 0, where only
  the l = 0 filter survives: F_1 and F_2 are masked there); :meth:`TFN.with_self_edges`.
- Concatenation of all paths' outputs of the same irrep, then self-interaction (channel
  mixing per irrep, bias only on scalars: ``self_interaction_layer_with/without_biases``).
- Nonlinearity (``utils.py`` ``rotation_equivariant_nonlinearity``, ``ssp``): scalars
  ssp(x); l > 0: V ssp(|V| + b) / |V|, |V| regularised as sqrt(max(|V|^2, 1e-8)), with
  ssp(x) = ln(0.5 e^x + 0.5). Not applied after the last layer (``missing_point_train.py``).
- Output: the last layer's scalar channels (``out_dim`` of them), averaged over the points
  (``shape_classification.ipynb``: ``tf.reduce_mean`` of the final scalars).

Deliberate departures:

- Irreps carry parity (0e, 1o, 2e): O(3) instead of SO(3). TFN's 1 x 1 -> 1 filter (the
  cross product) makes a pseudovector, which has no 1e channel to go to here, so that path
  is dropped; all parity-consistent paths are kept.
- Filters up to l = lmax for every input (the reference code wires l_f <= 1 and L <= 1;
  the paper defines all l). Radial networks read ``r`` only through the basis.
- Crystal graphs have a cutoff (TFN's point clouds are fully connected): the radial
  output of neighbour edges is multiplied by the polynomial envelope (p = 6) so edges
  enter and leave smoothly; sums are scaled by 1/sqrt(avg_neighbors) (a constant that the
  following self-interaction could absorb; TFN sums unscaled).
- Lattice loops (``lattice`` variant, edge_type 1) append a learned embedding to the radial
  basis and are not enveloped.

Presets: ``paper`` = ``missing_point_train.py`` (layer_dims [15, 15, 15, 1]: 15 channels
per irrep, three layers, l <= 1; rbf_count 4; hidden_dim = input_dim = 4). ``matched`` (= the
registered defaults) = l <= 2, four layers, 40/16/8 channels for l = 0/1/2 and 64-wide radial
networks on 16 Gaussians, at about 100k parameters.
"""
from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn
from torch.nn import functional as F

from architectures.common import NUM_ELEMENTS, mean_pool
from architectures.e3nn_blocks import EdgeConvolution, EdgeEmbedding, Edges, feature_irreps, scalar_dim
from architectures.registry import register


def ssp(x: torch.Tensor) -> torch.Tensor:
    """TFN's shifted softplus ln(0.5 e^x + 0.5) = softplus(x) - ln 2 (0 at 0)."""
    return F.softplus(x) - math.log(2.0)


class TFNGaussians(nn.Module):
    """Lengths [E] (Å) -> exp(-gamma (r - mu_k)^2) [E, num], mu_k = linspace(0, r_high, num), gamma = num / r_high."""

    def __init__(self, r_high: float, num: int) -> None:
        super().__init__()
        self.register_buffer("centers", torch.linspace(0.0, r_high, num))
        self.gamma = num / float(r_high)  # 1 / spacing, spacing = (high - low) / count as in the reference

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.gamma * (dist.unsqueeze(-1) - self.centers) ** 2)


class NormNonlinearity(nn.Module):
    """TFN nonlinearity on [N, irreps.dim]: ssp on 0e channels, V ssp(|V| + b) / |V| on each l > 0 irrep."""

    def __init__(self, irreps: o3.Irreps, eps: float = 1e-8) -> None:
        super().__init__()
        self.irreps, self.eps = o3.Irreps(irreps), eps
        self.num_scalars = scalar_dim(self.irreps)
        if self.num_scalars != sum(mul for mul, ir in self.irreps if ir.l == 0):
            raise ValueError(f"irreps must start with all their scalars, all 0e, got {self.irreps}")
        self.blocks = [(s.start, mul, ir.dim) for (mul, ir), s in zip(self.irreps, self.irreps.slices()) if ir.l > 0]
        self.bias = nn.Parameter(torch.zeros(sum(mul for _, mul, _ in self.blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, k = [ssp(x[:, : self.num_scalars])], 0
        for start, mul, dim in self.blocks:
            v = x[:, start:start + mul * dim].reshape(x.shape[0], mul, dim)
            # TFN's norm_with_epsilon: finite at V = 0 (edgeless atoms, symmetric sites).
            norm = v.pow(2).sum(-1).clamp_min(self.eps).sqrt()
            out.append((v * (ssp(norm + self.bias[k:k + mul]) / norm).unsqueeze(-1)).reshape(x.shape[0], -1))
            k += mul
        return torch.cat(out, dim=-1)


class PathRadial(nn.Module):
    """One TFN radial network per path: [E, in_dim] -> weights [E, conv.weight_numel] (times ``cut``).

    Path p: R_p(x) = W2_p relu(W1_p x + b1_p) + b2_p with mul_p outputs (one per channel of
    the path's input irrep). All first layers run as one Linear; second layers per input
    block, so no padded parameters exist. Output layout: EdgeConvolution's [mul, paths] per block.
    """

    def __init__(self, in_dim: int, hidden: int, conv: EdgeConvolution) -> None:
        super().__init__()
        self.hidden = hidden
        self.num_paths = [len(paths) for _, _, _, paths in conv.blocks]
        self.first = nn.Linear(in_dim, sum(self.num_paths) * hidden)
        self.second = nn.ParameterList(nn.Parameter(torch.empty(p, hidden, mul))
                                       for p, (_, mul, _, _) in zip(self.num_paths, conv.blocks))
        self.bias = nn.ParameterList(nn.Parameter(torch.zeros(p, mul)) for p, (_, mul, _, _) in zip(self.num_paths, conv.blocks))
        with torch.no_grad():  # Xavier per path, zero biases (the reference's initialisers)
            for p in range(sum(self.num_paths)):
                nn.init.xavier_uniform_(self.first.weight[p * hidden:(p + 1) * hidden])
            self.first.bias.zero_()
            for w in self.second:
                for p in range(w.shape[0]):
                    nn.init.xavier_uniform_(w[p].T)

    def forward(self, radial: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.first(radial)).reshape(radial.shape[0], -1, self.hidden)  # [E, paths, hidden]
        out, p0 = [], 0
        for p, w, b in zip(self.num_paths, self.second, self.bias):
            y = torch.einsum("eph,phm->emp", h[:, p0:p0 + p], w) + b.T  # [E, mul, paths]
            out.append(y.reshape(radial.shape[0], -1))
            p0 += p
        return torch.cat(out, dim=-1) * cut


class TFNLayer(nn.Module):
    """Point convolution, concatenation, self-interaction, optional nonlinearity: [N, irreps_in.dim] -> [N, irreps_out.dim]."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, lmax: int, radial_dim: int, radial_hidden: int,
                 avg_neighbors: float, nonlinearity: bool) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.conv = EdgeConvolution(self.irreps_in, lmax, [ir for _, ir in self.irreps_out], avg_neighbors**-0.5)
        self.radial = PathRadial(radial_dim, radial_hidden, self.conv)
        self.self_interaction = o3.Linear(self.conv.irreps_out, self.irreps_out, biases=True)
        self.act = NormNonlinearity(self.irreps_out) if nonlinearity else None

    def forward(self, x: torch.Tensor, edges: Edges) -> torch.Tensor:
        y = self.self_interaction(self.conv(x, edges, self.radial(edges.radial, edges.cut)))
        return self.act(y) if self.act is not None else y


@register(
    "tfn",
    defaults={"scalars": 40, "vectors": 16, "tensors": 8, "lmax": 2, "num_layers": 4, "num_basis": 16,
              "radial_hidden": 64, "type_dim": 4, "avg_neighbors": 16.0, "cutoff": 8.0},
    presets={"paper": {"scalars": 15, "vectors": 15, "tensors": 0, "lmax": 1, "num_layers": 3, "num_basis": 4,
                       "radial_hidden": 4},
             "matched": {"scalars": 40, "vectors": 16, "tensors": 8, "lmax": 2, "num_layers": 4, "num_basis": 16,
                         "radial_hidden": 64}},
    search_space={
        "scalars": {"type": "categorical", "choices": [24, 40, 64]},
        "vectors": {"type": "categorical", "choices": [8, 16, 32]},
        "tensors": {"type": "categorical", "choices": [4, 8, 16]},
        "num_layers": {"type": "int", "low": 2, "high": 5},
        "radial_hidden": {"type": "categorical", "choices": [16, 32, 64]},
    },
    family="equivariant",
)
class TFN(nn.Module):
    """Tensor field network: point convolutions with per-path radial MLPs, self-interaction, norm nonlinearity."""

    def __init__(self, out_dim: int, scalars: int, vectors: int, tensors: int, lmax: int, num_layers: int,
                 num_basis: int, radial_hidden: int, type_dim: int, avg_neighbors: float, cutoff: float) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.irreps_embed = o3.Irreps(f"{scalars}x0e")
        self.embed = nn.Embedding(NUM_ELEMENTS, scalars)
        self.edges = EdgeEmbedding(cutoff, lmax, TFNGaussians(cutoff, num_basis), num_basis, type_dim,
                                   envelope_basis=False)
        hidden = feature_irreps([scalars, vectors, tensors], lmax)
        irreps = [self.irreps_embed] + [hidden] * (num_layers - 1) + [o3.Irreps(f"{out_dim}x0e")]
        self.layers = nn.ModuleList(
            TFNLayer(irreps[i], irreps[i + 1], lmax, self.edges.radial_dim, radial_hidden, avg_neighbors,
                     nonlinearity=i < num_layers - 1) for i in range(num_layers))

    def with_self_edges(self, edges: Edges, num_nodes: int) -> Edges:
        """``edges`` plus one r = 0 edge per point: radial input at r = 0, Y^0 = 1 and Y^(l>0) masked to 0."""
        ids = torch.arange(num_nodes, device=edges.src.device)
        sh = edges.sh.new_zeros(num_nodes, edges.sh.shape[1])
        sh[:, 0] = 1.0
        zero = edges.dist.new_zeros(num_nodes)
        radial = self.edges.basis(zero)
        if self.edges.loop_embed is not None:  # the neighbour row: zeros
            radial = torch.cat([radial, radial.new_zeros(num_nodes, self.edges.loop_embed.embedding_dim)], dim=-1)
        return Edges(torch.cat([edges.src, ids]), torch.cat([edges.dst, ids]), torch.cat([edges.sh, sh]),
                     torch.cat([edges.radial, radial]), torch.cat([edges.cut, edges.cut.new_ones(num_nodes, 1)]),
                     torch.cat([edges.dist, zero]), {})

    def node_features(self, data) -> list[tuple[str, o3.Irreps, torch.Tensor]]:
        """(name, irreps, [N, irreps.dim]) after the embedding and after every TFN layer."""
        x = self.embed(data.z).to(data.pos.dtype)
        edges = self.with_self_edges(self.edges(data), x.shape[0])
        out = [("embedding", self.irreps_embed, x)]
        for i, layer in enumerate(self.layers):
            x = layer(x, edges)
            out.append((f"layer{i + 1}", layer.irreps_out, x))
        return out

    def forward(self, data) -> torch.Tensor:
        return mean_pool(self.node_features(data)[-1][2], data)
