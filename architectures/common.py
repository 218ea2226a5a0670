"""Building blocks shared by several architectures (not an architecture itself)."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.utils import scatter

from bench.graphs import edge_vectors

NUM_ELEMENTS = 119  # embedding rows: atomic numbers 0..118
NUM_EDGE_TYPES = 2  # 0 = neighbour edge, 1 = lattice self-loop (graph contract)


def edge_lengths(data) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge vectors [E,3] (Å, receiver -> sender image) and their lengths [E] (Å)."""
    vec = edge_vectors(data)
    return vec, vec.norm(dim=-1)


def graph_index(data) -> torch.Tensor:
    """Graph id of every node [N]; zeros for a single (unbatched) graph."""
    batch = getattr(data, "batch", None)
    if batch is None:
        return torch.zeros(data.num_nodes, dtype=torch.long, device=data.z.device)
    return batch


def num_graphs(data) -> int:
    return int(getattr(data, "num_graphs", 1) or 1)


def mean_pool(x: torch.Tensor, data) -> torch.Tensor:
    """Mean of node features per graph: [N,F] -> [num_graphs,F]."""
    return scatter(x, graph_index(data), dim=0, dim_size=num_graphs(data), reduce="mean")


def aggregate(messages: torch.Tensor, dst: torch.Tensor, num_nodes: int, reduce: str = "sum") -> torch.Tensor:
    """Sum (or mean) edge messages [E,F] onto receivers -> [N,F]; edgeless graphs give zeros."""
    return scatter(messages, dst, dim=0, dim_size=num_nodes, reduce=reduce)


def cosine_cutoff(dist: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi d / cutoff) + 1) for d < cutoff, else 0: [E] (Å) -> [E], smooth at the cutoff."""
    env = 0.5 * (torch.cos(dist * (math.pi / cutoff)) + 1.0)
    return torch.where(dist < cutoff, env, torch.zeros_like(env))


class GaussianBasis(nn.Module):
    """Expand distances [E] (Å) into Gaussians [E, num] centred on a uniform grid 0..cutoff."""

    def __init__(self, cutoff: float, num: int) -> None:
        super().__init__()
        centers = torch.linspace(0.0, cutoff, num)
        self.register_buffer("centers", centers)
        self.gamma = 1.0 / float(centers[1] - centers[0]) ** 2 if num > 1 else 1.0

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.gamma * (dist.unsqueeze(-1) - self.centers) ** 2)

    def extra_repr(self) -> str:
        return f"num={self.centers.numel()}, cutoff={float(self.centers[-1])}"


class GraphBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that passes a batch of fewer than two rows through unchanged in training.

    Needed because an edgeless ``distance`` graph (a one-atom cell) yields zero edge
    rows, and a last mini-batch may hold a single one-atom graph; statistics of fewer
    than two rows are undefined.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] < 2:
            return x
        return super().forward(x)


def mlp_head(in_dim: int, hidden: int, out_dim: int, num_hidden: int = 1, act: type[nn.Module] = nn.Softplus) -> nn.Sequential:
    """Readout MLP: ``num_hidden`` (Linear, act) pairs, then a Linear to ``out_dim``."""
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_hidden):
        layers += [nn.Linear(dim, hidden), act()]
        dim = hidden
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class GatedConv(nn.Module):
    """CGCNN's gated convolution (Xie & Grossman 2018): node features [N,F] + edge features [E,G] -> [N,F].

    For each edge j -> i, z = BN([h_i, h_j, e_ij] W + b); the message sigmoid(z_f) * softplus(z_s)
    is summed on i, and h_i <- softplus(h_i + BN(sum)).
    """

    def __init__(self, hidden: int, edge_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * hidden + edge_dim, 2 * hidden)
        self.bn_edge = GraphBatchNorm(2 * hidden)
        self.bn_node = GraphBatchNorm(hidden)

    def forward(self, h: torch.Tensor, edge_attr: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        z = self.bn_edge(self.linear(torch.cat([h[dst], h[src], edge_attr], dim=-1)))
        gate, core = z.chunk(2, dim=-1)
        summed = aggregate(torch.sigmoid(gate) * F.softplus(core), dst, h.shape[0])
        return F.softplus(h + self.bn_node(summed))
