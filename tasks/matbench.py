"""The nine Matbench v0.1 structure tasks, with Matbench's own folds.

Metadata (target, unit, problem type, size, citations) comes from the installed
``matbench`` package's metadata file merged with matminer's dataset metadata, exactly
as ``matbench.metadata.mbv01_metadata`` builds it (read directly, because importing
``matbench.metadata`` also parses the 46 MB validation file). Folds are the ids in
``matbench.metadata.mbv01_validation``; ids are assigned to rows the way
``matbench.data_ops.load`` does it.

Where a file is looked for, in order (``data_dir``, when given, replaces the list):
vendored ``tasks/data/matbench/``, ``$MATBENCH_DATA``, matminer's data dir
(``$MATMINER_DATA`` or the matminer package folder); absent everywhere, matminer's
download is tried (a short reachability probe first, so offline fails in seconds).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.defaults import VENDORED_DATA_DIR
from tasks.base import (
    TASKS,
    DataFormatError,
    DataUnavailableError,
    Fold,
    Task,
    TaskData,
    VerifiedCopy,
    readonly_array,
)

VENDORED_MATBENCH_DIR = VENDORED_DATA_DIR / "matbench"
FOLD_SOURCE_MATBENCH = "matbench-validation"

_README = "tasks/data/matbench/README.md"
# Rebuilt copies (see the README): same rows, order and targets as matminer's files,
# checked by row count, Matbench's MAD and ALIGNN's official predictions.
VERIFIED_COPIES: dict[str, tuple[VerifiedCopy, ...]] = {
    "matbench_jdft2d": (VerifiedCopy(
        "6842b5d8442d61e5eac0bb0d9e369ff689394c7b235423aeb19029cdf75e3e49",
        "rebuilt from matminer CSV export Zhang-NJ-Lab/Datasets@6a69f11; 636 rows, "
        f"MAD 67.2020, ALIGNN official predictions MAE 43.41; {_README}"),),
    "matbench_phonons": (VerifiedCopy(
        "a559027ba45230bfd253c0c9cf5a062ddd9a7640f28156810c951f83b6c504a1",
        "rebuilt from matminer CSV export Zhang-NJ-Lab/Datasets@6a69f11; 1265 rows, "
        f"MAD 323.7870, ALIGNN official predictions MAE 29.54; {_README}"),),
}


def matbench_metadata() -> dict[str, dict]:
    """``mbv01_metadata`` as the matbench package builds it, without the splits."""
    from matbench.constants import MBV01_DATASET_METADATA_PATH
    from matminer.datasets.utils import _load_dataset_dict

    with open(MBV01_DATASET_METADATA_PATH, encoding="utf-8") as fh:
        meta = json.load(fh)
    matminer = _load_dataset_dict()
    for name in meta:
        meta[name].update(matminer[name])
    return meta


def matbench_ids(dataset: str, index) -> list[str]:
    """Matbench's ids for a frame's index, as ``matbench.data_ops.load`` makes them."""
    width = math.floor(math.log(len(index), 10)) + 1
    prefix = dataset.replace("matbench", "mb").replace("_", "-")
    return [f"{prefix}-{int(i) + 1:0{width}d}" for i in index]


def matminer_data_home() -> Path:
    """matminer's default data folder (``$MATMINER_DATA`` or its package folder)."""
    from matminer.datasets.utils import _get_data_home

    return Path(_get_data_home())


def _matminer_download(name: str, data_home: Path) -> Path:
    """Fetch ``name`` into ``data_home`` with matminer; raises on any failure."""
    import requests
    from matminer.datasets.utils import _validate_dataset

    meta = matbench_metadata()[name]
    # matminer's own request has no timeout; this probe makes "offline" fail fast
    requests.head(meta["url"], timeout=10, allow_redirects=True).raise_for_status()
    path = data_home / f"{name}.{meta['file_type']}"
    # retries=0: matminer would otherwise wait 60 s per retry on a hash mismatch
    _validate_dataset(str(path), meta["url"], meta["hash"], True, n_retries_allowed=0)
    return path


@dataclass(frozen=True)
class MatbenchStructureTask(Task):
    """A Matbench v0.1 structure task; ``url`` is matminer's download address."""

    url: str = ""
    file_name: str = ""

    def how_to_obtain(self) -> str:
        return (
            f"The genuine file is {self.url} (matminer.datasets.load_dataset({self.name!r}) "
            f"on a machine with internet); put {self.file_name} in a folder and set "
            "MATBENCH_DATA to it."
        )

    def candidates(self, data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path | None]]:
        """(label, folder) pairs searched in order; folder None = variable unset."""
        if data_dir is not None:
            return [("data_dir argument", Path(data_dir))]
        env = os.environ.get("MATBENCH_DATA")
        return [
            ("vendored", VENDORED_MATBENCH_DIR),
            ("$MATBENCH_DATA", Path(env) if env else None),
            ("matminer data dir", matminer_data_home()),
        ]

    def locate(self, data_dir: str | os.PathLike | None = None) -> Path:
        candidates = self.candidates(data_dir)
        for _, folder in candidates:
            if folder is not None and (folder / self.file_name).is_file():
                return folder / self.file_name
        env = os.environ.get("MATBENCH_DATA")
        home = Path(data_dir) if data_dir is not None else Path(env) if env else matminer_data_home()
        try:
            return _matminer_download(self.name, home)
        except Exception as exc:  # offline, DNS, HTTP error, hash mismatch, permissions
            partial = home / self.file_name
            if partial.is_file():
                partial.unlink()
            looked = "\n".join(
                f"  {label}: {folder / self.file_name if folder else '(not set)'}"
                for label, folder in candidates
            )
            raise DataUnavailableError(
                f"{self.name}: the data file {self.file_name} is not on this machine.\n"
                f"Looked in:\n{looked}\n"
                f"Downloading it from {self.url} failed (offline?): "
                f"{type(exc).__name__}: {exc}\n"
                f"To provide it: get {self.file_name} (matminer.datasets.load_dataset"
                f"({self.name!r}) on a machine with internet, or download {self.url}), "
                "put it in a folder and set MATBENCH_DATA to that folder."
            ) from exc

    def make_ids(self, df) -> list[str]:
        return matbench_ids(self.name, df.index)

    def make_folds(self, ids: list[str], targets: np.ndarray, path: Path) -> tuple[list[Fold], str]:
        if len(ids) != self.n_samples:
            # only reachable with allow_unverified: Matbench's ids cannot describe this file
            return super().make_folds(ids, targets, path)
        from matbench.metadata import mbv01_validation

        position = {mbid: row for row, mbid in enumerate(ids)}
        folds = []
        splits = mbv01_validation.splits[self.name]
        for key in sorted(splits, key=lambda k: int(k.split("_")[-1])):
            try:
                folds.append(Fold(readonly_array([position[i] for i in splits[key].train]),
                                  readonly_array([position[i] for i in splits[key].test])))
            except KeyError as exc:
                raise DataFormatError(
                    f"{path}: Matbench id {exc.args[0]} ({key}) matches no row; "
                    "is the file's index the original row numbering?"
                ) from exc
        return folds, FOLD_SOURCE_MATBENCH


def _register_all() -> list[str]:
    names = []
    for name, meta in sorted(matbench_metadata().items()):
        if meta["input_type"] != "structure":
            continue
        TASKS.register(name, MatbenchStructureTask(
            name=name,
            target=meta["target"],
            unit=meta["unit"] or "",  # None for the classification task
            problem_type=meta["task_type"],
            n_samples=int(meta["n_samples"]),
            leaderboard_comparable=True,
            description=meta["description"],
            citation="\n\n".join(meta["bibtex_refs"]),
            upstream_sha256=meta["hash"],
            verified_copies=VERIFIED_COPIES.get(name, ()),
            url=meta["url"],
            file_name=f"{name}.{meta['file_type']}",
        ))
        names.append(name)
    return names


MATBENCH_TASKS: list[str] = _register_all()


def matbench_recorder(task_data: TaskData):
    """A ``matbench.task.MatbenchTask`` whose df is ``task_data`` (nothing downloaded).

    Predictions for ``recorder.record(fold, preds)`` go in the order of
    ``recorder.get_test_data(fold, include_target=False)``, which is the order of
    ``task_data.folds[fold].test``.
    """
    import pandas as pd
    from matbench.constants import MBID_KEY
    from matbench.task import MatbenchTask

    task = TASKS.get(task_data.name)
    if not isinstance(task, MatbenchStructureTask):
        raise ValueError(
            f"{task_data.name} is not a Matbench task; the Matbench recorder only takes "
            f"one of: {', '.join(MATBENCH_TASKS)}"
        )
    if task_data.fold_source != FOLD_SOURCE_MATBENCH:
        raise ValueError(
            f"{task_data.name} from {task_data.source} was loaded with {task_data.fold_source} "
            "folds, not Matbench's (its rows do not match Matbench's); it cannot be recorded."
        )
    recorder = MatbenchTask(task.name, autoload=False)
    targets = task_data.targets.astype(bool) if task.problem_type == "classification" \
        else np.array(task_data.targets, dtype=np.float64)
    recorder.df = pd.DataFrame(
        {recorder.metadata.input_type: task_data.structures, recorder.metadata.target: targets},
        index=pd.Index(task_data.ids, name=MBID_KEY),
    )
    return recorder


__all__ = ["MATBENCH_TASKS", "MatbenchStructureTask", "VERIFIED_COPIES", "matbench_ids",
           "matbench_metadata", "matbench_recorder"]
