"""``multi_edge_degree``: ``multi_edge`` cut to ``distance``'s edge count (the edge-count control).

``multi_edge`` has about twice the edges of ``distance`` (phonons: 14.3 vs 6.4 per
atom), so a difference between the two mixes *which* edges a model sees (several
images of one pair, self-images) with *how many*. This variant keeps ``multi_edge``'s
rule (every periodic image is an edge, self-images included) but spends
``distance``'s budget: per structure, the ``multi_edge`` edges are taken in order of
length up to a radius r*. A radius can only stop between shells (a shell of equal
lengths is never cut: cutting it would break the crystal's symmetry and make the graph
depend on atom order), so r* is the shell boundary whose edge count is *closest* to
the edge count of the ``distance`` graph of the same structure (same cutoff and cap),
the larger count on a tie, and never inside the first shell (atoms keep neighbours).
In low-symmetry crystals the counts agree to within a shell; in high-symmetry ones
they can differ by up to half a shell either way (conventional rock salt at 6 Å: 48
edges against 56; ideal hcp: its whole first shell, 24 against 2), and over a task
the signed deviations largely cancel (``bench.normalisation.mean_in_degree`` measures
both). ``multi_edge_degree`` vs ``distance`` compares edge *choice* at (nearly) equal
edge *count*; ``multi_edge`` vs ``multi_edge_degree`` measures the count.

Why per structure and not one cap per task: a per-task cap equalises only the task
mean (crystals with few atoms per cell would still differ most), needs a statistic of
the task at graph-building time (a graph that depends on the data set and its folds),
and a per-atom cap k is tie-inclusive and symmetrised, so it overshoots in exactly the
symmetric crystals too. A radius is a per-structure rule with no fitting:
deterministic, symmetric by construction (an edge and its reverse have one length)
and cacheable like every other variant. Per-atom degrees can differ from
``distance``'s (one radius for all atoms of a crystal).
"""
from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Structure

from bench.defaults import TIE_TOLERANCE
from bench.graphs.edges import neighbour_edges, to_tensors
from bench.graphs.registry import VARIANTS


def matching_radius(dist: np.ndarray, budget: int) -> float:
    """The shell boundary (Å) whose edge count is closest to ``budget``, ``budget`` >= 1.

    ``dist`` [E] > 0 edge lengths (Å); a shell is a run of sorted lengths each within
    ``TIE_TOLERANCE`` of the previous one. Never inside the first shell; a tie between
    two boundaries takes the larger count. Edges with ``dist <= radius`` are the selection.
    """
    d = np.sort(dist)
    last_of_shell = np.flatnonzero(np.append(np.diff(d) > TIE_TOLERANCE, True))
    counts = last_of_shell + 1
    best = int(np.argmin(np.abs(counts - budget) - 0.5 * (counts > budget)))  # tie -> larger count
    return float(d[last_of_shell[best]]) + TIE_TOLERANCE / 2


@VARIANTS.decorator("multi_edge_degree")
def multi_edge_degree(
    structure: Structure,
    pos: np.ndarray,
    cell: np.ndarray,
    *,
    cutoff: float,
    max_neighbors: int | None,
    structure_id: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``multi_edge`` edges no longer than r* (``edge_type`` 0), r* from ``distance``'s count.

    The cap enters only through the ``distance`` budget (``distance`` is built with it);
    a one-atom cell gets no edge, as under ``distance``.
    """
    budget = VARIANTS.get("distance")(
        structure, pos, cell, cutoff=cutoff, max_neighbors=max_neighbors, structure_id=structure_id
    )[0].shape[1]
    nb = neighbour_edges(pos, cell, cutoff, structure_id)
    if budget == 0 or nb.num_edges == 0:
        return to_tensors([(nb.take(np.zeros(nb.num_edges, dtype=bool)), 0)])
    return to_tensors([(nb.take(nb.dist <= matching_radius(nb.dist, budget)), 0)])
