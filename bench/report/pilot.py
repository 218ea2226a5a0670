"""Choose a grid's training budget from the pilot's learning curves (``bench pilot``).

A pilot run trains without early stopping and records, per epoch, the validation score and
the score on a hold-out carved from the same fold's training rows (:mod:`bench.pilot`).
Because the learning-rate schedule does not depend on the stopping rule, any rule (epoch
cap C, patience P, with the pilot's validation window) replays exactly on a recorded curve:
:func:`replay`. :func:`budget_table` scores candidate rules by

- the fraction of runs that end by early stopping rather than at the cap (target >= 0.8);
- the largest change of any architecture's hold-out score when the cap is doubled (C -> 2C),
  in units of that architecture's fold standard deviation (target <= 0.2);
- the same when the whole budget is doubled, cap and patience ((C, P) -> (2C, 2P)), also
  <= 0.2: a rule that stops early trivially passes the cap test, so this is the test that
  training longer would not have helped (a short patience on a noisy validation curve fails it);
- the mean number of epochs trained (the cost),

and :func:`choose` picks the cheapest rule that meets all three targets (the largest cap among
equally cheap ones). Runs whose recorded curve
ends before a rule can be judged count against it (never in its favour).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MIN_STOPPED_EARLY = 0.8  # of runs ending by early stopping, not by the cap
MAX_DOUBLING_CHANGE = 0.2  # of the fold std: doubling the cap may change a hold-out score by at most this
CAPS = (50, 100, 150, 200, 300, 400)
PATIENCES = (10, 20, 30, 50, 75, 100)


@dataclass(frozen=True)
class Replay:
    """One stopping rule replayed on one curve."""

    epochs: int  # epochs trained under the rule
    best_epoch: int  # epoch whose weights the rule keeps (0-based)
    stopped_early: bool  # patience ended it before the cap
    holdout: float  # hold-out score of the kept epoch
    complete: bool  # the recorded curve was long enough to apply the rule


def monitored_scores(val: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean of the last ``window`` validation scores, epoch by epoch (what ``fit`` watches)."""
    csum = np.concatenate([[0.0], np.cumsum(val)])
    k = np.arange(1, len(val) + 1)
    lo = np.maximum(0, k - window)
    return (csum[k] - csum[lo]) / (k - lo)


def replay(history: list[dict], cap: int, patience: int, window: int) -> Replay:
    """Early stopping with epoch cap ``cap`` and ``patience`` on a recorded pilot curve."""
    val = np.array([h["val_score"] for h in history], dtype=float)
    hold = np.array([h["holdout_score"] for h in history], dtype=float)
    mon = monitored_scores(val, window)
    best, best_epoch, stale = np.inf, 0, 0
    for epoch in range(min(cap, len(val))):
        if mon[epoch] < best:
            best, best_epoch, stale = mon[epoch], epoch, 0
        else:
            stale += 1
        if stale >= patience:
            return Replay(epoch + 1, best_epoch, epoch + 1 < cap, float(hold[best_epoch]), True)
    epochs = min(cap, len(val))
    return Replay(epochs, best_epoch, False, float(hold[best_epoch]) if len(val) else np.nan, len(val) >= cap)


def budget_table(records: list[dict], fold_std: dict[tuple[str, str], float], window: int,
                 caps=CAPS, patiences=PATIENCES) -> pd.DataFrame:
    """One row per (cap, patience): fraction stopped early, worst change / fold std when doubling the cap
    and when doubling the whole budget, mean epochs."""
    rows = []
    for cap in caps:
        for patience in patiences:
            changes, budget_changes, stopped, epochs, undecided = [], [], [], [], 0
            for rec in records:
                one, two = replay(rec["history"], cap, patience, window), replay(rec["history"], 2 * cap, patience,
                                                                               window)
                both = replay(rec["history"], 2 * cap, 2 * patience, window)
                std = fold_std.get((rec["task"], rec["architecture"]),  # name@preset: its base model's spread
                                   fold_std.get((rec["task"], rec["architecture"].partition("@")[0]), np.nan))
                if not (one.complete and two.complete and both.complete) or not np.isfinite(std) or std <= 0:
                    undecided += 1
                    continue
                changes.append(abs(two.holdout - one.holdout) / std)
                budget_changes.append(abs(both.holdout - one.holdout) / std)
                stopped.append(one.stopped_early)
                epochs.append(one.epochs)
            n = len(records)
            rows.append({"cap": cap, "patience": patience, "window": window, "runs": n, "undecided": undecided,
                         "stopped_early_fraction": float(np.sum(stopped) / n) if n else np.nan,
                         "max_doubling_change_over_std": float(max(changes)) if changes and not undecided else np.nan,
                         "max_budget_doubling_change_over_std":
                             float(max(budget_changes)) if budget_changes and not undecided else np.nan,
                         "mean_epochs": float(np.mean(epochs)) if epochs else np.nan})
    table = pd.DataFrame(rows)
    table["meets_targets"] = ((table["stopped_early_fraction"] >= MIN_STOPPED_EARLY)
                              & (table["max_doubling_change_over_std"] <= MAX_DOUBLING_CHANGE)
                              & (table["max_budget_doubling_change_over_std"] <= MAX_DOUBLING_CHANGE)
                              & (table["undecided"] == 0))
    return table


def choose(table: pd.DataFrame) -> pd.Series | None:
    """The cheapest rule (fewest mean epochs) that meets all three targets; among equally cheap
    rules the one with the **largest** cap, then the smallest patience.

    Rules that differ only in a cap no pilot run reaches cost the same on the pilot, but not on
    the grid: its runs train on more rows (the pilot's hold-out is not carved off) and on other
    variants and seeds, so some run longer than any pilot run. The largest of those caps leaves
    them room to stop early at no cost the pilot can see.
    """
    ok = table[table["meets_targets"]]
    if ok.empty:
        return None
    return ok.sort_values(["mean_epochs", "cap", "patience"], ascending=[True, False, True], kind="stable").iloc[0]


def fold_std_from_frame(frame: pd.DataFrame, variant: str, metric: str = "test_mae") -> dict[tuple[str, str], float]:
    """(task, architecture) -> std over folds of ``metric`` (seeds averaged within a fold) on ``variant``.

    Tasks without ``metric`` (classification tasks have no MAE) contribute nothing.
    """
    if metric not in frame.columns:
        return {}
    sub = frame[(frame["variant"] == variant) & frame[metric].notna()]
    per_fold = sub.groupby(["task", "architecture", "fold"])[metric].mean()
    return {k: float(v) for k, v in per_fold.groupby(level=[0, 1]).std(ddof=1).items()}


def with_published_stand_in(fold_std: dict[tuple[str, str], float], records: list[dict],
                            ) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """``fold_std`` completed for every pilot run's (task, architecture) that the grid's records do not cover.

    The stand-in is the smallest fold std among the task's published Matbench entries
    (:data:`bench.report.references.PUBLISHED`): a scale for the doubling criterion before this
    grid has cells of its own, chosen as the smallest so that the criterion is at its strictest.
    Returns the completed mapping and ``task -> stand-in`` for the tasks where one was used.
    Once the grid has run, its own fold std replaces the stand-in (the report recomputes it).
    """
    from bench.report.references import PUBLISHED

    completed, used = dict(fold_std), {}
    for rec in records:
        task, arch = rec["task"], rec["architecture"]
        if (task, arch) in completed or (task, arch.partition("@")[0]) in completed or not PUBLISHED.get(task):
            continue
        used[task] = min(ref.std for ref in PUBLISHED[task])
        completed[(task, arch)] = used[task]
    return completed, used


def per_run_table(records: list[dict], cap: int, patience: int, window: int) -> pd.DataFrame:
    """Every pilot run under one rule (its task's choice): epochs, best epoch, stopped early, hold-out at cap
    and 2 x cap."""
    rows = []
    for rec in records:
        one, two = replay(rec["history"], cap, patience, window), replay(rec["history"], 2 * cap, patience, window)
        both = replay(rec["history"], 2 * cap, 2 * patience, window)
        rows.append({"task": rec["task"], "architecture": rec["architecture"], "cap": cap, "patience": patience,
                     "n_params": rec["n_params"],
                     "device": rec["device"], "epochs_recorded": rec["epochs_run"], "epochs": one.epochs,
                     "best_epoch": one.best_epoch, "stopped_early": one.stopped_early,
                     "holdout_at_cap": one.holdout, "holdout_at_2cap": two.holdout,
                     "holdout_at_2cap_2patience": both.holdout})
    return pd.DataFrame(rows)


def curves_figure(records: list[dict], caps: dict[str, int], out_dir: Path) -> list[Path]:
    """Validation and hold-out curves per task (one panel per architecture), each task's chosen cap marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.report.plots import save

    written = []
    for task in sorted({r["task"] for r in records}):
        cap = caps[task]
        runs = sorted((r for r in records if r["task"] == task), key=lambda r: r["architecture"])
        cols = 3
        rows = int(np.ceil(len(runs) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False, sharex=True,
                                 layout="constrained")
        for ax, rec in zip(axes.ravel(), runs):
            epochs = np.arange(1, len(rec["history"]) + 1)
            for key, label in (("val_score", "validation"), ("holdout_score", "pilot hold-out")):
                ax.plot(epochs, [h[key] for h in rec["history"]], label=label, linewidth=1)
            ax.axvline(cap, color="grey", linestyle="--", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_title(rec["architecture"], fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"MAE ({rec['unit']})")
        for ax in axes.ravel()[len(runs):]:
            ax.set_visible(False)
        axes.ravel()[0].legend(fontsize=7)
        fig.suptitle(f"{task}: pilot learning curves (dashed: chosen epoch cap {cap})")
        written += save(fig, out_dir, f"pilot_{task}")
    return written


def pilot_section(cfg, root: Path, fold_std: dict[tuple[str, str], float], figures: bool = True,
                  ) -> tuple[list[str], list[Path]]:
    """Markdown lines and files (``tables/pilot_budget.csv``, ``tables/pilot_runs.csv``, curve figures)
    of the budget pilot under ``root/pilot/``; no lines when there is no pilot record."""
    from bench.pilot import PILOT_DIR, load_records

    records = [r for r in load_records(root / PILOT_DIR) if r["architecture"] in cfg.architectures
               and r["task"] in cfg.tasks]
    if not records:
        return [], []
    table_dir = root / "tables"
    table_dir.mkdir(parents=True, exist_ok=True)
    window = cfg.train.val_window
    fold_std, stand_ins = with_published_stand_in(fold_std, records)
    task_names = sorted({r["task"] for r in records})
    # the same budget for every cell of a task, chosen per task (GridConfig.budget_for)
    tables = {task: budget_table([r for r in records if r["task"] == task], fold_std, window) for task in task_names}
    table = pd.concat([t.assign(task=task) for task, t in tables.items()], ignore_index=True)
    table = table[["task", *[c for c in table.columns if c != "task"]]]
    table.to_csv(table_dir / "pilot_budget.csv", index=False)
    files = [table_dir / "pilot_budget.csv"]
    lines = ["## Budget pilot", "",
             f"{len(records)} pilot runs ({cfg.pilot.variant}, the training rows of fold {cfg.pilot.fold}, seed "
             f"{cfg.pilot.seed}, {cfg.pilot.epochs} epochs without early stopping, a "
             f"{cfg.pilot.holdout_fraction:.0%} hold-out of those rows scoring the curves; no test row is read). "
             f"Every (epoch cap, patience) rule below is replayed exactly on the recorded curves with the grid's "
             f"validation window ({window}), task by task (every cell of a task gets the same budget). Targets: at "
             f"least {MIN_STOPPED_EARLY:.0%} of a task's runs stop early, and neither doubling the cap nor doubling "
             f"cap and patience together moves any hold-out score by more than {MAX_DOUBLING_CHANGE} of that "
             "architecture's fold std (from this grid's cells where it has them). Runs whose curve is too short to "
             "judge a rule count against it." + _stand_in_note(stand_ins), ""]
    rules = {}
    for task in task_names:
        lines += _task_budget_lines(task, tables[task], cfg, [r for r in records if r["task"] == task])
        best = choose(tables[task])
        rules[task] = ((int(best["cap"]), int(best["patience"])) if best is not None
                       else (int(tables[task]["cap"].max()), int(tables[task]["patience"].max())))
    runs = pd.concat([per_run_table([r for r in records if r["task"] == task], *rules[task], window)
                      for task in task_names], ignore_index=True)
    runs.to_csv(table_dir / "pilot_runs.csv", index=False)
    files.append(table_dir / "pilot_runs.csv")
    if figures:
        made = curves_figure(records, {task: cap for task, (cap, _) in rules.items()}, root / "figures")
        files += made
        lines += [f"![pilot curves, {p.stem}]({p.relative_to(root).as_posix()})" for p in made if p.suffix == ".png"]
        lines.append("")
    return lines, files


def _task_budget_lines(task: str, table: pd.DataFrame, cfg, records: list[dict]) -> list[str]:
    """One task's rule table and its choice, beside the budget the grid's cells of that task train with."""
    archs = ", ".join(sorted(r["architecture"] for r in records))
    lines = [f"### {task}", "", f"{len(records)} runs: {archs}.", "",
             "| cap | patience | stopped early | max change / fold std, cap doubled | max change / fold std, cap and "
             "patience doubled | mean epochs | undecided | meets |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.cap} | {r.patience} | {r.stopped_early_fraction:.2f} | "
                     f"{r.max_doubling_change_over_std:.3f} | {r.max_budget_doubling_change_over_std:.3f} | "
                     f"{r.mean_epochs:.0f} | {r.undecided} | {'yes' if r.meets_targets else 'no'} |")
    best = choose(table)
    train = cfg.for_task(task).train
    grid = f"this grid's cells of {task} train with epoch cap {train.epochs}, patience {train.patience}"
    if best is None:
        lines += ["", f"No rule meets the three targets on these curves (longer pilot runs are needed); {grid}.", ""]
    else:
        cap, patience = int(best["cap"]), int(best["patience"])
        same = (cap, patience) == (train.epochs, train.patience)
        lines += ["", f"Cheapest rule meeting the three targets (the largest cap among equally cheap ones): epoch cap "
                  f"**{cap}**, patience **{patience}**; {grid}"
                  + (" (the choice)." if same else " (**not** the choice: set `budget_for` in the profile)."), ""]
    return lines


def _stand_in_note(stand_ins: dict[str, float]) -> str:
    if not stand_ins:
        return ""
    named = ", ".join(f"{task} {std:.4g}" for task, std in sorted(stand_ins.items()))
    return (f" Where this grid has no cells yet, the fold std is a stand-in: the smallest fold std among the "
            f"task's published Matbench entries ({named}; published, not run here), the strictest plausible "
            "scale; the report recomputes the table with the grid's own fold std once its cells exist.")
