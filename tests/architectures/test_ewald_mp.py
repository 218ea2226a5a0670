"""ewald_mp and the Ewald block: the shared battery, the Ewald sum as a known answer, and the
block's own invariances (translation, rotation, basis, supercell) in float64."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.core import Lattice, Structure
from torch import nn
from torch_geometric.data import Batch

from architectures.ewald_block import EwaldBlock, KBasis, reciprocal_space, reciprocal_sum
from bench.testing import graph_float64, random_rotation, rotate, shear_basis, supercell, translate
from tests import crystals
from tests.architectures.mixin import ArchitectureTests, distorted_pair

SMALL = {"hidden": 16, "num_filters": 12, "num_interactions": 2, "num_gaussians": 20, "k_cutoff": 2.5}
COULOMB = 14.399645478425668  # eV Å, e^2 / (4 pi eps0), as pymatgen


class TestEwaldMP(ArchitectureTests):
    architecture = "ewald_mp"
    hparams = SMALL


def test_reciprocal_sum_is_the_ewald_reciprocal_energy():
    s = Structure(Lattice.from_parameters(4.1, 4.6, 5.2, 82, 97, 104), ["Na", "Cl", "Na", "Cl"],
                  [[0.05, 0.1, 0.0], [0.55, 0.43, 0.61], [0.3, 0.8, 0.4], [0.8, 0.2, 0.9]])
    s.add_oxidation_state_by_element({"Na": 1, "Cl": -1})
    eta = 0.35  # 1/Å^2
    reference = EwaldSummation(s, eta=eta, recip_space_cut=12.0).reciprocal_space_energy
    data = graph_float64(s, "multi_edge", cutoff=5.0, max_neighbors=12)
    recip = reciprocal_space(data, k_cutoff=12.0)
    charges = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]], dtype=torch.float64)
    filt = (4 * np.pi / recip.norm**2 * torch.exp(-recip.norm**2 / (4 * eta))).unsqueeze(-1)
    energy = 0.5 * float((charges * reciprocal_sum(charges, recip, filt)).sum()) * COULOMB
    assert energy == pytest.approx(reference, rel=1e-8)


def block_output(structure, seed: int = 0) -> torch.Tensor:
    """Per-atom Ewald update of features that depend only on the element (so they repeat in supercells)."""
    torch.manual_seed(seed)
    hidden = 8
    embed = nn.Embedding(119, hidden).double()
    basis = KBasis(2.5, 6, 1.0).double()
    block = EwaldBlock(hidden, nn.Linear(7, 4, bias=False).double()).double()
    data = Batch.from_data_list([graph_float64(structure, "multi_edge", cutoff=5.0, max_neighbors=12)])
    recip = reciprocal_space(data, 2.5)
    assert recip.norm.numel() > 0
    return block(embed(data.z), recip, basis(recip.norm))


def test_block_invariances():
    s = distorted_pair()
    ref = block_output(s)
    rng = np.random.default_rng(3)
    torch.testing.assert_close(block_output(translate(s, rng.normal(size=3))), ref, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(block_output(rotate(s, random_rotation(rng))), ref, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(block_output(rotate(s, random_rotation(rng, proper=False))), ref, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(block_output(shear_basis(s)), ref, atol=1e-10, rtol=1e-9)
    big = block_output(supercell(s, (2, 1, 3)))  # atoms of the supercell: each original atom 6 times, in order
    torch.testing.assert_close(big, ref.repeat_interleave(6, dim=0), atol=1e-10, rtol=1e-9)


def test_block_sees_beyond_the_cutoff():
    # two neutral-looking layers 12 Å apart or 16 Å apart: identical 5 Å graphs, different updates
    def slabs(gap: float) -> Structure:
        return Structure(Lattice.tetragonal(3.0, 2 * gap), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])

    a, b = block_output(slabs(12.0)), block_output(slabs(16.0))
    assert (a - b).abs().max() > 1e-4


def test_small_cell_has_no_k_and_gives_a_constant_update():
    data = Batch.from_data_list([graph_float64(crystals.fcc(3.6), "multi_edge", cutoff=5.0, max_neighbors=12)])
    assert reciprocal_space(data, 1.0).norm.numel() == 0  # |k| >= 2 pi sqrt(3) / 3.6 > 1
