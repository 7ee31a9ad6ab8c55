"""The numeric core of the course: checks, gradient checking, data, plots and widgets.

``import course`` is light: it loads NumPy and the compute modules only.
``course.plots`` (matplotlib) and ``course.widgets`` (ipywidgets) load on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

from . import checks, data, gradcheck

__version__ = "0.1.0"

_LAZY = ("plots", "widgets")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["checks", "data", "gradcheck", "plots", "widgets"]
