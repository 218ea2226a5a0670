"""Load architectures, variants or tasks defined outside the package.

A plugin is any importable module that registers itself on import (with
``architectures.register``, the variant registry or ``tasks.TASKS``). It is found
through the ``bench.plugins`` entry-point group of an installed distribution, or
named explicitly with ``--plugin module.path`` (or ``$BENCH_PLUGINS``, comma-separated).
"""
from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "bench.plugins"


def load_plugins(modules: list[str] | None = None) -> list[str]:
    """Import entry-point plugins and ``modules``; return the names imported."""
    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
        loaded.append(ep.value)
    names = list(modules or []) + [m for m in os.environ.get("BENCH_PLUGINS", "").split(",") if m.strip()]
    for name in names:
        try:
            importlib.import_module(name.strip())
        except ImportError as err:
            raise ImportError(f"cannot import plugin module {name!r}: {err}") from err
        loaded.append(name.strip())
    return loaded
