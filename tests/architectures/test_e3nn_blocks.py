"""Known-answer tests of the shared e3nn blocks (architectures/e3nn_blocks.py)."""
from __future__ import annotations

import math

import pytest
import torch
from e3nn import o3
from torch.nn import functional as F

from architectures.e3nn_blocks import (
    BesselBasis,
    EdgeConvolution,
    EdgeEmbedding,
    Edges,
    InteractionBlock,
    ScaledMLP,
    feature_irreps,
    gate_for,
    polynomial_envelope,
    reachable,
)


def _random_edges(num_nodes: int, num_edges: int, generator: torch.Generator) -> Edges:
    vec = torch.randn(num_edges, 3, dtype=torch.float64, generator=generator)
    sh = o3.spherical_harmonics([0, 1, 2], vec, normalize=True, normalization="component")
    src = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    dst = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    return Edges(src, dst, sh, None, None, vec.norm(dim=-1), {})


def test_fused_convolution_equals_e3nn_tensor_product():
    # EdgeConvolution is o3.TensorProduct with 'uvu' instructions (NequIP's), summed on receivers, times scale.
    gen = torch.Generator().manual_seed(0)
    irreps = o3.Irreps("5x0e+3x1o+2x2e+2x1e")
    conv = EdgeConvolution(irreps, 2, [o3.Irrep(s) for s in ("0e", "1o", "1e", "2e")], scale=0.25).double()
    edges = _random_edges(7, 40, gen)
    x = torch.randn(7, irreps.dim, dtype=torch.float64, generator=gen)
    weight = torch.randn(40, conv.weight_numel, dtype=torch.float64, generator=gen)
    ours = conv(x, edges, weight)

    # NequIP's construction: instructions in loop order, output irreps sorted with the permutation applied.
    mid, instructions = [], []
    for i, (mul, ir_in) in enumerate(irreps):
        for j, (_, ir_sh) in enumerate(o3.Irreps.spherical_harmonics(2)):
            for ir_out in ir_in * ir_sh:
                if ir_out in conv.irreps_out:
                    instructions.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir_out))
    mid, perm, _ = o3.Irreps(mid).sort()
    instructions = [(i, j, perm[k], mode, train) for i, j, k, mode, train in instructions]
    assert mid == conv.irreps_out
    columns, block_offset = [], 0  # e3nn's columns [paths, mul] per block, in ours [mul, paths]
    for _, mul, _, paths in conv.blocks:
        for q in range(len(paths)):
            columns += [block_offset + u * len(paths) + q for u in range(mul)]
        block_offset += mul * len(paths)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn's Wigner 3j in full precision
    try:
        tp = o3.TensorProduct(irreps, o3.Irreps.spherical_harmonics(2), mid, instructions,
                              shared_weights=False, internal_weights=False)
    finally:
        torch.set_default_dtype(previous)
    messages = tp(x[edges.src], edges.sh, weight[:, columns])
    reference = torch.zeros_like(ours).index_add_(0, edges.dst, messages) * 0.25
    torch.testing.assert_close(ours, reference, atol=1e-12, rtol=1e-12)


def test_convolution_of_edgeless_graph_is_zero():
    irreps = feature_irreps([4, 2, 1], 2)
    conv = EdgeConvolution(irreps, 2, [ir for _, ir in irreps])
    edges = Edges(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0, 9),
                  torch.zeros(0, 4), torch.zeros(0, 1), torch.zeros(0), {})
    out = conv(torch.randn(3, irreps.dim), edges, torch.zeros(0, conv.weight_numel))
    assert out.shape == (3, conv.irreps_out.dim) and torch.equal(out, torch.zeros_like(out))


def test_polynomial_envelope_known_values():
    x = torch.tensor([0.0, 0.5, 1.0, 1.5], dtype=torch.float64)
    env = polynomial_envelope(x, p=6)
    # 1 - 28 x^6 + 48 x^7 - 21 x^8 at x = 1/2
    assert env[0] == 1.0 and env[2] == 0.0 and env[3] == 0.0
    assert math.isclose(env[1].item(), 1 - 28 / 64 + 48 / 128 - 21 / 256, rel_tol=1e-12)
    # smooth at the cutoff: first derivative vanishes from the left
    x = torch.tensor([1.0 - 1e-6], dtype=torch.float64, requires_grad=True)
    polynomial_envelope(x).backward()
    assert abs(x.grad.item()) < 1e-6


def test_bessel_basis_known_values():
    # (2/c) sin(n pi r / c) / r, n = 1..8 (NequIP's and HIENet's normalisation).
    basis = BesselBasis(cutoff=5.0, num_basis=8).double()
    r = torch.tensor([0.7, 2.5, 4.9], dtype=torch.float64)
    n = torch.arange(1, 9, dtype=torch.float64)
    expected = (2 / 5.0) * torch.sin(n * math.pi * r[:, None] / 5.0) / r[:, None]
    torch.testing.assert_close(basis(r), expected, atol=1e-13, rtol=1e-12)
    assert torch.isfinite(basis(torch.zeros(1, dtype=torch.float64))).all()
    assert "roots" in dict(BesselBasis(5.0, 8, trainable=True).named_parameters())
    assert "roots" not in dict(basis.named_parameters())


def test_feature_irreps_follow_nequip_order():
    assert feature_irreps([16, 8, 4], 2) == o3.Irreps("16x0e+8x1o+4x2e")
    assert feature_irreps([16, 8, 4], 1) == o3.Irreps("16x0e+8x1o")
    assert feature_irreps([32, 32], 1, parity=True) == o3.Irreps("32x0e+32x0o+32x1e+32x1o")
    assert feature_irreps([8, 4, 2, 0], 3) == o3.Irreps("8x0e+4x1o+2x2e")
    with pytest.raises(ValueError, match="multiplicity"):
        feature_irreps([8, 4], 2)


def test_reachable_is_tp_path_exists():
    assert reachable(o3.Irreps("4x0e"), 2, o3.Irreps("1x0e+1x0o+1x1e+1x1o+1x2e")) == o3.Irreps("1x0e+1x1o+1x2e")
    assert reachable(o3.Irreps("4x1o"), 1, o3.Irreps("1x0o+1x1e")) == o3.Irreps("1x1e")


def test_scaled_mlp_known_answer():
    # NequIP's ScalarMLPFunction: x @ W0/sqrt(in) -> SiLU -> @ W1 sqrt(2)/sqrt(hidden); no biases.
    torch.manual_seed(0)
    mlp = ScaledMLP([3, 5, 2]).double()
    assert all(w.abs().max() <= math.sqrt(3) for w in mlp.weights)
    x = torch.randn(4, 3, dtype=torch.float64)
    w0, w1 = mlp.weights
    expected = F.silu(x @ w0 / math.sqrt(3)) @ w1 * math.sqrt(2) / math.sqrt(5)
    torch.testing.assert_close(mlp(x), expected)
    assert torch.equal(mlp(torch.zeros(2, 3, dtype=torch.float64)), torch.zeros(2, 2, dtype=torch.float64))


def _second_moment_normalised(f):
    """f / sqrt(E[f(z)^2]), z ~ N(0, 1): e3nn's normalize2mom, by quadrature."""
    z = torch.linspace(-12.0, 12.0, 240001, dtype=torch.float64)
    moment = torch.trapezoid(f(z) ** 2 * torch.exp(-z**2 / 2) / math.sqrt(2 * math.pi), z)
    return lambda x: f(x) / moment.sqrt()


def test_gate_known_answer_per_parity():
    # 0e -> SiLU, 0o -> tanh, 1o times SiLU(its 0e gate); e3nn normalises each activation's second moment.
    gate = gate_for(o3.Irreps("1x0e+1x0o+1x1o"), o3.Irreps("1x0e"), 1)
    assert gate.irreps_in == o3.Irreps("1x0o+2x0e+1x1o")  # sorted: odd scalar, even scalar + gate, vector
    a, g, b = 0.7, -1.3, 0.4
    v = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    x = torch.cat([torch.tensor([b, a, g], dtype=torch.float64), v]).unsqueeze(0)
    silu, tanh = _second_moment_normalised(F.silu), _second_moment_normalised(torch.tanh)
    t = lambda value: torch.tensor([value], dtype=torch.float64)  # noqa: E731
    expected = torch.cat([silu(t(a)), tanh(t(b)), silu(t(g)) * v])
    # e3nn estimates the normalising constant from 10^6 random samples: agreement to ~1e-3, not to rounding
    torch.testing.assert_close(gate.double()(x)[0], expected, rtol=5e-3, atol=0.0)


def test_odd_gates_when_no_even_scalar_is_reachable():
    gate = gate_for(o3.Irreps("1x1e"), o3.Irreps("1x1o"), 0)  # 1o x Y^0 reaches no 0e
    assert gate.irreps_gates == o3.Irreps("1x0o") and gate.act_gates.acts[0].f is torch.tanh


def test_interaction_block_self_connections_and_scalar_only_output():
    make = lambda numel: ScaledMLP([4, 8, numel])  # noqa: E731
    species = InteractionBlock("4x0e+2x1o", "4x0e", 1, make, 1.0, "species", attr_dim=3)
    assert species.irreps_out == o3.Irreps("4x0e") and isinstance(species.sc, o3.FullyConnectedTensorProduct)
    linear = InteractionBlock("4x0e+2x1o", "4x0e+2x1o", 1, make, 1.0, "linear")
    assert isinstance(linear.sc, o3.Linear) and linear.sc.irreps_out == linear.gate.irreps_in
    assert InteractionBlock("4x0e", "4x0e", 1, make, 1.0, None).sc is None
    with pytest.raises(ValueError, match="self_connection"):
        InteractionBlock("4x0e", "4x0e", 1, make, 1.0, "nequip")
    # reach=False keeps targets that no path reaches (HIENet): 1e from 0e needs a pseudo-vector Y.
    assert InteractionBlock("4x0e", "4x0e+2x1e", 1, make, 1.0, "linear", reach=False).irreps_out == o3.Irreps("4x0e+2x1e")
    assert InteractionBlock("4x0e", "4x0e+2x1e", 1, make, 1.0, "linear").irreps_out == o3.Irreps("4x0e")


def test_convolution_sum_is_scaled_by_the_neighbour_normalisation():
    # NequIP multiplies the neighbour sum by 1/sqrt(avg_num_neighbors), HIENet divides it by avg_num_neigh.
    gen = torch.Generator().manual_seed(1)
    irreps = o3.Irreps("3x0e+2x1o")
    edges = _random_edges(4, 12, gen)
    x = torch.randn(4, irreps.dim, dtype=torch.float64, generator=gen)
    plain = EdgeConvolution(irreps, 2, [o3.Irrep("0e"), o3.Irrep("1o")]).double()
    scaled = EdgeConvolution(irreps, 2, [o3.Irrep("0e"), o3.Irrep("1o")], scale=16.0**-0.5).double()
    weight = torch.randn(12, plain.weight_numel, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(scaled(x, edges, weight), plain(x, edges, weight) / 4.0)
    # one edge, one scalar channel, Y^0 path only: x'_i = scale * w * x_j (component-normalised Y^0 = 1)
    one = EdgeConvolution(o3.Irreps("1x0e"), 0, [o3.Irrep("0e")], scale=0.5).double()
    e = Edges(torch.tensor([0]), torch.tensor([1]), torch.ones(1, 1, dtype=torch.float64), None, None, None, {})
    out = one(torch.tensor([[3.0], [0.0]], dtype=torch.float64), e, torch.tensor([[2.0]], dtype=torch.float64))
    torch.testing.assert_close(out, torch.tensor([[0.0], [3.0]], dtype=torch.float64))


def _two_atom_graph(distance: float, edge_type: int):
    from torch_geometric.data import Data

    pos = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, distance]], dtype=torch.float64)
    return Data(z=torch.tensor([11, 17]), pos=pos, cell=torch.eye(3, dtype=torch.float64).unsqueeze(0) * 50.0,
                edge_index=torch.tensor([[1, 0], [0, 1]]), edge_shift=torch.zeros(2, 3, dtype=torch.long),
                edge_type=torch.full((2,), edge_type), num_nodes=2)


def test_edge_embedding_envelope_and_lattice_loops():
    torch.manual_seed(0)
    embedding = EdgeEmbedding(cutoff=5.0, lmax=2, basis=BesselBasis(5.0, 6), num_basis=6, type_dim=3).double()
    assert embedding.radial_dim == 9
    near = embedding(_two_atom_graph(4.0, edge_type=0))
    expected = embedding.basis(near.dist) * polynomial_envelope(near.dist / 5.0).unsqueeze(-1)
    torch.testing.assert_close(near.radial[:, :6], expected)
    assert torch.equal(near.radial[:, 6:], torch.zeros_like(near.radial[:, 6:]))  # neighbours: the reference's input
    edge = embedding(_two_atom_graph(5.0 * (1 - 1e-4), edge_type=0))
    assert edge.cut.max() < 1e-9 and edge.radial.abs().max() < 1e-9  # about to leave the cutoff: nothing
    mlp = ScaledMLP([9, 8, 5]).double()
    assert mlp(edge.radial).abs().max() < 1e-9  # bias-free radial MLP: zero weights at the cutoff
    loop = embedding(_two_atom_graph(7.5, edge_type=1))  # a lattice loop longer than the cutoff
    assert torch.equal(loop.cut, torch.ones_like(loop.cut))
    assert torch.equal(loop.radial[:, 6:], embedding.loop_embed.weight[[1, 1]])
    assert loop.radial[:, 6:].abs().max() > 0 and mlp(loop.radial).abs().max() > 1e-3
