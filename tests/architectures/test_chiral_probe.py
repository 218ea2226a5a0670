"""chiral_probe: the shared battery, plus the one property no other model has: an output term
that changes sign under a mirror."""
from __future__ import annotations

import numpy as np
import torch

import architectures
from bench.testing import predict_structures, random_rotation, rotate
from tasks import get_task
from tests import crystals
from tests.architectures.mixin import ArchitectureTests, distorted_pair

SMALL = {"scalars": 8, "pseudoscalars": 4, "vectors": 4, "num_layers": 3, "radial_hidden": 8, "fc_hidden": 8}
GRAPH = {"cutoff": 8.0, "max_neighbors": 12}


class TestChiralProbe(ArchitectureTests):
    architecture = "chiral_probe"
    hparams = SMALL


def make() -> torch.nn.Module:
    torch.manual_seed(0)
    return architectures.create("chiral_probe", **SMALL).double().eval()


def even_and_odd(model, structures) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs of each structure and of its mirror image (improper rotation)."""
    rng = np.random.default_rng(4)
    mirrored = [rotate(s, random_rotation(rng, proper=False)) for s in structures]
    out = predict_structures(model, structures, "multi_edge", **GRAPH)
    out_m = predict_structures(model, mirrored, "multi_edge", **GRAPH)
    return (out + out_m) / 2, (out - out_m) / 2


def test_mirror_flips_only_the_odd_term():
    model = make()
    data = get_task("probe_chirality").load()
    helices = [data.structures[k] for k in (0, 2, 4)]  # right-handed members of three pairs
    even, odd = even_and_odd(model, helices)
    assert (odd.abs() > 1e-9).all()  # a chiral crystal: the pseudoscalar readout is nonzero
    # the left-handed partner in the same cell is the mirror image: its output is even - odd
    lefts = predict_structures(model, [data.structures[k] for k in (1, 3, 5)], "multi_edge", **GRAPH)
    torch.testing.assert_close(lefts, even - odd, atol=1e-9, rtol=1e-7)


def test_achiral_crystals_have_no_odd_part():
    model = make()
    _, odd = even_and_odd(model, [crystals.rocksalt(), crystals.fcc(), crystals.hcp()])
    torch.testing.assert_close(odd, torch.zeros_like(odd), atol=1e-9, rtol=0)


def test_odd_part_exists_for_a_generic_crystal():
    # a triclinic two-atom crystal with 8 Å edges has non-coplanar bonds: chiral in general
    _, odd = even_and_odd(make(), [distorted_pair()])
    assert odd.abs().max() > 1e-9
