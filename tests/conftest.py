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


@pytest.fixture(scope="session", autouse=True)
def _records_outside_the_project(tmp_path_factory):
    """Run records of every test go to a temporary folder, never the project's results/
    (module-scoped fixtures run before function-scoped ones, so this is session-wide)."""
    import os

    old = os.environ.get("BENCH_RESULTS")
    os.environ["BENCH_RESULTS"] = str(tmp_path_factory.mktemp("bench-results"))
    yield
    if old is None:
        os.environ.pop("BENCH_RESULTS", None)
    else:
        os.environ["BENCH_RESULTS"] = old


@pytest.fixture(autouse=True)
def _records_per_test(tmp_path_factory, monkeypatch):
    """A fresh records folder per test: a test never finds the records of another test's grid."""
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path_factory.mktemp("records")))
