"""Lazy package attributes (PEP 562), so packages can name their API without importing it.

DAG files and the establishment config import parts of ``mis_sync.quality`` and ``mis_sync.linking``
at parse time; their heavy modules (Great Expectations, pandas, rapidfuzz) load only on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[attribute]`` (a module path) on first access."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return __getattr__
