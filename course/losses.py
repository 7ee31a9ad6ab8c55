"""Checks of the loss exercises (notebook 06): one contract for the visible and the hidden checks.

Two kinds of result:

* a **loss** is one number: a Python float (a NumPy float64 scalar, a 0-d float64 array or tensor
  also do), computed in float64 — not an array with axes, not float32;
* an **array** result (``logsumexp``, ``softmax``, ``log_softmax``, ``cross_entropy_grad``,
  ``huber_grad``) is a new float64 NumPy array of the shape PyTorch's operation gives (a number
  also does where that shape is ``()``); a float64 torch tensor is read as its array.

The functions must not change their inputs and must stay quiet: no overflow, divide or invalid
warning on any input of the contract (±1e4 logits included). This module holds that contract once:

* :func:`scalar_problem` and :func:`array_problem` say why plain data (what
  :func:`course.elementwise.result_form` or the grader's probe hands over) breaks it;
* :func:`check_result` is what a visible test cell runs on one input.

NumPy and the standard library only; nothing here computes a loss.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from .checks import CheckFailed, Comparison, compare, compare_scalar, format_shape, inputs_unchanged
from .elementwise import _array, _kind, quiet_call, result_form

__all__ = ["RTOL", "ATOL", "scalar_problem", "array_problem", "warnings_hint", "first_match", "precision_hint",
           "check_result"]

#: values are compared to 1e-10 relative; differences below 1e-12 never count
RTOL, ATOL = 1e-10, 1e-12


def scalar_problem(value: Any) -> Optional[str]:
    """Why ``value`` (plain data) is not a loss: one float64 number."""
    t = type(value)
    if t is float or t is int:
        return None
    if isinstance(value, np.ndarray):
        if value.dtype != np.float64:
            return (f"returned an array of {value.dtype}; compute in float64 and return the loss as a "
                    f"Python float")
        if value.ndim == 0:
            return None
        text = f"returned an array of shape {format_shape(value.shape)}; the loss is one number: return a Python float"
        if value.size > 1:
            text += " — likely cause: one loss per sample came back; the loss is their mean"
        else:
            text += ", e.g. float(loss) or loss.item()"
        return text
    return f"returned {_kind(value)}; return the mean loss as a Python float"


def array_problem(value: Any, shape: tuple) -> Optional[str]:
    """Why ``value`` (plain data) is not a float64 array of ``shape``."""
    shape = tuple(shape)
    if type(value) is float and shape == ():
        return None
    if type(value) is float:
        return (f"returned a single number ({value:.6g}); return an array of shape {format_shape(shape)}")
    if not isinstance(value, np.ndarray):
        return f"returned {_kind(value)}; return a NumPy array of float64 of shape {format_shape(shape)}"
    if value.dtype != np.float64:
        return f"returned an array of {value.dtype}; compute and return float64, the input's dtype"
    if value.shape != shape:
        text = f"returned shape {format_shape(value.shape)}, expected {format_shape(shape)}"
        if value.size == int(np.prod(shape)) and 1 in value.shape:
            text += " — likely cause: keepdims=True left an axis of size 1; drop it (or reduce without keepdims)"
        elif value.size == int(np.prod(shape)):
            text += " — likely cause: the right numbers in another arrangement (a transpose or a reshape)"
        return text
    return None


def warnings_hint(texts: Sequence[str], values_right: bool, exercise: str = "") -> str:
    """The likely cause of floating-point warnings in a loss, in words (``exercise``: which one)."""
    joined = " ".join(texts).lower()
    hints = []
    if "overflow" in joined:
        if exercise.startswith(("bce", "huber")):
            hints.append("exp of a large |z| overflows (float64 ends at e^709.78): use the stable form, in which "
                         "exp only sees -|z| <= 0")
        else:
            hints.append("exp of a large logit overflows (float64 ends at e^709.78): subtract each slice's maximum "
                         "before exp (shift invariance)")
    if "divide by zero" in joined:
        hints.append("log(0): an exp underflowed to 0 (exp(-1e4) is 0 in float64) before its log was taken; "
                     "shift by the maximum first and stay in log space (log_softmax(z) = z - logsumexp(z))")
    if "invalid" in joined:
        if "multiply" in joined:
            hints.append("0 * inf gave NaN: a -inf log-probability (a logit of -inf) multiplied by a 0, e.g. in a "
                         "one-hot product; pick each row's target entry by indexing instead")
        else:
            hints.append("inf - inf or inf/inf gave NaN" + ("" if values_right else ", typically after an unshifted exp"))
        if values_right:
            hints.append("np.where computes both branches, so the branch it throws away still ran")
    return "; ".join(hints) or "a floating-point warning"


def _matches(got: np.ndarray, candidate: np.ndarray, rtol: float, atol: float) -> bool:
    if got.shape != candidate.shape or got.size == 0:
        return False
    with np.errstate(all="ignore"):
        finite = np.isfinite(candidate) & np.isfinite(got)
        close = (finite & (np.abs(got - candidate) <= atol + rtol * np.abs(candidate))) | (got == candidate)
        close |= np.isnan(got) & np.isnan(candidate)
    return bool(close.all())


def first_match(value: Any, mistakes: Sequence, *, expected: Any = None, rtol: float = 1e-8,
                atol: float = 1e-12) -> Optional[str]:
    """The hint of the first (candidate, hint) whose candidate equals ``value`` (a typical mistake).

    An infinite candidate matches only the same infinity, and NaN only NaN (a finite result is never
    "close" to inf); a candidate of None is skipped, and so is one equal to ``expected`` (on this
    input the mistake makes no difference: N * loss is the loss when N = 1)."""
    if not isinstance(value, np.ndarray) and type(value) is not float:
        return None
    got = np.asarray(value, dtype=np.float64)
    reference = None if expected is None else _array(expected)
    for candidate, hint in mistakes:
        if candidate is None:
            continue
        candidate = _array(candidate)
        if reference is not None and _matches(reference, candidate, rtol, atol):
            continue
        if _matches(got, candidate, rtol, atol):
            return hint
    return None


def precision_hint(value: Any, expected: Any) -> Optional[str]:
    """A hint when ``value`` misses ``expected`` by about float32's rounding (relative 1e-9 to 1e-5)."""
    try:
        got, want = np.asarray(value, dtype=np.float64), _array(expected)
        if got.shape != want.shape or got.size == 0 or not (np.all(np.isfinite(got)) and np.all(np.isfinite(want))):
            return None
        rel = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))
    except Exception:  # noqa: BLE001 - a hint is optional
        return None
    if 1e-9 < rel < 1e-5:
        return ("off by about float32's precision (1e-7 relative): a float32 step somewhere (np.float32, "
                ".astype(np.float32), a float32 tensor)? compute everything in float64")
    return None


def check_result(name: str, fn: Callable, args: tuple, expected: Any, *, kind: str = "array",
                 mistakes: Sequence = (), rtol: float = RTOL, atol: float = ATOL, **kwargs: Any) -> Comparison:
    """Run ``fn(*args, **kwargs)`` on copies of the arrays and compare with the trusted ``expected``.

    ``kind`` is "scalar" (a loss: one number) or "array" (expected's shape). Raises CheckFailed,
    with the likely cause, when fn changes an input, breaks the contract, returns other values
    (``mistakes``: (candidate, hint) pairs) or raises a floating-point warning. Returns the passed
    Comparison (print it)."""
    __tracebackhide__ = True
    copies = tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args)
    watched = {f"argument {i + 1}": a for i, a in enumerate(copies) if isinstance(a, np.ndarray)}
    with inputs_unchanged(name, **watched):
        got, caught = quiet_call(fn, *copies, **kwargs)
    value = result_form(got)
    if kind == "scalar":
        problem = scalar_problem(value)
        expected = float(np.asarray(expected.detach() if hasattr(expected, "detach") else expected))
    else:
        expected = np.asarray(expected.detach() if hasattr(expected, "detach") else expected, dtype=np.float64)
        problem = array_problem(value, expected.shape)
    if problem:
        raise CheckFailed(f"✗ {name}: {problem}")
    result = (compare_scalar if kind == "scalar" else compare)(name, value, expected, rtol=rtol, atol=atol)
    if not result.ok:
        hints = [first_match(value, mistakes, expected=expected), warnings_hint(caught, False, name) if caught
                 else None]
        hints = [h for h in hints if h] or [precision_hint(value, expected)]
        hints = [h for h in hints if h]
        raise CheckFailed(result.message + (f" — likely cause: {'; '.join(hints)}" if hints else ""))
    if caught:
        raise CheckFailed(f"✗ {name}: the values are right, but the call raised {'; '.join(caught)} — likely "
                          f"cause: {warnings_hint(caught, True, name)}")
    return result
