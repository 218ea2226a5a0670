"""``chiral_probe``: an SE(3)-equivariant model with a pseudoscalar (0o) readout, the positive
control of ``probe_chirality``.

Every other registered model is invariant under all of O(3), so a crystal and its mirror
image get the same prediction and ``probe_chirality`` sits at ROC-AUC 0.5 by
construction. This model is invariant under rotations and translations but *odd* under
improper ones in one output channel: its features carry both parities, scalars 0e and
pseudoscalars 0o, vectors 1o and pseudovectors 1e, and the output is

    y = MLP(mean 0e) + W2 tanh(W1 mean 0o)          (W1, W2 without bias: an odd function)

so mirroring a crystal flips the sign of the second term and nothing else. A
pseudoscalar needs three non-coplanar directions, so it takes three layers to appear:
edge directions Y^1 (1o) -> cross products 1o x 1o -> 1e -> triple products 1e . 1o -> 0o.

Each layer is NequIP's recipe with e3nn's own operations: a channel-wise ('uvu') tensor
product of neighbour features with the spherical harmonics (lmax 2) of the edge
vector, weighted per edge by an MLP of a Bessel x cosine-envelope radial basis and an
edge-type embedding (lattice loops get no envelope: they exist whatever their length);
messages summed and divided by sqrt(avg_neighbors); a linear self-connection; the e3nn
gate (SiLU on 0e, tanh on 0o, sigmoid gates on l = 1). ``edge_weight`` (``voronoi``)
is not read. Not a published architecture: a probe instrument (``matched`` = ``paper``
= about 100k parameters).
"""
from __future__ import annotations

import math

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn
from torch.nn import functional as F

from architectures.common import NUM_EDGE_TYPES, NUM_ELEMENTS, aggregate, cosine_cutoff, edge_lengths, mean_pool
from architectures.registry import register

SIZE = {"scalars": 32, "pseudoscalars": 32, "vectors": 16, "num_layers": 4, "num_basis": 8, "radial_hidden": 64,
        "type_dim": 4, "avg_neighbors": 16.0, "fc_hidden": 32, "cutoff": 8.0}


def hidden_irreps(scalars: int, pseudoscalars: int, vectors: int) -> o3.Irreps:
    """``scalars x 0e + pseudoscalars x 0o + vectors x 1o + vectors x 1e``."""
    return o3.Irreps(f"{scalars}x0e + {pseudoscalars}x0o + {vectors}x1o + {vectors}x1e")


class ParityGate(nn.Module):
    """e3nn Gate onto ``irreps_out`` (0e, 0o, 1o, 1e): SiLU on 0e, tanh (odd) on 0o, sigmoid gates on l = 1."""

    def __init__(self, irreps_out: o3.Irreps) -> None:
        super().__init__()
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
        acts = [F.silu if ir.p == 1 else torch.tanh for _, ir in scalars]
        self.gate = Gate(scalars, acts, f"{gated.num_irreps}x0e", [torch.sigmoid], gated)
        self.irreps_in = self.gate.irreps_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(x)


class Layer(nn.Module):
    """x [N, irreps_in.dim] -> [N, irreps_out.dim]: gate(Linear(sum_j TP(x_j, Y(r_ij); R(r_ij))) + SelfLinear(x))."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, irreps_sh: o3.Irreps, radial_dim: int,
                 radial_hidden: int, avg_neighbors: float) -> None:
        super().__init__()
        self.gate = ParityGate(irreps_out)
        wanted = {ir for _, ir in self.gate.irreps_in}
        mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_sh) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_sh:
                    if ir_out in wanted:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        mid = o3.Irreps(mid)
        sorted_mid, perm, _ = mid.sort()
        instructions = [(i, j, perm[k], mode, train) for i, j, k, mode, train in instructions]
        self.tp = o3.TensorProduct(irreps_in, irreps_sh, sorted_mid, instructions,
                                   shared_weights=False, internal_weights=False)
        self.radial = nn.Sequential(nn.Linear(radial_dim, radial_hidden), nn.SiLU(),
                                    nn.Linear(radial_hidden, self.tp.weight_numel, bias=False))
        self.linear = o3.Linear(sorted_mid, self.gate.irreps_in)
        self.self_linear = o3.Linear(irreps_in, self.gate.irreps_in)
        self.norm = 1.0 / math.sqrt(avg_neighbors)

    def forward(self, x, src, dst, sh, radial, cut) -> torch.Tensor:
        messages = self.tp(x[src], sh, self.radial(radial) * cut)
        summed = aggregate(messages, dst, x.shape[0]) * self.norm
        return self.gate(self.linear(summed) + self.self_linear(x))


@register("chiral_probe", defaults=SIZE, presets={"paper": SIZE, "matched": SIZE},
          search_space={"num_layers": {"type": "int", "low": 3, "high": 4},
                        "radial_hidden": {"type": "categorical", "choices": [16, 32, 64]}},
          family="equivariant")
class ChiralProbe(nn.Module):
    """SE(3)-equivariant probe model with a parity-odd (0o) readout term: tells a crystal from its mirror image."""

    def __init__(self, out_dim: int, scalars: int, pseudoscalars: int, vectors: int, num_layers: int, num_basis: int,
                 radial_hidden: int, type_dim: int, avg_neighbors: float, fc_hidden: int, cutoff: float) -> None:
        super().__init__()
        if num_layers < 3:
            raise ValueError(f"num_layers must be >= 3 (a pseudoscalar needs three layers), got {num_layers}")
        self.cutoff = float(cutoff)
        self.irreps_sh = o3.Irreps.spherical_harmonics(2)
        self.register_buffer("freq", torch.arange(1, num_basis + 1) * math.pi / self.cutoff)
        self.type_embed = nn.Embedding(NUM_EDGE_TYPES, type_dim)
        self.embed = nn.Embedding(NUM_ELEMENTS, scalars)
        hidden = hidden_irreps(scalars, pseudoscalars, vectors)
        irreps = [o3.Irreps(f"{scalars}x0e")] + [hidden] * num_layers
        self.layers = nn.ModuleList(Layer(irreps[i], irreps[i + 1], self.irreps_sh, num_basis + type_dim,
                                          radial_hidden, avg_neighbors) for i in range(num_layers))
        self.scalars, self.pseudoscalars = scalars, pseudoscalars
        self.even_head = nn.Sequential(nn.Linear(scalars, fc_hidden), nn.SiLU(), nn.Linear(fc_hidden, out_dim))
        self.odd_in = nn.Linear(pseudoscalars, fc_hidden, bias=False)
        self.odd_out = nn.Linear(fc_hidden, out_dim, bias=False)

    def forward(self, data) -> torch.Tensor:
        """Batched graphs -> [num_graphs, out_dim]; the odd term changes sign under a mirror."""
        src, dst = data.edge_index
        vec, dist = edge_lengths(data)
        sh = o3.spherical_harmonics(self.irreps_sh, vec, normalize=True, normalization="component")
        bessel = math.sqrt(2.0 / self.cutoff) * torch.sin(self.freq * dist.unsqueeze(-1)) / dist.unsqueeze(-1)
        is_loop = (data.edge_type == 1).unsqueeze(-1)
        env = cosine_cutoff(dist, self.cutoff).unsqueeze(-1)
        radial = torch.cat([bessel * env, self.type_embed(data.edge_type).to(dist.dtype)], dim=-1)
        cut = torch.where(is_loop, torch.ones_like(env), env)
        x = self.embed(data.z).to(dist.dtype)
        for layer in self.layers:
            x = layer(x, src, dst, sh, radial, cut)
        pooled = mean_pool(x[:, : self.scalars + self.pseudoscalars], data)
        even, odd = pooled[:, : self.scalars], pooled[:, self.scalars:]
        return self.even_head(even) + self.odd_out(torch.tanh(self.odd_in(odd)))
