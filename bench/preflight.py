"""Check everything that can be checked before the first cell starts, and store nothing.

``bench ablation`` and ``bench train`` call :func:`preflight` after the configuration has
validated (names, hyperparameter values, seeds, search spaces: :mod:`bench.config`). It
fails with a :class:`PreflightError` (a ``ValueError``: exit code 2) naming the item:

- folders that will be written (results, graph cache, the local MLflow store and its
  artifacts, the Optuna storage) exist or can be created, and accept a file;
- the tracking URI has a scheme MLflow knows, and an HTTP server answers;
- each task loads, each selected fold has test rows and a training fold that splits into
  training and validation parts, and its data passes :mod:`tasks.validation` (or, with
  ``allow_nonphysical_data``, the findings are printed as a warning);
- each architecture builds with the grid's hyperparameters and returns a finite
  ``[num_graphs, 1]`` tensor for a batch of two tiny crystals, on every variant of the grid.

Nothing here writes to the stores or the cache (folder probes create and delete a
temporary file; a missing folder is judged by its nearest existing parent).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from bench import defaults
from bench.config import GridConfig


class PreflightError(ValueError):
    """A bad input found before anything ran."""


def check_writable(path: Path, what: str) -> None:
    """``path`` is (or can become) a folder that accepts files; else PreflightError naming it."""
    path = Path(path).expanduser().absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise PreflightError(f"{what} {path}: {probe} is not a folder")
    try:  # a real write, not os.access: it also sees read-only mounts (and root ignores modes)
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".bench-write-test-"):
            pass
    except OSError as err:
        raise PreflightError(f"{what} {path}: cannot write in {probe} ({err.strerror or err})") from None


def _known_schemes() -> set[str]:
    try:  # MLflow's own registry of tracking stores (entry points included)
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        return set(_tracking_store_registry._registry)
    except (ImportError, AttributeError):
        return {"", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks"}


def check_tracking_uri(uri: str) -> None:
    """A tracking URI MLflow can open: a known scheme, a writable local store, a reachable server."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.split("+", 1)[0]
    known = _known_schemes()
    if scheme not in known and not (len(scheme) == 1 and os.name == "nt"):
        raise PreflightError(f"tracking URI {uri!r}: unknown scheme {scheme!r}; MLflow knows "
                             f"{', '.join(sorted(s for s in known if s))}")
    if scheme == "sqlite":
        path = uri.split("///", 1)[-1] if "///" in uri else ""
        if not path or path == ":memory:":
            raise PreflightError(f"tracking URI {uri!r}: needs a file, e.g. sqlite:///mlflow.db")
        check_writable(Path(path).parent, "tracking store folder")
        check_writable(defaults.artifact_root(uri), "MLflow artifact folder")
    elif scheme in ("", "file"):
        check_writable(Path(parsed.path or uri), "tracking store folder")
    elif scheme in ("http", "https"):
        import requests

        try:
            requests.get(uri.rstrip("/") + "/health", timeout=10)
        except requests.RequestException as err:
            raise PreflightError(f"tracking URI {uri!r}: no MLflow server answers ({type(err).__name__})") from None


def check_storage(url: str) -> None:
    from bench.claims import sqlite_path

    path = sqlite_path(url)
    if path is not None:
        check_writable(path.parent, "Optuna storage folder")


def check_data(cfg: GridConfig) -> dict:
    """Load every task of ``cfg``; check its folds and physical sanity. Returns task -> TaskData."""
    import tasks
    from bench.training import split_train_val
    from tasks import validation

    loaded = {}
    for name in cfg.tasks:
        data = tasks.get_task(name).load(allow_unverified=cfg.allow_unverified_data)
        for fold in cfg.folds:
            if fold >= len(data.folds):
                raise PreflightError(f"{name}: has {len(data.folds)} folds, no fold {fold}")
            f = data.folds[fold]
            if len(f.test) == 0:
                raise PreflightError(f"{name} fold {fold}: no test rows ({len(data)} rows in the task)")
            for seed in sorted({s for a in cfg.architectures for s in cfg.cell_seeds(name, a)}):
                try:
                    split_train_val(f.train, cfg.train.val_fraction, seed, getattr(data, "groups", None))
                except ValueError as err:
                    raise PreflightError(f"{name} fold {fold}: {err} ({len(data)} rows in the task)") from None
        found = validation.findings(data, tasks.get_task(name).target_range)
        if found:
            text = validation.describe(name, found)
            if not cfg.allow_nonphysical_data:
                raise PreflightError(f"{text}\nFix the data, or run it anyway with --allow-nonphysical-data.")
            print(f"warning: {text}", file=sys.stderr)
        loaded[name] = data
    return loaded


def _tiny_batch(variant: str, cfg: GridConfig):
    """Two small crystals (rock salt NaCl, 2 atoms; bcc Fe, 1 atom) as one batch of ``variant`` graphs."""
    from pymatgen.core import Lattice, Structure
    from torch_geometric.data import Batch

    from bench.graphs import build_graph

    crystals = [Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
                Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])]
    return Batch.from_data_list([build_graph(s, variant, cutoff=cfg.graph.cutoff,
                                             max_neighbors=cfg.graph.max_neighbors, structure_id=f"preflight-{i}")
                                 for i, s in enumerate(crystals)])


def check_models(cfg: GridConfig) -> None:
    """Build each architecture with its hyperparameters; its output on two tiny crystals must be a
    finite [2, 1] tensor for every variant of the grid."""
    import torch

    import architectures
    from bench.training import ModelOutputError, check_output, configure_torch

    configure_torch(cfg.threads, "cpu")
    batches = {v: _tiny_batch(v, cfg) for v in cfg.all_variants}
    for arch in cfg.architectures:
        hparams = cfg.model_hparams(arch)
        try:
            torch.manual_seed(0)
            model = architectures.create(arch, out_dim=1, **hparams)
        except Exception as err:
            raise PreflightError(f"architecture {arch!r} cannot be built with hyperparameters {hparams}: "
                                 f"{type(err).__name__}: {err}") from None
        model.eval()
        for variant, batch in batches.items():
            where = f"pre-flight check of {arch} on {variant} graphs"
            try:
                with torch.no_grad():
                    out = model(batch.clone())
                check_output(out, batch.num_graphs, 1, arch, where)
            except ModelOutputError as err:
                raise PreflightError(str(err)) from None
            except Exception as err:
                raise PreflightError(f"{where}: the forward pass failed with hyperparameters {hparams}: "
                                     f"{type(err).__name__}: {err}") from None


def preflight(cfg: GridConfig, tracking_uri: str | None, storage: str | None,
              results_dir: Path | None = None) -> dict:
    """Every check above, cheapest first; returns task -> TaskData. Raises PreflightError."""
    uri = tracking_uri or defaults.tracking_uri()
    if results_dir is not None:
        check_writable(Path(results_dir) / cfg.experiment, "results folder")
    check_writable(defaults.cache_dir(), "graph cache folder (BENCH_CACHE)")
    check_tracking_uri(uri)
    check_storage(storage or defaults.optuna_storage(uri))
    loaded = check_data(cfg)
    check_models(cfg)
    return loaded
