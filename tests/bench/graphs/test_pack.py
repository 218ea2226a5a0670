"""The packed cache file and the on-disk store: same graphs, compact, atomic, lazy subsets."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

import tasks
from bench.graphs import build_graph, build_task_graphs
from bench.graphs.cache import build_checked_chunk, chunk_bounds
from bench.graphs.ondisk import GraphStore, build_on_disk
from bench.graphs.pack import PackedGraphs, load_packed, narrowest_int, pack_chunks
from bench.graphs.verify import same_graph
from tests import crystals


def _structures():
    return [crystals.rocksalt(), crystals.hcp(), crystals.skewed_triclinic(), crystals.fcc(),
            crystals.supercell(crystals.bcc(), [2, 1, 1])]


@pytest.mark.parametrize("store", ["packed", "disk"])
def test_stores_return_exactly_build_graph(tmp_path, store: str) -> None:
    structures, ids = _structures(), [f"x-{k}" for k in range(5)]
    targets = [0.5, -1.0, 2.0, 3.5, 4.0]
    graphs = build_task_graphs(structures, ids, "lattice", 6.0, 12, "sha", cache_dir=tmp_path, targets=targets,
                               progress=False, store=store)
    assert len(graphs) == 5
    for k, s in enumerate(structures):
        assert same_graph(graphs[k], build_graph(s, "lattice", 6.0, 12, y=targets[k]))
    assert same_graph(graphs[-1], graphs[4])
    view = graphs.select([3, 0])
    assert len(view) == 2 and same_graph(view[0], graphs[3]) and view[1].y.tolist() == [0.5]
    fetched = view.__getitems__([1, 0])  # what a DataLoader calls per batch
    assert same_graph(fetched[0], graphs[0]) and same_graph(fetched[1], graphs[3])
    batch = next(iter(DataLoader(view, batch_size=2)))
    assert batch.num_graphs == 2 and batch.y.tolist() == [3.5, 0.5]
    assert batch.edge_index.dtype == torch.long and batch.cell.shape == (2, 3, 3)


def test_packed_file_uses_compact_dtypes_and_opens_memory_mapped(tmp_path) -> None:
    data = tasks.get_task("matbench_jdft2d").load()
    graphs = build_task_graphs(data.structures, data.ids, "multi_edge", 8.0, 12, data.sha256, cache_dir=tmp_path,
                               progress=False)
    assert isinstance(graphs, PackedGraphs)
    (path,) = (tmp_path / "graphs").glob("*.pt")
    tensors, meta = load_packed(path)
    assert meta["n_graphs"] == len(data.ids) and meta["variant"] == "multi_edge"
    assert tensors["z"].dtype == torch.uint8 and tensors["edge_type"].dtype == torch.int8
    assert tensors["edge_index"].dtype == torch.int8  # jdft2d cells have < 128 atoms
    assert tensors["edge_shift"].dtype == torch.int8 and tensors["pos"].dtype == torch.float32
    n_edges = int(tensors["edge_ptr"][-1])
    assert n_edges == sum(g.num_edges for g in graphs)
    bytes_per_edge = sum(tensors[k].element_size() * tensors[k].numel() for k in
                         ("edge_index", "edge_shift", "edge_type")) / n_edges
    assert bytes_per_edge == 6.0  # 2 + 3 + 1 bytes, against 56 for the long tensors of Data
    assert len(graphs[:3]) == 3 and same_graph(graphs[:3][2], graphs[2])
    with pytest.raises(IndexError):
        graphs[len(data.ids)]


def test_a_corrupt_cache_file_is_rebuilt(tmp_path) -> None:
    structures, ids = _structures(), [f"x-{k}" for k in range(5)]
    first = build_task_graphs(structures, ids, "multi_edge", 6.0, 12, "sha", cache_dir=tmp_path, progress=False)
    (path,) = (tmp_path / "graphs").glob("*.pt")
    # replaced, never rewritten in place: ``first`` still maps the old file (as every writer here does)
    (tmp_path / "junk").write_bytes(b"not a torch file")
    os.replace(tmp_path / "junk", path)
    again = build_task_graphs(structures, ids, "multi_edge", 6.0, 12, "sha", cache_dir=tmp_path, progress=False)
    assert all(same_graph(a, b) for a, b in zip(first, again))
    assert not list((tmp_path / "graphs").glob("*.tmp"))


def test_narrowest_int() -> None:
    assert narrowest_int(np.array([0, 118]), signed=False) == np.uint8
    assert narrowest_int(np.array([-3, 127])) == np.int8
    assert narrowest_int(np.array([-129, 5])) == np.int16
    assert narrowest_int(np.array([0, 40_000])) == np.int32


def test_on_disk_store_is_built_in_chunks_and_read_back(tmp_path) -> None:
    structures = _structures() * 3
    ids = [f"y-{k}" for k in range(len(structures))]
    calls = []

    def make_chunk(start: int, stop: int):
        calls.append((start, stop))
        return build_checked_chunk(structures[start:stop], ids[start:stop], "distance", 6.0, 12)

    store = build_on_disk(tmp_path / "store", [(0, 4), (4, 8), (8, 12), (12, 15)], make_chunk, progress=False)
    assert calls == [(0, 4), (4, 8), (8, 12), (12, 15)]
    assert isinstance(store, GraphStore) and len(store) == 15
    reopened = GraphStore(tmp_path / "store")
    for k in (0, 6, 14):
        assert same_graph(reopened[k], build_graph(structures[k], "distance", 6.0, 12))
    assert [p.name for p in tmp_path.iterdir()] == ["store"]  # the temporary folder was renamed


def test_packing_keeps_every_field(tmp_path) -> None:
    structures = _structures()
    chunks = [build_checked_chunk(structures[a:b], [str(k) for k in range(a, b)], "lattice", 6.0, 12)
              for a, b in chunk_bounds(structures, max_atoms=10)]
    assert len(chunks) > 1
    packed = PackedGraphs(pack_chunks(chunks))
    for k, s in enumerate(structures):
        assert same_graph(packed[k], build_graph(s, "lattice", 6.0, 12))
