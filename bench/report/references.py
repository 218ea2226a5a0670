"""Published Matbench v0.1 leaderboard scores, shown only as separately labelled reference rows.

Every value was checked against the public matbench repository
(github.com/materialsproject/matbench, snapshot commit 936176db18ca, 2024-01-20):
the per-task leaderboard pages ``docs_src/Leaderboards Per-Task/matbench_v0.1_<task>.md``
(mean and std of the fold MAEs; Matbench's std is numpy's population std, ddof=0).
Where marked "recomputed", the mean and std were also recomputed here from that
submission's ``benchmarks/matbench_v0.1_<name>/results.json.gz`` (fold scores) and agree
to the digits shown. None of these numbers were run by this suite.
"""
from __future__ import annotations

from dataclasses import dataclass

REFERENCE_SOURCE = "Matbench v0.1 leaderboard (published, not run here)"
_PAGE = "materialsproject/matbench@936176d docs_src/Leaderboards Per-Task/matbench_v0.1_{task}.md"


@dataclass(frozen=True)
class Reference:
    """One published leaderboard entry: ``mean`` and ``std`` over Matbench's five folds."""

    label: str
    algorithm: str  # the name Matbench's leaderboard uses
    mean: float
    std: float
    source: str


def _ref(task: str, label: str, algorithm: str, mean: float, std: float, note: str = "") -> Reference:
    return Reference(label, algorithm, mean, std, _PAGE.format(task=task) + (f"; {note}" if note else ""))


_RECOMPUTED = "recomputed from benchmarks/matbench_v0.1_{}/results.json.gz"

#: task -> reference rows (MAE in the task's unit), best first as on the leaderboard.
PUBLISHED: dict[str, list[Reference]] = {
    # meV/atom
    "matbench_jdft2d": [
        _ref("matbench_jdft2d", "MODNet", "MODNet (v0.1.12)", 33.1918, 7.3428),
        _ref("matbench_jdft2d", "coGN", "coGN", 37.1652, 13.6825),
        _ref("matbench_jdft2d", "ALIGNN", "ALIGNN", 43.4244, 8.9491, _RECOMPUTED.format("alignn")),
        _ref("matbench_jdft2d", "CGCNN", "CGCNN v2019", 49.2440, 11.5865, _RECOMPUTED.format("cgcnnv2019")),
        _ref("matbench_jdft2d", "Dummy", "Dummy", 67.2851, 10.1832, _RECOMPUTED.format("dummy")),
    ],
    # cm^-1
    "matbench_phonons": [
        _ref("matbench_phonons", "ALIGNN", "ALIGNN", 29.5385, 2.1148, _RECOMPUTED.format("alignn")),
        _ref("matbench_phonons", "coGN", "coGN", 29.7117, 1.9968),
        _ref("matbench_phonons", "MODNet", "MODNet (v0.1.12)", 34.2751, 2.0781),
        _ref("matbench_phonons", "CGCNN", "CGCNN v2019", 57.7635, 12.3109, _RECOMPUTED.format("cgcnnv2019")),
        _ref("matbench_phonons", "Dummy", "Dummy", 323.9822, 17.7269, _RECOMPUTED.format("dummy")),
    ],
}


def references(task: str) -> list[Reference]:
    """The published reference rows of ``task`` (empty for tasks without any)."""
    return list(PUBLISHED.get(task, []))
