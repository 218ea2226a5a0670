"""The battery every architecture gets by subclassing :class:`ArchitectureTests`.

A subclass sets ``architecture`` (a registered name) and optionally ``hparams``
(small sizes keep the tests fast); everything else is inherited, as NequIP's
``BasicModelTestsMixin`` does.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

import architectures
from bench.graphs import build_graph
from bench.testing import (
    assert_invariant,
    output_difference,
    permute,
    predict_structures,
    random_rotation,
    rotate,
    shear_basis,
    supercell,
    translate,
)
from tests import crystals

VARIANTS = ["distance", "multi_edge", "lattice"]
#: Variants whose graphs are the same crystal's whatever the cell: supercell/shear invariant.
CELL_INVARIANT_VARIANTS = ["multi_edge", "lattice"]
GRAPH = {"cutoff": 5.0, "max_neighbors": 12}


def distorted_pair():
    """Two different atoms in a low-symmetry cell (no accidental invariances)."""
    from pymatgen.core import Lattice, Structure

    lattice = Lattice.from_parameters(3.9, 4.3, 4.7, 79, 96, 107)
    return Structure(lattice, ["Na", "Cl"], [[0.05, 0.1, 0.0], [0.55, 0.43, 0.61]])


class ArchitectureTests:
    architecture: str = ""
    hparams: dict = {}

    def make(self, out_dim: int = 1, seed: int = 0, double: bool = True) -> torch.nn.Module:
        torch.manual_seed(seed)
        model = architectures.create(self.architecture, out_dim=out_dim, **{"cutoff": GRAPH["cutoff"], **self.hparams})
        return (model.double() if double else model).eval()

    @pytest.mark.parametrize("out_dim", [1, 3])
    def test_output_shape(self, out_dim):
        model = self.make(out_dim)
        out = predict_structures(model, [crystals.rocksalt(), distorted_pair(), crystals.hcp()], "multi_edge", **GRAPH)
        assert out.shape == (3, out_dim)
        assert torch.isfinite(out).all()

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_rotation_translation_permutation_invariance(self, variant):
        model = self.make()
        rng = np.random.default_rng(1)
        s = distorted_pair()
        assert_invariant(model, s, lambda x: rotate(x, random_rotation(rng)), variant, **GRAPH)
        assert_invariant(model, s, lambda x: translate(x, rng.normal(size=3)), variant, **GRAPH)
        assert_invariant(model, crystals.hcp(), lambda x: permute(x, np.array([1, 0])), variant, **GRAPH)

    @pytest.mark.parametrize("variant", CELL_INVARIANT_VARIANTS)
    def test_supercell_and_shear_invariance(self, variant):
        model = self.make()
        for s in (distorted_pair(), crystals.rocksalt()):
            assert_invariant(model, s, supercell, variant, **GRAPH)
            assert_invariant(model, s, shear_basis, variant, **GRAPH)

    def test_distance_variant_breaks_under_supercell(self):
        # `distance` keeps one minimum-image edge per pair and no self-images, so the
        # one-atom cell is edgeless while its 2x1x1 supercell is not: the ablation's point.
        model = self.make()
        assert output_difference(model, crystals.simple_cubic(3.0), supercell, "distance", **GRAPH) > 1e-6

    def test_one_optimisation_step_lowers_loss(self):
        model = self.make(double=False).train()
        batch = Batch.from_data_list([build_graph(s, "lattice", **GRAPH) for s in
                                      (crystals.rocksalt(), distorted_pair(), crystals.hcp(), crystals.bcc())])
        target = torch.tensor([[0.5], [-1.0], [1.5], [0.0]])
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        losses = []
        for _ in range(2):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(batch), target)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[1] < losses[0]

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_one_atom_cell_forward_backward(self, variant):
        model = self.make(double=False).train()
        graphs = [build_graph(crystals.simple_cubic(3.0), variant, **GRAPH),
                  build_graph(crystals.fcc(), variant, **GRAPH)]
        if variant == "distance":
            assert graphs[0].edge_index.shape[1] == 0  # edgeless by design
        out = model(Batch.from_data_list(graphs))
        out.sum().backward()
        assert torch.isfinite(out).all()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    def test_forward_backward_on_every_registered_variant(self):
        # the controls and further encodings (multi_edge_noself, distance_lattice,
        # multi_edge_degree, voronoi with edge_weight, ...) run through every architecture
        from bench.graphs import VARIANTS

        model = self.make(double=False).train()
        for variant in VARIANTS:
            graphs = [build_graph(s, variant, **GRAPH) for s in (crystals.rocksalt(), distorted_pair())]
            out = model(Batch.from_data_list(graphs))
            out.sum().backward()
            assert out.shape == (2, 1) and torch.isfinite(out).all(), variant

    def test_single_edgeless_graph(self):
        model = self.make(double=False).train()
        out = model(Batch.from_data_list([build_graph(crystals.simple_cubic(3.0), "distance", **GRAPH)]))
        assert out.shape == (1, 1) and torch.isfinite(out).all()

    def test_hundred_atom_cell_forward_backward(self):
        model = self.make(double=False).train()
        big = crystals.hcp() * (5, 5, 2)
        assert len(big) == 100
        out = model(Batch.from_data_list([build_graph(big, "multi_edge", **GRAPH), build_graph(crystals.hcp(), "multi_edge", **GRAPH)]))
        out.sum().backward()
        assert out.shape == (2, 1) and torch.isfinite(out).all()

    def test_float32_and_float64_agree(self):
        s = distorted_pair()
        model64 = self.make()
        out64 = predict_structures(model64, [s], "lattice", **GRAPH)
        out32 = predict_structures(model64.float(), [s], "lattice", dtype=torch.float32, **GRAPH)
        torch.testing.assert_close(out32.double(), out64, atol=1e-4, rtol=1e-4)

    def test_registered_with_search_space(self):
        spec = architectures.REGISTRY.get(self.architecture)
        assert spec.search_space, "every architecture registers an Optuna search space"
        assert set(spec.search_space) <= set(spec.defaults)
        with pytest.raises(ValueError, match="no hyperparameter"):
            architectures.create(self.architecture, not_a_real_option=1)
