"""The ingredient table: each contrast differences the right pair of cells, fold by fold."""
import math

import numpy as np
import pandas as pd
import pytest

from bench.report.ingredients import ALL, CONTRASTS, has_controls, ingredient_markdown, ingredient_table
from bench.report.stats import holm, paired_test

SIZES = {k: (400, 100) for k in range(5)}
TASK = "matbench_jdft2d"


def _frame(rows):
    return pd.DataFrame([{"task": TASK, "architecture": a, "variant": v, "fold": f, "seed": s, "test_mae": m}
                         for a, v, f, s, m in rows])


def _cells(arch, variant, values, seeds=(0,)):
    return [(arch, variant, f, s, v + 0.1 * s) for f, v in enumerate(values) for s in seeds]


BASE = [40.0, 42.0, 41.0, 39.0, 43.0]


def _grid():
    rows = _cells("a", "distance", BASE)
    rows += _cells("a", "multi_edge", [b - 5.0 + 0.2 * k for k, b in enumerate(BASE)])
    rows += _cells("a", "multi_edge_noself", [b - 1.0 for b in BASE])
    rows += _cells("a", "voronoi", [b + (0.3 if k % 2 else -0.3) for k, b in enumerate(BASE)])
    rows += _cells("schnet", "multi_edge", BASE)
    rows += _cells("ewald_mp", "multi_edge", [b - 2.0 + 0.1 * k for k, b in enumerate(BASE)])
    return _frame(rows)


def test_each_contrast_differences_its_own_pair_fold_by_fold():
    table = ingredient_table(_grid(), TASK, fold_sizes=SIZES).set_index(["ingredient", "architecture"])
    self_images = table.loc[("self-image edges", "a")]  # multi_edge - multi_edge_noself
    expected = paired_test(np.array([-4.0 + 0.2 * k for k in range(5)]), 100 / 400)
    assert self_images.mean_diff == pytest.approx(expected["mean_diff"])
    assert (self_images.ci_low, self_images.ci_high) == pytest.approx((expected["ci_low"], expected["ci_high"]))
    assert self_images.without_mean == pytest.approx(np.mean(BASE) - 1.0)
    assert table.loc[("several images", "a")].mean_diff == pytest.approx(-1.0)
    ewald = table.loc[("long range (Ewald)", "ewald_mp")]  # ewald_mp - schnet on one graph
    assert ewald.mean_diff == pytest.approx(-1.8)
    assert (ewald["with"], ewald["without"]) == ("ewald_mp multi_edge", "schnet multi_edge")
    # contrasts with a side missing (no distance_lattice, no lattice cells) have no row
    assert "loops on distance" not in table.index.get_level_values(0)


def test_holm_runs_over_every_contrast_of_the_task():
    table = ingredient_table(_grid(), TASK, fold_sizes=SIZES)
    assert table["p_adjusted"].to_numpy() == pytest.approx(holm(table["p_corrected"].to_numpy()), nan_ok=True)
    assert (table["significant"] == (table["p_adjusted"] < 0.05)).all()


def test_effects_below_the_detectable_size_are_marked_not_read():
    table = ingredient_table(_grid(), TASK, fold_sizes=SIZES)
    voronoi = table.set_index("ingredient").loc["Voronoi faces"]
    assert abs(voronoi.mean_diff) < voronoi.mde and not voronoi.significant
    md = ingredient_markdown(table, "meV/atom")
    line = next(r for r in md.splitlines() if r.startswith("| a |"))
    assert "≺MDE" in line and "Effects that survive the adjustment" in md


def test_seeds_are_averaged_inside_a_fold():
    rows = _cells("a", "multi_edge", BASE, seeds=(0, 1, 2)) + _cells("a", "multi_edge_noself", BASE, seeds=(0, 1, 2))
    table = ingredient_table(_frame(rows), TASK, fold_sizes=SIZES)
    assert table.loc[0, "n_folds"] == 5  # 5 folds of 3 seeds: J = 5, not 15
    assert table.loc[0, "note"] == "all fold differences equal: no test" and math.isnan(table.loc[0, "p_corrected"])


def test_a_grid_of_the_seed_encodings_alone_has_no_ingredient_section():
    seeds_only = _frame(_cells("a", "distance", BASE) + _cells("a", "lattice", BASE))
    assert not has_controls(seeds_only) and has_controls(_grid())
    assert not has_controls(pd.DataFrame())
    assert ingredient_markdown(ingredient_table(pd.DataFrame(), TASK)).startswith("No contrast")


def test_every_contrast_changes_one_thing():
    names = [c.ingredient for c in CONTRASTS]
    assert len(names) == len(set(names))
    for c in CONTRASTS:  # a model add-on keeps the graph; a graph contrast keeps the model
        assert (c.with_architecture is None) == (c.with_variant != c.without_variant)


def test_the_mean_over_architectures_averages_fold_by_fold_on_shared_folds():
    rows = _cells("a", "multi_edge", BASE) + _cells("a", "multi_edge_noself", [b + 2.0 for b in BASE])
    rows += _cells("b", "multi_edge", BASE) + _cells("b", "multi_edge_noself", [b + 4.0 + k for k, b in enumerate(BASE)])
    rows += [("b", "multi_edge", 5, 0, 1.0), ("b", "multi_edge_noself", 5, 0, 9.0)]  # only b has fold 5: not in the mean
    table = ingredient_table(_frame(rows), TASK, fold_sizes={**SIZES, 5: (400, 100)}).set_index("architecture")
    mean = table.loc[ALL]
    # fold k: mean of (-2, -4 - k) = -3 - k/2 over folds 0-4
    expected = paired_test(np.array([-3.0 - k / 2 for k in range(5)]), 100 / 400)
    assert mean.n_folds == 5 and mean.mean_diff == pytest.approx(expected["mean_diff"])
    assert mean.ci_low == pytest.approx(expected["ci_low"])
    assert table.loc["b"].n_folds == 6 and len(table) == 3  # a, b and their mean: all in the Holm family
    md = ingredient_markdown(table.reset_index(), "meV/atom")
    assert md.splitlines()[-3].startswith(f"| **{ALL}** |")


def test_an_interval_clear_of_zero_that_fails_the_adjustment_is_flagged_not_claimed():
    row = pd.Series({"mean_diff": -3.0, "ci_low": -5.0, "ci_high": -1.0, "p_adjusted": 0.4, "significant": False,
                     "mde": 4.0, "note": ""})
    from bench.report.ingredients import _cell

    assert _cell(row).endswith("†") and "≺MDE" not in _cell(row)
    assert _cell(pd.Series({**row, "ci_high": 1.0})).endswith("≺MDE")
    assert _cell(pd.Series({**row, "p_adjusted": 0.01, "significant": True})).endswith("]*")
