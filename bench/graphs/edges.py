"""Operations on edge lists shared by the variants: checks, symmetrisation, the cap.

Edge lists have no repeated (src, dst, shift); the search returns them in the canonical
order of ``sort_neighbors``, which the built-in variants keep (and say so through
``canonical=True`` to skip re-sorting). Set operations work on one int64 key per edge
(``edge_keys``) instead of row-wise ``np.unique`` on [E, 5] rows.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bench.defaults import TIE_TOLERANCE
from bench.graphs.errors import GraphError
from bench.graphs.batch import StructureBatch
from bench.graphs.registry import VARIANTS
from bench.graphs.neighbors import Neighbors, search_many, shift_bound, shift_codes, sort_neighbors

ZERO_LENGTH = 1e-8  # Å; shorter edges mean two atoms sit on the same point
_INT64_LIMIT = 2**62


def neighbour_edges(pos: np.ndarray, cell: np.ndarray, cutoff: float, structure_id: str) -> Neighbors:
    """All neighbour edges of one structure within the cutoff, symmetric and checked.

    The per-structure form of ``batch_neighbour_edges`` (for variants registered as one
    function per structure); raises ``GraphError`` naming ``structure_id``.
    """
    pos = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    batch = StructureBatch([None], [pos], [np.asarray(cell, dtype=np.float64).reshape(3, 3)], [[]], [structure_id])
    return batch_neighbour_edges(batch, cutoff)


def batch_neighbour_edges(batch: StructureBatch, cutoff: float) -> Neighbors:
    """All neighbour edges of a batch within the cutoff (batch atom numbers), symmetric and checked.

    Raises ``GraphError`` (naming the structure) when two atoms coincide or when an
    atom has no neighbour at all within the cutoff, not even its own images.
    """
    nb, symmetric = search_many(batch.positions, batch.cells, cutoff)
    if nb.num_edges and nb.dist.min() < ZERO_LENGTH:
        k = int(np.flatnonzero(nb.dist < ZERO_LENGTH)[0])
        b, dst = batch.locate(int(nb.dst[k]))
        raise GraphError(
            f"structure {batch.labels[b]}: atoms {int(nb.src[k] - batch.offsets[b])} and {dst} "
            f"(image shift {nb.shift[k].tolist()}) coincide; a zero-length edge is not allowed"
        )
    has_edge = np.bincount(nb.dst, minlength=batch.n_atoms) > 0
    if not has_edge.all():
        b, atom = batch.locate(int(np.flatnonzero(~has_edge)[0]))
        raise GraphError(
            f"structure {batch.labels[b]}: atom {atom} has no neighbour within the cutoff "
            f"{cutoff} Å, not even its own periodic images; use a larger cutoff"
        )
    # rounding can put an edge and its reverse on opposite sides of the cutoff (only
    # possible for an edge at the cutoff, which ``search_many`` reports)
    return nb if symmetric else symmetrize(nb, canonical=True)


def reverse(nb: Neighbors) -> Neighbors:
    """The reverse edges (dst, src, -shift), same lengths."""
    return Neighbors(nb.dst, nb.src, -nb.shift, nb.dist)


def edge_keys(nb: Neighbors, n_atoms: int, bound: int) -> tuple[np.ndarray, np.ndarray] | None:
    """[E] int64 keys of (src, dst, shift) and of the reverses (dst, src, -shift), one encoding.

    ``bound`` is the largest |shift component| present; ``None`` when the keys would
    not fit an int64 (callers then fall back to row-wise operations).
    """
    span = (2 * bound + 1) ** 3
    if float(n_atoms) ** 2 * span >= _INT64_LIMIT:
        return None
    code = shift_codes(nb.shift, bound)  # the code of -s is (span - 1) - code(s): digits mirror
    fwd = (nb.src * n_atoms + nb.dst) * span + code
    rev = (nb.dst * n_atoms + nb.src) * span + (span - 1 - code)
    return fwd, rev


def symmetrize(nb: Neighbors, canonical: bool = False) -> Neighbors:
    """Union of the edges with their reverses, in canonical order.

    An edge keeps its own length; a reverse that is not already in the list is added
    with the length of the edge it reverses (``nb`` has no repeated edge). A list that
    is already symmetric costs one sort of int64 keys and is returned as it is when
    ``canonical`` says it is already in canonical order.
    """
    if nb.num_edges == 0:
        return nb
    n_atoms = int(max(nb.src.max(), nb.dst.max())) + 1
    keys = edge_keys(nb, n_atoms, shift_bound(nb.shift))
    if keys is None:
        return _symmetrize_rows(nb)
    fwd, rev = keys
    sorted_fwd = np.sort(fwd)
    if (sorted_fwd[1:] == sorted_fwd[:-1]).any():  # repeated edges: keep-first semantics, row-wise
        return _symmetrize_rows(nb)
    at = np.searchsorted(sorted_fwd, rev)
    at[at == fwd.size] = 0
    missing = sorted_fwd[at] != rev
    if not missing.any():
        return nb if canonical else sort_neighbors(nb)
    both = Neighbors(*(np.concatenate([a, b[missing]]) for a, b in zip(nb, reverse(nb))))
    return sort_neighbors(both)


def _symmetrize_rows(nb: Neighbors) -> Neighbors:
    """``symmetrize`` row-wise (keys beyond int64, or repeated edges): first occurrence kept."""
    both = Neighbors(*(np.concatenate([a, b]) for a, b in zip(nb, reverse(nb))))
    rows = np.column_stack([both.src, both.dst, both.shift])
    _, first = np.unique(rows, axis=0, return_index=True)
    return sort_neighbors(both.take(np.sort(first)))


def cap_neighbors(nb: Neighbors, max_neighbors: int | None, n_atoms: int, canonical: bool = False) -> Neighbors:
    """Tie-inclusive neighbour cap, then symmetrised.

    Per receiving atom, keeps every edge with ``dist <= d_k + TIE_TOLERANCE`` where
    ``d_k`` is its k-th smallest distance (all edges when it has fewer than k), so
    a degenerate shell is never cut; then adds the reverse of every kept edge.
    ``max_neighbors=None`` returns the list unchanged. ``canonical=True`` promises that
    ``nb`` is in canonical order already (the built-in variants' lists are), which
    skips sorting it.
    """
    if max_neighbors is None or nb.num_edges == 0:
        return nb
    if not canonical:
        nb = sort_neighbors(nb)
    # canonical order groups the edges by receiver, distances ascending
    counts = np.bincount(nb.dst, minlength=n_atoms)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    d_k = np.full(n_atoms, np.inf)
    full = counts >= max_neighbors
    d_k[full] = nb.dist[starts[full] + max_neighbors - 1]
    keep = nb.dist <= d_k[nb.dst] + TIE_TOLERANCE
    return symmetrize(nb.take(keep), canonical=True)


def to_tensors(parts: Sequence[tuple[Neighbors, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate ``(edges, edge_type)`` parts into the contract's tensors.

    Returns ``edge_index [2, E] long`` (row 0 source, row 1 receiver),
    ``edge_shift [E, 3] long`` and ``edge_type [E] long``.
    """
    if len(parts) == 1:  # the common case: no copies beyond the stack
        nb, t = parts[0]
        src, dst, shift = nb.src, nb.dst, nb.shift
        etype = np.full(nb.num_edges, t, np.int64)
    else:
        src = np.concatenate([nb.src for nb, _ in parts])
        dst = np.concatenate([nb.dst for nb, _ in parts])
        shift = np.concatenate([nb.shift for nb, _ in parts])
        etype = np.concatenate([np.full(nb.num_edges, t, np.int64) for nb, t in parts])
    edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64, copy=False))
    return (
        edge_index,
        torch.from_numpy(np.ascontiguousarray(shift, dtype=np.int64).reshape(-1, 3)),
        torch.from_numpy(etype),
    )


def register_batched(name: str):
    """Register a batched variant: ``batch_fn(batch, *, cutoff, max_neighbors) -> [(edges, edge_type), ...]``.

    ``batch`` is a ``bench.graphs.batch.StructureBatch``; the returned edge lists use
    batch atom numbers and are each in canonical order. The registry gets the
    per-structure ``VariantFn`` built from it, with the batched function as its
    ``batch`` attribute (what ``build_chunk`` runs).
    """

    def wrap(batch_fn):
        def per_structure(structure, pos, cell, *, cutoff, max_neighbors, structure_id):
            batch = StructureBatch([structure], [np.asarray(pos, dtype=np.float64).reshape(-1, 3)],
                                   [np.asarray(cell, dtype=np.float64).reshape(3, 3)], [[]], [structure_id])
            return to_tensors(batch_fn(batch, cutoff=cutoff, max_neighbors=max_neighbors))

        per_structure.__name__ = batch_fn.__name__
        per_structure.__doc__ = batch_fn.__doc__
        per_structure.batch = batch_fn
        VARIANTS.register(name, per_structure)
        return batch_fn

    return wrap
