"""Probes of notebook 03 (run in the student's process; no references here)."""
from __future__ import annotations

from typing import Any, Callable

from .core import Case, Outcome

#: probe name (without the "nb03." prefix) -> probe(obj, case) -> Outcome
PROBES: dict[str, Callable[[Any, Case], Outcome]] = {}
