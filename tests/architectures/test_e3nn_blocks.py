"""Known-answer tests of the shared e3nn blocks (architectures/e3nn_blocks.py), and a test mixin."""
from __future__ import annotations

import math

import torch
from e3nn import o3

from architectures.e3nn_blocks import EdgeConvolution, EdgeEmbedding, Edges, hidden_irreps, polynomial_envelope

def _random_edges(num_nodes: int, num_edges: int, generator: torch.Generator) -> Edges:
    vec = torch.randn(num_edges, 3, dtype=torch.float64, generator=generator)
    sh = o3.spherical_harmonics([0, 1, 2], vec, normalize=True, normalization="component")
    src = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    dst = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    return Edges(src, dst, sh, None, None, vec.norm(dim=-1), {})


def test_fused_convolution_equals_e3nn_tensor_product():
    # EdgeConvolution is o3.TensorProduct with 'uvu' instructions, summed on receivers.
    gen = torch.Generator().manual_seed(0)
    irreps = o3.Irreps("5x0e+3x1o+2x2e")
    conv = EdgeConvolution(irreps, 2, [o3.Irrep(s) for s in ("0e", "1o", "2e")], 4, 8, 1.0).double()
    edges = _random_edges(7, 40, gen)
    x = torch.randn(7, irreps.dim, dtype=torch.float64, generator=gen)
    weight = torch.randn(40, conv.weight_numel, dtype=torch.float64, generator=gen)
    ours = conv(x, edges, weight)

    position = {(b, offset): k for k, (_, b, offset, _) in enumerate(conv.out_paths)}
    starts = [s.start for s in irreps.slices()]
    instructions, columns, w_start = [], [], 0
    for b, (start, mul, _, paths) in enumerate(conv.blocks):
        offset = 0
        for p, (l_sh, l_out) in enumerate(paths):
            instructions.append((starts.index(start), l_sh, position[(b, offset)], "uvu", True))
            columns += [w_start + u * len(paths) + p for u in range(mul)]  # ours: [mul, paths] per block
            offset += 2 * l_out + 1
        w_start += mul * len(paths)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn's Wigner 3j in full precision
    try:
        tp = o3.TensorProduct(irreps, o3.Irreps.spherical_harmonics(2), conv.irreps_out, instructions,
                              shared_weights=False, internal_weights=False)
    finally:
        torch.set_default_dtype(previous)
    messages = tp(x[edges.src], edges.sh, weight[:, columns])
    reference = torch.zeros_like(ours).index_add_(0, edges.dst, messages)
    torch.testing.assert_close(ours, reference, atol=1e-12, rtol=1e-12)


def test_convolution_of_edgeless_graph_is_zero():
    irreps = hidden_irreps(4, 2, 1, 2)
    conv = EdgeConvolution(irreps, 2, [ir for _, ir in irreps], 4, 8, 10.0)
    edges = Edges(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0, 9),
                  torch.zeros(0, 4), torch.zeros(0, 1), torch.zeros(0), {})
    out = conv(torch.randn(3, irreps.dim), edges)
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


def test_hidden_irreps_have_the_parity_of_spherical_harmonics():
    assert hidden_irreps(16, 8, 4, 2) == o3.Irreps("16x0e+8x1o+4x2e")
    assert hidden_irreps(16, 8, 4, 1) == o3.Irreps("16x0e+8x1o")


def _two_atom_graph(distance: float, edge_type: int):
    from torch_geometric.data import Data

    pos = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, distance]], dtype=torch.float64)
    return Data(z=torch.tensor([11, 17]), pos=pos, cell=torch.eye(3, dtype=torch.float64).unsqueeze(0) * 50.0,
                edge_index=torch.tensor([[1, 0], [0, 1]]), edge_shift=torch.zeros(2, 3, dtype=torch.long),
                edge_type=torch.full((2,), edge_type), num_nodes=2)


def test_neighbour_edges_fade_out_smoothly_at_the_cutoff_but_lattice_loops_do_not():
    torch.manual_seed(0)
    embedding = EdgeEmbedding(cutoff=5.0, num_basis=6, lmax=2, type_dim=3).double()
    irreps = hidden_irreps(4, 2, 1, 2)
    conv = EdgeConvolution(irreps, 2, [ir for _, ir in irreps], embedding.radial_dim, 8, 1.0).double()
    x = torch.randn(2, irreps.dim, dtype=torch.float64)

    edges = embedding(_two_atom_graph(5.0 * (1 - 1e-4), edge_type=0))
    assert edges.cut.max() < 1e-9 and edges.radial[:, :6].abs().max() < 1e-9
    assert conv(x, edges).abs().max() < 1e-9  # an edge about to leave the cutoff carries nothing
    edges = embedding(_two_atom_graph(4.0, edge_type=0))
    assert conv(x, edges).abs().max() > 1e-3

    loop = embedding(_two_atom_graph(7.5, edge_type=1))  # a lattice loop longer than the cutoff
    assert torch.equal(loop.cut, torch.ones_like(loop.cut))
    assert torch.equal(loop.radial[:, 6:], embedding.type_embed.weight[[1, 1]])
    assert conv(x, loop).abs().max() > 1e-3
