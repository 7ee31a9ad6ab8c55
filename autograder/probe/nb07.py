"""Probes of notebook 07, regularization (run in the student's process; no references here).

``dropout`` calls the student's ``dropout(x, p, training, rng)`` once per seed that the case lists,
each time on a fresh copy of x and with a fresh generator ``np.random.default_rng(seed)`` built here
from the seed the judge sent as data, and records what came back and whether x was changed in
place. It never decides anything: the judge (``autograder.hidden.nb07_regularization``) does.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .core import Case, Outcome, call_plain, copy_args
from .nb03 import _record


def dropout(obj: Any, case: Case) -> Outcome:
    """Call obj(x, p, training, np.random.default_rng(seed)) for each seed of the case."""
    kw = copy_args(case.kwargs)
    calls, changed = [], False
    for seed in kw["seeds"]:
        x = kw["x"].copy()
        outcome = call_plain(obj, x, kw["p"], kw["training"], np.random.default_rng(seed))
        if outcome.kind == "raised" and outcome.error == "NotImplementedError":
            return outcome  # not written yet: the whole case says so, as every other exercise's does
        calls.append(_record(outcome))
        try:
            changed = changed or not bool(np.array_equal(x, kw["x"], equal_nan=True))
        except Exception:
            changed = True
    return Outcome("returned", value={"calls": calls, "changed": changed})


#: probe name (without the "nb07." prefix) -> probe(obj, case) -> Outcome
PROBES: dict[str, Callable[[Any, Case], Outcome]] = {
    "dropout": dropout,
}
