"""Options that select a grid, shared by every command that takes one (``bench ablation``,
``status``, ``table``, ``train``, ``report``, ``export-matbench``), and the configuration they
make. Its own module so that the report commands and the runner's commands both import it,
and neither imports the other.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import defaults
from bench.config import GridConfig, load_config


def _shipped_profiles() -> list[str]:
    return sorted(p.stem for p in defaults.PROFILES_DIR.glob("*.yaml"))


def grid_options(parser: argparse.ArgumentParser, default_profile: str | None) -> None:
    parser.add_argument("--profile", default=default_profile,
                        help=f"a profile shipped with the package ({', '.join(_shipped_profiles())}) or a YAML path")
    parser.add_argument("--task-file", action="append", default=[], metavar="YAML",
                        help="register a user task (tasks/user.py); runs it unless --tasks says otherwise (repeatable)")
    parser.add_argument("--tasks", help="comma-separated task names (overrides the profile)")
    parser.add_argument("--architectures", help="comma-separated architecture names")
    parser.add_argument("--variants", help="comma-separated edge variants")
    parser.add_argument("--folds", help="comma-separated fold numbers 0..4")
    parser.add_argument("--seeds", help="comma-separated seeds")
    parser.add_argument("--experiment", help="MLflow experiment name (default: the profile's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config field, e.g. --set train.epochs=5 (repeatable)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else mlflow.db in the current "
                             "directory, artifacts in ./mlartifacts/)")
    parser.add_argument("--storage", default=None,
                        help="Optuna storage (SQLAlchemy URL, e.g. postgresql://user@host/db; default $OPTUNA_STORAGE "
                             "or optuna.db in the MLflow store's artifact folder, ./mlartifacts/optuna.db)")
    parser.add_argument("--executor", choices=["local", "ray"], help="where units run (default: the profile's, local)")
    parser.add_argument("--workers", type=int, help="local process-pool size (default: one per CPU core)")
    parser.add_argument("--ray-address", help="existing Ray cluster to use with --executor ray (e.g. auto)")
    parser.add_argument("--allow-unverified-data", action="store_true",
                        help="run data files whose sha256 is not verified (every run is tagged)")
    parser.add_argument("--allow-nonphysical-data", action="store_true",
                        help="run data that fails the physical sanity checks (tiny interatomic distances, "
                             "absurd volumes or targets) with a warning instead of refusing it")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first so its architectures/variants/tasks register")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> GridConfig:
    overrides = list(args.overrides)
    for field in ("tasks", "architectures", "variants", "folds", "seeds"):
        value = getattr(args, field, None)
        if value:
            overrides.append(f"{field}=[{value}]")
    if args.experiment:
        overrides.append(f"experiment={args.experiment}")
    if getattr(args, "task_file", None):  # user tasks: absolute paths travel to workers
        from tasks.user import task_name

        overrides.append(f"task_files={json.dumps([str(Path(f).resolve()) for f in args.task_file])}")
        if not args.tasks:
            overrides.append(f"tasks={json.dumps([task_name(f) for f in args.task_file])}")
    if args.allow_unverified_data:
        overrides.append("allow_unverified_data=true")
    if getattr(args, "allow_nonphysical_data", False):
        overrides.append("allow_nonphysical_data=true")
    for flag, field in (("executor", "executor.kind"), ("workers", "executor.workers"),
                        ("ray_address", "executor.ray_address")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{field}={value}")
    cfg = load_config(args.profile, overrides)
    if getattr(args, "variants", None):  # a slice by variant runs those variants only, per-architecture lists too
        cfg.variants_for = {a: [v for v in vs if v in cfg.variants] for a, vs in cfg.variants_for.items()}
    cfg.validate_names()
    return cfg
