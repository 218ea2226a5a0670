"""Which MLflow runs are final cells, and reading them (tags, metrics, artifacts, epochs)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from bench.tracking import TAG_PREFIX

#: Tags that say what a run is ("cell", "trial", "parent"); the tuner writes ``bench.kind``.
KIND_TAGS = (f"{TAG_PREFIX}kind", f"{TAG_PREFIX}run_kind")
CELL_KIND = "cell"
#: Tags that are integers although MLflow stores every tag as a string.
_INT_TAGS = ("fold", "seed")
# one progress bar per downloaded predictions.csv would drown the report's output
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def is_cell_run(run: Run) -> bool:
    """True for a FINAL CELL run: it has ``bench.cell_key`` and every kind tag it has
    (``bench.kind``, ``bench.run_kind``) says "cell".

    Optuna trials and the parent runs of tuning carry another kind and are never cells;
    runs from before kinds existed have no kind tag and count by their cell key.
    """
    tags = run.data.tags
    if f"{TAG_PREFIX}cell_key" not in tags:
        return False
    return all(tags.get(tag, CELL_KIND) == CELL_KIND for tag in KIND_TAGS)


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per cell run: its ``bench.*`` tags (prefix removed), final metrics, ``run_id``.

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


def grid_frame(cfg, tracking_uri: str | None = None) -> pd.DataFrame:
    """The finished cell runs of the grid ``cfg`` (matched by cell key, so stale configs never mix in)."""
    from bench.cell import cell_identity
    from bench.grid import grid_cells, load_task
    from bench.tracking import Tracker

    frame = runs_frame(Tracker(cfg.experiment, tracking_uri).search("attributes.status = 'FINISHED'"))
    if frame.empty:
        return frame
    keys: set[str] = set()
    for task in cfg.tasks:
        data = load_task(task, cfg)
        keys |= {cell_identity(c, cfg, data.sha256)[2] for c in grid_cells(cfg, task)}
    return frame[frame["cell_key"].isin(keys)].reset_index(drop=True)


def read_predictions(client: MlflowClient, run_id: str) -> pd.DataFrame:
    """The ``predictions.csv`` artifact of a cell run: columns id, y_true, y_pred (test fold order)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "predictions.csv", tmp)
        return pd.read_csv(Path(path), dtype={"id": str})


def epoch_history(client: MlflowClient, run_id: str, keys: tuple[str, ...] = ("train_loss", "val_score")) -> pd.DataFrame:
    """Per-epoch metrics of a run as rows (epoch, metric, value); empty for runs without epochs."""
    rows = [{"epoch": m.step, "metric": key, "value": m.value}
            for key in keys for m in client.get_metric_history(run_id, key)]
    return pd.DataFrame(rows, columns=["epoch", "metric", "value"])
