"""Figures of a grid with seaborn, each saved as PNG and PDF (Agg backend, no display needed).

Every figure uses matplotlib's constrained layout, so panel titles, a figure title and
legends placed outside the axes never overlap; every axis names its quantity and unit.
Output is deterministic: the PDF carries no creation date and the strip plot's jitter
is seeded, so the same runs give the same bytes.
"""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench.cells import DUMMY  # noqa: E402
from bench.metrics import PRIMARY_METRIC, REGRESSION  # noqa: E402
from bench.report.runs import epoch_history, read_predictions  # noqa: E402
from bench.report.stats import ALPHA, BASELINE, significance_mark  # noqa: E402

sns.set_theme(style="whitegrid", context="paper")

#: Parity plots use log-log axes when every true target is positive and max/min exceeds this
#: (more than two decades: on linear axes most points would sit in one corner).
LOG_RATIO = 100.0
DELTA_CAPTION = (f"variant minus {BASELINE} per architecture (number: mean Δ over folds in the task's unit; colour: "
                 f"Δ in % of {BASELINE}'s score, red = worse; * adjusted p < {ALPHA}, ** < 0.01, *** < 0.001)")


def save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` into ``out_dir`` and close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1], metadata={"CreationDate": None})  # same runs, same bytes: committed figures diff cleanly
    plt.close(fig)
    return paths


def _figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[plt.Figure, np.ndarray]:
    return plt.subplots(nrows, ncols, figsize=size, squeeze=False, layout="constrained")


def _spec(task: str):
    import tasks

    return tasks.get_task(task)


_EXPONENT = re.compile(r"\^(-?[0-9]+)")
_MATH_EXPONENT = r"$^{\1}$"


def _with_unit(label: str, unit: str | None) -> str:
    """``label (unit)``, exponents typeset (``cm^-1`` becomes cm⁻¹ through mathtext)."""
    if not unit:
        return label
    return f"{label} ({_EXPONENT.sub(_MATH_EXPONENT, unit)})"


def _upright_labels(ax) -> None:
    # seaborn turns crowded tick labels vertical; architecture names read better level
    ax.tick_params(axis="y", labelrotation=0)
    ax.tick_params(axis="x", labelrotation=0)


def _models(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    return frame[(frame["task"] == task) & (frame["architecture"] != DUMMY)]


def _variant_order(variants) -> list[str]:
    known = ["distance", "multi_edge", "lattice"]
    present = set(variants)
    return [v for v in known if v in present] + sorted(present - set(known))


def use_log_axes(y_true: np.ndarray) -> bool:
    """The parity-plot rule: log axes when all targets are positive and span more than :data:`LOG_RATIO`."""
    y = np.asarray(y_true, dtype=float)
    y = y[np.isfinite(y)]
    return bool(y.size and (y > 0).all() and y.max() / y.min() > LOG_RATIO)


def heatmap(frame: pd.DataFrame, problem_types: dict[str, str], out_dir: Path) -> list[Path]:
    """Architecture x variant per task: mean MAE/MAD (regression, lower is better) or ROC-AUC."""
    tasks = [t for t in problem_types if not _models(frame, t).empty]
    if not tasks:
        return []
    fig, axes = _figure(1, len(tasks), (4.4 * len(tasks), 1.2 + 0.45 * frame["architecture"].nunique()))
    for ax, task in zip(axes[0], tasks):
        sub = _models(frame, task)
        regression = problem_types[task] == REGRESSION
        col = "test_mae_over_mad" if regression else "test_roc_auc"
        grid = sub.pivot_table(index="architecture", columns="variant", values=col, aggfunc="mean")
        grid = grid[[v for v in _variant_order(sub["variant"]) if v in grid.columns]]
        sns.heatmap(grid, annot=True, fmt=".3f", cmap="viridis_r" if regression else "viridis", ax=ax,
                    cbar_kws={"label": "test MAE / MAD (dimensionless)" if regression else "test ROC-AUC"})
        ax.set_title(task)
        ax.set_xlabel("edge variant")
        ax.set_ylabel("architecture")
        _upright_labels(ax)
    return save(fig, out_dir, "heatmap_scaled_error")


def delta_heatmap(comparisons: dict[str, pd.DataFrame], units: dict[str, str], out_dir: Path) -> list[Path]:
    """Architecture x variant per task of the paired effect against ``distance``.

    ``comparisons``: task -> table of :func:`bench.report.stats.paired_comparisons`. Cell text:
    mean Δ in the task's unit and the significance mark of its adjusted p-value; colour: Δ in
    % of the baseline's mean, on a symmetric scale per task, red where the variant is worse.
    """
    tasks = [t for t, comp in comparisons.items() if comp is not None and not comp.empty]
    if not tasks:
        return []
    n_arch = max(comparisons[t]["architecture"].nunique() for t in tasks)
    n_var = max(comparisons[t]["variant"].nunique() for t in tasks)
    fig, axes = _figure(1, len(tasks), (len(tasks) * (2.6 + 1.3 * n_var), 1.4 + 0.42 * n_arch))
    for ax, task in zip(axes[0], tasks):
        comp = comparisons[task]
        pct = comp.assign(pct=100 * comp["mean_diff"] / comp["baseline_mean"])
        text = comp.assign(text=[f"{d:+.3g}{significance_mark(p)}" if np.isfinite(d) else "–"
                                 for d, p in zip(comp["mean_diff"], comp["p_adjusted"])])
        order = _variant_order(comp["variant"])
        colour = pct.pivot(index="architecture", columns="variant", values="pct")[order]
        labels = text.pivot(index="architecture", columns="variant", values="text")[order]
        metric = str(comp["metric"].iloc[0])
        higher_better = metric == "roc_auc"
        vlim = float(np.nanmax(np.abs(colour.to_numpy(dtype=float)))) if np.isfinite(colour.to_numpy(dtype=float)).any() else 1.0
        sns.heatmap(colour, annot=labels.fillna("–").to_numpy(), fmt="", cmap="RdBu" if higher_better else "RdBu_r",
                    vmin=-vlim, vmax=vlim, center=0.0, ax=ax, linewidths=0.5,
                    cbar_kws={"label": f"Δ in % of {BASELINE}'s {'ROC-AUC' if higher_better else 'MAE'}"})
        unit = units.get(task, "")
        ax.set_title(f"{task}\n" + _with_unit(f"Δ {'ROC-AUC' if higher_better else 'MAE'} vs {BASELINE}", unit))
        ax.set_xlabel(f"edge variant (minus {BASELINE})")
        ax.set_ylabel("architecture")
        _upright_labels(ax)
    return save(fig, out_dir, "heatmap_delta_vs_distance")


def strip_plot(frame: pd.DataFrame, task: str, problem_type: str, out_dir: Path, unit: str | None = None) -> list[Path]:
    """One point per cell (fold x seed): headline metric per variant, coloured by architecture."""
    sub = _models(frame, task)
    if sub.empty:
        return []
    unit = _spec(task).unit if unit is None else unit
    metric, _ = PRIMARY_METRIC[problem_type]
    col = f"test_{metric}"
    fig, axes = _figure(1, 1, (2.8 + 1.6 * sub["variant"].nunique(), 3.8))
    ax = axes[0, 0]
    np.random.seed(0)  # seaborn draws the jitter from numpy's global generator; fixed, so reruns match
    sns.stripplot(data=sub, x="variant", y=col, hue="architecture", order=_variant_order(sub["variant"]), dodge=True,
                  jitter=0.15, size=5, ax=ax)
    dummy = frame[(frame["task"] == task) & (frame["architecture"] == DUMMY)]
    if not dummy.empty:
        ax.axhline(float(dummy[col].mean()), color="grey", ls="--", lw=1, label="dummy (mean)")
    ax.set_xlabel("edge variant")
    ax.set_ylabel(_with_unit("test MAE", unit) if metric == "mae" else "test ROC-AUC")
    ax.set_title(f"{task}: per-fold test scores")
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return save(fig, out_dir, f"strip_{task}")


def _facets(sub: pd.DataFrame) -> tuple[plt.Figure, np.ndarray, list[str], list[str]]:
    archs, variants = sorted(set(sub["architecture"])), _variant_order(sub["variant"])
    fig, axes = _figure(len(archs), len(variants), (3.0 * len(variants), 0.5 + 2.8 * len(archs)))
    return fig, axes, archs, variants


def _parity_panel(ax, preds: pd.DataFrame, log: bool, lims: tuple[float, float], unit: str, target: str) -> None:
    shown = preds[(preds["y_pred"] > 0)] if log else preds
    sns.scatterplot(data=shown, x="y_true", y="y_pred", hue="fold", s=8, alpha=0.6, ax=ax, legend=False)
    ax.plot(lims, lims, color="k", lw=0.8)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        hidden = len(preds) - len(shown)
        if hidden:  # a log axis cannot show them; say so rather than drop them silently
            ax.text(0.02, 0.98, f"{hidden} prediction(s) ≤ 0 not shown", transform=ax.transAxes, va="top", fontsize=6)
    ax.set_xlim(lims)
    ax.set_ylim(lims)
    ax.set_aspect("equal")
    ax.set_xlabel(_with_unit(f"true {target}", unit), fontsize=7)
    ax.set_ylabel(_with_unit("predicted", unit), fontsize=7)


def parity_plots(frame: pd.DataFrame, task: str, problem_type: str, source, out_dir: Path,
                 unit: str | None = None) -> list[Path]:
    """Predicted vs true for each cell (architecture x variant, all folds and seeds), from predictions.csv.

    Regression panels share one axis range per task, on log-log axes when :func:`use_log_axes`
    holds for the task's true targets (e.g. exfoliation energies spanning four decades).
    """
    sub = _models(frame, task)
    if sub.empty:
        return []
    spec = _spec(task)
    unit = spec.unit if unit is None else unit
    preds = {}
    for (arch, variant), runs in sub.groupby(["architecture", "variant"], sort=True):
        preds[(arch, variant)] = pd.concat([read_predictions(source, r.run_id).assign(fold=str(r.fold))
                                            for r in runs.itertuples()])
    log = False
    if problem_type == REGRESSION:
        everything = pd.concat(preds.values())
        log = use_log_axes(everything["y_true"])
        values = everything[["y_true", "y_pred"]].to_numpy(dtype=float).ravel()
        values = values[np.isfinite(values)]
        values = values[values > 0] if log else values
        lo, hi = float(values.min()), float(values.max())
        lims = (lo / 1.5, hi * 1.5) if log else (lo - 0.03 * (hi - lo), hi + 0.03 * (hi - lo))
    fig, axes, archs, variants = _facets(sub)
    for i, arch in enumerate(archs):
        for j, variant in enumerate(variants):
            ax = axes[i, j]
            if (arch, variant) not in preds:
                ax.set_axis_off()
                continue
            cell = preds[(arch, variant)]
            if problem_type == REGRESSION:
                _parity_panel(ax, cell, log, lims, unit, spec.target)
            else:
                sns.histplot(data=cell, x="y_pred", hue="y_true", bins=20, binrange=(0, 1), ax=ax, element="step")
                ax.set_xlabel("predicted probability of class 1", fontsize=7)
                ax.set_ylabel("test structures", fontsize=7)
            ax.set_title(f"{arch} / {variant}", fontsize=8)
    scale = " (log-log axes)" if log else ""
    fig.suptitle(f"{task}: predicted vs true, all test folds{scale}")
    return save(fig, out_dir, f"parity_{task}")


def learning_curves(frame: pd.DataFrame, task: str, source, out_dir: Path,
                    unit: str | None = None) -> list[Path]:
    """Per-epoch training loss and validation score (mean and sd over folds x seeds) per architecture."""
    sub = _models(frame, task)
    if sub.empty:
        return []
    hist = [epoch_history(source, r.run_id).assign(architecture=r.architecture, variant=r.variant, run=r.run_id)
            for r in sub.itertuples()]
    hist = pd.concat(hist, ignore_index=True) if hist else pd.DataFrame()
    if hist.empty:
        return []
    spec = _spec(task)
    unit = spec.unit if unit is None else unit
    regression = spec.problem_type == REGRESSION
    ylabels = {"train_loss": "training loss (standardised target)" if regression else "training loss (BCE)",
               "val_score": _with_unit("validation MAE", unit) if regression else "validation BCE"}
    archs = sorted(set(hist["architecture"]))
    fig, axes = _figure(len(archs), 2, (8, 0.6 + 2.6 * len(archs)))
    for i, arch in enumerate(archs):
        for j, metric in enumerate(("train_loss", "val_score")):
            data = hist[(hist["architecture"] == arch) & (hist["metric"] == metric)]
            sns.lineplot(data=data, x="epoch", y="value", hue="variant", errorbar="sd", ax=axes[i, j],
                         hue_order=[v for v in _variant_order(sub["variant"]) if v in set(data["variant"])])
            axes[i, j].set_title(f"{arch}: {metric}", fontsize=9)
            axes[i, j].set_ylabel(ylabels[metric], fontsize=7)
    fig.suptitle(f"{task}: learning curves (mean ± sd over folds and seeds)")
    return save(fig, out_dir, f"learning_curves_{task}")
