"""Cell claims and write-once values in a real SQLite database (PostgreSQL: tests/bench/test_servers.py)."""
import time

import pytest
import sqlalchemy as sa

from bench import claims as claims_module
from bench.claims import CLAIMS, ClaimStore


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'claims.db'}"


def test_now_is_the_database_clock(url):
    store = ClaimStore(url)
    with store.engine.connect() as conn:
        assert store.now(conn) == pytest.approx(time.time(), abs=2.0)


def test_one_claim_per_key_and_release(url):
    a, b = ClaimStore(url), ClaimStore(url)
    with a.claim("cell") as mine:
        assert mine
        with b.claim("cell") as theirs:
            assert not theirs
        assert a.live_claims() == {"cell": a.owner}
    assert a.live_claims() == {} and b.try_claim("cell")


def test_a_worker_whose_clock_runs_ahead_does_not_take_a_live_claim(url, monkeypatch):
    """Staleness is judged by the database clock: a worker an hour ahead sees the holder as live."""
    holder, skewed = ClaimStore(url, stale_after=600), ClaimStore(url, stale_after=600)
    assert holder.try_claim("cell")
    real = time.time
    monkeypatch.setattr(claims_module.time, "time", lambda: real() + 3600.0)
    assert not skewed.try_claim("cell")
    assert skewed.live_claims() == {"cell": holder.owner}


def test_a_stale_claim_goes_to_exactly_one_new_owner(url):
    dead, first, second = (ClaimStore(url, stale_after=600) for _ in range(3))
    assert dead.try_claim("cell")
    with dead.engine.begin() as conn:  # its last heartbeat was 11 minutes ago by the database's clock
        conn.execute(CLAIMS.update().values(heartbeat=dead.now(conn) - 660))
    assert dead.live_claims() == {}
    assert [first.try_claim("cell"), second.try_claim("cell")] == [True, False]
    with first.engine.connect() as conn:
        assert conn.execute(sa.select(CLAIMS.c.owner)).scalar_one() == first.owner


def test_frozen_values_are_write_once(url):
    a, b = ClaimStore(url), ClaimStore(url)
    assert a.frozen("study") is None
    assert a.freeze("study", {"lr": 0.01}) == {"lr": 0.01}
    assert b.freeze("study", {"lr": 0.5}) == {"lr": 0.01}  # the first value wins for every worker
