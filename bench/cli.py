"""Command line: a thin layer over :mod:`bench.grid` and friends.

    bench list [architectures|variants|tasks]
    bench train --task T --architecture A --variant V --fold K --seed S
    bench ablation --profile quick [--tasks ...] [--architectures ...] [--set train.epochs=5]
    bench table --profile quick
    bench status --profile quick
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import defaults, interrupts
from bench.config import GridError
from bench.options import config_from_args, grid_options
from bench.registry import UnknownNameError

#: exit codes: bad input (nothing ran), some cells failed or were lost, interrupted
EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


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
    from bench.cell import Cell, cell_identity, run_cell, summary_line
    from bench.claims import ClaimStore
    from bench.graphs import build_task_graphs
    from bench.lifecycle import run_claimed
    from bench.preflight import preflight
    from bench.tracking import Tracker

    args.tasks, args.architectures, args.variants = args.task, args.architecture, args.variant
    args.folds, args.seeds = str(args.fold), str(args.seed)
    cfg = config_from_args(args)
    storage = args.storage or defaults.optuna_storage(args.tracking_uri)
    loaded = preflight(cfg, args.tracking_uri, storage)
    with interrupts.immediate():  # one cell: Ctrl-C stops it at once (its run ends KILLED)
        if cfg.tune.enabled:  # tune this fold's study, then the cell with the best parameters
            from bench.grid import Unit, run_unit

            for outcome in run_unit(Unit(args.task, args.architecture, args.variant, args.fold, (args.seed,)), cfg,
                                    args.tracking_uri, storage, not args.no_progress):
                print(summary_line(outcome))
            return
        data = loaded[args.task]
        graphs = build_task_graphs(data.structures, data.ids, args.variant, cfg.graph.cutoff,
                                   cfg.graph.max_neighbors, data.sha256, progress=not args.no_progress)
        cell = Cell(args.task, args.fold, args.architecture, args.variant, args.seed)
        tracker = Tracker(cfg.experiment, args.tracking_uri)
        claims = ClaimStore(storage)
        key = cell_identity(cell, cfg, data.sha256)[2]
        outcome = run_claimed(cell, key, claims, tracker,
                              lambda: run_cell(cell, cfg, data, graphs, tracker, not args.no_progress))
    if outcome.extra.get("claimed_elsewhere"):
        raise GridError(f"{cell.label()}: another live worker is training this cell ({claims.live_claims().get(key)}); "
                        "its result will be in MLflow when it finishes")
    print(summary_line(outcome))


def cmd_ablation(args: argparse.Namespace) -> None:
    from bench.grid import run_grid
    from bench.preflight import preflight
    from bench.report.grid_tables import grid_tables

    cfg = config_from_args(args)
    # everything that can be checked is checked before the first cell starts; nothing is stored
    preflight(cfg, args.tracking_uri, args.storage, args.results_dir or defaults.RESULTS_DIR)
    message = ("interrupt: no new cell starts; the running ones finish and are saved "
               "(Ctrl-C again to stop them now: they end KILLED and rerun later)")
    try:
        with interrupts.graceful(lambda: message):
            run_grid(cfg, args.tracking_uri, progress=not args.no_progress, storage=args.storage,
                     results_dir=args.results_dir)
    except GridError:  # some units failed: the tables of what finished are still useful
        _print_tables(grid_tables(cfg, args.results_dir, args.allow_partial))
        raise
    _print_tables(grid_tables(cfg, args.results_dir, args.allow_partial))


def cmd_status(args: argparse.Namespace) -> None:
    from bench.status import format_status, grid_status, status_json

    cfg = config_from_args(args)
    storage = args.storage or defaults.optuna_storage(args.tracking_uri)
    frame = grid_status(cfg, args.tracking_uri, storage, args.results_dir)
    print(status_json(frame) if args.json else format_status(frame))


def cmd_perf(args: argparse.Namespace) -> None:
    import architectures
    from bench.graphs import VARIANTS
    from bench.perf import run_perf
    from bench.registry import parse_names

    run_perf(parse_names(args.architectures, architectures.REGISTRY), parse_names(args.variants, VARIANTS),
             task=args.task, n_structures=args.n_structures, passes=args.passes, threads=args.threads,
             device=args.device, out_dir=args.results_dir)


def cmd_pilot(args: argparse.Namespace) -> None:
    import os

    from bench.pilot import PILOT_DIR, export_bundle, pilot_inputs, run_pilot
    from bench.training import resolve_device

    cfg = config_from_args(args)
    if args.analyse:
        from bench.records import RecordStore
        from bench.report.pilot import fold_std_from_frame, pilot_section

        root = Path(args.results_dir or defaults.RESULTS_DIR)
        frame = RecordStore.for_experiment(args.std_from or cfg.experiment, root).load().frame()
        lines, files = pilot_section(cfg, root / cfg.experiment,
                                     fold_std_from_frame(frame, cfg.pilot.variant) if not frame.empty else {},
                                     figures=not args.no_figures)
        print("\n".join(lines) or "no pilot records yet: run `bench pilot` first")
        return
    if args.export_bundle is not None:
        bundle = export_bundle(cfg, pilot_inputs(cfg), args.export_bundle)
        print(f"wrote {bundle} (run it with: python -m bench.pilot BUNDLE OUT_DIR)")
        return
    out = Path(args.results_dir or defaults.RESULTS_DIR) / cfg.experiment / PILOT_DIR
    workers = cfg.executor.workers or os.cpu_count() or 1
    for path in run_pilot(cfg, out, workers, resolve_device(cfg.train.device).type, args.deadline,
                          progress=not args.no_progress):
        print(f"wrote {path}")


def cmd_table(args: argparse.Namespace) -> None:
    from bench.report.grid_tables import grid_tables

    _print_tables(grid_tables(config_from_args(args), args.results_dir, args.allow_partial))


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
    grid_options(p, default_profile=None)
    p.add_argument("--task", default=defaults.DEFAULT_TASK)
    p.add_argument("--architecture", default="cgcnn")
    p.add_argument("--variant", default=defaults.DEFAULT_VARIANT)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)

    for name, func, helptext in (("ablation", cmd_ablation, "run a grid of cells (resumes) and write its tables"),
                                 ("table", cmd_table, "write the tables of a grid from its run records without running"),
                                 ("status", cmd_status, "show the grid's cells as done / running / failed / pending")):
        p = sub.add_parser(name, help=helptext)
        grid_options(p, default_profile="quick")
        p.add_argument("--results-dir", type=Path, default=None,
                       help="default: results/ in the current directory (run records in <dir>/<experiment>/runs/)")
        if name == "status":
            p.add_argument("--json", action="store_true", help="one JSON document: every cell and the summary")
        else:
            p.add_argument("--allow-partial", action="store_true",
                           help="write the tables of a grid with missing cells over a complete report")
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

    p = sub.add_parser("pilot", help="the budget pilot: long runs on one fold's training rows (profile's pilot section)")
    grid_options(p, default_profile="converged")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="default: results/ in the current directory (records in <dir>/<experiment>/pilot/)")
    p.add_argument("--deadline", type=float, default=None, help="wall-clock seconds per run (the epochs so far are kept)")
    p.add_argument("--analyse", action="store_true",
                   help="no runs: replay stopping rules on the recorded pilot and print the budget table")
    p.add_argument("--std-from", default=None, metavar="EXPERIMENT",
                   help="with --analyse: fold std per architecture from this experiment's records (default: the grid's)")
    p.add_argument("--no-figures", action="store_true", help="with --analyse: tables only")
    p.add_argument("--export-bundle", type=Path, default=None,
                   help="write the pilot's inputs to this file instead (for python -m bench.pilot elsewhere)")
    p.set_defaults(func=cmd_pilot)

    from bench.report.cli import add_report_commands

    add_report_commands(sub)
    from bench.predict import add_predict_command

    add_predict_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; exit codes: 0 done, 1 some cells failed or not done, 2 bad input
    (named in the message, nothing run or stored), 130 interrupted (finished cells are kept)."""
    args = build_parser().parse_args(argv)
    from bench.plugins import load_plugins

    try:
        load_plugins(args.plugin)
        args.func(args)
    except (UnknownNameError, ValueError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except GridError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as err:
        detail = f" ({err})" if str(err) else ""
        print(f"interrupted{detail}: finished cells are saved; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
