"""Paired comparison of each edge variant against ``distance``, per architecture.

Pairs are cells that share (fold, seed): the same training and test data and the same
seed, so the difference isolates the edge variant. For n pairs with differences d
(variant - baseline, in the task's headline metric):

* mean paired difference and a two-sided 95% t-interval, mean ± t(0.975, n-1)·sd/√n;
* a p-value from the paired t-test (default) or the Wilcoxon signed-rank test, named
  in the ``method`` column. With 5 folds an exact Wilcoxon test cannot reach p < 0.05
  (its smallest two-sided p is 1/16), which is why the t-test is the default.

Fold-wise differences share training data, so these p-values are optimistic
(Nadeau & Bengio 2003); read them as a screen, not as proof. With n < 2 no interval
or test exists: those columns are NaN and ``note`` says why.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from bench.metrics import PRIMARY_METRIC, REGRESSION

BASELINE = "distance"
ALPHA = 0.05
METHODS = {"ttest": "paired t-test", "wilcoxon": "Wilcoxon signed-rank"}
COLUMNS = ["architecture", "variant", "baseline", "metric", "n_pairs", "baseline_mean", "mean_diff", "ci_low", "ci_high",
           "p_value", "method", "significant", "better", "note"]


def paired_test(diffs: np.ndarray, method: str = "ttest", confidence: float = 0.95) -> dict:
    """Mean, t-based CI and p-value of paired differences ``diffs`` [n]; NaN where undefined."""
    if method not in METHODS:
        raise ValueError(f"unknown test {method!r}; known: {', '.join(METHODS)}")
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    out = {"n_pairs": int(d.size), "mean_diff": float(d.mean()) if d.size else math.nan,
           "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan, "method": METHODS[method], "note": ""}
    if d.size < 2:
        out["note"] = f"n={d.size} pair(s): no interval or test"
        return out
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, d.size - 1)) * sd / math.sqrt(d.size)
    out["ci_low"], out["ci_high"] = out["mean_diff"] - half, out["mean_diff"] + half
    if sd == 0.0:
        out["note"] = "all differences equal: no test"
        return out
    if method == "ttest":
        out["p_value"] = float(stats.ttest_rel(d, np.zeros_like(d)).pvalue)
    elif np.all(d == 0):
        out["note"] = "all differences zero"
    else:
        out["p_value"] = float(stats.wilcoxon(d).pvalue)
    return out


def paired_comparisons(frame: pd.DataFrame, task: str, problem_type: str = REGRESSION,
                       baseline: str = BASELINE, method: str = "ttest", alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (architecture, variant != baseline) of ``task``: the paired statistics above."""
    metric, higher_better = PRIMARY_METRIC[problem_type]
    col = f"test_{metric}"
    rows = []
    sub = frame[frame["task"] == task] if not frame.empty else frame
    for arch, group in (sub.groupby("architecture", sort=True) if not sub.empty else []):
        base = group[group["variant"] == baseline]
        if base.empty:
            continue
        for variant, runs in group[group["variant"] != baseline].groupby("variant", sort=True):
            pairs = runs.merge(base, on=["fold", "seed"], suffixes=("", "_base"))
            result = paired_test((pairs[col] - pairs[f"{col}_base"]).to_numpy(dtype=float), method)
            significant = bool(result["p_value"] < alpha) if not math.isnan(result["p_value"]) else False
            better = ""
            if significant:
                variant_wins = (result["mean_diff"] > 0) == higher_better
                better = variant if variant_wins else baseline
            base_mean = float(pairs[f"{col}_base"].mean()) if len(pairs) else math.nan
            rows.append({"architecture": arch, "variant": variant, "baseline": baseline, "metric": metric,
                         "baseline_mean": base_mean, **result, "significant": significant, "better": better})
    return pd.DataFrame(rows, columns=COLUMNS)
