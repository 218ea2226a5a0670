"""Command line: a thin layer over :mod:`bench.grid` and friends.

    bench list [architectures|variants|tasks]
    bench train --task T --architecture A --variant V --fold K --seed S
    bench ablation --profile quick [--tasks ...] [--architectures ...] [--set train.epochs=5]
    bench table --profile quick
    bench status --profile quick
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench import defaults
from bench.config import GridConfig, GridError, load_config
from bench.registry import UnknownNameError


def _grid_options(parser: argparse.ArgumentParser, default_profile: str | None) -> None:
    parser.add_argument("--profile", default=default_profile,
                        help="a profile shipped with the package (quick, standard, full, probes) or a YAML path")
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
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first so its architectures/variants/tasks register")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _config_from_args(args: argparse.Namespace) -> GridConfig:
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
    for flag, field in (("executor", "executor.kind"), ("workers", "executor.workers"),
                        ("ray_address", "executor.ray_address")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{field}={value}")
    cfg = load_config(args.profile, overrides)
    cfg.validate_names()
    return cfg


def cmd_list(args: argparse.Namespace) -> None:
    import architectures
    import tasks
    from bench.graphs import VARIANTS

    what = args.what
    if what in ("all", "architectures"):
        print("architectures:")
        for name, spec in architectures.REGISTRY.items():
            print(f"  {name:<12} {spec.family:<12} {spec.description}")
    if what in ("all", "variants"):
        print("edge variants:")
        for name, variant in VARIANTS.items():
            doc = (getattr(variant, "__doc__", "") or "").strip().splitlines()
            print(f"  {name:<12} {doc[0] if doc else ''}")
    if what in ("all", "tasks"):
        print("tasks:")
        for name, task in tasks.TASKS.items():
            print(f"  {name:<24} {task.problem_type:<15} {task.n_samples:>7} rows  target {task.target} ({task.unit})")


def cmd_train(args: argparse.Namespace) -> None:
    from bench.cell import Cell, run_cell, summary_line
    from bench.graphs import build_task_graphs
    from bench.grid import load_task
    from bench.tracking import Tracker

    args.tasks, args.architectures, args.variants = args.task, args.architecture, args.variant
    args.folds, args.seeds = str(args.fold), str(args.seed)
    cfg = _config_from_args(args)
    if cfg.tune.enabled:  # tune this fold's study, then the cell with the best parameters
        from bench.grid import Unit, run_unit

        storage = args.storage or defaults.optuna_storage(args.tracking_uri)
        for outcome in run_unit(Unit(args.task, args.architecture, args.variant, args.fold, (args.seed,)), cfg,
                                args.tracking_uri, storage, not args.no_progress):
            print(summary_line(outcome))
        return
    data = load_task(args.task, cfg)
    graphs = build_task_graphs(data.structures, data.ids, args.variant, cfg.graph.cutoff, cfg.graph.max_neighbors,
                               data.sha256, progress=not args.no_progress)
    cell = Cell(args.task, args.fold, args.architecture, args.variant, args.seed)
    outcome = run_cell(cell, cfg, data, graphs, Tracker(cfg.experiment, args.tracking_uri), not args.no_progress)
    print(summary_line(outcome))


def cmd_ablation(args: argparse.Namespace) -> None:
    from bench.grid import grid_tables, run_grid

    cfg = _config_from_args(args)
    try:
        run_grid(cfg, args.tracking_uri, progress=not args.no_progress, storage=args.storage)
    finally:
        _print_tables(grid_tables(cfg, args.tracking_uri, args.results_dir))


def cmd_status(args: argparse.Namespace) -> None:
    from bench.status import format_status, grid_status

    cfg = _config_from_args(args)
    storage = args.storage or defaults.optuna_storage(args.tracking_uri)
    print(format_status(grid_status(cfg, args.tracking_uri, storage)))


def cmd_perf(args: argparse.Namespace) -> None:
    import architectures
    from bench.graphs import VARIANTS
    from bench.perf import run_perf
    from bench.registry import parse_names

    run_perf(parse_names(args.architectures, architectures.REGISTRY), parse_names(args.variants, VARIANTS),
             task=args.task, n_structures=args.n_structures, passes=args.passes, threads=args.threads,
             device=args.device, out_dir=args.results_dir)


def cmd_table(args: argparse.Namespace) -> None:
    from bench.grid import grid_tables

    _print_tables(grid_tables(_config_from_args(args), args.tracking_uri, args.results_dir))


def _print_tables(tables) -> None:
    for t in tables:
        print(f"\n## {t.task}\n\n{t.markdown}")
        for path in t.files:
            print(f"wrote {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="How should a GNN encode crystal periodicity? Ablation suite.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list architectures, edge variants and tasks")
    p.add_argument("what", nargs="?", default="all", choices=["all", "architectures", "variants", "tasks"])
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("train", help="run one cell (task, fold, architecture, variant, seed)")
    _grid_options(p, default_profile=None)
    p.add_argument("--task", default=defaults.DEFAULT_TASK)
    p.add_argument("--architecture", default="cgcnn")
    p.add_argument("--variant", default=defaults.DEFAULT_VARIANT)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)

    for name, func, helptext in (("ablation", cmd_ablation, "run a grid of cells (resumes) and write its tables"),
                                 ("table", cmd_table, "write the tables of a grid from MLflow without running"),
                                 ("status", cmd_status, "show the grid's cells as done / running / failed / pending")):
        p = sub.add_parser(name, help=helptext)
        _grid_options(p, default_profile="quick")
        p.add_argument("--results-dir", type=Path, default=None, help="default: results/ in the current directory")
        p.set_defaults(func=func)
    p = sub.add_parser("perf", help="training/prediction throughput and peak memory per architecture")
    p.add_argument("--architectures", default="all", help="comma-separated names or 'all'")
    p.add_argument("--variants", default="lattice", help="comma-separated names or 'all'")
    p.add_argument("--task", default=defaults.DEFAULT_TASK)
    p.add_argument("--n-structures", type=int, default=256)
    p.add_argument("--passes", type=int, default=3, help="timed training passes after one warm-up")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--device", default="cpu", help="cpu, cuda, or auto")
    p.add_argument("--results-dir", type=Path, default=None, help="default: results/perf/")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE")
    p.set_defaults(func=cmd_perf)

    from bench.report.cli import add_report_commands

    add_report_commands(sub)
    from bench.predict import add_predict_command

    add_predict_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bench.plugins import load_plugins

    try:
        load_plugins(args.plugin)
        args.func(args)
    except (UnknownNameError, ValueError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except GridError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished cells are saved; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0
