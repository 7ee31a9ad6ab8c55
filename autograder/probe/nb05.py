"""Probes of notebook 05, activations (run in the student's process; no references here).

``watched`` calls the student's function on copies of the case's arguments, as the generic
``call`` probe does, and records two more things for the judge: the warnings the call raised
(NumPy's overflow, divide and invalid errors are turned into warnings for the call and caught, so
none reaches stderr) and which arguments the call changed in place. It never decides anything:
the judge (``autograder.hidden.nb05_activations``) does.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from .core import Case, Outcome, call_plain, copy_args

#: at most this many warnings, each cut to TEXT_LIMIT characters, are kept
MAX_WARNINGS, TEXT_LIMIT = 5, 200


def _text(caught: Any) -> str:
    try:
        category = caught.category
        name = type.__dict__["__name__"].__get__(category, type) if isinstance(category, type) else "Warning"
        return f"{name}: {str(caught.message)}"[:TEXT_LIMIT]
    except Exception:  # a warning whose text cannot be read
        return "Warning: (its text could not be read)"


def _unchanged(now: Any, before: np.ndarray) -> bool:
    try:
        return bool(now.shape == before.shape and np.array_equal(now, before, equal_nan=True))
    except Exception:
        return False


def watched(obj: Any, case: Case) -> Outcome:
    """Call obj(*args, **kwargs); record the result, the warnings and the arguments changed in place."""
    args, kwargs = copy_args(case.args), copy_args(case.kwargs)
    kept = copy_args(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
            outcome = call_plain(obj, *args, **kwargs)
    if outcome.kind != "returned":
        return outcome
    texts: list = []
    for item in list(caught):
        text = _text(item)
        if text not in texts:
            texts.append(text)
        if len(texts) >= MAX_WARNINGS:
            break
    changed = [i for i, (now, before) in enumerate(zip(args, kept))
               if type(before) is np.ndarray and not _unchanged(now, before)]
    return Outcome("returned", value={"result": outcome.value, "warnings": texts, "changed": changed})


#: probe name (without the "nb05." prefix) -> probe(obj, case) -> Outcome
PROBES: dict[str, Callable[[Any, Case], Outcome]] = {
    "watched": watched,
}
