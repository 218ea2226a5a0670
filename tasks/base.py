"""The task interface: what every data set gives the runner, whatever its source.

A :class:`Task` describes a data set (target, unit, problem type, expected size,
hashes it accepts); :meth:`Task.load` finds its file, checks its sha256 and returns
a :class:`TaskData` with structures, targets and five folds.

Hash policy (all tasks): a file is accepted when its sha256 is one the task knows
(the upstream metadata hash, or a verified copy registered with its provenance).
Anything else raises :class:`DataVerificationError`, unless ``allow_unverified``,
which loads it and sets ``TaskData.verification = "UNVERIFIED"``.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from collections.abc import Sequence

import numpy as np

from bench.registry import Registry

ProblemType = Literal["regression", "classification"]
UNVERIFIED = "UNVERIFIED"
N_FOLDS = 5
# Matbench's fold recipe: KFold(5, shuffle=True, random_state=18012019), stratified
# for classification (matbench_v0.1_validation.json "metadata").
FOLD_SEED = 18012019
FOLD_SOURCE_RECIPE = f"kfold-{FOLD_SEED}"
#: Fewest rows five folds can use: one test row per fold (the training folds then hold 4 or more,
#: enough for the training/validation split)
MIN_ROWS = N_FOLDS

TASKS: Registry[Task] = Registry("task")


class DataUnavailableError(FileNotFoundError):
    """The task's data file is not on this machine and could not be fetched."""


class DataVerificationError(ValueError):
    """A data file is not a known copy (sha256), or is not what the task expects."""


class DataFormatError(DataVerificationError):
    """A data file is unreadable, lacks a column, or has the wrong size or values."""


@dataclass(frozen=True)
class VerifiedCopy:
    """A file accepted by its sha256 although it is not the upstream file."""

    sha256: str
    provenance: str


@dataclass(frozen=True)
class Fold:
    """Integer row indices into a :class:`TaskData`'s arrays."""

    train: np.ndarray
    test: np.ndarray


@dataclass
class TaskData:
    """A loaded task. Loads are cached and shared: treat the contents as read-only.

    ``folds[k].test`` lists rows in the order the fold's test ids are given by the
    source of the folds (Matbench's validation data for official folds).
    """

    name: str
    ids: list[str]
    structures: list  # list[pymatgen.core.Structure]
    targets: np.ndarray  # float64 [n]; 0/1 for classification
    problem_type: ProblemType
    folds: list[Fold]
    sha256: str
    source: Path
    verification: str  # "matminer-sha256" | "verified-copy: <provenance>" | "UNVERIFIED"
    fold_source: str = "matbench-validation"  # or FOLD_SOURCE_RECIPE

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def verified(self) -> bool:
        return self.verification != UNVERIFIED

    def fold(self, k: int) -> Fold:
        """The ``k``-th fold, ``k`` in ``0..len(folds)-1``."""
        if not isinstance(k, (int, np.integer)) or not 0 <= k < len(self.folds):
            raise IndexError(
                f"{self.name}: fold {k!r} does not exist; folds are 0..{len(self.folds) - 1}"
            )
        return self.folds[int(k)]


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recipe_folds(targets: np.ndarray, stratified: bool) -> list[Fold]:
    """Matbench's recipe over row order: (Stratified)KFold(5, shuffle, 18012019)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = (StratifiedKFold if stratified else KFold)(
        n_splits=N_FOLDS, shuffle=True, random_state=FOLD_SEED
    )
    rows = np.arange(len(targets))
    return [Fold(readonly_array(tr), readonly_array(te)) for tr, te in splitter.split(rows, targets)]


def read_frame(path: Path, target: str):
    """Read a matminer-format ``.json.gz`` into a DataFrame, with clear errors."""
    from matminer.utils.io import load_dataframe_from_json

    try:
        df = load_dataframe_from_json(str(path), pbar=False)
    except Exception as exc:  # json, gzip, monty decoding: all mean "not readable"
        raise DataFormatError(f"{path}: not a readable matminer JSON file ({exc})") from exc
    for column in ("structure", target):
        if column not in df.columns:
            raise DataFormatError(
                f"{path}: has no column {column!r} (columns: {list(df.columns)})"
            )
    return df


def readonly_array(a: Sequence[int] | np.ndarray, dtype=np.int64) -> np.ndarray:
    """A copy of ``a`` as a numpy array that cannot be written to."""
    arr = np.array(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Task:
    """Base of every task; subclasses say where the file is and how folds are made."""

    name: str
    target: str
    unit: str
    problem_type: ProblemType
    n_samples: int
    leaderboard_comparable: bool
    description: str = ""
    citation: str = ""
    upstream_sha256: str | None = None  # e.g. matminer's metadata hash
    verified_copies: tuple[VerifiedCopy, ...] = field(default=())
    #: physical range of the target in ``unit`` (None: not stated); see tasks.validation
    target_range: tuple[float, float] | None = None

    # --- to be provided by subclasses ------------------------------------
    def locate(self, data_dir: str | os.PathLike | None = None) -> Path:
        """Path of an existing data file, else raise :class:`DataUnavailableError`."""
        raise NotImplementedError

    def how_to_obtain(self) -> str:
        """One sentence telling a user how to get the genuine file."""
        raise NotImplementedError

    def make_ids(self, df) -> list[str]:
        """Ids of the rows, in file order."""
        raise NotImplementedError

    def make_folds(self, ids: list[str], targets: np.ndarray, path: Path) -> tuple[list[Fold], str]:
        """Folds and a label for where they came from."""
        return recipe_folds(targets, self.problem_type == "classification"), FOLD_SOURCE_RECIPE

    # --- shared machinery -------------------------------------------------
    def expected_hashes(self) -> dict[str, str]:
        """sha256 -> how it is known, for every file this task accepts."""
        known = {c.sha256: f"verified copy ({c.provenance})" for c in self.verified_copies}
        if self.upstream_sha256:
            known[self.upstream_sha256] = "upstream metadata hash"
        return known

    def verify(self, path: Path, sha: str, allow_unverified: bool = False) -> str:
        """The verification label for a file with this sha256, or raise."""
        if self.upstream_sha256 and sha == self.upstream_sha256:
            return "matminer-sha256"
        for copy in self.verified_copies:
            if sha == copy.sha256:
                return f"verified-copy: {copy.provenance}"
        if allow_unverified:
            return UNVERIFIED
        expected = "\n".join(f"  {h}  {how}" for h, how in self.expected_hashes().items())
        raise DataVerificationError(
            f"{self.name}: file {path} has sha256 {sha}, which is not a known copy.\n"
            f"Expected one of:\n{expected or '  (none registered)'}\n"
            f"{self.how_to_obtain()}\n"
            "To run on this file anyway, pass allow_unverified=True "
            "(--allow-unverified-data); its runs are then tagged UNVERIFIED."
        )

    def load(self, allow_unverified: bool = False, data_dir: str | os.PathLike | None = None) -> TaskData:
        """Find, verify and parse the data file (parsed results are cached in-process)."""
        path = Path(self.locate(data_dir)).resolve()
        sha = sha256_file(path)
        verification = self.verify(path, sha, allow_unverified)
        cached = _load_cached(self, str(path), sha, verification)
        # fresh lists so a caller's edits never reach the cache; arrays are read-only
        return TaskData(**{**cached.__dict__, "ids": list(cached.ids),
                           "structures": list(cached.structures), "folds": list(cached.folds)})

    def _convert_targets(self, values: np.ndarray, path: Path) -> np.ndarray:
        if self.problem_type == "classification":
            vals = np.asarray(values)
            if vals.dtype == bool:
                out = vals.astype(np.float64)
            else:
                out = np.asarray(vals, dtype=np.float64)
                if not np.isin(out, (0.0, 1.0)).all():
                    raise DataFormatError(f"{path}: {self.target!r} has values other than 0/1")
        else:
            try:
                out = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise DataFormatError(f"{path}: {self.target!r} is not numeric ({exc})") from exc
        if not np.isfinite(out).all():
            raise DataFormatError(f"{path}: {self.target!r} has {int((~np.isfinite(out)).sum())} "
                                  "missing or non-finite values")
        return readonly_array(out, np.float64)

    def _build(self, path: Path, sha: str, verification: str) -> TaskData:
        from pymatgen.core import Structure

        df = read_frame(path, self.target)
        if len(df) < MIN_ROWS:
            raise DataFormatError(f"{path}: has {len(df)} rows; {N_FOLDS} folds need at least {MIN_ROWS} "
                                  "(one test row per fold)")
        if len(df) != self.n_samples and verification != UNVERIFIED:
            raise DataFormatError(
                f"{path}: has {len(df)} rows; {self.name} has {self.n_samples}"
            )
        structures = list(df["structure"])
        bad = next((i for i, s in enumerate(structures) if not isinstance(s, Structure)), None)
        if bad is not None:
            raise DataFormatError(f"{path}: row {bad} of 'structure' is not a pymatgen Structure")
        targets = self._convert_targets(df[self.target].to_numpy(), path)
        ids = self.make_ids(df)
        if len(set(ids)) != len(ids):
            raise DataFormatError(f"{path}: row ids are not unique")
        folds, fold_source = self.make_folds(ids, targets, path)
        return TaskData(self.name, ids, structures, targets, self.problem_type, folds,
                        sha, path, verification, fold_source)


@functools.lru_cache(maxsize=4)
def _load_cached(task: Task, path: str, sha: str, verification: str) -> TaskData:
    # keyed on the task (hence its name), the resolved path and the file's sha256
    return task._build(Path(path), sha, verification)
