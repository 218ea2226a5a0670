"""Build the graphs of a whole task once and keep them on disk.

Tasks up to ``ON_DISK_MIN_GRAPHS`` structures are stored packed (``bench.graphs.pack``:
one memory-mapped file of concatenated compact tensors); larger ones are streamed into
an on-disk store (``bench.graphs.ondisk``: PyG's ``OnDiskDataset``), so that neither
their build nor their training holds the whole task in memory.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymatgen.core import Structure
from tqdm.auto import tqdm

from bench import defaults
from bench.graphs.batch import Chunk, build_chunk
from bench.graphs.build import validate_params
from bench.graphs.errors import GraphError
from bench.graphs.ondisk import GraphStore, build_on_disk
from bench.graphs.pack import PACK_FORMAT, PackedGraphs, load_packed, pack_chunks, save_packed

# Bump whenever a change to bench/graphs can change a graph: old cache files are then
# simply never looked up again. (The packed format has its own PACK_FORMAT.)
# "3": lattice loops mirror-closed (18 per atom, was Matformer's 12).
GRAPH_CODE_VERSION = "3"
# Tasks with at least this many structures are streamed to an on-disk store.
ON_DISK_MIN_GRAPHS = 60_000
# Atoms per batched build: enough to amortise numpy's per-call cost, while the working
# set stays small (~250 bytes per candidate pair, ~100 pairs per atom at 8 Å: ~25 MB).
CHUNK_ATOMS = 1024
CHUNK_GRAPHS = 128


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


def chunk_bounds(structures: Sequence[Structure], max_atoms: int = CHUNK_ATOMS,
                 max_graphs: int = CHUNK_GRAPHS) -> list[tuple[int, int]]:
    """Consecutive (start, stop) ranges of at most ``max_graphs`` structures and about ``max_atoms`` atoms."""
    bounds, start, atoms = [], 0, 0
    for k, structure in enumerate(structures):
        atoms += len(structure)
        if atoms >= max_atoms or k + 1 - start >= max_graphs:
            bounds.append((start, k + 1))
            start, atoms = k + 1, 0
    if start < len(structures):
        bounds.append((start, len(structures)))
    return bounds


def build_checked_chunk(structures: Sequence[Structure], ids: Sequence[str], variant: str, cutoff: float,
                        max_neighbors: int | None) -> Chunk:
    """``build_chunk`` whose errors name the first failing structure, as a one-by-one build would.

    A failure anywhere in the batch rebuilds it structure by structure, so the error
    raised is exactly the one of the first structure that cannot be made a graph.
    """
    try:
        return build_chunk(structures, variant, cutoff, max_neighbors, ids)
    except Exception:
        if len(structures) == 1:
            return _one(structures[0], ids[0], variant, cutoff, max_neighbors)
    parts = [_one(s, sid, variant, cutoff, max_neighbors) for s, sid in zip(structures, ids)]
    return Chunk(*(np.concatenate([getattr(p, f) for p in parts], axis=1 if f == "edge_index" else 0)
                   for f in Chunk.__dataclass_fields__))


def _one(structure: Structure, sid: str, variant: str, cutoff: float, max_neighbors: int | None) -> Chunk:
    try:
        return build_chunk([structure], variant, cutoff, max_neighbors, [sid])
    except GraphError as err:
        if str(sid) in str(err):
            raise
        raise GraphError(f"structure {sid!r}: {err}") from err
    except Exception as err:
        raise GraphError(f"building the graph of structure {sid!r} failed: {type(err).__name__}: {err}") from err


def targets_tensor(targets: Sequence[Any]) -> torch.Tensor:
    """[G] (scalar targets) or [G, k] float32, row g being graph g's ``y`` ([1] or [1, k], as ``target_tensor``)."""
    try:
        values = np.asarray(targets, dtype=np.float32)
    except ValueError as err:
        raise ValueError(f"targets of one task must all have the same shape: {err}") from None
    if values.ndim > 2:
        raise ValueError(f"targets must be scalars or vectors, got shape {values.shape[1:]} per structure")
    return torch.from_numpy(values)


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
    store: str = "auto",
) -> PackedGraphs | GraphStore:
    """The graphs of all structures, built once and cached; ``result[k]`` is structure k's ``Data``.

    Stored (without targets) under ``<cache_dir>/graphs/`` named by ``graph_cache_key(...)``,
    ``cache_dir`` defaulting to ``bench.defaults.cache_dir()``; later calls open it.
    ``store`` is ``"packed"`` (a memory-mapped ``PackedGraphs``), ``"disk"`` (a
    ``GraphStore`` read from disk per access) or ``"auto"`` (disk from
    ``ON_DISK_MIN_GRAPHS`` structures). Both are sequences of ``Data`` (``len``, ``[k]``)
    with ``select(idx)`` for lazy subsets. When ``targets`` is given, ``y`` of graph k
    is ``targets[k]`` ([1] float, or [1, k] for k values).

    Raises:
        UnknownNameError / ValueError: bad variant, cutoff, cap or store.
        GraphError: a structure cannot be made into a graph; names its id.
    """
    variant = validate_params(variant, cutoff, max_neighbors)
    cutoff = float(cutoff)
    if len(structures) != len(ids):
        raise ValueError(f"{len(structures)} structures but {len(ids)} ids")
    if targets is not None and len(targets) != len(ids):
        raise ValueError(f"{len(targets)} targets but {len(ids)} structures")
    if store == "auto":
        store = "disk" if len(ids) >= ON_DISK_MIN_GRAPHS else "packed"
    if store not in ("packed", "disk"):
        raise ValueError(f"store must be 'packed', 'disk' or 'auto', got {store!r}")
    root = Path(cache_dir) if cache_dir is not None else defaults.cache_dir()
    key = graph_cache_key(dataset_sha256, variant, cutoff, max_neighbors, ids)
    ids = [str(i) for i in ids]

    def make_chunk(start: int, stop: int) -> Chunk:
        return build_checked_chunk(structures[start:stop], ids[start:stop], variant, cutoff, max_neighbors)

    if store == "disk":
        graphs: PackedGraphs | GraphStore = _open_store(root / "graphs" / f"{key}.ondisk{PACK_FORMAT}", len(ids))
        if graphs is None:
            graphs = build_on_disk(root / "graphs" / f"{key}.ondisk{PACK_FORMAT}", chunk_bounds(structures), make_chunk,
                                   progress=progress, desc=f"graphs [{variant}] -> disk")
    else:
        path = root / "graphs" / f"{key}.packed{PACK_FORMAT}.pt"
        graphs = _open_packed(path, len(ids))
        if graphs is None:
            chunks = [make_chunk(a, b) for a, b in tqdm(chunk_bounds(structures), desc=f"graphs [{variant}]",
                                                       unit="chunk", disable=not progress)]
            save_packed(pack_chunks(chunks), path, {"variant": variant, "cutoff": cutoff,
                                                    "max_neighbors": max_neighbors, "n_graphs": len(ids)})
            graphs = _open_packed(path, len(ids))
    return graphs.with_targets(None if targets is None else targets_tensor(targets))


def _open_packed(path: Path, n_graphs: int) -> PackedGraphs | None:
    if not path.exists():
        return None
    try:
        tensors, _ = load_packed(path)
    except Exception:  # a truncated or foreign file: rebuild it
        return None
    graphs = PackedGraphs(tensors)
    return graphs if len(graphs) == n_graphs else None


def _open_store(root: Path, n_graphs: int) -> GraphStore | None:
    if not (root / "processed" / "sqlite.db").exists():
        return None
    try:
        graphs = GraphStore(root)
    except Exception:
        return None
    return graphs if len(graphs) == n_graphs else None
