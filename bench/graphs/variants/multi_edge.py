"""``multi_edge``: every (i, j, shift) within the cutoff; periodic images are distinct edges."""
from __future__ import annotations


import numpy as np
import torch
from pymatgen.core import Structure

from bench.graphs.edges import cap_neighbors, neighbour_edges, to_tensors
from bench.graphs.registry import VARIANTS


@VARIANTS.decorator("multi_edge")
def multi_edge(
    structure: Structure,
    pos: np.ndarray,
    cell: np.ndarray,
    *,
    cutoff: float,
    max_neighbors: int | None,
    structure_id: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every periodic image within the cutoff is its own edge (``edge_type`` 0).

    Self-image edges (i, i, shift != 0) are kept, as in GeoCGNN and NequIP's
    ``edge_cell_shift``; the tie-inclusive cap acts per receiving atom.
    """
    nb = neighbour_edges(pos, cell, cutoff, structure_id)
    return to_tensors([(cap_neighbors(nb, max_neighbors, len(pos)), 0)])
