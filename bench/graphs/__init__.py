"""Periodic crystal graphs: edge variants, the graph contract, the on-disk cache.

``build_graph(structure, variant, cutoff, max_neighbors)`` returns the contract's
``Data``; ``edge_vectors(data)`` is the one way models get edge vectors.
``build_task_graphs(...)`` builds a whole task in batches (``batch``) and caches it
packed and memory-mapped (``pack.PackedGraphs``) or, for large tasks, streamed into an
on-disk store (``ondisk.GraphStore``). The neighbour search is vesin's cell list
filtered with the arithmetic of the numpy oracle kept in ``reference``; ``verify``
checks every graph of a task against that oracle, ``benchmark`` writes make perf's
graph tables.
"""
from __future__ import annotations

from bench.graphs.errors import GraphError
from bench.graphs.registry import VARIANTS, get_variant
from bench.graphs import variants as _variants  # noqa: F401  (registers every variant)
from bench.graphs.build import PeriodicGraph, build_graph, edge_vectors
from bench.graphs.cache import GRAPH_CODE_VERSION, build_task_graphs
from bench.graphs.ondisk import GraphStore
from bench.graphs.pack import PackedGraphs


def take_graphs(graphs, index):
    """The graphs at positions ``index`` of a task's graphs (what ``build_task_graphs`` returns).

    An on-disk ``GraphStore`` gives a lazy view (a large task is never loaded whole); a
    ``PackedGraphs`` gives a list, fetched with one gather per field; a list gives a list.
    """
    if isinstance(graphs, GraphStore):
        return graphs.select(index)
    if isinstance(graphs, PackedGraphs):
        return graphs.__getitems__(list(index))
    return [graphs[i] for i in index]


__all__ = [
    "GRAPH_CODE_VERSION",
    "GraphError",
    "GraphStore",
    "PackedGraphs",
    "PeriodicGraph",
    "VARIANTS",
    "build_graph",
    "build_task_graphs",
    "edge_vectors",
    "get_variant",
    "take_graphs",
]
