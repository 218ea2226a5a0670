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
from bench.graphs.errors import GraphError
from bench.graphs.registry import VARIANTS


#: Optional per-edge attributes a variant may add (key -> meaning); see docs/design.md.
EDGE_ATTRIBUTES = {
    "edge_weight": "[E] float32, dimensionless: Voronoi face solid angle / 4 pi (variant voronoi)",
}


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


def structure_label(structure: Structure, structure_id: str | None) -> str:
    """How error messages name a structure: its id, else its formula."""
    return repr(structure_id) if structure_id is not None else f"{structure.composition.reduced_formula} (no id)"


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
        attribute from ``EDGE_ATTRIBUTES`` (``voronoi``: ``edge_weight [E] float32``). The search runs in float64.

    Raises:
        GraphError: the structure cannot be made into a graph (message names it).
    """
    name = validate_params(variant, cutoff, max_neighbors)
    if not structure.is_ordered:
        label = structure_label(structure, structure_id)
        raise GraphError(f"structure {label} is disordered; z needs one element per site")
    pos = np.array(structure.cart_coords, dtype=np.float64).reshape(-1, 3)  # copies: pymatgen arrays are read-only
    cell = np.array(structure.lattice.matrix, dtype=np.float64)
    edge_index, edge_shift, edge_type, *extra = VARIANTS.get(name)(
        structure,
        pos,
        cell,
        cutoff=float(cutoff),
        max_neighbors=None if max_neighbors is None else int(max_neighbors),
        structure_id=structure_label(structure, structure_id),
    )
    data = Data(
        z=torch.tensor([site.specie.Z for site in structure], dtype=torch.long),
        pos=torch.from_numpy(pos).float(),
        cell=torch.from_numpy(cell).float().unsqueeze(0),
        edge_index=edge_index.long(),
        edge_shift=edge_shift.long(),
        edge_type=edge_type.long(),
    )
    for key, value in (extra[0] if extra else {}).items():  # per-edge attributes of some variants
        if key not in EDGE_ATTRIBUTES or value.shape[:1] != edge_type.shape:
            raise ValueError(f"variant {name!r} returned per-edge attribute {key!r} of shape "
                             f"{tuple(value.shape)}; known: {sorted(EDGE_ATTRIBUTES)}, first dimension E")
        data[key] = value.float()
    if y is not None:
        data.y = target_tensor(y)
    data.num_nodes = len(structure)
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
