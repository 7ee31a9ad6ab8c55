"""Checks of notebook 07 (regularization): one contract for the visible and hidden checks.

* ``dropout(x, p, training, rng)`` returns the pair (out, mask), a tuple or a list, of float64 NumPy
  arrays (or float64 torch tensors) of x's shape: :func:`dropout_form_problem`.
  Its randomness is judged by statistics only (two correct implementations drawing from the same
  generator in different ways get different masks): :func:`dropout_problem` checks one training-mode
  call — the mask holds only 0 and 1/(1 - p), out is x * mask (the kept entries scaled exactly), and
  the share kept and the mean of out are within a Hoeffding bound that a correct implementation
  exceeds with probability below 1e-9. The same function serves the visible cell and the grader.
* ``dropout_backward``, ``sgd_step_weight_decay`` and ``l1_subgradient`` return a new float64 array
  of their first argument's shape (``course.elementwise.form_problem``).
* ``l2_penalty`` returns a number (``course.checks.compare_scalar``'s forms).
* ``best_epoch`` returns an index: :func:`index_problem`.

NumPy and the standard library only.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .checks import format_shape
from .elementwise import _kind, pair_form, result_form

__all__ = ["FAILURE_PROBABILITY", "hoeffding", "dropout_form", "dropout_form_problem", "dropout_problem",
           "index_form", "index_problem", "KEEP_RTOL"]

#: a correct dropout fails a statistical check with at most this probability
FAILURE_PROBABILITY = 1e-9
#: the kept entries must equal x / (1 - p) to this relative tolerance (rounding of x * (1 / (1 - p)))
KEEP_RTOL = 1e-12

dropout_form = pair_form


def hoeffding(n: int, spread: float = 1.0, delta: float = FAILURE_PROBABILITY) -> float:
    """t such that the mean of n independent variables, each within an interval of width ``spread``,
    strays from its expectation by t or more with probability at most ``delta`` (Hoeffding:
    2 exp(-2 n t² / spread²) = delta)."""
    return spread * math.sqrt(math.log(2.0 / delta) / (2.0 * n)) if n else math.inf


def dropout_form_problem(value: Any, shape: tuple) -> Optional[str]:
    """Why ``value`` (plain data, see :func:`dropout_form`) is not the pair (out, mask) of float64
    arrays of x's ``shape`` (None when it is)."""
    shape = tuple(shape)
    if type(value) not in (tuple, list) or len(value) != 2:
        what = (f"a {type(value).__name__} of length {len(value)}" if type(value) in (tuple, list)
                else "a single array" if isinstance(value, np.ndarray) else _kind(value))
        return f"returned {what}; return the pair (out, mask)"
    for name, item in zip(("out", "mask"), value):
        if not isinstance(item, np.ndarray):
            return f"{name} is {_kind(item)}; out and mask must be NumPy arrays of float64 of x's shape"
        if item.dtype == np.bool_:
            return (f"{name} is a boolean array; the mask holds numbers, 0.0 or 1/(1 - p) (float64), so that "
                    f"out = x * mask")
        if item.dtype != np.float64:
            return f"{name} is an array of {item.dtype}; out and mask must be float64, like x"
        if item.shape != shape:
            return f"{name} has shape {format_shape(item.shape)}, expected {format_shape(shape)}, the shape of x"
    return None


def dropout_problem(x: np.ndarray, p: float, out: np.ndarray, mask: np.ndarray) -> Optional[str]:
    """Why one training-mode result (out, mask) for x and 0 < p < 1 is not inverted dropout (None when
    it is). Statistics over x's entries; x should hold at least 10⁴ entries."""
    with np.errstate(all="ignore"):
        scale = 1.0 / (1.0 - p)
        if not (np.all(np.isfinite(mask)) and np.all(np.isfinite(out))):
            return "out or mask holds NaN or inf"
        kept = mask != 0
        if not np.allclose(mask[kept], scale, rtol=KEEP_RTOL, atol=0.0):
            values = np.unique(mask)[:4]
            text = f"the mask holds {values.tolist()}{' ...' if np.unique(mask).size > 4 else ''}, expected only 0 and 1/(1 - p) = {scale:.6g}"
            if np.allclose(mask[kept], 1.0 - p, rtol=1e-9):
                text += (" — likely cause: the kept entries are scaled by (1 - p); inverted dropout divides by it, "
                         "1/(1 - p), so that the expected value of out is x")
            elif np.allclose(mask[kept], 1.0, rtol=1e-9):
                text += (" — likely cause: the mask is not scaled: inverted dropout keeps an entry as x / (1 - p), "
                         "so that E[out] = x and nothing changes at evaluation")
            return text
        if not np.allclose(out, x * mask, rtol=KEEP_RTOL, atol=0.0):
            wrong = int(np.sum(~np.isclose(out, x * mask, rtol=KEEP_RTOL, atol=0.0)))
            return f"out is not x * mask on {wrong} of {x.size} entries"
        n = x.size
        share = float(np.mean(kept))
        tol = hoeffding(n)
        if abs(share - (1.0 - p)) > tol:
            text = (f"kept {share:.4f} of the entries, expected 1 - p = {1 - p:.4f} (± {tol:.4f}, a bound a correct "
                    f"dropout exceeds with probability < {FAILURE_PROBABILITY:g})")
            if abs(share - p) <= tol:
                text += " — likely cause: entries kept with probability p; p is the probability of dropping"
            elif share in (0.0, 1.0):
                text += " — likely cause: every entry got the same draw; draw one number per entry, shape x.shape"
            return text
        # Hoeffding for a weighted sum: t = sqrt(ln(2/δ) Σ (x_i s)² / 2) / n
        mean_tol = math.sqrt(math.log(2.0 / FAILURE_PROBABILITY) * float(np.sum((x * scale) ** 2)) / 2.0) / n
        if abs(float(np.mean(out)) - float(np.mean(x))) > mean_tol:
            return (f"the mean of out is {np.mean(out):.4f}, the mean of x {np.mean(x):.4f}: they should agree "
                    f"within {mean_tol:.4f}, since E[out] = x")
    return None


def index_form(got: Any) -> Any:
    """What the grader's probe hands the judge for a returned index (see ``result_form``)."""
    return result_form(got)


def index_problem(value: Any, n: int) -> Optional[str]:
    """Why ``value`` (plain data) is not an index into n epochs: a Python int or a NumPy integer (a 0-d
    integer array or tensor also does), 0 <= index < n."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
        value = int(value)
    if type(value) is not int:
        if type(value) is float and math.isfinite(value) and value == int(value):
            return f"returned the float {value}; return an int index (np.argmin gives one, int(...) converts)"
        return f"returned {_kind(value)}; return the index of the epoch, an int"
    if not 0 <= value < n:
        return f"returned {value}, which is not an index of the {n} epochs (0 to {n - 1})"
    return None
