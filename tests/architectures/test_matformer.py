import torch
from torch_geometric.data import Batch

import architectures
from architectures.matformer import InverseDistanceBasis
from bench.graphs import build_graph
from bench.testing import to_double
from tests import crystals
from tests.architectures.mixin import GRAPH, ArchitectureTests

SMALL = {"hidden": 16, "heads": 2, "num_layers": 2, "num_rbf": 16, "fc_hidden": 16}


class TestMatformer(ArchitectureTests):
    architecture = "matformer"
    hparams = SMALL


def make(**kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return architectures.create("matformer", **{"cutoff": GRAPH["cutoff"], **SMALL, **kwargs}).double().eval()


def lattice_graph():
    return to_double(build_graph(crystals.hcp(), "lattice", **GRAPH))


def test_inverse_distance_basis_peaks_where_minus_075_over_d_hits_a_centre():
    basis = InverseDistanceBasis(64)  # centres -1.5 + k * 1.5/63; k = 21 is -1.0, reached at d = 0.75 Å
    out = basis(torch.tensor([0.75, 100.0], dtype=torch.float64))
    assert int(out[0].argmax()) == 21 and abs(float(out[0, 21]) - 1.0) < 1e-12
    assert int(out[1].argmax()) == 63  # -0.0075: long edges (e.g. lattice loops) sit by the centre 0
    assert torch.isfinite(out).all()


def test_sigmoid_gated_sum_counts_duplicated_edges():
    # Unlike a softmax, the gated sum sees multiplicity: duplicating every edge doubles each
    # layer's aggregate (so periodic images and lattice loops are counted, not averaged).
    model = make()
    graph = lattice_graph()
    doubled = graph.clone()
    doubled.edge_index = torch.cat([graph.edge_index, graph.edge_index], dim=1)
    doubled.edge_shift = torch.cat([graph.edge_shift, graph.edge_shift])
    doubled.edge_type = torch.cat([graph.edge_type, graph.edge_type])
    layer = model.layers[0]
    seen = []
    handle = layer.out.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    with torch.no_grad():
        model(Batch.from_data_list([graph]))
        model(Batch.from_data_list([doubled]))
    handle.remove()
    torch.testing.assert_close(seen[1], 2 * seen[0])


def test_edgeless_layer_adds_a_constant_and_stays_finite():
    model = make()
    layer = model.layers[0]
    h = torch.randn(3, SMALL["hidden"], dtype=torch.float64)
    empty = torch.zeros(0, dtype=torch.long)
    out = layer(h, torch.zeros(0, SMALL["hidden"], dtype=torch.float64), empty, empty)
    # No incoming edge: zero aggregate, so every atom gets the same update softplus(BN(bias)).
    update = out - h
    assert torch.isfinite(out).all()
    torch.testing.assert_close(update, update[:1].expand_as(update))


def test_lattice_loops_are_distinguishable_from_neighbour_edges():
    model = make()
    graph = lattice_graph()
    assert (graph.edge_type == 1).sum() == 12 * 2
    relabelled = graph.clone()
    relabelled.edge_type = torch.zeros_like(graph.edge_type)
    outs = [model(Batch.from_data_list([g])) for g in (graph, relabelled)]
    assert (outs[0] - outs[1]).abs().max() > 1e-6


def test_heads_must_divide_hidden():
    try:
        architectures.create("matformer", hidden=30, heads=4)
    except ValueError as err:
        assert "divisible" in str(err)
    else:
        raise AssertionError("hidden=30, heads=4 was accepted")
