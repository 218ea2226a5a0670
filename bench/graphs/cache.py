"""Build the graphs of a whole task once and keep them on disk."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import torch
from pymatgen.core import Structure
from torch_geometric.data import Data
from tqdm.auto import tqdm

from bench import defaults
from bench.graphs.build import build_graph, target_tensor, validate_params
from bench.graphs.errors import GraphError

# Bump whenever a change to bench/graphs can change a graph: old cache files are then
# simply never looked up again.
# "3": lattice loops mirror-closed (18 per atom, was Matformer's 12).
GRAPH_CODE_VERSION = "3"


def graph_cache_key(
    dataset_sha256: str, variant: str, cutoff: float, max_neighbors: int | None, ids: Sequence[str]
) -> str:
    """sha256 hex digest naming the cache file of one (data set, graph settings) pair.

    The ids are part of the key too, so that a subset of a data set (one fold, a
    quick profile) never reads the graphs of another subset of the same file.
    """
    ids_digest = hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()
    payload = json.dumps(
        [str(dataset_sha256), str(variant).lower(), float(cutoff), max_neighbors, GRAPH_CODE_VERSION, ids_digest]
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _save_atomic(obj: Any, path: Path) -> None:
    """torch.save through a temporary file and os.replace, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def build_task_graphs(
    structures: Sequence[Structure],
    ids: Sequence[str],
    variant: str,
    cutoff: float,
    max_neighbors: int | None,
    dataset_sha256: str,
    cache_dir: os.PathLike | str | None = None,
    targets: Sequence[Any] | None = None,
    progress: bool = True,
) -> list[Data]:
    """The graphs of all structures, built once and cached.

    The list is stored (without targets) at ``<cache_dir>/graphs/<key>.pt`` with
    ``key = graph_cache_key(...)`` and ``cache_dir`` defaulting to
    ``bench.defaults.cache_dir()``; later calls load it. When ``targets`` is given,
    ``y`` of graph k is ``targets[k]`` ([1] float, or [1, k] for k values).

    Raises:
        UnknownNameError / ValueError: bad variant, cutoff or cap.
        GraphError: a structure cannot be made into a graph; names its id.
    """
    variant = validate_params(variant, cutoff, max_neighbors)
    if len(structures) != len(ids):
        raise ValueError(f"{len(structures)} structures but {len(ids)} ids")
    if targets is not None and len(targets) != len(ids):
        raise ValueError(f"{len(targets)} targets but {len(ids)} structures")
    root = Path(cache_dir) if cache_dir is not None else defaults.cache_dir()
    path = root / "graphs" / f"{graph_cache_key(dataset_sha256, variant, cutoff, max_neighbors, ids)}.pt"
    graphs: list[Data] | None = None
    if path.exists():
        try:
            # our own file of Data objects, which the weights-only unpickler refuses
            graphs = torch.load(path, weights_only=False)
        except Exception:  # a truncated or foreign file: rebuild it
            graphs = None
        if graphs is not None and len(graphs) != len(ids):
            graphs = None
    if graphs is None:
        graphs = []
        for structure, sid in tqdm(
            zip(structures, ids), total=len(ids), desc=f"graphs [{variant}]", disable=not progress
        ):
            try:
                graphs.append(build_graph(structure, variant, cutoff, max_neighbors, structure_id=sid))
            except GraphError as err:
                if str(sid) in str(err):
                    raise
                raise GraphError(f"structure {sid!r}: {err}") from err
            except Exception as err:
                raise GraphError(f"building the graph of structure {sid!r} failed: {type(err).__name__}: {err}") from err
        _save_atomic(graphs, path)
    if targets is not None:
        for graph, target in zip(graphs, targets):
            graph.y = target_tensor(target)
    return graphs
