"""Architecture registry: name -> (class, default hyperparameters, search space).

An architecture module registers itself with :func:`register`; the runner only ever
calls :func:`create` and the model's ``forward(batch) -> [num_graphs, out_dim]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

import torch

from bench.registry import Registry

#: A search space is declarative so that profiles (YAML) can override it:
#: name -> {"type": "int"|"float"|"categorical", "low", "high", "log", "choices"}.
SearchSpace = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ArchitectureSpec:
    """What the registry knows about one architecture."""

    name: str
    cls: type[torch.nn.Module]
    defaults: dict[str, Any]
    search_space: SearchSpace = field(default_factory=dict)
    family: str = "invariant"  # invariant | equivariant | hybrid
    description: str = ""


REGISTRY: Registry[ArchitectureSpec] = Registry("architecture")


def register(
    name: str,
    *,
    defaults: dict[str, Any],
    search_space: SearchSpace | None = None,
    family: str = "invariant",
) -> Callable[[type[torch.nn.Module]], type[torch.nn.Module]]:
    """Class decorator: ``@register("cgcnn", defaults={...}, search_space={...})``.

    The class constructor must accept ``out_dim`` plus every key of ``defaults``.
    """
    if family not in {"invariant", "equivariant", "hybrid"}:
        raise ValueError(f"family must be invariant, equivariant or hybrid, got {family!r}")

    def decorate(cls: type[torch.nn.Module]) -> type[torch.nn.Module]:
        doc = (cls.__doc__ or "").strip().splitlines()
        spec = ArchitectureSpec(name, cls, dict(defaults), dict(search_space or {}), family, doc[0] if doc else "")
        for key in spec.search_space:
            if key not in spec.defaults:
                raise ValueError(f"{name}: search-space key {key!r} has no default")
        REGISTRY.register(name, spec)
        return cls

    return decorate


def resolve_hparams(name: str, **hparams: Any) -> dict[str, Any]:
    """Defaults of ``name`` updated by ``hparams``; an unknown key is an error listing the known ones."""
    spec = REGISTRY.get(name)
    unknown = sorted(set(hparams) - set(spec.defaults))
    if unknown:
        raise ValueError(
            f"architecture {name!r} has no hyperparameter(s) {unknown}; known: {sorted(spec.defaults)}"
        )
    return {**spec.defaults, **hparams}


def create(name: str, out_dim: int = 1, **hparams: Any) -> torch.nn.Module:
    """Build architecture ``name`` with its defaults overridden by ``hparams``."""
    if out_dim < 1:
        raise ValueError(f"out_dim must be >= 1, got {out_dim}")
    return REGISTRY.get(name).cls(out_dim=out_dim, **resolve_hparams(name, **hparams))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
