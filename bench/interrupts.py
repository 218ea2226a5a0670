"""Ctrl-C for grids: the first interrupt stops handing out work, the second ends at once.

- :func:`graceful` (``bench ablation``): the first SIGINT only sets the stop flag; workers
  finish the cells they are training, start no new one, and the grid ends with exit code
  130. A second SIGINT raises ``KeyboardInterrupt`` in the main process at once (pool
  workers are then told to stop with SIGTERM, see :mod:`bench.executors`).
- :func:`immediate` (``bench train``, a single cell): the first SIGINT raises at once.
- :func:`install_worker` (a pool worker): SIGINT is ignored (a terminal's Ctrl-C reaches the
  whole process group; the main process decides), SIGTERM raises ``KeyboardInterrupt``, and
  the stop flag is shared with the main process through a multiprocessing event.

Under every handler, :func:`deferred` postpones the interrupt to the end of a short critical
section, so a run's final status and the release of its claim are never cut in half: an
interrupted cell ends KILLED with its claim released, a finished one FINISHED.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_STOP = threading.Event()
_shared_stop: Any = None  # in pool workers: a shared byte (multiprocessing RawValue), 1 = stop
_busy = False  # a pool worker is inside a unit (else SIGTERM simply ends it)
_last_raise = 0.0  # monotonic time of the last stop-now KeyboardInterrupt
#: a repeated stop-now signal within this many seconds is taken as the same one (its
#: KeyboardInterrupt is still unwinding through clean-up code that must not be cut)
REPEAT_S = 3.0
_depth = 0  # nesting depth of deferred() in the main thread
_pending = False  # an interrupt arrived inside deferred()
_stop_now = False  # the second interrupt (or a worker's SIGTERM) arrived


class Interrupted(Exception):
    """Work that was not started because the grid was asked to stop."""


class GridInterrupted(KeyboardInterrupt):
    """A grid that stopped after the first interrupt, once its running cells were over."""


def stop_requested() -> bool:
    """True once the first interrupt arrived (in this process or, for a worker, in the main one)."""
    return _STOP.is_set() or (_shared_stop is not None and bool(_shared_stop.value))


def request_stop() -> None:
    _STOP.set()


def reset() -> None:
    """Forget an earlier stop request (a new grid in the same process, tests)."""
    global _pending, _stop_now
    _STOP.clear()
    _pending = _stop_now = False


def checkpoint() -> None:
    """Raise ``KeyboardInterrupt`` if a stop-now interrupt arrived and was swallowed.

    A signal handler's exception can land in code that ignores it (an object's ``__del__``,
    for instance tqdm's, prints "Exception ignored" and carries on); the training loops call
    this once per batch, so the cell still ends within a batch.
    """
    if _stop_now and _depth == 0 and threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt


def _raise_or_defer(frame=None) -> None:
    global _pending, _stop_now, _last_raise
    repeated = _stop_now and time.monotonic() - _last_raise < REPEAT_S
    _stop_now = True
    if _depth > 0:
        _pending = True
        return
    if repeated or (frame is not None and frame.f_code.co_name == "__del__"):
        return  # an exception raised in a finaliser is swallowed: checkpoint() or the next signal raises
    _last_raise = time.monotonic()
    raise KeyboardInterrupt


@contextmanager
def deferred() -> Iterator[None]:
    """Hold an interrupt that arrives inside the block until the block is done (main thread only)."""
    global _depth, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            _pending = False
            raise KeyboardInterrupt


@contextmanager
def _handlers(handlers: dict[int, Callable]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be handled in the main thread; leave Python's defaults
        return
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def graceful(message: Callable[[], str] | None = None) -> Iterator[None]:
    """First SIGINT: stop handing out work (print ``message()``); second: ``KeyboardInterrupt``."""
    reset()

    def on_sigint(signum, frame) -> None:
        if not stop_requested():
            request_stop()
            text = message() if message else "interrupt: finishing the running cells; Ctrl-C again to stop now"
            print(f"\n{text}", file=sys.stderr, flush=True)
            return
        _raise_or_defer(frame)

    with _handlers({signal.SIGINT: on_sigint}):
        yield


@contextmanager
def immediate() -> Iterator[None]:
    """SIGINT raises ``KeyboardInterrupt`` at once, except inside :func:`deferred`."""
    reset()

    def on_sigint(signum, frame) -> None:
        request_stop()
        _raise_or_defer(frame)

    with _handlers({signal.SIGINT: on_sigint}):
        yield


@contextmanager
def busy() -> Iterator[None]:
    """A pool worker's unit: SIGTERM interrupts it (outside, SIGTERM just ends the worker)."""
    global _busy
    _busy = True
    try:
        yield
    finally:
        _busy = False


def install_worker(shared_stop: Any = None) -> None:
    """In a pool worker: ignore SIGINT, turn SIGTERM into ``KeyboardInterrupt`` inside a unit (an
    idle worker just exits), share the stop flag (``shared_stop.value``) with the main process."""
    global _shared_stop
    _shared_stop = shared_stop

    def on_sigterm(signum, frame) -> None:
        request_stop()
        if not _busy:
            os._exit(130)
        _raise_or_defer(frame)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_sigterm)
