"""Probes of notebook 10, the NumPy MLP (run in the student's process; no references here).

Each probe runs the student's function on the plain data of one case and records what came back,
as plain data; it never decides anything: the judge (``autograder.hidden.nb10_final_boss``) does.

``init`` calls ``init_mlp(layer_sizes, rng[, scheme=...])`` once per draw of the case, each with a
fresh ``np.random.default_rng(seed)`` built here from the seed the case gives, and records the
result and whether the generator was drawn from.

``forward`` calls ``mlp_forward(params, X)`` on copies and records the logits (not the cache, which
is the student's own business), whether a pair came back and whether an input was changed.

``backward`` runs the student's own ``mlp_forward`` (found in the namespace ``mlp_backward`` was
defined in) on the case's params and X to get a cache, then ``mlp_backward(params, cache, dlogits)``,
and records both calls.

``step`` calls ``sgd_momentum_step(params, grads, velocity, lr, momentum)`` once per gradient dict of
the case, from zero velocity, and records the params and the velocity after every step, whether
every array was still the caller's own object (an update in place) and whether a gradient changed.

``train`` calls ``train_mlp`` once per call of the case, each with fresh copies of the data and a
fresh ``np.random.default_rng(seed)``, and records (params, history), the time it took and whether
the data were changed. Warnings are caught and counted, never printed: a diverging run overflows.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Callable

import numpy as np

from .core import Case, Outcome, UnsupportedOutput, call_plain, copy_args, plain, raised
from .nb03 import _record
from .nb04 import _state


def _same(a: Any, b: np.ndarray) -> bool:
    try:
        return bool(type(a) is np.ndarray and a.shape == b.shape and np.array_equal(a, b, equal_nan=True))
    except Exception:
        return False


def _unchanged(now: dict, before: dict) -> bool:
    return all(_same(now.get(k) if type(now) is dict else None, v) for k, v in before.items())


def init(obj: Any, case: Case) -> Outcome:
    """Call obj(layer_sizes, rng[, scheme=...]) for each draw of the case, each with its own generator."""
    draws = []
    for spec in copy_args(case.kwargs["draws"]):
        rng = np.random.default_rng(spec["seed"])
        before = _state(rng)
        options = {"scheme": spec["scheme"]} if spec.get("scheme") is not None else {}
        outcome = call_plain(obj, spec["sizes"], rng, **options)
        if outcome.kind == "raised" and outcome.error == "NotImplementedError":
            return outcome
        after = _state(rng)
        draws.append({"result": _record(outcome),
                      "rng_used": None if before is None or after is None else bool(after != before)})
    return Outcome("returned", value={"draws": draws})


def forward(obj: Any, case: Case) -> Outcome:
    """Call obj(params, X) on copies; record the logits of the returned pair."""
    kw = copy_args(case.kwargs)
    params, X = kw["params"], kw["X"]
    kept_params, kept_X = copy_args(params), X.copy()
    try:
        result = obj(params, X)
    except Exception as exc:
        return raised(exc)
    changed = not (_unchanged(params, kept_params) and _same(X, kept_X))
    try:
        if type(result) in (tuple, list) and len(result) == 2:
            return Outcome("returned", value={"pair": True, "logits": plain(result[0]), "changed": changed})
        return Outcome("returned", value={"pair": False, "value": plain(result), "changed": changed})
    except UnsupportedOutput as exc:
        return Outcome("unsupported", message=f"returned {exc}")


def backward(obj: Any, case: Case) -> Outcome:
    """The student's mlp_forward gives the cache; then obj(params, cache, dlogits)."""
    kw = copy_args(case.kwargs)
    params, X, dlogits = kw["params"], kw["X"], kw["dlogits"]
    kept_params, kept_d = copy_args(params), dlogits.copy()
    try:
        namespace = getattr(obj, "__globals__")
        forward_fn = namespace.get("mlp_forward") if type(namespace) is dict else None
    except Exception:
        forward_fn = None
    forward_failed = None
    returned = None
    if not callable(forward_fn):
        forward_failed = "missing"
    else:
        try:
            returned = forward_fn(params, X)
        except Exception as exc:
            forward_failed = _record(raised(exc))
        else:
            if type(returned) not in (tuple, list) or len(returned) != 2:
                forward_failed = "no pair"
    if forward_failed is not None:
        # without a cache, a stub still says that it is one: then the exercise itself is not written yet
        outcome = call_plain(obj, copy_args(kw["params"]), None, kw["dlogits"].copy())
        if outcome.kind == "raised" and outcome.error == "NotImplementedError":
            return outcome
        return Outcome("returned", value={"forward": forward_failed})
    outcome = call_plain(obj, params, returned[1], dlogits)
    if outcome.kind == "raised" and outcome.error == "NotImplementedError":
        return outcome
    changed = not (_unchanged(params, kept_params) and _same(dlogits, kept_d))
    return Outcome("returned", value={"forward": "ok", "grads": _record(outcome), "changed": changed})


def step(obj: Any, case: Case) -> Outcome:
    """Call obj(params, grads, velocity, lr, momentum) once per gradient dict, from zero velocity."""
    kw = copy_args(case.kwargs)
    params = {k: np.array(v, dtype=np.float64, copy=True) for k, v in kw["params"].items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    p_ids, v_ids = dict(params), dict(velocity)
    record = {"params": [], "velocity": [], "same_params": True, "same_velocity": True, "grads_changed": False}
    for given in kw["grads"]:
        kept = {k: g.copy() for k, g in given.items()}
        try:
            obj(params, given, velocity, kw["lr"], kw["momentum"])
        except Exception as exc:
            return raised(exc)
        try:
            record["params"].append(plain(dict(params)) if type(params) is dict else None)
            record["velocity"].append(plain(dict(velocity)) if type(velocity) is dict else None)
        except UnsupportedOutput as exc:
            return Outcome("unsupported", message=f"left {exc} in the dicts")
        record["grads_changed"] = record["grads_changed"] or not _unchanged(given, kept)
        record["same_params"] = record["same_params"] and all(params.get(k) is p_ids[k] for k in p_ids)
        record["same_velocity"] = record["same_velocity"] and all(velocity.get(k) is v_ids[k] for k in v_ids)
    return Outcome("returned", value=record)


def train(obj: Any, case: Case) -> Outcome:
    """Call obj(X, y, layer_sizes, lr, epochs, batch_size, rng, **options) once per call of the case."""
    kw = copy_args(case.kwargs)
    data = kw["data"]
    runs = []
    for call in kw["calls"]:
        X, y = data["X"].copy(), data["y"].copy()
        options = dict(call["options"])
        if call["val"]:
            options.update(X_val=data["X_val"].copy(), y_val=data["y_val"].copy())
        rng = np.random.default_rng(call["seed"])
        began = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcome = call_plain(obj, X, y, list(call["sizes"]), call["lr"], call["epochs"], call["batch_size"], rng,
                                 **options)
        seconds = time.perf_counter() - began
        if outcome.kind == "raised" and outcome.error == "NotImplementedError":
            return outcome
        try:
            count = len(caught)
        except Exception:
            count = -1
        runs.append({"result": _record(outcome), "seconds": seconds, "warnings": count,
                     "changed": not (_same(X, data["X"]) and _same(y, data["y"]))})
    return Outcome("returned", value={"runs": runs})


#: probe name (without the "nb10." prefix) -> probe(obj, case) -> Outcome
PROBES: dict[str, Callable[[Any, Case], Outcome]] = {
    "init": init,
    "forward": forward,
    "backward": backward,
    "step": step,
    "train": train,
}
