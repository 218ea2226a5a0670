"""Suite-wide fixtures."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shared_graph_cache(tmp_path_factory) -> str:
    """One graph cache for the whole test session (never the project's .cache/).

    Cache files are keyed by dataset hash, variant, cutoff, cap and code version, so
    tests that build the same task's graphs share them safely instead of rebuilding.
    """
    return str(tmp_path_factory.mktemp("graph-cache"))


@pytest.fixture(autouse=True)
def _graph_cache_outside_the_project(shared_graph_cache, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", shared_graph_cache)
