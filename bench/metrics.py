"""The one evaluator of the suite (as OGB's ``Evaluator``): every score comes from here.

Regression: MAE, RMSE, max error and MAE/MAD, where MAD is the mean absolute
deviation of the evaluated targets around their mean (so MAE/MAD = 1 is the
"predict the mean" level and tasks become comparable).
Classification (inputs are probabilities of class 1): true ROC-AUC from the
probabilities, and separately ``matbench_balanced_accuracy``, what Matbench's
scorer reports under the name "rocauc" (it thresholds at 0.5 first).
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

REGRESSION = "regression"
CLASSIFICATION = "classification"

#: The headline metric per problem type, and whether larger is better.
PRIMARY_METRIC = {REGRESSION: ("mae", False), CLASSIFICATION: ("roc_auc", True)}


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("cannot evaluate an empty set")
    if not np.all(np.isfinite(y_pred)):
        raise ValueError(f"{int((~np.isfinite(y_pred)).sum())} predictions are NaN or infinite")
    return y_true, y_pred


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    y_true, y_pred = _check(y_true, y_pred)
    err = y_pred - y_true
    mad = float(np.mean(np.abs(y_true - y_true.mean())))
    mae = float(np.mean(np.abs(err)))
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "max_error": float(np.max(np.abs(err))),
        "mae_over_mad": mae / mad if mad > 0 else float("nan"),
    }


def classification_metrics(y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
    y_true, y_prob = _check(y_true, y_prob)
    labels = y_true.astype(int)
    if not np.array_equal(labels, y_true) or not set(np.unique(labels)) <= {0, 1}:
        raise ValueError("classification targets must be 0/1")
    if np.any((y_prob < 0) | (y_prob > 1)):
        raise ValueError("classification predictions must be probabilities in [0, 1]")
    both_classes = len(np.unique(labels)) == 2
    predicted = (y_prob >= 0.5).astype(int)
    return {
        "roc_auc": float(roc_auc_score(labels, y_prob)) if both_classes else float("nan"),
        "matbench_balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "accuracy": float(np.mean(predicted == labels)),
    }


def evaluate(problem_type: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """All metrics of ``problem_type`` for one set of predictions."""
    if problem_type == REGRESSION:
        return regression_metrics(y_true, y_pred)
    if problem_type == CLASSIFICATION:
        return classification_metrics(y_true, y_pred)
    raise ValueError(f"unknown problem type {problem_type!r}; known: {REGRESSION}, {CLASSIFICATION}")


def dummy_predictions(problem_type: str, train_targets: np.ndarray, n_test: int) -> np.ndarray:
    """Matbench's dummy: the training-fold mean (regression) or the class-1 frequency (classification)."""
    train_targets = np.asarray(train_targets, dtype=float)
    value = train_targets.mean()
    if problem_type == CLASSIFICATION:
        # Matbench's dummy predicts the majority class; as a probability that is 0 or 1.
        value = float(value >= 0.5)
    return np.full(n_test, value)


def within_pair_accuracy(y_true: np.ndarray, y_score: np.ndarray, groups: np.ndarray) -> float:
    """Fraction of pairs whose label-1 member scores higher than its label-0 member (ties count 1/2).

    For mirror pairs (``probe_chirality``): does the model rank the two enantiomers of each
    pair correctly? 0.5 = chance, which an O(3)-invariant model scores exactly (its two
    scores are equal). ``groups`` [n] pair labels; groups that are not one 0 and one 1
    (e.g. a pair cut by a fold) are skipped; NaN when no complete pair remains.
    """
    y_true = np.asarray(y_true, dtype=float).reshape(-1)
    y_score = np.asarray(y_score, dtype=float).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    if not y_true.shape == y_score.shape == groups.shape:
        raise ValueError(f"y_true, y_score and groups differ in length: {y_true.size}, {y_score.size}, {groups.size}")
    wins = []
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if len(rows) != 2 or sorted(y_true[rows].tolist()) != [0.0, 1.0]:
            continue
        pos, neg = (rows[0], rows[1]) if y_true[rows[0]] == 1 else (rows[1], rows[0])
        wins.append(1.0 if y_score[pos] > y_score[neg] else 0.5 if y_score[pos] == y_score[neg] else 0.0)
    return float(np.mean(wins)) if wins else float("nan")
