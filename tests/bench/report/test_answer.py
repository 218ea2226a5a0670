"""The answer table: verdicts follow the corrected statistics, columns follow the grid's variant order."""
import math

import pandas as pd
import pytest

from bench.report.answer import (ANSWER_COLUMNS, CANNOT_TELL, NOT_SIGNIFICANT, answer_markdown, answer_rows,
                                 answer_sections, architecture_answer, verdict, write_answer)
from bench.report.stats import paired_comparisons
from bench.report.tables import leaderboard

SIZES = {k: (400, 100) for k in range(5)}
TASK = "matbench_jdft2d"


def _frame():
    # a: lattice worse by 5 on every fold (resolved); multi_edge -0.1 noise. b: lattice differences of
    # both signs around 0, far below what 5 folds resolve.
    rows = []
    for f in range(5):
        base_a, base_b = 40.0 + f, 50.0 + 2 * f
        rows += [("a", "distance", f, base_a), ("a", "lattice", f, base_a + 5.0 + 0.05 * (-1) ** f),
                 ("a", "multi_edge", f, base_a + [0.3, -0.4, 0.2, -0.5, -0.1][f]),
                 ("b", "distance", f, base_b), ("b", "lattice", f, base_b + [0.6, -0.7, 0.4, -0.2, 0.0][f])]
    return pd.DataFrame([{"task": TASK, "architecture": a, "variant": v, "fold": f, "seed": 0, "test_mae": m}
                         for a, v, f, m in rows])


def _answer():
    frame = _frame()
    comp = paired_comparisons(frame, TASK, fold_sizes=SIZES)
    return answer_rows(leaderboard(frame, TASK, comparisons=comp), comp, TASK), comp


def test_verdicts_follow_adjusted_p_and_mde():
    rows, comp = _answer()
    assert list(rows.columns) == ANSWER_COLUMNS and len(rows) == len(comp) == 3
    got = rows.set_index(["architecture", "variant"])
    lat = got.loc[("a", "lattice")]
    assert lat.verdict == "distance better" and lat.delta == pytest.approx(5.0, abs=0.02)
    assert lat.p_adjusted < 0.05 and lat.ci_low > 0
    assert (lat.baseline_mean, lat.variant_mean) == pytest.approx((42.0, 47.0), abs=0.02)
    for key in [("a", "multi_edge"), ("b", "lattice")]:
        row = got.loc[key]
        assert row.p_adjusted >= 0.05 and abs(row.delta) < row.mde and row.verdict == CANNOT_TELL, key


def test_verdict_branches():
    assert verdict(-3.0, 1.0, True, "multi_edge") == "multi_edge better"
    assert verdict(0.5, 2.0, False, "") == CANNOT_TELL
    assert verdict(2.5, 2.0, False, "") == NOT_SIGNIFICANT  # reaches the MDE, fails Holm
    assert verdict(math.nan, math.nan, False, "") == "–"


def test_architecture_answer_names_winner_and_loser():
    rows, _ = _answer()
    assert architecture_answer(rows[rows["architecture"] == "a"]) == "`distance` beats `lattice` by 5.01"
    assert architecture_answer(rows[rows["architecture"] == "b"]).startswith("cannot tell")
    mixed = rows[rows["architecture"] == "b"].assign(verdict=NOT_SIGNIFICANT)
    assert architecture_answer(mixed) == "no difference survives the adjustment"


def test_markdown_follows_grid_order_and_files_are_written(tmp_path):
    rows, _ = _answer()
    md = answer_markdown(rows, TASK, "meV/atom", order=["distance", "multi_edge", "lattice"])
    head = md.splitlines()[0]
    assert head.index("`multi_edge`") < head.index("`lattice`") < head.index("Δ `multi_edge`")
    line_b = next(x for x in md.splitlines() if x.startswith("| b |"))
    assert line_b.count("|") == head.count("|") and "| – |" in line_b  # b has no multi_edge cell
    assert "p_adj" in md and "MDE" in md and "3 comparisons" in md
    per_task = {TASK: rows, "matbench_phonons": rows.iloc[0:0]}
    files = write_answer(per_task, answer_sections(per_task, {TASK: "meV/atom"}), tmp_path)
    assert [f.name for f in files] == ["answer.csv", "answer.md"]
    back = pd.read_csv(files[0])
    assert len(back) == 3 and set(back["verdict"]) == {"distance better", CANNOT_TELL}
    assert "## matbench_jdft2d" in files[1].read_text() and "matbench_phonons" not in files[1].read_text()
    assert write_answer({TASK: rows.iloc[0:0]}, answer_sections({TASK: rows.iloc[0:0]}, {}), tmp_path / "none") == []


def test_one_precision_per_task():
    from bench.report.answer import decimals

    assert [decimals(v) for v in ([42.0, 55.1], [1.2, 3.0], [0.089, 1.3], [1e-6], [])] == [1, 2, 4, 4, 1]
