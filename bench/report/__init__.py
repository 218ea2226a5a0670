"""Reports from run records: leaderboard tables, paired statistics, plots, REPORT.md, Matbench export.

Everything here reads the committed run records of a grid (:mod:`bench.records`), selected by
cell key in :func:`bench.report.runs.grid_records`, and never imports the runner, so a fresh
clone regenerates every report file byte for byte without an MLflow store.
"""
