"""Message normalisation fitted from the data: ``avg_neighbors`` per variant and task.

NequIP, TFN and HIENet divide summed messages by sqrt(avg_neighbors) (HIENet's invariant
half by avg_neighbors), and the registered default is a constant 16. But the mean
in-degree differs about 4x across the edge variants of one task (phonons: distance
6.4, multi_edge 14.3, lattice 26.3 edges per atom), so a constant makes the message
scale a hidden ingredient of every variant comparison. NequIP's own recipe fits the
constant from the training data (``avg_num_neighbors: auto``); this module does the same,
from the *training graphs only* (never validation or test rows), so the statistic is
part of the fitted model, not a leak.

Wiring (done by the cell and tuning code): after the train/validation split,
``hparams = fitted_hparams(architecture, hparams, [graphs[i] for i in train_idx], fixed)``
where ``fixed`` are the hyperparameters the user set explicitly (an explicit
``avg_neighbors`` is kept).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch_geometric.data import Data

#: The hyperparameter this module fits.
AVG_NEIGHBORS = "avg_neighbors"
#: Lower bound of the fitted value: a task of edgeless graphs (distance, one-atom cells) has
#: mean in-degree 0, and dividing by sqrt(0) is undefined; below one neighbour there is
#: nothing to normalise.
MIN_AVG_NEIGHBORS = 1.0


def mean_in_degree(graphs: Sequence[Data]) -> float:
    """Edges per atom over a list of graphs: sum of E / sum of N (every edge has one receiver).

    Lattice loops (edge_type 1) count: they are summed into the receiver like any edge.
    Raises ``ValueError`` for an empty list or graphs without atoms.
    """
    atoms = sum(int(g.num_nodes) for g in graphs)
    if atoms == 0:
        raise ValueError("cannot fit avg_neighbors: no training atoms")
    return sum(int(g.edge_index.shape[1]) for g in graphs) / atoms


def fit_avg_neighbors(train_graphs: Sequence[Data]) -> float:
    """The fitted ``avg_neighbors``: the training graphs' mean in-degree, at least ``MIN_AVG_NEIGHBORS``."""
    return max(mean_in_degree(train_graphs), MIN_AVG_NEIGHBORS)


def fitted_hparams(architecture: str, hparams: Mapping[str, Any], train_graphs: Sequence[Data],
                   fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``hparams`` with ``avg_neighbors`` fitted on ``train_graphs`` when the architecture has it.

    Architectures without the hyperparameter, and a value the user fixed in ``fixed``,
    are returned unchanged. The result is a new dict.
    """
    import architectures

    out = dict(hparams)
    if AVG_NEIGHBORS in architectures.REGISTRY.get(architecture).defaults and AVG_NEIGHBORS not in (fixed or {}):
        out[AVG_NEIGHBORS] = fit_avg_neighbors(train_graphs)
    return out
