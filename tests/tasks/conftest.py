"""Shared fixtures for the task tests: no test here ever touches the network."""
from __future__ import annotations

import pytest
import requests


@pytest.fixture(autouse=True)
def no_download(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace matminer's download with an offline failure; records the attempts."""
    attempts: list[str] = []

    def offline(name, data_home):
        attempts.append(name)
        raise requests.ConnectionError(f"network disabled in tests ({name})")

    monkeypatch.setattr("tasks.matbench._matminer_download", offline)
    return attempts


@pytest.fixture
def isolated_dirs(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """Point $MATBENCH_DATA and $MATMINER_DATA at fresh empty folders."""
    mb = tmp_path / "matbench_data"
    mm = tmp_path / "matminer_data"
    mb.mkdir()
    mm.mkdir()
    monkeypatch.setenv("MATBENCH_DATA", str(mb))
    monkeypatch.setenv("MATMINER_DATA", str(mm))
    return mb, mm
