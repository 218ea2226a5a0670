"""The grid's answer to "which encoding should this architecture use?", one row per architecture.

Read from a task's leaderboard and its paired comparisons (:mod:`bench.report.stats`), so
it says nothing the statistics do not: per architecture the score of every variant, each
variant's corrected Δ against ``distance`` with its interval, Holm-adjusted p and minimum
detectable effect (MDE), and a verdict per comparison:

- ``<v> better``: the adjusted p is below α; ``v`` is the variant with the better score.
- ``cannot tell (|Δ| < MDE)``: not significant, and the observed |Δ| is smaller than the
  effect this design detects with 80 % power, so "no effect" and "a small effect" are not
  told apart: more folds or seeds would be needed.
- ``not significant (|Δ| ≥ MDE)``: not significant after the adjustment although |Δ|
  reaches the MDE of a single test (the family-wise adjustment is what it fails).

The per-architecture ``answer`` names the significant winners, else says why there is none.
Architectures without a ``distance`` cell and another variant (e.g. a published-size anchor
on one variant, or the dummy) have no comparison and no row.

Files: ``tables/answer.csv`` (long: one row per task, architecture and non-baseline
variant) and ``tables/answer.md`` (one wide table per task, the form the README quotes).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.metrics import PRIMARY_METRIC, REGRESSION
from bench.report.stats import ADJUSTMENT, ADJUSTMENTS, ALPHA, BASELINE, CONFIDENCE, POWER
from bench.report.tables import headline

ANSWER_COLUMNS = ["task", "architecture", "variant", "baseline", "metric", "variant_mean", "variant_std",
                  "baseline_mean", "baseline_std", "n_folds", "seeds_per_fold", "delta", "ci_low", "ci_high",
                  "p_corrected", "p_adjusted", "mde", "verdict"]
CANNOT_TELL = "cannot tell (|Δ| < MDE)"
NOT_SIGNIFICANT = "not significant (|Δ| ≥ MDE)"


def verdict(delta: float, mde: float, significant: bool, better: str) -> str:
    """One comparison's verdict (module docstring); ``better`` is the winner when ``significant``."""
    if significant:
        return f"{better} better"
    if np.isnan(delta):
        return "–"
    return CANNOT_TELL if np.isnan(mde) or abs(delta) < mde else NOT_SIGNIFICANT


def answer_rows(table: pd.DataFrame, comparisons: pd.DataFrame, task: str,
                problem_type: str = REGRESSION) -> pd.DataFrame:
    """Long answer table of one task from its leaderboard ``table`` and ``comparisons``."""
    metric, _ = PRIMARY_METRIC[problem_type]
    if comparisons.empty or table.empty:
        return pd.DataFrame(columns=ANSWER_COLUMNS)
    scores = table.set_index(["architecture", "variant"])
    rows = []
    for r in comparisons.itertuples():
        own, base = scores.loc[(r.architecture, r.variant)], scores.loc[(r.architecture, r.baseline)]
        rows.append({"task": task, "architecture": r.architecture, "variant": r.variant, "baseline": r.baseline,
                     "metric": metric, "variant_mean": own[f"{metric}_mean"], "variant_std": own[f"{metric}_std"],
                     "baseline_mean": base[f"{metric}_mean"], "baseline_std": base[f"{metric}_std"],
                     "n_folds": r.n_folds, "seeds_per_fold": r.seeds_per_fold, "delta": r.mean_diff,
                     "ci_low": r.ci_low, "ci_high": r.ci_high, "p_corrected": r.p_corrected,
                     "p_adjusted": r.p_adjusted, "mde": r.mde,
                     "verdict": verdict(float(r.mean_diff), float(r.mde), bool(r.significant), str(r.better))})
    return pd.DataFrame(rows, columns=ANSWER_COLUMNS)


def architecture_answer(rows: pd.DataFrame) -> str:
    """The verdict of one architecture over its comparisons (rows of :func:`answer_rows`)."""
    won = rows[rows["verdict"].str.endswith(" better")]
    if not won.empty:
        parts = []
        for w in won.itertuples():
            winner = w.verdict.removesuffix(" better")
            loser = w.baseline if winner == w.variant else w.variant
            parts.append(f"`{winner}` beats `{loser}` by {abs(w.delta):.3g}")
        return "; ".join(parts)
    if (rows["verdict"] == CANNOT_TELL).all():
        return "cannot tell: every Δ is smaller than its MDE"
    return "no difference survives the adjustment"


def decimals(values) -> int:
    """Decimals for one task's scores and effects: 1 when the smallest score is at least 10, one more
    per decade below (1.2 -> 2, 0.089 -> 4), at most 4, so a column never mixes precisions."""
    v = np.abs(pd.to_numeric(pd.Series(list(values)), errors="coerce").dropna().to_numpy(dtype=float))
    v = v[v > 0]
    return 1 if v.size == 0 else int(min(4, max(1, 2 - np.floor(np.log10(v.min())))))


def _score(mean: float, std: float, d: int) -> str:
    return "–" if pd.isna(mean) else f"{mean:.{d}f} ± {std:.{d}f}"


def _effect(r: pd.Series, d: int) -> str:
    if pd.isna(r["delta"]):
        return "–"
    return (f"{r['delta']:+.{d}f} [{r['ci_low']:+.{d}f}, {r['ci_high']:+.{d}f}] "
            f"(p_adj {r['p_adjusted']:.2g}, MDE {r['mde']:.{d}f})")


def answer_markdown(rows: pd.DataFrame, task: str, unit: str = "", order: list[str] | tuple = ()) -> str:
    """One wide table of a task: scores per variant, Δ per non-baseline variant, the answer.

    Variant columns follow ``order`` (the grid's variant list); variants not in it come after, sorted.
    """
    if rows.empty:
        return f"No paired comparison on {task} yet (needs `{BASELINE}` and another variant of an architecture).\n"
    present = set(rows["variant"])
    variants = [v for v in order if v in present] + sorted(present - set(order))
    head = ["architecture", f"`{BASELINE}`"] + [f"`{v}`" for v in variants]
    head += [f"Δ `{v}` [{CONFIDENCE:.0%} CI]" for v in variants] + ["answer"]
    d = decimals(pd.concat([rows["variant_mean"], rows["baseline_mean"]]))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arch, group in rows.groupby("architecture", sort=False):
        by = group.set_index("variant")
        first = group.iloc[0]
        cells = [str(arch), _score(first["baseline_mean"], first["baseline_std"], d)]
        cells += [_score(by.loc[v, "variant_mean"], by.loc[v, "variant_std"], d) if v in by.index else "–"
                  for v in variants]
        cells += [_effect(by.loc[v], d) if v in by.index else "–" for v in variants]
        lines.append("| " + " | ".join(cells + [architecture_answer(group)]) + " |")
    problem_type = next(pt for pt, (m, _) in PRIMARY_METRIC.items() if m == rows["metric"].iloc[0])
    lines += ["", f"{headline(problem_type, unit)}, mean ± std over all cells (folds x seeds). Δ: variant minus `{BASELINE}` of "
              "the same architecture, averaged over the seeds of a fold, then over folds; the interval is the "
              f"Nadeau–Bengio corrected {CONFIDENCE:.0%} interval of one comparison, p_adj the "
              f"{ADJUSTMENTS[ADJUSTMENT]}-adjusted corrected p over the task's {len(rows)} comparisons, MDE the "
              f"smallest Δ this design detects with {POWER:.0%} power at α = {ALPHA}. A variant wins only when "
              f"p_adj < {ALPHA}; '{CANNOT_TELL}' means the design cannot tell a small effect from none."]
    return "\n".join(lines) + "\n"


def answer_sections(per_task: dict[str, pd.DataFrame], units: dict[str, str],
                    order: list[str] | tuple = ()) -> dict[str, str]:
    """Each task's :func:`answer_markdown`, rendered once for both ``answer.md`` and ``REPORT.md``."""
    return {task: answer_markdown(rows, task, units.get(task, ""), order) for task, rows in per_task.items()}


def write_answer(per_task: dict[str, pd.DataFrame], sections: dict[str, str], out_dir: Path) -> list[Path]:
    """``answer.csv`` (all tasks, long) and ``answer.md`` (the ``sections`` of tasks with rows) under ``out_dir``."""
    frames = [rows for rows in per_task.values() if not rows.empty]
    if not frames:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = out_dir / "answer.csv", out_dir / "answer.md"
    pd.concat(frames, ignore_index=True).to_csv(csv, index=False)
    md.write_text("\n".join(f"## {task}\n\n{sections[task]}" for task, rows in per_task.items() if not rows.empty))
    return [csv, md]
