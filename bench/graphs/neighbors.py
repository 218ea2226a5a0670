"""Periodic neighbour search in numpy.

Finds every (source j, receiver i, integer shift s) with
``0 < |pos[j] + s @ cell - pos[i]| <= cutoff`` (plus ``CUTOFF_SLACK``), periodic
self-images (i == j, s != 0) included. Positions may lie outside the cell: the
search runs on wrapped positions and the shifts are converted back, so they are
correct for the positions given.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

CUTOFF_SLACK = 1e-8  # Å; an edge exactly at the cutoff is kept despite rounding
_CHUNK_ELEMENTS = 1 << 22  # receivers x candidate images per chunk (~32 MB per float64 temp)


class Neighbors(NamedTuple):
    """A list of directed edges, all arrays aligned on the edge axis.

    src: [E] int64 source (sender) atom; dst: [E] int64 receiving atom;
    shift: [E, 3] int64 integer image of the source; dist: [E] float64 length (Å).
    """

    src: np.ndarray
    dst: np.ndarray
    shift: np.ndarray
    dist: np.ndarray

    @property
    def num_edges(self) -> int:
        """E (``len()`` of the tuple itself is its 4 fields)."""
        return int(self.src.shape[0])

    def take(self, index: np.ndarray) -> Neighbors:
        """The sub-list selected by a boolean mask or an index array."""
        return Neighbors(self.src[index], self.dst[index], self.shift[index], self.dist[index])


def empty_neighbors() -> Neighbors:
    """A list with no edge."""
    return Neighbors(
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64), np.zeros(0)
    )


def cell_widths(cell: np.ndarray) -> np.ndarray:
    """[3] perpendicular widths (Å) of a cell with rows a, b, c: volume / |a_l x a_m|.

    Any vector shorter than r has |fractional coordinate k| <= r / width_k, which is
    what bounds the image search in skewed cells (the lengths |a_k| do not).
    """
    volume = abs(float(np.linalg.det(cell)))
    areas = np.linalg.norm(
        np.stack([np.cross(cell[1], cell[2]), np.cross(cell[2], cell[0]), np.cross(cell[0], cell[1])]),
        axis=1,
    )
    return volume / areas


def image_range(cell: np.ndarray, cutoff: float) -> np.ndarray:
    """[3] int: the images -n_k..n_k that cover the cutoff for wrapped positions.

    Wrapped fractional coordinates differ by less than 1, so |s_k| <= ceil(cutoff /
    width_k) suffices; the 1e-6 makes a cutoff that is an exact multiple of a width
    take one more layer, where rounding could otherwise lose a boundary edge.
    """
    return np.ceil((cutoff + CUTOFF_SLACK) / cell_widths(cell) + 1e-6).astype(np.int64)


def _wrap(pos: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wrapped positions [N, 3] (Å) and the integer offsets [N, 3] with pos = wrapped + off @ cell."""
    frac = pos @ np.linalg.inv(cell)
    off = np.floor(frac)
    over = (frac - off) >= 1.0  # floor rounding can leave exactly 1.0
    off[over] += 1.0
    return pos - off @ cell, off.astype(np.int64)


def sort_neighbors(nb: Neighbors) -> Neighbors:
    """Canonical order: by receiver, then distance, then source, then shift.

    Distances are rounded to 1e-9 Å for the ordering so that equal shells in
    different but equivalent cells order the same way despite rounding noise.
    """
    dkey = np.round(nb.dist, 9)
    order = np.lexsort((nb.shift[:, 2], nb.shift[:, 1], nb.shift[:, 0], nb.src, dkey, nb.dst))
    return nb.take(order)


def find_neighbors(pos: np.ndarray, cell: np.ndarray, cutoff: float) -> Neighbors:
    """Every directed edge within the cutoff, self-images included, in canonical order.

    Args:
        pos: [N, 3] Cartesian positions (Å), anywhere in space.
        cell: [3, 3] lattice vectors as rows (Å), non-singular.
        cutoff: radius (Å), > 0.

    Returns:
        ``Neighbors`` with ``pos[src] + shift @ cell - pos[dst]`` of length ``dist``.
        The trivial pair (i, i, 0) is excluded; two distinct atoms at the same place
        would give a zero-length edge, which callers reject.
    """
    pos = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    if abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError("the cell is singular (zero volume)")
    n_atoms = pos.shape[0]
    if n_atoms == 0:
        return empty_neighbors()
    wrapped, off = _wrap(pos, cell)
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
    # back to the caller's positions: pos = wrapped + off @ cell
    shift = shifts[m // n_atoms] - off[src] + off[dst]
    return sort_neighbors(Neighbors(src, dst, shift, np.sqrt(np.concatenate(found_d2))))
