"""The cells a report reads: run records of a grid (and, for the live store, MLflow runs).

Reports read run records only (:mod:`bench.records`): the committed files give the same
tables, figures and ``REPORT.md`` on every clone, with or without an MLflow store.
:func:`grid_records` selects the records of a grid by cell key (so stale configurations
and changed code never mix in) and says which cells are missing. :func:`read_predictions`
and :func:`epoch_history` take a :class:`bench.records.RecordSet` (or an ``MlflowClient``
for a run in a live store) and the frame's ``run_id`` (a record's cell key).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.cells import Cell, cell_identity, grid_cells, load_task
from bench.records import RecordSet, RecordStore

TAG_PREFIX = "bench."  # as bench.tracking writes them (not imported: reports never import the runner)
#: Tags that say what a run is ("cell", "trial", "parent"); the tuner writes ``bench.kind``.
KIND_TAGS = (f"{TAG_PREFIX}kind", f"{TAG_PREFIX}run_kind")
CELL_KIND = "cell"
#: Tags that are integers although MLflow stores every tag as a string.
_INT_TAGS = ("fold", "seed")
# one progress bar per downloaded predictions.csv would drown the report's output
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass
class GridRecords:
    """The records of one grid: ``records`` (those whose key is a cell of the grid), ``frame``
    (one row per record, see :meth:`RecordSet.frame`), ``expected`` (every cell of the grid by
    key) and ``missing`` (cells of the grid without a record, in grid order)."""

    records: RecordSet
    frame: pd.DataFrame
    expected: dict[str, Cell]
    missing: list[Cell] = field(default_factory=list)
    root: Path | None = None

    @property
    def complete(self) -> bool:
        return not self.missing


def grid_records(cfg, results_dir: Path | str | None = None) -> GridRecords:
    """Records of the grid ``cfg`` under ``results_dir/<experiment>/runs/`` (default ``results/``)."""
    store = RecordStore.for_experiment(cfg.experiment, results_dir)
    expected: dict[str, Cell] = {}
    for task in cfg.tasks:
        sha = load_task(task, cfg).sha256
        expected.update({cell_identity(c, cfg, sha)[2]: c for c in grid_cells(cfg, task)})
    records = store.load().subset(expected)
    missing = [c for k, c in expected.items() if k not in records]
    return GridRecords(records, records.frame(), expected, missing, store.root)


#: Settings that must be equal for another grid's cells to serve as this grid's baselines.
COMPARABLE_FIELDS = ("train", "budget_for", "graph", "arch_preset", "hparams", "allow_unverified_data")


def baseline_config(cfg):
    """The grid named by ``cfg.compare_with``, checked to share every budget and graph setting.

    Raises ``ValueError`` naming the first setting that differs: cells trained on other budgets
    are no baselines (the comparison would mix the ingredient with the budget).
    """
    from bench.config import load_config

    other = load_config(cfg.compare_with)
    other.validate_names()
    for name in COMPARABLE_FIELDS:
        mine, theirs = getattr(cfg, name), getattr(other, name)
        if mine != theirs:
            raise ValueError(f"compare_with {cfg.compare_with!r}: `{name}` differs ({theirs!r} there, {mine!r} "
                             "here); baselines must share the budget and graph settings")
    return other


def with_baselines(grid: GridRecords, cfg, results_dir: Path | str | None = None) -> tuple[GridRecords, int]:
    """``grid`` plus the recorded cells of ``cfg.compare_with`` on this grid's tasks (the
    expected and missing cells stay this grid's), and how many cells were added."""
    if not cfg.compare_with:
        return grid, 0
    other = grid_records(baseline_config(cfg).model_copy(update={"tasks": list(cfg.tasks)}), results_dir)
    added = [r for k, r in other.records.records.items() if k not in grid.records]
    records = RecordSet(list(grid.records.records.values()) + added, grid.records.root)
    return GridRecords(records, records.frame(), grid.expected, grid.missing, grid.root), len(added)


def grid_frame(cfg, results_dir: Path | str | None = None) -> pd.DataFrame:
    """One row per recorded cell of the grid ``cfg`` (see :func:`grid_records`)."""
    return grid_records(cfg, results_dir).frame


def read_predictions(source, run_id: str) -> pd.DataFrame:
    """Test predictions of a cell: columns id, y_true, y_pred (test fold order).

    ``source``: a :class:`RecordSet` (``run_id`` = cell key), or an ``MlflowClient`` whose
    run ``run_id`` has a ``predictions.csv`` artifact.
    """
    if isinstance(source, RecordSet):
        return source.predictions(run_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = source.download_artifacts(run_id, "predictions.csv", tmp)
        return pd.read_csv(Path(path), dtype={"id": str}, float_precision="round_trip")


def epoch_history(source, run_id: str, keys: tuple[str, ...] = ("train_loss", "val_score")) -> pd.DataFrame:
    """Per-epoch metrics of a cell as rows (epoch, metric, value); empty for cells without epochs."""
    if isinstance(source, RecordSet):
        return source.history(run_id, keys)
    rows = [{"epoch": m.step, "metric": key, "value": m.value}
            for key in keys for m in source.get_metric_history(run_id, key)]
    return pd.DataFrame(rows, columns=["epoch", "metric", "value"])


def is_cell_run(run) -> bool:
    """True for a FINAL CELL run of MLflow: it has ``bench.cell_key`` and every kind tag it has
    (``bench.kind``, ``bench.run_kind``) says "cell".

    Optuna trials and the parent runs of tuning carry another kind and are never cells;
    runs from before kinds existed have no kind tag and count by their cell key.
    """
    tags = run.data.tags
    if f"{TAG_PREFIX}cell_key" not in tags:
        return False
    return all(tags.get(tag, CELL_KIND) == CELL_KIND for tag in KIND_TAGS)


def runs_frame(runs: list) -> pd.DataFrame:
    """One row per MLflow cell run: its ``bench.*`` tags (prefix removed), final metrics, ``run_id``.

    Runs that are not cells (:func:`is_cell_run`) are dropped; of several finished runs
    with the same cell key only the latest is kept (a cell is never counted twice).
    """
    rows = []
    for run in runs:
        if not is_cell_run(run):
            continue
        row = {k[len(TAG_PREFIX):]: v for k, v in run.data.tags.items() if k.startswith(TAG_PREFIX)}
        row.update(run.data.metrics)
        row["run_id"] = run.info.run_id
        row["end_time"] = run.info.end_time or 0
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for col in _INT_TAGS:
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    frame = frame.sort_values("end_time", kind="stable").drop_duplicates("cell_key", keep="last")
    order = [c for c in ("task", "architecture", "variant", "fold", "seed") if c in frame]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)
