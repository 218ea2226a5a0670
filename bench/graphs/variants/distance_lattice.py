"""``distance_lattice``: ``distance`` plus the lattice loops of ``lattice`` (the loop control)."""
from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Structure

from bench.graphs.registry import VARIANTS


@VARIANTS.decorator("distance_lattice")
def distance_lattice(
    structure: Structure,
    pos: np.ndarray,
    cell: np.ndarray,
    *,
    cutoff: float,
    max_neighbors: int | None,
    structure_id: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``distance`` edges (type 0, capped) followed by the ``lattice`` loops (type 1, never capped).

    ``lattice`` = ``multi_edge`` + loops; this variant adds the same loops to the
    one-minimum-image-per-pair graph, so ``distance_lattice`` vs ``distance`` isolates
    the loops and ``lattice`` vs ``distance_lattice`` isolates multiple and self
    images. Both parts come from the registered variants themselves (not copies of
    their code), so any change to either propagates here.
    """
    kwargs = {"cutoff": cutoff, "max_neighbors": max_neighbors, "structure_id": structure_id}
    index, shift, etype = VARIANTS.get("distance")(structure, pos, cell, **kwargs)
    l_index, l_shift, l_type = VARIANTS.get("lattice")(structure, pos, cell, **kwargs)
    loops = l_type == 1
    return (
        torch.cat([index, l_index[:, loops]], dim=1),
        torch.cat([shift, l_shift[loops]], dim=0),
        torch.cat([etype, l_type[loops]], dim=0),
    )
