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
