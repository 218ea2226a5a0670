"""avg_neighbors fitted from the training graphs only."""
from __future__ import annotations

import pytest

from bench.graphs import build_graph
from bench.normalisation import MIN_AVG_NEIGHBORS, fit_avg_neighbors, fitted_hparams, mean_in_degree
from tests import crystals

GRAPH = {"cutoff": 5.0, "max_neighbors": 12}


def test_mean_in_degree_known_answer():
    # fcc one-atom cell (a = 3.6 Å) at 4 Å: 12 neighbours at 2.55 Å and 6 at 3.6 Å (the next shell is 4.41 Å)
    fcc = build_graph(crystals.fcc(3.6), "multi_edge", cutoff=4.0, max_neighbors=None)
    assert fcc.num_edges == 18
    rocksalt = build_graph(crystals.rocksalt(), "multi_edge", cutoff=3.0, max_neighbors=None)
    assert rocksalt.num_edges == 8 * 6
    assert mean_in_degree([fcc, rocksalt]) == pytest.approx((18 + 48) / (1 + 8))


def test_variants_differ_and_the_fit_sees_only_training_graphs():
    structures = [crystals.rocksalt(), crystals.hcp(), crystals.skewed_triclinic()]
    fits = {v: fit_avg_neighbors([build_graph(s, v, **GRAPH) for s in structures])
            for v in ("distance", "multi_edge", "lattice")}
    assert fits["distance"] < fits["multi_edge"] < fits["lattice"]
    train = [build_graph(s, "multi_edge", **GRAPH) for s in structures[:2]]
    test = build_graph(crystals.fcc(), "multi_edge", **GRAPH)  # a held-out graph changes nothing
    assert fit_avg_neighbors(train) == mean_in_degree(train) != mean_in_degree([*train, test])


def test_edgeless_training_set_is_floored():
    edgeless = [build_graph(crystals.simple_cubic(3.0), "distance", **GRAPH)]
    assert fit_avg_neighbors(edgeless) == MIN_AVG_NEIGHBORS
    with pytest.raises(ValueError, match="no training atoms"):
        mean_in_degree([])


def test_fitted_hparams_only_where_the_architecture_has_it():
    graphs = [build_graph(crystals.rocksalt(), "lattice", **GRAPH)]
    fitted = fitted_hparams("nequip", {"avg_neighbors": 16.0, "num_layers": 2}, graphs)
    assert fitted["avg_neighbors"] == pytest.approx(mean_in_degree(graphs)) and fitted["num_layers"] == 2
    assert fitted_hparams("nequip", {"avg_neighbors": 16.0}, graphs, fixed={"avg_neighbors": 16.0}) == \
        {"avg_neighbors": 16.0}
    assert fitted_hparams("schnet", {"hidden": 8}, graphs) == {"hidden": 8}
