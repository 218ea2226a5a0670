"""probe_lattice_length: distance and multi_edge graphs cannot see c, lattice loops can."""
from __future__ import annotations

import numpy as np
import pytest

from tasks import get_task
from tasks.synthetic import lattice_length as ll
from tests.tasks.synthetic.helpers import graph, same_graph_except_cell


@pytest.fixture(scope="module")
def data():
    return get_task("probe_lattice_length").load()


def rows_of_sheet(data, sheet: int) -> list[int]:
    return [i for i, g in enumerate(data.groups) if g == sheet]


def test_target_is_c_in_range_and_cells_tetragonal(data):
    assert len(data) == 300 and len(set(data.groups.tolist())) == 60
    for s, y in zip(data.structures, data.targets):
        a, b, c = s.lattice.abc
        assert y == pytest.approx(c) and 9.0 <= c <= 14.0
        assert a == pytest.approx(b) and s.lattice.angles == pytest.approx((90.0, 90.0, 90.0))


def test_next_sheet_is_beyond_the_cutoff(data):
    for s in data.structures[::7]:
        z = s.cart_coords[:, 2]
        assert s.lattice.c - (z.max() - z.min()) >= 8.4


@pytest.mark.parametrize("variant", ["distance", "multi_edge"])
@pytest.mark.parametrize("sheet", [0, 17, 59])
def test_graphs_identical_for_every_c(data, variant, sheet):
    rows = rows_of_sheet(data, sheet)
    assert len({round(data.targets[i], 6) for i in rows}) == len(rows) == 5  # different c ...
    first = graph(data.structures[rows[0]], variant)
    assert first.edge_index.shape[1] > 0
    for i in rows[1:]:  # ... same graph: identical edges, shifts and vectors, only the cell differs
        other = graph(data.structures[i], variant)
        assert same_graph_except_cell(first, other)
        assert not np.allclose(first.cell.numpy(), other.cell.numpy())


def test_multi_edge_has_no_edge_along_c(data):
    g = graph(data.structures[0], "multi_edge")
    assert (g.edge_shift[:, 2] == 0).all()


@pytest.mark.parametrize("sheet", [0, 31])
def test_lattice_loops_carry_c(data, sheet):
    rows = rows_of_sheet(data, sheet)
    graphs = [graph(data.structures[i], "lattice") for i in rows]
    assert not same_graph_except_cell(graphs[0], graphs[1])  # the loop vectors differ
    from bench.graphs import edge_vectors

    for i, g in zip(rows, graphs):
        loops = edge_vectors(g)[g.edge_type == 1].norm(dim=1).numpy()
        assert np.isclose(loops, data.targets[i], atol=1e-4).any()  # a loop of length c


def test_expectations():
    from bench.report.theory import expected_can

    # a model that reads only lengths within its basis cannot; one that reads the cell can anywhere
    assert [expected_can("probe_lattice_length", "cgcnn", v).can for v in ("distance", "multi_edge", "lattice")] \
        == [False, False, False]
    assert expected_can("probe_lattice_length", "painn", "lattice").can  # loops have their own basis
    assert expected_can("probe_lattice_length", "geocgnn", "distance").can  # reads data.cell


def test_sheet_positions_do_not_depend_on_c():
    rng = np.random.default_rng(0)
    a, species, pos = ll.random_sheet(rng)
    s1, s2 = ll.stack(a, species, pos, 9.5), ll.stack(a, species, pos, 13.0)
    np.testing.assert_allclose(s1.cart_coords, s2.cart_coords, atol=1e-12)
