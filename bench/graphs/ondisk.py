"""Graphs of tasks larger than memory: a streaming build into PyG's ``OnDiskDataset``.

``build_on_disk`` builds the graphs chunk by chunk (``bench.graphs.batch.build_chunk``)
with a progress bar and appends each chunk to an SQLite-backed ``OnDiskDataset`` (PyG's
own format; one row per graph, tensors as raw bytes in the narrowest integer dtype),
so memory holds one chunk, never the task. ``GraphStore[i]`` reads graph i from disk
as the contract's ``Data``; a ``DataLoader`` over ``store.select(idx)`` fetches each
batch with one query (``__getitems__``), which is how training reads it.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data, OnDiskDataset
from tqdm.auto import tqdm

from bench.graphs.batch import Chunk
from bench.graphs.errors import GraphError

_WIDTH_DTYPES = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
SCHEMA = {
    "z": dict(dtype=torch.uint8, size=(-1,)),
    "pos": dict(dtype=torch.float32, size=(-1, 3)),
    "cell": dict(dtype=torch.float32, size=(1, 3, 3)),
    "edge_index": dict(dtype=torch.uint8, size=(-1,)),  # raw bytes of [2, E] in index_width-byte ints
    "edge_shift": dict(dtype=torch.uint8, size=(-1,)),  # raw bytes of [E, 3] in shift_width-byte ints
    "edge_type": dict(dtype=torch.int8, size=(-1,)),
    "index_width": int,
    "shift_width": int,
}


def _width(values: np.ndarray) -> int:
    """Bytes per integer needed for ``values`` (1, 2, 4 or 8)."""
    if values.size == 0:
        return 1
    peak = max(abs(int(values.min())), abs(int(values.max())) + 1)
    for width in (1, 2, 4):
        if peak <= 2 ** (8 * width - 1):
            return width
    return 8


class GraphStore(OnDiskDataset):
    """The graphs of one task in an SQLite ``OnDiskDataset`` under ``root``.

    Rows are graphs in task order. ``targets`` ([G] or [G, k] float32), when set, become
    each graph's ``y``; ``select(idx)`` gives a lazy view of some rows.
    """

    def __init__(self, root: str | os.PathLike, targets: torch.Tensor | None = None, log: bool = False) -> None:
        self.targets = targets
        super().__init__(str(root), schema=dict(SCHEMA), log=log)

    def serialize(self, data: dict[str, Any]) -> dict[str, Any]:
        return data  # rows are written already encoded (``encode_chunk``)

    def deserialize(self, row: dict[str, Any]) -> Data:
        index = row["edge_index"].view(_WIDTH_DTYPES[row["index_width"]]).reshape(2, -1)
        shift = row["edge_shift"].view(_WIDTH_DTYPES[row["shift_width"]]).reshape(-1, 3)
        data = Data(z=row["z"].long(), pos=row["pos"].clone(), cell=row["cell"].clone(), edge_index=index.long(),
                    edge_shift=shift.long(), edge_type=row["edge_type"].long())
        data.num_nodes = int(row["z"].numel())
        return data

    def get(self, idx: int) -> Data:
        return self._with_y(self.deserialize(self.db.get(int(idx))), idx)

    def __getitems__(self, indices: Sequence[int]) -> list[Data]:
        """A batch of rows (positions in this possibly selected view) in one database query."""
        rows = [int(self.indices()[int(i)]) for i in indices]
        got = self.db.multi_get(rows) if len(rows) > 1 else [self.db.get(rows[0])]
        return [self._with_y(self.deserialize(r), g) for r, g in zip(got, rows)]

    def _with_y(self, data: Data, row: int) -> Data:
        if self.targets is not None:
            data.y = self.targets[row:row + 1].clone()
        return data

    def select(self, index: Sequence[int] | np.ndarray) -> GraphStore:
        """A lazy view of rows ``index`` (PyG's ``index_select``: no data is read)."""
        return self.index_select(np.asarray(index, dtype=np.int64).tolist())

    def with_targets(self, targets: torch.Tensor | None) -> GraphStore:
        """The same store with ``targets`` [G] or [G, k] (row order) as ``y``."""
        if targets is not None and targets.shape[0] != self.len():
            raise ValueError(f"{targets.shape[0]} targets for {self.len()} graphs")
        view = self.index_select(list(range(len(self))))
        view.targets = targets
        return view


def encode_chunk(chunk: Chunk) -> list[dict[str, Any]]:
    """One database row per graph of a chunk (integers in the narrowest width per graph)."""
    if chunk.edge_attrs:  # the store's schema is fixed at creation and holds none
        raise GraphError(f"per-edge attributes {sorted(chunk.edge_attrs)} are not supported by the on-disk store; "
                         "build this variant packed (store='packed')")
    node_ptr = np.concatenate([[0], np.cumsum(chunk.num_nodes)])
    edge_ptr = np.concatenate([[0], np.cumsum(chunk.num_edges)])
    rows = []
    for b in range(len(chunk)):
        n0, n1, e0, e1 = node_ptr[b], node_ptr[b + 1], edge_ptr[b], edge_ptr[b + 1]
        index, shift = chunk.edge_index[:, e0:e1], chunk.edge_shift[e0:e1]
        iw, sw = _width(np.array([n1 - n0 - 1])), _width(shift)
        rows.append({
            "z": torch.from_numpy(chunk.z[n0:n1].astype(np.uint8)),
            "pos": torch.from_numpy(np.ascontiguousarray(chunk.pos[n0:n1])),
            "cell": torch.from_numpy(np.ascontiguousarray(chunk.cell[b:b + 1])),
            "edge_index": torch.from_numpy(np.ascontiguousarray(index.astype(f"<i{iw}")).view(np.uint8).reshape(-1)),
            "edge_shift": torch.from_numpy(np.ascontiguousarray(shift.astype(f"<i{sw}")).view(np.uint8).reshape(-1)),
            "edge_type": torch.from_numpy(chunk.edge_type[e0:e1].astype(np.int8)),
            "index_width": iw,
            "shift_width": sw,
        })
    return rows


def build_on_disk(root: Path, bounds: Sequence[tuple[int, int]], make_chunk: Callable[[int, int], Chunk],
                  progress: bool = True, desc: str = "graphs") -> GraphStore:
    """Stream the graphs ``make_chunk(start, stop)`` for consecutive ``bounds`` into a new store at ``root``.

    Memory holds one chunk at a time (choose the bounds by atoms, ``cache.chunk_bounds``).
    Written under a temporary folder beside ``root`` and renamed into place when
    complete, so a crash never leaves a half store where a whole one is expected.
    """
    tmp = root.with_name(f"{root.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        store = GraphStore(tmp)
        with tqdm(total=bounds[-1][1] if bounds else 0, desc=desc, unit="graph", disable=not progress) as bar:
            for start, stop in bounds:
                rows = encode_chunk(make_chunk(start, stop))
                store.db.multi_insert(range(start, stop), rows)
                bar.update(stop - start)
        store.close()
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return GraphStore(root)
