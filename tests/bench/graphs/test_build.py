"""build_graph's contract, edge_vectors, PeriodicGraph and the on-disk cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

import bench.graphs.cache as graph_cache
from bench.graphs import (
    GRAPH_CODE_VERSION,
    VARIANTS,
    GraphError,
    PeriodicGraph,
    build_graph,
    build_task_graphs,
    edge_vectors,
    get_variant,
)
from bench.registry import UnknownNameError
from tests import crystals
from tests.bench.graphs._helpers import vectors64

CONTRACT_KEYS = {"z", "pos", "cell", "edge_index", "edge_shift", "edge_type"}


@pytest.mark.parametrize("variant", ["multi_edge", "distance", "lattice"])
def test_graph_has_exactly_the_contract_keys(variant: str) -> None:
    s = crystals.rocksalt()
    data = build_graph(s, variant, cutoff=5.0, max_neighbors=12)
    assert set(data.keys()) == CONTRACT_KEYS | {"num_nodes"}  # num_nodes is stored explicitly
    n, e = len(s), data.num_edges
    assert data.num_nodes == n
    assert data.z.dtype == torch.long and data.z.tolist() == [11] * 4 + [17] * 4
    assert data.pos.dtype == torch.float32 and data.pos.shape == (n, 3)
    assert data.cell.dtype == torch.float32 and data.cell.shape == (1, 3, 3)
    np.testing.assert_allclose(data.cell[0].numpy(), s.lattice.matrix, atol=1e-6)
    assert data.edge_index.dtype == torch.long and data.edge_index.shape == (2, e)
    assert data.edge_shift.dtype == torch.long and data.edge_shift.shape == (e, 3)
    assert data.edge_type.dtype == torch.long and data.edge_type.shape == (e,)
    # edge_vectors agrees with the float64 definition
    np.testing.assert_allclose(edge_vectors(data).numpy(), vectors64(s, data), atol=1e-4)


def test_targets_have_the_contract_shape() -> None:
    s = crystals.fcc()
    assert build_graph(s, y=1.5).y.shape == (1,)
    assert build_graph(s, y=np.float64(2.0)).y.dtype == torch.float32
    assert build_graph(s, y=[1.0, 2.0, 3.0]).y.shape == (1, 3)


def test_arguments_are_validated() -> None:
    s = crystals.fcc()
    with pytest.raises(UnknownNameError) as err:
        build_graph(s, "nearest_neighbour")
    for name in ("distance", "lattice", "multi_edge"):
        assert name in str(err.value)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="cutoff"):
            build_graph(s, cutoff=bad)
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="max_neighbors"):
            build_graph(s, max_neighbors=bad)
    assert get_variant("Multi_Edge") is VARIANTS.get("multi_edge")


def test_disordered_structure_is_an_error_naming_it() -> None:
    s = Structure(Lattice.cubic(3.0), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]])
    with pytest.raises(GraphError, match="alloy-7"):
        build_graph(s, structure_id="alloy-7")


def test_edge_vectors_on_a_batch_equal_per_graph_results() -> None:
    first = build_graph(crystals.rocksalt(), "lattice", cutoff=4.0)
    second = build_graph(crystals.skewed_triclinic(), "multi_edge", cutoff=5.0)
    batch = Batch.from_data_list([first, second])
    assert batch.cell.shape == (2, 3, 3)
    expected = torch.cat([edge_vectors(first), edge_vectors(second)])
    torch.testing.assert_close(edge_vectors(batch), expected)


def test_edge_vectors_are_differentiable() -> None:
    data = build_graph(crystals.hcp(), "multi_edge", cutoff=5.0)
    data.pos.requires_grad_(True)
    data.cell.requires_grad_(True)
    weights = torch.linspace(0.5, 1.5, data.num_edges)
    loss = (edge_vectors(data).pow(2).sum(dim=1) * weights).sum()
    grad_pos, grad_cell = torch.autograd.grad(loss, [data.pos, data.cell])
    assert grad_pos.abs().sum() > 0 and grad_cell.abs().sum() > 0
    # d/dpos of |vec|^2 summed with unit weights vanishes for a symmetric crystal, but
    # the cell gradient of sum |vec|^2 equals 2 * sum shift^T vec (analytic)
    data.pos.grad = None
    vec = edge_vectors(data)
    (g_cell,) = torch.autograd.grad(vec.pow(2).sum(), [data.cell])
    analytic = 2 * data.edge_shift.float().t() @ vec.detach()
    torch.testing.assert_close(g_cell[0], analytic, rtol=1e-4, atol=1e-3)


def test_rotating_pos_and_cell_rotates_edge_vectors() -> None:
    data = build_graph(crystals.skewed_triclinic(), "lattice", cutoff=5.0)
    q, _ = torch.linalg.qr(torch.tensor([[0.3, -1.2, 0.5], [0.9, 0.1, -0.4], [0.2, 0.7, 1.1]]))
    rot = q * torch.sign(torch.det(q))  # a proper rotation
    rotated = data.clone()
    rotated.pos = data.pos @ rot.T
    rotated.cell = data.cell @ rot.T
    before, after = edge_vectors(data), edge_vectors(rotated)
    torch.testing.assert_close(after, before @ rot.T, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(after.norm(dim=1), before.norm(dim=1), rtol=1e-5, atol=1e-4)


def test_periodic_graph_transform() -> None:
    transform = PeriodicGraph(variant="lattice", cutoff=8.0, max_neighbors=12)
    assert repr(transform) == "PeriodicGraph(variant='lattice', cutoff=8.0, max_neighbors=12)"
    assert "max_neighbors=None" in repr(PeriodicGraph("distance", 5, None))
    s = crystals.bcc()
    a, b = transform(s, structure_id="x", y=1.0), build_graph(s, "lattice", 8.0, 12, y=1.0)
    for key in CONTRACT_KEYS | {"y"}:
        assert torch.equal(a[key], b[key])
    with pytest.raises(UnknownNameError):
        PeriodicGraph("nope")
    with pytest.raises(ValueError, match="cutoff"):
        PeriodicGraph("lattice", cutoff=0)


def _graphs_equal(a, b) -> bool:
    def same(x, y) -> bool:
        return torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y

    return set(a.keys()) == set(b.keys()) and all(same(a[k], b[k]) for k in a.keys())


def test_build_task_graphs_caches_on_disk(tmp_path, monkeypatch) -> None:
    structures = [crystals.rocksalt(), crystals.hcp(), crystals.fcc()]
    ids = ["mp-1", "mp-2", "mp-3"]
    args = dict(variant="lattice", cutoff=5.0, max_neighbors=12, dataset_sha256="abc", cache_dir=tmp_path)
    first = build_task_graphs(structures, ids, targets=[1.0, 2.0, 3.0], progress=False, **args)
    files = list((tmp_path / "graphs").glob("*.pt"))
    assert len(files) == 1 and not list((tmp_path / "graphs").glob("*.tmp"))
    assert len(first) == 3 and [g.y.item() for g in first] == [1.0, 2.0, 3.0]
    assert _graphs_equal(first[1], build_graph(structures[1], "lattice", 5.0, 12, y=2.0))

    def fail(*_args, **_kwargs):
        raise AssertionError("cache miss")

    monkeypatch.setattr(graph_cache, "build_chunk", fail)
    second = build_task_graphs(structures, ids, targets=[1.0, 2.0, 3.0], progress=False, **args)
    assert all(_graphs_equal(a, b) for a, b in zip(first, second))
    without_targets = build_task_graphs(structures, ids, progress=False, **args)
    assert "y" not in without_targets[0].keys()
    with pytest.raises(GraphError, match="cache miss"):  # another setting is another file
        build_task_graphs(structures, ids, progress=False, **{**args, "max_neighbors": None})
    assert isinstance(GRAPH_CODE_VERSION, str) and GRAPH_CODE_VERSION


def test_build_task_graphs_errors(tmp_path) -> None:
    with pytest.raises(UnknownNameError, match="distance.*lattice.*multi_edge"):
        build_task_graphs([crystals.fcc()], ["a"], "bogus", 5.0, 12, "abc", cache_dir=tmp_path)
    lone = crystals.simple_cubic(10.0)
    with pytest.raises(GraphError, match="mp-lonely"):
        build_task_graphs(
            [crystals.fcc(), lone], ["ok", "mp-lonely"], "multi_edge", 8.0, 12, "abc", cache_dir=tmp_path,
            progress=False,
        )
    assert not (tmp_path / "graphs").exists() or not list((tmp_path / "graphs").glob("*.pt"))
