"""The vendored verified copies: bytes, registry hashes and Matbench's published MAD."""
from __future__ import annotations

import numpy as np
import pytest

from bench.defaults import VENDORED_DATA_DIR
from tasks import get_task
from tasks.base import sha256_file

# Matbench's published mean absolute deviations of the targets
PUBLISHED_MAD = {"matbench_jdft2d": 67.2020, "matbench_phonons": 323.7870}


@pytest.mark.parametrize("name", sorted(PUBLISHED_MAD))
def test_vendored_file_hash_is_registered(name):
    path = VENDORED_DATA_DIR / "matbench" / f"{name}.json.gz"
    assert path.is_file()
    copies = get_task(name).verified_copies
    assert sha256_file(path) in {c.sha256 for c in copies}


def test_readme_lists_the_hashes():
    readme = (VENDORED_DATA_DIR / "matbench" / "README.md").read_text()
    for name in PUBLISHED_MAD:
        for copy in get_task(name).verified_copies:
            assert copy.sha256 in readme


@pytest.mark.parametrize("name", sorted(PUBLISHED_MAD))
def test_vendored_targets_have_published_mad(name):
    data = get_task(name).load()
    assert data.verification.startswith("verified-copy: ")
    assert str(data.source).startswith(str(VENDORED_DATA_DIR.resolve()))
    y = data.targets
    assert len(y) == get_task(name).n_samples
    assert abs(np.mean(np.abs(y - y.mean())) - PUBLISHED_MAD[name]) < 1e-3


def test_phonons_folds_are_matbench_validation_ids():
    from matbench.metadata import mbv01_validation

    data = get_task("matbench_phonons").load()  # cached: parsed once per process
    assert data.ids[0] == "mb-phonons-0001" and data.fold_source == "matbench-validation"
    splits = mbv01_validation.splits["matbench_phonons"]
    for k, fold in enumerate(data.folds):
        assert [data.ids[i] for i in fold.test] == list(splits[f"fold_{k}"].test)
