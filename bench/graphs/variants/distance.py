"""``distance``: one edge per ordered atom pair at its minimum-image distance."""
from __future__ import annotations

import numpy as np

from bench.defaults import TIE_TOLERANCE
from bench.graphs.batch import StructureBatch
from bench.graphs.edges import batch_neighbour_edges, cap_neighbors, register_batched, symmetrize
from bench.graphs.neighbors import Neighbors, shift_bound, shift_codes


def minimum_images(nb: Neighbors) -> Neighbors:
    """For each unordered pair i < j, its nearest image, plus the exact reverse edge.

    Images within ``TIE_TOLERANCE`` of the nearest count as tied; the tie goes to
    the lexicographically smallest shift of the edge (src=i, dst=j), and the reverse
    edge gets the negated shift, so (j, i, -s) is exactly the reverse of (i, j, s).
    Pairs and (pair, shift) are handled as int64 keys.
    """
    half = nb.take(nb.src < nb.dst)  # the neighbour list is symmetric: no pair is lost
    if half.num_edges == 0:
        return half
    n_atoms = int(half.dst.max()) + 1
    pair = half.src * n_atoms + half.dst
    order = np.argsort(pair, kind="stable")
    half, pair = half.take(order), pair[order]
    new_pair = np.ones(half.num_edges, dtype=bool)
    new_pair[1:] = pair[1:] != pair[:-1]
    d_min = np.minimum.reduceat(half.dist, np.flatnonzero(new_pair))
    tied = half.dist <= d_min[np.cumsum(new_pair) - 1] + TIE_TOLERANCE
    half, pair = half.take(tied), pair[tied]
    bound = shift_bound(half.shift)
    if float(n_atoms) ** 2 * float(2 * bound + 1) ** 3 < 2**62:
        order = np.argsort(pair * (2 * bound + 1) ** 3 + shift_codes(half.shift, bound))
    else:  # shifts of ~1e5 cells: per-column sort
        order = np.lexsort((half.shift[:, 2], half.shift[:, 1], half.shift[:, 0], pair))
    half, pair = half.take(order), pair[order]
    first = np.ones(half.num_edges, dtype=bool)
    first[1:] = pair[1:] != pair[:-1]
    return symmetrize(half.take(first))


@register_batched("distance")
def distance(batch: StructureBatch, *, cutoff: float, max_neighbors: int | None) -> list[tuple[Neighbors, int]]:
    """One edge per ordered pair (i != j) within the cutoff at its minimum image.

    No self-image edges: a one-atom cell has no edge by design (not an error). The
    cap acts on these one-per-pair edges, and its symmetrising union keeps at most
    one edge per ordered pair because each kept edge's reverse is the pair's edge.
    """
    nb = batch_neighbour_edges(batch, cutoff)
    nb = nb.take(nb.src != nb.dst)
    return [(cap_neighbors(minimum_images(nb), max_neighbors, batch.n_atoms, canonical=True), 0)]
