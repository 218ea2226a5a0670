"""Known answers for the paired statistics (worked by hand below) and the one rule that says which runs are cells."""
import math

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy import integrate, stats

from bench.report.runs import is_cell_run, runs_frame
from bench.report.stats import (
    ADJUSTMENT,
    adjust,
    benjamini_hochberg,
    holm,
    min_detectable_effect,
    paired_comparisons,
    paired_test,
    resolve_fold_sizes,
)

# Student-t quantile t(0.975, 4) from a printed t table (4 degrees of freedom, two-sided 5 %).
T975_4 = 2.776445


def test_corrected_t_on_five_folds_by_hand():
    # Five fold differences d = 1, 2, 3, 4, 5 from 5-fold CV with n_train = 80, n_test = 20 per fold.
    #   mean d = 15 / 5 = 3
    #   sample variance = ((−2)² + (−1)² + 0 + 1² + 2²) / (5 − 1) = 10 / 4 = 2.5, sd = 1.581139
    # Plain paired t:  se = sd / √5 = √(2.5 / 5) = √0.5 = 0.707107,  t = 3 / 0.707107 = 3√2 = 4.242641
    # Nadeau–Bengio:   var = 2.5 · (1/5 + 20/80) = 2.5 · 0.45 = 1.125,  se = 1.060660,  t = 3 / 1.060660 = 2√2
    # p from the t distribution with 4 dof, which has a closed form: with sinθ = t/√(t²+4) and
    # cos²θ = 4/(t²+4), two-sided p = 1 − sinθ·(1 + cos²θ/2).
    #   raw:       t² = 18: sinθ = √(18/22) = 0.904534, cos²θ = 4/22:  p = 1 − 0.904534·(12/11) = 0.013236
    #   corrected: t² = 8:  sinθ = √(8/12) = 0.816497,  cos²θ = 4/12:  p = 1 − 0.816497·(7/6)  = 0.047421
    # 95 % interval: 3 ± t(0.975, 4) · 1.060660 = 3 ± 2.776445 · 1.060660 = 3 ± 2.944865 → [0.055135, 5.944865]
    out = paired_test(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), test_train_ratio=20 / 80)
    assert out["n_folds"] == 5 and out["mean_diff"] == pytest.approx(3.0)
    assert out["sd_diff"] == pytest.approx(math.sqrt(2.5))
    assert out["t_raw"] == pytest.approx(3 * math.sqrt(2))
    assert out["t_corrected"] == pytest.approx(2 * math.sqrt(2))
    assert out["p_raw"] == pytest.approx(1 - math.sqrt(18 / 22) * 12 / 11, rel=1e-9)
    assert out["p_raw"] == pytest.approx(0.013236, abs=5e-7)
    assert out["p_corrected"] == pytest.approx(1 - math.sqrt(8 / 12) * 7 / 6, rel=1e-9)
    assert out["p_corrected"] == pytest.approx(0.047421, abs=5e-7)
    assert out["ci_low"] == pytest.approx(3 - T975_4 * math.sqrt(1.125), abs=1e-6)  # table t has 7 digits
    assert out["ci_high"] == pytest.approx(5.944865, abs=5e-6)
    assert out["method"] == "Nadeau–Bengio corrected t" and math.isnan(out["p_wilcoxon"])


def test_min_detectable_effect_is_the_effect_with_80_percent_power():
    # The corrected test of the hand example above has se = √1.125 and 4 dof. Its MDE δ solves
    # power(δ/se) = 0.8, where for T = (Z + λ)/√(V/ν), Z ~ N(0,1), V ~ χ²(ν) and c = t(0.975, ν):
    #   power(λ) = ∫ [Φ(λ − c√(v/ν)) + Φ(−λ − c√(v/ν))] f_χ²ν(v) dv.
    # Checked here by that integral, independently of scipy's noncentral t.
    se, dof = math.sqrt(1.125), 4
    mde = min_detectable_effect(se, dof)
    lam, c = mde / se, stats.t.ppf(0.975, dof)

    def integrand(v):
        s = c * math.sqrt(v / dof)
        return (stats.norm.cdf(lam - s) + stats.norm.cdf(-lam - s)) * stats.chi2.pdf(v, dof)

    assert integrate.quad(integrand, 0, np.inf)[0] == pytest.approx(0.80, abs=1e-6)
    # a t-test needs more than the normal approximation's (z(0.975) + z(0.80))·se = (1.959964 + 0.841621)·se
    assert mde > 2.801585 * se
    # ... and tends to it as the degrees of freedom grow
    assert min_detectable_effect(1.0, 100_000) == pytest.approx(2.801585, abs=1e-4)
    assert paired_test(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 0.25)["mde"] == pytest.approx(mde)
    assert math.isnan(min_detectable_effect(0.0, 4)) and math.isnan(min_detectable_effect(1.0, 0))


def test_holm_and_benjamini_hochberg_by_hand():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]  # the NaN (a comparison without a test) is not in the family: m = 4
    # Holm, ascending: 0.005·4 = 0.02; 0.01·3 = 0.03; 0.03·2 = 0.06; 0.04·1 = 0.04 → max(0.06, 0.04) = 0.06
    assert holm(p)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH, ascending p(j)·m/j: 0.005·4/1 = 0.02; 0.01·4/2 = 0.02; 0.03·4/3 = 0.04; 0.04·4/4 = 0.04 (then min from the top)
    assert benjamini_hochberg(p)[:4] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert math.isnan(holm(p)[4]) and math.isnan(benjamini_hochberg(p)[4])
    assert holm([0.5, 0.6])[1] == 1.0  # capped at 1
    assert ADJUSTMENT == "holm" and adjust(p)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    with pytest.raises(ValueError, match="unknown adjustment"):
        adjust(p, "bonferroni-ish")


def test_wilcoxon_is_named_uncorrected_and_cannot_reach_005_with_five_folds():
    out = paired_test(np.array([-1.0, -2.0, -3.0, -4.0, -5.0]), 0.25, method="wilcoxon")
    assert out["method"] == "Wilcoxon signed-rank (uncorrected)"
    assert out["p_wilcoxon"] == pytest.approx(0.0625)  # 2 / 2**5: all signs equal, exact test
    assert out["p_corrected"] < 0.05  # the corrected t is still reported beside it


@pytest.mark.parametrize("diffs,note", [([], "0 fold"), ([0.7], "1 fold"), ([0.5, 0.5, 0.5], "all fold differences equal")])
def test_too_few_or_degenerate_folds_give_nan_and_say_why(diffs, note):
    out = paired_test(np.array(diffs), 0.25)
    assert math.isnan(out["p_corrected"]) and math.isnan(out["mde"]) and note in out["note"]
    if len(diffs) == 1:
        assert out["mean_diff"] == 0.7 and math.isnan(out["ci_low"])


def test_unknown_method_or_missing_ratio_is_an_error():
    with pytest.raises(ValueError, match="unknown test"):
        paired_test(np.array([1.0, 2.0]), 0.25, method="sign")
    with pytest.raises(ValueError, match="n_test/n_train"):
        paired_test(np.array([1.0, 2.0]), float("nan"))


def _cells(rows):
    return pd.DataFrame([{"task": "t", "architecture": a, "variant": v, "fold": f, "seed": s, "test_mae": m,
                          "test_roc_auc": m} for a, v, f, s, m in rows])


#: 5-fold design, 500 rows: every fold trains on 400 and tests on 100 (n_test/n_train = 1/4)
SIZES = {k: (400, 100) for k in range(5)}


def test_seeds_are_averaged_within_a_fold_and_the_fold_is_the_unit():
    # 3 of the 5 folds, 2 seeds each. Seed-wise differences (lattice − distance):
    #   fold 0: −1, −3 → −2;  fold 1: −4, −2 → −3;  fold 2: −1, −1 → −1
    # J = 3 fold differences −2, −3, −1: mean −2, sd 1. n_test/n_train = 100/400 = 1/4 (not 1/(J−1) = 1/2).
    # corrected var = 1 · (1/3 + 1/4) = 7/12, t = −2/√(7/12), t² = 48/7; with 2 dof, two-sided
    # p = 1 − |t|/√(t² + 2) = 1 − √(48/62) = 0.120117. Plain t on the 3 folds: t² = 12, p = 1 − √(12/14) = 0.074180.
    # 95 % interval: t(0.975, 2) = 0.95·√(2/(4·0.975·0.025)) = 4.302653, half = 4.302653·√(7/12) = 3.286206.
    base = [("a", "distance", f, s, 10.0 + f) for f in range(3) for s in range(2)]
    seed_diffs = {(0, 0): -1, (0, 1): -3, (1, 0): -4, (1, 1): -2, (2, 0): -1, (2, 1): -1}
    latt = [("a", "lattice", f, s, 10.0 + f + d) for (f, s), d in seed_diffs.items()]
    comp = paired_comparisons(_cells(base + latt), "t", fold_sizes=SIZES)
    row = comp.iloc[0]
    assert row.n_folds == 3 and row.seeds_per_fold == "2" and row.test_train_ratio == pytest.approx(0.25)
    assert row.mean_diff == pytest.approx(-2.0) and row.sd_diff == pytest.approx(1.0)
    assert row.p_corrected == pytest.approx(1 - math.sqrt(48 / 62), rel=1e-9)
    assert row.p_raw == pytest.approx(1 - math.sqrt(12 / 14), rel=1e-9)
    assert row.ci_high - row.mean_diff == pytest.approx(3.286206, abs=1e-5)
    assert row.p_adjusted == pytest.approx(row.p_corrected)  # a family of one
    assert not row.significant and row.better == ""


def test_pairs_are_matched_on_fold_and_seed_and_the_family_is_adjusted():
    frame = _cells([("a", "distance", 0, 0, 10.0), ("a", "distance", 1, 0, 12.0), ("a", "distance", 2, 0, 11.0),
                    ("a", "lattice", 0, 0, 8.0), ("a", "lattice", 1, 0, 9.0), ("a", "lattice", 2, 0, 8.5),
                    ("a", "lattice", 3, 0, 1.0),  # no distance partner: left out
                    ("a", "multi_edge", 0, 0, 10.1), ("a", "multi_edge", 1, 0, 11.8), ("a", "multi_edge", 2, 0, 11.2),
                    ("b", "lattice", 0, 0, 5.0)])  # no baseline at all: no row
    comp = paired_comparisons(frame, "t", fold_sizes=SIZES).set_index("variant")
    assert list(comp.index) == ["lattice", "multi_edge"] and (comp.adjustment == "Holm").all()
    lat = comp.loc["lattice"]
    assert lat.n_folds == 3 and lat.mean_diff == pytest.approx(np.mean([-2.0, -3.0, -2.5]))
    assert lat.baseline_mean == pytest.approx(11.0)
    assert list(comp.p_adjusted) == pytest.approx(list(holm(comp.p_corrected)))
    # −2.5 ± 0.5 over 3 folds: corrected t = −2.5/(0.5·√(7/12)) = −6.547, p = 1 − √(t²/(t²+2)) = 0.0225;
    # Holm multiplies the smallest of two p-values by 2: 0.045 < 0.05
    assert lat.p_adjusted == pytest.approx(2 * lat.p_corrected) and lat.significant and lat.better == "lattice"
    # for ROC-AUC higher is better: the same numbers mean distance wins
    clf = paired_comparisons(frame, "t", "classification", fold_sizes=SIZES).set_index("variant")
    assert clf.loc["lattice"].better == "distance"


def test_fold_sizes_come_from_the_cells_when_they_carry_them():
    frame = _cells([("a", v, f, 0, 1.0 + f * (v == "lattice")) for v in ("distance", "lattice") for f in range(3)])
    frame["n_train_fold"], frame["n_test"] = 300, 200
    assert resolve_fold_sizes(frame, "t") == {0: (300, 200), 1: (300, 200), 2: (300, 200)}
    assert paired_comparisons(frame, "t").iloc[0].test_train_ratio == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"no fold sizes for fold\(s\) \[2\]"):
        paired_comparisons(frame, "t", fold_sizes={0: (1, 1), 1: (1, 1)})


def test_only_final_cells_count_and_each_cell_once(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    exp = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    base = {"bench.task": "t", "bench.architecture": "a", "bench.variant": "distance", "bench.fold": "0",
            "bench.seed": "0"}

    def make(tags, mae):
        run = client.create_run(exp, tags={**base, **tags})
        client.log_metric(run.info.run_id, "test_mae", mae)
        client.set_terminated(run.info.run_id)
        return run.info.run_id

    make({"bench.cell_key": "k1"}, 1.0)  # a cell (no run_kind: older runs)
    newer = make({"bench.cell_key": "k1", "bench.run_kind": "cell"}, 2.0)  # same cell again: the later one counts
    make({"bench.cell_key": "k2", "bench.kind": "trial"}, 9.0)  # an Optuna trial
    make({"bench.cell_key": "k3", "bench.run_kind": "trial"}, 9.0)  # the same, by the other tag name
    make({"bench.kind": "parent", "bench.parent_key": "p"}, 9.0)  # a tuning parent run
    runs = client.search_runs([exp])
    assert sum(is_cell_run(r) for r in runs) == 2
    frame = runs_frame(runs)
    assert list(frame.run_id) == [newer] and frame.test_mae.tolist() == [2.0]
    assert frame.fold.tolist() == [0]  # tags come back as integers where they are
