"""The three steps of a hidden check, kept apart.

A hidden check never trusts the student's process. It is written as three steps
whose data between them is plain (NumPy arrays, numbers, tuples, strings):

1. ``cases()``          make the inputs, from fixed seeds (runs anywhere);
2. ``call(obj, case)``  run the student's function on one case and turn what it
                        returned (or raised) into an :class:`Outcome`
                        (runs where the student's code runs);
3. ``judge(case, outcome)``  compare the outcome with the reference, PyTorch
                        wherever it has the operation (never runs student code).

Under stock nbgrader all three run in the student's kernel, through
:func:`run_in_kernel`. The hardened grader runs step 2 in a sandbox and steps 1
and 3 in a separate judge process. Step 2's code therefore lives in
``autograder.probe`` (no references, no expected values); a check names the
probe it uses in its ``probe`` attribute.
"""
from __future__ import annotations

from typing import Any, Sequence

from course.checks import CheckFailed, Comparison

# The data types and the code that runs on the student's side live in the probe package.
from ..probe import Case, Outcome, run_probe


def outcome_failure(name: str, case: Case, outcome: Outcome) -> Comparison | None:
    """The failed Comparison for an outcome that carries no usable value, else None."""
    if outcome.kind == "raised":
        if outcome.error == "NotImplementedError":
            return Comparison(name, False, f"✗ {name} [{case.label}]: not implemented yet")
        return Comparison(
            name, False, f"✗ {name} [{case.label}]: raised {outcome.error}: {outcome.message}"
        )
    if outcome.kind == "unsupported":
        return Comparison(
            name, False, f"✗ {name} [{case.label}]: {outcome.message}; return a NumPy array or a number"
        )
    return None


class HiddenCheck:
    """Base class of one exercise's hidden check. Subclasses set ``exercise`` and
    implement ``cases`` and ``judge``; ``call`` defaults to calling the student's
    function with a copy of the case's arguments."""

    exercise: str = ""
    #: name of the probe (in ``autograder.probe.PROBES``) that runs the student's object on a case
    probe: str = "call"

    def cases(self) -> list[Case]:
        raise NotImplementedError

    def call(self, obj: Any, case: Case) -> Outcome:
        """Step 2, in this process (stock path); the hardened grader runs the same probe in the sandbox."""
        return run_probe(self.probe, obj, case)

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        raise NotImplementedError


def run_in_kernel(check: HiddenCheck, obj: Any) -> list[Comparison]:
    """Run all three steps in this process (the stock nbgrader path).

    Raises CheckFailed with one line per failing case, so that nbgrader scores
    the test cell zero and the student reads the diagnosis.
    """
    results = [check.judge(case, check.call(obj, case)) for case in check.cases()]
    failures = [r for r in results if not r.ok]
    if failures:
        header = f"hidden checks of {check.exercise}: {len(failures)} of {len(results)} cases failed"
        raise CheckFailed("\n".join([header] + [r.message for r in failures]))
    return results


def by_exercise(checks: Sequence[HiddenCheck]) -> dict[str, HiddenCheck]:
    """Index a notebook's checks by exercise name, refusing duplicates."""
    index: dict[str, HiddenCheck] = {}
    for check in checks:
        if check.exercise in index:
            raise ValueError(f"two hidden checks for {check.exercise!r}")
        index[check.exercise] = check
    return index
