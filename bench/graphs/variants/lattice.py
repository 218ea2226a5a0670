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

import hashlib
from collections import OrderedDict

import numpy as np
from pymatgen.core import Lattice, Structure
from scipy.spatial import cKDTree

from bench.defaults import PRIMITIVE_TOLERANCE
from bench.graphs.batch import StructureBatch
from bench.graphs.edges import batch_neighbour_edges, cap_neighbors, register_batched
from bench.graphs.errors import GraphError
from bench.graphs.neighbors import Neighbors, cell_widths, sort_neighbors

# Å; the primitive cell is found with PRIMITIVE_TOLERANCE per coordinate, so a
# translate may sit up to about sqrt(3) times that from where t puts it.
MATCH_TOLERANCE = 4 * PRIMITIVE_TOLERANCE
# Lattice lengths (Å) and angles (degrees) are rounded to this many decimals (fractional
# coordinates to two more) before the primitive cell is sought: far above float noise,
# far below any physical difference.
CANONICAL_DECIMALS = 6
# Structures whose primitive translations are remembered in this process (~100 bytes
# each): the search costs milliseconds and does not depend on the cutoff or the cap.
TRANSLATION_CACHE_SIZE = 1 << 18
_CANDIDATES = 8  # translates sought per atom by the tree before the dense fallback


class _TranslationCache(OrderedDict):
    """LRU map: digest of a structure's canonical copy -> [9, 3] fractional translations."""

    def remember(self, key: bytes, value: np.ndarray) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > TRANSLATION_CACHE_SIZE:
            self.popitem(last=False)


TRANSLATIONS = _TranslationCache()


def canonical_digest(structure: Structure) -> bytes:
    """16-byte digest of what the canonical copy is built from (rounded lattice, coordinates, species)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.round(structure.lattice.abc, CANONICAL_DECIMALS).tobytes())
    h.update(np.round(structure.lattice.angles, CANONICAL_DECIMALS).tobytes())
    h.update(np.round(structure.frac_coords, CANONICAL_DECIMALS + 2).tobytes())
    h.update("\0".join(map(str, structure.species)).encode())
    return h.digest()


def primitive_translations(structure: Structure) -> np.ndarray:
    """[9, 3] translations a, b, c, a+b, a-b, a+c, a-c, b+c, b-c (Å) of the Niggli-reduced primitive lattice.

    Symmetric lattices have several equally reduced bases (hexagonal: a+c or a-c), and
    which one the reduction returns depends on float noise in the orientation. So the
    primitive cell and its reduction are computed on a canonical copy of the structure
    (lattice rebuilt from its rounded lengths and angles, rounded fractional
    coordinates), which is bit-identical for any rotation of the same input, and the
    result is carried back through fractional coordinates. The loops of a rotated crystal
    are then the rotated loops, exactly. The fractional result depends on the canonical
    copy only, so it is remembered per ``canonical_digest`` (``TRANSLATIONS``).
    """
    key = canonical_digest(structure)
    frac = TRANSLATIONS.get(key)
    if frac is None:
        frac = canonical_translations(structure)
    TRANSLATIONS.remember(key, frac)
    return frac @ structure.lattice.matrix


def canonical_translations(structure: Structure) -> np.ndarray:
    """[9, 3] the loop translations in fractional coordinates of the canonical copy's lattice."""
    canonical = _canonical_copy(structure)
    prim = canonical.get_primitive_structure(tolerance=PRIMITIVE_TOLERANCE)
    a, b, c = prim.lattice.get_niggli_reduced_lattice().matrix
    # sums and differences: the set is closed under sign flips and permutations of a, b, c
    # (the ambiguity of a reduced basis, mirrors included), so no basis choice shows in it
    return np.stack([a, b, c, a + b, a - b, a + c, a - c, b + c, b - c]) @ np.linalg.inv(canonical.lattice.matrix)


def _canonical_copy(structure: Structure) -> Structure:
    """The structure in a frame fixed by its own lattice parameters, with its float noise rounded away."""
    lengths = np.round(structure.lattice.abc, CANONICAL_DECIMALS)
    angles = np.round(structure.lattice.angles, CANONICAL_DECIMALS)
    frac = np.round(structure.frac_coords, CANONICAL_DECIMALS + 2)
    return Structure(Lattice.from_parameters(*lengths, *angles), structure.species, frac)


def loop_edges(
    pos: np.ndarray, cell: np.ndarray, species: np.ndarray, translations: np.ndarray, structure_id: str
) -> Neighbors:
    """The 2 * len(translations) directed loop edges of every atom, in canonical order.

    For translation t and receiving atom i the loop is (src=j, dst=i, shift=s) with
    ``pos[j] + s @ cell - pos[i] == t`` (within ``MATCH_TOLERANCE``): j is i itself
    in a primitive cell, its translate in a supercell. The -t loops are the reverses
    of the +t loops, which is exact because each t permutes the atoms.

    The translate is looked up in a periodic k-d tree over fractional coordinates
    (O(N log N)); when the tree is inconclusive, or a translate is missing, the dense
    O(N^2) comparison decides (and raises ``GraphError`` naming the atom).

    Args:
        pos: [N, 3] positions (Å); cell: [3, 3] rows (Å); species: [N] labels that must match;
        translations: [T, 3] (Å), T nonzero distinct translations (not containing ±pairs).
    """
    found = _translates_tree(pos, cell, species, translations)
    if found is None:
        found = _translates_dense(pos, cell, species, translations, structure_id)
    src, shift = found
    n_atoms, n_t = len(pos), len(translations)
    dst = np.tile(np.arange(n_atoms), n_t)
    # one norm per vector, as the oracle computes it (a batched norm may round differently)
    dist = np.repeat([np.linalg.norm(t) for t in translations], n_atoms)
    plus = Neighbors(src, dst, shift, dist)
    minus = Neighbors(plus.dst, plus.src, -plus.shift, plus.dist)
    return sort_neighbors(Neighbors(*(np.concatenate([p, m]) for p, m in zip(plus, minus))))


def _translates_tree(
    pos: np.ndarray, cell: np.ndarray, species: np.ndarray, translations: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(src [T*N], shift [T*N, 3]) of each atom's translate, or None to defer to the dense search.

    A Cartesian miss of at most MATCH_TOLERANCE is a fractional miss of at most
    MATCH_TOLERANCE / width_k in coordinate k, so every acceptable translate lies
    within that (max-norm) radius of the target in the unit torus of fractional space.
    """
    n_atoms = len(pos)
    inv = np.linalg.inv(cell)
    radius = MATCH_TOLERANCE / float(cell_widths(cell).min()) * 1.01  # margin against rounding
    if radius >= 0.25:  # a cell thinner than ~0.16 Å: let the dense search judge
        return None
    frac = np.mod(pos @ inv, 1.0)
    frac[frac >= 1.0] = 0.0  # mod can round up to exactly 1
    target = pos[None, :, :] + translations[:, None, :]  # [T, N, 3]
    tfrac = np.mod(target.reshape(-1, 3) @ inv, 1.0)
    tfrac[tfrac >= 1.0] = 0.0
    k = min(_CANDIDATES, n_atoms)
    dist, cand = cKDTree(frac, boxsize=1.0).query(tfrac, k=k, p=np.inf, distance_upper_bound=radius)
    cand = cand.reshape(-1, k)
    if k == _CANDIDATES and np.isfinite(dist.reshape(-1, k)[:, -1]).any():
        return None  # more than k atoms near some target: candidates may be incomplete
    valid = cand < n_atoms  # missing neighbours come back as index n_atoms
    cand = np.where(valid, cand, 0)
    receiver = np.tile(np.arange(n_atoms), len(translations))
    valid &= species[cand] == species[receiver][:, None]
    # the oracle's arithmetic: s = rint((pos_i + t - pos_j) @ inv), residual |diff - s @ cell|
    diff = target.reshape(-1, 3)[:, None, :] - pos[cand]
    s = np.rint(diff @ inv)
    resid = np.linalg.norm(diff - s @ cell, axis=-1)
    resid[~valid] = np.inf
    # equal residuals go to the lowest atom index, as the dense argmin does
    by_index = np.argsort(cand + np.where(valid, 0, n_atoms), axis=1, kind="stable")
    cand, s, resid = (np.take_along_axis(a, by_index if a.ndim == 2 else by_index[..., None], axis=1)
                      for a in (cand, s, resid))
    best = resid.argmin(axis=1)
    rows = np.arange(cand.shape[0])
    if not (resid[rows, best] <= MATCH_TOLERANCE).all():
        return None
    src = cand[rows, best]
    if (np.sort(src.reshape(len(translations), n_atoms), axis=1) != np.arange(n_atoms)).any():
        return None  # not a permutation of the atoms
    return src.astype(np.int64), s[rows, best].astype(np.int64)


def _translates_dense(
    pos: np.ndarray, cell: np.ndarray, species: np.ndarray, translations: np.ndarray, structure_id: str
) -> tuple[np.ndarray, np.ndarray]:
    """The dense [N, N] comparison per translation; raises ``GraphError`` naming a missing translate."""
    inv = np.linalg.inv(cell)
    n_atoms = len(pos)
    same_species = species[:, None] == species[None, :]
    src, shift = [], []
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
        shift.append(s[np.arange(n_atoms), j].astype(np.int64))
    return np.concatenate(src), np.concatenate(shift)


def species_labels(structure: Structure) -> np.ndarray:
    """[N] int label per site; equal labels = equal species (element and oxidation state)."""
    codes: dict = {}
    return np.array([codes.setdefault(sp, len(codes)) for sp in structure.species], dtype=np.int64)


@register_batched("lattice")
def lattice(batch: StructureBatch, *, cutoff: float, max_neighbors: int | None) -> list[tuple[Neighbors, int]]:
    """``multi_edge`` edges (type 0, capped) plus 18 lattice loops per atom (type 1, never capped).

    The loops are ±a, ±b, ±c, ±(a±b), ±(a±c), ±(b±c) of the Niggli-reduced primitive
    lattice (Matformer's 12 plus the 6 differences, module docstring), so a supercell
    or another basis of the crystal gets the same loops. Raises ``GraphError`` when an atom has no translate.
    """
    nb = cap_neighbors(batch_neighbour_edges(batch, cutoff), max_neighbors, batch.n_atoms, canonical=True)
    loops = []
    for b, structure in enumerate(batch.structures):
        pos, cell = batch.positions[b], batch.cells[b]
        one = loop_edges(pos, cell, species_labels(structure), primitive_translations(structure), batch.labels[b])
        first = batch.offsets[b]
        loops.append(Neighbors(one.src + first, one.dst + first, one.shift, one.dist))
    return [(nb, 0), (Neighbors(*(np.concatenate(f) for f in zip(*loops))), 1)]
