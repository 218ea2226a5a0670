"""A tiny name -> object registry shared by variants, architectures and tasks.

Unknown names fail loudly and list the known ones (as PyG's ``resolver`` does), so
a typo on the command line never silently runs something else.
"""
from __future__ import annotations

from typing import Generic, TypeVar
from collections.abc import Callable, Iterator

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the choices."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Registry(Generic[T]):
    """Mapping from a lower-case name to a registered object.

    ``kind`` names what is registered ("architecture", "edge variant", "task") and
    appears in every error message.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T, *, overwrite: bool = False) -> T:
        key = name.lower()
        if key in self._items and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[key] = obj
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@REGISTRY.decorator("name")`` registers the decorated object."""
        return lambda obj: self.register(name, obj)

    def get(self, name: str) -> T:
        key = str(name).lower()
        if key not in self._items:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            )
        return self._items[key]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._items[n]) for n in self.names()]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def parse_names(spec: str | list[str] | None, registry: Registry, all_token: str = "all") -> list[str]:
    """Turn ``"a,b"`` / ``["a", "b"]`` / ``"all"`` into validated registered names."""
    if spec is None or spec == all_token or spec == [all_token]:
        return registry.names()
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [p.strip().lower() for p in parts if p.strip()]
    for n in names:
        registry.get(n)
    return names
