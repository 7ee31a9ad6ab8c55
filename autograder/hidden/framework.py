"""The three steps of a hidden check, kept apart.

A hidden check never trusts the student's process. It is written as three steps
whose data between them is plain (NumPy arrays, numbers, tuples, strings):

1. ``cases()``          make the inputs, from fixed seeds (runs anywhere);
2. ``call(obj, case)``  run the student's function on one case and turn what it
                        returned (or raised) into an :class:`Outcome`
                        (runs where the student's code runs);
3. ``judge(case, outcome)``  compare the outcome with the reference, PyTorch
                        wherever it has the operation (never runs student code).

Under stock nbgrader all three run in the student's kernel, through
:func:`run_in_kernel`. The hardened grader runs step 2 in a sandbox and steps 1
and 3 in a separate judge process, with the same classes.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from course.checks import CheckFailed, Comparison

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

    ``args`` holds plain data only (arrays, numbers, tuples of ints), so that
    it can cross a process boundary without pickle.
    """

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


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
    is called. A ``torch.Tensor`` (exact type) becomes a NumPy array.
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


def call_plain(fn: Callable, *args: Any, **kwargs: Any) -> Outcome:
    """Call ``fn`` and record what it returned or raised, as plain data."""
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # the student's exception is data, not a crash
        return Outcome("raised", error=type(exc).__name__, message=str(exc)[:MESSAGE_LIMIT])
    try:
        return Outcome("returned", value=plain(result))
    except UnsupportedOutput as exc:
        return Outcome("unsupported", message=f"returned {exc}")


def outcome_failure(name: str, case: Case, outcome: Outcome) -> Comparison | None:
    """The failed Comparison for an outcome that carries no usable value, else None."""
    if outcome.kind == "raised":
        if outcome.error == "NotImplementedError":
            return Comparison(name, False, f"✗ {name} [{case.label}]: not implemented yet")
        return Comparison(
            name, False, f"✗ {name} [{case.label}]: raised {outcome.error}: {outcome.message}"
        )
    if outcome.kind == "unsupported":
        return Comparison(
            name, False, f"✗ {name} [{case.label}]: {outcome.message}; return a NumPy array or a number"
        )
    return None


class HiddenCheck:
    """Base class of one exercise's hidden check. Subclasses set ``exercise`` and
    implement ``cases`` and ``judge``; ``call`` defaults to calling the student's
    function with a copy of the case's arguments."""

    exercise: str = ""

    def cases(self) -> list[Case]:
        raise NotImplementedError

    def call(self, obj: Any, case: Case) -> Outcome:
        return call_plain(obj, *copy_args(case.args), **copy_args(case.kwargs))

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        raise NotImplementedError


def run_in_kernel(check: HiddenCheck, obj: Any) -> list[Comparison]:
    """Run all three steps in this process (the stock nbgrader path).

    Raises CheckFailed with one line per failing case, so that nbgrader scores
    the test cell zero and the student reads the diagnosis.
    """
    results = [check.judge(case, check.call(obj, case)) for case in check.cases()]
    failures = [r for r in results if not r.ok]
    if failures:
        header = f"hidden checks of {check.exercise}: {len(failures)} of {len(results)} cases failed"
        raise CheckFailed("\n".join([header] + [r.message for r in failures]))
    return results


def by_exercise(checks: Sequence[HiddenCheck]) -> dict[str, HiddenCheck]:
    """Index a notebook's checks by exercise name, refusing duplicates."""
    index: dict[str, HiddenCheck] = {}
    for check in checks:
        if check.exercise in index:
            raise ValueError(f"two hidden checks for {check.exercise!r}")
        index[check.exercise] = check
    return index
