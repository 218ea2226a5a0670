"""What the parent run of (task, architecture, variant) reports: fold means ± std, seeds averaged first."""
import pytest

from bench.unit import fold_summary


def test_fold_summary_averages_seeds_within_a_fold_first():
    runs = [(0, {"test_mae": 1.0}), (0, {"test_mae": 3.0}), (1, {"test_mae": 4.0}), (2, {"test_mae": 6.0, "x": 1})]
    out = fold_summary(runs, names=("test_mae", "test_rmse"))
    # per fold: 2, 4, 6 -> mean 4, sample std 2; no test_rmse anywhere: not reported
    assert out == {"test_mae_mean": 4.0, "test_mae_std": pytest.approx(2.0), "n_folds": 3.0}
    assert fold_summary([(3, {"test_mae": 5.0})], names=("test_mae",)) == \
        {"test_mae_mean": 5.0, "test_mae_std": 0.0, "n_folds": 1.0}
