"""``multi_edge``: every (i, j, shift) within the cutoff; periodic images are distinct edges."""
from __future__ import annotations

from bench.graphs.batch import StructureBatch
from bench.graphs.edges import batch_neighbour_edges, cap_neighbors, register_batched
from bench.graphs.neighbors import Neighbors


@register_batched("multi_edge")
def multi_edge(batch: StructureBatch, *, cutoff: float, max_neighbors: int | None) -> list[tuple[Neighbors, int]]:
    """Every periodic image within the cutoff is its own edge (``edge_type`` 0).

    Self-image edges (i, i, shift != 0) are kept, as in GeoCGNN and NequIP's
    ``edge_cell_shift``; the tie-inclusive cap acts per receiving atom.
    """
    return [(cap_neighbors(batch_neighbour_edges(batch, cutoff), max_neighbors, batch.n_atoms, canonical=True), 0)]
