"""Other libraries' periodic neighbour lists, for ``make perf``'s side-by-side table.

Each peer takes prepared inputs (so conversions are not timed) and returns
``(src, dst, shift)`` in this suite's convention: the edge vector is
``pos[src] + shift @ cell - pos[dst]``. Peers that are not installed are skipped
(``available_peers``); the perf-only ones come with the ``perf`` extra.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pymatgen.core import Structure

from bench.graphs.neighbors import find_neighbors

Edges = tuple[np.ndarray, np.ndarray, np.ndarray]


def _vesin(cutoff: float) -> tuple[Callable[[Structure], Any], Callable[[Any], Edges]]:
    from vesin import NeighborList

    nl = NeighborList(cutoff=cutoff, full_list=True, n_threads=1)

    def run(inputs: Any) -> Edges:
        i, j, s = nl.compute(inputs[0], inputs[1], True, "ijS")
        return j, i, s

    return (lambda s: (np.array(s.cart_coords), np.array(s.lattice.matrix))), run


def _pymatgen(cutoff: float):
    def run(structure: Structure) -> Edges:
        center, point, image, _ = structure.get_neighbor_list(cutoff)
        return point, center, image

    return (lambda s: s), run


def _matscipy(cutoff: float):
    from matscipy.neighbours import neighbour_list

    def run(inputs: Any) -> Edges:
        i, j, s = neighbour_list("ijS", positions=inputs[0], cell=inputs[1], pbc=[True] * 3, cutoff=cutoff)
        return j, i, s

    return (lambda s: (np.array(s.cart_coords), np.array(s.lattice.matrix))), run


def _ase(cutoff: float):
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    def run(atoms: Any) -> Edges:
        i, j, s = neighbor_list("ijS", atoms, cutoff)
        return j, i, s

    return (lambda s: Atoms(numbers=s.atomic_numbers, positions=s.cart_coords, cell=s.lattice.matrix, pbc=True)), run


PEERS = {"vesin": _vesin, "pymatgen": _pymatgen, "matscipy": _matscipy, "ase": _ase}


def available_peers() -> list[str]:
    """The peers whose library imports here."""
    names = []
    for name, module in (("vesin", "vesin"), ("pymatgen", "pymatgen.core"), ("matscipy", "matscipy.neighbours"),
                         ("ase", "ase.neighborlist")):
        try:
            __import__(module)
        except ImportError:
            continue
        names.append(name)
    return names


def edge_keys(src: np.ndarray, dst: np.ndarray, shift: np.ndarray, n_atoms: int, bound: int = 64) -> np.ndarray:
    """Sorted int64 keys of (src, dst, shift) for |shift| <= bound: equal arrays = equal edge sets."""
    span = 2 * bound + 1
    s = np.asarray(shift, dtype=np.int64) + bound
    key = ((np.asarray(src, np.int64) * n_atoms + np.asarray(dst, np.int64)) * span + s[:, 0]) * span + s[:, 1]
    return np.sort(key * span + s[:, 2])


def compare_edges(structure: Structure, edges: Edges, cutoff: float) -> str:
    """'same' when the edge set equals ``find_neighbors``'s; 'boundary' when every difference
    lies within 1e-6 Å of the cutoff (tools differ on <= vs <); 'different' otherwise."""
    pos, cell = np.array(structure.cart_coords), np.array(structure.lattice.matrix)
    ours = find_neighbors(pos, cell, cutoff)
    n = len(structure)
    a = edge_keys(ours.src, ours.dst, ours.shift, n)
    b = edge_keys(*edges, n)
    if np.array_equal(a, b):
        return "same"
    extra = np.setxor1d(a, b)
    span = 129
    s = np.stack([(extra // span**2) % span, (extra // span) % span, extra % span], axis=1) - 64
    pair = extra // span**3
    src, dst = pair // n, pair % n
    length = np.linalg.norm(pos[src] + s @ cell - pos[dst], axis=1)
    return "boundary" if np.all(np.abs(length - cutoff) < 1e-6) else "different"
