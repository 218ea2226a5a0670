"""User tasks: your own structures and targets, described by a small YAML file.

    bench ablation --task-file my_task.yaml --architectures cgcnn --variants distance,lattice

or, in a profile, ``task_files: [my_task.yaml]`` (relative to the profile) with the task's
name under ``tasks``. The file (paths in it are relative to the file itself)::

    name: my_gaps                 # registry name: lower case, digits, _ and -
    target: band_gap              # column of the targets CSV, or per-structure property
    unit: eV
    problem_type: regression      # or classification (targets 0/1)
    structures: cifs/             # a folder of structure files, or one file (extxyz, matminer JSON, CIF)
    targets: targets.csv          # optional: columns `id` and <target>; without it the target is read from
                                  # each structure's own properties (extxyz info key, JSON column)
    id_column: id                 # optional, the CSV's id column
    folds: {n_splits: 5, seed: 42}      # KFold (stratified for classification) with a stated seed
    # folds: {file: splits.csv}         # or your own split: columns `id`, `fold` (the test fold of each row)
    sha256: <hex>                 # optional: pin the data; a different hash is then an error
    description: ...

Structure ids are what :mod:`bench.structure_io` makes of the files (file names without the
format suffix; ``<file>:<k>`` inside a multi-structure file, unless it carries ids). Every
structure needs a target and every target a structure.

The task's sha256 covers every structure file (by path and content), the targets CSV, the
target and id column, and the fold definition (recipe or split file), so changing any of them
makes new cells. It is recorded on every run (``bench.dataset_sha256``) like a Matbench
file's, with ``bench.data_verification`` = ``user-sha256-pinned`` or ``user-data (sha256 not
pinned)``; a pinned hash that does not match fails unless ``--allow-unverified-data``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tasks.base import (
    TASKS,
    UNVERIFIED,
    DataFormatError,
    DataUnavailableError,
    DataVerificationError,
    Fold,
    Task,
    TaskData,
    readonly_array,
    sha256_file,
)

MAX_FOLDS = 5  # the grid addresses folds 0..4


class FoldSpec(BaseModel):
    """KFold with a stated seed, or a split file (``id``, ``fold`` columns)."""

    model_config = ConfigDict(extra="forbid")
    n_splits: int = Field(5, ge=2, le=MAX_FOLDS)
    seed: int | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FoldSpec:
        if (self.seed is None) == (self.file is None):
            raise ValueError("folds: give either a seed (KFold with n_splits) or a split file, not both or neither")
        return self


class UserTaskSpec(BaseModel):
    """The YAML file of a user task."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    target: str
    unit: str = ""
    problem_type: Literal["regression", "classification"]
    structures: str
    targets: str | None = None
    id_column: str = "id"
    folds: FoldSpec
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    description: str = ""
    citation: str = ""


def read_spec(path: str | os.PathLike) -> UserTaskSpec:
    """Parse and validate a task file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"task file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"task file {path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"task file {path}: must be a mapping of fields (name, target, structures, folds, ...)")
    try:
        return UserTaskSpec.model_validate(raw)
    except ValidationError as err:
        raise ValueError(f"task file {path}:\n{err}") from None


def task_name(path: str | os.PathLike) -> str:
    return read_spec(path).name


@dataclass(frozen=True)
class UserTask(Task):
    """A task defined by a user's YAML file (see the module docstring)."""

    spec_path: str = ""

    @property
    def spec(self) -> UserTaskSpec:
        return read_spec(self.spec_path)

    def _path(self, relative: str) -> Path:
        return (Path(self.spec_path).parent / relative).resolve()

    def locate(self, data_dir: str | os.PathLike | None = None) -> Path:
        spec = self.spec
        for label, rel in (("structures", spec.structures), ("targets", spec.targets),
                           ("folds.file", spec.folds.file)):
            if rel is not None and not self._path(rel).exists():
                raise DataUnavailableError(f"{self.name}: {label} {self._path(rel)} (from {self.spec_path}) "
                                           "does not exist")
        return Path(self.spec_path)

    def how_to_obtain(self) -> str:
        return f"The data are the user's own, described by {self.spec_path}."

    def data_sha256(self) -> str:
        """sha256 over structure files, targets CSV, target/id column names and the fold definition."""
        from bench.structure_io import structure_files

        spec = self.spec
        root = self._path(spec.structures)
        files = structure_files(root) if root.is_dir() else [root]
        manifest = {
            "structures": [[p.relative_to(root).as_posix() if root.is_dir() else p.name, sha256_file(p)]
                           for p in files],
            "targets": sha256_file(self._path(spec.targets)) if spec.targets else None,
            "target": spec.target, "id_column": spec.id_column, "problem_type": spec.problem_type,
            "folds": ({"split_file": sha256_file(self._path(spec.folds.file))} if spec.folds.file
                      else {"n_splits": spec.folds.n_splits, "seed": spec.folds.seed}),
        }
        return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()

    def load(self, allow_unverified: bool = False, data_dir: str | os.PathLike | None = None) -> TaskData:
        self.locate()
        sha = self.data_sha256()
        pinned = self.spec.sha256
        if pinned is None:
            verification = "user-data (sha256 not pinned)"
        elif pinned == sha:
            verification = "user-sha256-pinned"
        elif allow_unverified:
            verification = UNVERIFIED
        else:
            raise DataVerificationError(
                f"{self.name}: the data of {self.spec_path} have sha256 {sha}, but the file pins {pinned}; "
                "update the pin if the change is intended (--allow-unverified-data runs it tagged UNVERIFIED)")
        cached = _load_user_task(self.spec_path, sha, verification)
        return TaskData(**{**cached.__dict__, "ids": list(cached.ids), "structures": list(cached.structures),
                           "folds": list(cached.folds)})

    def _read(self) -> tuple[list[str], list, np.ndarray]:
        """(ids, structures, targets) in the data set's row order."""
        import pandas as pd

        from bench.structure_io import read_structures

        spec = self.spec
        records = read_structures([self._path(spec.structures)])
        by_id = {r.id: r for r in records}
        if spec.targets is None:
            missing = [r for r in records if not r.info or spec.target not in r.info]
            if missing:
                r = missing[0]
                raise DataFormatError(f"{r.source}: structure {r.index} ({r.id!r}) has no property {spec.target!r} "
                                      f"({len(missing)} structure(s) lack it; {self.spec_path} names no targets CSV)")
            return [r.id for r in records], [r.structure for r in records], \
                np.array([r.info[spec.target] for r in records], dtype=object)
        csv = self._path(spec.targets)
        df = pd.read_csv(csv, dtype={spec.id_column: str})
        for column in (spec.id_column, spec.target):
            if column not in df.columns:
                raise DataFormatError(f"{csv}: has no column {column!r} (columns: {list(df.columns)})")
        ids = list(df[spec.id_column])
        dup = df[spec.id_column][df[spec.id_column].duplicated()].tolist()
        if dup:
            raise DataFormatError(f"{csv}: id(s) {dup[:5]} appear more than once")
        absent = [i for i in ids if i not in by_id]
        if absent:
            raise DataFormatError(f"{csv}: {len(absent)} id(s) have no structure in {self._path(spec.structures)}, "
                                  f"e.g. {absent[:5]}; known ids look like {list(by_id)[:3]}")
        extra = sorted(set(by_id) - set(ids))
        if extra:
            raise DataFormatError(f"{self._path(spec.structures)}: {len(extra)} structure(s) have no row in {csv}, "
                                  f"e.g. {extra[:5]}")
        return ids, [by_id[i].structure for i in ids], df[spec.target].to_numpy()

    def make_folds(self, ids: list[str], targets: np.ndarray, path: Path) -> tuple[list[Fold], str]:
        spec = self.spec.folds
        if spec.file is None:
            from sklearn.model_selection import KFold, StratifiedKFold

            splitter = (StratifiedKFold if self.problem_type == "classification" else KFold)(
                n_splits=spec.n_splits, shuffle=True, random_state=spec.seed)
            folds = [Fold(readonly_array(tr), readonly_array(te))
                     for tr, te in splitter.split(np.arange(len(ids)), targets)]
            kind = "StratifiedKFold" if self.problem_type == "classification" else "KFold"
            return folds, f"{kind}-{spec.n_splits}-shuffle-seed{spec.seed}"
        import pandas as pd

        split = self._path(spec.file)
        df = pd.read_csv(split, dtype={"id": str})
        if not {"id", "fold"} <= set(df.columns):
            raise DataFormatError(f"{split}: needs columns 'id' and 'fold' (has {list(df.columns)})")
        fold_of = dict(zip(df["id"], df["fold"]))
        missing = [i for i in ids if i not in fold_of]
        if missing:
            raise DataFormatError(f"{split}: {len(missing)} id(s) have no fold, e.g. {missing[:5]}")
        labels = np.array([int(fold_of[i]) for i in ids])
        n = int(labels.max()) + 1
        if labels.min() < 0 or n > MAX_FOLDS or sorted(set(labels)) != list(range(n)) or n < 2:
            raise DataFormatError(f"{split}: folds must be 0..k-1 with 2 <= k <= {MAX_FOLDS}, each used; "
                                  f"got {sorted(set(labels.tolist()))}")
        rows = np.arange(len(ids))
        folds = [Fold(readonly_array(rows[labels != k]), readonly_array(rows[labels == k])) for k in range(n)]
        return folds, f"split-file:{split.name}:{sha256_file(split)[:12]}"


def _task_from_spec(spec: UserTaskSpec, path: Path, n_samples: int) -> UserTask:
    return UserTask(name=spec.name, target=spec.target, unit=spec.unit, problem_type=spec.problem_type,
                    n_samples=n_samples, leaderboard_comparable=False,
                    description=spec.description or f"user task {path}", citation=spec.citation, spec_path=str(path))


@functools.lru_cache(maxsize=4)
def _load_user_task(spec_path: str, sha: str, verification: str) -> TaskData:
    # keyed on the file and the data's sha256: an edited data set is read again
    task = _task_from_spec(read_spec(spec_path), Path(spec_path), 0)
    ids, structures, raw = task._read()
    targets = task._convert_targets(np.asarray(raw), Path(task.spec_path))
    folds, fold_source = task.make_folds(ids, targets, Path(task.spec_path))
    return TaskData(task.name, ids, structures, targets, task.problem_type, folds, sha, Path(task.spec_path),
                    verification, fold_source)


def register_task_file(path: str | os.PathLike) -> str:
    """Register the task of ``path`` (idempotent for the same file); returns its name."""
    path = Path(path).resolve()
    spec = read_spec(path)
    if spec.name in TASKS:
        known = TASKS.get(spec.name)
        if isinstance(known, UserTask) and Path(known.spec_path) == path:
            return spec.name
        where = known.spec_path if isinstance(known, UserTask) else "a built-in task"
        raise ValueError(f"task file {path}: the name {spec.name!r} is taken by {where}; choose another name")
    n = len(_task_from_spec(spec, path, 0).load(allow_unverified=True).ids)  # read and check the data now
    TASKS.register(spec.name, _task_from_spec(spec, path, n))
    return spec.name


def register_task_files(paths: list[str] | tuple[str, ...]) -> list[str]:
    return [register_task_file(p) for p in paths]
