"""Extra battery for equivariant and hybrid architectures (on top of :class:`ArchitectureTests`).

The model exposes ``node_features(batch)``: every internal layer's node features with
their e3nn irreps. Rotating the input (proper and, for parity-aware irreps, improper
rotations) must rotate every layer's output by e3nn's Wigner-D matrices; everything
runs in float64 so a real bug cannot hide in float32 noise.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench.testing import assert_equivariant, random_rotation
from tests import crystals
from tests.architectures.mixin import GRAPH, VARIANTS, ArchitectureTests, distorted_pair


class EquivariantArchitectureTests(ArchitectureTests):
    #: False only for a model whose irreps ignore parity (then improper rotations are not tested).
    parity_aware: bool = True
    #: Irreps orders l that some internal layer must carry (the issue asks for l = 0, 1, 2).
    required_ls: tuple[int, ...] = (0, 1, 2)

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_every_layer_equivariant_under_rotation(self, variant):
        model = self.make()
        rng = np.random.default_rng(7)
        for structure in (distorted_pair(), crystals.hcp()):
            assert assert_equivariant(model, structure, variant, random_rotation(rng), **GRAPH) > 1

    @pytest.mark.parametrize("variant", VARIANTS)
    def test_every_layer_equivariant_under_improper_rotation(self, variant):
        if not self.parity_aware:
            pytest.skip(f"{self.architecture}: irreps declared parity-blind")
        model = self.make()
        rng = np.random.default_rng(8)
        assert assert_equivariant(model, distorted_pair(), variant, random_rotation(rng, proper=False), **GRAPH) > 1

    def test_layers_carry_the_required_orders(self):
        layers = self.make().node_features(_batch())
        ls = {ir.l for _, irreps, _ in layers for _, ir in irreps}
        assert set(self.required_ls) <= ls, f"layers carry l in {sorted(ls)}, expected {self.required_ls}"

    def test_equivariance_check_catches_a_broken_layer(self):
        # The helper must fail when a layer's l=1 features are not rotated: perturb the last
        # layer that has an l=1 channel (final layers are often scalar-only) by a fixed
        # direction (not a vector field) and expect an error.
        model = self.make()
        original = model.node_features

        def broken(batch):
            layers = original(batch)
            k = max(i for i, (_, irreps, _) in enumerate(layers) if any(ir.l == 1 for _, ir in irreps))
            name, irreps, f = layers[k]
            start = sum(mul * ir.dim for mul, ir in irreps[: [ir.l for _, ir in irreps].index(1)])
            f = f.clone()
            f[:, start] = f[:, start] + 1.0  # a fixed x-offset does not rotate
            return layers[:k] + [(name, irreps, f)] + layers[k + 1:]

        model.node_features = broken
        with pytest.raises(AssertionError, match="not equivariant"):
            assert_equivariant(model, distorted_pair(), "multi_edge", random_rotation(np.random.default_rng(3)), **GRAPH)


def _batch():
    from torch_geometric.data import Batch

    from bench.testing import graph_float64

    return Batch.from_data_list([graph_float64(distorted_pair(), "lattice", **GRAPH)])
