"""The periodicity-probe table: measured score beside what theory says each model can see.

For every probe task of a grid (a task with a rule in ``bench.report.theory``), one
matrix architecture x variant of the scaled score: MAE/MAD for regression (1 = the level
of predicting the test mean; 0 = exact) or ROC-AUC for classification (0.5 = chance),
mean ± std over folds and seeds, each cell beside its theory (``expected_can`` per
architecture *and* variant: can / partly / cannot, reasons listed below the matrix).
``probe_supercell`` also gets its own score: the spread of one crystal's predictions
across its representations (cells of the same crystal in the test fold), which is zero
for a cell-invariant model. ``probe_chirality`` gets the within-pair accuracy: the
fraction of test mirror pairs whose right-handed member scores higher (0.5 for every
O(3)-invariant model, by construction).

Whether a variant differs from ``distance`` of the same architecture is decided by the
same rules as every paired table (:mod:`bench.report.stats`): the seeds of a fold are
averaged first, the fold is the unit (3 folds x 2 seeds is 3 observations, not 6), the
Nadeau–Bengio corrected t-test, and the adjustment over the probe's comparisons.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.metrics import CLASSIFICATION, within_pair_accuracy
from bench.report.stats import ADJUSTMENT, ADJUSTMENTS, ALPHA, BASELINE, paired_comparisons, significance_mark

SPREAD_TASK = "probe_supercell"
PAIR_TASK = "probe_chirality"
SYMBOL = {"can": "can", "partly": "partly", "cannot": "cannot", "unknown": "?"}


def is_probe(task) -> bool:
    from bench.report.theory import PROBE_RULES

    return getattr(task, "name", None) in PROBE_RULES


def _score_column(problem_type: str) -> tuple[str, str]:
    return ("test_roc_auc", "ROC-AUC") if problem_type == CLASSIFICATION else ("test_mae_over_mad", "MAE/MAD")


def representation_spread(predictions: pd.DataFrame, groups_by_id: dict[str, int]) -> float:
    """Mean over test crystals of max - min prediction across that crystal's cells (target units)."""
    labelled = predictions.assign(group=predictions["id"].map(groups_by_id))
    spans = labelled.groupby("group")["y_pred"].agg(lambda p: float(p.max() - p.min()))
    return float(spans.mean()) if len(spans) else float("nan")


def pair_accuracy(predictions: pd.DataFrame, groups_by_id: dict[str, int]) -> float:
    """Within-pair accuracy (``bench.metrics.within_pair_accuracy``) of one run's test predictions."""
    groups = predictions["id"].map(groups_by_id).to_numpy()
    return within_pair_accuracy(predictions["y_true"].to_numpy(), predictions["y_pred"].to_numpy(), groups)


def probe_table(frame: pd.DataFrame, task_name: str, source=None, fold_sizes=None) -> pd.DataFrame:
    """Long table: one row per (architecture, variant) with score mean/std, expectation and reason,
    and the paired test against ``distance`` on the task's headline metric, as in its paired
    table (``delta`` in the task's unit, ``p_corrected``, ``p_adjusted``, ``significant``;
    NaN for ``distance`` itself)."""
    import tasks

    spec = tasks.get_task(task_name)
    col, label = _score_column(spec.problem_type)
    sub = frame[(frame["task"] == task_name) & (frame["architecture"] != "dummy")]
    from bench.report.theory import expected_can

    groups_by_id = None
    if task_name in (SPREAD_TASK, PAIR_TASK) and source is not None and not sub.empty:
        data = spec.load()
        groups_by_id = dict(zip(data.ids, np.asarray(data.groups).tolist()))
    rows = []
    for (arch, variant), group in sub.groupby(["architecture", "variant"], sort=True):
        values = group[col].astype(float).dropna()
        theory = expected_can(task_name, arch, variant)
        row = {"task": task_name, "architecture": arch, "variant": variant, "metric": label,
               "mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else 0.0, "n_runs": len(values),
               "expected": theory.level, "expected_can": theory.can, "reason": theory.reason}
        if groups_by_id is not None:
            from bench.report.runs import read_predictions

            preds = [read_predictions(source, run_id) for run_id in group["run_id"]]
            if task_name == SPREAD_TASK:
                row["spread_mean"] = float(np.mean([representation_spread(p, groups_by_id) for p in preds]))
            else:
                row["pair_accuracy_mean"] = float(np.mean([pair_accuracy(p, groups_by_id) for p in preds]))
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    # the same test, on the same headline metric, as the task's paired table: the marks agree with it
    comp = paired_comparisons(sub, task_name, spec.problem_type, fold_sizes=fold_sizes)
    keep = comp[["architecture", "variant", "n_folds", "mean_diff", "p_corrected", "p_adjusted", "significant"]]
    return table.merge(keep.rename(columns={"mean_diff": "delta"}), on=["architecture", "variant"], how="left")


def probe_markdown(table: pd.DataFrame, task_name: str) -> str:
    """Architecture x variant matrix of the score with each cell's theory, reasons below."""
    import tasks

    spec = tasks.get_task(task_name)
    if table.empty:
        return f"No finished cells of {task_name}.\n"
    variants = [v for v in ("distance", "multi_edge", "lattice") if v in set(table.variant)]
    variants += sorted(set(table.variant) - set(variants))
    metric = table["metric"].iloc[0]
    head = "| architecture | " + " | ".join(variants) + " |"
    lines = [f"Question: {spec.question or task_name}. Score: {metric} mean ± std "
             f"({'higher' if metric == 'ROC-AUC' else 'lower'} is better; "
             f"{'0.5 = chance' if metric == 'ROC-AUC' else '1 = predicting the mean'}).", "",
             head, "|---" * (len(variants) + 1) + "|"]
    for arch, group in table.groupby("architecture", sort=True):
        by_variant = group.set_index("variant")
        cells = []
        for v in variants:
            if v not in by_variant.index:
                cells.append("–")
                continue
            r = by_variant.loc[v]
            cell = f"{r['mean']:.3f} ± {r['std']:.3f}"
            if "p_adjusted" in by_variant.columns and pd.notna(r.get("p_adjusted")):
                cell += significance_mark(float(r["p_adjusted"]))
            if "spread_mean" in by_variant.columns and pd.notna(r.get("spread_mean")):
                cell += f" (spread {r['spread_mean']:.3g} {spec.unit})"
            if "pair_accuracy_mean" in by_variant.columns and pd.notna(r.get("pair_accuracy_mean")):
                cell += f" (pairs {r['pair_accuracy_mean']:.2f})"
            if "expected" in by_variant.columns:
                cell += f" [theory: {SYMBOL.get(r['expected'], '?')}]"
            cells.append(cell)
        lines.append(f"| {arch} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Mean ± sample std over all cells (folds x seeds). `*` marks a variant whose headline metric (MAE or ROC-AUC, as in the paired table) differs from "
                 f"`{BASELINE}` of the same architecture: seeds averaged within each fold, Nadeau–Bengio corrected "
                 f"t-test over folds, {ADJUSTMENTS[ADJUSTMENT]}-adjusted p < {ALPHA} over this probe's comparisons "
                 "(** < 0.01, *** < 0.001).")
    lines.append("")
    if "expected" in table.columns:  # one line per distinct theory, naming the cells it covers
        for (level, reason), cells in table.groupby(["expected", "reason"], sort=True):
            where = ", ".join(f"{a}/{v}" for a, v in zip(cells.architecture, cells.variant))
            lines.append(f"- theory {SYMBOL.get(level, '?')}: {reason} ({where})")
    if task_name == SPREAD_TASK:
        lines.append("- spread: mean over test crystals of max − min prediction across that crystal's cells "
                     "(0 for a model that sees the same crystal in every cell)")
    if task_name == PAIR_TASK:
        lines.append("- pairs: within-pair accuracy, the fraction of test mirror pairs whose right-handed member "
                     "scores higher (0.5 for any O(3)-invariant model)")
    return "\n".join(lines) + "\n"
