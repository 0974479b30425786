"""A registry of things chosen by name (data sets, models, losses): registering one makes it known everywhere."""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Generic, Iterable, TypeVar

from trainers.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries; an unknown name is a ConfigError on `field` that lists the known ones.

    `built_in` names the entries that `module` registers when it is imported: they are known (listed, checked) before
    it is, and the first look-up of one imports it. So choosing by name needs no import of what implements them.
    """

    def __init__(self, field: str, built_in: Iterable[str] = (), module: str | None = None) -> None:
        self.field = field
        self._entries: dict[str, T] = {}
        self._built_in = frozenset(built_in)
        self._module = module

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that adds an entry under `name` (a name can be registered once)."""

        def add(entry: T) -> T:
            if name in self._built_in and self._module not in sys.modules:
                self._load()  # registers `name`: the entry below is refused
            if name in self._entries:
                raise ValueError(f"{self.field} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return add

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._built_in | self._entries.keys())

    def __getitem__(self, name: str) -> T:
        if name not in self._entries and name in self._built_in:
            self._load()
        if name not in self._entries:
            raise ConfigError(self.field, name, "one of: " + ", ".join(self.names()))
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._built_in

    def _load(self) -> None:
        """Import the module that registers the built-in entries."""
        if self._module is not None:
            importlib.import_module(self._module)
