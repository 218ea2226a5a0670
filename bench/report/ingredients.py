"""Which ingredient of an encoding carries an effect: paired contrasts between control variants.

The three seed encodings differ in several things at once (``distance`` → ``multi_edge`` adds
self-image edges, several images of one pair and more edges; ``lattice`` adds loops). Each
contrast below changes ONE ingredient and keeps the rest, so its effect can be attributed:

====================  =====================  =====================  ===============================
ingredient            with                   without                what changes
====================  =====================  =====================  ===============================
self-image edges      ``multi_edge``         ``multi_edge_noself``  edges (i, i, s≠0) only
several images        ``multi_edge_noself``  ``distance``           images beyond the minimum one
edge count            ``multi_edge``         ``multi_edge_degree``  radius cut to distance's degree
images at equal deg.  ``multi_edge_degree``  ``distance``           images, mean degree held equal
loops on distance     ``distance_lattice``   ``distance``           the 18 lattice loops per atom
loops on multi_edge   ``lattice``            ``multi_edge``         the 18 lattice loops per atom
Voronoi faces         ``voronoi``            ``distance``           face neighbours + solid angles
long range (Ewald)    ``ewald_mp`` model     ``schnet`` model       reciprocal-space block, same graph
====================  =====================  =====================  ===============================

Statistics are those of :mod:`bench.report.stats` (the fold is the unit; seeds averaged
within a fold; Nadeau–Bengio corrected t; minimum detectable effect at 80 % power). The
family for the multiplicity adjustment is every contrast of every architecture of one task
(Holm): the more contrasts, the stricter each one. Δ = with − without, in the task's
headline metric (negative = the ingredient lowers the error, for MAE).

Besides one row per architecture, each graph contrast with two or more architectures gets a
row :data:`ALL`: per fold, the mean of the architectures' fold differences (on the folds all
of them have), then the same test on those J means. It asks whether the ingredient helps a
typical model; it is part of the Holm family like every other row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.metrics import PRIMARY_METRIC, REGRESSION
from bench.report.stats import (ADJUSTMENT, ADJUSTMENTS, ALPHA, fold_differences, adjust, paired_test,
                                resolve_fold_sizes, significance_mark, test_train_ratio)


@dataclass(frozen=True)
class Contrast:
    """``with_`` minus ``without``: (variant) pairs, or (architecture, variant) for a model add-on."""

    ingredient: str
    with_variant: str
    without_variant: str
    with_architecture: str | None = None  # None: the same architecture on both sides
    without_architecture: str | None = None


CONTRASTS = (
    Contrast("self-image edges", "multi_edge", "multi_edge_noself"),
    Contrast("several images", "multi_edge_noself", "distance"),
    Contrast("edge count", "multi_edge", "multi_edge_degree"),
    Contrast("images at equal degree", "multi_edge_degree", "distance"),
    Contrast("loops on distance", "distance_lattice", "distance"),
    Contrast("loops on multi_edge", "lattice", "multi_edge"),
    Contrast("Voronoi faces", "voronoi", "distance"),
    Contrast("long range (Ewald)", "multi_edge", "multi_edge", "ewald_mp", "schnet"),
)
SEED_VARIANTS = ("distance", "multi_edge", "lattice")
#: Row label of a contrast averaged over the architectures (fold by fold) before the test.
ALL = "mean of architectures"
COLUMNS = ["ingredient", "architecture", "with", "without", "n_folds", "without_mean", "mean_diff", "ci_low",
           "ci_high", "p_corrected", "p_adjusted", "adjustment", "significant", "mde", "note"]


def _runs(sub: pd.DataFrame, architecture: str, variant: str) -> pd.DataFrame:
    return sub[(sub["architecture"] == architecture) & (sub["variant"] == variant)]


def _pairs(sub: pd.DataFrame, contrast: Contrast) -> list[tuple[str, pd.DataFrame, pd.DataFrame, str, str]]:
    """(row label, with-runs, without-runs, with label, without label) of every architecture the
    contrast applies to and the frame has both sides of."""
    if contrast.with_architecture is not None:
        with_arch, without_arch = contrast.with_architecture, contrast.without_architecture or contrast.with_architecture
        a = _runs(sub, with_arch, contrast.with_variant)
        b = _runs(sub, without_arch, contrast.without_variant)
        if a.empty or b.empty:
            return []
        return [(with_arch, a, b, f"{with_arch} {contrast.with_variant}", f"{without_arch} {contrast.without_variant}")]
    out = []
    for arch in sorted(sub["architecture"].unique()):
        a, b = _runs(sub, arch, contrast.with_variant), _runs(sub, arch, contrast.without_variant)
        if not a.empty and not b.empty:
            out.append((arch, a, b, contrast.with_variant, contrast.without_variant))
    return out


def _mean_over_architectures(per_arch: list[pd.DataFrame]) -> pd.DataFrame:
    """Per fold, the mean over architectures of their fold differences, on the folds every
    architecture has (so each fold averages the same models): the fold stays the unit."""
    both = pd.concat(per_arch, ignore_index=True)
    n_arch = both["architecture"].nunique()
    counts = both.groupby("fold")["architecture"].nunique()
    shared = counts[counts == n_arch].index
    return (both[both["fold"].isin(shared)].groupby("fold", sort=True)
            .agg(diff=("diff", "mean"), base=("base", "mean")).reset_index())


def has_controls(frame: pd.DataFrame) -> bool:
    """True when ``frame`` has a control variant or an add-on model of :data:`CONTRASTS`: a grid of
    the seed encodings alone gets no ingredient section (its one contrast is in the paired table)."""
    if frame.empty:
        return False
    controls = {v for c in CONTRASTS for v in (c.with_variant, c.without_variant)} - set(SEED_VARIANTS)
    addons = {c.with_architecture for c in CONTRASTS if c.with_architecture}
    return bool(frame["variant"].isin(controls).any() or frame["architecture"].isin(addons).any())


def ingredient_table(frame: pd.DataFrame, task: str, problem_type: str = REGRESSION, method: str = "ttest",
                     fold_sizes=None) -> pd.DataFrame:
    """One row per (ingredient, architecture) of ``task`` whose two sides have records
    (:data:`COLUMNS`), Holm-adjusted over all rows. Empty when no contrast has both sides."""
    metric, _ = PRIMARY_METRIC[problem_type]
    col = f"test_{metric}"
    sub = frame[frame["task"] == task] if not frame.empty else frame
    rows, sizes = [], None

    def row(ingredient: str, arch: str, per_fold: pd.DataFrame, with_label: str, without_label: str) -> dict:
        nonlocal sizes
        sizes = sizes or resolve_fold_sizes(frame, task, fold_sizes)
        result = paired_test(per_fold["diff"].to_numpy(), test_train_ratio(per_fold["fold"], sizes), method)
        return {"ingredient": ingredient, "architecture": arch, "with": with_label, "without": without_label,
                "without_mean": float(per_fold["base"].mean()),
                **{k: result[k] for k in ("n_folds", "mean_diff", "ci_low", "ci_high", "p_corrected", "mde", "note")},
                "p_tested": result["p_wilcoxon"] if method == "wilcoxon" else result["p_corrected"]}

    for contrast in CONTRASTS:
        per_arch = []
        for arch, with_runs, without_runs, with_label, without_label in (_pairs(sub, contrast) if not sub.empty else []):
            per_fold = fold_differences(with_runs, without_runs, col)
            if not per_fold.empty:
                rows.append(row(contrast.ingredient, arch, per_fold, with_label, without_label))
                per_arch.append(per_fold.assign(architecture=arch))
        if len(per_arch) > 1:
            rows.append(row(contrast.ingredient, ALL, _mean_over_architectures(per_arch),
                            contrast.with_variant, contrast.without_variant))
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    table["p_adjusted"] = adjust(table.pop("p_tested").to_numpy(dtype=float))
    table["adjustment"] = ADJUSTMENTS[ADJUSTMENT]
    table["significant"] = (table["p_adjusted"] < ALPHA).fillna(False).astype(bool)
    return table[COLUMNS]


def _cell(row: pd.Series) -> str:
    if not math.isfinite(row["mean_diff"]):
        return "–"
    if not math.isfinite(row["ci_low"]):
        return f"{row['mean_diff']:+.3g} ({row['note']})"
    mark = significance_mark(row["p_adjusted"]) if math.isfinite(row["p_adjusted"]) else ""
    text = f"{row['mean_diff']:+.3g} [{row['ci_low']:+.3g}, {row['ci_high']:+.3g}]{mark}"
    if row["significant"]:
        return text
    if row["ci_low"] > 0 or row["ci_high"] < 0:  # one comparison alone would call it; the family does not
        return f"{text} †"
    # below the minimum detectable effect the design cannot tell: say so instead of reading the sign
    return f"{text} ≺MDE" if abs(row["mean_diff"]) < row["mde"] else text


def ingredient_markdown(table: pd.DataFrame, unit: str = "") -> str:
    """Architectures × ingredients: Δ [95 % corrected interval] and the Holm mark; ``†`` where
    the interval excludes 0 but the adjusted p does not pass; ``≺MDE`` where the interval
    includes 0 and |Δ| is below the contrast's minimum detectable effect (the design cannot tell)."""
    if table.empty:
        return "No contrast has records on both sides yet.\n"
    ingredients = [c.ingredient for c in CONTRASTS if c.ingredient in set(table["ingredient"])]
    grid = table.assign(text=table.apply(_cell, axis=1)).pivot(index="architecture", columns="ingredient",
                                                                values="text")
    grid = grid.reindex(columns=ingredients).fillna("")
    head = "| architecture | " + " | ".join(ingredients) + " |"
    lines = [head, "|" + "---|" * (len(ingredients) + 1)]
    order = [a for a in grid.index if a != ALL] + ([ALL] if ALL in grid.index else [])
    lines += ["| " + (f"**{arch}**" if arch == ALL else arch) + " | " + " | ".join(grid.loc[arch]) + " |"
              for arch in order]
    surviving = table[table["significant"]]
    found = ("; ".join(f"{r.architecture}: {r.ingredient} {r.mean_diff:+.3g} {unit}".rstrip()
                       for r in surviving.itertuples()) if not surviving.empty else "none")
    mde = float(np.nanmedian(table["mde"].to_numpy(dtype=float))) if table["mde"].notna().any() else math.nan
    lines += ["", f"Δ = with − without ({unit}) [corrected 95 % interval]; marks: Holm-adjusted p over the "
              f"{len(table)} contrasts (* < 0.05, ** < 0.01, *** < 0.001); † the interval excludes 0 but the "
              f"effect does not survive the adjustment; ≺MDE |Δ| is below the minimum detectable effect and the "
              f"interval includes 0 (median MDE {mde:.3g} {unit}). "
              f"Effects that survive the adjustment: {found}.", ""]
    return "\n".join(lines)
