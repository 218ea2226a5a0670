"""Tiny hand-made crystals for tests (no data files).

Each function returns a fresh pymatgen ``Structure``; lengths in Å.
"""
from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure


def simple_cubic(a: float = 3.0, species: str = "Po") -> Structure:
    """One atom in a cube of edge a."""
    return Structure(Lattice.cubic(a), [species], [[0.0, 0.0, 0.0]])


def bcc(a: float = 3.3, species: str = "Fe") -> Structure:
    """One-atom primitive cell of bcc with conventional edge a: rows a/2 (-1,1,1), (1,-1,1), (1,1,-1)."""
    return Structure(Lattice(a / 2 * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])), [species], [[0, 0, 0]])


def fcc(a: float = 3.6, species: str = "Cu") -> Structure:
    """One-atom primitive cell of fcc with conventional edge a: rows a/2 (0,1,1), (1,0,1), (1,1,0)."""
    return Structure(Lattice(a / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])), [species], [[0, 0, 0]])


def rocksalt(a: float = 5.64) -> Structure:
    """Conventional 8-atom NaCl cell (fcc Bravais lattice, primitive cell 2 atoms)."""
    fcc_sites = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    coords = np.concatenate([fcc_sites, (fcc_sites + [0.5, 0, 0]) % 1.0])
    return Structure(Lattice.cubic(a), ["Na"] * 4 + ["Cl"] * 4, coords)


def hcp(a: float = 2.5, c: float | None = None, species: str = "Mg") -> Structure:
    """Two-atom hcp cell; ideal c = a * sqrt(8/3) by default."""
    c = a * np.sqrt(8.0 / 3.0) if c is None else c
    return Structure(
        Lattice.hexagonal(a, c), [species, species], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
    )


def skewed_triclinic() -> Structure:
    """A two-atom triclinic crystal given in a strongly skewed (far from reduced) basis.

    The rows are integer combinations of a mildly oblique cell, so its Niggli-reduced
    cell is short and the skewed basis has perpendicular widths much smaller than
    its vector lengths.
    """
    reduced = np.array([[3.1, 0.0, 0.0], [0.4, 3.3, 0.0], [-0.5, 0.3, 3.6]])
    combo = np.array([[1, 0, 0], [3, 1, 0], [-2, 4, 1]])  # det 1
    coords = np.array([[0.05, 0.1, 0.2], [0.55, 0.45, 0.7]]) @ reduced  # Cartesian
    return Structure(Lattice(combo @ reduced), ["Na", "Cl"], coords, coords_are_cartesian=True)


def sheared(structure: Structure) -> Structure:
    """The same crystal in the basis (a, a + b, c), same Cartesian positions."""
    a, b, c = structure.lattice.matrix
    return Structure(
        Lattice(np.stack([a, a + b, c])), structure.species, structure.cart_coords, coords_are_cartesian=True
    )


def supercell(structure: Structure, scaling: list[int]) -> Structure:
    """A diagonal supercell (a new object; the input is unchanged)."""
    return structure.copy().make_supercell(scaling)


def same_site_map(big: Structure, small: Structure) -> np.ndarray:
    """[len(big)] index of the atom of ``small`` that each atom of ``big`` is a lattice translate of."""
    frac = big.cart_coords @ np.linalg.inv(small.lattice.matrix)
    ref = small.cart_coords @ np.linalg.inv(small.lattice.matrix)
    diff = frac[:, None, :] - ref[None, :, :]
    off = np.abs(diff - np.rint(diff)).max(axis=-1)
    match = off.argmin(axis=1)
    assert (off[np.arange(len(big)), match] < 1e-6).all(), "not the same crystal"
    return match
