"""PaiNN: the equivariant battery, equality with schnetpack's PaiNN, and known answers."""
from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from bench.graphs import build_graph, edge_vectors
from bench.testing import graph_float64, predict_structures
from tests import crystals
from tests.architectures.equivariant_mixin import EquivariantArchitectureTests
from tests.architectures.mixin import GRAPH, distorted_pair

HIDDEN = 8


class TestPaiNN(EquivariantArchitectureTests):
    architecture = "painn"
    hparams = {"hidden": HIDDEN, "num_layers": 2, "num_rbf": 8}
    required_ls = (0, 1)  # scalars (0e) and vectors (1o) only, by design


def exact_batch(structures, variant: str = "multi_edge") -> Batch:
    """A float64 batch whose positions and cells are the structures' own (not float32-rounded)."""
    return Batch.from_data_list([graph_float64(s, variant, structure_id=f"t{i}", **GRAPH) for i, s in enumerate(structures)])


def _layers(model, structure, variant):
    return model.node_features(exact_batch([structure], variant))


# ---------------------------------------------------------------- schnetpack reference

def import_schnetpack():
    """schnetpack's PaiNN modules, or skip when schnetpack is not installed.

    ``import schnetpack`` runs its package ``__init__``, which imports its data loader, and
    schnetpack 2.1.1's loader imports ``T_co`` from torch's dataloader, which torch 2.13 no
    longer has. PaiNN itself needs only ``schnetpack.nn`` and ``schnetpack.properties``, so
    the package is registered without running its ``__init__`` and those modules load as
    usual from the installed files (nothing is modified).
    """
    spec = importlib.util.find_spec("schnetpack")
    if spec is None:
        pytest.skip("schnetpack is not installed (pip install --no-deps schnetpack==2.1.1)")
    if "schnetpack" not in sys.modules:
        package = types.ModuleType("schnetpack")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["schnetpack"] = package
    from schnetpack import properties
    from schnetpack.atomistic import Atomwise
    from schnetpack.nn import BesselRBF, CosineCutoff
    from schnetpack.representation.painn import PaiNN

    return types.SimpleNamespace(PaiNN=PaiNN, Atomwise=Atomwise, BesselRBF=BesselRBF, CosineCutoff=CosineCutoff,
                                 properties=properties)


def copy_linear(dst: torch.nn.Linear, src: torch.nn.Linear) -> None:
    dst.weight.copy_(src.weight)
    if src.bias is not None:
        dst.bias.copy_(src.bias)


def schnetpack_twin(ours, spk, num_rbf: int, shared: bool):
    """schnetpack's PaiNN + Atomwise(avg) carrying exactly our weights (float64)."""
    cutoff = ours.cutoff
    rep = spk.PaiNN(n_atom_basis=ours.hidden, n_interactions=ours.num_layers,
                    radial_basis=spk.BesselRBF(num_rbf, cutoff), cutoff_fn=spk.CosineCutoff(cutoff),
                    shared_filters=shared, shared_interactions=shared).double()
    head = spk.Atomwise(n_in=ours.hidden, n_out=1, aggregation_mode="avg").double()
    with torch.no_grad():
        rep.radial_basis.freqs.copy_(ours.rbf.freq)  # the same n pi / r_c, not re-rounded
        rep.embedding.weight.copy_(ours.embedding.weight[: rep.embedding.num_embeddings])
        copy_linear(rep.filter_net, ours.filter_net)
        for theirs, mine in zip(rep.interactions, ours.interactions):
            copy_linear(theirs.interatomic_context_net[0], mine.context[0])
            copy_linear(theirs.interatomic_context_net[1], mine.context[2])
        for theirs, mine in zip(rep.mixing, ours.mixing):
            copy_linear(theirs.intraatomic_context_net[0], mine.context[0])
            copy_linear(theirs.intraatomic_context_net[1], mine.context[2])
            copy_linear(theirs.mu_channel_mix, mine.mix)
        copy_linear(head.outnet[0], ours.readout[0])
        copy_linear(head.outnet[1], ours.readout[2])
    return rep, head


def schnetpack_inputs(batch: Batch, spk) -> dict[str, torch.Tensor]:
    """Our graph as schnetpack's inputs: _Rij points from the centre atom i (our dst) to the
    neighbour j's image (our src), which is exactly ``edge_vectors``."""
    p = spk.properties
    src, dst = batch.edge_index
    return {p.Z: batch.z, p.Rij: edge_vectors(batch), p.idx_i: dst, p.idx_j: src,
            p.idx_m: batch.batch, p.n_atoms: torch.bincount(batch.batch).to(torch.float64)}


@pytest.fixture(scope="module")
def jdft2d_structure() -> Structure:
    import tasks

    return tasks.get_task("matbench_jdft2d").load().structures[0]


@pytest.mark.parametrize("shared", [False, True])
def test_equals_schnetpack_painn_on_real_crystals(shared, jdft2d_structure):
    spk = import_schnetpack()
    torch.manual_seed(3)
    import architectures

    num_rbf = 20
    ours = architectures.create("painn", hidden=16, num_layers=3, num_rbf=num_rbf, cutoff=5.0,
                                shared_filters=shared, shared_interactions=shared).double().eval()
    with torch.no_grad():  # random biases too: a zero-initialised bias would hide a missed copy
        for p in ours.parameters():
            p.add_(0.1 * torch.randn_like(p))
    rep, head = schnetpack_twin(ours, spk, num_rbf, shared)
    batch = exact_batch([crystals.rocksalt(), distorted_pair(), jdft2d_structure], "multi_edge")
    assert int(batch.edge_type.sum()) == 0  # neighbour edges only: schnetpack's filter applies to all
    inputs = rep(schnetpack_inputs(batch, spk))
    s, v, _ = ours.representation(batch)
    torch.testing.assert_close(s, inputs["scalar_representation"], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(v, inputs["vector_representation"], atol=1e-10, rtol=1e-10)
    assert v.abs().max() > 1e-3  # the distorted cells have non-zero vectors: they were compared
    expected = head(inputs)["y"].unsqueeze(-1)
    torch.testing.assert_close(ours(batch), expected, atol=1e-10, rtol=1e-10)


# ---------------------------------------------------------------- known answers

def test_presets_and_defaults():
    import architectures
    from architectures.registry import MATCHED_PARAMS, MATCHED_TOLERANCE

    paper = architectures.create("painn", preset="paper")
    assert (paper.hidden, paper.num_layers, paper.rbf.freq.numel(), paper.cutoff) == (128, 3, 20, 5.0)
    matched = architectures.count_parameters(architectures.create("painn", preset="matched"))
    assert abs(matched - MATCHED_PARAMS) <= MATCHED_TOLERANCE * MATCHED_PARAMS
    assert architectures.count_parameters(architectures.create("painn")) == matched


def test_radial_basis_and_filter_known_values():
    model = TestPaiNN().make()
    r = torch.tensor([1.0, 2.5], dtype=torch.float64)
    n = torch.arange(1, 9, dtype=torch.float64)
    expected = torch.sin(n * torch.pi * r[:, None] / 5.0) / r[:, None]
    torch.testing.assert_close(model.rbf(r), expected, atol=1e-5, rtol=1e-5)  # freq was built in float32
    # neighbour filter = (W rbf(d) + b) * 0.5 (cos(pi d / r_c) + 1), one [E, 3F] slice per block
    batch = exact_batch([distorted_pair()], "multi_edge")
    d = edge_vectors(batch).norm(dim=-1)
    assert d.numel() > 0
    envelope = 0.5 * (torch.cos(torch.pi * d / 5.0) + 1.0)
    full = (model.rbf(d) @ model.filter_net.weight.T + model.filter_net.bias) * envelope[:, None]
    filters, unit = model.edge_filters(batch)
    torch.testing.assert_close(torch.cat(filters, dim=-1), full, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(unit, edge_vectors(batch) / d[:, None], atol=1e-12, rtol=1e-12)


def test_inversion_flips_vectors_and_keeps_scalars():
    model = TestPaiNN().make()
    s = distorted_pair()
    inverted = Structure(Lattice(-s.lattice.matrix), s.species, -s.cart_coords, coords_are_cartesian=True)
    for (name, _, f), (_, _, g) in zip(_layers(model, s, "lattice"), _layers(model, inverted, "lattice")):
        torch.testing.assert_close(g[:, :HIDDEN], f[:, :HIDDEN], atol=1e-10, rtol=1e-8, msg=name)
        torch.testing.assert_close(g[:, HIDDEN:], -f[:, HIDDEN:], atol=1e-10, rtol=1e-8, msg=name)
    assert f[:, HIDDEN:].abs().max() > 1e-3  # the vectors are not trivially zero


def test_edgeless_graph_keeps_zero_vectors_and_finite_gradients():
    model = TestPaiNN().make(double=False).train()
    batch = Batch.from_data_list([build_graph(crystals.simple_cubic(3.0), "distance", **GRAPH)])
    layers = model.node_features(batch)
    assert len(layers) == 1 + 2 * 2  # embedding + (interaction, mixing) per layer
    for _, _, f in layers:
        assert torch.equal(f[:, HIDDEN:], torch.zeros_like(f[:, HIDDEN:]))
    model(batch).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_lattice_loops_beyond_cutoff_are_seen():
    # A layer crystal whose c axis (vacuum) is longer than the cutoff: only lattice loops
    # reach across it, so `lattice` sees the vacuum length and `multi_edge` does not.
    def slab(c: float) -> Structure:
        return Structure(Lattice.hexagonal(3.2, c), ["Mo", "S"], [[0, 0, 0.5], [1 / 3, 2 / 3, 0.5 + 1.5 / c]])

    model = TestPaiNN().make()
    thick, thicker = slab(15.0), slab(20.0)
    assert float(build_graph(thick, "lattice", **GRAPH).edge_type.sum()) > 0
    with torch.no_grad():
        diff = {v: float((predict_structures(model, [thick], v, **GRAPH)
                          - predict_structures(model, [thicker], v, **GRAPH)).abs().max()) for v in ("multi_edge", "lattice")}
    assert diff["multi_edge"] < 1e-12
    assert diff["lattice"] > 1e-6


def test_features_use_e3nn_mul_major_layout():
    # A rotation by 90 degrees about z maps (x, y, z) -> (-y, x, z) for every channel's triple.
    model = TestPaiNN().make()
    s = distorted_pair()
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rotated = Structure(Lattice(s.lattice.matrix @ rot.T), s.species, s.cart_coords @ rot.T, coords_are_cartesian=True)
    f = _layers(model, s, "multi_edge")[-1][2][:, HIDDEN:].reshape(-1, HIDDEN, 3)
    g = _layers(model, rotated, "multi_edge")[-1][2][:, HIDDEN:].reshape(-1, HIDDEN, 3)
    torch.testing.assert_close(g, torch.stack([-f[..., 1], f[..., 0], f[..., 2]], dim=-1), atol=1e-10, rtol=1e-8)


def test_vectors_vanish_at_inversion_centres():
    # An equivariant polar vector at a site with inversion symmetry must be zero: every
    # atom of rocksalt and fcc is one (the lattice loops come in +-pairs too).
    model = TestPaiNN().make()
    for structure in (crystals.rocksalt(), crystals.fcc()):
        for name, _, f in _layers(model, structure, "lattice"):
            assert f[:, HIDDEN:].abs().max() < 1e-10, name
    # ... whereas a low-symmetry crystal has non-zero vectors after the first interaction
    assert _layers(model, distorted_pair(), "lattice")[1][2][:, HIDDEN:].abs().max() > 1e-3


def test_shared_interactions_share_parameters():
    import architectures

    unshared = architectures.count_parameters(architectures.create("painn", hidden=8, num_layers=3))
    shared = architectures.create("painn", hidden=8, num_layers=3, shared_interactions=True)
    assert shared.interactions[0] is shared.interactions[2]
    assert architectures.count_parameters(shared) < unshared
