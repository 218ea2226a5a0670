"""Architectures, each in its own module, registered by name on import.

Every module of this package is imported here, so adding an architecture means
adding one file. Modules outside the package register through the ``bench.plugins``
entry-point group or ``--plugin module.path`` (see ``bench.plugins``).
"""
from __future__ import annotations

import importlib
import pkgutil

from architectures.registry import REGISTRY, ArchitectureSpec, count_parameters, create, register, resolve_hparams

_NOT_ARCHITECTURES = {"registry", "common", "e3nn_blocks", "geocgnn_basis"}  # building blocks, no model

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _NOT_ARCHITECTURES and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "ArchitectureSpec", "count_parameters", "create", "register", "resolve_hparams"]
