from tests.architectures.equivariant_mixin import EquivariantArchitectureTests

SMALL = {"scalars": 8, "vectors": 4, "tensors": 2, "num_layers": 2, "num_basis": 6, "radial_hidden": 8,
         "fc_hidden": 8, "species_dim": 4}


class TestNequIP(EquivariantArchitectureTests):
    architecture = "nequip"
    hparams = SMALL
