"""Lazy attributes for the package's front doors (``mlchecks``, ``.checks``, ``.stats``, ...).

A package lists its public names and the module that defines each; the first access
imports that module and caches the value on the package, so importing the package stays
light. A package installs both module hooks in one line::

    __getattr__, __dir__ = LazyNames(__name__, _LAZY).hooks(__all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["LazyNames"]


class LazyNames:
    """Public name -> defining module (absolute, or relative to ``package``), loaded on use.

    >>> names = LazyNames("mlchecks.stats", {"holm": "multiple"})
    >>> names.load("holm").__name__
    'holm'
    """

    def __init__(
        self, package: str, names: Mapping[str, str], submodules: Iterable[str] = ()
    ) -> None:
        self.package = package
        self.names = dict(names)
        self.submodules = frozenset(submodules)

    def load(self, name: str) -> Any:
        """The value of ``name``, importing its module; `AttributeError` for unknown names."""
        module = self.names.get(name)
        if module is not None:
            path = module if module.startswith("mlchecks") else f"{self.package}.{module}"
            value = getattr(importlib.import_module(path), name)
            setattr(sys.modules[self.package], name, value)
            return value
        if name in self.submodules:
            return importlib.import_module(f"{self.package}.{name}")
        raise AttributeError(f"module {self.package!r} has no attribute {name!r}")

    def dir(self, listed: Iterable[str]) -> list[str]:
        """What ``dir(package)`` shows: the listed names and the lazy submodules."""
        return sorted({*listed, *self.submodules})

    def hooks(self, listed: Iterable[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
        """The package's module ``__getattr__`` and ``__dir__`` (``listed`` is its ``__all__``).

        >>> getattr_, dir_ = LazyNames("mlchecks.stats", {"holm": "multiple"}).hooks(["holm"])
        >>> getattr_("holm").__name__, dir_()
        ('holm', ['holm'])
        """
        names = tuple(listed)

        def __getattr__(name: str) -> Any:
            return self.load(name)

        def __dir__() -> list[str]:
            return self.dir(names)

        return __getattr__, __dir__
