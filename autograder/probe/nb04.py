"""Probes of notebook 04, initialization and normalization (run in the student's process; no
references here).

``initializer`` calls an initializer (``xavier_normal``, ``kaiming_normal``, ...) once per draw
that the case lists, each time with a fresh generator built from the seed the case gives, and
records what came back and whether the generator was used at all.

``norm_layer`` builds a normalization layer (``BatchNorm1d``, ``LayerNorm``), gives it the
case's gamma and beta, calls its methods in the order the case lists and records, after each
call, the attributes the case names. It never decides anything: the judge
(``autograder.hidden.nb04_init_and_normalization``) does.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .core import Case, Outcome, call_plain, copy_args, raised
from .nb03 import _attribute, _method, _record, _set


def _state(rng: Any) -> Any:
    """The generator's state, to tell afterwards whether anything was drawn from it."""
    try:
        return rng.bit_generator.state
    except Exception:  # a generator the student's code broke
        return None


def initializer(obj: Any, case: Case) -> Outcome:
    """Call obj(fan_in, fan_out, rng[, gain=...]) for each draw of the case, each with its own generator."""
    draws = []
    for spec in copy_args(case.kwargs["draws"]):
        rng = np.random.default_rng(spec["seed"])
        before = _state(rng)
        options = {"gain": spec["gain"]} if "gain" in spec else {}
        outcome = call_plain(obj, spec["fan_in"], spec["fan_out"], rng, **options)
        after = _state(rng)
        used = None if before is None or after is None else bool(after != before)
        draws.append({"result": _record(outcome), "rng_used": used})
    return Outcome("returned", value={"draws": draws})


def norm_layer(obj: Any, case: Case) -> Outcome:
    """Build obj(num_features, **options), set the case's attributes, run the case's steps.

    A step is ``[method, argument]`` (``argument`` None: the method takes none). After building
    and after every step the attributes named in ``read`` are recorded.
    """
    kw = copy_args(case.kwargs)
    try:
        layer = obj(kw["num_features"], **kw["options"])
    except Exception as exc:
        return raised(exc)
    created = {name: _attribute(layer, name) for name in kw["read"]}
    for name, value in kw["set"].items():
        failed = _set(layer, name, value)
        if failed is not None:
            return Outcome("raised", error=failed["error"], message=f"setting .{name}: {failed['message']}")
    steps = []
    for method, argument in kw["steps"]:
        call = _method(layer, method) if argument is None else _method(layer, method, argument)
        record = {"method": method, "call": call}
        record.update({name: _attribute(layer, name) for name in kw["read"]})
        steps.append(record)
    return Outcome("returned", value={"created": created, "steps": steps})


#: probe name (without the "nb04." prefix) -> probe(obj, case) -> Outcome
PROBES: dict[str, Callable[[Any, Case], Outcome]] = {
    "initializer": initializer,
    "norm_layer": norm_layer,
}
