"""The probe: the only grading code that runs in the student's process.

It turns a student's object and one hidden input into an :class:`Outcome` of
plain data. It holds no reference implementation, no expected value and no
seed: the inputs arrive from the judge, the outcomes go back to the judge, and
the judge (``autograder.hidden``) decides the points in another process.

Only relative imports are used inside this package, so the hardened grader can
mount it read-only in the sandbox under another name.

A probe is a function ``probe(obj, case) -> Outcome`` registered in
:data:`PROBES` under a name that a hidden check gives as its ``probe``.
"""
from __future__ import annotations

from typing import Any, Callable

from .core import (
    MESSAGE_LIMIT,
    Case,
    Outcome,
    UnsupportedOutput,
    call_plain,
    copy_args,
    plain,
)
from . import nb01, nb02, nb03, nb04, nb05, nb07
from . import nb08
from . import nb09
from . import nb10

#: probe name -> probe(obj, case) -> Outcome
PROBES: dict[str, Callable[[Any, Case], Outcome]] = {
    "call": lambda obj, case: call_plain(obj, *copy_args(case.args), **copy_args(case.kwargs)),
    "nb01.broadcast_shape": nb01.broadcast_shape,
}
for _module, _prefix in ((nb02, "nb02"), (nb03, "nb03"), (nb04, "nb04"), (nb05, "nb05"), (nb07, "nb07"), (nb08, "nb08")):
    PROBES.update({f"{_prefix}.{name}": probe for name, probe in _module.PROBES.items()})
PROBES.update({f"nb09.{name}": probe for name, probe in nb09.PROBES.items()})
PROBES.update({f"nb10.{name}": probe for name, probe in nb10.PROBES.items()})


def run_probe(name: str, obj: Any, case: Case) -> Outcome:
    """Run the probe called ``name`` on the student's object and one case."""
    try:
        probe = PROBES[name]
    except KeyError:
        raise KeyError(f"no probe {name!r}; known: {sorted(PROBES)}") from None
    return probe(obj, case)


__all__ = [
    "MESSAGE_LIMIT", "Case", "Outcome", "PROBES", "UnsupportedOutput",
    "call_plain", "copy_args", "plain", "run_probe",
]
