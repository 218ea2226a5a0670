"""Known answers for GeoCGNN's edge basis, computed by hand from the reference's formulas
(Tinystormjojo/geo-CGNN data_utils.py: get_Kpoints_random, Phi, gaussian, miuk, betak)."""
import itertools
import math

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from architectures.geocgnn_basis import (
    ExpGaussianBasis,
    k_grid_fractions,
    plane_waves,
    reciprocal_vectors,
    smoothstep_envelope,
)
from bench.graphs import build_graph, edge_vectors
from bench.testing import shear_basis, supercell
from tests.architectures.mixin import distorted_pair

GRID = k_grid_fractions(4)


def hand_plane_waves(r: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """The reference's recipe in plain numpy: b_i = 2 pi (a_j x a_k) / V, k over the nested u loops."""
    a0, a1, a2 = cell
    volume = abs(np.linalg.det(cell))
    unit = 2 * np.pi * np.stack([np.cross(a1, a2), np.cross(a2, a0), np.cross(a0, a1)]) / volume
    u = [-3 / 8, -1 / 8, 1 / 8, 3 / 8]
    k = np.array([i * unit[0] + j * unit[1] + m * unit[2] for i in u for j in u for m in u])
    return np.cos(r @ k.T) / np.sqrt(volume)


def waves_of(vec: np.ndarray, cell: np.ndarray) -> np.ndarray:
    vec = torch.tensor(np.array(vec, dtype=np.float64)).reshape(-1, 3)
    cell = torch.tensor(np.array(cell, dtype=np.float64)).reshape(1, 3, 3)
    return plane_waves(vec, cell, torch.zeros(len(vec), dtype=torch.long), GRID).numpy()


def graph_waves(structure: Structure, k_cell: np.ndarray | None = None) -> np.ndarray:
    """Plane waves [E,64] of the multi_edge graph's edges, over k_cell's grid (default: its own cell)."""
    data = build_graph(structure, "multi_edge", cutoff=4.5, max_neighbors=None)
    data.pos = torch.tensor(structure.cart_coords)
    data.cell = torch.tensor(structure.lattice.matrix)[None]
    cell = structure.lattice.matrix if k_cell is None else k_cell
    return waves_of(edge_vectors(data).numpy(), cell)


def sorted_rows(x: np.ndarray, decimals: int = 9) -> np.ndarray:
    x = np.round(x, decimals) + 0.0  # + 0.0: no -0.0
    return x[np.lexsort(x.T[::-1])]


def test_k_grid_is_the_4x4x4_grid_inside_the_first_brillouin_zone():
    u = [-3 / 8, -1 / 8, 1 / 8, 3 / 8]
    expected = np.array(list(itertools.product(u, u, u)))  # u_1 slowest, as the reference's nested loops
    assert GRID.shape == (64, 3)
    np.testing.assert_array_equal(GRID.numpy(), expected)
    assert (GRID.abs() < 0.5).all()  # strictly inside the zone: no k is a reciprocal-lattice vector
    np.testing.assert_array_equal(k_grid_fractions(2).numpy(), np.array(list(itertools.product([-0.25, 0.25], repeat=3))))


def test_reciprocal_vectors_carry_two_pi():
    cell = distorted_pair().lattice.matrix
    recip = reciprocal_vectors(torch.tensor(cell)).numpy()
    np.testing.assert_allclose(cell @ recip.T, 2 * np.pi * np.eye(3), atol=1e-12)
    volume = np.linalg.det(cell)
    np.testing.assert_allclose(recip[0], 2 * np.pi * np.cross(cell[1], cell[2]) / volume, atol=1e-12)


def test_plane_wave_values_match_the_hand_computation():
    cell = distorted_pair().lattice.matrix
    r = np.array([[1.3, -0.7, 2.2], [0.0, 0.0, 0.0], [-4.1, 0.2, 0.9]])
    np.testing.assert_allclose(waves_of(r, cell), hand_plane_waves(r, cell), rtol=1e-12, atol=1e-14)
    # columns u and -u hold the same value (cos is even; the grid reversed is its negative)
    np.testing.assert_array_equal(GRID.flip(0).numpy(), -GRID.numpy())
    np.testing.assert_allclose(waves_of(r, cell), waves_of(r, cell)[:, ::-1], rtol=1e-12, atol=1e-14)
    # r = 0: every feature is 1 / sqrt(V)
    np.testing.assert_allclose(waves_of(r, cell)[1], 1 / math.sqrt(abs(np.linalg.det(cell))), rtol=1e-12)


def test_self_image_along_a_has_the_closed_form_cos_two_pi_u1():
    # r = a_1: k . a_1 = 2 pi u_1, so the column of u_1 = +-1/8 is cos(pi/4) / sqrt(V) and
    # that of u_1 = +-3/8 is cos(3 pi/4) / sqrt(V) = -sqrt(2)/2 / sqrt(V), whatever u_2, u_3.
    cell = distorted_pair().lattice.matrix
    got = waves_of(cell[0], cell)[0]
    sign = np.where(np.abs(GRID[:, 0].numpy()) < 0.25, 1.0, -1.0)
    np.testing.assert_allclose(got, sign * math.sqrt(0.5) / math.sqrt(abs(np.linalg.det(cell))), rtol=1e-12)


def test_self_images_of_one_atom_get_different_features():
    s = Structure(Lattice.from_parameters(2.9, 3.1, 3.4, 81, 95, 104), ["Cu"], [[0.1, 0.2, 0.3]])
    data = build_graph(s, "multi_edge", cutoff=4.5, max_neighbors=None)
    vec = edge_vectors(data).double().numpy()
    waves = waves_of(vec, s.lattice.matrix)
    assert len(vec) >= 12
    for e, f in itertools.combinations(range(len(vec)), 2):
        if np.allclose(vec[e], -vec[f], atol=1e-5):
            np.testing.assert_allclose(waves[e], waves[f], atol=1e-6)  # cos is even: -r looks like r
        else:
            assert np.abs(waves[e] - waves[f]).max() > 1e-3, (vec[e], vec[f])


def test_images_of_one_pair_get_different_features():
    s = distorted_pair()
    data = build_graph(s, "multi_edge", cutoff=6.0, max_neighbors=None)
    src, dst = data.edge_index
    pair = ((src == 1) & (dst == 0)).numpy()
    assert pair.sum() >= 4
    waves = waves_of(edge_vectors(data).double().numpy()[pair], s.lattice.matrix)
    for e, f in itertools.combinations(range(len(waves)), 2):
        assert np.abs(waves[e] - waves[f]).max() > 1e-3


def test_same_k_grid_same_feature_set_in_any_basis():
    # Held to one cell's grid, the features of the sheared basis's graph are the same
    # multiset (the edges are the same Cartesian vectors, written with other shifts).
    s = distorted_pair()
    own = graph_waves(s)
    np.testing.assert_allclose(sorted_rows(graph_waves(shear_basis(s), s.lattice.matrix)), sorted_rows(own), atol=2e-9)


def test_basis_changes_that_map_the_grid_onto_itself():
    s = distorted_pair()
    a, b, c = s.lattice.matrix
    own = graph_waves(s)
    # (a, b, c) -> (-a, -b, -c): k -> -k, cos is even: every column is unchanged.
    inverted = Structure(Lattice(-s.lattice.matrix), s.species, s.cart_coords, coords_are_cartesian=True)
    np.testing.assert_allclose(sorted_rows(graph_waves(inverted)), sorted_rows(own), atol=2e-9)
    # (a, b, c) -> (b, a, -c): the grid is mapped onto itself with u_1 <-> u_2, u_3 -> -u_3,
    # so each edge's 64 values are the same set in another column order.
    swapped = Structure(Lattice(np.stack([b, a, -c])), s.species, s.cart_coords, coords_are_cartesian=True)
    other = graph_waves(swapped)
    np.testing.assert_allclose(sorted_rows(np.sort(other, axis=1)), sorted_rows(np.sort(own, axis=1)), atol=2e-9)
    assert np.abs(sorted_rows(other) - sorted_rows(own)).max() > 1e-3  # but not column by column


def test_shear_and_supercell_change_the_grid():
    s = distorted_pair()
    own = sorted_rows(np.sort(graph_waves(s), axis=1))
    # a' = a + b: b_1' = b_1 - b_2, so k = (1/8, 1/8, .) becomes (1/8, 0, .): not a permutation.
    sheared = sorted_rows(np.sort(graph_waves(shear_basis(s)), axis=1))
    assert np.abs(sheared - own).max() > 1e-3
    # 2x1x1 supercell: b_1' = b_1 / 2 and V' = 2V; r = a_1 (old lattice vector) now reads
    # cos(2 pi u_1 / 2) / sqrt(2V) = cos(pi/8) or cos(3 pi/8) over sqrt(2V).
    big = supercell(s).lattice.matrix
    got = waves_of(s.lattice.matrix[0], big)[0]
    expected = np.cos(np.pi * GRID[:, 0].numpy()) / math.sqrt(2 * abs(s.lattice.volume))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_smoothstep_envelope():
    x = torch.tensor([0.0, 0.5, 1.0, 1.7], dtype=torch.float64, requires_grad=True)
    phi = smoothstep_envelope(x)
    (grad,) = torch.autograd.grad(phi.sum(), x)
    np.testing.assert_allclose(phi.detach().numpy(), [1.0, 0.5, 0.0, 0.0], atol=1e-15)  # 1 - 6/32 + 15/16 - 10/8
    assert grad[0] == 0 and grad[2] == 0 and grad[3] == 0
    np.testing.assert_allclose(float(grad[1]), -30 * 0.25 * 0.25, rtol=1e-12)  # -30 x^2 (1 - x)^2


def test_exp_gaussians_match_the_reference_formula():
    cutoff, num = 8.0, 64
    basis = ExpGaussianBasis(num, cutoff).double()
    r = torch.tensor([0.0, 1.5, 4.0, 8.0, 9.0], dtype=torch.float64)
    got = basis(r).numpy()
    floor = math.exp(-cutoff)
    mu = floor + (1 - floor) / num * np.arange(1, num + 1)
    beta = (2 / num * (1 - floor)) ** -2
    x = r.numpy() / cutoff
    phi = np.where(x < 1, 1 - 6 * x**5 + 15 * x**4 - 10 * x**3, 0.0)
    expected = np.exp(-beta * (np.exp(-r.numpy())[:, None] - mu) ** 2) * phi[:, None]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    assert got.shape == (5, 64) and got[0, -1] == 1.0  # the last centre is exp(-0) = 1
    assert (got[3:] == 0).all()
