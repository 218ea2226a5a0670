"""``lattice``: ``multi_edge`` plus lattice self-loops (``edge_type`` 1), Matformer's set made mirror-closed.

Matformer (Yan et al. 2022) adds loops along a, b, c, a+b, a+c, b+c. That set is not closed
under the signed permutations of the reduced basis, and a crystal whose lattice has
several equally reduced bases (every tetragonal, orthorhombic, cubic ... lattice) got
different loops in different bases: the same crystal given as (a, b, c) or (b, a, -c)
had ±(a+c) or ±(a-c). It also gave a mirror-symmetric cell a handed loop set, which
is what let direction-aware models beat chance on ``probe_chirality``. The loops here
add the differences: ±a, ±b, ±c, ±(a±b), ±(a±c), ±(b±c), 18 per atom, a set that every
signed permutation of the basis maps onto itself (docs/design.md, "Lattice loops:
mirror-closed").
"""
from __future__ import annotations


import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from bench.defaults import PRIMITIVE_TOLERANCE
from bench.graphs.edges import cap_neighbors, neighbour_edges, to_tensors
from bench.graphs.errors import GraphError
from bench.graphs.neighbors import Neighbors, sort_neighbors
from bench.graphs.registry import VARIANTS

# Å; the primitive cell is found with PRIMITIVE_TOLERANCE per coordinate, so a
# translate may sit up to about sqrt(3) times that from where t puts it.
MATCH_TOLERANCE = 4 * PRIMITIVE_TOLERANCE
# Lattice lengths (Å) and angles (degrees) are rounded to this many decimals (fractional
# coordinates to two more) before the primitive cell is sought: far above float noise,
# far below any physical difference.
CANONICAL_DECIMALS = 6


def primitive_translations(structure: Structure) -> np.ndarray:
    """[9, 3] translations a, b, c, a+b, a-b, a+c, a-c, b+c, b-c (Å) of the Niggli-reduced primitive lattice.

    Symmetric lattices have several equally reduced bases (hexagonal: a+c or a-c), and
    which one the reduction returns depends on float noise in the orientation. So the
    primitive cell and its reduction are computed on a canonical copy of the structure
    (lattice rebuilt from its rounded lengths and angles, rounded fractional
    coordinates), which is bit-identical for any rotation of the same input, and the
    result is carried back through fractional coordinates. The loops of a rotated crystal
    are then the rotated loops, exactly.
    """
    canonical = _canonical_copy(structure)
    prim = canonical.get_primitive_structure(tolerance=PRIMITIVE_TOLERANCE)
    a, b, c = prim.lattice.get_niggli_reduced_lattice().matrix
    # sums and differences: the set is closed under sign flips and permutations of a, b, c
    # (the ambiguity of a reduced basis, mirrors included), so no basis choice shows in it
    frac = np.stack([a, b, c, a + b, a - b, a + c, a - c, b + c, b - c]) @ np.linalg.inv(canonical.lattice.matrix)
    return frac @ structure.lattice.matrix


def _canonical_copy(structure: Structure) -> Structure:
    """The structure in a frame fixed by its own lattice parameters, with its float noise rounded away."""
    lengths = np.round(structure.lattice.abc, CANONICAL_DECIMALS)
    angles = np.round(structure.lattice.angles, CANONICAL_DECIMALS)
    frac = np.round(structure.frac_coords, CANONICAL_DECIMALS + 2)
    return Structure(Lattice.from_parameters(*lengths, *angles), structure.species, frac)


def loop_edges(
    pos: np.ndarray, cell: np.ndarray, species: np.ndarray, translations: np.ndarray, structure_id: str
) -> Neighbors:
    """The 2 * len(translations) directed loop edges of every atom.

    For translation t and receiving atom i the loop is (src=j, dst=i, shift=s) with
    ``pos[j] + s @ cell - pos[i] == t`` (within ``MATCH_TOLERANCE``): j is i itself
    in a primitive cell, its translate in a supercell. The -t loops are the reverses
    of the +t loops, which is exact because each t permutes the atoms.

    Args:
        pos: [N, 3] positions (Å); cell: [3, 3] rows (Å); species: [N] labels that must match;
        translations: [T, 3] (Å), T nonzero distinct translations (not containing ±pairs).
    """
    inv = np.linalg.inv(cell)
    n_atoms = len(pos)
    same_species = species[:, None] == species[None, :]
    src, dst, shift, dist = [], [], [], []
    for t in translations:
        diff = (pos + t)[:, None, :] - pos[None, :, :]  # [i, j, 3]: where j's image must be
        s = np.rint(diff @ inv)
        resid = np.linalg.norm(diff - s @ cell, axis=-1)
        resid[~same_species] = np.inf
        j = resid.argmin(axis=1)
        best = resid[np.arange(n_atoms), j]
        if (best > MATCH_TOLERANCE).any() or np.unique(j).size != n_atoms:
            atom = int(np.argmax(best)) if (best > MATCH_TOLERANCE).any() else 0
            raise GraphError(
                f"structure {structure_id}: atom {atom} has no translate by the primitive "
                f"lattice vector {np.round(t, 4).tolist()} Å (off by {best[atom]:.3g} Å, "
                f"tolerance {MATCH_TOLERANCE} Å); the primitive cell disagrees with the structure"
            )
        src.append(j)
        dst.append(np.arange(n_atoms))
        shift.append(s[np.arange(n_atoms), j].astype(np.int64))
        dist.append(np.full(n_atoms, np.linalg.norm(t)))
    plus = Neighbors(np.concatenate(src), np.concatenate(dst), np.concatenate(shift), np.concatenate(dist))
    minus = Neighbors(plus.dst, plus.src, -plus.shift, plus.dist)
    return sort_neighbors(Neighbors(*(np.concatenate([p, m]) for p, m in zip(plus, minus))))


@VARIANTS.decorator("lattice")
def lattice(
    structure: Structure,
    pos: np.ndarray,
    cell: np.ndarray,
    *,
    cutoff: float,
    max_neighbors: int | None,
    structure_id: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``multi_edge`` edges (type 0, capped) plus 18 lattice loops per atom (type 1, never capped).

    The loops are ±a, ±b, ±c, ±(a±b), ±(a±c), ±(b±c) of the Niggli-reduced primitive
    lattice (Matformer's 12 plus the 6 differences, module docstring), so a supercell
    or another basis of the crystal gets the same loops. Raises ``GraphError`` when an atom has no translate.
    """
    nb = cap_neighbors(neighbour_edges(pos, cell, cutoff, structure_id), max_neighbors, len(pos))
    species = np.array([str(site.species) for site in structure])
    loops = loop_edges(pos, cell, species, primitive_translations(structure), structure_id)
    return to_tensors([(nb, 0), (loops, 1)])
