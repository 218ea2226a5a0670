"""EMPNN (Klipfel, Bouraoui, Peltre, Fregier, Harrouche & Sayede, "Equivariant Message Passing
Neural Network for Crystal Material Discovery", AAAI 2023, arXiv 2302.00485), adapted to
property prediction.

Reference: aklipf/pegnn at cc27c22 ("review version"); files below are relative to it.
An invariant MPNN refines per-atom states h [N, F]; interleaved with it, equivariant
"actions" deform the lattice: a per-crystal 3x3 matrix A, built from outer products of
unit edge vectors weighted by invariant MLPs, maps the cell rho to A rho, and every later
layer sees the edge geometry of the deformed cell. pegnn outputs that cell (it denoises or
reconstructs lattices); we read out the invariant atom states and rotation invariants of
the final action (see "readout"). Conventions: pegnn's centre atom is its edge ``src`` and
it aggregates on ``src``; ours is the receiver (``edge_index[1]``). Its cell has lattice
vectors as columns (v_ij = rho e_ij) and the action multiplies from the left; our cell has
them as rows, so the same action reads cell' = cell A^T and r' = r A^T.

Mechanism by mechanism:

* embedding: h_i = Embedding(Z_i) (``src/models/operator/denoise.py``, ``nn.Embedding(100, F)``).
* distance basis: exp(-(mu_k - d)^2 / step), centres mu_k = 0, step, ... < cutoff (pegnn:
  step 0.1 Å, cutoff 10 Å, 100 centres), *learnable*, one set per projection network
  (``src/models/layers/operator/gnn.py``, ``EdgeProj.mu`` / ``FaceProj.mu``).
* message: m_ij = MLP([h_i, h_j, basis(d_ij)]) with Linear(2F + B, F, no bias), SiLU,
  Linear(F, F, no bias) (gnn.py ``MPNN.message_f = EdgeProj(n_layers=0)``), Xavier-normal
  weights (``EdgeProj.reset_parameters``).
* aggregation: the MEAN of the messages over the atom's edges (gnn.py ``MPNN.forward``,
  ``scatter(..., reduce="mean")``); an atom without edges gets m = 0.
* update: h_i <- GRU(m_i, h_i), one GRU cell with hidden state h (gnn.py ``UpdateFeatures``,
  a one-layer ``nn.GRU`` run for one step; ``nn.GRUCell`` has the same parameters and maths).
* layers: ``num_mpnn`` MPNN layers on the input geometry, then ``num_steps`` steps of
  (MPNN update, action) with their own weights (denoise.py ``Denoise``, ``repeated=False``).
* action weights: per edge, w_e = MLP([h_i, h_j, basis(d_ij)]) (gnn.py ``Actions.interact_edges``,
  EdgeProj with ``scale_layers`` hidden Linear(H, H) layers of width H = ``scale_hidden_dim``,
  SiLU, a biased last layer); per triplet (two edges i->j, i->k of one centre),
  w_t = MLP([h_i, h_j, h_k, basis(d_ij), basis(d_ik), cos, sin of the angle jik])
  (``Actions.interact_triplets``, FaceProj; one basis for both distances).
* operators: pegnn's "ket-bra" family with ``normalize=True``
  (``src/models/layers/operator/operator.py``, ``OpKetBra``), u = r_ij/|r_ij|,
  w = r_ik/|r_ik|: per edge u u^T ("v_ij"); per triplet u u^T, w w^T, u w^T, w u^T
  ("v_ij", "v_ik", "v_ijk", "v_ikj"; "v_ijk_sym" is the mean of the last two, so it is
  spanned). Triplets are all ordered pairs of distinct edges sharing their centre.
* action: M = mean over the crystal's edges of w_e u u^T + mean over its triplets of
  sum_k w_tk op_tk (``Actions.apply``, ``reduce_rho="mean"``), A_step = I + M, and the
  accumulated action A <- A_step A, cell' = A cell (pegnn's column convention).
* geometry: fractional coordinates and edge images stay fixed, the cell is the deformed
  one, so every later layer's distances, unit vectors and angles are those of r' = r A^T
  (``src/utils/geometry.py``, ``Geometry.update_vectors``, called after
  ``geometry.cell = rho_prime`` in ``src/models/operator/autoencoder.py``). pegnn's
  ``Denoise`` assigns ``geometry.rho`` instead, an attribute ``update_vectors`` never reads,
  so its later steps keep the input geometry; we follow the autoencoder, where the cell
  update takes effect.
* limit: pegnn bounds M entrywise, 0.5 tanh(M / 0.5) (``limit_actions``); see departures.

Departures, all deliberate:

* Operators: pegnn's default configuration (``src/models/operator/utils.py``, ``Hparams``)
  uses its "grad" family (gradients with respect to the action of the distances |r_ij|,
  |r_ik| and of the angle jik). Those are ket-bra operators with invariant coefficients:
  d|A r|/dA at A = I is |r| u u^T, and the angle's is (cos(u u^T + w w^T) - u w^T - w u^T)
  / sin. The ket-bra family with learned invariant weights spans them without the 1/sin
  singularity of collinear triplets (which pegnn's autoencoder filters out), so we use
  pegnn's ket-bra option. (The paper's own text was not available to check which family
  its experiments used; the review-version code defaults to "grad".)
* Limit: an entrywise tanh of M is not equivariant (tanh(R M R^T) != R tanh(M) R^T). We
  scale M by the invariant factor L tanh(|M|_F / L) / |M|_F instead (L = ``limit_actions``),
  which keeps the Frobenius norm below L = 0.5 and so every singular value of I + M in
  (0.5, 1.5): the action stays invertible and orientation-preserving; L = 0 disables it.
* The Gaussian basis is exactly 0 where its exponent is below -80 (values < 2e-35, where
  pegnn's float32 exp is 0 anyway from -104 on): CPU exp of large negative arguments, and
  products of the subnormal floats it returns, are slow (profiled without this: the
  basis's exp took about 15 % of a training step on jdft2d, with subnormals flushed).
* sin of the triplet angle is sqrt(|u x w|^2 + 1e-12), not |u x w|: finite gradients at
  collinear triplets (e.g. the +a and -a self-images of an atom).
* Readout (our addition; pegnn has no property head): MLP([mean over atoms of h,
  I1 - 3, I2 - 3, I3 - 1]) -> out, SiLU, hidden width F, where I1, I2, I3 are the
  principal invariants of C = A^T A (the squared principal stretches of the learned
  deformation). They are invariant under rotations (A -> R A R^T) and do not depend on
  the choice of cell: A acts on Cartesian space and is a mean over per-atom terms, so a
  supercell or another basis of the same crystal gets the same A. The Gram matrix of the
  deformed cell, cell' cell'^T, would depend on the basis. Reading A out also gives the
  last step's action network a gradient; otherwise nothing would depend on it.
* Lattice loops (``edge_type`` 1) are ordinary edges, as self-image edges are in pegnn's
  k-nearest-neighbour graph: no type embedding. A loop longer than the basis range adds to
  the means and to the action through its direction, but its length is not seen.
* The embedding table has 119 rows (Z = 0..118) instead of 100.

Supercell and shear invariance hold on ``multi_edge`` and ``lattice`` (tested by the shared
battery): both reductions are means over per-atom edge and triplet sets that a supercell
replicates, and the action never reads the cell basis.
"""
from __future__ import annotations

import functools

import torch
from e3nn import o3
from torch import nn
from torch_geometric.utils import scatter

from architectures.common import NUM_ELEMENTS, aggregate, edge_lengths, graph_index, mean_pool, num_graphs
from architectures.registry import register

BASIS_FLOOR = -80.0  # exponents below this give 0: exp(-80) ~ 2e-35 (see the departures)
SIN_EPS = 1e-12  # inside sqrt(|u x w|^2 + eps)
LIMIT_EPS = 1e-12  # inside the Frobenius norm of the step action M


class GaussianBasis(nn.Module):
    """pegnn's learnable Gaussian grid: distances [E] (Å) -> exp(-(mu - d)^2 / step) [E, B]."""

    def __init__(self, cutoff: float, step: float) -> None:
        super().__init__()
        self.step = float(step)
        self.mu = nn.Parameter(torch.arange(round(cutoff / step), dtype=torch.get_default_dtype()) * self.step)

    def forward(self, dist: torch.Tensor) -> torch.Tensor:
        arg = -(self.mu - dist.unsqueeze(-1)).pow(2) / self.step
        return torch.exp(arg.clamp(min=BASIS_FLOOR)) * (arg > BASIS_FLOOR)


class Projection(nn.Module):
    """pegnn's EdgeProj / FaceProj MLP: Linear(in, H, no bias), SiLU, ``depth`` x [Linear(H, H,
    no bias), SiLU], Linear(H, out, bias=``bias``); Xavier-normal weights.

    The first layer's input is a concatenation of node states and edge features; rather
    than gathering [T, in] rows, callers multiply each part by its column block of the one
    weight (``blocks()``), per node or per edge, gather and sum (the same product), and
    pass that sum to ``forward``.
    """

    def __init__(self, in_dims: tuple[int, ...], hidden: int, depth: int, out_dim: int, bias: bool) -> None:
        super().__init__()
        self.in_dims = in_dims
        self.linear = nn.Linear(sum(in_dims), hidden, bias=False)
        layers: list[nn.Module] = [nn.SiLU()]
        for _ in range(depth):
            layers += [nn.Linear(hidden, hidden, bias=False), nn.SiLU()]
        layers.append(nn.Linear(hidden, out_dim, bias=bias))
        self.rest = nn.Sequential(*layers)
        for layer in [self.linear, *self.rest]:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_normal_(layer.weight)

    def blocks(self) -> list[torch.Tensor]:
        """The first layer's weight split by input part: [H, in_dims[k]] each."""
        return list(self.linear.weight.split(self.in_dims, dim=1))

    def forward(self, first: torch.Tensor) -> torch.Tensor:
        """The MLP after its first linear layer: [*, H] -> [*, out]."""
        return self.rest(first)


class MPNN(nn.Module):
    """pegnn's MPNN layer: h [N, F] -> GRU(mean_j MLP([h_i, h_j, basis(d_ij)]), h_i)."""

    def __init__(self, hidden: int, cutoff: float, step: float) -> None:
        super().__init__()
        self.basis = GaussianBasis(cutoff, step)
        self.message = Projection((hidden, hidden, self.basis.mu.numel()), hidden, 0, hidden, bias=False)
        self.gru = nn.GRUCell(hidden, hidden)

    def forward(self, h: torch.Tensor, dist: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        w_i, w_j, w_d = self.message.blocks()
        first = (h @ w_i.T).index_select(0, dst) + (h @ w_j.T).index_select(0, src) + self.basis(dist) @ w_d.T
        m = aggregate(self.message(first), dst, h.shape[0], reduce="mean")  # [N, F], 0 without edges
        return self.gru(m, h)


def triplet_index(dst: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """[2, T] ordered pairs (e1, e2), e1 != e2, of edges with the same receiver (their centre)."""
    order = torch.argsort(dst, stable=True)
    deg = torch.bincount(dst, minlength=num_nodes)
    start = torch.cumsum(deg, 0) - deg  # first sorted position of each node's edges
    count = deg[dst[order]]  # [E]: partners of each (sorted) edge, itself included
    e1 = torch.repeat_interleave(order, count)
    within = torch.arange(e1.numel(), device=dst.device) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
    e2 = order[torch.repeat_interleave(start[dst[order]], count) + within]
    keep = e1 != e2
    return torch.stack([e1[keep], e2[keep]])


class LatticeAction(nn.Module):
    """pegnn's ``Actions``: node states and deformed edge vectors -> the step's action I + M [B, 3, 3]."""

    NUM_TRIPLET_OPS = 4  # u u^T, w w^T, u w^T, w u^T

    def __init__(self, hidden: int, action_hidden: int, action_layers: int, cutoff: float, step: float,
                 limit: float) -> None:
        super().__init__()
        self.limit = float(limit)
        self.edge_basis = GaussianBasis(cutoff, step)
        self.triplet_basis = GaussianBasis(cutoff, step)
        nb = self.edge_basis.mu.numel()
        self.edge_weights = Projection((hidden, hidden, nb), action_hidden, action_layers, 1, bias=True)
        self.triplet_weights = Projection((hidden, hidden, hidden, nb, nb, 1, 1), action_hidden, action_layers,
                                          self.NUM_TRIPLET_OPS, bias=True)

    def forward(self, h: torch.Tensor, vec: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
                triplets: torch.Tensor, edge_graph: torch.Tensor, graphs: int) -> torch.Tensor:
        dist = vec.norm(dim=-1)
        unit = vec / dist.unsqueeze(-1)
        # per edge: w_e u u^T, averaged over each crystal's edges
        w_i, w_j, w_d = self.edge_weights.blocks()
        first = (h @ w_i.T).index_select(0, dst) + (h @ w_j.T).index_select(0, src) + self.edge_basis(dist) @ w_d.T
        w_edge = self.edge_weights(first)[:, 0]
        ops = unit.unsqueeze(-1) * unit.unsqueeze(-2)  # [E, 3, 3]
        action = scatter(w_edge[:, None, None] * ops, edge_graph, dim=0, dim_size=graphs, reduce="mean")
        if triplets.shape[1] > 0:
            action = action + self._triplets(h, dist, unit, src, dst, triplets, edge_graph, graphs)
        if self.limit > 0:  # equivariant bound: an invariant factor keeps |M|_F below the limit
            norm = torch.sqrt(action.pow(2).sum(dim=(1, 2)) + LIMIT_EPS)
            action = action * (self.limit * torch.tanh(norm / self.limit) / norm)[:, None, None]
        return torch.eye(3, dtype=vec.dtype, device=vec.device) + action

    def _triplets(self, h, dist, unit, src, dst, triplets, edge_graph, graphs) -> torch.Tensor:
        """Mean over each crystal's triplets of sum_k w_tk op_tk: [B, 3, 3]."""
        e1, e2 = triplets
        u, w = unit.index_select(0, e1), unit.index_select(0, e2)
        cos = (u * w).sum(dim=-1)
        sin = torch.sqrt(torch.linalg.cross(u, w).pow(2).sum(dim=-1) + SIN_EPS)
        w_i, w_j, w_k, w_dj, w_dk, w_cos, w_sin = self.triplet_weights.blocks()
        basis = self.triplet_basis(dist)  # one basis for d_ij and d_ik, as FaceProj
        # The first layer's terms that depend on one edge only, per edge: as the triplet's
        # first edge i->j (h_i, h_j, d_ij) and as its second edge i->k (h_k, d_ik).
        as_first = (h @ w_i.T).index_select(0, dst) + (h @ w_j.T).index_select(0, src) + basis @ w_dj.T
        as_second = (h @ w_k.T).index_select(0, src) + basis @ w_dk.T
        first = torch.addmm(as_first.index_select(0, e1) + as_second.index_select(0, e2),
                            torch.stack([cos, sin], dim=-1), torch.cat([w_cos, w_sin], dim=1).T)
        wt = self.triplet_weights(first)  # [T, 4]: weights of u u^T, w w^T, u w^T, w u^T
        # sum_k w_k op_k = u (w0 u + w2 w)^T + w (w1 w + w3 u)^T
        right_u = wt[:, 0:1] * u + wt[:, 2:3] * w
        right_w = wt[:, 1:2] * w + wt[:, 3:4] * u
        summed = u.unsqueeze(-1) * right_u.unsqueeze(-2) + w.unsqueeze(-1) * right_w.unsqueeze(-2)
        return scatter(summed, edge_graph.index_select(0, e1), dim=0, dim_size=graphs, reduce="mean")


@functools.lru_cache(maxsize=1)
def _cartesian_to_irreps() -> tuple[o3.Irreps, torch.Tensor]:
    """e3nn's change of basis [9, 3, 3] from a Cartesian 3x3 matrix (1o x 1o) to 0e+1e+2e, in float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        rtp = o3.ReducedTensorProducts("ij", i="1o", j="1o")
        return rtp.irreps_out, rtp.change_of_basis.detach().clone()
    finally:
        torch.set_default_dtype(previous)


def strain_invariants(action: torch.Tensor) -> torch.Tensor:
    """Principal invariants of C = A^T A minus their identity values: [B, 3, 3] -> [B, 3].

    (tr C - 3, (tr(C)^2 - tr(C^2)) / 2 - 3, det C - 1); all 0 for A = I, invariant under A -> R A R^T.
    """
    c = action.transpose(1, 2) @ action
    tr = c.diagonal(dim1=1, dim2=2).sum(-1)
    tr2 = (c * c.transpose(1, 2)).sum(dim=(1, 2))
    return torch.stack([tr - 3.0, 0.5 * (tr * tr - tr2) - 3.0, torch.linalg.det(c) - 1.0], dim=-1)


@register(
    "empnn",
    defaults={"hidden": 32, "num_mpnn": 4, "num_steps": 2, "action_hidden": 16, "action_layers": 1,
              "cutoff": 8.0, "basis_step": 0.1, "limit_actions": 0.5},
    presets={
        # pegnn src/models/operator/utils.py Hparams: features 128, mpnn_layers 8, steps 4,
        # scale_hidden_dim 256, scale_layers 1, scale_limit_actions 0.5; gnn.py EdgeProj /
        # FaceProj: cutoff 10 Å, step 0.1 Å (100 centres).
        "paper": {"hidden": 128, "num_mpnn": 8, "num_steps": 4, "action_hidden": 256, "action_layers": 1,
                  "cutoff": 10.0, "basis_step": 0.1, "limit_actions": 0.5},
        # ~100k parameters (MATCHED_PARAMS): every depth of the paper's model kept (2:1
        # MPNN layers to action steps, one hidden layer in the action MLPs, its basis step),
        # widths reduced, centres up to the suite's 8 Å graph cutoff. The triplet MLP runs
        # on ~11x as many rows as there are edges and dominates the cost on CPU, hence the
        # narrow action width (16: ~1.5x the training throughput of 32).
        "matched": {"hidden": 32, "num_mpnn": 4, "num_steps": 2, "action_hidden": 16, "action_layers": 1,
                    "cutoff": 8.0, "basis_step": 0.1, "limit_actions": 0.5},
    },
    search_space={
        "hidden": {"type": "categorical", "choices": [32, 64, 128]},
        "num_mpnn": {"type": "int", "low": 1, "high": 4},
        "num_steps": {"type": "int", "low": 1, "high": 4},
        "action_hidden": {"type": "categorical", "choices": [16, 32, 64]},
    },
    family="equivariant",
)
class EMPNN(nn.Module):
    """EMPNN (Klipfel et al. 2023): GRU message passing plus equivariant actions that deform the lattice."""

    def __init__(self, out_dim: int, hidden: int, num_mpnn: int, num_steps: int, action_hidden: int,
                 action_layers: int, cutoff: float, basis_step: float, limit_actions: float) -> None:
        super().__init__()
        self.hidden = hidden
        self.embedding = nn.Embedding(NUM_ELEMENTS, hidden)
        self.mpnn = nn.ModuleList(MPNN(hidden, cutoff, basis_step) for _ in range(num_mpnn))
        self.updates = nn.ModuleList(MPNN(hidden, cutoff, basis_step) for _ in range(num_steps))
        self.actions = nn.ModuleList(LatticeAction(hidden, action_hidden, action_layers, cutoff, basis_step, limit_actions)
                                     for _ in range(num_steps))
        self.readout = nn.Sequential(nn.Linear(hidden + 3, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))
        self.node_irreps = o3.Irreps(f"{hidden}x0e")
        self.step_irreps = o3.Irreps(f"{hidden}x0e") + _cartesian_to_irreps()[0]

    def propagate(self, data, record: bool = False):
        """Final states h [N, F], accumulated action A [B, 3, 3] and, if ``record``, every layer's
        (name, irreps, features); a step's features are [h | A of the atom's crystal as 0e+1e+2e]."""
        src, dst = data.edge_index
        vec0, dist = edge_lengths(data)
        graphs, batch = num_graphs(data), graph_index(data)
        edge_graph = batch.index_select(0, dst)
        h = self.embedding(data.z)
        layers = [("embedding", self.node_irreps, h)] if record else []
        for i, layer in enumerate(self.mpnn):
            h = layer(h, dist, src, dst)
            if record:
                layers.append((f"mpnn{i}", self.node_irreps, h))
        action = torch.eye(3, dtype=vec0.dtype, device=vec0.device).expand(graphs, 3, 3)
        triplets = triplet_index(dst, h.shape[0]) if self.actions else None
        vec = vec0
        for i, (update, act) in enumerate(zip(self.updates, self.actions)):
            h = update(h, dist, src, dst)
            action = act(h, vec, src, dst, triplets, edge_graph, graphs) @ action
            vec = deform(vec0, action, edge_graph)  # geometry of the deformed cell
            dist = vec.norm(dim=-1)
            if record:
                _, basis = _cartesian_to_irreps()
                irreps = torch.einsum("kij,bij->bk", basis.to(action.dtype), action).index_select(0, batch)
                layers.append((f"step{i}", self.step_irreps, torch.cat([h, irreps], dim=-1)))
        return h, action, layers

    def node_features(self, data) -> list[tuple[str, o3.Irreps, torch.Tensor]]:
        """Every layer's features [N, irreps.dim]: invariant states (``Fx0e``), and after each
        action step also the crystal's accumulated action (a 3x3 matrix, ``0e+1e+2e``)."""
        return self.propagate(data, record=True)[2]

    def forward(self, data) -> torch.Tensor:
        h, action, _ = self.propagate(data)
        return self.readout(torch.cat([mean_pool(h, data), strain_invariants(action)], dim=-1))


def deform(vec0: torch.Tensor, action: torch.Tensor, edge_graph: torch.Tensor) -> torch.Tensor:
    """Edge vectors [E, 3] of the deformed cell cell' = cell A^T (rows): r' = r A^T per crystal.

    With fractional coordinates and edge images fixed, r = (f_j + n - f_i) cell, so
    r' = (f_j + n - f_i) cell A^T = r A^T.
    """
    return torch.einsum("ekj,ej->ek", action.index_select(0, edge_graph), vec0)
