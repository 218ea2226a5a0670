"""Executors: where the units of a grid (one fold of one task x architecture x variant) run.

- ``local``: a process pool sized to the machine (``executor.workers``, default one per
  core), ``executor.threads`` torch threads per worker (default 1). With one worker, or one
  unit left to do, the unit runs in this process.
- ``ray``: one Ray task per unit on an existing cluster (``executor.ray_address``, e.g.
  ``auto`` or ``ray://head:10001``; none starts a local instance), a GPU per task when the
  cluster has GPUs.

Workers coordinate only through the shared stores: the Optuna storage (studies, cell
claims) and the MLflow tracking server, so any mix of executors and machines may work on
one grid at once.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from bench.config import GridConfig

def plugin_modules(cfg: GridConfig) -> list[str]:
    """Modules that registered the grid's architectures and variants: workers import them too."""
    import architectures
    from bench.graphs import VARIANTS

    mods = {architectures.REGISTRY.get(a).cls.__module__ for a in cfg.architectures}
    mods |= {getattr(VARIANTS.get(v), "__module__", "") for v in cfg.variants}
    return sorted(m for m in mods if m and not m.startswith(("architectures", "bench")))


def _init_worker(threads: int, modules: list[str]) -> None:
    import torch

    torch.set_num_threads(threads)
    for module in modules:
        importlib.import_module(module)


def _work(unit, cfg: GridConfig, tracking_uri: str | None, storage: str, threads: int | None = None,
          modules: list[str] | None = None):
    if threads is not None:
        _init_worker(threads, modules or [])
    from bench.unit import run_unit

    return run_unit(unit, cfg, tracking_uri, storage, progress=False)


def pending_units(units: list, cfg: GridConfig, tracking_uri: str | None) -> list:
    """Units with at least one unfinished cell (a cheap look-up in MLflow, no training)."""
    from bench.cells import cell_identity, load_task
    from bench.tracking import Tracker

    tracker = Tracker(cfg.experiment, tracking_uri)
    finished = {r.data.tags.get("bench.cell_key") for r in tracker.search("attributes.status = 'FINISHED'")}
    out = []
    for unit in units:
        sha = load_task(unit.task, cfg).sha256
        if any(cell_identity(c, cfg, sha)[2] not in finished for c in unit.cells()):
            out.append(unit)
    return out


def run_units(units: list, cfg: GridConfig, tracking_uri: str | None, storage: str,
              progress: bool = True) -> Iterator[tuple[object, object]]:
    """Yield ``(unit, outcomes or the exception it raised)`` as units finish, in any order."""
    from bench.cells import DUMMY
    from bench.unit import run_unit

    for unit in units:  # instant: training-fold means
        if unit.architecture == DUMMY:
            yield unit, _guard(lambda u=unit: run_unit(u, cfg, tracking_uri, storage, progress=False))
    models = [u for u in units if u.architecture != DUMMY]
    units = pending_units(models, cfg, tracking_uri)
    for unit in models:  # finished: reported as skipped, no worker needed
        if unit not in units:
            yield unit, _guard(lambda u=unit: run_unit(u, cfg, tracking_uri, storage, progress=False))
    if cfg.executor.kind == "ray":
        yield from _run_ray(units, cfg, tracking_uri, storage)
        return
    workers = min(cfg.executor.workers or os.cpu_count() or 1, len(units))
    if workers <= 1:
        for unit in units:
            yield unit, _guard(lambda u=unit: run_unit(u, cfg, tracking_uri, storage, progress))
        return
    # spawn, not fork: a forked torch/OpenMP runtime can hang in the child
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                             initargs=(cfg.executor.threads, plugin_modules(cfg))) as pool:
        futures = {pool.submit(_work, unit, cfg, tracking_uri, storage): unit for unit in units}
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    unit = futures.pop(future)
                    error = future.exception()
                    yield unit, error if error is not None else future.result()
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            raise


def _guard(call):
    try:
        return call()
    except Exception as err:  # reported per unit; Ctrl-C still stops the grid
        return err


def _run_ray(units: list, cfg: GridConfig, tracking_uri: str | None, storage: str) -> Iterator[tuple[object, object]]:
    try:
        import ray
    except ImportError as err:
        raise ImportError("the ray executor needs Ray: pip install -e '.[cluster]'") from err
    if not ray.is_initialized():
        ray.init(address=cfg.executor.ray_address, ignore_reinit_error=True, log_to_driver=False)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    task = ray.remote(_work).options(num_cpus=cfg.executor.threads, num_gpus=gpus, max_retries=0)
    modules = plugin_modules(cfg)
    refs = {task.remote(unit, cfg, tracking_uri, storage, cfg.executor.threads, modules): unit for unit in units}
    while refs:
        done, _ = ray.wait(list(refs), num_returns=1)
        for ref in done:
            unit = refs.pop(ref)
            try:
                yield unit, ray.get(ref)
            except Exception as err:
                yield unit, err
