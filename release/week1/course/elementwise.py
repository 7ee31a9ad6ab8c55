"""Checks of element-wise functions (notebook 05): one contract for the visible and hidden checks.

An element-wise exercise takes a float64 NumPy array ``x`` of any shape (0-d and empty included)
and returns a **new** float64 NumPy array of the same shape; for a 0-d ``x`` a number also does.
A float64 torch tensor is read as its array (the grader's probe does the same), a list is not an
array. ``dead_units`` returns a boolean array instead, ``collapse_linear`` a pair of float64 arrays.
This module holds those contracts once:

* :func:`result_form` turns a returned object into plain data, as the grader's probe does;
* :func:`form_problem`, :func:`mask_problem` and :func:`pair_problem` say why plain data breaks
  the contract (None when it does not); :func:`pair_form` is :func:`result_form` for a pair;
* :func:`quiet_call` calls a function with NumPy's overflow, divide and invalid errors turned into
  warnings, and records them, so that none reaches the notebook's stderr; :func:`warnings_hint`
  explains them;
* :func:`check_elementwise` is what a visible test cell runs on one input.

NumPy and the standard library only; torch is imported inside :func:`torch_derivative`.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .checks import CheckFailed, Comparison, _torch_tensor_type, compare, format_shape, inputs_unchanged

__all__ = [
    "check_inputs",
    "result_form",
    "form_problem",
    "mask_problem",
    "pair_form",
    "pair_problem",
    "quiet_call",
    "warnings_hint",
    "first_match",
    "check_elementwise",
    "check_mask",
    "torch_derivative",
]

#: tolerances of the element-wise checks: values of order 1 are compared to 1e-10 relative,
#: and differences below 1e-15 (rounding near 0) never count
RTOL, ATOL = 1e-10, 1e-15


def check_inputs() -> list:
    """(label, x) pairs that a visible test cell runs: every shape the contract allows."""
    rng = np.random.default_rng(5)
    grid = np.linspace(-6.0, 6.0, 13)  # 0 exactly in the middle
    normal = rng.normal(0.0, 3.0, size=(4, 5))
    normal[0, 0] = 0.0
    return [
        ("(N,) = (13,), -6 to 6 through 0", grid),
        ("(N, D) = (4, 5), 0 at [0, 0]", normal),
        ("(N, C, H, W) = (2, 3, 2, 2)", rng.normal(0.0, 2.0, size=(2, 3, 2, 2))),
        ("large values ±30, ±1000, ±1e4", np.array([-1e4, -1000.0, -30.0, 30.0, 1000.0, 1e4])),
        ("a 0-d array", np.array(-0.75)),
        ("an empty array (0,)", np.zeros(0)),
    ]


def result_form(got: Any) -> Any:
    """What the grader's probe hands the judge for ``got``: NumPy arrays stay (a copy), a torch
    tensor becomes its NumPy array, a NumPy scalar a Python number; anything else stays as it is
    (and fails :func:`form_problem`)."""
    t = type(got)
    if issubclass(t, np.ndarray):
        return np.array(np.ndarray.view(got, np.ndarray), copy=True)
    if isinstance(got, np.generic):
        return got.item()
    tensor = _torch_tensor_type()
    if tensor is not None and t is tensor:
        return got.detach().cpu().numpy().copy()
    return got


def _kind(value: Any) -> str:
    if value is None:
        return "None — did you forget `return`?"
    t = type(value)
    if t is bool:
        return f"a bool ({value})"
    if t is int:
        return f"an int ({value})"
    if t is float:
        return f"a float ({value:.6g})"
    if t in (list, tuple):
        return f"a {t.__name__}"
    if t is dict:
        return "a dict"
    if t is str:
        return "a str"
    return f"an object of type {t.__name__}"


def form_problem(value: Any, shape: tuple) -> Optional[str]:
    """Why ``value`` (plain data, see :func:`result_form`) is not a float64 array of ``shape``."""
    shape = tuple(shape)
    if type(value) is float:
        if shape == ():
            return None
        return (f"returned a single number ({value:.6g}) for an input of shape {format_shape(shape)}; "
                f"return an array of that shape, one value per element")
    if not isinstance(value, np.ndarray):
        return f"returned {_kind(value)}; return a NumPy array of float64 of the input's shape {format_shape(shape)}"
    if value.dtype == np.bool_:
        return ("returned a boolean array; return numbers, float64 (1.0 and 0.0): e.g. "
                "np.where(condition, 1.0, 0.0) or condition.astype(np.float64)")
    if value.dtype.kind in "iu":
        return f"returned an integer array ({value.dtype}); return float64, e.g. with 1.0 and 0.0 instead of 1 and 0"
    if value.dtype != np.float64:
        return f"returned an array of {value.dtype}; compute and return float64, the input's dtype"
    if value.shape != shape:
        text = f"returned shape {format_shape(value.shape)}, expected {format_shape(shape)}, the input's shape"
        if value.size == int(np.prod(shape)):
            text += ": an element-wise function keeps the shape (no reshape, no flatten)"
        return text
    return None


def mask_problem(value: Any, shape: tuple) -> Optional[str]:
    """Why ``value`` (plain data) is not a boolean NumPy array of ``shape``."""
    shape = tuple(shape)
    if not isinstance(value, np.ndarray):
        return f"returned {_kind(value)}; return a boolean NumPy array of shape {format_shape(shape)}, one per unit"
    if value.dtype != np.bool_:
        text = (f"returned an array of {value.dtype}; return a boolean array (dtype bool), the result of a "
                f"comparison such as Z <= 0 reduced with .all or .any")
        if value.dtype.kind in "iu" and value.ndim == 1 and len(shape) == 1 and (value.size == 0 or (
                value.min() >= 0 and value.max() < shape[0] and bool(np.all(np.diff(value) > 0)))):
            text += (" — likely cause: those look like the indices of the dead units (np.flatnonzero or "
                     "np.where); return one True/False per unit instead")
        return text
    if value.shape != shape:
        return f"returned shape {format_shape(value.shape)}, expected {format_shape(shape)}, one entry per unit"
    return None


def pair_form(got: Any) -> Any:
    """:func:`result_form` for a returned pair: a tuple or a list keeps its type, each item is converted."""
    if type(got) in (tuple, list):
        return type(got)(result_form(item) for item in got)
    return result_form(got)


def pair_problem(value: Any, D: int, H: int, C: int) -> Optional[str]:
    """Why ``value`` (plain data, see :func:`pair_form`) is not what ``collapse_linear`` returns for
    layers D -> H -> C: the pair (W, b), a tuple or a list, of float64 NumPy arrays W (C, D), b (C,)."""
    if type(value) not in (tuple, list) or len(value) != 2:
        what = f"a {type(value).__name__} of length {len(value)}" if type(value) in (tuple, list, dict) else _kind(value)
        return f"returned {what}; return the pair (W, b)"
    for name, item, shape in (("W", value[0], (C, D)), ("b", value[1], (C,))):
        if not isinstance(item, np.ndarray):
            return f"{name} is {_kind(item)}; W and b must be NumPy arrays of float64"
        if item.dtype != np.float64:
            return f"{name} is an array of {item.dtype}; W and b must be float64, like the layers"
        if item.shape != shape:
            text = f"{name} has shape {format_shape(item.shape)}, expected {format_shape(shape)}"
            if name == "W" and item.shape == (D, C) and C != D:
                text += (" — likely cause: W is transposed; with PyTorch's layout a layer from D inputs to C "
                         "outputs has W of shape (out, in) = (C, D)")
            elif name == "b" and item.size == C:
                text += " — likely cause: b must be a flat vector (C,)"
            elif name == "b" and item.shape == (H,):
                text += " — likely cause: b1 passes through layer 2 as well, so b has C entries, one per output"
            return text
    return None


def quiet_call(fn: Callable, *args: Any, **kwargs: Any) -> tuple:
    """(what fn returned, [the warnings it raised as text]); NumPy's floating-point errors (overflow,
    division by zero, invalid operations such as inf/inf) are turned into warnings and recorded, and
    nothing is printed. An exception of fn propagates."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
            result = fn(*args, **kwargs)
    texts = []
    for w in caught:
        text = f"{getattr(w.category, '__name__', 'Warning')}: {w.message}"
        if text not in texts:
            texts.append(text)
    return result, texts


def warnings_hint(texts: Sequence[str], values_right: bool) -> str:
    """The likely cause of floating-point warnings, in words."""
    joined = " ".join(texts).lower()
    hints = []
    if "overflow" in joined:
        hints.append("np.exp (or np.cosh, or a square) of a large number overflows to inf (exp(710) is already "
                     "past float64's 1.8e308): arrange the formula so that exp only ever sees numbers <= 0, "
                     "e.g. np.exp(-np.abs(x))")
    if "invalid" in joined and values_right:
        hints.append("np.where(condition, a, b) computes a and b for every element, so the branch it throws "
                     "away still overflowed (inf/inf): compute the safe pieces first and build both branches "
                     "from them")
    elif "invalid" in joined:
        hints.append("inf/inf or inf - inf gave NaN")
    if "divide by zero" in joined:
        hints.append("a division by zero")
    return "; ".join(hints)


def first_match(value: Any, mistakes: Sequence, *, rtol: float = 1e-8, atol: float = 1e-12) -> Optional[str]:
    """The hint of the first (candidate, hint) whose candidate equals ``value`` (a typical mistake)."""
    if not isinstance(value, np.ndarray) and type(value) is not float:
        return None
    got = np.asarray(value, dtype=np.float64)
    for candidate, hint in mistakes:
        candidate = _array(candidate)
        if got.shape != candidate.shape or got.size == 0:
            continue
        with np.errstate(all="ignore"):
            close = (np.abs(got - candidate) <= atol + rtol * np.abs(candidate)) | (got == candidate)
            close |= np.isnan(got) & np.isnan(candidate)
        if bool(close.all()):
            return hint
    return None


def _array(x: Any) -> np.ndarray:
    tensor = _torch_tensor_type()
    if tensor is not None and isinstance(x, tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def check_elementwise(name: str, fn: Callable, x: np.ndarray, expected: Any, *, quiet: bool = False,
                      mistakes: Sequence = (), rtol: float = RTOL, atol: float = ATOL, **kwargs: Any) -> Comparison:
    """Run ``fn(x, **kwargs)`` on a copy of x and compare with the trusted ``expected``.

    Raises CheckFailed, with the likely cause, when fn changes x in place, returns anything but a
    float64 array of x's shape, returns other values (``mistakes``: (candidate, hint) pairs name
    typical slips), or (``quiet=True``) raises a floating-point warning. Without ``quiet`` a warning
    is only reported, on stdout. Returns the passed Comparison (print it)."""
    __tracebackhide__ = True
    arg = np.array(x, dtype=np.float64, copy=True)
    with inputs_unchanged(name, x=arg):
        got, caught = quiet_call(fn, arg, **kwargs)
    value = result_form(got)
    problem = form_problem(value, np.shape(x))
    if problem:
        raise CheckFailed(f"✗ {name}: {problem}")
    result = compare(name, value, expected, rtol=rtol, atol=atol)
    if not result.ok:
        hints = [first_match(value, mistakes), warnings_hint(caught, False) if caught else None]
        hints = [h for h in hints if h]
        raise CheckFailed(result.message + (f" — likely cause: {'; '.join(hints)}" if hints else ""))
    if caught:
        text = "; ".join(caught)
        if quiet:
            raise CheckFailed(f"✗ {name}: the values are right, but the call raised {text} — likely cause: "
                              f"{warnings_hint(caught, True)}")
        print(f"  note: {name} raised {text}; the values are right, but {warnings_hint(caught, True)}")
    return result


def check_mask(name: str, fn: Callable, args: tuple, expected: Any, *, mistakes: Sequence = ()) -> Comparison:
    """Run ``fn(*args)`` on copies of the arrays and compare its boolean result with ``expected``."""
    __tracebackhide__ = True
    copies = tuple(np.array(a, copy=True) for a in args)
    with inputs_unchanged(name, **{f"argument {i + 1}": a for i, a in enumerate(copies)}):
        got, _ = quiet_call(fn, *copies)
    value = result_form(got)
    expected = np.asarray(_array(expected) != 0)
    problem = mask_problem(value, expected.shape)
    if problem:
        raise CheckFailed(f"✗ {name}: {problem}")
    wrong = np.flatnonzero(value != expected)
    if wrong.size:
        hint = first_match(value.astype(np.float64), mistakes)
        text = (f"✗ {name}: units {wrong[:8].tolist()}{' ...' if wrong.size > 8 else ''} are wrong: got "
                f"{value.astype(int).tolist()}, expected {expected.astype(int).tolist()} (1 = dead)")
        raise CheckFailed(text + (f" — likely cause: {hint}" if hint else ""))
    return Comparison(name, True, f"✓ {name:<7} {format_shape(expected.shape)}  exact ({int(expected.sum())} dead)")


def torch_derivative(f: Callable, x: np.ndarray) -> np.ndarray:
    """d f(x) / dx element by element, from PyTorch's autograd in float64 (f: tensor -> tensor)."""
    import torch

    t = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    f(t).backward(torch.ones_like(t))
    return t.grad.numpy()
