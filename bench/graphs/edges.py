"""Operations on edge lists shared by the variants: checks, symmetrisation, the cap."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bench.defaults import TIE_TOLERANCE
from bench.graphs.errors import GraphError
from bench.graphs.neighbors import Neighbors, find_neighbors, sort_neighbors

ZERO_LENGTH = 1e-8  # Å; shorter edges mean two atoms sit on the same point


def neighbour_edges(pos: np.ndarray, cell: np.ndarray, cutoff: float, structure_id: str) -> Neighbors:
    """All neighbour edges within the cutoff, symmetric and checked.

    Raises ``GraphError`` (naming ``structure_id``) when two atoms coincide or when
    an atom has no neighbour at all within the cutoff, not even its own images.
    """
    nb = find_neighbors(pos, cell, cutoff)
    short = nb.dist < ZERO_LENGTH
    if short.any():
        k = int(np.flatnonzero(short)[0])
        raise GraphError(
            f"structure {structure_id}: atoms {int(nb.src[k])} and {int(nb.dst[k])} "
            f"(image shift {nb.shift[k].tolist()}) coincide; a zero-length edge is not allowed"
        )
    has_edge = np.zeros(len(pos), dtype=bool)
    has_edge[nb.dst] = True
    if not has_edge.all():
        atom = int(np.flatnonzero(~has_edge)[0])
        raise GraphError(
            f"structure {structure_id}: atom {atom} has no neighbour within the cutoff "
            f"{cutoff} Å, not even its own periodic images; use a larger cutoff"
        )
    # rounding can put an edge and its reverse on opposite sides of the cutoff
    return symmetrize(nb)


def reverse(nb: Neighbors) -> Neighbors:
    """The reverse edges (dst, src, -shift), same lengths."""
    return Neighbors(nb.dst, nb.src, -nb.shift, nb.dist)


def dedupe(nb: Neighbors) -> Neighbors:
    """Keep the first occurrence of each (src, dst, shift), in canonical order."""
    if nb.num_edges == 0:
        return nb
    keys = np.column_stack([nb.src, nb.dst, nb.shift])
    _, first = np.unique(keys, axis=0, return_index=True)
    return sort_neighbors(nb.take(np.sort(first)))


def symmetrize(nb: Neighbors) -> Neighbors:
    """Union of the edges with their reverses, deduplicated, in canonical order."""
    both = Neighbors(*(np.concatenate([a, b]) for a, b in zip(nb, reverse(nb))))
    return dedupe(both)


def cap_neighbors(nb: Neighbors, max_neighbors: int | None, n_atoms: int) -> Neighbors:
    """Tie-inclusive neighbour cap, then symmetrised.

    Per receiving atom, keeps every edge with ``dist <= d_k + TIE_TOLERANCE`` where
    ``d_k`` is its k-th smallest distance (all edges when it has fewer than k), so
    a degenerate shell is never cut; then adds the reverse of every kept edge.
    ``max_neighbors=None`` returns the list unchanged.
    """
    if max_neighbors is None or nb.num_edges == 0:
        return nb
    nb = sort_neighbors(nb)  # grouped by receiver, distances ascending
    counts = np.bincount(nb.dst, minlength=n_atoms)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    d_k = np.full(n_atoms, np.inf)
    full = counts >= max_neighbors
    d_k[full] = nb.dist[starts[full] + max_neighbors - 1]
    keep = nb.dist <= d_k[nb.dst] + TIE_TOLERANCE
    return symmetrize(nb.take(keep))


def to_tensors(parts: Sequence[tuple[Neighbors, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate ``(edges, edge_type)`` parts into the contract's tensors.

    Returns ``edge_index [2, E] long`` (row 0 source, row 1 receiver),
    ``edge_shift [E, 3] long`` and ``edge_type [E] long``.
    """
    src = np.concatenate([nb.src for nb, _ in parts] + [np.zeros(0, np.int64)])
    dst = np.concatenate([nb.dst for nb, _ in parts] + [np.zeros(0, np.int64)])
    shift = np.concatenate([nb.shift for nb, _ in parts] + [np.zeros((0, 3), np.int64)])
    etype = np.concatenate([np.full(nb.num_edges, t, np.int64) for nb, t in parts] + [np.zeros(0, np.int64)])
    edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
    return (
        edge_index,
        torch.from_numpy(shift.astype(np.int64).reshape(-1, 3)),
        torch.from_numpy(etype.astype(np.int64)),
    )
