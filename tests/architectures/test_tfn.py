import torch
from e3nn import o3

from architectures.tfn import NormNonlinearity
from tests.architectures.equivariant_mixin import EquivariantArchitectureTests

SMALL = {"scalars": 8, "vectors": 4, "tensors": 2, "num_layers": 2, "num_basis": 6, "radial_hidden": 8,
         "fc_hidden": 8}


class TestTFN(EquivariantArchitectureTests):
    architecture = "tfn"
    hparams = SMALL


def test_norm_nonlinearity_known_values():
    act = NormNonlinearity(o3.Irreps("1x0e+1x1o"), eps=0.0)
    with torch.no_grad():
        act.bias.fill_(-5.0)
    x = torch.tensor([[-1.0, 3.0, 0.0, 4.0]], dtype=torch.float64)  # |V| = 5
    out = act.double()(x)
    expected = torch.tensor([[torch.nn.functional.silu(torch.tensor(-1.0)).item(), 1.5, 0.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(out, expected)  # sigmoid(5 - 5) = 1/2


def test_norm_nonlinearity_is_smooth_at_zero():
    act = NormNonlinearity(o3.Irreps("2x0e+2x1o+1x2e"))
    x = torch.zeros(3, act.irreps.dim, requires_grad=True)
    act(x).sum().backward()
    assert torch.isfinite(x.grad).all()
