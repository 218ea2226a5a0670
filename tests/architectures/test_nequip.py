"""NequIP: the shared batteries, the reference's mechanisms, and weight-for-weight equality with mir-group/nequip."""
from __future__ import annotations

import warnings

import pytest
import torch
from e3nn import o3
from pymatgen.core import Element
from torch_geometric.data import Batch

import architectures
from architectures.e3nn_blocks import ACTIVATIONS
from architectures.registry import MATCHED_PARAMS, MATCHED_TOLERANCE
from bench.graphs import build_graph
from tests import crystals
from tests.architectures.equivariant_mixin import EquivariantArchitectureTests
from tests.architectures.mixin import GRAPH, distorted_pair

# parity=True exercises odd scalars (tanh) and both-parity irreps.
SMALL = {"scalars": 8, "vectors": 4, "tensors": 2, "lmax": 2, "parity": True, "num_layers": 3, "type_embed_dim": 4,
         "radial_depth": 2, "radial_width": 8}


class TestNequIP(EquivariantArchitectureTests):
    architecture = "nequip"
    hparams = SMALL



def test_last_layer_is_scalar_only_and_first_layer_has_no_self_connection():
    model = architectures.create("nequip", **SMALL)
    assert model.layers[-1].irreps_out == o3.Irreps("8x0e")
    assert model.layers[0].sc is None and all(layer.sc is not None for layer in model.layers[1:])
    assert isinstance(model.layers[1].sc, o3.FullyConnectedTensorProduct)
    assert model.layers[1].sc.irreps_in2 == o3.Irreps("4x0e")  # the species embedding


def test_gates_are_silu_for_even_and_tanh_for_odd_scalars():
    model = architectures.create("nequip", **{**SMALL, "num_layers": 4})
    gate = model.layers[2].gate  # input 0e+1e+1o+2e+2o reaches every kind of scalar
    scalars = gate.act_scalars
    assert [ir for _, ir in scalars.irreps_in] == [o3.Irrep("0e"), o3.Irrep("0o")]
    assert scalars.acts[0].f is ACTIVATIONS[1] and ACTIVATIONS[1] is torch.nn.functional.silu
    assert scalars.acts[1].f is ACTIVATIONS[-1] and ACTIVATIONS[-1] is torch.tanh
    assert all(ir == o3.Irrep("0e") for _, ir in gate.act_gates.irreps_in)  # a 0e path exists -> even gates: SiLU
    assert all(act.f is torch.nn.functional.silu for act in gate.act_gates.acts)


def test_hidden_irreps_keep_only_reachable_entries():
    # From 4x0e, Y^l with l <= 2 reaches 0e, 1o, 2e only (NequIP's tp_path_exists filter).
    model = architectures.create("nequip", **SMALL)
    assert model.layers[0].irreps_out == o3.Irreps("8x0e+4x1o+2x2e")
    assert model.layers[1].irreps_out == o3.Irreps("8x0e+4x1e+4x1o+2x2e+2x2o")  # 0o needs l_in = l with odd product


def test_presets():
    spec = architectures.REGISTRY.get("nequip")
    assert {k: spec.defaults[k] for k in spec.presets["matched"]} == spec.presets["matched"]
    matched = architectures.count_parameters(architectures.create("nequip", preset="matched"))
    assert abs(matched - MATCHED_PARAMS) <= MATCHED_TOLERANCE * MATCHED_PARAMS
    paper = architectures.create("nequip", preset="paper")  # configs/tutorial.yaml
    assert len(paper.layers) == 4 and paper.layers[-1].irreps_out == o3.Irreps("32x0e")
    assert paper.layers[2].irreps_out == o3.Irreps("32x0e+32x0o+32x1e+32x1o")
    assert paper.type_embed.embedding_dim == 32 and len(paper.layers[0].radial.weights) == 3  # depth 2, width 64
    assert paper.layers[0].radial.weights[1].shape == (64, 64)


# ---------------------------------------------------------------- equality with the reference package
REF = {"num_layers": 3, "l_max": 2, "parity": True, "num_features": [8, 4, 2], "type_embed_num_features": 6,
       "radial_mlp_depth": 2, "radial_mlp_width": 8, "num_bessels": 8, "polynomial_cutoff_p": 6, "avg_num_neighbors": 7.5}
OURS = {"scalars": 8, "vectors": 4, "tensors": 2, "lmax": 2, "parity": True, "num_layers": 3, "type_embed_dim": 6,
        "radial_depth": 2, "radial_width": 8, "num_basis": 8, "avg_neighbors": 7.5, "cutoff": GRAPH["cutoff"]}
TYPES = ["Na", "Cl"]


@pytest.fixture
def isolated_global_state():
    """nequip's set_global_state() changes process-wide state (default dtype float64, seeds, environment,
    e3nn and TorchScript settings); restore all of it so that later tests run as if it never happened."""
    import os
    import random

    import e3nn
    import numpy as np

    dtype, rng, np_rng, py_rng = torch.get_default_dtype(), torch.get_rng_state(), np.random.get_state(), random.getstate()
    env, e3nn_defaults = dict(os.environ), e3nn.get_optimization_defaults()
    fusion = torch._C._jit_set_fusion_strategy([("STATIC", 2), ("DYNAMIC", 10)])
    torch._C._jit_set_fusion_strategy(fusion)
    yield
    torch.set_default_dtype(dtype)
    torch.set_rng_state(rng)
    np.random.set_state(np_rng)
    random.setstate(py_rng)
    os.environ.clear()
    os.environ.update(env)
    e3nn.set_optimization_defaults(**e3nn_defaults)
    torch._C._jit_set_fusion_strategy(fusion)


def _reference_model(bessel_trainable: bool):
    nequip_model = pytest.importorskip("nequip.model")
    from nequip.utils.global_state import set_global_state

    set_global_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nequip_model.NequIPGNNModel(
            seed=0, model_dtype="float64", type_names=TYPES, r_max=GRAPH["cutoff"], bessel_trainable=bessel_trainable,
            per_type_energy_scales=1.0, per_type_energy_shifts=0.0, do_derivatives=False, **REF)


def _copy_weights(ref, ours) -> None:
    """Load the reference's weights into ours (same functions; only layouts and scale factors differ)."""
    p = dict(ref.named_parameters())
    b = dict(ref.named_buffers())
    modules = dict(ref.named_modules())
    pre = "model.func."
    with torch.no_grad():
        ours.type_embed.weight.zero_()
        z = [Element(t).Z for t in TYPES]
        ours.type_embed.weight[z] = p[pre + "type_embed.embed_module.weight"]
        ours.edges.basis.roots.copy_(b.get(pre + "bessel_encode.bessel_weights", p.get(pre + "bessel_encode.bessel_weights")).view(-1))
        for k, layer in enumerate(ours.layers):
            conv = f"{pre}layer{k}_convnet.conv."
            assert modules[conv + "linear_2"].irreps_in == layer.linear_2.irreps_in
            assert modules[conv + "linear_2"].irreps_out == layer.linear_2.irreps_out
            layer.linear_1.weight.copy_(p[conv + "linear_1.weight"])
            layer.linear_2.weight.copy_(p[conv + "linear_2.weight"])
            if layer.sc is not None:
                layer.sc.weight.copy_(p[conv + "sc.weight"])
            for i, w in enumerate(layer.radial.weights):
                ref_w = p[f"{conv}edge_mlp.mlp.{2 * i}.weight"] * b[f"{conv}edge_mlp.mlp.{2 * i}.alpha"]
                if i == len(layer.radial.weights) - 1:  # e3nn's layout [path, mul] -> ours [mul, path] per block
                    ref_w = ref_w[:, _column_order(layer.conv)]
                w.zero_()
                w[: ref_w.shape[0]] = ref_w / layer.radial.alphas[i]  # extra rows (lattice loops) see zeros
        readout = pre + "per_atom_energy_readout.mlp_module.mlp.0."
        ours.readout.weight.copy_((p[readout + "weight"] * b[readout + "alpha"]).T)
        ours.readout.bias.zero_()


def _column_order(conv) -> list[int]:
    """For each of our weight columns, the reference (e3nn instruction-order) column it holds."""
    ref_start, k = [], 0
    for _, mul, _, paths in conv.blocks:
        for _ in paths:
            ref_start.append(k)
            k += mul
    order, path = [], 0
    for _, mul, _, paths in conv.blocks:
        order += [ref_start[path + q] + u for u in range(mul) for q in range(len(paths))]
        path += len(paths)
    return order


def _reference_input(data) -> dict:
    return {"pos": data.pos, "edge_index": data.edge_index.flip(0), "edge_cell_shift": data.edge_shift.double(),
            "cell": data.cell, "atom_types": torch.tensor([TYPES.index(Element.from_Z(int(z)).symbol) for z in data.z]),
            "batch": data.batch, "num_atoms": torch.bincount(data.batch)}


@pytest.mark.parametrize("bessel_trainable", [False, True])
def test_equals_the_reference_implementation_weight_for_weight(bessel_trainable, isolated_global_state):
    ref = _reference_model(bessel_trainable).eval()
    torch.manual_seed(0)
    ours = architectures.create("nequip", bessel_trainable=bessel_trainable, **OURS).double().eval()
    _copy_weights(ref, ours)
    structures = [crystals.rocksalt(), distorted_pair()]
    batch = Batch.from_data_list([build_graph(s, "multi_edge", **GRAPH) for s in structures])
    batch.pos, batch.cell = batch.pos.double(), batch.cell.double()
    expected = ref(_reference_input(batch))
    atoms = ours.atom_outputs(batch)
    assert atoms.abs().max() > 1e-3  # a non-trivial comparison
    torch.testing.assert_close(atoms, expected["atomic_energy"], atol=1e-10, rtol=1e-10)
    # ours averages what NequIP sums (intensive targets)
    torch.testing.assert_close(ours(batch) * torch.bincount(batch.batch).unsqueeze(-1).double(),
                               expected["total_energy"].view(-1, 1), atol=1e-10, rtol=1e-10)


def test_reference_comparison_leaves_the_default_dtype_alone():
    assert torch.get_default_dtype() == torch.float32  # runs after the comparison in file order
