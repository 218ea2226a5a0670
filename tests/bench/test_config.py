import pytest

from bench import defaults
from bench.config import GridConfig, load_config, stable_hash
from bench.registry import UnknownNameError


def test_defaults_come_from_defaults_module():
    cfg = GridConfig()
    assert cfg.graph.cutoff == defaults.CUTOFF
    assert cfg.graph.max_neighbors == defaults.MAX_NEIGHBORS
    assert cfg.train.epochs == defaults.EPOCHS
    assert cfg.tasks == [defaults.DEFAULT_TASK]


def test_quick_profile_and_overrides():
    cfg = load_config("quick", ["train.epochs=3", "graph.max_neighbors=null", "variants=[lattice]"])
    assert cfg.experiment == "quick"
    assert cfg.train.epochs == 3
    assert cfg.graph.max_neighbors is None
    assert cfg.variants == ["lattice"]
    assert cfg.folds == [0, 1, 2, 3, 4]


def test_invalid_values_name_the_field():
    with pytest.raises(ValueError, match="epochs"):
        load_config("quick", ["train.epochs=0"])
    with pytest.raises(ValueError, match="folds must be in 0..4"):
        load_config(None, ["folds=[5]"])
    with pytest.raises(ValueError, match="not_a_field"):
        load_config(None, ["train.not_a_field=1"])
    with pytest.raises(ValueError, match="key=value"):
        load_config(None, ["train.epochs"])


def test_unknown_profile_lists_profiles():
    with pytest.raises(FileNotFoundError, match="quick"):
        load_config("nope")


def test_unknown_names_list_choices():
    cfg = load_config(None, ["architectures=[cgcnn, gcn9000]"])
    with pytest.raises(UnknownNameError, match="cgcnn"):
        cfg.validate_names()
    cfg = load_config(None, ["hparams={cgcnn: {hiden: 3}}"])
    with pytest.raises(ValueError, match="hidden"):
        cfg.validate_names()


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


@pytest.mark.parametrize("profile", ["standard", "full"])
def test_tuned_profiles_validate_with_one_budget(profile):
    cfg = load_config(profile, ["executor.workers=2"])
    cfg.validate_names()  # "all" expands to every registered architecture
    assert cfg.tune.enabled and cfg.tune.n_trials >= 20 and cfg.executor.workers == 2
    assert "cgcnn" in cfg.architectures and "matbench_jdft2d" in cfg.tasks


def test_task_groups_expand_to_their_tasks():
    import tasks

    cfg = load_config("quick", ["tasks=[probes, matbench_jdft2d, probe_ewald]"])
    cfg.validate_names()
    assert cfg.tasks == [*tasks.TASK_GROUPS["probes"], "matbench_jdft2d"]  # each once, in order
    assert "probe_chirality" in cfg.tasks and len(tasks.TASK_GROUPS["matbench"]) == 9


def test_grid_preset_applies_to_architectures_that_register_it():
    import torch

    import architectures
    from architectures.registry import REGISTRY

    cfg = load_config("quick", ["arch_preset=paper"])
    assert cfg.preset_for("cgcnn") == "paper"
    assert cfg.model_hparams("cgcnn")["hidden"] == architectures.resolve_hparams("cgcnn", "paper")["hidden"]
    assert cfg.preset_for("cgcnn@matched") is None  # a name@preset fixes its own size
    assert cfg.preset_for("dummy") is None  # the baseline has no size

    class NoPresets(torch.nn.Module):
        def __init__(self, out_dim: int, width: int = 3):
            super().__init__()

    architectures.register("test_no_presets", defaults={"width": 3})(NoPresets)
    try:
        assert cfg.preset_for("test_no_presets") is None
        assert cfg.model_hparams("test_no_presets") == {"width": 3}
        with pytest.raises(ValueError, match="no preset 'huge'.*matched.*paper"):
            load_config("quick", ["arch_preset=huge"]).model_hparams("cgcnn")
    finally:
        REGISTRY._items.pop("test_no_presets", None)
