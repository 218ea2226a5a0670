"""probe_ewald v2: Ewald energies against known answers, identical graphs within the cutoff,
and a per-formula baseline that fails."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Element, Lattice, Structure

from bench.graphs import build_graph, edge_vectors
from tasks import get_task
from tasks.synthetic import ewald
from tasks.synthetic.baselines import per_formula_mean_scores, reduced_formulas

COULOMB = 14.399645  # e^2 / (4 pi eps0) in eV Å
MADELUNG_ROCKSALT = 1.747565  # per ion pair, referred to the nearest-neighbour distance
CUTOFF_VARIANTS = ["distance", "multi_edge", "lattice", "multi_edge_noself", "distance_lattice", "multi_edge_degree"]


@pytest.fixture(scope="module")
def data():
    return get_task("probe_ewald").load()


def test_rocksalt_madelung():
    a = 5.64
    s = Structure(Lattice.cubic(a), ["Na"] * 4 + ["Cl"] * 4,
                  [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0], [.5, 0, 0], [0, .5, 0], [0, 0, .5], [.5, .5, .5]])
    expected = -MADELUNG_ROCKSALT * COULOMB / (a / 2) / 2  # per atom = half per ion pair
    assert ewald.ewald_energy_per_atom(s, {"Na": 1, "Cl": -1}) == pytest.approx(expected, rel=1e-5)


def test_energy_differences_are_the_capacitor_law():
    # slabs of net charge +-q per a x a column, centres x apart in a cell of length L (tin-foil):
    # energy per column 2 pi k q^2 x (L - x) / (a^2 L), so differences between two x follow it exactly
    species, charges, a = ewald.FORMULAS[0]
    length = ewald.cell_length(a)
    energies = {}
    for x in (a + ewald.MIN_GAP, a + ewald.MIN_GAP + 7.0, a + ewald.MIN_GAP + ewald.SPARE):
        cell, sites, pos = ewald.slabs(species, a, x)
        s = Structure(Lattice(cell), sites, pos, coords_are_cartesian=True)
        energies[x] = ewald.ewald_energy_per_atom(s, dict(zip(species, charges)))
    xs = sorted(energies)
    for x in xs[1:]:
        law = 2 * np.pi * COULOMB * (x * (length - x) - xs[0] * (length - xs[0])) / (a**2 * length) / 6
        assert energies[x] - energies[xs[0]] == pytest.approx(law, rel=1e-4)


def test_generated_rows(data):
    assert len(data) == 300
    for s, rid in zip(data.structures, data.ids):
        assert s.is_ordered and all(isinstance(sp, Element) for sp in s.species)  # charges not stored
        species, charges, _ = next(f for f in ewald.FORMULAS if rid.endswith("".join(f[0])))
        assert sum(dict(zip(species, charges))[site.specie.symbol] for site in s) == 0
    for i in (0, 1, 7):
        charges = dict(zip(*next(f for f in ewald.FORMULAS if data.ids[i].endswith("".join(f[0])))[:2]))
        assert ewald.ewald_energy_per_atom(data.structures[i], charges) == pytest.approx(data.targets[i], abs=1e-9)


def test_per_formula_mean_is_a_poor_predictor(data):
    scores = per_formula_mean_scores(data)
    assert len(scores) == 5 and min(scores) >= 0.5  # v1 scored ~0.05: a lookup, not a probe


def rows_of_one_formula(data, formula: str, count: int = 4) -> list[int]:
    """Rows of ``formula`` with the most different targets (the extremes and two between)."""
    rows = np.flatnonzero(reduced_formulas(data.structures) == formula)
    order = rows[np.argsort(data.targets[rows])]
    return [int(order[k]) for k in np.linspace(0, len(order) - 1, count).round().astype(int)]


@pytest.mark.parametrize("variant", CUTOFF_VARIANTS)
def test_graphs_within_the_cutoff_are_identical_across_targets(data, variant):
    for formula in ("CsCl", "TlBr"):
        rows = rows_of_one_formula(data, formula)
        assert np.ptp(data.targets[rows]) > 1.0  # eV/atom: the labels really differ
        ref = build_graph(data.structures[rows[0]], variant, cutoff=8.0, max_neighbors=12)
        for r in rows[1:]:
            g = build_graph(data.structures[r], variant, cutoff=8.0, max_neighbors=12)
            for key in ("z", "cell", "edge_index", "edge_shift", "edge_type"):
                assert torch.equal(g[key], ref[key]), (variant, key)
            torch.testing.assert_close(edge_vectors(g), edge_vectors(ref), atol=1e-5, rtol=0)
            moved = (g.pos - ref.pos).abs() > 1e-5  # only slab B (atoms 3-5) moves, only along z
            assert not moved[:3].any() and not moved[:, :2].any() and moved[3:, 2].all()


def test_voronoi_weights_see_beyond_the_cutoff(data):
    # the edges are the same, but a face's solid angle depends on how far the cell extends into
    # the vacuum: the Voronoi weights carry the gap sizes (docs/design.md)
    rows = rows_of_one_formula(data, "CsCl", 2)
    a, b = (build_graph(data.structures[r], "voronoi", cutoff=8.0, max_neighbors=12) for r in rows)
    assert torch.equal(a.edge_index, b.edge_index)
    assert (a.edge_weight - b.edge_weight).abs().max() > 1e-3
