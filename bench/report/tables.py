"""Leaderboard tables: architecture x variant per task and overall, as Markdown, CSV and LaTeX.

Our rows aggregate the grid's cells (mean ± sample std over folds x seeds). Published
Matbench numbers appear only as separate rows marked ``ref`` (see :mod:`.references`).
The Δ column and the paired tables come from :mod:`.stats` (fold as the unit,
Nadeau–Bengio corrected t, adjusted within the task's family of comparisons).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.metrics import CLASSIFICATION, PRIMARY_METRIC, REGRESSION
from bench.report.references import REFERENCE_SOURCE, references
from bench.report.stats import ADJUSTMENT, ADJUSTMENTS, ALPHA, BASELINE, CONFIDENCE, POWER, paired_comparisons

OURS = "this suite"
TABLES_DIR = "tables"  # results/<experiment>/tables/: the one place every leaderboard file goes
_EXTRAS = ("test_rmse", "test_mae_over_mad", "test_matbench_balanced_accuracy", "test_accuracy",
           "n_params", "wall_time_s", "train_structures_per_s")


def _mean_std(values: pd.Series) -> tuple[float, float]:
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def _extra_name(col: str) -> str:
    return col.removeprefix("test_") + "_mean" if col.startswith("test_") else col


def leaderboard(frame: pd.DataFrame, task: str, problem_type: str = REGRESSION,
                comparisons: pd.DataFrame | None = None) -> pd.DataFrame:
    """Aggregate the cells of ``task`` per (architecture, variant), best first.

    Adds the effect of each variant relative to ``distance`` of the same architecture
    (``delta_vs_distance``, ``delta_pct``): with ``comparisons`` (from
    :func:`bench.report.stats.paired_comparisons`) the mean over folds of the paired
    differences, with its corrected interval, adjusted p-value and method; without, the
    difference of means.
    """
    metric, higher_better = PRIMARY_METRIC[problem_type]
    col = f"test_{metric}"
    sub = frame[frame["task"] == task] if not frame.empty else frame
    rows = []
    for (arch, variant), group in (sub.groupby(["architecture", "variant"], sort=False) if not sub.empty else []):
        mean, std = _mean_std(group[col])
        row = {"architecture": arch, "variant": variant, f"{metric}_mean": mean, f"{metric}_std": std,
               "n_runs": len(group), "folds": ",".join(str(f) for f in sorted(set(group["fold"]))),
               "seeds": ",".join(str(s) for s in sorted(set(group["seed"])))}
        for extra in _EXTRAS:
            if extra in group:
                row[_extra_name(extra)] = _mean_std(group[extra])[0]
        if "epochs_run" in group:  # the budget's verdict: how long cells trained, and what ended them
            row["epochs_run_mean"] = _mean_std(group["epochs_run"])[0]
        if "stopped_early" in group and group["stopped_early"].notna().any():
            row["stopped_early_fraction"] = float(group["stopped_early"].astype(float).mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.sort_values(f"{metric}_mean", ascending=not higher_better, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    if comparisons is not None and not comparisons.empty:
        # paired: the mean over folds of the differences of cells that share (fold, seed) with the baseline
        keep = comparisons[["architecture", "variant", "n_folds", "baseline_mean", "mean_diff", "ci_low", "ci_high",
                            "p_adjusted", "method", "significant"]].rename(columns={"mean_diff": "delta_vs_distance"})
        table = table.merge(keep, on=["architecture", "variant"], how="left")
        table["delta_pct"] = 100 * table["delta_vs_distance"] / table.pop("baseline_mean")
    else:
        base = table[table["variant"] == BASELINE].set_index("architecture")[f"{metric}_mean"]
        ref = table["architecture"].map(base)
        table["delta_vs_distance"] = np.where((table["variant"] != BASELINE) & ref.notna(),
                                              table[f"{metric}_mean"] - ref, np.nan)
        table["delta_pct"] = 100 * table["delta_vs_distance"] / ref
    return table


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    return f"{value:.{digits}f}"


def _delta(r: pd.Series) -> str:
    if pd.isna(r.get("delta_vs_distance", np.nan)):
        return "–"
    sig = r.get("significant", False)
    mark = "*" if isinstance(sig, (bool, np.bool_)) and bool(sig) else ""
    return f"{r['delta_vs_distance']:+.3g} ({r['delta_pct']:+.1f}%){mark}"


def _p(r: pd.Series) -> str:
    p = r.get("p_adjusted", np.nan)
    return "–" if pd.isna(p) else f"{p:.3g}"


def _ci(r: pd.Series) -> str:
    lo, hi = r.get("ci_low", np.nan), r.get("ci_high", np.nan)
    return "–" if pd.isna(lo) else f"[{lo:+.3g}, {hi:+.3g}]"


def _digits(values) -> int:
    """Decimals for a column of errors: 2 when every value is at least 1, else 4 (small-unit tasks)."""
    v = np.abs(pd.to_numeric(pd.Series(list(values)), errors="coerce").dropna().to_numpy(dtype=float))
    v = v[v > 0]
    return 2 if v.size == 0 or v.min() >= 1 else 4


def headline(problem_type: str, unit: str) -> str:
    return f"MAE ({unit})" if problem_type == REGRESSION else "ROC-AUC"


def table_rows(table: pd.DataFrame, task: str, unit: str, problem_type: str = REGRESSION) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of the leaderboard (ours, then labelled reference rows)."""
    metric, _ = PRIMARY_METRIC[problem_type]
    head = ["rank", "architecture", "variant", f"{headline(problem_type, unit)} mean", "std", "runs",
            f"Δ vs {BASELINE}", f"{CONFIDENCE:.0%} CI of Δ (corrected)", f"p adj. ({ADJUSTMENTS[ADJUSTMENT]})"]
    head += ["RMSE", "MAE/MAD"] if problem_type == REGRESSION else ["Matbench 'rocauc' (= balanced acc.)", "accuracy"]
    head += ["params", "time/cell (s)"]
    rows = []
    refs = references(task) if problem_type == REGRESSION else []
    digits = _digits(list(table.get(f"{metric}_mean", [])) + [r.mean for r in refs]) if problem_type == REGRESSION else 3
    for _, r in table.iterrows():
        extra = ([_fmt(r.get("rmse_mean", np.nan), digits), _fmt(r.get("mae_over_mad_mean", np.nan), 3)]
                 if problem_type == REGRESSION else
                 [_fmt(r.get("matbench_balanced_accuracy_mean", np.nan), 3), _fmt(r.get("accuracy_mean", np.nan), 3)])
        params = r.get("n_params", np.nan)
        rows.append([str(r["rank"]), str(r["architecture"]), str(r["variant"]), _fmt(r[f"{metric}_mean"], digits),
                     _fmt(r[f"{metric}_std"], digits), str(r["n_runs"]), _delta(r), _ci(r), _p(r), *extra,
                     "–" if pd.isna(params) else str(int(params)), _fmt(r.get("wall_time_s", np.nan), 0)])
    for ref in refs:
        row = ["ref", f"{ref.label} (published)", "–", _fmt(ref.mean, digits), _fmt(ref.std, digits)]
        rows.append(row + ["–"] * (len(head) - len(row)))
    return head, rows


def to_markdown(table: pd.DataFrame, task: str, unit: str, problem_type: str = REGRESSION) -> str:
    """Markdown leaderboard: our rows, then the labelled published reference rows, then notes."""
    head, rows = table_rows(table, task, unit, problem_type)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", f"Mean and sample std over all cells (folds x seeds). Δ: variant minus `{BASELINE}` of the same "
              "architecture, averaged over the seeds of a fold and then over folds (relative to "
              f"`{BASELINE}`'s mean over those cells); interval and p from the Nadeau–Bengio corrected t-test "
              f"over folds, p adjusted ({ADJUSTMENTS[ADJUSTMENT]}) over the task's comparisons; `*` = adjusted "
              f"p < {ALPHA}. The paired table gives raw and corrected p and the minimum detectable effect."]
    if problem_type == CLASSIFICATION:
        lines += ["", "ROC-AUC is computed from the stored probabilities. Matbench's scorer thresholds at 0.5 "
                      "before its 'rocauc', so that column is balanced accuracy, not ROC-AUC."]
    if problem_type == REGRESSION and references(task):
        lines += ["", f"Rows marked `ref` are from the {REFERENCE_SOURCE}, std over folds as Matbench computes it "
                      "(ddof=0); all other rows were computed by this suite."]
    return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("Δ", r"$\Delta$"), ("±", r"$\pm$"), ("–", "--"), ("^", r"\^{}")):
        text = text.replace(a, b)
    return text


def to_latex(head: list[str], rows: list[list[str]], caption: str = "") -> str:
    """A booktabs ``tabular`` (reference rows, if any, below a ``\\midrule``)."""
    ours = [r for r in rows if r[0] != "ref"]
    refs = [r for r in rows if r[0] == "ref"]
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{'l' * 3 + 'r' * (len(head) - 3)}}}",
             r"\toprule", " & ".join(_tex_escape(h) for h in head) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex_escape(c) for c in r) + r" \\" for r in ours]
    if refs:
        lines.append(r"\midrule")
        lines += [" & ".join(_tex_escape(c) for c in r) + r" \\" for r in refs]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{_tex_escape(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def reference_frame(task: str, problem_type: str = REGRESSION) -> pd.DataFrame:
    metric, _ = PRIMARY_METRIC[problem_type]
    return pd.DataFrame([{"architecture": r.label, "variant": "", f"{metric}_mean": r.mean, f"{metric}_std": r.std,
                          "source": f"{REFERENCE_SOURCE}: {r.source}"} for r in references(task)])


def write_tables(table: pd.DataFrame, out_dir: Path, task: str, unit: str, problem_type: str = REGRESSION) -> list[Path]:
    """Write ``<task>_leaderboard.{md,csv,tex}``; the CSV's ``source`` column labels reference rows."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv, tex = (out_dir / f"{task}_leaderboard.{ext}" for ext in ("md", "csv", "tex"))
    md.write_text(f"# {task}\n\n" + to_markdown(table, task, unit, problem_type))
    refs = reference_frame(task, problem_type) if problem_type == REGRESSION else pd.DataFrame()
    pd.concat([table.assign(source=OURS), refs], ignore_index=True).to_csv(csv, index=False)
    head, rows = table_rows(table, task, unit, problem_type)
    tex.write_text(to_latex(head, rows, f"{task}: {headline(problem_type, unit)}, mean and std over cells"))
    return [md, csv, tex]


def _g(value, spec: str = ".3g") -> str:
    return "–" if pd.isna(value) else format(value, spec)


def paired_rows(comp: pd.DataFrame, unit: str) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of a task's paired comparisons (:func:`bench.report.stats.paired_comparisons`)."""
    wilcoxon = comp["method"].astype(str).str.startswith("Wilcoxon").any()
    u = f" ({unit})" if unit else ""
    head = ["architecture", f"variant − {BASELINE}", "folds", "seeds/fold", f"Δ{u}", f"{CONFIDENCE:.0%} CI (corrected)",
            "p raw (paired t)", "p corrected (N–B)"] + (["p Wilcoxon (uncorrected)"] if wilcoxon else [])
    head += [f"p adj. ({ADJUSTMENTS[ADJUSTMENT]})", f"MDE at {POWER:.0%} power{u}", "significant"]
    rows = []
    for r in comp.itertuples():
        sig = f"yes ({r.better} better)" if r.significant else ("no" if not r.note else f"– ({r.note})")
        row = [r.architecture, r.variant, str(r.n_folds), str(r.seeds_per_fold), _g(r.mean_diff, "+.4g"),
               "–" if pd.isna(r.ci_low) else f"[{r.ci_low:+.3g}, {r.ci_high:+.3g}]", _g(r.p_raw), _g(r.p_corrected)]
        row += [_g(r.p_wilcoxon)] if wilcoxon else []
        rows.append(row + [_g(r.p_adjusted), _g(r.mde), sig])
    return head, rows


def paired_markdown(comp: pd.DataFrame, unit: str = "") -> str:
    """The paired table of one task as Markdown, with the rules that produced it."""
    if comp.empty:
        return f"No paired comparison (needs `{BASELINE}` and another variant of the same architecture).\n"
    head, rows = paired_rows(comp, unit)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    ratio = comp["test_train_ratio"].dropna()
    ratio_text = (f"{ratio.min():.3g}" if ratio.empty or ratio.min() == ratio.max() else
                  f"{ratio.min():.3g}–{ratio.max():.3g}") if not ratio.empty else "–"
    tested = comp["method"].iloc[0]
    lines += ["", f"Δ = variant minus `{BASELINE}` of the same architecture in the headline metric, averaged over "
              "the seeds of each fold, then over folds: the fold is the unit (seeds are not independent samples). "
              f"Interval and 'p corrected': Nadeau–Bengio corrected resampled t-test (variance σ̂²(1/J + "
              f"n_test/n_train) with J folds, n_test/n_train = {ratio_text} from the folds' sizes; t with J − 1 dof). "
              "'p raw' is the plain paired t-test over the same folds, shown for comparison: it ignores that the "
              f"folds share training data and overstates significance. 'p adj.': {ADJUSTMENTS[ADJUSTMENT]} "
              f"adjustment of the {tested} p-values over the {int(comp['p_adjusted'].notna().sum())} tested "
              f"comparisons of this task; significant = adjusted p < {ALPHA}. MDE: the smallest true Δ the "
              f"corrected test detects with {POWER:.0%} power at two-sided α = {ALPHA} (noncentral t, observed σ̂)."]
    mde = comp["mde"].dropna()
    if not mde.empty:
        lines += ["", f"Median MDE over this task's comparisons: {mde.median():.3g}{(' ' + unit) if unit else ''}."]
    if comp["method"].astype(str).str.startswith("Wilcoxon").any():
        lines += ["", "The Wilcoxon p-values are NOT corrected for overlapping training folds; with J folds the "
                      "smallest possible two-sided p is 2/2^J."]
    return "\n".join(lines) + "\n"


def task_tables(frame: pd.DataFrame, task: str, unit: str, out_dir: Path, problem_type: str = REGRESSION,
                method: str = "ttest", fold_sizes=None) -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """(leaderboard, paired comparisons, files written) of ``task``'s cells in ``frame``.

    Writes ``<task>_leaderboard.{md,csv,tex}`` and ``<task>_paired.{md,csv,tex}`` under
    ``out_dir``; nothing when the task has no finished cells. ``bench ablation``, ``bench
    table`` and ``bench report`` all go through here, so their tables are the same files.
    ``fold_sizes`` ({fold: (n_train, n_test)}) feeds the corrected test; by default it is
    read from the cells or the task (:func:`bench.report.stats.resolve_fold_sizes`).
    """
    comparisons = paired_comparisons(frame, task, problem_type, method=method, fold_sizes=fold_sizes)
    table = leaderboard(frame, task, problem_type, comparisons)
    if table.empty:
        return table, comparisons, []
    files = write_tables(table, out_dir, task, unit, problem_type)
    paired = [Path(out_dir) / f"{task}_paired.{ext}" for ext in ("md", "csv", "tex")]
    paired[0].write_text(f"# {task}: paired comparison with `{BASELINE}`\n\n" + paired_markdown(comparisons, unit))
    comparisons.to_csv(paired[1], index=False)
    head, rows = paired_rows(comparisons, unit)
    paired[2].write_text(to_latex(head, rows, f"{task}: variant minus {BASELINE}, fold-level Nadeau–Bengio corrected "
                                              f"t-test, {ADJUSTMENTS[ADJUSTMENT]}-adjusted p"))
    return table, comparisons, files + paired


def overall_table(frame: pd.DataFrame, problem_types: dict[str, str]) -> pd.DataFrame:
    """Architecture x variant across tasks: per task the scaled error MAE/MAD (regression) or
    ROC-AUC (classification), the mean MAE/MAD over regression tasks and the mean rank."""
    boards = {task: leaderboard(frame, task, pt) for task, pt in problem_types.items()}
    rows: dict[tuple[str, str], dict] = {}
    for task, board in boards.items():
        if board.empty:
            continue
        col = "mae_over_mad_mean" if problem_types[task] == REGRESSION else "roc_auc_mean"
        for _, r in board.iterrows():
            row = rows.setdefault((r["architecture"], r["variant"]), {"architecture": r["architecture"],
                                                                      "variant": r["variant"]})
            row[f"{task}"] = r.get(col, np.nan)
            row[f"{task}_rank"] = r["rank"]
    table = pd.DataFrame(list(rows.values()))
    if table.empty:
        return table
    reg = [t for t, pt in problem_types.items() if pt == REGRESSION and t in table]
    table["mean_mae_over_mad"] = table[reg].mean(axis=1) if reg else np.nan
    table["mean_rank"] = table[[c for c in table if c.endswith("_rank")]].mean(axis=1)
    return table.sort_values("mean_rank", kind="stable").reset_index(drop=True)


def overall_markdown(table: pd.DataFrame, problem_types: dict[str, str]) -> str:
    tasks = [t for t in problem_types if t in table]
    head = ["architecture", "variant"] + [f"{t} ({'MAE/MAD' if problem_types[t] == REGRESSION else 'ROC-AUC'})"
                                          for t in tasks] + ["mean MAE/MAD", "mean rank"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        cells = [r["architecture"], r["variant"]] + [_fmt(r.get(t, np.nan), 3) for t in tasks]
        lines.append("| " + " | ".join(cells + [_fmt(r["mean_mae_over_mad"], 3), _fmt(r["mean_rank"], 1)]) + " |")
    lines += ["", "MAE/MAD = MAE divided by the mean absolute deviation of the test targets "
              "(1 = predicting the mean), so tasks with different units are comparable."]
    return "\n".join(lines) + "\n"


#: Columns of ``tables/reproduction.csv``.
REPRODUCTION_COLUMNS = ["task", "architecture", "preset", "variant", "mae_mean", "mae_std", "n_runs",
                        "published_label", "published_mae", "published_std", "within"]


def reproduction_table(frame: pd.DataFrame, anchors: dict[str, str]) -> pd.DataFrame:
    """Our anchor cells beside the published entry they reproduce.

    ``anchors`` maps an architecture name of the grid (e.g. ``cgcnn@paper``) to the label of
    its published Matbench entry (``bench.report.references.PUBLISHED``, e.g. ``CGCNN``). One
    row per (task, anchor, variant): our MAE mean and std over folds x seeds, the published
    mean and fold std, and ``within`` = |ours - published| <= the published fold std.
    """
    from bench.report.references import PUBLISHED

    rows = []
    for (task, arch, variant), group in frame[frame["architecture"].isin(list(anchors))].groupby(
            ["task", "architecture", "variant"], sort=True):
        ref = next((r for r in PUBLISHED.get(task, []) if r.label == anchors[arch]), None)
        if ref is None or "test_mae" not in group:
            continue
        mean, std = _mean_std(group["test_mae"])
        rows.append({"task": task, "architecture": arch.partition("@")[0],
                     "preset": arch.partition("@")[2] or "registered defaults", "variant": variant,
                     "mae_mean": mean, "mae_std": std, "n_runs": len(group), "published_label": ref.algorithm,
                     "published_mae": ref.mean, "published_std": ref.std,
                     "within": bool(abs(mean - ref.mean) <= ref.std)})
    return pd.DataFrame(rows, columns=REPRODUCTION_COLUMNS)

