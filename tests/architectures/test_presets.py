"""Size presets of every built-in architecture: `paper` and `matched`, defaults equal to `matched`."""
from __future__ import annotations

import pytest

import architectures
from architectures.registry import MATCHED_PARAMS, MATCHED_TOLERANCE, PRESETS

BUILT_IN = sorted(name for name in architectures.REGISTRY
                  if architectures.REGISTRY.get(name).cls.__module__.startswith("architectures."))


def test_the_nine_architectures_are_built_in():
    # plus the encodings' models (ewald_mp: SchNet + Ewald block; chiral_probe: the parity positive control)
    nine = {"cgcnn", "schnet", "geocgnn", "matformer", "tfn", "nequip", "hienet", "empnn", "painn"}
    assert nine <= set(BUILT_IN) and set(BUILT_IN) - nine == {"ewald_mp", "chiral_probe"}


@pytest.mark.parametrize("name", BUILT_IN)
def test_presets_registered(name):
    assert set(PRESETS) <= set(architectures.REGISTRY.get(name).presets)


@pytest.mark.parametrize("name", BUILT_IN)
def test_defaults_are_the_matched_preset(name):
    assert architectures.resolve_hparams(name) == architectures.resolve_hparams(name, "matched")


@pytest.mark.parametrize("name", BUILT_IN)
def test_matched_preset_is_within_the_common_budget(name):
    n = architectures.count_parameters(architectures.create(name, preset="matched"))
    assert abs(n - MATCHED_PARAMS) <= MATCHED_TOLERANCE * MATCHED_PARAMS, f"{name}: {n} parameters"


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="no preset 'huge'.*matched.*paper"):
        architectures.create("cgcnn", preset="huge")


def test_a_preset_with_an_unknown_key_is_refused_at_registration():
    from torch import nn

    with pytest.raises(ValueError, match="unknown hyperparameter"):
        architectures.register("bad_preset_model", defaults={"hidden": 8},
                               presets={"paper": {"width": 3}})(type("M", (nn.Module,), {}))
    assert "bad_preset_model" not in architectures.REGISTRY
