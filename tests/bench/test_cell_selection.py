"""Which cells a grid has: seeds per task (and architecture), variants per architecture, name@preset."""
from __future__ import annotations

import pytest

import architectures
from bench.cells import Cell, cell_settings, grid_cells, grid_units
from bench.config import load_config


def _cfg(*extra):
    cfg = load_config(None, ["tasks=[matbench_jdft2d, matbench_phonons]", "architectures=[cgcnn, cgcnn@paper]",
                             "variants=[distance, multi_edge]", "folds=[0, 1]", "seeds=[0, 1, 2]",
                             "arch_preset=matched", *extra])
    cfg.validate_names()
    return cfg


def test_seeds_for_a_task_and_for_a_task_and_architecture():
    cfg = _cfg("seeds_for={matbench_phonons: [0], 'matbench_phonons|cgcnn@paper': [0, 1, 2]}")
    assert cfg.cell_seeds("matbench_jdft2d", "cgcnn") == [0, 1, 2]
    assert cfg.cell_seeds("matbench_phonons", "cgcnn") == [0]
    assert cfg.cell_seeds("matbench_phonons", "cgcnn@paper") == [0, 1, 2]
    phonons = [c for c in grid_cells(cfg, "matbench_phonons") if c.architecture == "cgcnn"]
    assert {c.seed for c in phonons} == {0} and len(phonons) == 2 * 2  # variants x folds
    units = [u for u in grid_units(cfg) if u.task == "matbench_phonons" and u.architecture == "cgcnn@paper"]
    assert all(u.seeds == (0, 1, 2) for u in units)


def test_budget_for_a_task_sets_its_cap_and_patience_only():
    cfg = _cfg("train.epochs=600", "train.patience=50", "train.lr=0.002",
               "budget_for={matbench_jdft2d: {epochs: 50, patience: 10}, matbench_phonons: {patience: 75}}")
    jdft2d, phonons = cfg.for_task("matbench_jdft2d").train, cfg.for_task("matbench_phonons").train
    assert (jdft2d.epochs, jdft2d.patience, jdft2d.lr) == (50, 10, 0.002)
    assert (phonons.epochs, phonons.patience) == (600, 75)
    assert cfg.train.epochs == 600  # the grid's own setting is left alone
    cell = Cell("matbench_jdft2d", 0, "cgcnn", "distance", 0)
    assert cell_settings(cell, cfg)["train"]["epochs"] == 50
    plain = _cfg("train.epochs=600", "train.patience=50", "train.lr=0.002")
    assert plain.for_task("matbench_jdft2d") is plain  # no budget of its own: the same config, the same keys


def test_budget_for_an_unknown_task_is_refused():
    with pytest.raises(Exception, match="matbench_jdft2"):
        _cfg("budget_for={matbench_jdft2: {epochs: 5}}")


def test_variants_for_an_architecture():
    cfg = _cfg("variants_for={cgcnn@paper: [multi_edge]}")
    anchor = [c for c in grid_cells(cfg, "matbench_jdft2d") if c.architecture == "cgcnn@paper"]
    assert {c.variant for c in anchor} == {"multi_edge"} and len(anchor) == 2 * 3  # folds x seeds
    assert not any(u.architecture == "cgcnn@paper" and u.variant == "distance" for u in grid_units(cfg))


@pytest.mark.parametrize("extra, named", [("seeds_for={matbench_jdft2: [0]}", "unknown task 'matbench_jdft2'"),
                                          ("seeds_for={'matbench_jdft2d|schnt': [0]}", "unknown architecture 'schnt'"),
                                          ("variants_for={cgcnn: [latice]}", "unknown edge variant 'latice'"),
                                          ("seeds_for={matbench_jdft2d: [-1]}", "seeds must be >= 0")])
def test_selections_with_unknown_names_are_refused(extra, named):
    from bench.registry import UnknownNameError

    with pytest.raises((ValueError, UnknownNameError), match=named):
        _cfg(extra)


def test_selections_may_name_cells_outside_a_slice():
    cfg = _cfg("architectures=[cgcnn]", "seeds_for={'matbench_phonons|cgcnn@paper': [0, 1, 2]}",
               "variants_for={cgcnn@paper: [multi_edge]}")
    assert {c.architecture for c in grid_cells(cfg, "matbench_phonons")} == {"dummy", "cgcnn"}


def test_name_at_preset_is_an_architecture_of_its_own_size():
    cfg = _cfg()
    matched = cell_settings(Cell("matbench_jdft2d", 0, "cgcnn", "multi_edge", 0), cfg)
    paper = cell_settings(Cell("matbench_jdft2d", 0, "cgcnn@paper", "multi_edge", 0), cfg)
    assert paper["hparams"] == architectures.resolve_hparams("cgcnn", "paper", cutoff=cfg.graph.cutoff)
    assert matched["hparams"] == architectures.resolve_hparams("cgcnn", "matched", cutoff=cfg.graph.cutoff)
    assert paper["hparams"] != matched["hparams"]
    assert architectures.count_parameters(architectures.create("cgcnn@paper")) == \
        architectures.count_parameters(architectures.create("cgcnn", preset="paper"))
    with pytest.raises(ValueError, match="no preset 'huge'"):
        architectures.REGISTRY.get("cgcnn@huge")


def test_variants_for_may_add_a_variant_only_some_architectures_get():
    cfg = _cfg("architectures=[cgcnn, schnet]", "variants_for={schnet: [voronoi]}")
    assert cfg.all_variants == ["distance", "multi_edge", "voronoi"]
    cells = grid_cells(cfg, "matbench_jdft2d")
    assert {c.variant for c in cells if c.architecture == "schnet"} == {"voronoi"}
    assert {c.variant for c in cells if c.architecture == "cgcnn"} == {"distance", "multi_edge"}
    assert {u.variant for u in grid_units(cfg) if u.architecture == "schnet"} == {"voronoi"}


def test_a_slice_by_variant_restricts_per_architecture_variants_too():
    from bench.cli import build_parser
    from bench.options import config_from_args

    profile = ["--profile", "controls", "--architectures", "schnet,ewald_mp"]
    whole = config_from_args(build_parser().parse_args(["status", *profile]))
    assert {c.variant for c in grid_cells(whole, "matbench_jdft2d") if c.architecture == "ewald_mp"} == {"multi_edge"}
    sliced = config_from_args(build_parser().parse_args(["status", *profile, "--variants", "voronoi"]))
    assert {(c.architecture, c.variant) for c in grid_cells(sliced, "matbench_jdft2d")} == \
        {("dummy", "none"), ("schnet", "voronoi")}


def test_tasks_for_keeps_a_positive_control_on_its_own_probe():
    cfg = load_config(None, ["tasks=[probes]", "architectures=[schnet, chiral_probe]", "variants=[distance, multi_edge]",
                             "folds=[0]", "seeds=[0]", "tasks_for={chiral_probe: [probe_chirality]}",
                             "variants_for={chiral_probe: [multi_edge]}"])
    cfg.validate_names()
    cells = [c for t in cfg.tasks for c in grid_cells(cfg, t) if c.architecture == "chiral_probe"]
    assert [(c.task, c.variant) for c in cells] == [("probe_chirality", "multi_edge")]
    assert sum(1 for t in cfg.tasks for c in grid_cells(cfg, t) if c.architecture == "schnet") == 2 * len(cfg.tasks)
    assert [(u.task, u.variant) for u in grid_units(cfg) if u.architecture == "chiral_probe"] == \
        [("probe_chirality", "multi_edge")]
    with pytest.raises(Exception, match="unknown task 'probe_chiral'"):
        _cfg("tasks_for={cgcnn: [probe_chiral]}")
