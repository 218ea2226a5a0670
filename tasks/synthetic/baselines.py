"""Baselines that a probe must beat to be a test at all: predictors that see only part of a row.

``per_formula_mean_scores(data)``: for each fold, predict every test row by the mean
training target of its reduced formula (the global training mean for a formula not
seen in training) and score MAE/MAD on the test rows (``bench.metrics``). A probe on
which this scores well is a lookup table, not a test of an encoding.
"""
from __future__ import annotations

import numpy as np

from bench.metrics import regression_metrics


def reduced_formulas(structures) -> np.ndarray:
    """[n] reduced formula of every structure (e.g. 'CsCl' for Cs3Cl3)."""
    return np.array([s.composition.reduced_formula for s in structures])


def per_formula_mean_scores(data) -> list[float]:
    """MAE/MAD of the per-formula training mean on each fold's test rows (one value per fold)."""
    formula = reduced_formulas(data.structures)
    targets = np.asarray(data.targets, dtype=float)
    scores = []
    for fold in data.folds:
        train, test = np.asarray(fold.train), np.asarray(fold.test)
        means = {f: targets[train][formula[train] == f].mean() for f in np.unique(formula[train])}
        fallback = targets[train].mean()
        pred = np.array([means.get(f, fallback) for f in formula[test]])
        scores.append(regression_metrics(targets[test], pred)["mae_over_mad"])
    return scores
