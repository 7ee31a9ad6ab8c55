"""Probes of notebook 01 (run in the student's process; no references here)."""
from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from .core import Case, Outcome, call_plain, copy_args


class ForbiddenHelper(RuntimeError):
    """Raised in place of numpy's / torch's broadcasting helpers while broadcast_shape runs."""


_FORBIDDEN = {
    "numpy": ("broadcast_shapes", "broadcast", "broadcast_arrays", "broadcast_to"),
    "torch": ("broadcast_shapes", "broadcast_tensors"),
}


def broadcast_shape(obj: Any, case: Case) -> Outcome:
    """Run the student's function with numpy's / torch's broadcasting helpers replaced by traps."""
    used: list[str] = []

    def trap(qualname: str) -> Callable:
        def forbidden(*args: Any, **kwargs: Any) -> Any:
            used.append(qualname)
            raise ForbiddenHelper(f"broadcast_shape must apply the rule itself, not call {qualname}")

        return forbidden

    replaced: list[tuple[Any, str, Any]] = []  # (namespace, name, original)
    traps: list[tuple[Any, Callable]] = []  # (original, trap)
    modules = [("numpy", np)]
    if "torch" in sys.modules:
        modules.append(("torch", sys.modules["torch"]))
    try:
        student_globals = getattr(obj, "__globals__", None)
    except Exception:  # an object whose attribute lookup fails: nothing to patch there
        student_globals = None
    try:
        for modname, module in modules:
            for attr in _FORBIDDEN[modname]:
                original = module.__dict__.get(attr)
                if original is None:
                    continue
                replacement = trap(f"{modname}.{attr}")
                replaced.append((module.__dict__, attr, original))
                module.__dict__[attr] = replacement
                traps.append((original, replacement))
        # the same functions under other names: `from numpy import broadcast_shapes` in the notebook,
        # torch.functional.broadcast_shapes, numpy.lib.stride_tricks.broadcast_shapes, ...
        namespaces = [m.__dict__ for name, m in list(sys.modules.items())
                      if name.split(".")[0] in ("numpy", "torch") and type(getattr(m, "__dict__", None)) is dict]
        if type(student_globals) is dict:
            namespaces.append(student_globals)
        by_id = {id(original): replacement for original, replacement in traps}
        for namespace in namespaces:
            for key, value in list(namespace.items()):
                replacement = by_id.get(id(value))
                if replacement is not None and value is not replacement:
                    replaced.append((namespace, key, value))
                    namespace[key] = replacement
        outcome = call_plain(obj, *copy_args(case.args), **copy_args(case.kwargs))
    finally:
        for namespace, attr, original in reversed(replaced):
            namespace[attr] = original
    if used:
        return Outcome("raised", error="ForbiddenHelper",
                       message=f"broadcast_shape must apply the rule itself, not call {used[0]}")
    return outcome
