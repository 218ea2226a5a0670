"""The packed graph format: a task's graphs as concatenated tensors plus per-graph offsets.

One file per (data set, graph settings), written by ``torch.save`` through a temporary
file and ``os.replace`` and opened with ``torch.load(mmap=True)``, so opening costs
milliseconds and every process that opens it shares the same page-cache pages instead
of unpickling a private copy. Integer fields are stored in the narrowest dtype that
holds them (``z`` uint8, ``edge_index`` int16 within a graph, ``edge_shift`` int8,
``edge_type`` int8: 8 bytes per edge against ~66 for a pickled list of ``Data``);
``pos`` and ``cell`` stay float32, exactly what ``build_graph`` returns.
``PackedGraphs[i]`` rebuilds graph i as the contract's ``Data`` (long integers) on access.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from bench.graphs.batch import Chunk

PACK_FORMAT = 1  # bump when the file layout changes (part of the cache file name)
FIELDS = ("z", "pos", "cell", "edge_index", "edge_shift", "edge_type")
ATTR_PREFIX = "attr."  # optional per-edge attributes of a variant (EDGE_ATTRIBUTES), float32 [E]


def narrowest_int(values: np.ndarray, signed: bool = True) -> np.dtype:
    """The smallest integer dtype holding every value (int8/16/32/64, or uint8 for small unsigned)."""
    if values.size == 0:
        return np.dtype(np.int8)
    lo, hi = int(values.min()), int(values.max())
    candidates = (np.int8, np.int16, np.int32, np.int64) if signed or lo < 0 else (np.uint8, np.int16, np.int32,
                                                                                      np.int64)
    for dtype in candidates:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    raise ValueError(f"integers from {lo} to {hi} do not fit int64")


def pack_chunks(chunks: Sequence[Chunk]) -> dict[str, torch.Tensor]:
    """Concatenate chunks into the packed tensors (compact dtypes) plus ``node_ptr`` / ``edge_ptr`` [G + 1]."""
    cat = {name: np.concatenate([getattr(c, name) for c in chunks], axis=1 if name == "edge_index" else 0)
           for name in FIELDS + ("num_nodes", "num_edges")}
    out = {
        "z": cat["z"].astype(narrowest_int(cat["z"], signed=False)),
        "pos": cat["pos"].astype(np.float32, copy=False),
        "cell": cat["cell"].astype(np.float32, copy=False),
        "edge_index": cat["edge_index"].astype(narrowest_int(cat["num_nodes"] - 1)),
        "edge_shift": cat["edge_shift"].astype(narrowest_int(cat["edge_shift"])),
        "edge_type": cat["edge_type"].astype(narrowest_int(cat["edge_type"])),
        "node_ptr": np.concatenate([[0], np.cumsum(cat["num_nodes"])]).astype(np.int64),
        "edge_ptr": np.concatenate([[0], np.cumsum(cat["num_edges"])]).astype(np.int64),
    }
    for key in sorted({k for c in chunks for k in c.edge_attrs}):
        out[ATTR_PREFIX + key] = np.concatenate([c.edge_attrs[key] for c in chunks]).astype(np.float32)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}


def save_packed(tensors: dict[str, torch.Tensor], path: Path, meta: dict[str, Any]) -> None:
    """Write atomically: ``torch.save`` to a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": PACK_FORMAT, "meta": dict(meta), "tensors": tensors}, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_packed(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Open a packed file memory-mapped (tensors read lazily, pages shared between processes)."""
    blob = torch.load(path, mmap=True, weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != PACK_FORMAT:
        raise ValueError(f"{path} is not a packed graph file of format {PACK_FORMAT}")
    tensors = blob["tensors"]
    missing = set(FIELDS + ("node_ptr", "edge_ptr")) - set(tensors)
    if missing:
        raise ValueError(f"{path} lacks {sorted(missing)}")
    return tensors, blob["meta"]


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenated ranges starts[b]:stops[b] as one int64 index array."""
    counts = stops - starts
    if counts.size == 0:
        return np.zeros(0, np.int64)
    shift = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return np.arange(int(counts.sum()), dtype=np.int64) + shift


class PackedGraphs(Sequence):
    """Graphs of a task as packed tensors; ``graphs[i]`` is the contract's ``Data``.

    Behaves like the list it replaces: ``len``, integer indexing (negative too),
    iteration, and slices or index arrays giving lists of ``Data``. ``select(idx)`` is
    the lazy alternative: a ``PackedGraphs`` over those rows that shares the tensors
    (what a ``DataLoader`` should iterate so workers never hold private copies).
    ``targets`` ([G] or [G, k] float32), when set, become each graph's ``y`` ([1] or [1, k]).
    """

    def __init__(self, tensors: dict[str, torch.Tensor], rows: np.ndarray | None = None,
                 targets: torch.Tensor | None = None) -> None:
        self.tensors = tensors
        self._node_ptr = tensors["node_ptr"].numpy()
        self._edge_ptr = tensors["edge_ptr"].numpy()
        self.rows = np.arange(len(self._node_ptr) - 1) if rows is None else np.asarray(rows, dtype=np.int64)
        self.targets = targets
        self._attrs = [k for k in tensors if k.startswith(ATTR_PREFIX)]

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            k = int(index)
            if not -len(self) <= k < len(self):
                raise IndexError(f"graph {k} out of range for {len(self)} graphs")
            k %= len(self)
            return self._graph(int(self.rows[k]), k)
        picked = range(len(self))[index] if isinstance(index, slice) else np.asarray(index).tolist()
        return [self[k] for k in picked]

    def __getitems__(self, positions: Sequence[int]) -> list[Data]:
        """Several graphs at once (what a ``DataLoader`` asks for per batch): one gather and
        one dtype conversion per field for the whole batch, then per-graph views."""
        k = np.asarray(positions, dtype=np.int64) % max(len(self), 1)
        g = self.rows[k]
        n0, n1 = self._node_ptr[g], self._node_ptr[g + 1]
        e0, e1 = self._edge_ptr[g], self._edge_ptr[g + 1]
        nodes, edges = torch.from_numpy(_ranges(n0, n1)), torch.from_numpy(_ranges(e0, e1))
        n_counts, e_counts = (n1 - n0).tolist(), (e1 - e0).tolist()
        t = self.tensors
        fields = {
            "z": t["z"].index_select(0, nodes).long().split(n_counts),
            "pos": t["pos"].index_select(0, nodes).split(n_counts),
            "cell": t["cell"].index_select(0, torch.from_numpy(g)).split(1),
            "edge_index": t["edge_index"].index_select(1, edges).long().split(e_counts, dim=1),
            "edge_shift": t["edge_shift"].index_select(0, edges).long().split(e_counts),
            "edge_type": t["edge_type"].index_select(0, edges).long().split(e_counts),
            **{k[len(ATTR_PREFIX):]: t[k].index_select(0, edges).split(e_counts) for k in self._attrs},
        }
        ys = None if self.targets is None else self.targets[torch.from_numpy(k)].split(1)
        out = []
        for b, n in enumerate(n_counts):
            data = Data(**{name: parts[b] for name, parts in fields.items()})
            data.num_nodes = n
            if ys is not None:
                data.y = ys[b]
            out.append(data)
        return out

    def select(self, index: Sequence[int] | np.ndarray) -> PackedGraphs:
        """A lazy view of rows ``index`` (positions in this sequence), sharing the tensors and targets."""
        index = np.asarray(index, dtype=np.int64)
        targets = None if self.targets is None else self.targets[torch.from_numpy(index)]
        return PackedGraphs(self.tensors, self.rows[index], targets)

    def with_targets(self, targets: torch.Tensor | None) -> PackedGraphs:
        """The same graphs with ``targets`` [len(self)] or [len(self), k] as their ``y``."""
        if targets is not None and targets.shape[0] != len(self):
            raise ValueError(f"{targets.shape[0]} targets for {len(self)} graphs")
        return PackedGraphs(self.tensors, self.rows, targets)

    def _graph(self, g: int, k: int) -> Data:
        t = self.tensors
        n0, n1 = int(self._node_ptr[g]), int(self._node_ptr[g + 1])
        e0, e1 = int(self._edge_ptr[g]), int(self._edge_ptr[g + 1])
        data = Data(
            z=t["z"][n0:n1].long(),
            pos=t["pos"][n0:n1].clone(),
            cell=t["cell"][g:g + 1].clone(),
            edge_index=t["edge_index"][:, e0:e1].long(),
            edge_shift=t["edge_shift"][e0:e1].long(),
            edge_type=t["edge_type"][e0:e1].long(),
            **{k[len(ATTR_PREFIX):]: t[k][e0:e1].clone() for k in self._attrs},
        )
        data.num_nodes = n1 - n0
        if self.targets is not None:
            data.y = self.targets[k:k + 1].clone()
        return data

    def nbytes(self) -> int:
        """Bytes of the packed tensors (what the file holds, less its small header)."""
        return sum(v.numel() * v.element_size() for v in self.tensors.values())

    def __repr__(self) -> str:
        return f"PackedGraphs({len(self)} graphs, {int(self._edge_ptr[-1])} edges, {self.nbytes() / 2**20:.1f} MiB)"
