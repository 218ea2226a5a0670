"""Reports from MLflow runs: leaderboard tables, paired statistics, plots, REPORT.md, Matbench export.

Everything here reads MLflow runs (never ad-hoc files); :func:`bench.report.runs.is_cell_run`
is the one rule that says which runs are final cells.
"""
