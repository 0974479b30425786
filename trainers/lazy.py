"""A package's public names imported from their modules on first use (PEP 562), so that importing the package, or a
light module of it, does not import the heavy ones (torch, MLflow)."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping


def lazy_exports(package: str, homes: Mapping[str, tuple[str, ...]]) -> tuple[Callable[[str], Any],
                                                                             Callable[[], list[str]], list[str]]:
    """(`__getattr__`, `__dir__`, `__all__`) for `package`, whose public names are those of `homes` (module → names).

        __getattr__, __dir__, __all__ = lazy_exports(__name__, {"trainers.config": ("TrainConfig",)})
    """
    home = {name: module for module, names in homes.items() for name in names}

    def getattr_(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home[name]), name)
        setattr(sys.modules[package], name, value)  # found directly from now on
        return value

    def dir_() -> list[str]:
        return sorted({*vars(sys.modules[package]), *home})

    return getattr_, dir_, sorted(home)
