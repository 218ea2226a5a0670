"""Every bad input fails before the first cell: exit code 2, the item named, no traceback,
nothing stored (no MLflow store, no results folder, no graph cache)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.config import load_config
from bench.preflight import check_data
from bench.training import ModelOutputError, fit
from tests.bench.toy import toy_task

PLUGIN = "tests.bench.reliability_plugin"


@pytest.fixture
def place(tmp_path, monkeypatch):
    """Fresh folders for the store, results and cache, none of which may appear."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCH_TEST_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    return tmp_path


def _ablation(place: Path, *extra: str, uri: str | None = None) -> list[str]:
    return ["ablation", "--tasks", "matbench_jdft2d", "--architectures", "cgcnn", "--folds", "0",
            "--variants", "distance", "--experiment", "bad", "--no-progress",
            "--tracking-uri", uri or f"sqlite:///{place / 'store' / 'mlflow.db'}",
            "--results-dir", str(place / "results"), *extra]


def _fails_early(place: Path, argv: list[str], capsys, *named: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for item in named:
        assert item in err, f"{item!r} not in: {err}"
    stored = [p for p in ("store", "results", "cache") if (place / p).exists()]
    assert not stored, f"bad input stored {stored}"
    return err


def test_yaml_syntax_error_names_the_file_and_line(place, capsys):
    profile = place / "broken.yaml"
    profile.write_text("experiment: x\ntrain:\n  epochs: [1\n")
    _fails_early(place, _ablation(place, "--profile", str(profile)), capsys, str(profile), "YAML syntax error", "line")


def test_yaml_error_in_a_set_value_names_the_item(place, capsys):
    _fails_early(place, _ablation(place, "--set", "train.epochs=[1"), capsys, "--set train.epochs=[1", "not valid YAML")


@pytest.mark.parametrize("overrides,named", [
    (["hparams={cgcnn: {hidden: -4}}"], ["hparams.cgcnn", "hidden", "-4"]),
    (["hparams={cgcnn: {num_layers: 2.5}}"], ["hparams.cgcnn", "num_layers", "integer"]),
    (["seeds=[-1]"], ["seeds", "-1"]),
    (["tune.seed=-2"], ["tune.seed"]),
    (["tune.n_trials=2", "tune.space={lr: {type: float, low: 0.1, high: 0.01}}"], ["tune.space.lr", "low (0.1)"]),
    (["tune.n_trials=2", "tune.space={lr: {type: float, low: 0.0, high: 0.01, log: true}}"], ["tune.space.lr", "log"]),
    (["tune.n_trials=2", "tune.space={hidden: {type: int, low: -8, high: 16}}"], ["tune.space.hidden", "negative"]),
    (["train.num_threads=2", "executor.threads=3"], ["train.num_threads=2", "executor.threads=3"]),
])
def test_bad_values_are_refused_before_anything_runs(place, capsys, overrides, named):
    argv = _ablation(place, *[x for o in overrides for x in ("--set", o)])
    _fails_early(place, argv, capsys, *named)


def test_a_model_that_cannot_be_built_is_named_with_its_hyperparameters(place, capsys):
    # an unknown pooling passes the value check (a string), the build does not
    argv = _ablation(place, "--set", "hparams={geocgnn: {pool: max}}")
    argv[argv.index("cgcnn")] = "geocgnn"
    _fails_early(place, argv, capsys, "geocgnn", "pool")


@pytest.mark.parametrize("uri,named", [("bogus://nowhere", ["bogus://nowhere", "unknown scheme"]),
                                       ("http://127.0.0.1:9", ["http://127.0.0.1:9", "no MLflow server"])])
def test_a_bogus_tracking_uri_is_named(place, capsys, uri, named):
    _fails_early(place, _ablation(place, uri=uri), capsys, *named)


def test_unwritable_results_or_cache_folders_are_found_before_training(place, capsys, monkeypatch):
    blocker = place / "a-file"
    blocker.write_text("not a folder")
    argv = _ablation(place)
    argv[argv.index("--results-dir") + 1] = str(blocker / "results")
    _fails_early(place, argv, capsys, "results folder", str(blocker))
    monkeypatch.setenv("BENCH_CACHE", str(blocker / "cache"))
    _fails_early(place, _ablation(place), capsys, "graph cache folder", str(blocker))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_results_folder_is_found_before_training(place, capsys):
    frozen = place / "frozen"
    frozen.mkdir()
    frozen.chmod(0o555)
    try:
        argv = _ablation(place)
        argv[argv.index("--results-dir") + 1] = str(frozen / "results")
        _fails_early(place, argv, capsys, "results folder", "cannot write")
    finally:
        frozen.chmod(0o755)


@pytest.mark.parametrize("task,named", [
    ("tiny_rows", ["tiny_rows.json.gz", "3 rows", "at least 5"]),
    ("squashed_cell", ["squashed_cell-7", "volume per atom", "--allow-nonphysical-data"]),
    ("huge_target", ["huge_target-3", "1e+300"]),
])
def test_bad_data_is_named_by_row(place, capsys, task, named):
    argv = _ablation(place, "--plugin", PLUGIN, "--allow-unverified-data")
    argv[argv.index("matbench_jdft2d")] = task
    _fails_early(place, argv, capsys, *named)


@pytest.mark.parametrize("arch,named", [("wrong_shape", ["wrong_shape", "(1, 1)", "[num_graphs, out_dim]"]),
                                        ("nan_output", ["nan_output", "non-finite"])])
def test_plugin_models_with_bad_outputs_are_named_before_the_grid(place, capsys, arch, named):
    argv = _ablation(place, "--plugin", PLUGIN)
    argv[argv.index("cgcnn")] = arch
    _fails_early(place, argv, capsys, *named)


def test_bench_train_checks_the_same_way(place, capsys):
    argv = ["train", "--task", "matbench_jdft2d", "--architecture", "cgcnn", "--variant", "distance",
            "--seed", "-3", "--tracking-uri", f"sqlite:///{place / 'store' / 'mlflow.db'}", "--no-progress"]
    _fails_early(place, argv, capsys, "seeds", "-3")


def test_nonphysical_data_runs_with_a_warning_when_allowed(place, capsys):
    import tests.bench.reliability_plugin  # noqa: F401  (registers the broken tasks)

    cfg = load_config(None, ["tasks=[squashed_cell]", "folds=[0]", "allow_unverified_data=true",
                             "allow_nonphysical_data=true"])
    cfg.validate_names()
    assert set(check_data(cfg)) == {"squashed_cell"}
    assert "warning: squashed_cell" in capsys.readouterr().err


def test_the_first_batch_is_checked_inside_training_too():
    """A model that passes the pre-flight batch but not a training batch (the backstop)."""
    import tests.bench.reliability_plugin  # noqa: F401
    from bench.config import TrainConfig
    from bench.graphs import build_graph

    data = toy_task(12)
    graphs = [build_graph(s, "distance", structure_id=i) for s, i in zip(data.structures, data.ids)]
    with pytest.raises(ModelOutputError, match=r"toy\|wrong_shape\|distance\|fold0\|seed0: architecture 'wrong_shape'"):
        fit("wrong_shape", {"hidden": 4}, graphs[:8], data.targets[:8], graphs[8:], data.targets[8:], "regression",
            TrainConfig(epochs=1, batch_size=4), 0, progress=False, desc="toy|wrong_shape|distance|fold0|seed0")
    assert torch.get_num_threads() == 1  # fit sets the one thread count of every path
