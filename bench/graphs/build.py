"""``build_graph`` (structure -> ``Data``), ``edge_vectors`` and the ``PeriodicGraph`` transform."""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data import Data

from bench.defaults import CUTOFF, DEFAULT_VARIANT, MAX_NEIGHBORS
from bench.graphs.batch import Chunk, build_chunk
from bench.graphs.registry import VARIANTS


def validate_params(variant: str, cutoff: float, max_neighbors: int | None) -> str:
    """Check the graph parameters; returns the variant's registered (lower-case) name.

    Raises ``UnknownNameError`` (listing the variants) for an unknown variant and
    ``ValueError`` naming the parameter for a bad cutoff or cap.
    """
    VARIANTS.get(variant)
    if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Real) or not np.isfinite(cutoff) or cutoff <= 0:
        raise ValueError(f"cutoff must be a positive finite number of Å, got {cutoff!r}")
    if max_neighbors is not None and (
        isinstance(max_neighbors, bool) or not isinstance(max_neighbors, numbers.Integral) or max_neighbors < 1
    ):
        raise ValueError(f"max_neighbors must be an integer >= 1 or None (no cap), got {max_neighbors!r}")
    return str(variant).lower()


def target_tensor(y: Any) -> torch.Tensor:
    """A target as the contract's float tensor: a scalar -> [1], k values -> [1, k]."""
    t = torch.as_tensor(np.asarray(y, dtype=np.float32))
    return t.reshape(1) if t.dim() == 0 else t.reshape(1, -1)


def build_graph(
    structure: Structure,
    variant: str = DEFAULT_VARIANT,
    cutoff: float = CUTOFF,
    max_neighbors: int | None = MAX_NEIGHBORS,
    structure_id: str | None = None,
    y: Any = None,
) -> Data:
    """The periodic graph of one crystal, per the graph contract (DESIGN.md).

    Args:
        structure: an ordered pymatgen ``Structure``.
        variant: a name in ``VARIANTS`` (``multi_edge``, ``distance``, ``lattice`` ...).
        cutoff: neighbour radius (Å).
        max_neighbors: tie-inclusive cap per receiving atom; ``None`` = no cap.
        structure_id: named in error messages.
        y: optional target; a scalar becomes [1], k values [1, k].

    Returns:
        ``Data`` with ``z [N] long``, ``pos [N, 3] float32`` (Å), ``cell [1, 3, 3]
        float32`` (rows = lattice vectors, Å), ``edge_index [2, E] long`` (row 0
        source, row 1 receiver), ``edge_shift [E, 3] long``, ``edge_type [E] long``,
        ``y`` when given, and ``num_nodes``; variants that define one add a per-edge
        attribute from ``EDGE_ATTRIBUTES`` (``voronoi``: ``edge_weight [E] float32``).
        The search runs in float64. Many
        structures are built faster together: ``bench.graphs.batch.build_chunk``
        (what the task cache uses) gives the same graphs.

    Raises:
        GraphError: the structure cannot be made into a graph (message names it).
    """
    name = validate_params(variant, cutoff, max_neighbors)
    chunk = build_chunk([structure], name, float(cutoff), None if max_neighbors is None else int(max_neighbors),
                        [structure_id])
    data = chunk_graph(chunk, 0, chunk.edge_index.shape[1], 0, len(structure))
    if y is not None:
        data.y = target_tensor(y)
    return data


def chunk_graph(chunk: Chunk, e0: int, e1: int, n0: int, n1: int, b: int = 0) -> Data:
    """Graph ``b`` of a chunk (its nodes n0:n1, edges e0:e1) as the contract's ``Data`` (no y)."""
    data = Data(
        z=torch.from_numpy(chunk.z[n0:n1]).long(),
        pos=torch.from_numpy(chunk.pos[n0:n1]).float(),
        cell=torch.from_numpy(chunk.cell[b:b + 1]).float(),
        edge_index=torch.from_numpy(chunk.edge_index[:, e0:e1]).long(),
        edge_shift=torch.from_numpy(chunk.edge_shift[e0:e1]).long(),
        edge_type=torch.from_numpy(chunk.edge_type[e0:e1]).long(),
    )
    for key, values in chunk.edge_attrs.items():  # per-edge attributes of some variants
        data[key] = torch.from_numpy(values[e0:e1]).float()
    data.num_nodes = n1 - n0
    return data


def edge_vectors(data: Data) -> torch.Tensor:
    """[E, 3] edge vectors (Å), from receiver to the sender's image.

    ``vec = pos[src] + edge_shift @ cell[graph of edge] - pos[dst]``, for a single
    ``Data`` (cell [1, 3, 3]) or a ``Batch`` (cell [B, 3, 3], graph picked through
    ``batch[dst]``). Differentiable with respect to ``pos`` and ``cell``.
    """
    src, dst = data.edge_index
    pos = data.pos
    cell = data.cell.reshape(-1, 3, 3)
    shift = data.edge_shift.to(pos.dtype)
    batch = getattr(data, "batch", None)
    if batch is None or cell.size(0) == 1:
        if cell.size(0) != 1:
            raise ValueError(f"{cell.size(0)} cells but no batch vector to assign edges to graphs")
        offset = shift @ cell[0]
    else:
        offset = torch.einsum("ek,ekl->el", shift, cell[batch[dst]])
    return pos[src] + offset - pos[dst]


@dataclass(frozen=True)
class PeriodicGraph:
    """A structure -> graph transform with fixed parameters (validated at creation).

    ``PeriodicGraph('lattice', 8.0, 12)(structure, structure_id=..., y=...)`` equals
    ``build_graph(structure, 'lattice', 8.0, 12, ...)``; its repr shows every parameter.
    """

    variant: str = DEFAULT_VARIANT
    cutoff: float = CUTOFF
    max_neighbors: int | None = MAX_NEIGHBORS

    def __post_init__(self) -> None:
        object.__setattr__(self, "variant", validate_params(self.variant, self.cutoff, self.max_neighbors))
        object.__setattr__(self, "cutoff", float(self.cutoff))

    def __call__(self, structure: Structure, structure_id: str | None = None, y: Any = None) -> Data:
        return build_graph(structure, self.variant, self.cutoff, self.max_neighbors, structure_id, y)
