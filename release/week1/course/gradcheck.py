"""Numerical gradients by central differences, and a one-line check of an analytic gradient.

    ✓ dW      (3, 4)  rel err 3.20e-10
    ✗ dW      (3, 4)  rel err 3.33e-01, worst at [1, 2] (analytic 0.5, numerical 0.25)  12/12 off — looks off by a factor of 2 (analytic ≈ 2 × numerical)

The analytic gradient is untrusted and read like ``got`` in `course.checks`; the shape and value
diagnoses (transposed, missing sum, factor of N, NaN, ...) are the ones `course.checks` gives.
This module imports only NumPy and the standard library.
"""

from __future__ import annotations

import numpy as np

from . import checks
from .checks import CheckFailed, Comparison

__all__ = ["numerical_gradient", "relative_error", "gradcheck", "assert_gradcheck"]

# Round-off in f(x ± eps) makes each numerical derivative uncertain by about
# _NOISE * |f| / eps; differences below that cannot be told apart from zero.
_NOISE = 20 * float(np.finfo(np.float64).eps)


def _f_value(f, x: np.ndarray) -> float:
    try:
        return checks._real_scalar(f(x), allow_0d=True)
    except checks._Reject as r:
        raise checks._Reject(f"f(x) must be a scalar: {r.reason}") from None


def _numerical(f, x, eps: float):
    """(numerical gradient, largest |f| seen); raises checks._Reject if f is not scalar-valued."""
    x0 = np.array(x, dtype=np.float64)  # a fresh C-contiguous copy: the caller's x is never touched
    xp = x0.copy()
    flat = xp.reshape(-1)  # a view of xp, also for 0-d arrays
    grad = np.zeros(x0.shape)
    gflat = grad.reshape(-1)
    scale = 0.0
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        f_plus = _f_value(f, xp.copy())  # a copy each time, so an f that writes into x cannot interfere
        flat[i] = old - eps
        f_minus = _f_value(f, xp.copy())
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2 * eps)
        scale = max(scale, abs(f_plus), abs(f_minus))
    return grad, scale


def numerical_gradient(f, x, *, eps: float = 1e-6) -> np.ndarray:
    """Gradient of a scalar function by central differences, (f(x + eps) - f(x - eps)) / (2 eps) per element.

    f: takes a float64 array shaped like x and returns a real scalar; it must compute from its
       argument (it receives a perturbed copy, never x itself).
    x: array of any shape, e.g. W: (H, D); 0-d and zero-size arrays work. Not modified.
    Returns an array of x's shape, e.g. dW: (H, D). Raises CheckFailed if f does not return a scalar.
    """
    try:
        return _numerical(f, x, eps)[0]
    except checks._Reject as r:
        raise CheckFailed(r.reason) from None


def _relative_errors(a: np.ndarray, b: np.ndarray, floor: float) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)


def relative_error(a, b) -> float:
    """max over elements of |a - b| / max(|a| + |b|, 1e-12); 0.0 for empty arrays, nan if any is nan.

    a, b: arrays of the same shape (any shape).
    """
    a, b = checks.as_array("a", a), checks.as_array("b", b)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes {checks.format_shape(a.shape)} and "
                         f"{checks.format_shape(b.shape)} differ")
    return float(_relative_errors(a, b, 1e-12).max()) if a.size else 0.0


def gradcheck(name: str, f, x, analytic, *, eps: float = 1e-6, tol: float = 1e-6) -> Comparison:
    """Compare an analytic gradient with the numerical gradient of f at x, as one line.

    f: scalar function of an array shaped like x (see `numerical_gradient`).
    x: the point, e.g. W: (H, D).  analytic: the gradient to check (untrusted), e.g. dW: (H, D).
    Passes when every element has |analytic - numerical| / (|analytic| + |numerical|) <= tol,
    where elements smaller than the finite-difference round-off (about 20 * 2.2e-16 * |f| / eps)
    are compared against that round-off instead, so exact zeros (dead ReLUs) do not fail.
    """
    name = str(name)
    try:
        num, f_scale = _numerical(f, x, eps)
        a, src = checks._convert_untrusted(analytic)
    except checks._Reject as r:
        return Comparison(name, False, checks._line(checks._BAD, name, r.reason))

    noise = _NOISE * f_scale / eps
    hint_rtol, hint_atol = max(10 * tol, 1e-5), 10 * noise
    if a.shape != num.shape:
        text = checks._shape_message(a.shape, num.shape, a, num, hint_rtol, hint_atol)
        return Comparison(name, False, checks._line(checks._BAD, name, text))
    shape = checks.format_shape(num.shape)
    if num.size == 0:
        return Comparison(name, True, checks._line(checks._OK, name, f"{shape}  empty"))

    err = _relative_errors(a, num, max(1e-12, noise / tol))
    finite = np.isfinite(a) & np.isfinite(num)
    bad = ~finite | (err > tol)
    if not bad.any():
        return Comparison(name, True, checks._line(checks._OK, name, f"{shape}  rel err {checks._err(err.max())}"))

    if not finite.all():
        idx = checks._first(~finite)
    else:
        idx = np.unravel_index(int(np.argmax(err)), err.shape)
    worst = float(err[finite].max()) if finite.any() else float("nan")
    shown_a, shown_n = checks._pair(a[idx], num[idx])
    where = f", worst at {checks._fmt_idx(idx)}" if len(idx) else ""
    text = f"{shape}  rel err {checks._err(err[idx])}{where} (analytic {shown_a}, numerical {shown_n})"
    if num.size > 1:
        text += f"  {int(bad.sum())}/{num.size} off"
    num_bad = ~np.isfinite(num)
    if num_bad.any():
        hints = [f"the numerical gradient is not finite{checks._at(checks._first(num_bad))}: "
                 "f(x ± eps) is nan or inf there"]
    else:
        hints = checks._value_hints(a, num, hint_rtol, hint_atol, src=src, max_rel=worst,
                                    got_word="analytic", exp_word="numerical")
    return Comparison(name, False, checks._line(checks._BAD, name, text + checks._hints(hints)))


def assert_gradcheck(name: str, f, x, analytic, **kw) -> Comparison:
    """Like `gradcheck` (keywords eps, tol), but raise CheckFailed(message) when not ok."""
    __tracebackhide__ = True  # pytest leaves this frame out of tracebacks (IPython keeps the raising frame)
    result = gradcheck(name, f, x, analytic, **kw)
    if not result.ok:
        raise CheckFailed(result.message)
    return result
