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

A claim is taken over at once when its owner is provably gone: the owner string names the
machine (host name plus a token of the kernel boot and PID namespace, so two containers
with one host name never judge each other's PIDs) and the process; on the same machine a
PID that no longer runs means a dead worker (``kill -9``, a crash, a power cut of that
process). Elsewhere only the heartbeat tells, after ``stale_after`` seconds.

:func:`schema_lock` serialises the first creation of a SQLite store's tables by several
processes (MLflow's and Optuna's migrations are not safe to run concurrently).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from filelock import FileLock
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from bench import defaults, interrupts

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


#: seconds a process waits for another one to finish creating a store's tables
SCHEMA_LOCK_TIMEOUT_S = 300.0


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1] if "///" in url else ""
    return Path(path) if path and path != ":memory:" else None


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Hold an exclusive file lock beside a SQLite database (``<file>.lock``) while its tables
    are created or migrated; a no-op for server databases (their callers retry instead)."""
    path = sqlite_path(url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=SCHEMA_LOCK_TIMEOUT_S):
        yield


@functools.lru_cache(maxsize=1)
def machine_token() -> str:
    """Short token of this kernel boot and PID namespace: PIDs compare only within one token."""
    parts = [socket.gethostname()]
    for source in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(Path(source).read_text().strip() if "boot_id" in source else str(os.stat(source).st_ino))
        except OSError:
            parts.append("")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


def make_owner() -> str:
    """``host:pid:nonce:machine`` of this process (one nonce per ClaimStore)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{machine_token()}"


def pid_running(pid: int) -> bool:
    """True when process ``pid`` exists on this machine and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:  # a killed child not yet reaped by its parent is a zombie: dead for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def owner_gone(owner: str) -> bool:
    """True only when ``owner`` ran on this machine and its process no longer runs."""
    parts = owner.split(":")
    if len(parts) != 4 or parts[3] != machine_token():
        return False  # another machine (or an old owner format): only its heartbeat can tell
    try:
        return not pid_running(int(parts[1]))
    except ValueError:
        return False


@dataclass(frozen=True)
class ClaimRow:
    """One claim as seen now: who holds it, seconds since its last heartbeat, and whether it is live."""

    key: str
    owner: str
    age_s: float
    live: bool
    reason: str  # why it is not live ("" when live)


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
        self.owner = make_owner()
        self.taken_over: dict[str, str] = {}  # key -> the dead owner it was taken from
        self.lost: set[str] = set()  # keys another worker took while we held them
        with schema_lock(url):
            for attempt in range(5):  # concurrent CREATE TABLE on a server database: one of them retries
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
        """Take ``key`` if nobody holds it or its holder is gone (dead PID here, or no heartbeat
        for ``stale_after`` s); True when it is ours now. A takeover is one conditional UPDATE
        on the holder and heartbeat we saw, so of several takers exactly one wins."""
        for _ in range(3):  # the holder may release between our INSERT and our look
            try:
                with self.engine.begin() as conn:
                    conn.execute(CLAIMS.insert().values(key=key, owner=self.owner, heartbeat=self.now(conn)))
                return True
            except IntegrityError:
                pass
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(CLAIMS.c.owner, CLAIMS.c.heartbeat).where(CLAIMS.c.key == key)).first()
                if row is None:
                    continue
                now = self.now(conn)
                if row.heartbeat >= now - self.stale_after and not owner_gone(row.owner):
                    return False
                taken = conn.execute(CLAIMS.update()
                                     .where(CLAIMS.c.key == key, CLAIMS.c.owner == row.owner,
                                            CLAIMS.c.heartbeat == row.heartbeat)
                                     .values(owner=self.owner, heartbeat=now))
            if taken.rowcount == 1:
                self.taken_over[key] = row.owner
                return True
            return False
        return False

    def release(self, key: str) -> None:
        with interrupts.deferred(), self.engine.begin() as conn:
            conn.execute(CLAIMS.delete().where(CLAIMS.c.key == key, CLAIMS.c.owner == self.owner))

    def drop_dead(self, key: str, owner: str) -> None:
        """Delete ``key``'s claim if ``owner`` (seen not live) still holds it: the garbage of a
        worker killed after its cell finished but before it released the claim."""
        with interrupts.deferred(), self.engine.begin() as conn:
            conn.execute(CLAIMS.delete().where(CLAIMS.c.key == key, CLAIMS.c.owner == owner))

    def _beat(self, key: str) -> None:
        with self.engine.begin() as conn:
            beat = conn.execute(CLAIMS.update().where(CLAIMS.c.key == key, CLAIMS.c.owner == self.owner)
                                .values(heartbeat=self.now(conn)))
        if beat.rowcount == 0 and key not in self.lost:
            # another worker judged us dead (missed heartbeats) and took the cell: say so, the
            # cell's key still guarantees that only one FINISHED run is ever counted
            self.lost.add(key)
            print(f"warning: the claim on cell {key} was taken over by another worker", file=sys.stderr)

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

    def rows(self) -> list[ClaimRow]:
        """Every claim with its holder, heartbeat age and liveness."""
        with self.engine.connect() as conn:
            now = self.now(conn)
            found = conn.execute(sa.select(CLAIMS.c.key, CLAIMS.c.owner, CLAIMS.c.heartbeat)).all()
        out = []
        for r in found:
            age = now - r.heartbeat
            reason = (f"its worker {r.owner} no longer runs" if owner_gone(r.owner) else
                      f"no heartbeat from {r.owner} for {age:.0f} s" if age > self.stale_after else "")
            out.append(ClaimRow(r.key, r.owner, age, not reason, reason))
        return out

    def live_claims(self) -> dict[str, str]:
        """Keys held by a live worker -> owner."""
        return {r.key: r.owner for r in self.rows() if r.live}

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
