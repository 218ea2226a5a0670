"""Edge variants: every module in this folder registers one variant in ``VARIANTS``.

Modules are imported automatically (names starting with ``_`` are skipped), so a
new variant is one new file here and nothing else.
"""
from __future__ import annotations

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
