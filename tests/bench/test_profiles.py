"""Profiles ship inside the package; default stores go to the working directory."""
from __future__ import annotations

from pathlib import Path

from bench import defaults
from bench.config import load_config, profile_path

ROOT = Path(__file__).resolve().parents[2]


def test_profiles_are_package_data(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nowhere near the checkout
    assert defaults.PROFILES_DIR == Path(defaults.__file__).parent / "profiles"
    assert {p.stem for p in defaults.PROFILES_DIR.glob("*.yaml")} == {"quick", "standard", "full", "probes", "converged",
                                                                         "controls"}
    assert profile_path("quick").is_file() and load_config("quick").experiment == "quick"


def test_default_stores_live_in_the_working_directory(monkeypatch, tmp_path):
    for var in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE", "BENCH_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    assert defaults.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert defaults.artifact_root(defaults.tracking_uri()) == tmp_path / "mlartifacts"
    assert defaults.optuna_storage() == f"sqlite:///{tmp_path / 'mlartifacts' / 'optuna.db'}"
    assert defaults.cache_dir() == tmp_path / ".cache"
    assert (Path.cwd() / defaults.RESULTS_DIR) == tmp_path / "results"
    assert defaults.artifact_root("http://mlflow.example:5000") == tmp_path / "mlartifacts"


def test_the_converged_budget_is_the_committed_pilot_s_choice():
    """`budget_for` in converged.yaml is what the committed pilot curves choose (published fold-std stand-in)."""
    from bench.pilot import PILOT_DIR, load_records
    from bench.report.pilot import budget_table, choose, with_published_stand_in

    cfg = load_config("converged")
    records = load_records(ROOT / "results" / "converged" / PILOT_DIR)
    assert {r["task"] for r in records} == set(cfg.tasks)
    fold_std, _ = with_published_stand_in({}, records)
    for task in cfg.tasks:
        best = choose(budget_table([r for r in records if r["task"] == task], fold_std, cfg.train.val_window))
        train = cfg.for_task(task).train
        assert best is not None and (int(best["cap"]), int(best["patience"])) == (train.epochs, train.patience), task
