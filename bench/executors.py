"""Executors: where the units of a grid (one fold of one task x architecture x variant) run.

- ``local``: a process pool sized to the machine (``executor.workers``, default one per
  core). With one worker, or one unit left to do, the unit runs in this process. Every cell,
  wherever it runs, trains with ``executor.threads`` torch threads (default 1).
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
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from bench import interrupts
from bench.config import GridConfig


def plugin_modules(cfg: GridConfig) -> list[str]:
    """Modules that registered the grid's architectures and variants: workers import them too."""
    import architectures
    from bench.graphs import VARIANTS

    mods = {architectures.REGISTRY.get(a).cls.__module__ for a in cfg.architectures}
    mods |= {getattr(VARIANTS.get(v), "__module__", "") for v in cfg.all_variants}
    return sorted(m for m in mods if m and not m.startswith(("architectures", "bench")))


def _init_worker(threads: int, modules: list[str], stop=None, pool: bool = True) -> None:
    from bench.training import configure_torch

    if pool:  # Ctrl-C is the main process's to handle (see bench.interrupts); Ray has its own
        interrupts.install_worker(stop)
    configure_torch(threads, "cpu")  # fit() sets them again: one rule for every path
    for module in modules:
        importlib.import_module(module)


def _work(unit, cfg: GridConfig, tracking_uri: str | None, storage: str, threads: int | None = None,
          modules: list[str] | None = None):
    if threads is not None:  # a Ray task: no pool initializer ran
        _init_worker(threads, modules or [], pool=False)
    from bench.unit import run_unit

    try:
        with interrupts.busy():
            return run_unit(unit, cfg, tracking_uri, storage, progress=False)
    except KeyboardInterrupt:
        # told to stop now (SIGTERM): the cell's run is KILLED and its claim released by the
        # context managers that this exception unwound; leave without taking more work
        os._exit(130)


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
    """Yield ``(unit, outcomes or the exception it raised)`` as units finish, in any order.

    Once :func:`bench.interrupts.stop_requested` (first Ctrl-C), no unit starts: each one not
    started is yielded with an :class:`~bench.interrupts.Interrupted` error.
    """
    from bench.cells import DUMMY
    from bench.unit import run_unit

    def in_process(unit):
        if interrupts.stop_requested():
            return interrupts.Interrupted("not started")
        return _guard(lambda: run_unit(unit, cfg, tracking_uri, storage, progress))

    for unit in units:  # instant: training-fold means
        if unit.architecture == DUMMY:
            yield unit, in_process(unit)
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
            yield unit, in_process(unit)
        return
    yield from _run_pool(units, cfg, tracking_uri, storage, workers)


def _run_pool(units: list, cfg: GridConfig, tracking_uri: str | None, storage: str,
              workers: int) -> Iterator[tuple[object, object]]:
    """At most ``workers`` units in flight, so a stop request leaves nothing queued behind them."""
    # spawn, not fork: a forked torch/OpenMP runtime can hang in the child
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.RawValue("b", 0)  # shared memory, no semaphore to leak when the grid is cut short
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(cfg.threads, plugin_modules(cfg), stop))
    queue = deque(units)
    running: dict = {}
    try:
        while queue or running:
            if interrupts.stop_requested():
                stop.value = 1  # workers finish their current cell and start no other
                while queue:
                    yield queue.popleft(), interrupts.Interrupted("not started")
            while queue and len(running) < workers:
                unit = queue.popleft()
                running[pool.submit(_work, unit, cfg, tracking_uri, storage)] = unit
            if not running:
                break
            done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                unit = running.pop(future)
                error = future.exception()
                yield unit, error if error is not None else future.result()
    except BaseException:  # second Ctrl-C (or the consumer stopped): end the workers' cells now
        stop.value = 1
        _stop_workers(pool)
        raise
    pool.shutdown(wait=True)


def _stop_workers(pool: ProcessPoolExecutor, grace_s: float = 30.0) -> None:
    """SIGTERM every worker until it exits (a busy one marks its cell KILLED, releases its claim
    and exits; an idle one just exits), for up to ``grace_s``; then SIGKILL what is left (its
    claims are taken over at once on the next run: dead PIDs)."""
    processes = list(getattr(pool, "_processes", {}).values())  # CPython keeps them here
    deadline = time.monotonic() + grace_s
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        for proc in processes:
            if proc.is_alive():
                proc.terminate()  # repeated: one that lands in a __del__ is swallowed there
        for proc in processes:
            proc.join(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
    for proc in processes:
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
    pool.shutdown(wait=True, cancel_futures=True)  # the workers are gone: this only cleans up


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
    task = ray.remote(_work).options(num_cpus=cfg.threads, num_gpus=gpus, max_retries=0)
    modules = plugin_modules(cfg)
    refs = {task.remote(unit, cfg, tracking_uri, storage, cfg.threads, modules): unit for unit in units}
    cancelled = False
    try:
        while refs:
            if interrupts.stop_requested() and not cancelled:
                # Ray cannot tell queued tasks from running ones here: cancel all; a running one
                # gets KeyboardInterrupt, which ends its cell KILLED and releases its claim
                for ref in refs:
                    ray.cancel(ref)
                cancelled = True
            done, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            for ref in done:
                unit = refs.pop(ref)
                try:
                    yield unit, ray.get(ref)
                except Exception as err:
                    yield unit, interrupts.Interrupted(str(err)) if cancelled else err
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
