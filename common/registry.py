"""timm-style registries: ``register`` by name, ``create`` by name, ``list`` names.

Every configurable choice (datasets, fusion strategies, models, losses) is a string looked up in a registry, so a
batch run can reject an unknown name before anything starts.
"""
from __future__ import annotations

import difflib
import fnmatch
from typing import Any, Callable


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message lists the accepted names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class Registry:
    """A named collection of constructors.

    >>> FUSIONS = Registry("fusion")
    >>> @FUSIONS.register("hadamard")
    ... class Hadamard: ...
    >>> FUSIONS.list()
    ['hadamard']
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}
        self._info: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **info: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering ``obj`` under ``name``; ``info`` is free metadata (e.g. ``paper_name``)."""

        def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered by {self._entries[name]!r}")
            self._entries[name] = obj
            self._info[name] = dict(info)
            return obj

        return decorator

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise with the accepted names and the closest match."""
        if name not in self._entries:
            accepted = ", ".join(self.list())
            close = difflib.get_close_matches(str(name), self.list(), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Accepted: {accepted}")
        return name

    def get(self, name: str) -> Callable[..., Any]:
        return self._entries[self.check(name)]

    def info(self, name: str) -> dict[str, Any]:
        return dict(self._info[self.check(name)])

    def create(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def list(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"
