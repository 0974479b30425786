"""A registry of things chosen by name (data sets, models, losses): registering one makes it known everywhere."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from trainers.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries; an unknown name is a ConfigError on `field` that lists the known ones."""

    def __init__(self, field: str) -> None:
        self.field = field
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that adds an entry under `name` (a name can be registered once)."""

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.field} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return add

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __getitem__(self, name: str) -> T:
        if name not in self._entries:
            raise ConfigError(self.field, name, "one of: " + ", ".join(self.names()))
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries
