"""Format tests: tiny files in matminer's layout exercise the loader's checks.

The files here hold toy structures and toy targets. They are not Matbench data; they
only have Matbench's file names and columns so the loader treats them as such.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from matminer.utils.io import store_dataframe_as_json
from pymatgen.core import Lattice, Structure
from sklearn.model_selection import KFold, StratifiedKFold

from tasks import (
    DataFormatError,
    DataUnavailableError,
    DataVerificationError,
    VerifiedCopy,
    get_task,
    matbench_recorder,
)
from tasks.base import sha256_file


def toy_structures(n: int) -> list[Structure]:
    """n small distinct toy crystals (rock-salt-like cells of varying size)."""
    return [Structure(Lattice.cubic(3.0 + 0.1 * i), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
            for i in range(n)]


def write_toy(folder, name: str, n: int, target: str | None = None, values=None):
    """Write a toy frame as <folder>/<name>.json.gz in matminer's format."""
    task = get_task(name)
    col = target or task.target
    vals = values if values is not None else np.linspace(1.0, 2.0, n)
    df = pd.DataFrame({"structure": toy_structures(n), col: vals})
    path = folder / f"{name}.json.gz"
    store_dataframe_as_json(df, str(path), orient="split", pbar=False)
    return path


def test_format_wrong_hash_names_file_and_hashes(isolated_dirs):
    mb, _ = isolated_dirs
    path = write_toy(mb, "matbench_dielectric", 6)
    task = get_task("matbench_dielectric")
    with pytest.raises(DataVerificationError) as err:
        task.load()
    msg = str(err.value)
    assert str(path.resolve()) in msg
    assert sha256_file(path) in msg and task.upstream_sha256 in msg
    assert "MATBENCH_DATA" in msg and "allow_unverified" in msg


def test_format_allow_unverified_small_file_uses_fold_recipe(isolated_dirs):
    mb, _ = isolated_dirs
    write_toy(mb, "matbench_dielectric", 10)
    data = get_task("matbench_dielectric").load(allow_unverified=True)
    assert data.verification == "UNVERIFIED" and not data.verified
    assert len(data) == 10 and data.ids[0] == "mb-dielectric-01"
    # not Matbench's rows, so not Matbench's fold ids: the same recipe over this file
    assert data.fold_source == "kfold-18012019"
    for fold, (train, test) in zip(data.folds, KFold(5, shuffle=True, random_state=18012019)
                                   .split(np.arange(10))):
        np.testing.assert_array_equal(fold.test, test)
        np.testing.assert_array_equal(fold.train, train)
    with pytest.raises(ValueError, match="not Matbench's"):
        matbench_recorder(data)


def test_format_classification_targets_are_0_1(isolated_dirs):
    mb, _ = isolated_dirs
    labels = [True, False] * 5
    write_toy(mb, "matbench_mp_is_metal", 10, values=labels)
    data = get_task("matbench_mp_is_metal").load(allow_unverified=True)
    assert data.problem_type == "classification"
    assert data.targets.dtype == np.float64
    np.testing.assert_array_equal(data.targets, np.array(labels, dtype=float))
    skf = StratifiedKFold(5, shuffle=True, random_state=18012019)
    for fold, (_, test) in zip(data.folds, skf.split(np.arange(10), data.targets)):
        np.testing.assert_array_equal(fold.test, test)


def test_format_non_binary_classification_target_errors(isolated_dirs):
    mb, _ = isolated_dirs
    write_toy(mb, "matbench_mp_is_metal", 10, values=np.arange(10.0))
    with pytest.raises(DataFormatError, match="other than 0/1"):
        get_task("matbench_mp_is_metal").load(allow_unverified=True)


def test_missing_file_offline_is_plain(isolated_dirs, no_download):
    mb, mm = isolated_dirs
    with pytest.raises(DataUnavailableError) as err:
        get_task("matbench_mp_is_metal").load()
    msg = str(err.value)
    assert "not on this machine" in msg and "offline?" in msg and "MATBENCH_DATA" in msg
    assert str(mb / "matbench_mp_is_metal.json.gz") in msg
    assert str(mm / "matbench_mp_is_metal.json.gz") in msg
    assert "network disabled in tests" in msg
    assert no_download == ["matbench_mp_is_metal"]


def test_data_dir_argument_is_the_only_place_searched(isolated_dirs, tmp_path):
    mb, _ = isolated_dirs
    write_toy(mb, "matbench_dielectric", 10)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataUnavailableError, match="data_dir argument"):
        get_task("matbench_dielectric").load(allow_unverified=True, data_dir=empty)


def test_matbench_data_comes_before_matminer_dir(isolated_dirs):
    mb, mm = isolated_dirs
    write_toy(mm, "matbench_dielectric", 5)
    task = get_task("matbench_dielectric")
    assert task.locate() == mm / "matbench_dielectric.json.gz"
    write_toy(mb, "matbench_dielectric", 5)
    assert task.locate() == mb / "matbench_dielectric.json.gz"


def test_format_registered_hash_with_wrong_row_count_errors(isolated_dirs):
    mb, _ = isolated_dirs
    path = write_toy(mb, "matbench_dielectric", 10)
    task = dataclasses.replace(get_task("matbench_dielectric"),
                               verified_copies=(VerifiedCopy(sha256_file(path), "toy"),))
    with pytest.raises(DataFormatError, match="has 10 rows; matbench_dielectric has 4764"):
        task.load()


def test_format_unreadable_file_is_named(isolated_dirs):
    mb, _ = isolated_dirs
    path = mb / "matbench_dielectric.json.gz"
    path.write_bytes(b"not a gzip file")
    with pytest.raises(DataFormatError) as err:
        get_task("matbench_dielectric").load(allow_unverified=True)
    assert str(path.resolve()) in str(err.value) and "not a readable" in str(err.value)


def test_format_missing_target_column_is_named(isolated_dirs):
    mb, _ = isolated_dirs
    path = write_toy(mb, "matbench_dielectric", 5, target="wrong")
    with pytest.raises(DataFormatError) as err:
        get_task("matbench_dielectric").load(allow_unverified=True)
    assert str(path.resolve()) in str(err.value) and "'n'" in str(err.value)


def test_unverified_full_size_copy_keeps_matbench_folds(tmp_path):
    """A re-serialised jdft2d (other bytes, same rows) loads only when allowed."""
    task = get_task("matbench_jdft2d")
    vendored = task.load()
    df = pd.DataFrame({"structure": vendored.structures, task.target: vendored.targets})
    store_dataframe_as_json(df, str(tmp_path / "matbench_jdft2d.json.gz"), orient="split",
                            pbar=False)
    with pytest.raises(DataVerificationError, match="not a known copy"):
        task.load(data_dir=tmp_path)
    data = task.load(allow_unverified=True, data_dir=tmp_path)
    assert data.verification == "UNVERIFIED" and data.fold_source == "matbench-validation"
    assert data.ids == vendored.ids
    for mine, ref in zip(data.folds, vendored.folds):
        np.testing.assert_array_equal(mine.test, ref.test)
