"""Leaderboard tables from MLflow runs: architecture x variant, mean ± std over folds and seeds.

Published numbers appear only as separate rows labelled as references.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Run

from bench.metrics import PRIMARY_METRIC, REGRESSION
from bench.tracking import TAG_PREFIX

#: Published Matbench v0.1 leaderboard scores, shown only as labelled reference rows.
PUBLISHED_REFERENCES: dict[str, list[tuple[str, float]]] = {
    "matbench_jdft2d": [("Dummy", 67.29), ("CGCNN", 49.24)],
}
REFERENCE_SOURCE = "Matbench v0.1 leaderboard (published, not run here)"


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: its bench.* tags (without prefix) and metrics."""
    rows = []
    for run in runs:
        row = {k[len(TAG_PREFIX):]: v for k, v in run.data.tags.items() if k.startswith(TAG_PREFIX)}
        row.update(run.data.metrics)
        row["run_id"] = run.info.run_id
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_std(values: pd.Series) -> tuple[float, float]:
    v = values.dropna().to_numpy(dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def leaderboard(frame: pd.DataFrame, task: str, problem_type: str = REGRESSION) -> pd.DataFrame:
    """Aggregate the runs of ``task`` per (architecture, variant), best first."""
    metric, higher_better = PRIMARY_METRIC[problem_type]
    col = f"test_{metric}"
    sub = frame[frame["task"] == task]
    rows = []
    for (arch, variant), group in sub.groupby(["architecture", "variant"], sort=False):
        mean, std = _mean_std(group[col])
        row = {"architecture": arch, "variant": variant, f"{metric}_mean": mean, f"{metric}_std": std,
               "n_runs": len(group), "folds": ",".join(sorted(set(group["fold"].astype(str))))}
        for extra in ("test_rmse", "test_mae_over_mad", "n_params", "wall_time_s", "train_structures_per_s"):
            if extra in group:
                row[extra.removeprefix("test_") + ("_mean" if extra.startswith("test_") else "")] = _mean_std(group[extra])[0]
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.sort_values(f"{metric}_mean", ascending=not higher_better, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def _fmt(value: float, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def to_markdown(table: pd.DataFrame, task: str, unit: str, problem_type: str = REGRESSION) -> str:
    """Markdown table with mean ± std, then the labelled published reference rows."""
    metric, _ = PRIMARY_METRIC[problem_type]
    name = "MAE" if metric == "mae" else "ROC-AUC"
    head = f"| rank | architecture | variant | {name} ({unit}) mean ± std | runs | RMSE | MAE/MAD | params | time/cell (s) |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['rank']} | {r['architecture']} | {r['variant']} | {_fmt(r[f'{metric}_mean'])} ± {_fmt(r[f'{metric}_std'])} "
            f"| {r['n_runs']} | {_fmt(r.get('rmse_mean', np.nan))} | {_fmt(r.get('mae_over_mad_mean', np.nan), 3)} "
            f"| {'–' if pd.isna(r.get('n_params', np.nan)) else int(r['n_params'])} | {_fmt(r.get('wall_time_s', np.nan), 0)} |"
        )
    for label, value in PUBLISHED_REFERENCES.get(task, []):
        lines.append(f"| ref | {label} (published) | – | {_fmt(value)} | – | – | – | – | – |")
    if PUBLISHED_REFERENCES.get(task):
        lines.append("")
        lines.append(f"Rows marked `ref` are from the {REFERENCE_SOURCE}; all other rows were computed by this suite.")
    return "\n".join(lines) + "\n"


def write_tables(table: pd.DataFrame, out_dir: Path, task: str, unit: str, problem_type: str = REGRESSION) -> list[Path]:
    """Write ``<task>_leaderboard.md`` and ``.csv``; the CSV's ``source`` column labels reference rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{task}_leaderboard.md"
    csv = out_dir / f"{task}_leaderboard.csv"
    md.write_text(f"# {task}\n\n" + to_markdown(table, task, unit, problem_type))
    metric, _ = PRIMARY_METRIC[problem_type]
    refs = pd.DataFrame([{"architecture": label, "variant": "", f"{metric}_mean": value, "source": REFERENCE_SOURCE}
                         for label, value in PUBLISHED_REFERENCES.get(task, [])])
    pd.concat([table.assign(source="this suite"), refs], ignore_index=True).to_csv(csv, index=False)
    return [md, csv]
