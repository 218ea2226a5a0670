"""Proof that the fast graph build equals the oracle: every tensor, bit for bit.

``compare_with_reference`` builds a task's graphs the way the cache does (batched
chunks) and compares each with ``bench.graphs.reference.reference_graph``: same keys,
same dtypes, ``torch.equal`` tensors. ``python -m bench.graphs.verify perovskites_cdvae``
runs it on a whole registered task.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data import Data
from tqdm.auto import tqdm

from bench.graphs.build import chunk_graph
from bench.graphs.cache import build_checked_chunk, chunk_bounds
from bench.graphs.errors import GraphError
from bench.graphs.reference import reference_graph


def same_graph(a: Data, b: Data) -> bool:
    """Same keys, and every value equal (tensors: same dtype, shape and elements)."""
    if set(a.keys()) != set(b.keys()):
        return False
    for key in a.keys():
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


@dataclass
class Comparison:
    """How many graphs were compared, which differed (index, id), which failed in both (same error)."""

    compared: int = 0
    different: list[tuple[int, str]] = field(default_factory=list)
    both_failed: int = 0


def compare_with_reference(structures: Sequence[Structure], ids: Sequence[str], variant: str, cutoff: float,
                           max_neighbors: int | None, progress: bool = False) -> Comparison:
    """Compare every structure's batched graph with the oracle's (errors must match too)."""
    result = Comparison()
    bounds = chunk_bounds(structures)
    for start, stop in tqdm(bounds, desc=f"verify [{variant}]", disable=not progress):
        try:
            chunk = build_checked_chunk(structures[start:stop], ids[start:stop], variant, cutoff, max_neighbors)
        except GraphError:  # some structure fails: compare them one by one, errors included
            for k in range(start, stop):
                _compare_one(result, structures[k], ids[k], k, variant, cutoff, max_neighbors)
            continue
        node_ptr = np.concatenate([[0], np.cumsum(chunk.num_nodes)])
        edge_ptr = np.concatenate([[0], np.cumsum(chunk.num_edges)])
        for b in range(stop - start):
            k = start + b
            fast = chunk_graph(chunk, edge_ptr[b], edge_ptr[b + 1], node_ptr[b], node_ptr[b + 1], b)
            result.compared += 1
            if not same_graph(fast, reference_graph(structures[k], variant, cutoff, max_neighbors, repr(ids[k]))):
                result.different.append((k, str(ids[k])))
    return result


def _compare_one(result: Comparison, structure: Structure, sid: str, k: int, variant: str, cutoff: float,
                 max_neighbors: int | None) -> None:
    errors = []
    graphs = []
    for build in (lambda: build_checked_chunk([structure], [sid], variant, cutoff, max_neighbors),
                  lambda: reference_graph(structure, variant, cutoff, max_neighbors, repr(sid))):
        try:
            graphs.append(build())
            errors.append(None)
        except GraphError as err:
            graphs.append(None)
            errors.append(str(err).replace(f"structure {sid!r}: ", "", 1))
    result.compared += 1
    if errors[0] is not None or errors[1] is not None:
        if errors[0] is None or errors[1] is None or errors[0] != errors[1]:
            result.different.append((k, str(sid)))
        else:
            result.both_failed += 1
        return
    chunk = graphs[0]
    fast = chunk_graph(chunk, 0, chunk.edge_index.shape[1], 0, len(structure))
    if not same_graph(fast, graphs[1]):
        result.different.append((k, str(sid)))


def main(argv: list[str] | None = None) -> int:
    import tasks
    from bench import defaults

    parser = argparse.ArgumentParser(description="compare every graph of a task with the numpy oracle")
    parser.add_argument("task")
    parser.add_argument("--variants", default="multi_edge,distance,lattice")
    parser.add_argument("--cutoff", type=float, default=defaults.CUTOFF)
    parser.add_argument("--max-neighbors", type=int, default=defaults.MAX_NEIGHBORS)
    args = parser.parse_args(argv)
    data = tasks.get_task(args.task).load()
    bad = 0
    for variant in args.variants.split(","):
        res = compare_with_reference(data.structures, data.ids, variant, args.cutoff, args.max_neighbors, True)
        print(f"{args.task} {variant}: {res.compared} compared, {len(res.different)} different, "
              f"{res.both_failed} failing identically in both", flush=True)
        bad += len(res.different)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
