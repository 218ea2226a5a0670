import numpy as np
import pytest

from bench.metrics import dummy_predictions, evaluate


def test_regression_metrics_known_values():
    m = evaluate("regression", np.array([1.0, 2.0, 3.0, 6.0]), np.array([1.0, 3.0, 1.0, 6.0]))
    assert m["mae"] == pytest.approx(0.75)
    assert m["rmse"] == pytest.approx(np.sqrt(5 / 4))
    assert m["max_error"] == pytest.approx(2.0)
    # MAD of [1,2,3,6] around its mean 3 is (2+1+0+3)/4 = 1.5
    assert m["mae_over_mad"] == pytest.approx(0.5)


def test_dummy_mean_scores_mae_over_mad_of_one_on_its_own_data():
    y = np.array([0.0, 1.0, 5.0, 10.0])
    m = evaluate("regression", y, dummy_predictions("regression", y, len(y)))
    assert m["mae_over_mad"] == pytest.approx(1.0)


def test_classification_true_rocauc_differs_from_matbench_thresholded_score():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.45])  # ranks mostly right, thresholds all to 0
    m = evaluate("classification", y, p)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["matbench_balanced_accuracy"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.5)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        evaluate("regression", np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        evaluate("regression", np.zeros(2), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="probabilities"):
        evaluate("classification", np.array([0, 1]), np.array([0.2, 1.5]))
    with pytest.raises(ValueError, match="unknown problem type"):
        evaluate("ranking", np.zeros(2), np.zeros(2))


def test_dummy_classification_is_majority_class():
    assert dummy_predictions("classification", np.array([1, 1, 0]), 2).tolist() == [1.0, 1.0]


def test_within_pair_accuracy_known_answer():
    from bench.metrics import within_pair_accuracy

    y_true = np.array([1, 0, 0, 1, 1, 0, 1])
    score = np.array([0.9, 0.2, 0.6, 0.4, 0.5, 0.5, 0.3])
    groups = np.array([0, 0, 1, 1, 2, 2, 3])  # pair 0 right, pair 1 wrong, pair 2 tied, group 3 incomplete
    assert within_pair_accuracy(y_true, score, groups) == pytest.approx((1 + 0 + 0.5) / 3)
    assert np.isnan(within_pair_accuracy(y_true[-1:], score[-1:], groups[-1:]))
    # an O(3)-invariant model gives both enantiomers the same score: exactly chance
    assert within_pair_accuracy(y_true[:6], np.repeat([0.3, 0.7, 0.1], 2), groups[:6]) == 0.5
