"""The lattice-loop set is mirror-closed (docs/design.md, "Lattice loops: mirror-closed").

Each test fails on Matformer's original 12 loops (±a, ±b, ±c, ±(a+b), ±(a+c), ±(b+c)).
"""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from bench.graphs import build_graph
from tests.bench.graphs._helpers import vectors64

MIRROR_Z = np.diag([1.0, 1.0, -1.0])


def loop_set(structure: Structure, atom: int = 0, variant: str = "lattice") -> set[tuple]:
    """Loop vectors (Å, rounded) received by one atom."""
    data = build_graph(structure, variant, cutoff=5.0, max_neighbors=12)
    keep = (data.edge_type.numpy() == 1) & (data.edge_index[1].numpy() == atom)
    return {tuple(v) for v in np.round(vectors64(structure, data)[keep], 6).tolist()}


def tetragonal_pair(basis: np.ndarray) -> Structure:
    """A low-symmetry two-atom motif in a 4 x 4 x 6 Å tetragonal lattice, given in ``basis`` (rows)."""
    cart = np.array([[0.1, 0.2, 0.3], [0.6, 0.55, 0.8]]) * [4.0, 4.0, 6.0]
    return Structure(Lattice(basis), ["Na", "Cl"], cart, coords_are_cartesian=True)


@pytest.mark.parametrize("basis", [
    [[0, 4.0, 0], [4.0, 0, 0], [0, 0, -6.0]],  # right-handed, same lengths and angles
    [[4.0, 0, 0], [0, 4.0, 0], [0, 0, -6.0]],  # left-handed
    [[-4.0, 0, 0], [0, 4.0, 0], [0, 0, 6.0]],
])
@pytest.mark.parametrize("variant", ["lattice", "distance_lattice"])
def test_equally_reduced_bases_give_the_same_loops(basis, variant):
    reference = loop_set(tetragonal_pair(np.diag([4.0, 4.0, 6.0])), variant=variant)
    assert len(reference) == 18
    assert loop_set(tetragonal_pair(np.array(basis)), variant=variant) == reference


@pytest.mark.parametrize("lattice", [Lattice.tetragonal(4.0, 6.0), Lattice.orthorhombic(3.5, 4.5, 6.5),
                                     Lattice.cubic(3.0), Lattice.monoclinic(3.5, 4.5, 6.5, 100)])
def test_loops_of_a_mirror_symmetric_lattice_are_mirror_closed(lattice):
    # a mirror of each lattice: z -> -z, or y -> -y for the monoclinic one (pymatgen puts its
    # unique axis b along y, perpendicular to the a-c plane that holds beta)
    s = Structure(lattice, ["Na"], [[0, 0, 0]])
    mirror = np.diag([1.0, -1.0, 1.0]) if lattice.angles[1] != 90 else MIRROR_Z
    loops = loop_set(s)
    assert {tuple(v) for v in np.round(np.array(sorted(loops)) @ mirror, 6).tolist()} == loops


def test_mirror_image_gets_the_mirrored_loops():
    # a chiral arrangement and its mirror image in the same (mirror-symmetric) cell: the loops
    # of the image are the mirror of the loops of the original, so the graph of the mirror
    # image is the mirror image of the graph
    from tasks import get_task

    data = get_task("probe_chirality").load()
    for pair in (0, 1, 2):
        right, left = (data.structures[k] for k in np.flatnonzero(data.groups == pair))
        mirrored = {tuple(v) for v in np.round(np.array(sorted(loop_set(right))) @ MIRROR_Z, 6).tolist()}
        assert loop_set(left) == mirrored == loop_set(right)
