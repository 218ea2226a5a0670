from tests.architectures.mixin import ArchitectureTests


class TestCGCNN(ArchitectureTests):
    architecture = "cgcnn"
    hparams = {"hidden": 16, "num_layers": 2, "fc_hidden": 16, "num_gaussians": 20}
