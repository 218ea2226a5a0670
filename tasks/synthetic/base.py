"""Synthetic tasks: data generated deterministically by the suite from physics code.

A :class:`SyntheticTask` has no file. Its :meth:`~SyntheticTask.load` calls the
task's generator with the task's seed, checks the size, hashes a canonical
serialisation of structures + targets + generator version (the ``sha256`` every
run is tagged with), and makes five folds with Matbench's recipe
(:func:`tasks.base.recipe_folds`). When rows come in groups (representations of one
crystal, mirror pairs) the recipe runs over groups, so a group never straddles a
train/test split. Generation is cached in-process (``lru_cache``) and, for slow
generators, on disk under ``bench.defaults.cache_dir()/synthetic/``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from tasks.base import (
    FOLD_SOURCE_RECIPE,
    DataFormatError,
    Fold,
    Task,
    TaskData,
    readonly_array,
    recipe_folds,
)

VARIANTS_OF_INTEREST = ("distance", "multi_edge", "lattice")


@dataclass(frozen=True)
class Generated:
    """What a generator returns: rows in order, with optional group labels.

    ids: [n] unique strings; structures: [n] pymatgen ``Structure``; targets: [n]
    float64 (0/1 for classification); groups: [n] int64 (rows of one group always
    share a fold) or ``None``.
    """

    ids: tuple[str, ...]
    structures: tuple
    targets: np.ndarray
    groups: np.ndarray | None = None


@dataclass
class SyntheticTaskData(TaskData):
    """``TaskData`` plus ``groups`` ([n] int64 or ``None``): rows with one label are one
    crystal (or one mirror pair) and always share a fold."""

    groups: np.ndarray | None = None


def make_structure(matrix, species, frac_coords) -> Structure:
    """A ``Structure`` built from fractional coordinates (float64).

    Every generator goes through here so that a structure rebuilt from the disk cache
    is bit-identical to the generated one (pymatgen keeps given Cartesian coordinates
    verbatim, so building from Cartesian ones would not round-trip).
    """
    return Structure(Lattice(np.asarray(matrix, dtype=np.float64).reshape(3, 3)), list(species),
                     np.asarray(frac_coords, dtype=np.float64).reshape(-1, 3))


def canonical_sha256(gen: Generated, generator: str, version: str, seed: int) -> str:
    """sha256 of a canonical JSON of generator/version/seed and every row.

    Floats enter rounded (lattice 1e-9 Å, fractional coordinates 1e-12, targets 12
    significant digits), so last-bit differences between machines' float libraries
    do not change the hash while any real change of the data does.
    """
    digest = hashlib.sha256(json.dumps([generator, version, int(seed)]).encode())
    for i, (rid, s, y) in enumerate(zip(gen.ids, gen.structures, gen.targets)):
        row = [
            rid,
            [site.specie.symbol for site in s],
            np.round(s.lattice.matrix, 9).tolist(),
            np.round(s.frac_coords, 12).tolist(),
            float(f"{float(y):.12g}"),
            None if gen.groups is None else int(gen.groups[i]),
        ]
        digest.update(json.dumps(row).encode())
    return digest.hexdigest()


def group_folds(targets: np.ndarray, groups: np.ndarray | None, stratified: bool) -> list[Fold]:
    """Matbench's recipe over rows, or over groups (then expanded to their rows).

    With groups, the recipe splits the sorted unique group labels (stratified on each
    group's first target), and every row follows its group.
    """
    if groups is None:
        return recipe_folds(targets, stratified)
    labels, first = np.unique(groups, return_index=True)
    folds = []
    for fold in recipe_folds(targets[first], stratified):
        test_rows = np.flatnonzero(np.isin(groups, labels[fold.test]))
        train_rows = np.flatnonzero(np.isin(groups, labels[fold.train]))
        folds.append(Fold(readonly_array(train_rows), readonly_array(test_rows)))
    return folds


# --- on-disk cache ---------------------------------------------------------
def _cache_path(generator: str, version: str, seed: int) -> Path:
    from bench.defaults import cache_dir

    return cache_dir() / "synthetic" / f"{generator}-v{version}-seed{seed}.npz"


def save_generated(gen: Generated, path: Path, sha: str) -> None:
    """Write ``gen`` as flat arrays (no pickle) through a temp file and ``os.replace``."""
    counts = np.array([len(s) for s in gen.structures], dtype=np.int64)
    arrays = {
        "ids": np.array(gen.ids, dtype=str),
        "counts": counts,
        "lattices": np.stack([s.lattice.matrix for s in gen.structures]).astype(np.float64),
        "z": np.concatenate([[site.specie.Z for site in s] for s in gen.structures]).astype(np.int64),
        "frac": np.concatenate([s.frac_coords for s in gen.structures]).astype(np.float64),
        "targets": np.asarray(gen.targets, dtype=np.float64),
        "sha256": np.array(sha),
    }
    if gen.groups is not None:
        arrays["groups"] = np.asarray(gen.groups, dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_generated(path: Path) -> tuple[Generated, str]:
    """Read what :func:`save_generated` wrote; returns the data and its stored sha256."""
    from pymatgen.core.periodic_table import Element

    with np.load(path, allow_pickle=False) as f:  # each f[key] reads (and unzips) again: once only
        arrays = {key: f[key] for key in f.files}
    ends = np.cumsum(arrays["counts"])
    starts = ends - arrays["counts"]
    symbol = {int(z): Element.from_Z(int(z)).symbol for z in np.unique(arrays["z"])}
    symbols = [symbol[int(z)] for z in arrays["z"]]
    frac = arrays["frac"]
    structures = tuple(make_structure(m, symbols[a:b], frac[a:b])
                       for m, a, b in zip(arrays["lattices"], starts, ends))
    gen = Generated(tuple(str(i) for i in arrays["ids"]), structures, arrays["targets"], arrays.get("groups"))
    return gen, str(arrays["sha256"])


# --- the task ----------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticTask(Task):
    """A task whose rows come from ``generate(seed)``; see the module docstring.

    Probe tasks state their ``question``; whether an architecture on a variant can in
    theory answer it is derived per (architecture, variant) in ``bench.report.theory``.
    """

    generator: str = ""
    version: str = ""
    seed: int = 0
    generate: Callable[[int], Generated] | None = field(default=None, compare=False, repr=False)
    disk_cache: bool = False
    question: str = ""  # what "can" means for bench.report.theory, e.g. "tell cells apart by c"

    @property
    def verification_label(self) -> str:
        return f"generated: {self.generator}@{self.version} seed {self.seed}"

    def locate(self, data_dir: str | os.PathLike | None = None) -> Path:
        """A label, not a file: ``generated/<generator>@<version>/seed-<seed>``."""
        return Path("generated") / f"{self.generator}@{self.version}" / f"seed-{self.seed}"

    def how_to_obtain(self) -> str:
        return f"{self.name} is generated by the suite ({self.verification_label}); nothing to obtain."

    def load(self, allow_unverified: bool = False, data_dir: str | os.PathLike | None = None) -> SyntheticTaskData:
        """Generate (or read the cache), hash and fold; arguments are accepted and ignored."""
        cached = _load_synthetic(self)
        return SyntheticTaskData(**{**cached.__dict__, "ids": list(cached.ids),
                                    "structures": list(cached.structures), "folds": list(cached.folds)})

    def generate_rows(self) -> tuple[Generated, str]:
        """The generated rows and their sha256, through the disk cache when enabled."""
        if self.generate is None:
            raise NotImplementedError(f"{self.name}: no generator")
        path = _cache_path(self.generator, self.version, self.seed) if self.disk_cache else None
        if path is not None and path.is_file():
            try:
                gen, stored = load_generated(path)
                if canonical_sha256(gen, self.generator, self.version, self.seed) == stored:
                    return gen, stored
            except (OSError, ValueError, KeyError):
                pass  # unreadable or stale: regenerate and overwrite
        gen = self.generate(self.seed)
        sha = canonical_sha256(gen, self.generator, self.version, self.seed)
        if path is not None:
            save_generated(gen, path, sha)
        return gen, sha

    def _build_synthetic(self) -> SyntheticTaskData:
        gen, sha = self.generate_rows()
        n = len(gen.ids)
        if not (n == len(gen.structures) == len(gen.targets) == self.n_samples):
            raise DataFormatError(f"{self.name}: generator gave {n} rows; the task has {self.n_samples}")
        if len(set(gen.ids)) != n:
            raise DataFormatError(f"{self.name}: generated ids are not unique")
        targets = self._convert_targets(np.asarray(gen.targets), self.locate())
        groups = None if gen.groups is None else readonly_array(gen.groups)
        folds = group_folds(targets, groups, self.problem_type == "classification")
        fold_source = FOLD_SOURCE_RECIPE + ("-grouped" if groups is not None else "")
        return SyntheticTaskData(self.name, list(gen.ids), list(gen.structures), targets, self.problem_type,
                                 folds, sha, self.locate(), self.verification_label, fold_source, groups)


@functools.lru_cache(maxsize=16)
def _load_synthetic(task: SyntheticTask) -> SyntheticTaskData:
    return task._build_synthetic()
