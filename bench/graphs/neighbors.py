"""Periodic neighbour search: vesin's cell list, filtered with the numpy oracle's arithmetic.

Finds every (source j, receiver i, integer shift s) with
``0 < |pos[j] + s @ cell - pos[i]| <= cutoff`` (plus ``CUTOFF_SLACK``), periodic
self-images (i == j, s != 0) included. Positions may lie outside the cell: the
search runs on wrapped positions and the shifts are converted back, so they are
correct for the positions given.

vesin (a C++ cell list, linear in the number of atoms) only proposes candidate pairs,
with a slightly larger radius; every candidate's squared length is then recomputed
with exactly the operations of the numpy search kept in ``bench.graphs.reference``
(same image grid, same ``shifts @ cell`` product, same per-component sum), so the
cutoff test and the canonical order see the same floats, bit for bit, and the graphs
equal the oracle's (tests/bench/graphs/test_oracle.py).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from vesin import NeighborList

CUTOFF_SLACK = 1e-8  # Å; an edge exactly at the cutoff is kept despite rounding
# Å added to vesin's radius: its own float arithmetic differs from ours by ~1e-15 Å,
# so a pair we keep is never one vesin dropped; extra candidates are filtered out.
CANDIDATE_MARGIN = 1e-6
DIST_DECIMALS = 9  # distances are compared at 1e-9 Å for the canonical order
_INT64_LIMIT = 2**62  # keys stay below this (headroom for the products that build them)


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
    (a0, a1, a2), (b0, b1, b2), (c0, c1, c2) = cell.tolist()
    # the three cross products b x c, c x a, a x b, written out: np.cross's operations
    # (product, product, difference) without its per-call overhead, so the same floats
    crosses = np.array([
        [b1 * c2 - b2 * c1, b2 * c0 - b0 * c2, b0 * c1 - b1 * c0],
        [c1 * a2 - c2 * a1, c2 * a0 - c0 * a2, c0 * a1 - c1 * a0],
        [a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0],
    ])
    return volume / np.linalg.norm(crosses, axis=1)


def image_range(cell: np.ndarray, cutoff: float) -> np.ndarray:
    """[3] int: the images -n_k..n_k that cover the cutoff for wrapped positions.

    Wrapped fractional coordinates differ by less than 1, so |s_k| <= ceil(cutoff /
    width_k) suffices; the 1e-6 makes a cutoff that is an exact multiple of a width
    take one more layer, where rounding could otherwise lose a boundary edge.
    """
    return np.ceil((cutoff + CUTOFF_SLACK) / cell_widths(cell) + 1e-6).astype(np.int64)


def image_ranges(cells: np.ndarray, dets: np.ndarray, cutoff: float) -> np.ndarray:
    """[B, 3] ``image_range`` of a stack of cells [B, 3, 3] with determinants [B], same floats.

    Elementwise the same operations as ``cell_widths``/``image_range`` (numpy's batched
    ``det`` is its single-matrix one applied per matrix), so the ranges are identical.
    """
    a, b, c = cells[:, 0], cells[:, 1], cells[:, 2]
    crosses = np.stack([
        np.stack([b[:, 1] * c[:, 2] - b[:, 2] * c[:, 1], b[:, 2] * c[:, 0] - b[:, 0] * c[:, 2],
                  b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]], axis=1),
        np.stack([c[:, 1] * a[:, 2] - c[:, 2] * a[:, 1], c[:, 2] * a[:, 0] - c[:, 0] * a[:, 2],
                  c[:, 0] * a[:, 1] - c[:, 1] * a[:, 0]], axis=1),
        np.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                  a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1),
    ], axis=1)
    widths = np.abs(dets)[:, None] / np.linalg.norm(crosses, axis=-1)
    return np.ceil((cutoff + CUTOFF_SLACK) / widths + 1e-6).astype(np.int64)


_GRIDS: dict[tuple[int, int, int], np.ndarray] = {}


def image_grid(cell: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The candidate images: shifts [S, 3] int64 (lexicographic, -n..n) and shifts @ cell [S, 3] (Å).

    Both searches take their Cartesian offsets from this one product, so an edge's
    length is computed from the same floats whichever search found it.
    """
    key = (int(n[0]), int(n[1]), int(n[2]))
    shifts = _GRIDS.get(key)
    if shifts is None:
        grids = np.meshgrid(*(np.arange(-k, k + 1) for k in key), indexing="ij")
        shifts = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
        shifts.setflags(write=False)
        if len(_GRIDS) < 4096:
            _GRIDS[key] = shifts
    return shifts, shifts @ cell


def shift_codes(shift: np.ndarray, bound: int) -> np.ndarray:
    """[E] int64 code of each shift, lexicographic in (s0, s1, s2), for |s_k| <= bound."""
    span = 2 * bound + 1
    s = shift + bound
    return (s[:, 0] * span + s[:, 1]) * span + s[:, 2]


def shift_bound(*shifts: np.ndarray) -> int:
    """The largest |component| over the given [E, 3] shift arrays (0 when all are empty)."""
    return max([int(np.abs(s).max()) for s in shifts if s.size] + [0])


def sort_neighbors(nb: Neighbors) -> Neighbors:
    """Canonical order: by receiver, then distance, then source, then shift.

    Distances are rounded to 1e-9 Å for the ordering so that equal shells in
    different but equivalent cells order the same way despite rounding noise. The
    order is that of ``np.lexsort`` over the six columns with ``np.round(dist, 9)``;
    it is computed from two integer keys (``np.round`` is ``rint(d * 1e9) / 1e9``,
    so ``rint(d * 1e9)`` orders alike), one sort when they fit one int64.
    """
    if nb.num_edges < 2:
        return nb
    return nb.take(canonical_order(nb))


def canonical_order(nb: Neighbors) -> np.ndarray:
    """[E] permutation into the canonical order of ``sort_neighbors``."""
    dkey = np.rint(nb.dist * 10.0**DIST_DECIMALS)
    bound = shift_bound(nb.shift)
    n_atoms = int(max(nb.src.max(), nb.dst.max())) + 1
    d_span = float(dkey.max()) + 1.0
    lo_span = float(n_atoms) * float(2 * bound + 1) ** 3
    if d_span * n_atoms >= _INT64_LIMIT or lo_span >= _INT64_LIMIT:  # astronomically large: plain lexsort
        s = nb.shift
        return np.lexsort((s[:, 2], s[:, 1], s[:, 0], nb.src, dkey, nb.dst))
    hi = nb.dst * int(d_span) + dkey.astype(np.int64)
    lo = nb.src * int((2 * bound + 1) ** 3) + shift_codes(nb.shift, bound)
    if float(hi.max() + 1) * lo_span < _INT64_LIMIT:
        return np.argsort(hi * int(lo_span) + lo)  # keys are unique, so any sort gives this order
    return np.lexsort((lo, hi))


_LISTS: dict[float, NeighborList] = {}


def _vesin(cutoff: float) -> NeighborList:
    """One vesin list per radius, single-threaded (workers parallelise over structures)."""
    if cutoff not in _LISTS:
        _LISTS[cutoff] = NeighborList(cutoff=cutoff, full_list=True, sorted=False, n_threads=1)
    return _LISTS[cutoff]


def find_neighbors(pos: np.ndarray, cell: np.ndarray, cutoff: float) -> Neighbors:
    """Every directed edge within the cutoff, self-images included, in canonical order.

    Args:
        pos: [N, 3] Cartesian positions (Å), anywhere in space.
        cell: [3, 3] lattice vectors as rows (Å), non-singular.
        cutoff: radius (Å), > 0.

    Returns:
        ``Neighbors`` with ``pos[src] + shift @ cell - pos[dst]`` of length ``dist``.
        The trivial pair (i, i, 0) is excluded; two distinct atoms at the same place
        would give a zero-length edge, which callers reject. Equal, array for array,
        to ``bench.graphs.reference.find_neighbors_numpy``.
    """
    return search_many([pos], [cell], cutoff)[0]


def search_many(positions: list[np.ndarray], cells: list[np.ndarray], cutoff: float) -> tuple[Neighbors, bool]:
    """``find_neighbors`` of several structures at once, atoms numbered consecutively.

    Structure b's atoms are ``offset_b .. offset_b + N_b - 1`` (``offset`` = cumulative
    atom counts), so the edges of all structures form one list in canonical order
    (receiver first: each structure's edges are contiguous, in its own canonical order).
    Per structure there is one vesin call and a few [3, 3] operations; everything else
    is vectorised over the whole batch. Also returns whether the list is symmetric by
    construction: only an edge within 1e-7 Å of the cutoff can lose its reverse to
    rounding (the two lengths differ by ~1e-13 Å), so without one the check is skipped.
    """
    cutoff = float(cutoff)
    nl = _vesin(cutoff + CUTOFF_SLACK + CANDIDATE_MARGIN)
    wrapped_all, offsets_all = [], []
    dst_all, src_all, local_all, s_all, g_all, row_all = [], [], [], [], [], []
    n_total = n_rows = max_atoms = max_rows = 0
    positions = [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in positions]
    if not positions:
        return empty_neighbors(), True
    cells = np.stack([np.asarray(c, dtype=np.float64).reshape(3, 3) for c in cells])
    dets = np.linalg.det(cells)  # [3, 3] algebra for the whole batch at once
    if (np.abs(dets) < 1e-12).any():
        raise ValueError("the cell is singular (zero volume)")
    invs = np.linalg.inv(cells)
    ranges = image_ranges(cells, dets, cutoff)
    for pos, cell, inv, n in zip(positions, cells, invs, ranges):
        # wrapped = pos - off @ cell with off = floor(pos @ inv), as the oracle wraps
        frac = pos @ inv
        off = np.floor(frac)
        over = (frac - off) >= 1.0  # floor rounding can leave exactly 1.0
        if over.any():
            off[over] += 1.0
        wrapped = pos - off @ cell if off.any() else pos  # x - 0.0 is x (up to the sign of a zero)
        off = off.astype(np.int64)
        shifts, offsets = image_grid(cell, n)
        pairs, s = nl.compute(wrapped, cell, True, "PS")  # copies: kept past the next call
        pairs = pairs.view(np.int64)  # atom indices < 2**63: the same bits
        lim = int(n.min())
        if s.size and (int(s.min()) < -lim or int(s.max()) > lim):
            # vesin's shifts fit the grid (|s_k| <= n_k) for any pair within the cutoff;
            # a candidate outside it is beyond the cutoff and is dropped here
            inside = (np.abs(s) <= n).all(axis=1)
            pairs, s = pairs[inside], s[inside]
        m2 = 2 * int(n[2]) + 1
        m12 = (2 * int(n[1]) + 1) * m2
        g = s @ np.array([m12, m2, 1], dtype=np.int64) + int(shifts.shape[0] // 2)  # row of s in ``shifts``
        dst_all.append(pairs[:, 0] + n_total)
        src_all.append(pairs[:, 1] + n_total)
        local_all.append(pairs[:, 1])
        if off.any():  # back to the caller's positions (pos = wrapped + off @ cell): s - off[j] + off[i]
            s = s - off[pairs[:, 1]] + off[pairs[:, 0]]
        s_all.append(s)
        g_all.append(g)
        row_all.append(g + n_rows)  # row in the batch's table of offsets
        wrapped_all.append(wrapped)
        offsets_all.append(offsets)
        n_total += pos.shape[0]
        n_rows += shifts.shape[0]
        max_atoms, max_rows = max(max_atoms, pos.shape[0]), max(max_rows, shifts.shape[0])
    if n_total == 0:
        return empty_neighbors(), True
    dst, src, g, row = (np.concatenate(a) for a in (dst_all, src_all, g_all, row_all))
    wrapped, offsets = np.concatenate(wrapped_all), np.concatenate(offsets_all)
    # the oracle's arithmetic, operation for operation: image = wrapped[src] + offset,
    # then ((0 + dx^2) + dy^2) + dz^2 (0 + x is x, so the leading zero is dropped)
    diff = (wrapped[src] + offsets[row]) - wrapped[dst]
    sq = diff * diff
    d2 = sq[:, 0] + sq[:, 1]
    d2 += sq[:, 2]
    # (i, i, 0) is not an edge; a zero-length candidate with src == dst and any other
    # shift would need a singular cell, which is refused above
    keep = (d2 <= (cutoff + CUTOFF_SLACK) ** 2) & ((src != dst) | (d2 > 0.0))
    src, dst, g, d2 = src[keep], dst[keep], g[keep], d2[keep]
    local = np.concatenate(local_all)[keep]
    shift = np.concatenate(s_all)[keep].astype(np.int64)  # the grid row's shift, in the caller's frame
    dist = np.sqrt(d2)
    symmetric = not d2.size or float(dist.max()) < cutoff + CUTOFF_SLACK - 1e-7
    # canonical order; within one (src, dst) the grid row orders the shifts as they do
    order = _order(dst, np.rint(dist * 10.0**DIST_DECIMALS), local, g, max_atoms, max_rows)
    if order is None:
        return sort_neighbors(Neighbors(src, dst, shift, dist)), symmetric
    return Neighbors(src[order], dst[order], shift[order], dist[order]), symmetric


def _order(dst: np.ndarray, dkey: np.ndarray, src_local: np.ndarray, code: np.ndarray, max_atoms: int,
           n_codes: int) -> np.ndarray | None:
    """Argsort by (dst, dkey, src, code) through one int64 key; None when it would overflow.

    The source enters by its index within its structure (the receiver already fixes
    the structure), which keeps the key of a batch of structures within 64 bits.
    """
    if dst.size < 2:
        return np.arange(dst.size)
    d_span = float(dkey.max()) + 1.0
    if d_span * (float(dst.max()) + 1.0) * max_atoms * n_codes >= _INT64_LIMIT:
        return None
    key = ((dst * int(d_span) + dkey.astype(np.int64)) * max_atoms + src_local) * n_codes + code
    return np.argsort(key)
