"""Run records on disk: one JSON-lines file per (task, architecture), one line per finished cell.

Layout: ``results/<experiment>/runs/<task>/<architecture>.jsonl``, committed with the
reports. Why JSON lines: plain text that git diffs, merges and blames line by line (a new
cell is one added line; ``.gitattributes`` merges these files with git's ``union`` driver, so
two machines that each appended cells merge without conflicts); standard-library only; a
crash can tear at most the last line, which readers skip and the next writer cuts off.
Parquet would be smaller but binary (no line diffs, every append rewrites the file).

Writers append under an exclusive ``fcntl.flock`` on the file itself: several worker
processes of one machine append safely. Each append is one ``write`` of a whole line
followed by ``fsync``; before it the writer cuts a torn tail (bytes after the last newline,
left by a crash) so a torn line never glues onto a good one. A cell key already in the file
is not written twice. Across machines, each writes its own checkout and git merges them.
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: one writer process at a time is then the caller's duty
    fcntl = None

from bench import defaults

RUNS_DIR = "runs"
SUFFIX = ".jsonl"
SCHEMA = 1


def results_root(results_dir: os.PathLike | str | None = None) -> Path:
    """``results_dir``, else ``$BENCH_RESULTS``, else the project's ``results/``."""
    if results_dir is not None:
        return Path(results_dir)
    return Path(os.environ.get("BENCH_RESULTS", defaults.RESULTS_DIR))


def encode(record: dict) -> str:
    """One line of JSON (sorted keys, no spaces: the same record always gives the same bytes)."""
    line = json.dumps(record, sort_keys=True, separators=(",", ":"))
    if "\n" in line:  # json.dumps escapes newlines inside strings; this never happens
        raise ValueError("a record must encode to one line")
    return line


def parse_lines(data: bytes, source: str = "") -> Iterator[tuple[dict, str]]:
    """``(record, line)`` for every whole, valid line of ``data``; a torn or corrupt line is
    skipped with a warning (a missing last newline means the writer crashed mid-line)."""
    lines = data.split(b"\n")
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        torn = i == len(lines) - 1  # no newline after it
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or "cell_key" not in record:
                raise ValueError("not a record")
        except ValueError:
            warnings.warn(f"{source}: skipped {'a torn last' if torn else 'an unreadable'} line {i + 1}",
                          stacklevel=2)
            continue
        if torn:
            warnings.warn(f"{source}: skipped a torn last line {i + 1} (no newline)", stacklevel=2)
            continue
        yield record, raw.decode("utf-8")


class RecordStore:
    """The run records of one experiment: ``<results>/<experiment>/runs/``."""

    def __init__(self, root: os.PathLike | str) -> None:
        self.root = Path(root)

    @classmethod
    def for_experiment(cls, experiment: str, results_dir: os.PathLike | str | None = None) -> RecordStore:
        return cls(results_root(results_dir) / experiment / RUNS_DIR)

    def path(self, task: str, architecture: str) -> Path:
        return self.root / task / f"{architecture}{SUFFIX}"

    def files(self) -> list[Path]:
        return sorted(self.root.glob(f"*/*{SUFFIX}")) if self.root.is_dir() else []

    @contextmanager
    def _locked(self, path: Path) -> Iterator:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield fh
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def append(self, record: dict) -> bool:
        """Append ``record`` to its (task, architecture) file; False when its cell key is there already."""
        line = encode(record).encode("utf-8") + b"\n"
        path = self.path(record["task"], record["architecture"])
        with self._locked(path) as fh:
            fh.seek(0)
            data = fh.read()
            good = data[:data.rfind(b"\n") + 1]
            if len(good) != len(data):  # a torn tail from a crashed writer: cut it off first
                fh.truncate(len(good))
            if any(r["cell_key"] == record["cell_key"] for r, _ in parse_lines(good, str(path))):
                return False
            fh.seek(0, os.SEEK_END)
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def read_file(self, path: Path) -> list[tuple[dict, str]]:
        return list(parse_lines(path.read_bytes(), str(path))) if path.is_file() else []

    def find(self, task: str, architecture: str, cell_key: str) -> dict | None:
        """The record of ``cell_key`` (looked up in its task and architecture's file), or None."""
        found = [(r, line) for r, line in self.read_file(self.path(task, architecture)) if r["cell_key"] == cell_key]
        return _latest(found)[0] if found else None

    def load(self):
        """Every record of the experiment as a :class:`bench.records.RecordSet` (one per cell key)."""
        from bench.records.recordset import RecordSet

        by_key: dict[str, list[tuple[dict, str]]] = {}
        for path in self.files():
            for record, line in self.read_file(path):
                by_key.setdefault(record["cell_key"], []).append((record, line))
        return RecordSet([_latest(v)[0] for _, v in sorted(by_key.items())], self.root)


def _latest(found: list[tuple[dict, str]]) -> tuple[dict, str]:
    """Of several records of one cell (two machines ran it), the latest; ties by the line's text.
    Independent of line order, so every clone chooses the same one."""
    return max(found, key=lambda item: (str(item[0].get("finished_at", "")), item[1]))
