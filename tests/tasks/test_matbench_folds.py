"""matbench_jdft2d from the vendored copy: rows, ids, Matbench's folds, the recorder."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold

from tasks import TaskData, get_task, matbench_recorder

N = 636


@pytest.fixture(scope="module")
def jdft2d() -> TaskData:
    return get_task("matbench_jdft2d").load()


@pytest.fixture(scope="module")
def validation():
    from matbench.metadata import mbv01_validation

    return mbv01_validation.splits["matbench_jdft2d"]


def test_loads_offline_from_vendored_copy(jdft2d, no_download):
    assert len(jdft2d) == len(jdft2d.structures) == len(jdft2d.targets) == N
    assert jdft2d.problem_type == "regression"
    assert jdft2d.targets.dtype == np.float64
    assert jdft2d.verification.startswith("verified-copy: ")
    assert jdft2d.fold_source == "matbench-validation"
    assert jdft2d.ids[0] == "mb-jdft2d-001" and jdft2d.ids[-1] == "mb-jdft2d-636"
    assert no_download == []


def test_ids_mirror_matbench_data_ops(jdft2d):
    # matbench.data_ops.load: f"{prefix}-{i + 1:0{floor(log10(n)) + 1}d}" over df.index
    assert jdft2d.ids == [f"mb-jdft2d-{i + 1:03d}" for i in range(N)]


def test_folds_partition_rows(jdft2d):
    assert len(jdft2d.folds) == 5
    tests = [set(f.test.tolist()) for f in jdft2d.folds]
    for i, fold in enumerate(jdft2d.folds):
        assert not set(fold.train.tolist()) & tests[i]
        assert set(fold.train.tolist()) | tests[i] == set(range(N))
        assert len(fold.test) == len(tests[i])  # no duplicates
        for j in range(i):
            assert not tests[i] & tests[j]
    assert set().union(*tests) == set(range(N))


def test_fold_ids_equal_matbench_validation_in_order(jdft2d, validation):
    for k, fold in enumerate(jdft2d.folds):
        assert [jdft2d.ids[i] for i in fold.test] == list(validation[f"fold_{k}"].test)
        assert [jdft2d.ids[i] for i in fold.train] == list(validation[f"fold_{k}"].train)


def test_folds_equal_kfold_recipe(jdft2d):
    kfold = KFold(5, shuffle=True, random_state=18012019)
    for fold, (train, test) in zip(jdft2d.folds, kfold.split(np.arange(N))):
        np.testing.assert_array_equal(np.sort(fold.test), test)
        np.testing.assert_array_equal(np.sort(fold.train), train)


def test_fold_accessor(jdft2d):
    assert jdft2d.fold(4) is jdft2d.folds[4]
    for bad in (-1, 5, "0"):
        with pytest.raises(IndexError, match="0..4"):
            jdft2d.fold(bad)


def test_loaded_arrays_are_read_only_and_lists_are_copies(jdft2d):
    with pytest.raises(ValueError):
        jdft2d.targets[0] = 0.0
    again = get_task("matbench_jdft2d").load()
    assert again.ids == jdft2d.ids and again.ids is not jdft2d.ids
    assert again.structures[0] is jdft2d.structures[0]  # cached parse, not re-read


def test_recorder_order_equals_fold_order_and_records(jdft2d):
    recorder = matbench_recorder(jdft2d)
    for k in range(5):
        inputs = recorder.get_test_data(k, include_target=False)
        assert list(inputs.index) == [jdft2d.ids[i] for i in jdft2d.folds[k].test]
        assert all(s is jdft2d.structures[i] for s, i in zip(inputs, jdft2d.folds[k].test))
    test_rows = jdft2d.folds[0].test
    recorder.record(0, jdft2d.targets[test_rows] + 1.0)
    scores = recorder.results.fold_0.scores
    assert scores.mae == pytest.approx(1.0)
    assert recorder.is_recorded[0] and not recorder.is_recorded[1]


def test_recorder_refuses_non_matbench_task():
    fake = TaskData("perovskites_cdvae", ["perov-1"], [None], np.zeros(1), "regression",
                    [], "0" * 64, None, "UNVERIFIED", "kfold-18012019")
    with pytest.raises(ValueError, match="not a Matbench task"):
        matbench_recorder(fake)


def test_recorder_classification_mechanics():
    """Toy labels (not Matbench data) on mp_is_metal's ids: bool truth, probability record."""
    from matbench.metadata import mbv01_validation

    from tasks import Fold

    splits = mbv01_validation.splits["matbench_mp_is_metal"]
    ids = sorted(i for k in splits for i in splits[k].test)
    row = {mbid: r for r, mbid in enumerate(ids)}
    folds = [Fold(np.array([row[i] for i in splits[k].train]),
                  np.array([row[i] for i in splits[k].test])) for k in sorted(splits)]
    labels = (np.arange(len(ids)) % 2).astype(np.float64)
    toy = TaskData("matbench_mp_is_metal", ids, [None] * len(ids), labels, "classification",
                   folds, "0" * 64, None, "UNVERIFIED", "matbench-validation")
    recorder = matbench_recorder(toy)
    assert recorder.df[recorder.metadata.target].dtype == bool
    test = folds[0].test
    recorder.record(0, labels[test] * 0.8 + 0.1)  # probabilities on the right side of 0.5
    assert recorder.results.fold_0.scores.rocauc == pytest.approx(1.0)
    assert recorder.results.fold_0.scores.balanced_accuracy == pytest.approx(1.0)
