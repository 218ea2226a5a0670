"""Hyperparameter values and search spaces, checked before anything runs.

Leaf module (it imports the architecture registry and the defaults only), so that the
configuration can validate itself without importing the tuner or the trainer.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import TYPE_CHECKING, Any

import architectures
from bench import defaults

if TYPE_CHECKING:
    from bench.config import GridConfig

_TYPES = {"int", "float", "categorical"}


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_value(where: str, name: str, value: Any, default: Any) -> None:
    """A hyperparameter value of the same kind as its registered default (an integer for an
    integer, a number for a float, a bool for a bool) and never negative when the default is
    not (sizes, counts, cutoffs: a sign flip is never meaningful). Zero is left to the model
    (some accept 0 vectors or layers); the pre-flight build of each model catches the rest."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where}: {name} must be true or false, got {value!r}")
        return
    if isinstance(default, int) and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ValueError(f"{where}: {name} must be an integer, got {value!r}")
    if isinstance(default, float) and not _is_number(value):
        raise ValueError(f"{where}: {name} must be a number, got {value!r}")
    if _is_number(value) and not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be finite, got {value!r}")
    if _is_number(default) and default >= 0 and _is_number(value) and value < 0:
        raise ValueError(f"{where}: {name} must not be negative, got {value!r}")


def check_hparams(architecture: str, values: dict[str, Any]) -> None:
    """Every resolved hyperparameter of ``architecture`` passes :func:`check_value`."""
    spec = architectures.REGISTRY.get(architecture)
    for name, value in values.items():
        if name in spec.defaults:
            check_value(f"hparams.{architecture}", name, value, spec.defaults[name])


def search_space(architecture: str, cfg: GridConfig) -> dict[str, dict[str, Any]]:
    """Shared knobs + the architecture's registered space, with ``tune.space`` overrides applied;
    hyperparameters fixed under ``hparams`` are not tuned. Unknown knobs and malformed or empty
    ranges (low > high, a log range that reaches 0, negative sizes) are errors."""
    spec = architectures.REGISTRY.get(architecture)
    space: dict[str, dict[str, Any]] = {**defaults.SHARED_SEARCH_SPACE, **spec.search_space}
    for name, entry in cfg.tune.space.items():
        if name not in defaults.SHARED_SEARCH_SPACE and name not in spec.defaults:
            if any(name in architectures.REGISTRY.get(a).defaults for a in cfg.architectures):
                continue  # another architecture's hyperparameter
            known = sorted(set(defaults.SHARED_SEARCH_SPACE) | set(spec.defaults))
            raise ValueError(f"tune.space: unknown knob {name!r} for {architecture}; known: {known}")
        if entry is None:
            space.pop(name, None)
        else:
            space[name] = dict(entry)
    for name in cfg.hparams.get(architecture, {}):
        space.pop(name, None)
    for name, entry in space.items():
        _check_entry(name, entry, spec.defaults.get(name))
    return dict(sorted(space.items()))


def _check_entry(name: str, entry: dict[str, Any], default: Any) -> None:
    where = f"tune.space.{name}"
    kind = entry.get("type")
    if kind not in _TYPES:
        raise ValueError(f"{where}: type must be one of {sorted(_TYPES)}, got {kind!r}")
    if kind == "categorical":
        if not entry.get("choices"):
            raise ValueError(f"{where}: a categorical knob needs choices")
        if default is not None:
            for choice in entry["choices"]:
                check_value(where, "choice", choice, default)
        return
    if not ("low" in entry and "high" in entry):
        raise ValueError(f"{where}: an {kind} knob needs low and high")
    low, high = entry["low"], entry["high"]
    for label, value in (("low", low), ("high", high)):
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError(f"{where}: {label} must be a finite number, got {value!r}")
        if kind == "int" and int(value) != value:
            raise ValueError(f"{where}: an int knob needs integer bounds, got {label}={value!r}")
        if default is not None:
            check_value(where, label, value, default)
    if low > high:
        raise ValueError(f"{where}: low ({low}) is greater than high ({high})")
    if entry.get("log") and low <= 0:
        raise ValueError(f"{where}: a log-scale range needs low > 0, got {low}")
