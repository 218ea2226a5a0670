"""Leaderboard tables from MLflow runs (kept for :mod:`bench.grid`; the code lives in :mod:`bench.report`).

Published numbers appear only as separate rows labelled as references.
"""
from __future__ import annotations

from bench.report.references import PUBLISHED, REFERENCE_SOURCE
from bench.report.runs import is_cell_run, runs_frame
from bench.report.tables import leaderboard, to_markdown, write_tables

#: task -> [(label, published mean)], the labelled reference rows (see bench.report.references).
PUBLISHED_REFERENCES: dict[str, list[tuple[str, float]]] = {
    task: [(r.label, r.mean) for r in refs] for task, refs in PUBLISHED.items()
}

__all__ = ["PUBLISHED_REFERENCES", "REFERENCE_SOURCE", "is_cell_run", "leaderboard", "runs_frame",
           "to_markdown", "write_tables"]
