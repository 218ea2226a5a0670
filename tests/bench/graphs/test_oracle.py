"""The fast build (vesin, integer keys, batches) equals the numpy oracle bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

import tasks
from bench.graphs import GraphError, build_graph
from bench.graphs.neighbors import find_neighbors
from bench.graphs.reference import find_neighbors_numpy, reference_graph
from bench.graphs.verify import compare_with_reference, same_graph
from tests import crystals

VARIANTS = ["multi_edge", "distance", "lattice"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("task", ["matbench_jdft2d", pytest.param("matbench_phonons", marks=pytest.mark.slow)])
def test_every_graph_of_the_vendored_tasks_equals_the_oracle(task: str, variant: str) -> None:
    # phonons (1,265 structures of up to 48 atoms) takes ~1 min against the quadratic oracle: slow-marked
    data = tasks.get_task(task).load()
    result = compare_with_reference(data.structures, data.ids, variant, 8.0, 12)
    assert result.compared == len(data.ids) and result.different == []


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("cutoff, cap", [(6.0, 16), (5.0, None), (6.0, 8)])
def test_other_graph_settings_equal_the_oracle(variant: str, cutoff: float, cap) -> None:
    data = tasks.get_task("matbench_jdft2d").load()
    rows = list(range(0, len(data.ids), 7))  # a spread-out subset keeps the uncapped lists cheap
    result = compare_with_reference([data.structures[k] for k in rows], [data.ids[k] for k in rows], variant,
                                    cutoff, cap)
    assert result.compared == len(rows) and result.different == []


def _pitfalls() -> dict[str, tuple[Structure, float]]:
    """Crystals that break naive searches, with the cutoff that makes them hard."""
    thin = Structure(Lattice([[9.0, 0, 0], [0, 9.0, 0], [0, 0, 0.9]]), ["C", "O"], [[0, 0, 0], [0.4, 0.3, 0.5]])
    return {
        "tiny cell, many self-images": (crystals.simple_cubic(1.1), 6.0),
        "edges exactly at the cutoff": (crystals.simple_cubic(3.0), 6.0),
        "fcc shells at the cutoff": (crystals.fcc(3.6), 3.6),
        "skewed basis": (crystals.skewed_triclinic(), 6.0),
        "sheared hcp": (crystals.sheared(crystals.hcp()), 5.0),
        "thin, anisotropic cell": (thin, 7.0),
        "supercell": (crystals.supercell(crystals.rocksalt(), [2, 2, 1]), 6.0),
        "positions outside the cell": (
            Structure(Lattice.from_parameters(4.1, 4.6, 5.2, 80, 95, 104), ["Na", "Cl", "K"],
                      [[1.3, -0.4, 0.2], [0.25, 2.7, -1.1], [-0.6, 0.45, 0.95]]), 6.0),
    }


PITFALLS = _pitfalls()


@pytest.mark.parametrize("cap", [None, 1, 12])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", sorted(PITFALLS))
def test_pitfall_crystals_equal_the_oracle(name: str, variant: str, cap) -> None:
    structure, cutoff = PITFALLS[name]
    fast = build_graph(structure, variant, cutoff, cap)
    assert same_graph(fast, reference_graph(structure, variant, cutoff, cap))
    assert fast.num_edges > 0 or variant == "distance"


@pytest.mark.parametrize("name", sorted(PITFALLS))
def test_find_neighbors_equals_the_numpy_search_array_for_array(name: str) -> None:
    structure, cutoff = PITFALLS[name]
    pos, cell = structure.cart_coords, structure.lattice.matrix
    for got, want in zip(find_neighbors(pos, cell, cutoff), find_neighbors_numpy(pos, cell, cutoff)):
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_a_batch_of_mixed_crystals_equals_one_by_one_builds() -> None:
    names = sorted(PITFALLS)
    structures = [PITFALLS[n][0] for n in names]
    result = compare_with_reference(structures, names, "lattice", 6.0, 12)
    assert result.compared == len(names) and result.different == []


@pytest.mark.parametrize(
    "structure, cutoff",
    [
        (Structure(Lattice.cubic(3.0), ["H", "H"], [[0.1, 0, 0], [1.1, 0, 0]]), 8.0),  # coinciding atoms
        (crystals.simple_cubic(10.0), 8.0),  # an atom without neighbours
    ],
)
@pytest.mark.parametrize("variant", VARIANTS)
def test_errors_are_the_oracles(structure: Structure, cutoff: float, variant: str) -> None:
    with pytest.raises(GraphError) as fast:
        build_graph(structure, variant, cutoff, 12, structure_id="bad-1")
    with pytest.raises(GraphError) as oracle:
        reference_graph(structure, variant, cutoff, 12, repr("bad-1"))
    assert str(fast.value) == str(oracle.value)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_perovskite_graph_equals_the_oracle(variant: str) -> None:
    data = tasks.get_task("perovskites_cdvae").load()  # 18,928 structures from the shared data folder
    result = compare_with_reference(data.structures, data.ids, variant, 8.0, 12)
    assert result.compared == len(data.ids) and result.different == []
