"""The edge-variant registry and the signature every variant implements.

A variant is one function registered under its name; ``bench.graphs.variants``
imports every module in its folder, so adding a variant means adding one file.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from pymatgen.core import Structure

from bench.registry import Registry


#: Per-edge attributes a variant may add to the graph contract: name -> shape, dtype, units.
EDGE_ATTRIBUTES = {
    "edge_weight": "[E] float32, dimensionless: Voronoi face solid angle / 4 pi (variant voronoi)",
}


class VariantFn(Protocol):
    """Build the edges of one crystal.

    Args:
        structure: the pymatgen structure (for variants that need symmetry, e.g.
            the primitive cell of ``lattice``).
        pos: [N, 3] float64 Cartesian positions (Å), exactly ``structure.cart_coords``
            (they may lie outside the cell).
        cell: [3, 3] float64 lattice vectors as rows (Å).
        cutoff: neighbour cutoff radius (Å), > 0.
        max_neighbors: tie-inclusive cap per receiving atom, ``None`` = no cap.
        structure_id: label used in error messages.

    Returns:
        ``(edge_index [2, E] long, edge_shift [E, 3] long, edge_type [E] long)`` with
        ``vec = pos[src] + edge_shift @ cell - pos[dst]`` for ``src, dst = edge_index``.
        A variant may return a fourth element, a dict of per-edge attributes whose keys
        are in ``EDGE_ATTRIBUTES`` below (``voronoi``: ``edge_weight``), each of shape [E].
    """

    def __call__(
        self,
        structure: Structure,
        pos: np.ndarray,
        cell: np.ndarray,
        *,
        cutoff: float,
        max_neighbors: int | None,
        structure_id: str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


VARIANTS: Registry[VariantFn] = Registry("edge variant")


def get_variant(name: str) -> VariantFn:
    """The registered variant function; unknown names raise ``UnknownNameError``."""
    return VARIANTS.get(name)


def register_batched(name: str):
    """Register a batched variant: ``batch_fn(batch, *, cutoff, max_neighbors) -> [(edges, edge_type), ...]``.

    ``batch`` is a ``bench.graphs.batch.StructureBatch``; the returned edge lists use
    batch atom numbers and are each in canonical order. The registry gets the
    per-structure ``VariantFn`` built from it, with the batched function as its
    ``batch`` attribute (what ``build_chunk`` runs).
    """

    def wrap(batch_fn):
        def per_structure(structure, pos, cell, *, cutoff, max_neighbors, structure_id):
            from bench.graphs.batch import StructureBatch
            from bench.graphs.edges import to_tensors

            batch = StructureBatch([structure], [np.asarray(pos, dtype=np.float64).reshape(-1, 3)],
                                   [np.asarray(cell, dtype=np.float64).reshape(3, 3)], [[]], [structure_id])
            return to_tensors(batch_fn(batch, cutoff=cutoff, max_neighbors=max_neighbors))

        per_structure.__name__ = batch_fn.__name__
        per_structure.__doc__ = batch_fn.__doc__
        per_structure.batch = batch_fn
        VARIANTS.register(name, per_structure)
        return batch_fn

    return wrap
