"""Plain data in, plain data out: the building blocks every probe uses."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

#: How much of an exception message is kept in an Outcome.
MESSAGE_LIMIT = 500

#: NumPy scalar types accepted as numbers, held by id(): `type(x) in a_set` would ask
#: the type's metaclass for __eq__ and __hash__, which an untrusted class can make lie.
_NUMPY_SCALAR_IDS = frozenset(id(np.dtype(code).type) for code in "?bBhHiIlLqQefdg")


class UnsupportedOutput(TypeError):
    """The student's function returned something that is not plain data."""


@dataclass(frozen=True)
class Case:
    """One hidden input: a label a student may read, and the arguments.

    ``args`` and ``kwargs`` hold plain data only (arrays, numbers, strings,
    tuples, lists and dicts of them), so that a case can cross a process
    boundary without pickle (see ``wire``).
    """

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    #: the group of cases it belongs to, for partial credit (the judge's business: not sent to the probe)
    group: str = "main behaviour"


@dataclass(frozen=True)
class Outcome:
    """What the student's code did on one case, as plain data.

    ``kind`` is ``"returned"`` (``value`` holds the plain result),
    ``"raised"`` (``error`` holds the exception's class name, ``message`` its text)
    or ``"unsupported"`` (the result was not plain data; ``message`` says what it was).
    """

    kind: str
    value: Any = None
    error: str = ""
    message: str = ""


def plain(x: Any) -> Any:
    """Turn an untrusted return value into plain data, or raise UnsupportedOutput.

    Only exact built-in types and real NumPy arrays and scalars are accepted;
    nothing of the object's own code (``__eq__``, ``__array__``, ``__float__``...)
    is called. A ``torch.Tensor`` (exact type) becomes a NumPy array. Dicts
    need exact ``str`` keys.
    """
    t = type(x)
    if x is None or t is bool or t is int or t is float or t is str:
        return x
    if id(t) in _NUMPY_SCALAR_IDS:
        return x.item()
    if issubclass(t, np.ndarray):
        base = np.ndarray.view(x, np.ndarray)
        if base.dtype.kind not in "biuf":
            raise UnsupportedOutput(f"an array of dtype {base.dtype}")
        return np.array(base, copy=True)
    if t is tuple or t is list:
        return t(plain(v) for v in x)
    if t is dict:
        out = {}
        for k, v in dict.items(x):
            if type(k) is not str:
                raise UnsupportedOutput("a dict whose keys are not all strings")
            out[str.__str__(k)] = plain(v)
        return out
    torch = sys.modules.get("torch")
    if torch is not None and t is torch.Tensor:
        return plain(x.detach().cpu().numpy())
    raise UnsupportedOutput(f"an object of type {t.__module__}.{t.__qualname__}")


def copy_args(value: Any) -> Any:
    """A fresh copy of a case's plain arguments, so a student cannot edit them in place."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if type(value) in (tuple, list):
        return type(value)(copy_args(v) for v in value)
    if type(value) is dict:
        return {k: copy_args(v) for k, v in value.items()}
    return value


def raised(exc: BaseException) -> Outcome:
    """The Outcome of a student's exception: its class name and the start of its message."""
    try:
        message = str(exc)[:MESSAGE_LIMIT]
    except Exception:  # an exception whose __str__ fails
        message = "(its message could not be read)"
    return Outcome("raised", error=type(exc).__name__, message=message)


def call_plain(fn: Callable, *args: Any, **kwargs: Any) -> Outcome:
    """Call ``fn`` and record what it returned or raised, as plain data."""
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # the student's exception is data, not a crash
        return raised(exc)
    try:
        return Outcome("returned", value=plain(result))
    except UnsupportedOutput as exc:
        return Outcome("unsupported", message=f"returned {exc}")
