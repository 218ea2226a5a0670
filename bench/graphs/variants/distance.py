"""``distance``: one edge per ordered atom pair at its minimum-image distance."""
from __future__ import annotations


import numpy as np
import torch
from pymatgen.core import Structure

from bench.defaults import TIE_TOLERANCE
from bench.graphs.edges import cap_neighbors, neighbour_edges, symmetrize, to_tensors
from bench.graphs.neighbors import Neighbors
from bench.graphs.registry import VARIANTS


def minimum_images(nb: Neighbors) -> Neighbors:
    """For each unordered pair i < j, its nearest image, plus the exact reverse edge.

    Images within ``TIE_TOLERANCE`` of the nearest count as tied; the tie goes to
    the lexicographically smallest shift of the edge (src=i, dst=j), and the reverse
    edge gets the negated shift, so (j, i, -s) is exactly the reverse of (i, j, s).
    """
    half = nb.take(nb.src < nb.dst)  # the neighbour list is symmetric: no pair is lost
    if half.num_edges == 0:
        return half
    order = np.lexsort((half.dist, half.dst, half.src))
    half = half.take(order)
    new_pair = np.ones(half.num_edges, dtype=bool)
    new_pair[1:] = (half.src[1:] != half.src[:-1]) | (half.dst[1:] != half.dst[:-1])
    pair_id = np.cumsum(new_pair) - 1
    d_min = half.dist[new_pair][pair_id]  # sorted by distance within a pair
    tied = half.take(half.dist <= d_min + TIE_TOLERANCE)
    order = np.lexsort((tied.shift[:, 2], tied.shift[:, 1], tied.shift[:, 0], tied.dst, tied.src))
    tied = tied.take(order)
    first = np.ones(tied.num_edges, dtype=bool)
    first[1:] = (tied.src[1:] != tied.src[:-1]) | (tied.dst[1:] != tied.dst[:-1])
    return symmetrize(tied.take(first))


@VARIANTS.decorator("distance")
def distance(
    structure: Structure,
    pos: np.ndarray,
    cell: np.ndarray,
    *,
    cutoff: float,
    max_neighbors: int | None,
    structure_id: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One edge per ordered pair (i != j) within the cutoff at its minimum image.

    No self-image edges: a one-atom cell has no edge by design (not an error). The
    cap acts on these one-per-pair edges, and its symmetrising union keeps at most
    one edge per ordered pair because each kept edge's reverse is the pair's edge.
    """
    nb = neighbour_edges(pos, cell, cutoff, structure_id)
    nb = nb.take(nb.src != nb.dst)
    return to_tensors([(cap_neighbors(minimum_images(nb), max_neighbors, len(pos)), 0)])
