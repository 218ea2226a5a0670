"""``bench report`` and ``bench export-matbench``: added to the main CLI by :func:`add_report_commands`.

    bench report --profile quick [--tasks ...] [--test wilcoxon] [--no-figures] [--allow-partial] [--prune]
    bench export-matbench --profile quick --architecture cgcnn --variant lattice [--seed 0] [--name NAME]
    bench export-matbench --profile quick --select-by-validation
"""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from bench import defaults

# grid options shared with `bench ablation`, in the order they are echoed in commands
_ECHO = (("profile", "--profile"), ("tasks", "--tasks"), ("architectures", "--architectures"),
         ("variants", "--variants"), ("folds", "--folds"), ("seeds", "--seeds"), ("experiment", "--experiment"))
# not echoed: --tracking-uri and --results-dir name places on one machine, and REPORT.md is committed


def grid_command(args: argparse.Namespace, command: str) -> str:
    """The shell command ``bench <command>`` with the grid options of ``args`` (what selects the cells)."""
    parts = ["bench", command]
    for attr, flag in _ECHO:
        value = getattr(args, attr, None)
        if value:
            parts += [flag, str(value)]
    for item in getattr(args, "overrides", []):
        parts += ["--set", item]
    if getattr(args, "allow_unverified_data", False):
        parts.append("--allow-unverified-data")
    for plugin in getattr(args, "plugin", []):
        parts += ["--plugin", plugin]
    return shlex.join(parts)


def cmd_report(args: argparse.Namespace) -> None:
    from bench.options import config_from_args as _config_from_args
    from bench.report.document import build_report

    cfg = _config_from_args(args)
    command = grid_command(args, "report") + (f" --test {args.test}" if args.test != "ttest" else "")
    report = build_report(cfg, args.results_dir, command=command, rerun=grid_command(args, "ablation"),
                          method=args.test, figures=not args.no_figures, allow_partial=args.allow_partial)
    for task, table in report.tables.items():
        print(f"{task}: {len(table)} leaderboard rows")
    if report.missing:
        print(f"INCOMPLETE: {len(report.missing)} cells of the grid have no run record (listed in the report)")
    print(f"wrote {report.path} ({len(report.files)} files)")
    if args.prune:
        for path in report.stale:
            path.unlink()
    if report.stale:
        verb = "removed" if args.prune else "not written by this report (an earlier grid's; --prune removes them)"
        print(f"{len(report.stale)} stale file(s) {verb}:\n" + "\n".join(f"  {p}" for p in report.stale))


def _only(values: list[str], what: str, given: str | None) -> str:
    if given:
        return given
    if len(values) == 1:
        return values[0]
    raise ValueError(f"the grid has several {what}s ({', '.join(values)}); choose one with --{what}")


def _select_by_validation(cfg, args: argparse.Namespace) -> tuple[str, str, str]:
    """(architecture, variant, notes) of the pair with the best mean validation rank; prints the ranking."""
    from bench.report.matbench_export import validation_ranking
    from bench.report.runs import grid_frame

    seed = cfg.seeds[0] if args.seed is None else args.seed
    pairs = [(a, v) for a in ([args.architecture] if args.architecture else cfg.architectures)
             for v in ([args.variant] if args.variant else cfg.variants)]
    ranking = validation_ranking(grid_frame(cfg, args.results_dir), list(cfg.tasks), seed, pairs)
    print("Ranked by validation score only (mean over folds, rank per task, then mean rank):")
    print(ranking.head(10).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    best = ranking.iloc[0]
    rule = (f"Chosen among {len(ranking)} (architecture, variant) pairs by the best mean rank of the validation score "
            f"(split from each training fold) over {', '.join(cfg.tasks)}, seed {seed}, ties broken by the mean "
            f"validation score relative to each task's best; test folds were not used to choose it (mean "
            f"validation rank {best['mean_val_rank']:.2f}, relative score {best['mean_val_relative']:.3f}).")
    return str(best["architecture"]), str(best["variant"]), " ".join(x for x in (args.notes, rule) if x)


def cmd_export(args: argparse.Namespace) -> None:
    from bench.options import config_from_args as _config_from_args
    from bench.report.document import EXPORT_DIR
    from bench.report.matbench_export import export_matbench

    cfg = _config_from_args(args)
    notes = args.notes
    if args.select_by_validation:
        architecture, variant, notes = _select_by_validation(cfg, args)
    else:
        architecture = _only(cfg.architectures, "architecture", args.architecture)
        variant = _only(cfg.variants, "variant", args.variant)
    out = args.out or Path(args.results_dir or defaults.RESULTS_DIR) / cfg.experiment / EXPORT_DIR
    path = export_matbench(cfg, architecture, variant, out, args.results_dir, seed=args.seed, name=args.name,
                           authors=args.authors, notes=notes)
    print(f"wrote Matbench submission {path}")


def add_report_commands(subparsers) -> None:
    """Add ``report`` and ``export-matbench`` to the ``bench`` CLI's subparsers."""
    from bench.options import grid_options as _grid_options

    p = subparsers.add_parser("report", help="write REPORT.md, tables, statistics and figures of a grid from its "
                                             "run records")
    _grid_options(p, default_profile="quick")
    p.add_argument("--results-dir", type=Path, default=None, help="default: results/ (report in <dir>/<experiment>/)")
    p.add_argument("--test", choices=["ttest", "wilcoxon"], default="ttest",
                   help="paired test of each variant against distance over folds (default: Nadeau-Bengio corrected "
                        "t-test; wilcoxon: signed-rank test, NOT corrected for overlapping training folds)")
    p.add_argument("--no-figures", action="store_true", help="tables and statistics only")
    p.add_argument("--allow-partial", action="store_true",
                   help="write a report of a grid with missing cells over a complete report (it lists them)")
    p.add_argument("--prune", action="store_true",
                   help="remove files in tables/ and figures/ that this report did not write (an earlier grid's)")
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser("export-matbench", help="write a Matbench v0.1 submission of one architecture/variant")
    _grid_options(p, default_profile="quick")
    p.add_argument("--results-dir", type=Path, default=None, help="default: results/ (run records read from there)")
    p.add_argument("--architecture", help="architecture to export (default: the grid's only one)")
    p.add_argument("--variant", help="edge variant to export (default: the grid's only one)")
    p.add_argument("--seed", type=int, default=None, help="seed whose cells are exported (default: the grid's first)")
    p.add_argument("--select-by-validation", action="store_true",
                   help="export the (architecture, variant) with the best mean validation rank over the grid's "
                        "tasks (never test scores); --architecture/--variant then narrow the candidates")
    p.add_argument("--name", help="submission name: folder matbench_v0.1_<name>, info.json 'algorithm'")
    p.add_argument("--authors", default="crystal-periodicity-bench contributors", help="info.json 'authors'")
    p.add_argument("--notes", default="", help="free text prepended to info.json 'notes'")
    p.add_argument("--out", type=Path, default=None, help="default: <results-dir>/<experiment>/matbench/")
    p.set_defaults(func=cmd_export)

