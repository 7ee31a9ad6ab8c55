"""Compare a result with a reference and explain the difference in one line per tensor.

In the spirit of ``cmp(name, mine, torch)`` from makemore part 4::

    ✓ dW      (3, 4)  max |Δ| 2.22e-16
    ✗ dW      (3, 4)  max |Δ| 3.10e-01 at [2, 0] (got 0.62, expected 0.31)  max rel 1.00e+00  12/12 off — looks off by a factor of 2 (got ≈ 2 × expected)
    ✗ db      shape (5,), expected (5, 1) — you returned (5,) where (5, 1) is expected: reshape or keep the axis (keepdims=True)

``got`` is always untrusted: it is read only through an allow-list of exact types
(Python bool/int/float, NumPy scalars, numeric ``np.ndarray`` and subclasses viewed as plain
arrays, lists/tuples of those, and ``torch.Tensor`` if torch is already imported). No method of
an unknown object is ever called (no ``==``, ``bool``, ``float``, ``len``, ``__array__``,
``__repr__``), so an object that lies about itself is rejected, never passed.
``expected`` is a trusted reference.

This module imports only NumPy and the standard library.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from dataclasses import dataclass
from typing import Iterator

import numpy as np

__all__ = [
    "CheckFailed",
    "Comparison",
    "as_array",
    "compare",
    "assert_close",
    "assert_shape",
    "compare_scalar",
    "assert_scalar",
    "compare_shape_tuple",
    "assert_shape_tuple",
    "assert_raises",
    "inputs_unchanged",
    "format_shape",
]

_OK, _BAD = "✓", "✗"
_MAX_DEPTH = 32  # nested lists deeper than this are rejected (also stops self-containing lists)

# Allowed NumPy scalar types, held by id(): `type(x) in a_set` would ask the type's metaclass
# for __hash__ and __eq__, which an untrusted class can make say "yes".
_INT_TYPES = frozenset(id(np.dtype(c).type) for c in np.typecodes["AllInteger"])
_FLOAT_TYPES = frozenset(id(np.dtype(c).type) for c in np.typecodes["Float"])
_REAL_NP_SCALARS = _INT_TYPES | _FLOAT_TYPES
_NP_SCALARS = _REAL_NP_SCALARS | {id(np.bool_)}
# a source dtype this coarse explains a relative error up to this size
_LOW_PRECISION = {"float16": 5e-2, "bfloat16": 5e-2, "float32": 1e-4}


class CheckFailed(AssertionError):
    """A check failed; the message is the diagnosis a student reads."""

    def _render_traceback_(self) -> list[str]:
        """What IPython and Jupyter show for a failed check: the diagnosis alone.

        The frames would only show this module's internals; the message already names
        the check that failed and what came back.
        """
        lines = str(self).splitlines() or [""]
        return [f"\x1b[0;31mCheckFailed\x1b[0m: {lines[0]}", *lines[1:]]


@dataclass(frozen=True)
class Comparison:
    """Outcome of one check: ``message`` is the one line a student reads, pass or fail."""

    name: str
    ok: bool
    message: str

    def __str__(self) -> str:
        return self.message


class _Reject(Exception):
    """Internal: `got` cannot be used; `reason` says why (without the name)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ----------------------------------------------------------------------------------------------
# formatting


def _line(mark: str, name: str, rest: str) -> str:
    return f"{mark} {name:<7} {rest}"


def format_shape(shape) -> str:
    """A shape as Python writes a tuple: (7, 1), (7,), ()."""
    shape = tuple(int(n) for n in shape)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _fmt_idx(idx) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _at(idx) -> str:
    return f" at {_fmt_idx(idx)}" if len(idx) else ""


def _num(v) -> str:
    return f"{float(v):.4g}"


def _pair(got, expected) -> tuple:
    """got and expected with .4g, or with more digits when .4g would show them equal."""
    got, expected = float(got), float(expected)
    for digits in (4, 6, 8, 12, 17):
        a, b = f"{got:.{digits}g}", f"{expected:.{digits}g}"
        if a != b:
            break
    return a, b


def _err(v) -> str:
    return f"{float(v):.2e}"


def _hints(hints) -> str:
    hints = [h for h in hints if h]
    return " — " + "; ".join(hints) if hints else ""


def _type_name(x) -> str:
    # type.__repr__ ignores any metaclass __repr__, so this runs no code of the object's author
    return type.__repr__(type(x))


def _class_name(t: type) -> str:
    # read through type's own descriptor: a metaclass cannot intercept it
    return type.__dict__["__name__"].__get__(t, type)


def _torch_tensor_type():
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None) if torch is not None else None


_SHORT = 40  # longest literal shown in a description


def _short(text: str) -> str:
    return text if len(text) <= _SHORT else text[:_SHORT - 3] + "..."


def _literal(x, depth: int = 0):
    """Python-literal text of a number or a nested tuple/list of numbers, e.g. (4, 3), or None.

    Only exact built-in and allow-listed NumPy types are read, so no foreign code runs; stops
    reading once the text is longer than can be shown.
    """
    t = type(x)
    if t is bool or t is int or t is float:
        return repr(x)
    if id(t) in _NP_SCALARS:
        return str(x)  # 3, 2.5: what was typed, not np.int64(3)
    if (t is tuple or t is list) and depth < 3:
        parts, length = [], 0
        for item in x:  # an exact tuple or list: iterating runs no foreign code
            text = _literal(item, depth + 1)
            if text is None:
                return None
            parts.append(text)
            length += len(text) + 2
            if length > _SHORT:
                parts.append("...")
                break
        inner = ", ".join(parts) + ("," if t is tuple and len(parts) == 1 else "")
        return f"({inner})" if t is tuple else f"[{inner}]"
    return None


def _describe(x) -> str:
    """A short, safe description of an untrusted object (never calls its methods)."""
    t = type(x)
    if x is None:
        return "None"
    if t is bool or t is int or t is float:
        return _short(repr(x))
    if t is str:
        return repr(x) if len(x) <= 40 else repr(x[:37]) + "..."
    if id(t) in _NP_SCALARS:
        return repr(x)
    if issubclass(t, np.ndarray):
        return f"an array of shape {format_shape(np.ndarray.view(x, np.ndarray).shape)}"
    tensor = _torch_tensor_type()
    if tensor is not None and t is tensor:
        return f"a tensor of shape {format_shape(x.shape)}"
    if t is list or t is tuple:
        text = _literal(x)
        return _short(text) if text is not None else f"a {t.__name__} of length {len(x)}"
    return f"an object of type {_type_name(x)}"


# ----------------------------------------------------------------------------------------------
# conversion of untrusted values


def _from_ndarray(arr: np.ndarray, src: str | None = None):
    kind = arr.dtype.kind
    if kind == "O":
        raise _Reject("expected an array of numbers, got an array of dtype object "
                      "(a ragged list, or numbers mixed with other things?)")
    if kind == "c":
        raise _Reject(f"expected real numbers, got complex values (dtype {arr.dtype})")
    if kind not in "biuf":
        raise _Reject(f"expected an array of numbers, got an array of dtype {arr.dtype}")
    return np.array(arr, dtype=np.float64, copy=True), (src or arr.dtype.name)


def _from_tensor(t):
    t = t.detach()
    if t.is_complex():
        raise _Reject(f"expected real numbers, got complex values ({t.dtype})")
    src = str(t.dtype).replace("torch.", "")
    t = t.cpu().resolve_neg()
    try:
        arr = t.numpy()
    except (TypeError, RuntimeError):  # e.g. bfloat16 has no NumPy dtype
        arr = t.double().numpy()
    return _from_ndarray(arr, src)


def _from_sequence(seq, depth: int):
    if depth >= _MAX_DEPTH:
        raise _Reject(f"expected an array of numbers, got a list nested more than {_MAX_DEPTH} deep")
    items = []
    for item in seq:  # seq is an exact list or tuple: iterating runs no foreign code
        t = type(item)
        if t is bool or t is int or t is float or id(t) in _NP_SCALARS:
            items.append(float(item))
        elif t is list or t is tuple:
            items.append(_from_sequence(item, depth + 1)[0])
        elif item is None:
            raise _Reject("expected an array of numbers, got a list containing None")
        else:
            items.append(_convert(item, depth + 1)[0])
    try:
        return np.array(items, dtype=np.float64), "float64"
    except ValueError:
        raise _Reject("expected an array of numbers, got a ragged nested list "
                      "(rows of different lengths)") from None


def _convert(got, depth: int = 0):
    """Return (float64 copy, name of the source dtype) or raise _Reject."""
    t = type(got)
    if got is None:
        raise _Reject("got None — did you forget `return`?")
    if t is bool or t is int or t is float:
        try:
            return np.array(float(got), dtype=np.float64), "float64"
        except OverflowError:
            raise _Reject("got an integer too large for float64") from None
    if id(t) in _NP_SCALARS:
        return np.array(got, dtype=np.float64), got.dtype.name
    if issubclass(t, np.complexfloating) or t is complex:
        raise _Reject(f"expected real numbers, got a complex number ({_class_name(t)})")
    if issubclass(t, np.ndarray):
        return _from_ndarray(np.ndarray.view(got, np.ndarray))
    if t is list or t is tuple:
        return _from_sequence(got, depth)
    tensor = _torch_tensor_type()
    if tensor is not None and t is tensor:
        return _from_tensor(got)
    if tensor is not None and issubclass(t, tensor):
        raise _Reject(f"expected a NumPy array, got {_type_name(got)}; "
                      "pass a plain tensor, e.g. x.detach()")
    raise _Reject(f"expected a NumPy array, got {_type_name(got)}")


def _convert_untrusted(got):
    try:
        return _convert(got)
    except _Reject:
        raise
    except Exception:  # e.g. RecursionError, or a torch conversion that fails
        raise _Reject(f"could not read {_type_name(got)} as an array of numbers") from None


def _expected_array(expected) -> np.ndarray:
    tensor = _torch_tensor_type()
    if tensor is not None and isinstance(expected, tensor):
        expected = expected.detach().cpu().numpy()
    return np.asarray(expected, dtype=np.float64)


def _scalar_advice(size: int, kind: str) -> str:
    """How to turn a returned array into the expected number; neutral about how it was computed."""
    if size == 1:
        return "return a Python float, e.g. " + ("float(value) or value.item()" if kind == "array" else "value.item()")
    return f"return one number as a Python float, not {'an' if kind == 'array' else 'a'} {kind} of {size} numbers"


def _real_scalar(got, *, allow_0d: bool) -> float:
    """Value of an untrusted real scalar, or _Reject with advice naming what came back."""
    t = type(got)
    if got is None:
        raise _Reject("got None — did you forget `return`?")
    if t is bool or t is np.bool_:
        raise _Reject(f"returned a bool ({bool(got)}); return a number")
    if t is int or t is float:
        try:
            return float(got)
        except OverflowError:
            raise _Reject("returned an integer too large for float64") from None
    if id(t) in _REAL_NP_SCALARS:
        return float(got)
    if issubclass(t, np.ndarray):
        arr = np.ndarray.view(got, np.ndarray)
        if allow_0d and arr.ndim == 0:
            return float(_from_ndarray(arr)[0])
        raise _Reject(f"returned an array of shape {format_shape(arr.shape)}; {_scalar_advice(arr.size, 'array')}")
    tensor = _torch_tensor_type()
    if tensor is not None and t is tensor:
        if allow_0d and got.dim() == 0:
            return float(_from_tensor(got)[0])
        raise _Reject(f"returned a tensor of shape {format_shape(got.shape)}; "
                      f"{_scalar_advice(got.numel(), 'tensor')}")
    if t is list or t is tuple:
        raise _Reject(f"returned a {t.__name__}; return a Python float")
    if issubclass(t, np.complexfloating) or t is complex:
        raise _Reject("returned a complex number; return a real Python float")
    raise _Reject(f"expected a Python float, got {_type_name(got)}")


def as_array(name: str, got) -> np.ndarray:
    """Untrusted ``got`` as a new float64 array; raise CheckFailed naming ``name`` if it is not numbers."""
    try:
        return _convert_untrusted(got)[0]
    except _Reject as r:
        raise CheckFailed(f"{name}: {r.reason}") from None


# ----------------------------------------------------------------------------------------------
# numerics


def _close_mask(g: np.ndarray, e: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """|g - e| <= atol + rtol |e| elementwise; equal infinities and NaN vs NaN count as close."""
    with np.errstate(all="ignore"):
        close = (np.abs(g - e) <= atol + rtol * np.abs(e)) & np.isfinite(e)  # inf would tolerate anything
        close |= g == e
        close |= np.isnan(g) & np.isnan(e)
    return close


def _near(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(_close_mask(a, b, rtol, atol).all())


def _first(mask: np.ndarray):
    return np.unravel_index(int(np.flatnonzero(mask)[0]), mask.shape)


def _hint_tol(rtol: float, atol: float):
    """Tolerances for recognising a mistake: a little looser than the check itself."""
    return max(rtol, 1e-6), atol


# ----------------------------------------------------------------------------------------------
# diagnosis: shapes


def _drop(shape, k):
    return shape[:k] + shape[k + 1:]


def _singleton_positions(longer, shorter):
    """Positions of the size-1 axes in `longer` whose removal gives `shorter`, or None."""
    positions, j = [], 0
    for i, n in enumerate(longer):
        if j < len(shorter) and n == shorter[j]:
            j += 1
        elif n == 1:
            positions.append(i)
        else:
            return None
    return positions if j == len(shorter) else None


def _axis_name(k: int) -> str:
    return f"axis {k} (the batch axis?)" if k == 0 else f"axis {k}"


def _reduces_to(full, reduced, k):
    """Whether reducing shape ``full`` over axis k gives ``reduced``: False (axis dropped),
    True (axis kept with size 1, keepdims=True), or None (it does not)."""
    if full[k] == 0:
        return None
    if len(full) == len(reduced) + 1 and _drop(full, k) == reduced:
        return False
    if len(full) == len(reduced) and reduced[k] == 1 and full[k] > 1 and _drop(full, k) == _drop(reduced, k):
        return True
    return None


def _grown_axis(gs, es):
    """The one axis where got has size > 1 and expected size 1, all other sizes equal; else None."""
    if len(gs) != len(es):
        return None
    diffs = [k for k, (a, b) in enumerate(zip(gs, es)) if a != b]
    if len(diffs) == 1 and es[diffs[0]] == 1 and gs[diffs[0]] > 1:
        return diffs[0]
    return None


def _grown_hint(gs, es, k, *, confirmed_no_reduction: bool) -> str:
    """Why axis k of got has size gs[k] where expected has 1 (see `_grown_axis`)."""
    n = gs[k]
    text = f"axis {k} grew from 1 to {n}: an operand of the wrong shape was broadcast along it"
    if len(es) >= 2 and k == len(es) - 2 and es[-1] == n:
        # an (n, 1) column meets a row of n: the row vector (n,) was meant
        text += f", e.g. {format_shape((n, 1))} where {format_shape((n,))} is meant"
    if not confirmed_no_reduction:  # without the values a missing reduction is just as likely
        text += f", or a sum / mean over axis {k} (keepdims=True) is missing"
    return text + "?"


def _shape_hint(gs, es, g=None, e=None, rtol=1e-7, atol=1e-9):
    """The most likely cause of got.shape != expected.shape, or None.

    Causes are confirmed with the values when both arrays are given; a cause that the values
    contradict is only offered as a guess, after every confirmed cause has been tried.
    """
    gs, es = tuple(gs), tuple(es)
    have = g is not None and e is not None
    rt, at = _hint_tol(rtol, atol)
    n_gs, n_es = len(gs), len(es)
    guesses = []

    def near(a, b):
        return have and _near(a, b, rt, at)

    with np.errstate(all="ignore"):
        # 1. reversed / permuted axes
        if n_gs == 2 and gs == es[::-1]:
            if have and near(g.T, e):
                return "looks transposed (got.T matches)"
            guesses.append("shape is reversed: rows and columns swapped (a transpose, or the wrong axis)?")
        elif 3 <= n_gs == n_es <= 5 and sorted(gs) == sorted(es):
            for perm in itertools.permutations(range(n_gs)):
                if have and tuple(gs[p] for p in perm) == es and near(g.transpose(perm), e):
                    return f"axes in the wrong order: got.transpose{perm} matches"
            guesses.append("same axis sizes in a different order: check the order of the axes (transpose)")

        # 2. size-1 axes added or lost
        positions = None
        if n_gs > n_es:
            positions = _singleton_positions(gs, es)
        elif n_gs < n_es:
            positions = _singleton_positions(es, gs)
        if positions and not guesses:
            differ = " (and the values differ too)" if have and not near(g.reshape(es), e) else ""
            if n_gs == 1 and es == (gs[0], 1):
                return (f"you returned {format_shape(gs)} where {format_shape(es)} is expected: "
                        f"reshape or keep the axis (keepdims=True){differ}")
            if n_es == 1 and gs == (es[0], 1):
                return (f"you returned {format_shape(gs)} where {format_shape(es)} is expected: "
                        f"drop the axis (x[:, 0] or x.reshape(-1)) or do not use keepdims=True{differ}")
            what = "extra" if n_gs > n_es else "missing"
            where = (f"axis of size 1 at position {positions[0]}" if len(positions) == 1 else
                     "axes of size 1 at positions " + ", ".join(map(str, positions)))
            return f"{what} {where}{differ}"

        # 3. a reduction that is missing (got keeps an axis that expected has reduced)
        for k in range(n_gs) if have else ():
            keep = _reduces_to(gs, es, k)
            if keep is None:
                continue
            suffix = ", with keepdims=True" if keep else ""
            if near(g.sum(axis=k, keepdims=keep), e):
                return f"missing a sum over {_axis_name(k)}{suffix}"
            if near(g.mean(axis=k, keepdims=keep), e):
                return f"missing a mean over {_axis_name(k)}{suffix}"

        # 4. ... or the converse: got has reduced an axis that should stay
        for k in range(n_es) if have else ():
            keep = _reduces_to(es, gs, k)
            if keep is None:
                continue
            if near(g, e.sum(axis=k, keepdims=keep)):
                return f"you summed over {_axis_name(k)}, which should stay"
            if near(g, e.mean(axis=k, keepdims=keep)):
                return f"you averaged over {_axis_name(k)}, which should stay"

        # 5. an (N,) and an (N, 1) broadcast against each other
        if n_gs == 2 and n_es in (1, 2) and es[1:] in ((), (1,)) and es[0] > 1 and min(gs) > 1 and es[0] in gs:
            n = es[0]
            a, b = format_shape((n,)), format_shape((n, 1))
            if gs == (n, n) and have and near(np.diagonal(g), e.reshape(-1)):
                return (f"a {a} and a {b} broadcast against each other (the diagonal matches); "
                        f"make both {b} or both {a}")
            if gs == (n, n):
                guesses.append(f"a {a} and a {b} broadcasting against each other? make both {b} or both {a}")
            elif gs[0] == n:
                guesses.append(f"a {b} and a {format_shape((gs[1],))} broadcasting against each other? "
                               "check that both operands have the same shape")

        # 6. the right numbers, arranged differently
        if have and g.size == e.size and near(g.reshape(es), e):
            return f"the right numbers in the wrong shape: got.reshape{format_shape(es)} matches"

        # 7. guesses from the shapes alone
        grown = _grown_axis(gs, es)
        if grown is not None:
            guesses.append(_grown_hint(gs, es, grown, confirmed_no_reduction=have))
        if n_gs == n_es + 1:
            k = next((k for k in range(n_gs) if _drop(gs, k) == es), None)
            if k is not None:
                guesses.append(f"an extra axis of size {gs[k]} at position {k}: a missing sum or mean over it?")
        if n_es == n_gs + 1:
            k = next((k for k in range(n_es) if _drop(es, k) == gs), None)
            if k is not None:
                guesses.append(f"axis {k} (size {es[k]}) is missing: reduced over it by mistake?")
    return guesses[0] if guesses else None


def _shape_message(gs, es, g=None, e=None, rtol=1e-7, atol=1e-9) -> str:
    hint = _shape_hint(tuple(gs), tuple(es), g, e, rtol, atol)
    return f"shape {format_shape(gs)}, expected {format_shape(es)}" + _hints([hint])


# ----------------------------------------------------------------------------------------------
# diagnosis: values of the same shape


_EXACT = 1e-9  # a ratio this close to an integer is no accident ...
_MAX_MULTIPLE = 10_000


def _round_number(x: float) -> bool:
    """Whether x is written with at most 6 significant digits (2.3, 40, 0.125): multiples of such
    numbers coincide too easily for an exact ratio to mean anything."""
    return float(f"{x:.6g}") == x


def _exact_multiple_hint(got: float, exp: float, got_word: str, exp_word: str):
    """One number is exactly k times (or 1/k of) another, k in 3..10000: a sum for a mean or back.

    Any number is some multiple of another, so only an exact integer ratio (to 1e-9) counts as
    evidence, and not between two round numbers (6.9 is 3 × 2.3 by coincidence as often as not).
    """
    if not (np.isfinite(got) and np.isfinite(exp)) or got == 0.0 or exp == 0.0:
        return None
    if _round_number(exp) and _round_number(got):
        return None
    ratio = got / exp
    big = abs(ratio) if abs(ratio) >= 1 else abs(1.0 / ratio)
    n = int(round(big))
    if not (3 <= n <= _MAX_MULTIPLE and abs(big - n) <= _EXACT * big):
        return None
    sign = "-" if ratio < 0 else ""
    if abs(ratio) > 1:
        return f"{got_word} is exactly {sign}{n} × {exp_word}: a sum where a mean is expected?"
    return (f"{got_word} is exactly {sign}{exp_word} / {n}: a mean where a sum is expected, "
            "or a division too many?")


def _factor_hint(g, e, rtol, atol, got_word, exp_word):
    if not (np.isfinite(g).all() and np.isfinite(e).all()):
        return None
    with np.errstate(all="ignore"):
        scale = float(np.abs(e).max())
        if scale == 0.0:
            return None
        es, gs = e.reshape(-1) / scale, g.reshape(-1) / scale
        c = float(np.dot(gs, es) / np.dot(es, es))
        if not np.isfinite(c) or c == 0.0 or not _near(g, c * e, rtol, atol):
            return None
    k = abs(c)
    if abs(k - 1.0) <= 1e-3:  # a factor this close to 1 is not a factor mistake
        return f"sign flipped ({got_word} ≈ -{exp_word})" if c < 0 else None
    big = k if k >= 1 else 1.0 / k
    n = int(round(big))
    sign = "-" if c < 0 else ""
    if g.size == 1 and n != 2:
        return _exact_multiple_hint(float(g.reshape(-1)[0]), float(e.reshape(-1)[0]), got_word, exp_word)
    if abs(big - n) <= max(rtol, 1e-9) * big and n <= 10**6:
        shape = e.shape
        if n != 2 and len(shape) and n == shape[0]:
            label = f"N = {n}, the batch size?"
        elif n != 2 and n in shape:
            label = f"{n}, the size of axis {shape.index(n)}?"
        else:
            label = str(n)
        rel = f"{got_word} ≈ {sign}{n} × {exp_word}" if k > 1 else f"{got_word} ≈ {sign}{exp_word} / {n}"
        if n >= 3:
            rel += ": a sum where a mean is expected?" if k > 1 else ": a mean where a sum is expected?"
        return f"{'sign flipped and ' if c < 0 else ''}looks off by a factor of {label} ({rel})"
    nonzero = np.abs(e[e != 0])
    if g.size >= 2 and np.unique(nonzero).size >= 2:
        return f"{got_word} ≈ {c:.4g} × {exp_word} (a constant factor)"
    return None


def _relu_hint(g, e, rtol, atol, exp_word):
    """got differs only where expected is 0 and got is negative, and expected is never negative."""
    if g.size < 2 or not (e >= 0).all():
        return None
    bad = ~_close_mask(g, e, rtol, atol)
    if bad.any() and (e[bad] == 0).all() and (g[bad] < 0).all():
        where = "0 is expected" if exp_word == "expected" else f"{exp_word} is 0"
        return f"negative values where {where}: a missing ReLU / clip at 0?"
    return None


def _same_in_every_row(x, rtol, atol, scale) -> bool:
    return bool((np.abs(x - x[:1]) <= atol + rtol * scale).all())


def _bias_hint(g, e, rtol, atol, got_word, exp_word):
    """got - expected is one row repeated in every row, far above the round-off, and expected is not."""
    if e.ndim < 2 or e.shape[0] < 2 or not (np.isfinite(g).all() and np.isfinite(e).all()):
        return None
    if _same_in_every_row(e, rtol, atol, np.abs(e)):
        return None  # every row of expected is the same: any got with repeated rows would fit
    d = g - e
    spread = float(np.abs(d - d[:1]).max())
    if not _same_in_every_row(d, rtol, atol, np.maximum(np.abs(g), np.abs(e))):
        return None
    if not float(np.abs(d[0]).max()) > max(1e3 * spread, atol):
        return None  # a difference at the level of the tolerance has no shape worth reading
    return (f"{got_word} − {exp_word} is the same in every row: "
            "a bias missing, added twice, or of the wrong sign?")


def _value_hints(g, e, rtol, atol, *, src="float64", max_rel=None, plain_rtol=None,
                 got_word="got", exp_word="expected", forward=False):
    """Likely causes of a value mismatch between same-shape arrays; only on clear evidence.

    forward: the values are the output of a computation (not a gradient), so a missing ReLU or
    a wrong bias can explain them.
    """
    hints = []
    with np.errstate(all="ignore"):
        finite_e = np.isfinite(e)
        low = src in _LOW_PRECISION and src != "float64"
        for test, word, cause in ((np.isnan, "NaN", "an unstable exp/log or a 0/0?"),
                                  (np.isinf, "inf", "an overflowing exp or a division by 0?")):
            if low:  # the likelier cause: the range of the low precision, not the formula
                cause = (f"got {src} values, which overflow beyond {float(np.finfo(src).max):.3g} (float64 goes "
                         "to 1.8e308): compute in float64")
            mask = test(g) & finite_e
            if mask.any():
                more = int(mask.sum()) - 1
                where = _at(_first(mask))
                hints.append(f"{word}{where}{f' (and {more} more)' if more else ''}: {cause}")
        if hints:
            return hints
        if g.size > 1 and (g == 0).all() and (np.abs(e[finite_e]) > atol).any():
            return ["all zeros — gradient not accumulated / function not applied?"]
        if (e.ndim == 2 and e.shape[0] == e.shape[1] >= 2 and not _near(e, e.T, rtol, atol)
                and _near(g, e.T, rtol, atol)):
            return [f"matches the transpose ({got_word} ≈ {exp_word}.T)"]
        factor = _factor_hint(g, e, rtol, atol, got_word, exp_word)
        if factor:
            return [factor]
        if forward:
            structure = _relu_hint(g, e, rtol, atol, exp_word) or _bias_hint(g, e, rtol, atol, got_word, exp_word)
            if structure:
                return [structure]
        if max_rel is not None and max_rel <= _LOW_PRECISION.get(src, 0.0):
            return [f"got {src} values; compute in float64 (the reference is float64)"]
        if max_rel is not None and plain_rtol is not None and max_rel <= 1e-4:
            return [f"close, but not within rtol={plain_rtol:g}"]
    return hints


def _compare_arrays(name, g, e, rtol, atol, src="float64") -> Comparison:
    shape = format_shape(e.shape)
    if g.shape != e.shape:
        return Comparison(name, False, _line(_BAD, name, _shape_message(g.shape, e.shape, g, e, rtol, atol)))
    if e.size == 0:
        return Comparison(name, True, _line(_OK, name, f"{shape}  empty"))
    with np.errstate(all="ignore"):
        close = _close_mask(g, e, rtol, atol)
        diff = np.where(close & ~np.isfinite(g - e), 0.0, np.abs(g - e))
        if close.all():
            worst = float(diff.max())
            text = "exact" if worst == 0.0 else f"max |Δ| {_err(worst)}"
            return Comparison(name, True, _line(_OK, name, f"{shape}  {text}"))
        bad = ~close
        nonfinite = bad & ~np.isfinite(diff)
        if nonfinite.any():
            idx = _first(nonfinite)
        else:
            idx = np.unravel_index(int(np.argmax(np.where(bad, diff, -1.0))), e.shape)
        rel = diff / np.abs(e)
        rel_bad = rel[bad & np.isfinite(diff)]
        max_rel = float(rel_bad.max()) if rel_bad.size else None
    shown_g, shown_e = _pair(g[idx], e[idx])
    text = f"{shape}  max |Δ| {_err(diff[idx])}{_at(idx)} (got {shown_g}, expected {shown_e})"
    if max_rel is not None and np.isfinite(max_rel):  # inf where expected is 0: says nothing
        text += f"  max rel {_err(max_rel)}"
    if e.size > 1:
        text += f"  {int(bad.sum())}/{e.size} off"
    rt, at = _hint_tol(rtol, atol)
    text += _hints(_value_hints(g, e, rt, at, src=src, max_rel=max_rel, plain_rtol=rtol, forward=True))
    return Comparison(name, False, _line(_BAD, name, text))


# ----------------------------------------------------------------------------------------------
# public checks


def compare(name: str, got, expected, *, rtol: float = 1e-7, atol: float = 1e-9) -> Comparison:
    """Compare untrusted ``got`` with the reference ``expected``, e.g. dW: (H, D) against (H, D).

    Passes when the shapes are equal and |got - expected| <= atol + rtol |expected| everywhere
    (NaN where expected has NaN counts as equal). Never raises because of ``got``: junk, None or
    a wrong shape become ``ok=False`` with a diagnosis.
    """
    name = str(name)
    e = _expected_array(expected)
    try:
        g, src = _convert_untrusted(got)
    except _Reject as r:
        return Comparison(name, False, _line(_BAD, name, r.reason))
    return _compare_arrays(name, g, e, rtol, atol, src)


def assert_close(name: str, got, expected, *, rtol: float = 1e-7, atol: float = 1e-9) -> Comparison:
    """Like `compare`, but raise CheckFailed(message) when not ok."""
    __tracebackhide__ = True  # pytest leaves this frame out of tracebacks (IPython keeps the raising frame)
    result = compare(name, got, expected, rtol=rtol, atol=atol)
    if not result.ok:
        raise CheckFailed(result.message)
    return result


def assert_shape(name: str, got, expected_shape) -> None:
    """Raise CheckFailed unless untrusted ``got`` is an array of numbers of shape ``expected_shape``."""
    __tracebackhide__ = True  # pytest leaves this frame out of tracebacks (IPython keeps the raising frame)
    name = str(name)
    es = tuple(int(n) for n in expected_shape)
    try:
        g = _convert_untrusted(got)[0]
    except _Reject as r:
        raise CheckFailed(_line(_BAD, name, r.reason)) from None
    if g.shape != es:
        raise CheckFailed(_line(_BAD, name, _shape_message(g.shape, es)))


def compare_scalar(name: str, got, expected, *, rtol: float = 1e-7, atol: float = 1e-9) -> Comparison:
    """Compare an untrusted real scalar: a Python int/float, a NumPy scalar, or a 0-d array or tensor
    (not a bool, not an array with axes)."""
    name = str(name)
    exp = float(expected)
    try:
        val = _real_scalar(got, allow_0d=True)
    except _Reject as r:
        return Comparison(name, False, _line(_BAD, name, r.reason))
    g, e = np.array(val), np.array(exp)
    with np.errstate(all="ignore"):
        ok = bool(_close_mask(g, e, rtol, atol))
        delta = 0.0 if ok and not np.isfinite(val - exp) else abs(val - exp)
    if ok:
        text = f"{_num(val)}  " + ("exact" if delta == 0.0 else f"|Δ| {_err(delta)}")
        return Comparison(name, True, _line(_OK, name, text))
    shown_g, shown_e = _pair(val, exp)
    text = f"got {shown_g}, expected {shown_e}  |Δ| {_err(delta)}"
    max_rel = None
    if exp != 0 and np.isfinite(delta):
        max_rel = delta / abs(exp)
        text += f"  rel {_err(max_rel)}"
    rt, at = _hint_tol(rtol, atol)
    text += _hints(_value_hints(g, e, rt, at, max_rel=max_rel, plain_rtol=rtol))
    return Comparison(name, False, _line(_BAD, name, text))


def assert_scalar(name: str, got, expected, **tol) -> Comparison:
    """Like `compare_scalar` (keywords rtol, atol), but raise CheckFailed(message) when not ok."""
    __tracebackhide__ = True  # pytest leaves this frame out of tracebacks (IPython keeps the raising frame)
    result = compare_scalar(name, got, expected, **tol)
    if not result.ok:
        raise CheckFailed(result.message)
    return result


def _shape_tuple_items(got):
    """Elements of an untrusted tuple of ints, or _Reject."""
    t = type(got)
    if got is None:
        raise _Reject("got None — did you forget `return`?")
    size_type = getattr(sys.modules.get("torch"), "Size", None)
    if t is list:
        if len(got) <= 8 and all(type(v) is int for v in got):
            raise _Reject(f"returned a list {got!r}; return a tuple, e.g. {format_shape(got)}")
        raise _Reject("returned a list; return a tuple of ints")
    if t is not tuple and not (size_type is not None and t is size_type):
        if issubclass(t, np.ndarray):
            raise _Reject(f"returned {_describe(got)}; return a tuple of ints, e.g. (N, H)")
        raise _Reject(f"expected a tuple of ints, got {_type_name(got)}")
    items = []
    for i, v in enumerate(tuple.__iter__(got)):
        tv = type(v)
        if tv is int or id(tv) in _INT_TYPES:
            items.append(int(v))
        elif tv is bool or tv is np.bool_:
            raise _Reject(f"element {i} is a bool ({bool(v)}); sizes are ints")
        elif tv is float or id(tv) in _FLOAT_TYPES:
            raise _Reject(f"element {i} is a float ({float(v)!r}); sizes are ints: use // or int(...)")
        else:
            raise _Reject(f"element {i} is {_describe(v)}; sizes are ints")
    return tuple(items)


def compare_shape_tuple(name: str, got, expected: tuple) -> Comparison:
    """Check that untrusted ``got`` is a tuple of ints equal to ``expected`` (e.g. a computed output shape)."""
    name = str(name)
    exp = tuple(int(n) for n in expected)
    try:
        items = _shape_tuple_items(got)
    except _Reject as r:
        return Comparison(name, False, _line(_BAD, name, r.reason))
    if items == exp:
        return Comparison(name, True, _line(_OK, name, format_shape(items)))
    text = f"{format_shape(items)}, expected {format_shape(exp)}"
    if len(items) != len(exp):
        hint = f"{len(items)} dims instead of {len(exp)}"
        other = _shape_hint(items, exp)
        hints = [hint + (f": {other}" if other and "size 1" in other else "")]
    elif len(exp) >= 2 and items == exp[::-1]:
        hints = ["looks reversed"]
    else:
        diffs = [i for i, (a, b) in enumerate(zip(items, exp)) if a != b]
        hint = ", ".join(f"{items[i]} at position {i} instead of {exp[i]}" for i in diffs)
        # only between two real sizes: 0 vs 1 is a different rule, and 1 vs 2 is the size that stretches
        if all(abs(items[i] - exp[i]) == 1 and min(items[i], exp[i]) >= 2 for i in diffs):
            hint += " (off by one)"
        hints = [hint]
        if any(exp[i] == 0 and items[i] != 0 for i in diffs):
            hints.append("a size of 0 is a real size: only 1 stretches (0 with 1 gives 0)")
    return Comparison(name, False, _line(_BAD, name, text + _hints(hints)))


def assert_shape_tuple(name: str, got, expected) -> Comparison:
    """Like `compare_shape_tuple`, but raise CheckFailed(message) when not ok."""
    __tracebackhide__ = True  # pytest leaves this frame out of tracebacks (IPython keeps the raising frame)
    result = compare_shape_tuple(name, got, expected)
    if not result.ok:
        raise CheckFailed(result.message)
    return result


def _describe_inputs(args, kwargs) -> str:
    values = list(args) + list(kwargs.values())
    if values and all(issubclass(type(v), np.ndarray) for v in values):
        shapes = [format_shape(np.ndarray.view(v, np.ndarray).shape) for v in values]
        return "for shapes " + (", ".join(shapes[:-1]) + " and " + shapes[-1] if len(shapes) > 1 else shapes[0])
    parts = [_describe(v) for v in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()]
    return "for inputs (" + ", ".join(parts) + ")" if parts else "when called"


def _exception_text(exc: BaseException) -> str:
    """The message of an exception, read from its args without calling its methods."""
    args = BaseException.args.__get__(exc)
    if len(args) == 1 and type(args[0]) is str:
        text = args[0]
    else:
        text = ", ".join(a if type(a) is str else _describe(a) for a in args)
    return text if len(text) <= 200 else text[:197] + "..."


def _exc_type_name(exc_type) -> str:
    if isinstance(exc_type, tuple):
        return " or ".join(t.__name__ for t in exc_type)
    return exc_type.__name__


def assert_raises(name: str, fn, *args, exc_type=ValueError, mentions=(), **kwargs) -> None:
    """Call ``fn(*args, **kwargs)`` and raise CheckFailed unless it raises ``exc_type``
    whose message contains every string in ``mentions`` (case-insensitive).

    A ``NotImplementedError`` (an exercise not done yet) passes through unchanged."""
    __tracebackhide__ = True  # pytest leaves this frame out of tracebacks (IPython keeps the raising frame)
    name = str(name)
    wanted = _exc_type_name(exc_type)
    inputs = _describe_inputs(args, kwargs)
    try:
        returned = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - deliberately broad: we diagnose any exception
        if type(exc) is NotImplementedError and not issubclass(NotImplementedError, exc_type):
            raise  # an unfinished exercise is not a wrong answer: show the stub's own message
        if not issubclass(type(exc), exc_type):
            raise CheckFailed(_line(_BAD, name, f"should raise {wanted} {inputs}, but raised "
                                                f"{_class_name(type(exc))}: {_exception_text(exc)!r}")) from None
        text = _exception_text(exc)
        missing = [str(m) for m in mentions if str(m).lower() not in text.lower()]
        if missing:
            listed = ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
            raise CheckFailed(_line(_BAD, name, f"the {_class_name(type(exc))} message should mention "
                                                f"{listed}; it was: {text!r}")) from None
        return None
    raise CheckFailed(_line(_BAD, name, f"should raise {wanted} {inputs}, but returned {_describe(returned)}"))


@contextlib.contextmanager
def inputs_unchanged(call: str, hint: str = "", **arrays: np.ndarray) -> Iterator[None]:
    """Raise CheckFailed when the block changes one of the named arrays in place.

    Usage in a test cell::

        with inputs_unchanged("ReLU.forward", X=X_test):
            Y = relu.forward(X_test)

    The arrays are the caller's (trusted) inputs; a copy of each is taken on entry. An exception
    raised inside the block propagates unchanged.
    """
    before = {name: np.array(a, copy=True) for name, a in arrays.items()}
    yield
    changed = [name for name, a in arrays.items()
               if not (np.shape(a) == before[name].shape and np.array_equal(a, before[name], equal_nan=True))]
    if changed:
        what = (f"its input {changed[0]}" if len(changed) == 1
                else "its inputs " + ", ".join(changed[:-1]) + " and " + changed[-1])
        kept = "array as it was" if len(changed) == 1 else "arrays as they were"
        text = f"changed {what} in place; leave the caller's {kept} and compute a new one"
        raise CheckFailed(f"{_BAD} {call} {text}" + (f" — likely cause: {hint}" if hint else ""))
