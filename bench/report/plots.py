"""Figures of a grid with seaborn, each saved as PNG and PDF (Agg backend, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from bench.cells import DUMMY  # noqa: E402
from bench.metrics import PRIMARY_METRIC, REGRESSION  # noqa: E402
from bench.report.runs import epoch_history, read_predictions  # noqa: E402

sns.set_theme(style="whitegrid", context="paper")


def save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.pdf`` into ``out_dir`` and close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.tight_layout()
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1], metadata={"CreationDate": None})  # same runs, same bytes: committed figures diff cleanly
    plt.close(fig)
    return paths


def _models(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    return frame[(frame["task"] == task) & (frame["architecture"] != DUMMY)]


def _variant_order(sub: pd.DataFrame) -> list[str]:
    known = ["distance", "multi_edge", "lattice"]
    return [v for v in known if v in set(sub["variant"])] + sorted(set(sub["variant"]) - set(known))


def heatmap(frame: pd.DataFrame, problem_types: dict[str, str], out_dir: Path) -> list[Path]:
    """Architecture x variant per task: mean MAE/MAD (regression, lower is better) or ROC-AUC."""
    tasks = [t for t in problem_types if not _models(frame, t).empty]
    if not tasks:
        return []
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 0.5 + 0.45 * frame["architecture"].nunique()),
                             squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sub = _models(frame, task)
        regression = problem_types[task] == REGRESSION
        col = "test_mae_over_mad" if regression else "test_roc_auc"
        grid = sub.pivot_table(index="architecture", columns="variant", values=col, aggfunc="mean")
        grid = grid[[v for v in _variant_order(sub) if v in grid.columns]]
        sns.heatmap(grid, annot=True, fmt=".3f", cmap="viridis_r" if regression else "viridis", ax=ax,
                    cbar_kws={"label": "MAE / MAD" if regression else "ROC-AUC"})
        ax.set_title(task)
    return save(fig, out_dir, "heatmap_scaled_error")


def strip_plot(frame: pd.DataFrame, task: str, problem_type: str, out_dir: Path) -> list[Path]:
    """One point per cell (fold x seed): headline metric per variant, coloured by architecture."""
    sub = _models(frame, task)
    if sub.empty:
        return []
    metric, _ = PRIMARY_METRIC[problem_type]
    col = f"test_{metric}"
    fig, ax = plt.subplots(figsize=(1.6 + 1.6 * sub["variant"].nunique(), 3.6))
    np.random.seed(0)  # seaborn draws the jitter from numpy's global generator; fixed, so reruns match
    sns.stripplot(data=sub, x="variant", y=col, hue="architecture", order=_variant_order(sub), dodge=True,
                  jitter=0.15, size=5, ax=ax)
    dummy = frame[(frame["task"] == task) & (frame["architecture"] == DUMMY)]
    if not dummy.empty:
        ax.axhline(float(dummy[col].mean()), color="grey", ls="--", lw=1, label="dummy (mean)")
    ax.set_ylabel("MAE" if metric == "mae" else "ROC-AUC")
    ax.set_title(f"{task}: per-fold test scores")
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return save(fig, out_dir, f"strip_{task}")


def _facets(sub: pd.DataFrame) -> tuple[plt.Figure, np.ndarray, list[str], list[str]]:
    archs, variants = sorted(set(sub["architecture"])), _variant_order(sub)
    fig, axes = plt.subplots(len(archs), len(variants), figsize=(3.0 * len(variants), 2.8 * len(archs)),
                             squeeze=False)
    return fig, axes, archs, variants


def parity_plots(frame: pd.DataFrame, task: str, problem_type: str, client: MlflowClient, out_dir: Path) -> list[Path]:
    """Predicted vs true for each cell (architecture x variant, all folds and seeds), from predictions.csv."""
    sub = _models(frame, task)
    if sub.empty:
        return []
    fig, axes, archs, variants = _facets(sub)
    for i, arch in enumerate(archs):
        for j, variant in enumerate(variants):
            ax = axes[i, j]
            runs = sub[(sub["architecture"] == arch) & (sub["variant"] == variant)]
            if runs.empty:
                ax.set_axis_off()
                continue
            preds = pd.concat([read_predictions(client, r.run_id).assign(fold=str(r.fold)) for r in runs.itertuples()])
            if problem_type == REGRESSION:
                sns.scatterplot(data=preds, x="y_true", y="y_pred", hue="fold", s=8, alpha=0.6, ax=ax, legend=False)
                lo, hi = np.nanmin(preds[["y_true", "y_pred"]].to_numpy()), np.nanmax(preds[["y_true", "y_pred"]].to_numpy())
                ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
                ax.set_xlabel("true")
                ax.set_ylabel("predicted")
            else:
                sns.histplot(data=preds, x="y_pred", hue="y_true", bins=20, binrange=(0, 1), ax=ax, element="step")
                ax.set_xlabel("predicted probability of class 1")
            ax.set_title(f"{arch} / {variant}", fontsize=8)
    fig.suptitle(f"{task}: predicted vs true (test folds)")
    return save(fig, out_dir, f"parity_{task}")


def learning_curves(frame: pd.DataFrame, task: str, client: MlflowClient, out_dir: Path) -> list[Path]:
    """Per-epoch training loss and validation score (mean and sd over folds x seeds) per architecture."""
    sub = _models(frame, task)
    if sub.empty:
        return []
    hist = [epoch_history(client, r.run_id).assign(architecture=r.architecture, variant=r.variant, run=r.run_id)
            for r in sub.itertuples()]
    hist = pd.concat(hist, ignore_index=True) if hist else pd.DataFrame()
    if hist.empty:
        return []
    archs = sorted(set(hist["architecture"]))
    fig, axes = plt.subplots(len(archs), 2, figsize=(8, 2.6 * len(archs)), squeeze=False)
    for i, arch in enumerate(archs):
        for j, metric in enumerate(("train_loss", "val_score")):
            data = hist[(hist["architecture"] == arch) & (hist["metric"] == metric)]
            sns.lineplot(data=data, x="epoch", y="value", hue="variant", errorbar="sd", ax=axes[i, j],
                         hue_order=[v for v in _variant_order(sub) if v in set(data["variant"])])
            axes[i, j].set_title(f"{arch}: {metric}", fontsize=9)
    fig.suptitle(f"{task}: learning curves")
    return save(fig, out_dir, f"learning_curves_{task}")
