"""Run records: every finished cell as one committed line under ``results/<experiment>/runs/``.

MLflow is the live tracker and UI; the records are what the repository keeps. Reports read
only records (so a fresh clone regenerates them byte for byte), ``bench status`` counts them
as finished cells, and ``bench ablation`` imports the ones its MLflow store lacks before it
runs (:mod:`bench.records.mlflow_sync`), so a grid continues on another machine without
rerunning a recorded cell. Format and concurrency: :mod:`bench.records.store`; content:
:mod:`bench.records.build`.
"""
from bench.records.build import new_record
from bench.records.recordset import RecordSet
from bench.records.store import RUNS_DIR, RecordStore, results_root

__all__ = ["RUNS_DIR", "RecordSet", "RecordStore", "new_record", "results_root"]
