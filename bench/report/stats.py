"""Paired comparison of each edge variant against ``distance``, per architecture and task.

The unit of comparison is the OUTER FOLD. For one (task, architecture, variant) the cells
that share (fold, seed) with a ``distance`` cell of the same architecture are paired; the
seed-wise differences (variant − baseline, in the task's headline metric and unit) are
averaged within each fold, giving J fold differences d_1..d_J. Seeds are replicates inside
a fold, not extra independent observations: 3 folds x 2 seeds is J = 3, not n = 6.

The test is the Nadeau–Bengio corrected resampled t-test (Nadeau & Bengio 2003, "Inference
for the generalization error", Machine Learning 52:239–281). The J folds share most of
their training rows (5-fold CV: any two training folds share 3/4 of their data), so the
fold differences are positively correlated and the plain paired t-test, whose variance
term is σ̂²/J, overstates significance. The corrected variance of the mean difference is

    σ̂² (1/J + n_test/n_train)

with σ̂² the sample variance (ddof=1) of the d_j and n_test/n_train the ratio of the
ACTUAL fold sizes (mean test rows over mean training rows of the J folds; for 5-fold CV
it is 1/4, and it stays 1/4 when only 3 of the 5 folds are run, while J becomes 3).
t = mean(d) / sqrt(corrected variance), two-sided p from Student's t with J − 1 degrees
of freedom, and the 95 % interval mean ± t(0.975, J−1)·sqrt(corrected variance).

Every row also carries the uncorrected paired t-test (``p_raw``) for comparison, and the
minimum detectable effect (``mde``): the smallest true mean difference the corrected test
would detect with 80 % power at two-sided α = 0.05 in this design, computed exactly from
the noncentral t distribution (J − 1 dof, noncentrality δ / sqrt(corrected variance)) with
the observed σ̂ plugged in for σ (so it is itself an estimate).

Multiplicity: the comparisons of one task (every architecture x non-baseline variant) are
one family, adjusted by :data:`ADJUSTMENT` (Holm's step-down method, which controls the
family-wise error rate without assumptions on the dependence between comparisons; the
comparisons share baselines, so they are dependent). ``significant`` means adjusted
p < :data:`ALPHA`. The choice is made here and nowhere else.

``--test wilcoxon`` replaces the corrected t p-value by the Wilcoxon signed-rank p-value of
the fold differences before the adjustment. It is NOT corrected for the overlap of the
training folds (no such correction exists for it) and with J folds its smallest two-sided
p is 2/2^J (0.0625 for 5 folds), so it can never reach 0.05 on this design; the interval
and the MDE stay those of the corrected t.

With J < 2 no variance exists: the interval, tests and MDE are NaN and ``note`` says why.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import optimize, stats

from bench.metrics import PRIMARY_METRIC, REGRESSION

BASELINE = "distance"
ALPHA = 0.05  # two-sided level of every test and of the family-wise adjustment
CONFIDENCE = 0.95  # of the corrected interval
POWER = 0.80  # of the minimum detectable effect
#: The multiplicity adjustment within a task's family of comparisons (see the module docstring).
ADJUSTMENT = "holm"
ADJUSTMENTS = {"holm": "Holm", "bh": "Benjamini–Hochberg"}
METHODS = {"ttest": "Nadeau–Bengio corrected t", "wilcoxon": "Wilcoxon signed-rank (uncorrected)"}
COLUMNS = ["architecture", "variant", "baseline", "metric", "n_folds", "seeds_per_fold", "test_train_ratio",
           "baseline_mean", "mean_diff", "sd_diff", "ci_low", "ci_high", "t_raw", "p_raw", "t_corrected",
           "p_corrected", "p_wilcoxon", "method", "p_adjusted", "adjustment", "significant", "better", "mde", "note"]


#: Marks of an adjusted p-value in tables and figures: (threshold, mark), strictest first.
MARKS = ((0.001, "***"), (0.01, "**"), (ALPHA, "*"))


def significance_mark(p_adjusted: float) -> str:
    """``***``, ``**``, ``*`` or "" for an adjusted p-value (NaN: no test, no mark)."""
    if not np.isfinite(p_adjusted):
        return ""
    return next((mark for threshold, mark in MARKS if p_adjusted < threshold), "")


def corrected_variance(sd: float, n_folds: int, test_train_ratio: float) -> float:
    """Nadeau–Bengio variance of the mean of ``n_folds`` fold differences with sample sd ``sd``."""
    return sd ** 2 * (1.0 / n_folds + test_train_ratio)


def min_detectable_effect(se: float, dof: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest |true mean difference| a two-sided t-test with standard error ``se`` and
    ``dof`` degrees of freedom detects with probability ``power`` at level ``alpha``.

    Exact: power(λ) = P(T > c) + P(T < −c) with T ~ noncentral t(dof, λ), c = t(1 − α/2, dof);
    solves power(λ) = ``power`` for λ > 0 and returns λ·se (same unit as ``se``).
    """
    if not (se > 0 and dof >= 1):
        return math.nan
    crit = float(stats.t.ppf(1 - alpha / 2, dof))

    def shortfall(lam: float) -> float:
        # scipy's nct.cdf returns NaN far in the lower tail (large λ), where it is ~0;
        # it is bounded by P(T < c), so 0 is the right limit there
        lower = float(stats.nct.cdf(-crit, dof, lam))
        return float(stats.nct.sf(crit, dof, lam)) + (lower if math.isfinite(lower) else 0.0) - power

    hi = crit + 1.0
    while shortfall(hi) < 0:  # power rises with λ: widen the bracket until it holds the root
        hi *= 1.5
    lam = optimize.brentq(shortfall, 0.0, hi, xtol=1e-12)
    return lam * se


def paired_test(diffs: np.ndarray, test_train_ratio: float, method: str = "ttest",
                confidence: float = CONFIDENCE) -> dict:
    """Statistics of J fold differences ``diffs`` [J] (one per fold, seeds already averaged).

    ``test_train_ratio`` = n_test / n_train of the folds (Nadeau–Bengio). Returns the mean,
    sd, corrected interval, raw and corrected t and p, the Wilcoxon p when ``method`` is
    "wilcoxon" (else NaN), the MDE at 80 % power and a ``note``; NaN where undefined.
    """
    if method not in METHODS:
        raise ValueError(f"unknown test {method!r}; known: {', '.join(METHODS)}")
    if not test_train_ratio > 0:
        raise ValueError(f"n_test/n_train must be positive, got {test_train_ratio!r}")
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    n = int(d.size)
    nan = math.nan
    out = {"n_folds": n, "test_train_ratio": float(test_train_ratio), "mean_diff": float(d.mean()) if n else nan,
           "sd_diff": nan, "ci_low": nan, "ci_high": nan, "t_raw": nan, "p_raw": nan, "t_corrected": nan,
           "p_corrected": nan, "p_wilcoxon": nan, "method": METHODS[method], "mde": nan, "note": ""}
    if n < 2:
        out["note"] = f"{n} fold(s): no interval or test"
        return out
    sd = float(d.std(ddof=1))
    se = math.sqrt(corrected_variance(sd, n, test_train_ratio))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    out.update(sd_diff=sd, ci_low=out["mean_diff"] - half, ci_high=out["mean_diff"] + half)
    if sd == 0.0:
        out["note"] = "all fold differences equal: no test"
        return out
    out["t_raw"] = out["mean_diff"] / (sd / math.sqrt(n))
    out["t_corrected"] = out["mean_diff"] / se
    out["p_raw"] = float(2 * stats.t.sf(abs(out["t_raw"]), n - 1))
    out["p_corrected"] = float(2 * stats.t.sf(abs(out["t_corrected"]), n - 1))
    out["mde"] = min_detectable_effect(se, n - 1)
    if method == "wilcoxon":
        if np.all(d == 0):
            out["note"] = "all fold differences zero"
        else:
            out["p_wilcoxon"] = float(stats.wilcoxon(d).pvalue)
    return out


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and are not counted in the family.

    With the m finite p sorted ascending, p_adj(i) = max over j ≤ i of min(1, (m − j + 1)·p(j)).
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (false discovery rate); NaN entries stay NaN.

    With the m finite p sorted ascending, p_adj(i) = min over j ≥ i of min(1, m·p(j)/j).
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    running = 1.0
    ordered = idx[np.argsort(p[idx], kind="stable")]
    for rank in range(m - 1, -1, -1):
        i = ordered[rank]
        running = min(running, min(1.0, m * p[i] / (rank + 1)))
        out[i] = running
    return out


def adjust(pvalues, method: str = ADJUSTMENT) -> np.ndarray:
    """Adjusted p-values of one family by ``method`` (a key of :data:`ADJUSTMENTS`)."""
    if method == "holm":
        return holm(pvalues)
    if method == "bh":
        return benjamini_hochberg(pvalues)
    raise ValueError(f"unknown adjustment {method!r}; known: {', '.join(ADJUSTMENTS)}")


@functools.lru_cache(maxsize=32)
def task_fold_sizes(task: str) -> dict[int, tuple[int, int]]:
    """{fold: (n_train, n_test)} of a registered task, from its fold definition.

    Only the row counts of the folds are read. The file need not pass verification: the
    cells being compared were matched on their keys, which pin the dataset sha256.
    """
    import tasks

    data = tasks.get_task(task).load(allow_unverified=True)
    return {k: (len(f.train), len(f.test)) for k, f in enumerate(data.folds)}


def resolve_fold_sizes(frame: pd.DataFrame, task: str,
                       fold_sizes: Mapping[int, tuple[int, int]] | None = None) -> Mapping[int, tuple[int, int]]:
    """Fold sizes of ``task``: ``fold_sizes`` if given, else the cells' ``n_train_fold`` and
    ``n_test`` columns when the frame has them, else :func:`task_fold_sizes`."""
    if fold_sizes is not None:
        return fold_sizes
    sub = frame[frame["task"] == task] if not frame.empty else frame
    if {"n_train_fold", "n_test"} <= set(sub.columns):
        sizes = sub[["fold", "n_train_fold", "n_test"]].dropna().drop_duplicates()
        if not sizes.empty:
            # MLflow params come back as strings; records may hold numbers
            return {int(r.fold): (int(float(r.n_train_fold)), int(float(r.n_test))) for r in sizes.itertuples()}
    return task_fold_sizes(task)


def test_train_ratio(folds, fold_sizes: Mapping[int, tuple[int, int]]) -> float:
    """n_test / n_train of the folds used: mean test rows over mean training rows."""
    missing = sorted(int(f) for f in folds if int(f) not in fold_sizes)
    if missing:
        raise ValueError(f"no fold sizes for fold(s) {missing}; known folds: {sorted(fold_sizes)}")
    train = np.mean([fold_sizes[int(f)][0] for f in folds])
    test = np.mean([fold_sizes[int(f)][1] for f in folds])
    return float(test / train)


def fold_differences(runs: pd.DataFrame, base: pd.DataFrame, col: str) -> pd.DataFrame:
    """Per fold: the mean over shared seeds of (variant − baseline) in ``col``, the number of
    those seeds and the baseline's mean. Columns fold, diff, n_seeds, base; sorted by fold."""
    pairs = runs[["fold", "seed", col]].merge(base[["fold", "seed", col]], on=["fold", "seed"],
                                              suffixes=("", "_base"))
    pairs = pairs.assign(diff=pairs[col].astype(float) - pairs[f"{col}_base"].astype(float))
    pairs = pairs[np.isfinite(pairs["diff"])]
    per_fold = pairs.groupby("fold", sort=True).agg(diff=("diff", "mean"), n_seeds=("diff", "size"),
                                                    base=(f"{col}_base", "mean"))
    return per_fold.reset_index()


def paired_comparisons(frame: pd.DataFrame, task: str, problem_type: str = REGRESSION,
                       baseline: str = BASELINE, method: str = "ttest", alpha: float = ALPHA,
                       fold_sizes: Mapping[int, tuple[int, int]] | None = None) -> pd.DataFrame:
    """One row per (architecture, variant != baseline) of ``task`` with the statistics above
    (:data:`COLUMNS`), adjusted for multiplicity over all rows of the task."""
    metric, higher_better = PRIMARY_METRIC[problem_type]
    col = f"test_{metric}"
    rows = []
    sub = frame[frame["task"] == task] if not frame.empty else frame
    sizes = None
    for arch, group in (sub.groupby("architecture", sort=True) if not sub.empty else []):
        base = group[group["variant"] == baseline]
        if base.empty:
            continue
        for variant, runs in group[group["variant"] != baseline].groupby("variant", sort=True):
            per_fold = fold_differences(runs, base, col)
            if sizes is None:
                sizes = resolve_fold_sizes(frame, task, fold_sizes)
            ratio = test_train_ratio(per_fold["fold"], sizes) if len(per_fold) else math.nan
            result = (paired_test(per_fold["diff"].to_numpy(), ratio, method) if len(per_fold) else
                      {"n_folds": 0, "method": METHODS[method], "note": "no fold shared with the baseline"})
            seeds = sorted(set(per_fold["n_seeds"].astype(int)))
            rows.append({"architecture": arch, "variant": variant, "baseline": baseline, "metric": metric,
                         "seeds_per_fold": ",".join(map(str, seeds)),
                         "baseline_mean": float(per_fold["base"].mean()) if len(per_fold) else math.nan, **result})
    table = pd.DataFrame(rows, columns=COLUMNS)
    if table.empty:
        return table
    tested = table["p_wilcoxon"] if method == "wilcoxon" else table["p_corrected"]
    table["p_adjusted"] = adjust(tested.to_numpy(dtype=float))
    table["adjustment"] = ADJUSTMENTS[ADJUSTMENT]
    table["significant"] = (table["p_adjusted"] < alpha).fillna(False).astype(bool)
    variant_wins = (table["mean_diff"] > 0) == higher_better
    table["better"] = np.where(table["significant"], np.where(variant_wins, table["variant"], baseline), "")
    return table
