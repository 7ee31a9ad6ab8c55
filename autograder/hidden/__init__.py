"""Hidden checks, one module per notebook; never shipped to students.

A graded test cell of a source notebook ends with::

    ### BEGIN HIDDEN TESTS
    from autograder.hidden import run_hidden
    run_hidden("01_tensors_and_shapes", "broadcast_shape", broadcast_shape, points=3)
    ### END HIDDEN TESTS

``points`` repeats the cell's points (``read_spec`` refuses a cell where the two
differ): the call's value, the points earned, is the cell's last expression,
which nbgrader takes as partial credit.
"""
from __future__ import annotations

import importlib
from typing import Any

from typing import Optional

from course.checks import CheckFailed

from .framework import Case, HiddenCheck, Outcome, Verdict, points_of, run_in_kernel

#: notebook name (without .ipynb) -> module holding its CHECKS
NOTEBOOK_MODULES = {
    "01_tensors_and_shapes": "autograder.hidden.nb01_tensors_and_shapes",
    "02_autograd": "autograder.hidden.nb02_autograd",
    "03_manual_backprop": "autograder.hidden.nb03_manual_backprop",
    "04_init_and_normalization": "autograder.hidden.nb04_init_and_normalization",
    "05_activations": "autograder.hidden.nb05_activations",
    "06_losses": "autograder.hidden.nb06_losses",
    "07_regularization": "autograder.hidden.nb07_regularization",
    "08_optimizers": "autograder.hidden.nb08_optimizers",
    "09_training_loop": "autograder.hidden.nb09_training_loop",
    "10_final_boss": "autograder.hidden.nb10_final_boss",
}


def checks_for(notebook: str) -> dict[str, HiddenCheck]:
    """The hidden checks of one notebook, by exercise name."""
    try:
        module_name = NOTEBOOK_MODULES[notebook]
    except KeyError:
        raise KeyError(f"no hidden checks for notebook {notebook!r}; known: {sorted(NOTEBOOK_MODULES)}") from None
    module = importlib.import_module(module_name)
    return module.CHECKS


def hidden_verdict(notebook: str, exercise: str, obj: Any) -> Verdict:
    """Run the hidden check of one exercise in this process and return its verdict."""
    checks = checks_for(notebook)
    if exercise not in checks:
        raise KeyError(f"no hidden check {exercise!r} in {notebook}; known: {sorted(checks)}")
    return run_in_kernel(checks[exercise], obj)


def run_hidden(notebook: str, exercise: str, obj: Any, points: Optional[float] = None) -> Optional[float]:
    """Run the hidden check of one exercise in this process (stock nbgrader path).

    Returns the points earned (None when ``points`` is not given and every case
    passed). Raises ``course.checks.CheckFailed`` listing the failing cases when
    nothing is earned; prints them (to stdout) when some groups earn their share.
    """
    verdict = hidden_verdict(notebook, exercise, obj)
    if verdict.passed:
        return float(points) if points is not None else None
    if verdict.fraction == 0.0 or points is None:
        raise CheckFailed("\n".join(verdict.lines()))
    print("\n".join(verdict.lines()))
    return points_of(verdict.fraction, points)


__all__ = ["Case", "HiddenCheck", "Outcome", "Verdict", "checks_for", "hidden_verdict", "run_hidden"]
