"""expected_can per (architecture, variant): facts for every registered name, and the rules."""
from __future__ import annotations

import pytest

import architectures
from bench.graphs import VARIANTS
from bench.report.theory import MODEL_FACTS, PROBE_RULES, VARIANT_FACTS, expected_can
from tasks.synthetic import PROBES


def test_every_registered_architecture_variant_and_probe_has_facts():
    # a new architecture or variant must state what it reads / contains, or the probe table shows "?"
    assert set(architectures.REGISTRY.names()) <= set(MODEL_FACTS)
    assert set(VARIANTS.names()) <= set(VARIANT_FACTS)
    assert set(PROBES) == set(PROBE_RULES)


@pytest.mark.parametrize("probe", PROBES)
def test_every_cell_has_a_level_and_a_reason(probe):
    for arch in MODEL_FACTS:
        for variant in VARIANT_FACTS:
            e = expected_can(probe, arch, variant)
            assert e.level in {"can", "partly", "cannot"} and len(e.reason) > 20


def test_only_the_parity_odd_model_and_the_cell_basis_model_can_tell_mirror_images():
    # GeoCGNN's k-grid channels follow the cell basis: a mirror in the same cell permutes them
    # (pinned on the model in tests/architectures/test_geocgnn.py)
    can = {a for a in MODEL_FACTS if expected_can("probe_chirality", a, "lattice").can}
    assert can == {"chiral_probe", "geocgnn"}


def test_only_long_range_models_can_answer_probe_ewald():
    for variant in VARIANT_FACTS:
        can = {a for a in MODEL_FACTS if expected_can("probe_ewald", a, variant).level == "can"}
        assert can == {"ewald_mp"}
    assert expected_can("probe_ewald", "schnet", "voronoi").level == "cannot"  # does not read edge_weight


def test_the_basis_range_comes_from_the_hyperparameters():
    # SchNet's matched basis reaches 10.6 Å (cutoff 10): the shortest loops of 9-14 Å are resolved;
    # with a 6 Å model cutoff they are not, and its Gaussian tail at 9 Å is far below float32 resolution
    assert expected_can("probe_lattice_length", "schnet", "lattice").level == "partly"
    assert expected_can("probe_lattice_length", "schnet", "lattice",
                        {**architectures.REGISTRY.get("schnet").defaults, "cutoff": 6.0}).level == "cannot"


def test_cell_choice_rules():
    assert expected_can("probe_supercell", "geocgnn", "multi_edge").level == "cannot"  # reads the cell basis
    assert expected_can("probe_supercell", "schnet", "multi_edge").level == "can"
    assert expected_can("probe_supercell", "schnet", "multi_edge_noself").level == "cannot"


def test_unknown_names_are_unknown_not_errors():
    e = expected_can("probe_chirality", "a_plugin_model", "lattice")
    assert e.level == "unknown" and e.can is None and "architecture" in e.reason
