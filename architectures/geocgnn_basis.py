"""GeoCGNN's mixed edge basis (Cheng, Zhang & Dong, Commun. Mater. 2, 92, 2021).

Follows ``data_utils.py`` of the reference code (github.com/Tinystormjojo/geo-CGNN,
``AtomGraph.__init__``, ``get_Kpoints_random``, ``Phi``, ``gaussian``, ``miuk``,
``betak``), which precomputes both parts per edge with numpy; here they are computed
in the forward pass from the graph contract (differentiable in ``pos`` and ``cell``).
Not an architecture: registers nothing.

Plane waves. For the cell with rows a_1, a_2, a_3 (Å) and volume V = |det| (Å^3), the
reciprocal vectors are b_i = 2 pi (a_j x a_k) / V (so a_i . b_j = 2 pi delta_ij; the
2 pi is inside k, as in the reference). The k-points are the n x n x n Monkhorst-Pack
grid *inside the first Brillouin zone*, k = sum_i u_i b_i with fractional coordinates
u_i in {(2r - n - 1) / 2n : r = 1..n} -- for the reference's n = 4: +-1/8, +-3/8 --
ordered with u_1 slowest (the reference's nested loops). The n^3 features of an edge
vector r_ij (receiver i -> image of sender j, periodic shift included) are

    pw_k(r_ij) = cos(k . r_ij) / sqrt(V),        [E, n^3], Å^-3/2.

Because k . r = 2 pi u . (fractional coordinates of r) and u is not an integer, two
periodic images of one pair (r and r + T, T a lattice vector) get different features,
and so do the self-image edges (r = T) and lattice loops. cos is even and the grid is
symmetric under u -> -u, so a reversed edge (-r) has the same features, the 64 columns
hold 32 distinct values (columns u and -u are equal; kept, as in the reference), and the
reference's sign convention for left-handed cells (cross products over |V|, which is
-b_i) gives the same features column by column.

The k-grid is tied to the basis of the given cell: another basis of the same lattice
(e.g. a' = a + b) has other b_i and so other Cartesian k-points -- the features of the
same Cartesian edge vector change; a supercell has a finer grid (u / 2 along the
doubled axis) and a larger V. Only a basis change that maps the grid onto itself -- a
signed permutation of (a_1, a_2, a_3) -- keeps the *set* of 64 values of each edge
(permuting its columns), and the inversion (a_1, a_2, a_3) -> (-a_1, -a_2, -a_3) keeps
every column. With the k-points held fixed (one cell's grid), the features depend on
the Cartesian edge vector alone, not on how the shift is written.

Radial part. K Gaussians in exp(-r) (r in Å, so exp(-r) in (0, 1]):

    g_n(r) = exp(-beta (exp(-r) - mu_n)^2),  mu_n = e^-c + n (1 - e^-c) / K  (n = 1..K),
    beta = (2 (1 - e^-c) / K)^-2,  c = cutoff (Å),

times the smoothstep envelope Phi(x) = 1 - 6 x^5 + 15 x^4 - 10 x^3, x = r / c (1 at
x = 0, 0 with zero slope and curvature at x = 1). The reference evaluates Phi only on
r < c; here Phi = 0 for r >= c (the polynomial turns negative and diverges beyond).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def k_grid_fractions(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """[n^3, 3] fractional k-point coordinates (u_1, u_2, u_3), u in {(2r - n - 1) / 2n}, u_1 slowest."""
    if n < 1:
        raise ValueError(f"k_grid must be >= 1, got {n}")
    u = (2 * torch.arange(1, n + 1, dtype=dtype) - n - 1) / (2 * n)
    return torch.cartesian_prod(u, u, u).reshape(-1, 3)


def reciprocal_vectors(cell: torch.Tensor) -> torch.Tensor:
    """Reciprocal rows b_i [..., 3, 3] (Å^-1, a_i . b_j = 2 pi delta_ij) of cells [..., 3, 3] (rows a_i, Å)."""
    return 2 * math.pi * torch.linalg.inv(cell).transpose(-1, -2)


def plane_waves(vec: torch.Tensor, cell: torch.Tensor, edge_graph: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """cos(k . r) / sqrt(V) of edge vectors vec [E,3] (Å) over each edge's own cell's k-grid -> [E, M].

    cell [B,3,3] (rows, Å); edge_graph [E] (index into cell); fractions [M,3] (``k_grid_fractions``).
    k . r = sum_i u_i (b_i . r), so only the three products b_i . r are formed per edge.
    """
    recip = reciprocal_vectors(cell)  # [B,3,3]
    volume = torch.linalg.det(cell).abs()  # [B]
    proj = torch.einsum("ed,eid->ei", vec, recip[edge_graph])  # [E,3]: b_i . r = 2 pi frac_i(r)
    return torch.cos(proj @ fractions.to(vec.dtype).T) / volume.sqrt()[edge_graph, None]


def smoothstep_envelope(x: torch.Tensor) -> torch.Tensor:
    """Phi(x) = 1 - 6x^5 + 15x^4 - 10x^3 on [0, 1), 0 for x >= 1 (x = r / cutoff, same shape)."""
    x = x.clamp(0.0, 1.0)
    phi = 1 - 6 * x**5 + 15 * x**4 - 10 * x**3
    return torch.where(x < 1.0, phi, torch.zeros_like(phi))


class ExpGaussianBasis(nn.Module):
    """K Gaussians in exp(-r) times the smoothstep envelope: distances [E] (Å) -> [E, K]."""

    def __init__(self, num: int, cutoff: float) -> None:
        super().__init__()
        if num < 1:
            raise ValueError(f"num_gaussians must be >= 1, got {num}")
        self.cutoff = float(cutoff)
        floor = math.exp(-self.cutoff)
        step = (1 - floor) / num
        self.register_buffer("centers", floor + step * torch.arange(1, num + 1, dtype=torch.float64))
        self.beta = (2 * step) ** -2

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        g = torch.exp(-self.beta * (torch.exp(-dist)[:, None] - self.centers.to(dist.dtype)) ** 2)
        return g * smoothstep_envelope(dist / self.cutoff)[:, None]

    def extra_repr(self) -> str:
        return f"num={self.centers.numel()}, cutoff={self.cutoff}"
