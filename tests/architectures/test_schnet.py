import math

import torch
from torch_geometric.data import Batch, Data

import architectures
from architectures.common import cosine_cutoff
from architectures.schnet import ShiftedSoftplus
from bench.graphs import build_graph
from bench.testing import to_double
from tests import crystals
from tests.architectures.mixin import GRAPH, ArchitectureTests

SMALL = {"hidden": 16, "num_interactions": 2, "num_gaussians": 20}


class TestSchNet(ArchitectureTests):
    architecture = "schnet"
    hparams = SMALL


def make(**kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return architectures.create("schnet", **{"cutoff": GRAPH["cutoff"], **SMALL, **kwargs}).double().eval()


def pair_graph(dist: float, with_edges: bool = True) -> Data:
    """Two atoms (Na, Cl) `dist` Å apart on x in a 20 Å cube, joined both ways (or edgeless)."""
    index = [[0, 1], [1, 0]] if with_edges else [[], []]
    num_edges = len(index[0])
    return Data(z=torch.tensor([11, 17]), pos=torch.tensor([[0.0, 0.0, 0.0], [dist, 0.0, 0.0]], dtype=torch.float64),
                cell=20.0 * torch.eye(3, dtype=torch.float64).unsqueeze(0),
                edge_index=torch.tensor(index, dtype=torch.long).reshape(2, num_edges),
                edge_shift=torch.zeros(num_edges, 3, dtype=torch.long),
                edge_type=torch.zeros(num_edges, dtype=torch.long), num_nodes=2)


def test_shifted_softplus_and_envelope_known_values():
    assert float(ShiftedSoftplus()(torch.zeros(1))) == 0.0
    d = torch.tensor([0.0, 2.5, 5.0, 7.0], dtype=torch.float64)
    torch.testing.assert_close(cosine_cutoff(d, 5.0), torch.tensor([1.0, 0.5, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(cosine_cutoff(torch.tensor([1.0], dtype=torch.float64), 4.0),
                               torch.tensor([0.5 * (math.cos(math.pi / 4) + 1)], dtype=torch.float64))


def test_edge_at_the_cutoff_contributes_nothing():
    # The envelope (and its slope) vanish at the cutoff: an edge appearing there is a smooth event.
    model = make()
    edgeless = model(Batch.from_data_list([pair_graph(GRAPH["cutoff"] - 1e-5, with_edges=False)]))
    near_cut = model(Batch.from_data_list([pair_graph(GRAPH["cutoff"] - 1e-5)]))
    inside = model(Batch.from_data_list([pair_graph(GRAPH["cutoff"] - 1.0)]))
    torch.testing.assert_close(near_cut, edgeless, atol=1e-9, rtol=0)
    assert (inside - edgeless).abs().max() > 1e-6


def test_edgeless_graph_is_atomwise_readout_of_embeddings():
    model = make()
    out = model(Batch.from_data_list([pair_graph(2.0, with_edges=False)]))
    # No neighbours: each block adds only its update of a zero convolution, f2out(0).
    h = model.embed(torch.tensor([11, 17]))
    for block in model.interactions:
        h = h + block.f2out(torch.zeros_like(h))
    expected = model.atomwise(h).mean(dim=0, keepdim=True)
    torch.testing.assert_close(out, expected)


def test_lattice_loops_are_distinguishable_from_neighbour_edges():
    model = make()
    graph = build_graph(crystals.hcp(), "lattice", **GRAPH)
    assert (graph.edge_type == 1).sum() == 12 * 2
    relabelled = graph.clone()
    relabelled.edge_type = torch.zeros_like(graph.edge_type)
    outs = [model(Batch.from_data_list([to_double(g)])) for g in (graph, relabelled)]
    assert (outs[0] - outs[1]).abs().max() > 1e-6
