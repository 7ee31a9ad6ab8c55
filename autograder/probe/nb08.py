"""Probes of notebook 08, optimizers (run in the student's process; no references here).

``optimizer`` builds the student's class over fresh copies of the params that the judge sent as
data, calls ``step`` once per gradient list of the case and records a copy of the caller's params
after every step (an update that rebinds instead of writing in place shows as params that never
move). It does this ``runs`` times with a new instance each time, so state kept on the class instead
of the instance shows up, and records whether a gradient given to a step changed, during that step
or a later one.

``trajectory`` calls the student's ``trajectory(grad_fn, x0, optimizer_factory, steps)`` with a
grad_fn of a diagonal quadratic, ½ Σ h_d (x_d − c_d)², and a factory of a plain gradient-descent
stepper, both built here from the case's numbers; it records the result, how often each was
called and whether x0 was changed in place. It never decides anything: the judge
(``autograder.hidden.nb08_optimizers``) does.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .core import Case, Outcome, UnsupportedOutput, copy_args, plain, raised


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    try:
        return bool(np.array_equal(a, b, equal_nan=True))
    except Exception:
        return False


def optimizer(obj: Any, case: Case) -> Outcome:
    """Build obj(params, **hyper) and feed it the case's gradients, ``runs`` times."""
    kw = copy_args(case.kwargs)
    runs, grads_changed = [], False
    for _ in range(int(kw.get("runs", 1))):
        params = [np.array(p, dtype=np.float64, copy=True) for p in kw["params"]]
        arrays = list(params)   # the caller's arrays: what a step must change in place
        try:
            opt = obj(params, **kw["hyper"])
            step = opt.step
        except Exception as exc:  # the student's exception is data
            return raised(exc)
        steps, given_all, kept_all = [], [], []
        for step_grads in kw["grads"]:
            given = [np.array(g, dtype=np.float64, copy=True) for g in step_grads]
            given_all += given
            kept_all += [g.copy() for g in given]
            try:
                step(given)
            except Exception as exc:
                return raised(exc)
            steps.append([np.array(p, copy=True) for p in arrays])
        # a gradient may also change at a later step (a kept buffer that is the gradient array itself)
        grads_changed = grads_changed or not all(_same(a, b) for a, b in zip(given_all, kept_all))
        runs.append(steps)
    return Outcome("returned", value={"runs": runs, "grads_changed": grads_changed})


class _Descent:
    """x -= lr * g, in place: the stepper the probe's factory builds."""

    def __init__(self, params: list, lr: float, record: dict) -> None:
        self.params, self.lr, self.record = list(params), lr, record

    def step(self, grads: list) -> None:
        self.record["steps"] += 1
        for p, g in zip(self.params, grads):
            p -= self.lr * np.asarray(g, dtype=np.float64)


def trajectory(obj: Any, case: Case) -> Outcome:
    """Call obj(grad_fn, x0, factory, steps) on a diagonal quadratic with a gradient-descent factory."""
    kw = copy_args(case.kwargs)
    h, c, lr = kw["h"], kw["c"], float(kw["lr"])
    x0 = kw["x0"]
    kept = x0.copy()
    record = {"grad_calls": 0, "factory_calls": 0, "steps": 0}

    def grad_fn(x):
        record["grad_calls"] += 1
        return h * (np.asarray(x, dtype=np.float64) - c)

    def factory(params):
        record["factory_calls"] += 1
        return _Descent(params, lr, record)

    try:
        result = obj(grad_fn, x0, factory, int(kw["steps"]))
    except Exception as exc:
        return raised(exc)
    try:
        value = plain(result)
    except UnsupportedOutput as exc:
        return Outcome("unsupported", message=f"returned {exc}")
    return Outcome("returned", value={"result": value, "x0_changed": not _same(x0, kept), **record})


#: probe name (without the "nb08." prefix) -> probe(obj, case) -> Outcome
PROBES: dict[str, Callable[[Any, Case], Outcome]] = {
    "optimizer": optimizer,
    "trajectory": trajectory,
}
