"""``REPORT.md`` of a grid: tables, statistics and figures with the provenance that produced them.

Read from the grid's run records only (:func:`bench.report.runs.grid_records`), so the
committed files regenerate byte for byte on a fresh clone; nothing in them names a path of
the machine that wrote them. A grid with missing cells says so (coverage line, ``Missing
cells``, incomplete rows) and never overwrites a complete report unless ``allow_partial``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from bench.records import RUNS_DIR, results_root
from bench.metrics import REGRESSION
from bench.report import plots
from bench.report.answer import answer_rows, answer_sections, write_answer
from bench.report.matbench_export import describe_submission
from bench.report.probes import is_probe, probe_markdown, probe_table
from bench.report.completeness import check_overwrite, coverage_line, incomplete_note, missing_markdown
from bench.report.ingredients import has_controls, ingredient_markdown, ingredient_table
from bench.report.runs import GridRecords, grid_records, with_baselines
from bench.report.pilot import fold_std_from_frame, pilot_section
from bench.report.tables import (TABLES_DIR, overall_markdown, overall_table, paired_markdown, reproduction_table,
                                 task_tables, to_markdown)

EXPORT_DIR = "matbench"  # results/<experiment>/matbench/matbench_v0.1_<name>/


@dataclass
class Report:
    """What :func:`build_report` wrote."""

    path: Path
    frame: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    comparisons: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    missing: list = field(default_factory=list)  # cells of the grid without a record
    stale: list[Path] = field(default_factory=list)  # files in tables/ (and figures/) this report did not write


def _distinct(frame: pd.DataFrame, col: str) -> str:
    if col not in frame:
        return "–"
    values = sorted({str(v) for v in frame[col].dropna()})
    return ", ".join(f"`{v}`" for v in values) or "–"


def provenance_lines(grid: GridRecords, cfg, command: str, rerun: str, n_baseline: int = 0) -> list[str]:
    frame = grid.frame
    baselines = [f"- baselines: {n_baseline} recorded cell(s) of the `{cfg.compare_with}` grid "
                 f"(`../{cfg.compare_with}/{RUNS_DIR}/`; same budget and graph settings, checked) enter the tables "
                 "beside this grid's cells"] if cfg.compare_with else []
    lines = ["## How this report was made", "",
             f"- report command: `{command}`", f"- runs produced by: `{rerun}` (finished cells are reused)",
             f"- run records: `{RUNS_DIR}/` beside this file (one JSON line per cell, the source of every number "
             f"here; the MLflow experiment `{cfg.experiment}` is the live copy)",
             coverage_line(grid), *baselines,
             f"- git commit(s): {_distinct(frame, 'git_commit')}", f"- config hash(es): {_distinct(frame, 'config_hash')}",
             f"- device(s): {_distinct(frame, 'device')}", f"- code fingerprint(s) (architecture: fingerprint, "
             f"graph code, training code): {_code(grid)}", "", "| package | version(s) |", "|---|---|"]
    for col in sorted(c for c in frame.columns if isinstance(c, str) and c.startswith("version.")):
        lines.append(f"| {col.removeprefix('version.')} | {_distinct(frame, col)} |")
    lines += ["", "| task | dataset sha256 | verification |", "|---|---|---|"]
    for task, group in (frame.groupby("task", sort=True) if not frame.empty else []):
        lines.append(f"| {task} | {_distinct(group, 'dataset_sha256')} | {_distinct(group, 'data_verification')} |")
    lines += ["", "<details><summary>resolved configuration</summary>", "", "```yaml",
              yaml.safe_dump(cfg.model_dump(), sort_keys=False).strip(), "```", "", "</details>", ""]
    return lines


def _code(grid: GridRecords) -> str:
    seen = sorted({(r["architecture"], c.get("architecture", "–"), c.get("graphs", "–"), c.get("training", "–"))
                   for r in grid.records.records.values() for c in [r.get("settings", {}).get("code", {})]
                   if r["architecture"] != "dummy"})
    return ", ".join(f"{a}: `{f}` g{g} t{t}" for a, f, g, t in seen) or "–"


def _figure(path: Path, root: Path, caption: str) -> str:
    rel = path.relative_to(root).as_posix()
    return f"![{caption}]({rel})\n\n[PDF]({rel[:-4]}.pdf)\n"


def build_report(cfg, results_dir: Path | None = None, command: str = "", rerun: str = "", method: str = "ttest",
                 figures: bool = True, allow_partial: bool = False) -> Report:
    """Read the grid's run records and write tables, statistics, figures and ``REPORT.md``.

    Raises :class:`bench.report.completeness.PartialGridError` when the grid has missing
    cells and ``results_dir/<experiment>/REPORT.md`` is complete, unless ``allow_partial``.
    """
    import tasks

    root = results_root(results_dir) / cfg.experiment
    grid = grid_records(cfg, results_dir)
    check_overwrite(root, grid, allow_partial)
    grid, n_baseline = with_baselines(grid, cfg, results_dir)
    fig_dir, table_dir = root / "figures", root / TABLES_DIR
    frame, source = grid.frame, grid.records
    report = Report(root / "REPORT.md", frame, missing=list(grid.missing))
    specs = {t: tasks.get_task(t) for t in cfg.tasks}
    ptypes = {t: s.problem_type for t, s in specs.items()}
    doc = [f"# Report of grid `{cfg.experiment}`", "",
           "Every number below is read from the run records of this grid; published Matbench results appear "
           "only in rows marked `ref`.", ""]
    answer_at = len(doc)  # the answer section goes first, once every task's comparisons exist
    doc += provenance_lines(grid, cfg, command, rerun, n_baseline)
    answers: dict[str, pd.DataFrame] = {}
    if frame.empty:
        doc.append("No finished cells yet: run the grid first.\n")
    for task in cfg.tasks if not frame.empty else []:
        pt, unit = ptypes[task], specs[task].unit
        table, comp, written = task_tables(frame, task, unit, table_dir, pt, method)
        report.tables[task], report.comparisons[task] = table, comp
        doc += [f"## {task}", ""]
        if table.empty:
            doc.append("No finished cells of this task.\n")
            continue
        report.files += written
        answers[task] = answer_rows(table, comp, task, pt)
        doc += [to_markdown(table, task, unit, pt), incomplete_note(grid, task),
                f"### Paired comparison with `distance` ({task})", "", paired_markdown(comp, unit)]
        if has_controls(frame[frame["task"] == task]):
            ingredients = ingredient_table(frame, task, pt, method)
            ingredients.to_csv(table_dir / f"{task}_ingredients.csv", index=False)
            report.files.append(table_dir / f"{task}_ingredients.csv")
            doc += [f"### Which ingredient carries the effect ({task})", "",
                    "Each contrast changes one ingredient of the encoding and keeps the rest "
                    "(`bench/report/ingredients.py` lists them).", "",
                    ingredient_markdown(ingredients, unit)]
        if figures:
            for made, caption in ((plots.strip_plot(frame, task, pt, fig_dir), "per-fold test scores"),
                                  (plots.parity_plots(frame, task, pt, source, fig_dir), "predicted vs true"),
                                  (plots.learning_curves(frame, task, source, fig_dir), "learning curves")):
                report.files += made
                if made:
                    doc.append(_figure(made[0], root, f"{task}: {caption}"))
    probe_tasks = [t for t in cfg.tasks if is_probe(specs[t])] if not frame.empty else []
    if probe_tasks:
        doc += ["## Periodicity probes", "",
                "Synthetic tasks where the encodings provably differ; theory per variant in the column headers.", ""]
        long = []
        for task in probe_tasks:
            table = probe_table(frame, task, source)
            long.append(table)
            doc += [f"### {task}", "", probe_markdown(table, task)]
        table_dir.mkdir(parents=True, exist_ok=True)
        pd.concat(long, ignore_index=True).to_csv(table_dir / "probes.csv", index=False)
        report.files.append(table_dir / "probes.csv")
    if not frame.empty:
        overall = overall_table(frame, ptypes)
        overall.to_csv(table_dir / "overall.csv", index=False)
        report.files.append(table_dir / "overall.csv")
        doc += ["## Overall", "", overall_markdown(overall, ptypes)]
        if figures:
            made = plots.heatmap(frame, ptypes, fig_dir)
            report.files += made
            if made:
                doc.append(_figure(made[0], root, "architecture x variant, scaled error"))
            made = plots.delta_heatmap(report.comparisons, {t: s.unit for t, s in specs.items()}, fig_dir)
            report.files += made
            if made:
                doc.append(_figure(made[0], root, plots.DELTA_CAPTION))
    if any(not rows.empty for rows in answers.values()):
        sections = answer_sections(answers, {t: s.unit for t, s in specs.items()}, cfg.variants)
        report.files += write_answer(answers, sections, table_dir)
        section = ["## The answer: which encoding wins, per architecture", "",
                   "Read from the paired comparisons below (`tables/answer.csv`, `tables/answer.md`).", ""]
        for task, markdown in sections.items():
            section += [f"### {task}", "", markdown]
        doc[answer_at:answer_at] = section
    if cfg.anchors and not frame.empty:
        repro = reproduction_table(frame, cfg.anchors)
        table_dir.mkdir(parents=True, exist_ok=True)
        repro.to_csv(table_dir / "reproduction.csv", index=False)
        report.files.append(table_dir / "reproduction.csv")
        doc += ["## Reproduction anchors", "",
                "Our cells of an architecture at its published size beside the published Matbench entry (`ref`); "
                "`within` = |ours - published| <= the published fold std.", "",
                repro.to_markdown(index=False, floatfmt=".4g") if not repro.empty else "No anchor cell finished yet.", ""]
    lines, made = pilot_section(cfg, root, fold_std_from_frame(frame, cfg.pilot.variant) if not frame.empty else {},
                                figures)
    doc += lines
    report.files += made
    doc.append(missing_markdown(grid))
    exports = sorted((root / EXPORT_DIR).glob("matbench_v0.1_*")) if (root / EXPORT_DIR).exists() else []
    if exports:
        doc += ["## Matbench submissions", ""] + [describe_submission(p, root) for p in exports]
    if any(pt != REGRESSION for pt in ptypes.values()):
        doc += ["", "Classification: ROC-AUC is computed from stored probabilities; Matbench's own 'rocauc' "
                "thresholds at 0.5 first and is therefore balanced accuracy, reported separately."]
    root.mkdir(parents=True, exist_ok=True)
    report.path.write_text("\n".join(doc).rstrip() + "\n")
    report.files.append(report.path)
    report.stale = stale_files(report.files, [table_dir] + ([fig_dir] if figures else []))
    return report


def stale_files(written: list[Path], folders: list[Path]) -> list[Path]:
    """Files in ``folders`` that this report did not write: left by an earlier report of a
    bigger grid (another task, a removed architecture), so nothing regenerates them."""
    keep = {p.resolve() for p in written}
    return sorted(p for d in folders if d.is_dir() for p in d.iterdir() if p.is_file() and p.resolve() not in keep)
