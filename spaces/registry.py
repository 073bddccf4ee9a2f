"""The one registry mechanism of the project: a plain dict filled by a decorator refusing duplicates."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def registrar(registry: dict[str, T], what: str, *, attribute: str | None = None) -> Callable[[str], Callable[[T], T]]:
    """A decorator factory adding objects to ``registry`` by name.

    ``what`` names the kind of thing in the duplicate error; ``attribute``, when given, is set to the
    registered name on the object (``cls.kind = "lookup"``).
    """

    def register(name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in registry:
                raise ValueError(f"{what} {name!r} is already registered ({registry[name]!r})")
            if attribute is not None:
                setattr(obj, attribute, name)
            registry[name] = obj
            return obj

        return add

    return register
