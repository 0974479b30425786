"""Errors that stand for a user's mistake: the CLI prints them as one line and exits 2."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting has a value that is not allowed; says the field, the value and what is allowed."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: {value!r} is not allowed ({allowed})")

    def __reduce__(self) -> tuple[type, tuple[str, object, str]]:
        """Pickled by its three arguments (Ray re-raises a trial's error in the driver by pickling it)."""
        return type(self), (self.field, self.value, self.allowed)


class DataError(RuntimeError):
    """A data set cannot be read: names the data root and the missing or corrupt file."""
