"""perovskites_cdvae: the shared CDVAE file, its own folds, and the absent-file error."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold

from bench.defaults import shared_data_dir
from tasks import DataUnavailableError, get_task

PEROV = shared_data_dir() / "perov_5" / "castelli_perovskites_cdvae.json.gz"


def test_absent_file_names_path_and_bench_data(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    with pytest.raises(DataUnavailableError) as err:
        get_task("perovskites_cdvae").load()
    msg = str(err.value)
    assert str(tmp_path / "perov_5" / "castelli_perovskites_cdvae.json.gz") in msg
    assert "BENCH_DATA" in msg and "not on this machine" in msg


@pytest.mark.skipif(not PEROV.is_file(), reason="shared perov_5 data not on this machine")
def test_loads_with_own_folds():  # about 4 s: 18,928 structures
    data = get_task("perovskites_cdvae").load()
    assert len(data) == 18928
    assert data.verification.startswith("verified-copy: ")
    assert data.fold_source == "kfold-18012019"
    assert data.ids[:2] == ["perov-1", "perov-2"] and data.ids[-1] == "perov-18928"
    assert data.structures[0].num_sites == 5
    y = data.targets
    assert abs(np.mean(np.abs(y - y.mean())) - 0.5643) < 1e-3  # the README's MAD
    kfold = KFold(5, shuffle=True, random_state=18012019)
    for fold, (train, test) in zip(data.folds, kfold.split(np.arange(len(y)))):
        np.testing.assert_array_equal(fold.test, test)
        np.testing.assert_array_equal(fold.train, train)
