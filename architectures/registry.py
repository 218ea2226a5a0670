"""Architecture registry: name -> (class, default hyperparameters, size presets, search space).

An architecture module registers itself with :func:`register`; the runner only ever
calls :func:`create` and the model's ``forward(batch) -> [num_graphs, out_dim]``.

Size presets (overrides of the defaults, by name):

- ``paper``: the published default size of the architecture (each module cites where its
  numbers come from);
- ``matched``: every built-in architecture within ``MATCHED_TOLERANCE`` of one common
  parameter budget (``MATCHED_PARAMS``), so a ranking of architectures does not measure
  capacity. A built-in architecture's registered defaults *are* its ``matched`` size, so
  ``create(name)`` and ``create(name, preset="matched")`` build the same model.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from collections.abc import Callable

import torch

from bench.registry import Registry

#: A search space is declarative so that profiles (YAML) can override it:
#: name -> {"type": "int"|"float"|"categorical", "low", "high", "log", "choices"}.
SearchSpace = dict[str, dict[str, Any]]

#: Common parameter budget of the ``matched`` preset (out_dim=1), and its tolerance.
MATCHED_PARAMS = 100_000
MATCHED_TOLERANCE = 0.15
#: Presets every built-in architecture registers.
PRESETS = ("paper", "matched")


@dataclass(frozen=True)
class ArchitectureSpec:
    """What the registry knows about one architecture."""

    name: str
    cls: type[torch.nn.Module]
    defaults: dict[str, Any]
    search_space: SearchSpace = field(default_factory=dict)
    family: str = "invariant"  # invariant | equivariant | hybrid
    description: str = ""
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> overrides of defaults


#: ``name@preset`` names architecture ``name`` at one size preset as an architecture of its own
#: (``cgcnn@paper``: the reproduction anchor beside the matched models of one grid).
PRESET_SEPARATOR = "@"


class ArchitectureRegistry(Registry[ArchitectureSpec]):
    """The architecture registry; ``get("name@preset")`` gives ``name``'s spec with the preset's
    values as its defaults (its own rows in every table, its own cell keys)."""

    def get(self, name: str) -> ArchitectureSpec:
        base, sep, preset = str(name).partition(PRESET_SEPARATOR)
        spec = super().get(base)
        if not sep:
            return spec
        if preset not in spec.presets:
            raise ValueError(f"architecture {base!r} has no preset {preset!r}; known: {sorted(spec.presets)}")
        return replace(spec, name=f"{base}{PRESET_SEPARATOR}{preset}",
                       defaults={**spec.defaults, **spec.presets[preset]}, presets={})

    def __contains__(self, name: object) -> bool:
        try:
            self.get(name)  # type: ignore[arg-type]
        except (KeyError, ValueError):
            return False
        return True


REGISTRY: ArchitectureRegistry = ArchitectureRegistry("architecture")


def register(
    name: str,
    *,
    defaults: dict[str, Any],
    search_space: SearchSpace | None = None,
    family: str = "invariant",
    presets: dict[str, dict[str, Any]] | None = None,
) -> Callable[[type[torch.nn.Module]], type[torch.nn.Module]]:
    """Class decorator: ``@register("cgcnn", defaults={...}, presets={"paper": {...}}, search_space={...})``.

    The class constructor must accept ``out_dim`` plus every key of ``defaults``; each
    preset overrides some of those keys (an unknown key is an error at registration).
    """
    if family not in {"invariant", "equivariant", "hybrid"}:
        raise ValueError(f"family must be invariant, equivariant or hybrid, got {family!r}")

    def decorate(cls: type[torch.nn.Module]) -> type[torch.nn.Module]:
        doc = (cls.__doc__ or "").strip().splitlines()
        spec = ArchitectureSpec(name, cls, dict(defaults), dict(search_space or {}), family, doc[0] if doc else "",
                                {k: dict(v) for k, v in (presets or {}).items()})
        for key in spec.search_space:
            if key not in spec.defaults:
                raise ValueError(f"{name}: search-space key {key!r} has no default")
        for preset, values in spec.presets.items():
            unknown = sorted(set(values) - set(spec.defaults))
            if unknown:
                raise ValueError(f"{name}: preset {preset!r} sets unknown hyperparameter(s) {unknown}")
        REGISTRY.register(name, spec)
        return cls

    return decorate


def resolve_hparams(name: str, preset: str | None = None, **hparams: Any) -> dict[str, Any]:
    """Defaults of ``name``, updated by the preset's values (if any), then by ``hparams``.

    A ``name@preset`` fixes its own size, so ``preset`` does not apply to it. An unknown
    hyperparameter or preset is an error listing the known ones.
    """
    if PRESET_SEPARATOR in str(name):
        preset = None
    spec = REGISTRY.get(name)
    unknown = sorted(set(hparams) - set(spec.defaults))
    if unknown:
        raise ValueError(
            f"architecture {name!r} has no hyperparameter(s) {unknown}; known: {sorted(spec.defaults)}"
        )
    return {**spec.defaults, **preset_values(name, preset), **hparams}


def preset_values(name: str, preset: str | None) -> dict[str, Any]:
    """The hyperparameters that ``preset`` sets for ``name`` ({} for ``None``)."""
    if preset is None:
        return {}
    spec = REGISTRY.get(name)
    if preset not in spec.presets:
        raise ValueError(f"architecture {name!r} has no preset {preset!r}; known: {sorted(spec.presets)}")
    return spec.presets[preset]


def create(name: str, out_dim: int = 1, preset: str | None = None, **hparams: Any) -> torch.nn.Module:
    """Build architecture ``name``: its defaults, then ``preset`` (``paper`` / ``matched``), then ``hparams``."""
    if out_dim < 1:
        raise ValueError(f"out_dim must be >= 1, got {out_dim}")
    return REGISTRY.get(name).cls(out_dim=out_dim, **resolve_hparams(name, preset, **hparams))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
