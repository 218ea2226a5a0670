"""probe_self_image: LJ lattice energies against classical lattice sums and brute force."""
from __future__ import annotations

import numpy as np
import pytest

from tasks import get_task
from tasks.synthetic import self_image as si
from tests.tasks.synthetic.helpers import graph

# E/N = 2 eps [A12 (sigma/d)^12 - A6 (sigma/d)^6], d the nearest-neighbour distance
# (Lennard-Jones & Ingham 1925; fcc/hcp as tabulated in Kittel ch. 3; bcc A6 is 12.25367,
# not the 12.2533 some tables print)
LATTICE_SUMS = {"sc": (6.20215, 8.40192), "bcc": (9.11418, 12.25367), "fcc": (12.13188, 14.45392),
                "hcp": (12.13229, 14.45489)}


def brute_force_lj(cell, frac, r_max):
    """Independent double loop over images plus the r^-6 continuum tail beyond r_max (meV/atom)."""
    pos = frac @ cell
    n_img = int(np.ceil(r_max / min(np.linalg.det(cell) / np.linalg.norm(np.cross(cell[(k + 1) % 3],
                                                                                    cell[(k + 2) % 3]))
                                    for k in range(3)))) + 1
    rng = np.arange(-n_img, n_img + 1)
    shifts = np.array(np.meshgrid(rng, rng, rng, indexing="ij")).reshape(3, -1).T @ cell
    energy = 0.0
    for i in range(len(pos)):
        for j in range(len(pos)):
            r = np.linalg.norm(pos[j] + shifts - pos[i], axis=1)
            r = r[(r > 1e-9) & (r <= r_max)]
            energy += 0.5 * np.sum(4 * si.EPSILON * ((si.SIGMA / r) ** 12 - (si.SIGMA / r) ** 6))
    density = len(pos) / abs(np.linalg.det(cell))
    tail = 0.5 * density * 4 * np.pi * -4 * si.EPSILON * si.SIGMA**6 / (3 * r_max**3)  # r^-12 tail negligible
    return energy / len(pos) + tail


@pytest.mark.parametrize("kind", si.LATTICES)
@pytest.mark.parametrize("ratio", [1.0, 1.12, 1.45])
def test_energy_equals_classical_lattice_sums(kind, ratio):
    d = ratio * si.SIGMA
    cell, frac = si.lattice_cell(kind, d)
    a12, a6 = LATTICE_SUMS[kind]
    expected = 2 * si.EPSILON * (a12 * (si.SIGMA / d) ** 12 - a6 * (si.SIGMA / d) ** 6)
    assert si.lj_energy_per_atom(cell, frac) == pytest.approx(expected, rel=2e-5)


@pytest.fixture(scope="module")
def data():
    return get_task("probe_self_image").load()


def test_targets_match_brute_force_to_30_sigma(data):
    for i in (0, 1, 2, 3, 5, 8):  # covers all four lattices
        s = data.structures[i]
        ref = brute_force_lj(s.lattice.matrix, s.frac_coords, 30 * si.SIGMA)
        assert data.targets[i] == pytest.approx(ref, abs=2e-3)  # meV


def test_sizes_kinds_and_range(data):
    kinds = [i.split("-")[-1] for i in data.ids]
    assert {k: kinds.count(k) for k in si.LATTICES} == {k: si.N_PER_TYPE for k in si.LATTICES}
    for s, k in zip(data.structures, kinds):
        assert len(s) == (2 if k == "hcp" else 1)
    assert data.targets.min() < -80 and data.targets.max() > -20  # both sides of the LJ minimum


def test_one_atom_cells_are_edgeless_under_distance_but_not_multi_edge(data):
    one = next(i for i, s in enumerate(data.structures) if len(s) == 1)
    assert graph(data.structures[one], "distance").edge_index.shape[1] == 0
    g = graph(data.structures[one], "multi_edge")
    assert g.edge_index.shape[1] >= 6 and (g.edge_index[0] == g.edge_index[1]).all()  # all self-images
