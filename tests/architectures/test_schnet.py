import math

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn.models import SchNet as PygSchNet

import architectures
from architectures.common import cosine_cutoff
from architectures.schnet import GaussianSmearing, ShiftedSoftplus
from bench.graphs import build_graph
from bench.testing import graph_float64, to_double
from tests import crystals
from tests.architectures.mixin import GRAPH, ArchitectureTests, distorted_pair

SMALL = {"hidden": 16, "num_filters": 12, "num_interactions": 2, "num_gaussians": 20}


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
    # No neighbours: each block adds only its update of a zero convolution, lin(ssp(lin2(0))).
    h = model.embedding(torch.tensor([11, 17]))
    for block in model.interactions:
        h = h + block.lin(block.act(block.lin2(torch.zeros(2, SMALL["num_filters"], dtype=torch.float64))))
    expected = model.lin2(model.act(model.lin1(h))).mean(dim=0, keepdim=True)
    torch.testing.assert_close(out, expected)


def test_lattice_loops_are_distinguishable_from_neighbour_edges():
    model = make()
    graph = build_graph(crystals.hcp(), "lattice", **GRAPH)
    assert (graph.edge_type == 1).sum() == 18 * 2
    relabelled = graph.clone()
    relabelled.edge_type = torch.zeros_like(graph.edge_type)
    outs = [model(Batch.from_data_list([to_double(g)])) for g in (graph, relabelled)]
    assert (outs[0] - outs[1]).abs().max() > 1e-6


def pyg_reference(model, edge_index: torch.Tensor, dist: torch.Tensor) -> PygSchNet:
    """torch_geometric's SchNet (readout='mean') with ``model``'s weights, fed our edges.

    ``interaction_graph`` replaces PyG's radius graph by the suite's periodic edges and
    their lengths (row 0 sender, row 1 receiver: PyG's source-to-target flow).
    """
    first = model.interactions[0]
    ref = PygSchNet(hidden_channels=model.embedding.embedding_dim, num_filters=first.lin1.out_features,
                    num_interactions=len(model.interactions), num_gaussians=model.distance_expansion.offset.numel(),
                    cutoff=model.cutoff, interaction_graph=lambda pos, batch: (edge_index, dist),
                    readout="mean").double()
    with torch.no_grad():
        ref.embedding.weight.copy_(model.embedding.weight[:100])
        for ours, theirs in zip(model.interactions, ref.interactions):
            # Our filter network's first Linear has one more input, the lattice-loop
            # indicator, which is 0 on every neighbour edge: PyG gets the other columns.
            theirs.mlp[0].weight.copy_(ours.mlp[0].weight[:, :-1])
            theirs.mlp[0].bias.copy_(ours.mlp[0].bias)
            theirs.mlp[2].load_state_dict(ours.mlp[2].state_dict())
            theirs.conv.lin1.load_state_dict(ours.lin1.state_dict())
            theirs.conv.lin2.load_state_dict(ours.lin2.state_dict())
            theirs.lin.load_state_dict(ours.lin.state_dict())
        ref.lin1.load_state_dict(model.lin1.state_dict())
        ref.lin2.load_state_dict(model.lin2.state_dict())
    # PyG stores ln 2 rounded to float32 (torch.log(torch.tensor(2.0)).item()), a constant
    # 2e-9 offset of every shifted softplus; give it the float64 value so that the
    # comparison can be exact.
    for act in (m for m in ref.modules() if type(m).__name__ == "ShiftedSoftplus"):
        act.shift = math.log(2.0)
    return ref.eval()


@pytest.mark.parametrize("variant", ["distance", "multi_edge"])
@pytest.mark.parametrize("model_cutoff", [GRAPH["cutoff"], 6.5])
def test_equals_pyg_schnet_with_identical_weights_on_real_crystals(variant, model_cutoff):
    model = make(cutoff=model_cutoff)
    structures = [crystals.rocksalt(), distorted_pair(), crystals.hcp(), crystals.skewed_triclinic(), crystals.fcc()]
    batch = Batch.from_data_list([graph_float64(s, variant, **GRAPH) for s in structures])
    assert bool((batch.edge_type == 0).all())
    _, dist = architectures.common.edge_lengths(batch)
    ref = pyg_reference(model, batch.edge_index, dist)
    with torch.no_grad():
        expected = ref(batch.z, batch.pos, batch.batch)
        torch.testing.assert_close(model(batch), expected, rtol=1e-12, atol=1e-12)


def test_gaussians_have_pygs_width():
    # PyG: exp(-0.5 (d - mu)^2 / Δ^2): one spacing from a centre gives exp(-1/2).
    basis = GaussianSmearing(0.0, 10.0, 51)  # Δ = 0.2 Å
    out = basis(torch.tensor([3.0, 3.2], dtype=torch.float64))
    k = 15  # centre 3.0 Å
    assert abs(float(out[0, k]) - 1.0) < 1e-12
    assert abs(float(out[1, k]) - math.exp(-0.5)) < 1e-5  # float32 centres


def test_presets():
    paper = architectures.create("schnet", preset="paper")
    block = paper.interactions[0]
    assert (paper.embedding.embedding_dim, block.lin1.out_features, len(paper.interactions),
            paper.distance_expansion.offset.numel(), paper.cutoff) == (128, 128, 6, 50, 10.0)
    budget = architectures.registry.MATCHED_PARAMS
    matched = architectures.count_parameters(architectures.create("schnet", preset="matched"))
    assert abs(matched - budget) <= architectures.registry.MATCHED_TOLERANCE * budget
    assert matched == architectures.count_parameters(architectures.create("schnet"))
