"""Records in memory: the table the reports read, and each cell's predictions and epochs.

:meth:`RecordSet.frame` has the columns the reports always read from MLflow runs (the
``bench.*`` tags without prefix, the final metrics, the last value of each per-epoch
metric, ``run_id``), so tables and figures do not care where the cells came from. Its
``run_id`` is the cell key: a record has no MLflow run id that means anything on another
machine, and :func:`bench.report.runs.read_predictions` / ``epoch_history`` look records up
by it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Record fields copied into the frame as text, as MLflow stores tags.
TAG_FIELDS = ("task", "architecture", "variant", "cell_key", "config_hash", "dataset_sha256", "data_verification",
              "git_commit", "problem_type", "device", "kind", "preset")
HISTORY = ("train_loss", "val_score", "lr")


def frame_row(record: dict) -> dict:
    """One row of :meth:`RecordSet.frame` from one record."""
    row = {k: record[k] for k in TAG_FIELDS if record.get(k) is not None}
    row["fold"], row["seed"] = record["fold"], record["seed"]
    row["unverified_data"] = str(record.get("data_verification") == "UNVERIFIED")
    row.update({f"version.{k}": v for k, v in record.get("versions", {}).items()})
    tuning = record.get("tuning") or {}
    if tuning:
        row["optuna_study"], row["optuna_trial"] = tuning.get("study"), tuning.get("trial")
    history = record.get("history") or {}
    for name, values in history.items():
        if values:
            row[name] = values[-1]  # what MLflow shows as a run's metric: its latest value
    row.update(record.get("metrics", {}))
    row["threads"] = record.get("threads")
    row["stopped_early"] = record.get("stopped_early")
    row["finished_at"] = record.get("finished_at", "")
    row["run_id"] = record["cell_key"]
    row["mlflow_run_id"] = record.get("mlflow_run_id", "")
    return row


class RecordSet:
    """Records of one experiment, one per cell key (see :class:`bench.records.RecordStore`)."""

    def __init__(self, records: list[dict], root: Path | None = None) -> None:
        self.records = {r["cell_key"]: r for r in records}
        self.root = root

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def subset(self, keys) -> RecordSet:
        keys = set(keys)
        return RecordSet([r for k, r in self.records.items() if k in keys], self.root)

    def frame(self) -> pd.DataFrame:
        """One row per record, sorted by task, architecture, variant, fold, seed."""
        rows = [frame_row(r) for r in self.records.values()]
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        for col in ("fold", "seed"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
        order = ["task", "architecture", "variant", "fold", "seed", "cell_key"]
        return frame.sort_values(order, kind="stable").reset_index(drop=True)

    def _record(self, key: str) -> dict:
        if key not in self.records:
            raise KeyError(f"no run record with cell key {key!r}")
        return self.records[key]

    def predictions(self, key: str) -> pd.DataFrame:
        """Test predictions of a cell: columns id (str), y_true, y_pred, in the test fold's order."""
        p = self._record(key).get("predictions") or {"id": [], "y_true": [], "y_pred": []}
        return pd.DataFrame({"id": [str(i) for i in p["id"]], "y_true": pd.Series(p["y_true"], dtype=float),
                             "y_pred": pd.Series(p["y_pred"], dtype=float)})

    def history(self, key: str, keys: tuple[str, ...] = ("train_loss", "val_score")) -> pd.DataFrame:
        """Per-epoch metrics of a cell as rows (epoch, metric, value); empty without epochs (dummy)."""
        history = self._record(key).get("history") or {}
        rows = [{"epoch": epoch, "metric": name, "value": value}
                for name in keys for epoch, value in enumerate(history.get(name, []))]
        return pd.DataFrame(rows, columns=["epoch", "metric", "value"])
