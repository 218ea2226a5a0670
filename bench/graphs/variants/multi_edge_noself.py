"""``multi_edge_noself``: ``multi_edge`` without self-image edges (the self-image control)."""
from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Structure

from bench.graphs.edges import cap_neighbors, neighbour_edges, to_tensors
from bench.graphs.registry import VARIANTS


@VARIANTS.decorator("multi_edge_noself")
def multi_edge_noself(
    structure: Structure,
    pos: np.ndarray,
    cell: np.ndarray,
    *,
    cutoff: float,
    max_neighbors: int | None,
    structure_id: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every image (i, j, shift) with i != j within the cutoff (``edge_type`` 0), capped.

    The control that separates the two ingredients of ``multi_edge`` over ``distance``:
    it keeps *multiple images* of a pair but drops *self-images* (i, i, shift != 0).
    Self-images are removed before the tie-inclusive cap, as ``distance`` removes them,
    so the cap acts on the edges that stay. A one-atom cell is edgeless by design,
    as under ``distance``.
    """
    nb = neighbour_edges(pos, cell, cutoff, structure_id)
    nb = nb.take(nb.src != nb.dst)
    return to_tensors([(cap_neighbors(nb, max_neighbors, len(pos)), 0)])
