"""The oracle: the graph pipeline as it was before vesin, kept to test the fast one against.

``reference_graph(structure, variant, cutoff, max_neighbors)`` builds the built-in
variants with the original numpy image search (dense [receivers, candidate images]
distances), row-wise ``np.unique`` deduplication, the six-column ``np.lexsort`` and the
dense [N, N] lattice-loop matching. It is slow (quadratic in atoms) and must not be
"optimised": its only job is to be obviously what the graphs have always been, so that
``build_graph`` can be required to equal it bit for bit (``bench.graphs.verify``).
"""
from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data import Data

from bench.defaults import TIE_TOLERANCE
from bench.graphs.build import validate_params
from bench.graphs.errors import GraphError
from bench.graphs.neighbors import CUTOFF_SLACK, Neighbors, empty_neighbors
from bench.graphs.variants.lattice import _translates_dense, canonical_translations

_CHUNK_ELEMENTS = 1 << 22  # receivers x candidate images per chunk (~32 MB per float64 temp)
ZERO_LENGTH = 1e-8


def image_range(cell: np.ndarray, cutoff: float) -> np.ndarray:
    """[3] int: images -n_k..n_k covering the cutoff for wrapped positions (widths volume / |a_l x a_m|)."""
    volume = abs(float(np.linalg.det(cell)))
    areas = np.linalg.norm(
        np.stack([np.cross(cell[1], cell[2]), np.cross(cell[2], cell[0]), np.cross(cell[0], cell[1])]), axis=1
    )
    return np.ceil((cutoff + CUTOFF_SLACK) / (volume / areas) + 1e-6).astype(np.int64)


def wrap(pos: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wrapped positions [N, 3] (Å) and the integer offsets [N, 3] with pos = wrapped + off @ cell."""
    frac = pos @ np.linalg.inv(cell)
    off = np.floor(frac)
    over = (frac - off) >= 1.0
    off[over] += 1.0
    return pos - off @ cell, off.astype(np.int64)


def sort_rows(nb: Neighbors) -> Neighbors:
    """Canonical order by six-column lexsort: receiver, distance (rounded 1e-9 Å), source, shift."""
    dkey = np.round(nb.dist, 9)
    order = np.lexsort((nb.shift[:, 2], nb.shift[:, 1], nb.shift[:, 0], nb.src, dkey, nb.dst))
    return nb.take(order)


def find_neighbors_numpy(pos: np.ndarray, cell: np.ndarray, cutoff: float) -> Neighbors:
    """Every directed edge within the cutoff by dense distances to all candidate images."""
    pos = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    if abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError("the cell is singular (zero volume)")
    n_atoms = pos.shape[0]
    if n_atoms == 0:
        return empty_neighbors()
    wrapped, off = wrap(pos, cell)
    n = image_range(cell, cutoff)
    grids = np.meshgrid(*(np.arange(-k, k + 1) for k in n), indexing="ij")
    shifts = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)  # [S, 3]
    # candidate image m = (shift index) * N + atom index
    images = (wrapped[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)  # [S*N, 3]
    n_images = images.shape[0]
    r2_max = (cutoff + CUTOFF_SLACK) ** 2
    zero_shift = int(np.flatnonzero((shifts == 0).all(axis=1))[0])
    chunk = max(1, _CHUNK_ELEMENTS // n_images)
    found_dst, found_m, found_d2 = [], [], []
    for start in range(0, n_atoms, chunk):
        rec = np.arange(start, min(start + chunk, n_atoms))
        d2 = np.zeros((rec.size, n_images))
        for k in range(3):  # per component keeps one [chunk, S*N] temporary
            d2 += (images[None, :, k] - wrapped[rec, k][:, None]) ** 2
        d2[np.arange(rec.size), zero_shift * n_atoms + rec] = np.inf  # drop (i, i, 0)
        r, m = np.nonzero(d2 <= r2_max)
        found_dst.append(rec[r])
        found_m.append(m)
        found_d2.append(d2[r, m])
    dst = np.concatenate(found_dst)
    m = np.concatenate(found_m)
    src = m % n_atoms
    shift = shifts[m // n_atoms] - off[src] + off[dst]
    return sort_rows(Neighbors(src, dst, shift, np.sqrt(np.concatenate(found_d2))))


def symmetrize_rows(nb: Neighbors) -> Neighbors:
    """Union with the reverses, first occurrence of each (src, dst, shift) kept, canonical order."""
    both = Neighbors(*(np.concatenate([a, b]) for a, b in zip(nb, Neighbors(nb.dst, nb.src, -nb.shift, nb.dist))))
    if both.num_edges == 0:
        return both
    _, first = np.unique(np.column_stack([both.src, both.dst, both.shift]), axis=0, return_index=True)
    return sort_rows(both.take(np.sort(first)))


def neighbour_edges(pos: np.ndarray, cell: np.ndarray, cutoff: float, structure_id: str) -> Neighbors:
    nb = find_neighbors_numpy(pos, cell, cutoff)
    short = nb.dist < ZERO_LENGTH
    if short.any():
        k = int(np.flatnonzero(short)[0])
        raise GraphError(f"structure {structure_id}: atoms {int(nb.src[k])} and {int(nb.dst[k])} "
                         f"(image shift {nb.shift[k].tolist()}) coincide; a zero-length edge is not allowed")
    has_edge = np.zeros(len(pos), dtype=bool)
    has_edge[nb.dst] = True
    if not has_edge.all():
        raise GraphError(f"structure {structure_id}: atom {int(np.flatnonzero(~has_edge)[0])} has no neighbour "
                         f"within the cutoff {cutoff} Å, not even its own periodic images; use a larger cutoff")
    return symmetrize_rows(nb)


def cap(nb: Neighbors, max_neighbors: int | None, n_atoms: int) -> Neighbors:
    if max_neighbors is None or nb.num_edges == 0:
        return nb
    nb = sort_rows(nb)
    counts = np.bincount(nb.dst, minlength=n_atoms)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    d_k = np.full(n_atoms, np.inf)
    full = counts >= max_neighbors
    d_k[full] = nb.dist[starts[full] + max_neighbors - 1]
    return symmetrize_rows(nb.take(nb.dist <= d_k[nb.dst] + TIE_TOLERANCE))


def minimum_images(nb: Neighbors) -> Neighbors:
    half = nb.take(nb.src < nb.dst)
    if half.num_edges == 0:
        return half
    half = half.take(np.lexsort((half.dist, half.dst, half.src)))
    new_pair = np.ones(half.num_edges, dtype=bool)
    new_pair[1:] = (half.src[1:] != half.src[:-1]) | (half.dst[1:] != half.dst[:-1])
    d_min = half.dist[new_pair][np.cumsum(new_pair) - 1]
    tied = half.take(half.dist <= d_min + TIE_TOLERANCE)
    tied = tied.take(np.lexsort((tied.shift[:, 2], tied.shift[:, 1], tied.shift[:, 0], tied.dst, tied.src)))
    first = np.ones(tied.num_edges, dtype=bool)
    first[1:] = (tied.src[1:] != tied.src[:-1]) | (tied.dst[1:] != tied.dst[:-1])
    return symmetrize_rows(tied.take(first))


def loops(structure: Structure, pos: np.ndarray, cell: np.ndarray, structure_id: str) -> Neighbors:
    """Lattice loops by dense matching, translations computed afresh (no cache)."""
    translations = canonical_translations(structure) @ structure.lattice.matrix
    species = np.array([str(site.species) for site in structure])
    src, shift = _translates_dense(pos, cell, species, translations, structure_id)
    n = len(pos)
    dst = np.tile(np.arange(n), len(translations))
    dist = np.concatenate([np.full(n, np.linalg.norm(t)) for t in translations])
    plus = Neighbors(src, dst, shift, dist)
    minus = Neighbors(plus.dst, plus.src, -plus.shift, plus.dist)
    return sort_rows(Neighbors(*(np.concatenate([p, m]) for p, m in zip(plus, minus))))


def reference_graph(structure: Structure, variant: str, cutoff: float, max_neighbors: int | None,
                    structure_id: str = "reference") -> Data:
    """The graph of a built-in variant by the original pipeline, as ``build_graph`` returns it (no y)."""
    name = validate_params(variant, cutoff, max_neighbors)
    pos = np.array(structure.cart_coords, dtype=np.float64).reshape(-1, 3)
    cell = np.array(structure.lattice.matrix, dtype=np.float64)
    nb = neighbour_edges(pos, cell, float(cutoff), structure_id)
    if name == "distance":
        parts = [(cap(minimum_images(nb.take(nb.src != nb.dst)), max_neighbors, len(pos)), 0)]
    elif name in ("multi_edge", "lattice"):
        parts = [(cap(nb, max_neighbors, len(pos)), 0)]
        if name == "lattice":
            parts.append((loops(structure, pos, cell, structure_id), 1))
    else:
        raise ValueError(f"no reference pipeline for variant {variant!r}; built-ins: distance, lattice, multi_edge")
    src = np.concatenate([p.src for p, _ in parts])
    dst = np.concatenate([p.dst for p, _ in parts])
    shift = np.concatenate([p.shift for p, _ in parts]).reshape(-1, 3)
    etype = np.concatenate([np.full(p.num_edges, t, np.int64) for p, t in parts])
    data = Data(
        z=torch.tensor([site.specie.Z for site in structure], dtype=torch.long),
        pos=torch.from_numpy(pos).float(),
        cell=torch.from_numpy(cell).float().unsqueeze(0),
        edge_index=torch.from_numpy(np.stack([src, dst]).astype(np.int64)),
        edge_shift=torch.from_numpy(shift.astype(np.int64)),
        edge_type=torch.from_numpy(etype.astype(np.int64)),
    )
    data.num_nodes = len(structure)
    return data
