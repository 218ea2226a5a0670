from torch_geometric.data import Batch

import architectures
from bench.graphs import build_graph
from tests import crystals
from tests.architectures.equivariant_mixin import EquivariantArchitectureTests
from tests.architectures.mixin import GRAPH

SMALL = {"invariant_hidden": 8, "num_invariant_layers": 2, "scalars": 8, "vectors": 4, "tensors": 2, "num_layers": 2,
         "num_basis": 6, "num_gaussians": 8, "radial_hidden": 8, "fc_hidden": 8, "species_dim": 4}


class TestHIENet(EquivariantArchitectureTests):
    architecture = "hienet"
    hparams = SMALL


def test_invariant_layers_come_first_and_seed_the_scalars():
    model = architectures.create("hienet", cutoff=GRAPH["cutoff"], **SMALL).double()
    batch = Batch.from_data_list([build_graph(crystals.rocksalt(), "lattice", **GRAPH)])
    batch.pos, batch.cell = batch.pos.double(), batch.cell.double()
    layers = model.node_features(batch)
    names = [name for name, _, _ in layers]
    assert names == ["embedding", "invariant1", "invariant2", "equivariant1", "equivariant2"]
    assert all(str(irreps) == "8x0e" for _, irreps, _ in layers[:3])
    assert {ir.l for _, ir in layers[-1][1]} == {0, 1, 2}
    # the first equivariant layer reads the invariant layers' output as its 0e input
    assert model.layers[0].irreps_in == layers[2][1]
    assert architectures.REGISTRY.get("hienet").family == "hybrid"
