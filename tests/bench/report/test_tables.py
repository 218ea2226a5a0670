"""Leaderboards and paired tables from a small known frame: corrected columns, labelled references."""
import math

import pandas as pd
import pytest

from bench.report.references import PUBLISHED, references
from bench.report.stats import paired_comparisons
from bench.report.tables import leaderboard, paired_markdown, task_tables, to_markdown

SIZES = {k: (400, 100) for k in range(5)}


def _frame(task="matbench_phonons"):
    # architecture a: lattice is 2, 3, 2.5 above distance on folds 0-2 (one seed); b: no effect pattern
    rows = []
    for f, (d, lat) in enumerate([(40.0, 42.0), (41.0, 44.0), (39.0, 41.5)]):
        rows += [("a", "distance", f, d), ("a", "lattice", f, lat)]
    for f, (d, lat) in enumerate([(50.0, 50.5), (52.0, 51.0), (51.0, 51.8)]):
        rows += [("b", "distance", f, d), ("b", "lattice", f, lat)]
    return pd.DataFrame([{"task": task, "architecture": a, "variant": v, "fold": f, "seed": 0, "test_mae": m,
                          "test_rmse": m + 1, "test_mae_over_mad": m / 100} for a, v, f, m in rows])


def test_leaderboard_carries_the_corrected_effect_and_adjusted_p():
    frame = _frame()
    comp = paired_comparisons(frame, "matbench_phonons", fold_sizes=SIZES)
    table = leaderboard(frame, "matbench_phonons", comparisons=comp).set_index(["architecture", "variant"])
    lat = table.loc[("a", "lattice")]
    assert lat.delta_vs_distance == pytest.approx(2.5) and lat.n_folds == 3
    assert lat.delta_pct == pytest.approx(100 * 2.5 / 40.0)
    row = comp.set_index(["architecture", "variant"]).loc[("a", "lattice")]
    assert (lat.ci_low, lat.ci_high, lat.p_adjusted) == pytest.approx((row.ci_low, row.ci_high, row.p_adjusted))
    assert math.isnan(table.loc[("a", "distance")].delta_vs_distance)
    md = to_markdown(leaderboard(frame, "matbench_phonons", comparisons=comp), "matbench_phonons", "cm^-1")
    assert "95% CI of Δ (corrected)" in md and "p adj. (Holm)" in md and "Nadeau–Bengio" in md


def test_phonons_reference_rows_include_the_best_published_entries_with_fold_std():
    refs = {r.label: r for r in references("matbench_phonons")}
    # read from materialsproject/matbench docs_src/Leaderboards Per-Task/matbench_v0.1_matbench_phonons.md
    assert (refs["MEGNet (kgcnn)"].mean, refs["MEGNet (kgcnn)"].std) == (28.7606, 2.5767)
    assert (refs["coNGN"].mean, refs["coNGN"].std) == (28.8874, 3.2840)
    frame = _frame()
    md = to_markdown(leaderboard(frame, "matbench_phonons"), "matbench_phonons", "cm^-1")
    assert "| ref | MEGNet (kgcnn) (published) | – | 28.76 | 2.58 |" in md
    assert "| ref | coNGN (published) | – | 28.89 | 3.28 |" in md
    ref_lines = [line for line in md.splitlines() if line.startswith("| ref |")]
    assert len(ref_lines) == len(refs) and all(line.count("|") == md.splitlines()[0].count("|") for line in ref_lines)


def test_every_reference_names_its_source_file_and_lists_best_first():
    for task, refs in PUBLISHED.items():
        assert [r.mean for r in refs] == sorted(r.mean for r in refs), task
        assert {"Dummy", "CGCNN", "ALIGNN", "coGN", "MODNet"} <= {r.label for r in refs}, task
        for r in refs:
            assert f"docs_src/Leaderboards Per-Task/matbench_v0.1_{task}.md" in r.source
            assert "docs_src/Full Benchmark Data/matbench_v0.1_" in r.source and r.std >= 0


def test_small_unit_tasks_keep_four_decimals():
    frame = _frame("matbench_log_gvrh").assign(test_mae=lambda d: d.test_mae / 500)
    md = to_markdown(leaderboard(frame, "matbench_log_gvrh"), "matbench_log_gvrh", "log10(GPa)")
    best = references("matbench_log_gvrh")[0]
    assert f"| ref | {best.label} (published) | – | {best.mean:.4f} | {best.std:.4f} |" in md


def test_paired_markdown_states_the_rules_and_wilcoxon_is_marked_uncorrected():
    frame = _frame()
    text = paired_markdown(paired_comparisons(frame, "matbench_phonons", fold_sizes=SIZES), "cm^-1")
    head = text.splitlines()[0]
    for column in ("Δ (cm^-1)", "95% CI (corrected)", "p raw (paired t)", "p corrected (N–B)", "p adj. (Holm)",
                   "MDE at 80% power (cm^-1)"):
        assert column in head
    assert "n_test/n_train = 0.25" in text and "the fold is the unit" in text and "Median MDE" in text
    wil = paired_markdown(paired_comparisons(frame, "matbench_phonons", method="wilcoxon", fold_sizes=SIZES), "cm^-1")
    assert "p Wilcoxon (uncorrected)" in wil.splitlines()[0] and "NOT corrected" in wil


def test_task_tables_write_the_paired_table_in_three_formats(tmp_path):
    table, comp, files = task_tables(_frame(), "matbench_phonons", "cm^-1", tmp_path, fold_sizes=SIZES)
    names = {p.name for p in files}
    assert {"matbench_phonons_paired.md", "matbench_phonons_paired.csv", "matbench_phonons_paired.tex"} <= names
    csv = pd.read_csv(tmp_path / "matbench_phonons_paired.csv")
    for col in ("mean_diff", "ci_low", "ci_high", "p_raw", "p_corrected", "p_adjusted", "mde", "test_train_ratio"):
        assert csv[col].notna().all(), col
    assert r"\toprule" in (tmp_path / "matbench_phonons_paired.tex").read_text()


def test_reproduction_table_sets_ours_beside_the_published_entry():
    import pandas as pd

    from bench.report.references import PUBLISHED
    from bench.report.tables import REPRODUCTION_COLUMNS, reproduction_table

    cgcnn = next(r for r in PUBLISHED["matbench_jdft2d"] if r.label == "CGCNN")
    frame = pd.DataFrame({"task": "matbench_jdft2d", "architecture": ["cgcnn@paper"] * 2 + ["cgcnn"],
                          "variant": "multi_edge", "fold": [0, 1, 0], "seed": 0,
                          "test_mae": [cgcnn.mean - 1.0, cgcnn.mean + 3.0, 10.0]})
    table = reproduction_table(frame, {"cgcnn@paper": "CGCNN"})
    assert list(table.columns) == REPRODUCTION_COLUMNS and len(table) == 1
    row = table.iloc[0]
    assert (row.architecture, row.preset, row.n_runs) == ("cgcnn", "paper", 2)
    assert row.mae_mean == pytest.approx(cgcnn.mean + 1.0) and row.published_std == cgcnn.std
    assert bool(row.within) is (1.0 <= cgcnn.std)
