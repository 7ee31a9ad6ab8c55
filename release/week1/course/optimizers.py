"""Checks of the optimizer exercises (notebook 08): one contract for the visible and the hidden checks.

An optimizer exercise (``SGD``, ``Adam``, ``AdamW``) is a class built as ``Optimizer(params, **hyper)``
over a list of float64 NumPy arrays; ``step(grads)`` takes a list of arrays shaped like the params and
updates every param **in place** (the caller's arrays see the change; a step that rebinds
``self.params[i]`` to a new array leaves them as they were), without changing the gradients. Its
result is therefore the trajectory of the params: a list over steps of a list over params of arrays,
which must equal what ``torch.optim`` does with the same arguments, to 1e-10 relative in float64.

``trajectory(grad_fn, x0, optimizer_factory, steps)`` returns a new float64 array (steps + 1, D).

This module holds that contract once:

* :func:`run_optimizer` runs an optimizer class on a gradient sequence and records its params
  (what the visible cells do; the grader's probe records the same data in the sandbox);
* :func:`torch_run` is the reference: ``torch.optim`` in float64 on the same data;
* :func:`steps_problem` and :func:`step_hint` say why recorded params break the contract, and
  what the first wrong step suggests (a factor 1 − β, a missing bias correction, a flipped sign);
* :func:`check_optimizer` and :func:`check_trajectory` are what the visible test cells run.

NumPy and the standard library only at import time (torch is imported inside :func:`torch_run`);
nothing here implements an exercise.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from .checks import CheckFailed, Comparison, compare, format_shape
from .elementwise import result_form
from .losses import array_problem, first_match

__all__ = ["RTOL", "ATOL", "run_optimizer", "torch_run", "steps_problem", "step_hint", "compare_steps",
           "check_optimizer", "check_trajectory", "trajectory_problem"]

#: the params are compared to 1e-10 relative; differences below 1e-12 never count
RTOL, ATOL = 1e-10, 1e-12

#: exercise name -> the torch.optim class it must match
TORCH_NAMES = {"SGD": "SGD", "Adam": "Adam", "AdamW": "AdamW"}

#: the diagnosis when the params are right but a gradient given to step changed, then or later
GRADS_CHANGED = ("the params are right, but the gradients given to step were changed (during that step or a later "
                 "one): compute new arrays (d = g + wd * p) instead of g += ..., and store a copy (d.copy()) of a "
                 "gradient you keep as state: an in-place update of a kept gradient writes into the caller's array")


def run_optimizer(cls: Callable, hyper: dict, params0: Sequence[np.ndarray],
                  grads: Sequence[Sequence[np.ndarray]]) -> tuple:
    """Run ``cls(params, **hyper)`` on copies of params0, one ``step`` per entry of grads.

    Returns (steps, grads_changed): steps[k][i] is a copy of param i after step k + 1 (read from the
    caller's arrays), grads_changed whether a gradient given to a step changed, during that step or
    a later one (a momentum buffer that is the gradient array itself). The student's exceptions
    propagate."""
    params = [np.array(p, dtype=np.float64, copy=True) for p in params0]
    arrays = list(params)   # the caller's arrays, whatever the optimizer does to the list it was given
    optimizer = cls(params, **hyper)
    steps, given_all, kept_all = [], [], []
    for step_grads in grads:
        given = [np.array(g, dtype=np.float64, copy=True) for g in step_grads]
        given_all += given
        kept_all += [g.copy() for g in given]
        optimizer.step(given)
        steps.append([p.copy() for p in arrays])
    changed = any(not np.array_equal(a, b, equal_nan=True) for a, b in zip(given_all, kept_all))
    return steps, changed


def torch_run(name: str, hyper: dict, params0: Sequence[np.ndarray],
              grads: Sequence[Sequence[np.ndarray]]) -> list:
    """The reference: torch.optim.<name>(**hyper) in float64 on the same params and gradients."""
    import torch

    params = [torch.tensor(np.asarray(p, dtype=np.float64)) for p in params0]
    for p in params:
        p.requires_grad_(True)
    optimizer = getattr(torch.optim, TORCH_NAMES[name])(params, **hyper)
    steps = []
    with torch.no_grad():
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = torch.tensor(np.asarray(g, dtype=np.float64))
            optimizer.step()
            steps.append([p.detach().numpy().copy() for p in params])
    return steps


def steps_problem(steps: Any, shapes: Sequence[tuple], count: int) -> Optional[str]:
    """Why recorded steps (plain data) are not ``count`` steps of float64 params of these shapes."""
    if type(steps) is not list or len(steps) != count:
        return f"expected {count} recorded steps"
    for k, step in enumerate(steps):
        if type(step) is not list or len(step) != len(shapes):
            return f"expected {len(shapes)} params after step {k + 1}"
        for i, (p, shape) in enumerate(zip(step, shapes)):
            if not isinstance(p, np.ndarray) or p.dtype != np.float64 or p.shape != tuple(shape):
                return f"param {i} after step {k + 1} is not a float64 array of shape {format_shape(shape)}"
    return None


def _first_wrong(steps: list, expected: list) -> Optional[tuple]:
    """(step index k, param index i) of the first recorded param that differs from the reference."""
    for k, (got_step, want_step) in enumerate(zip(steps, expected)):
        for i, (got, want) in enumerate(zip(got_step, want_step)):
            with np.errstate(all="ignore"):
                close = np.abs(got - want) <= ATOL + RTOL * np.abs(want)
            if not np.all(close):
                return k, i
    return None


def step_hint(name: str, hyper: dict, params0: Sequence[np.ndarray], steps: list, expected: list,
              grads: Optional[Sequence[Sequence[np.ndarray]]] = None) -> Optional[str]:
    """The likely cause of a wrong trajectory, read from the data: which step first goes wrong and
    how its step compares with the reference's (``grads``, when given, tells a zero step apart from
    an update that is not in place)."""
    hint = _step_hint(name, hyper, params0, steps, expected, grads)
    if hint and not hyper and "never changed" not in hint:
        hint += " (this case uses the defaults: check the default values in your signature against torch's)"
    return hint


def _step_hint(name, hyper, params0, steps, expected, grads) -> Optional[str]:
    where = _first_wrong(steps, expected)
    if where is None:
        return None
    k, i = where
    before = np.asarray(params0[i] if k == 0 else expected[k - 1][i], dtype=np.float64)
    got_step, want_step = steps[k][i] - before, expected[k][i] - before
    if all(np.array_equal(s[j], np.asarray(params0[j], dtype=np.float64)) for s in steps for j in range(len(s))):
        if grads is not None and all(not np.any(g) for step in grads for g in step):
            return ("every gradient of this case is 0, so only the weight decay moves the params, and yours "
                    "never moved: is weight_decay used (and in place)?")
        return ("the caller's arrays never changed: update each param in place (p -= ..., or p[...] = ...); "
                "`self.params[i] = p - ...` or `p = p - ...` makes a new array the caller never sees")
    with np.errstate(all="ignore"):
        mask = np.abs(want_step) > 1e-300
        ratios = got_step[mask] / want_step[mask]
    if ratios.size and np.allclose(ratios, ratios.flat[0], rtol=1e-4) and np.isfinite(ratios.flat[0]):
        r = float(ratios.flat[0])
        momentum = float(hyper.get("momentum", 0.0))
        beta1, beta2 = hyper.get("betas", (0.9, 0.999))
        t = k + 1
        if abs(r + 1) < 1e-6:
            return "every step has the wrong sign: step against the gradient, p -= lr * (...)"
        if name == "SGD" and momentum and k == 0 and abs(r - (1 - momentum)) < 1e-6:
            return (f"the first step is (1 − momentum) = {1 - momentum:g} times torch's: that is the EMA form "
                    f"v = β v + (1 − β) g from v = 0; torch.optim.SGD uses v = β v + (1 − dampening) g and starts "
                    f"the buffer at the first gradient, undampened")
        if name in ("Adam", "AdamW"):
            without = (1 - beta1 ** t) / np.sqrt(1 - beta2 ** t)
            if abs(r - without) < 1e-3 * max(without, 1e-12):
                return (f"step {t} is {r:.4g} times torch's, (1 − β1^t) / sqrt(1 − β2^t): the bias correction "
                        f"m / (1 − β1^t), v / (1 − β2^t) is missing")
        return f"step {t} of param {i} is {r:.6g} times torch's"
    if k > 0:
        return (f"the first {k} step(s) are right and step {k + 1} is not: look at the state kept between "
                f"steps (the momentum buffer, the moments, the step count t)")
    return None


def compare_steps(name: str, label: str, hyper: dict, params0: Sequence[np.ndarray], steps: list,
                  expected: list) -> Comparison:
    """Compare recorded steps with the reference's: one failed line naming the first wrong step."""
    where = _first_wrong(steps, expected)
    if where is None:
        return Comparison(name, True, f"✓ {name} [{label}]: {len(steps)} steps match torch.optim.{name}")
    k, i = where
    result = compare(f"{name} [{label}] param {i} after step {k + 1}", steps[k][i], expected[k][i],
                     rtol=RTOL, atol=ATOL)
    return result


def check_optimizer(name: str, cls: Callable, hyper: dict, params0: Sequence[np.ndarray],
                    grads: Sequence[Sequence[np.ndarray]], label: str = "") -> Comparison:
    """Run the student's optimizer class and torch.optim.<name> on the same data; raise CheckFailed
    with the likely cause at the first step where they part. Returns the passed Comparison (print it)."""
    __tracebackhide__ = True
    label = label or ", ".join(f"{k}={v}" for k, v in hyper.items())
    steps, changed = run_optimizer(cls, hyper, params0, grads)
    expected = torch_run(name, hyper, params0, grads)
    result = compare_steps(name, label, hyper, params0, steps, expected)
    if not result.ok:
        hint = step_hint(name, hyper, params0, steps, expected, grads)
        raise CheckFailed(result.message + (f" — likely cause: {hint}" if hint else ""))
    if changed:
        raise CheckFailed(f"✗ {name} [{label}]: {GRADS_CHANGED}")
    return result


def trajectory_problem(value: Any, steps: int, D: int, x0: Any = None) -> Optional[str]:
    """Why a returned trajectory (plain data) is not a float64 array (steps + 1, D); x0, when given,
    tells a missing x0 apart from a missing last position."""
    problem = array_problem(value, (steps + 1, D))
    if problem and isinstance(value, np.ndarray) and value.shape == (steps, D):
        starts_at_x0 = (x0 is not None and steps > 0
                        and np.array_equal(np.asarray(value[0], dtype=np.float64), np.asarray(x0, dtype=np.float64)))
        problem += (" — likely cause: the last position is missing: x0 first, then one row after each of the "
                    f"{steps} steps" if starts_at_x0 else " — likely cause: x0 is missing from the first row")
    if problem and isinstance(value, np.ndarray) and value.shape == (D, steps + 1) and D != steps + 1:
        problem += " — likely cause: transposed; one row per position"
    return problem


def trajectory_mistakes(positions: np.ndarray) -> list:
    """(candidate, hint) pairs of typical trajectory mistakes, from the right positions."""
    last = np.repeat(positions[-1:], len(positions), axis=0)
    after_first = np.concatenate([positions[:1], last[1:]])
    hint = "every row is the last position: the same array was appended each time; append a copy (x.copy())"
    return [(last, hint), (after_first, hint),
            (np.repeat(positions[:1], len(positions), axis=0),
             "the positions never move: the optimizer must update the array you read the positions from")]


def check_trajectory(name: str, fn: Callable, args: tuple, expected: Any, *, calls: Optional[list] = None,
                     builds: Optional[list] = None) -> Comparison:
    """Run trajectory(*args) and compare with the trusted positions (steps + 1, D); ``calls``, when
    given, is the list the cell's grad_fn appends to: it must hold one call per step; ``builds``,
    the list the cell's optimizer appends to when built: it must hold one entry."""
    __tracebackhide__ = True
    grad_fn, x0, factory, steps = args
    kept = np.array(x0, copy=True)
    if calls is not None:
        calls.clear()
    if builds is not None:
        builds.clear()
    try:
        returned = fn(grad_fn, x0, factory, steps)
    except TypeError as exc:
        if "cast" not in str(exc):
            raise
        raise CheckFailed(f"✗ {name}: {exc} — likely cause: the optimizer got an array that is not float64 (x0 "
                          f"here is {np.asarray(x0).dtype}); optimise a float64 copy, np.array(x0, dtype=np.float64)") from None
    value = result_form(returned)
    expected = np.asarray(expected.detach() if hasattr(expected, "detach") else expected, dtype=np.float64)
    problem = trajectory_problem(value, steps, expected.shape[1], x0=x0)
    if problem:
        raise CheckFailed(f"✗ {name}: {problem}")
    result = compare(name, value, expected, rtol=RTOL, atol=ATOL)
    if not result.ok:
        hint = first_match(value, trajectory_mistakes(expected), expected=expected)
        raise CheckFailed(result.message + (f" — likely cause: {hint}" if hint else ""))
    if not np.array_equal(np.asarray(x0), kept):
        raise CheckFailed(f"✗ {name}: the positions are right, but x0 was changed in place; work on a copy")
    if calls is not None and len(calls) != steps:
        raise CheckFailed(f"✗ {name}: grad_fn was called {len(calls)} times for {steps} steps; call it once per step")
    if builds is not None and len(builds) != 1:
        raise CheckFailed(f"✗ {name}: optimizer_factory was called {len(builds)} times; build the optimizer once, "
                          f"over [x], before the loop (its state must last across the steps)")
    return result
