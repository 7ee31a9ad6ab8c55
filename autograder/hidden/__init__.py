"""Hidden checks, one module per notebook; never shipped to students.

A graded test cell of a source notebook ends with::

    ### BEGIN HIDDEN TESTS
    from autograder.hidden import run_hidden
    run_hidden("01_tensors_and_shapes", "broadcast_shape", broadcast_shape)
    ### END HIDDEN TESTS
"""
from __future__ import annotations

import importlib
from typing import Any

from .framework import Case, HiddenCheck, Outcome, run_in_kernel

#: notebook name (without .ipynb) -> module holding its CHECKS
NOTEBOOK_MODULES = {
    "01_tensors_and_shapes": "autograder.hidden.nb01_tensors_and_shapes",
    "02_autograd": "autograder.hidden.nb02_autograd",
    "03_manual_backprop": "autograder.hidden.nb03_manual_backprop",
}


def checks_for(notebook: str) -> dict[str, HiddenCheck]:
    """The hidden checks of one notebook, by exercise name."""
    try:
        module_name = NOTEBOOK_MODULES[notebook]
    except KeyError:
        raise KeyError(f"no hidden checks for notebook {notebook!r}; known: {sorted(NOTEBOOK_MODULES)}") from None
    module = importlib.import_module(module_name)
    return module.CHECKS


def run_hidden(notebook: str, exercise: str, obj: Any) -> None:
    """Run the hidden check of one exercise in this process (stock nbgrader path).

    Raises ``course.checks.CheckFailed`` listing each failing case.
    """
    checks = checks_for(notebook)
    if exercise not in checks:
        raise KeyError(f"no hidden check {exercise!r} in {notebook}; known: {sorted(checks)}")
    run_in_kernel(checks[exercise], obj)


__all__ = ["Case", "HiddenCheck", "Outcome", "checks_for", "run_hidden"]
