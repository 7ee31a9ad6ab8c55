"""Helpers every notebook's judges share (judge side: they never run student code)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from course.checks import CheckFailed, Comparison, as_array


def torch_module():
    """PyTorch, imported on first use: only the judge needs the reference."""
    import torch

    return torch


def tensor(a: Any, requires_grad: bool = False):
    """A float64 tensor holding a copy of ``a``."""
    t = torch_module().from_numpy(np.array(a, dtype=np.float64, copy=True))
    return t.requires_grad_(requires_grad) if requires_grad else t


def array_or_none(value: Any) -> Optional[np.ndarray]:
    """A returned value as a float64 array, or None when it is not an array of numbers."""
    try:
        return as_array("value", value)
    except CheckFailed:
        return None


def matches(got: Optional[np.ndarray], candidate: Any, *, rtol: float = 1e-8, atol: float = 0.0) -> bool:
    """Whether ``got`` equals a candidate (e.g. the result of a typical mistake)."""
    candidate = np.asarray(candidate, dtype=np.float64)
    if got is None or got.shape != candidate.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(got - candidate) <= atol + rtol * np.abs(candidate)))


def with_hint(result: Comparison, hint: Optional[str]) -> Comparison:
    """Append a likely cause to a failed comparison."""
    if result.ok or not hint:
        return result
    return Comparison(result.name, False, f"{result.message} — likely cause: {hint}")


def value_error_judgement(check: Any, case: Any, outcome: Any, returned: str) -> Optional[Comparison]:
    """The verdict on one case of a check whose errors group must raise ValueError, or None when the
    check's own judge decides (a valid case that did not raise ValueError).

    ``check`` has ``exercise``, ``name(case)`` and ``fail(case, text)``; ``returned`` says what the
    contract asks when a bad input returned instead of raising."""
    from .framework import ERRORS

    if case.group != ERRORS:
        if outcome.kind == "raised" and outcome.error == "ValueError":
            return check.fail(case, f"raised ValueError on valid arguments: {outcome.message}")
        return None
    if outcome.kind == "raised" and outcome.error == "NotImplementedError":
        return check.fail(case, "not implemented yet")
    if outcome.kind != "raised":
        return check.fail(case, returned)
    if outcome.error != "ValueError":
        return check.fail(case, f"should raise ValueError, but raised {outcome.error}: {outcome.message}")
    return Comparison(check.exercise, True, f"✓ {check.name(case)}: ValueError")
