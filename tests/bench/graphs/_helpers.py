"""Shared checks for the graph tests, computed in float64 from the structure."""
from __future__ import annotations

import itertools

import numpy as np
from pymatgen.core import Structure
from torch_geometric.data import Data


def vectors64(structure: Structure, data: Data) -> np.ndarray:
    """[E, 3] edge vectors (Å) in float64: pos[src] + shift @ cell - pos[dst]."""
    pos = structure.cart_coords
    src, dst = data.edge_index.numpy()
    return pos[src] + data.edge_shift.numpy() @ structure.lattice.matrix - pos[dst]


def edge_set(structure: Structure, data: Data, edge_type: int | None = None) -> np.ndarray:
    """[E, 6] rows (src, dst, vx, vy, vz, type) in a canonical order, for set comparisons."""
    src, dst = data.edge_index.numpy()
    rows = np.column_stack([src, dst, vectors64(structure, data), data.edge_type.numpy()])
    if edge_type is not None:
        rows = rows[rows[:, 5] == edge_type]
    return sort_rows(rows)


def sort_rows(rows: np.ndarray) -> np.ndarray:
    """Rows sorted lexicographically on values rounded to 1e-6."""
    key = np.round(rows, 6)
    return rows[np.lexsort(key.T[::-1])]


def per_atom_distances(structure: Structure, data: Data, edge_type: int = 0) -> list[np.ndarray]:
    """For each receiving atom, its sorted edge lengths (Å) of one edge type."""
    dist = np.linalg.norm(vectors64(structure, data), axis=1)
    dst = data.edge_index[1].numpy()
    keep = data.edge_type.numpy() == edge_type
    return [np.sort(dist[keep & (dst == i)]) for i in range(len(structure))]


def brute_force_edges(structure: Structure, cutoff: float, n_max: int) -> np.ndarray:
    """[E, 6] rows (src, dst, vec, 0) of every image within the cutoff, shifts in -n_max..n_max."""
    pos, cell = structure.cart_coords, structure.lattice.matrix
    shifts = np.array(list(itertools.product(range(-n_max, n_max + 1), repeat=3)))
    rows = []
    for i in range(len(structure)):
        for j in range(len(structure)):
            vec = pos[j] + shifts @ cell - pos[i]
            d = np.linalg.norm(vec, axis=1)
            ok = (d > 1e-8) & (d <= cutoff)
            rows.append(np.column_stack([np.full(ok.sum(), j), np.full(ok.sum(), i), vec[ok], np.zeros(ok.sum())]))
    return sort_rows(np.concatenate(rows))


def min_image_distances(structure: Structure, n_max: int) -> np.ndarray:
    """[N, N] minimum-image distance (Å) of every ordered pair, shifts in -n_max..n_max."""
    pos, cell = structure.cart_coords, structure.lattice.matrix
    shifts = np.array(list(itertools.product(range(-n_max, n_max + 1), repeat=3)))
    diff = pos[None, :, None, :] + (shifts @ cell)[None, None] - pos[:, None, None, :]
    return np.linalg.norm(diff, axis=-1).min(axis=-1)


def assert_same_rows(a: np.ndarray, b: np.ndarray, atol: float = 1e-6) -> None:
    """Two canonical edge tables are the same set."""
    assert a.shape == b.shape, f"{a.shape} != {b.shape}"
    np.testing.assert_allclose(a, b, atol=atol)
