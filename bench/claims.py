"""Claims: at most one live worker per final cell, across processes, Ray tasks and machines.

Two small tables in the Optuna storage's database (SQLite by default, PostgreSQL for many
workers), written through SQLAlchemy so the database makes each step atomic:

- ``bench_claims(key PK, owner, heartbeat)``: a worker INSERTs the row of a cell before it
  runs it; the primary key lets exactly one INSERT win. The owner refreshes ``heartbeat``
  while it works and DELETEs the row when done (the FINISHED MLflow run is the record that
  the cell is done, written before the delete, so a finished cell is never lost). A row whose
  heartbeat is older than ``stale_after`` seconds belongs to a dead worker: one conditional
  UPDATE (``... WHERE heartbeat < now - stale_after``) hands it to exactly one new owner.
  Heartbeats and "now" come from the database's clock, not the workers', so machines whose
  clocks disagree never take over each other's live cells.
- ``bench_frozen(key PK, value)``: write-once values (the best parameters of a study, the
  id of a parent run): the first INSERT wins and every worker reads the winner.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from bench import defaults

_META = sa.MetaData()
CLAIMS = sa.Table("bench_claims", _META,
                  sa.Column("key", sa.String(255), primary_key=True),
                  sa.Column("owner", sa.String(255), nullable=False),
                  sa.Column("heartbeat", sa.Float, nullable=False))
FROZEN = sa.Table("bench_frozen", _META,
                  sa.Column("key", sa.String(255), primary_key=True),
                  sa.Column("value", sa.Text, nullable=False))
_ENGINES: dict[str, sa.Engine] = {}
# "now" in epoch seconds, evaluated by the database; other dialects fall back to the worker's clock
_DB_NOW = {"sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
           "postgresql": "SELECT EXTRACT(EPOCH FROM clock_timestamp())",
           "mysql": "SELECT UNIX_TIMESTAMP(NOW(6))"}


def engine_for(url: str) -> sa.Engine:
    """One engine per URL and process; SQLite waits up to 60 s for a lock instead of failing."""
    if url not in _ENGINES:
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 60}
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        _ENGINES[url] = sa.create_engine(url, **kwargs)
    return _ENGINES[url]


class ClaimStore:
    """Atomic cell claims and write-once values in the database at ``url``."""

    def __init__(self, url: str, stale_after: float = defaults.STALE_AFTER_S,
                 heartbeat: float = defaults.HEARTBEAT_S) -> None:
        self.url = url
        self.engine = engine_for(url)
        self.stale_after = stale_after
        self.heartbeat = heartbeat
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        for attempt in range(5):  # concurrent CREATE TABLE of two workers: one of them retries
            try:
                _META.create_all(self.engine, checkfirst=True)
                break
            except (IntegrityError, OperationalError, ProgrammingError):
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    # --- claims --------------------------------------------------------------
    def now(self, conn: sa.Connection) -> float:
        """Seconds since the epoch by the database server's clock (the one clock all workers share)."""
        query = _DB_NOW.get(self.engine.dialect.name)
        return float(conn.execute(sa.text(query)).scalar_one()) if query else time.time()

    def try_claim(self, key: str) -> bool:
        """Take ``key`` if nobody holds it or its holder is stale; True when it is ours now."""
        try:
            with self.engine.begin() as conn:
                conn.execute(CLAIMS.insert().values(key=key, owner=self.owner, heartbeat=self.now(conn)))
            return True
        except IntegrityError:
            pass
        with self.engine.begin() as conn:
            now = self.now(conn)
            taken = conn.execute(CLAIMS.update()
                                 .where(CLAIMS.c.key == key, CLAIMS.c.heartbeat < now - self.stale_after)
                                 .values(owner=self.owner, heartbeat=now))
        return taken.rowcount == 1

    def release(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(CLAIMS.delete().where(CLAIMS.c.key == key, CLAIMS.c.owner == self.owner))

    def _beat(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(CLAIMS.update().where(CLAIMS.c.key == key, CLAIMS.c.owner == self.owner)
                         .values(heartbeat=self.now(conn)))

    @contextmanager
    def claim(self, key: str) -> Iterator[bool]:
        """``with store.claim(key) as mine:`` run the cell only when ``mine``; released on exit."""
        if not self.try_claim(key):
            yield False
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat):
                try:
                    self._beat(key)
                except Exception:  # a missed beat only shortens the grace period
                    pass

        thread = threading.Thread(target=beat, daemon=True, name=f"claim-{key[:8]}")
        thread.start()
        try:
            yield True
        finally:
            stop.set()
            thread.join(timeout=5)
            self.release(key)

    def live_claims(self) -> dict[str, str]:
        """Keys held by a live worker -> owner."""
        with self.engine.connect() as conn:
            cutoff = self.now(conn) - self.stale_after
            rows = conn.execute(sa.select(CLAIMS.c.key, CLAIMS.c.owner).where(CLAIMS.c.heartbeat >= cutoff))
            return {r.key: r.owner for r in rows}

    # --- write-once values -----------------------------------------------------
    def freeze(self, key: str, value: Any) -> Any:
        """Store ``value`` under ``key`` unless a value is there; return the stored one (JSON)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(FROZEN.insert().values(key=key, value=json.dumps(value, sort_keys=True)))
            return value
        except IntegrityError:
            found = self.frozen(key)
            assert found is not None
            return found

    def frozen(self, key: str) -> Any | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(FROZEN.c.value).where(FROZEN.c.key == key)).first()
        return None if row is None else json.loads(row.value)
