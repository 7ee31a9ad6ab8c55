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

Partial credit comes by groups of cases. Each case belongs to a group (the
main behaviour; edge cases such as an empty batch, a batch of one or extreme
values; the errors required on bad input), each group has a weight, most of it
on the main behaviour, and an exercise earns the weights of the groups whose
cases all pass. A wrong main behaviour earns nothing. :func:`score` is the one
place that turns judged cases into a fraction: both grading paths call it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Sequence

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


MAIN = "main behaviour"
EDGE = "edge cases"
ERRORS = "errors on bad input"

#: the weights of the groups when a check declares none, by the set of groups its cases use
DEFAULT_WEIGHTS = {
    frozenset({MAIN}): {MAIN: 1.0},
    frozenset({MAIN, EDGE}): {MAIN: 0.8, EDGE: 0.2},
    frozenset({MAIN, ERRORS}): {MAIN: 0.8, ERRORS: 0.2},
    frozenset({MAIN, EDGE, ERRORS}): {MAIN: 0.7, EDGE: 0.15, ERRORS: 0.15},
}


def grouped(main: Sequence[Case] = (), edge: Sequence[Case] = (), errors: Sequence[Case] = ()) -> list[Case]:
    """The cases of a check, each tagged with its group (main first, then edge cases, then errors)."""
    return ([dataclasses.replace(c, group=MAIN) for c in main]
            + [dataclasses.replace(c, group=EDGE) for c in edge]
            + [dataclasses.replace(c, group=ERRORS) for c in errors])


class HiddenCheck:
    """Base class of one exercise's hidden check. Subclasses set ``exercise`` and
    implement ``cases`` and ``judge``; ``call`` defaults to calling the student's
    function with a copy of the case's arguments. ``weights`` maps each group of
    the cases to its share of the points (None: :data:`DEFAULT_WEIGHTS`)."""

    exercise: str = ""
    #: name of the probe (in ``autograder.probe.PROBES``) that runs the student's object on a case
    probe: str = "call"
    weights: Optional[dict] = None

    def group_weights(self, cases: Sequence[Case]) -> dict:
        """{group: weight} for these cases, in the order main, edge, errors; the weights sum to 1."""
        present = {c.group for c in cases}
        weights = self.weights if self.weights is not None else DEFAULT_WEIGHTS.get(frozenset(present))
        if weights is None or set(weights) != present or MAIN not in present:
            raise ValueError(f"{self.exercise}: no weights for the groups {sorted(present)} "
                             f"(declared: {self.weights})")
        if abs(sum(weights.values()) - 1.0) > 1e-9 or weights[MAIN] < 0.5:
            raise ValueError(f"{self.exercise}: weights {weights} must sum to 1, at least half on {MAIN!r}")
        return {g: weights[g] for g in (MAIN, EDGE, ERRORS) if g in weights} | {
            g: w for g, w in weights.items() if g not in (MAIN, EDGE, ERRORS)}

    def cases(self) -> list[Case]:
        raise NotImplementedError

    def call(self, obj: Any, case: Case) -> Outcome:
        """Step 2, in this process (stock path); the hardened grader runs the same probe in the sandbox."""
        return run_probe(self.probe, obj, case)

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        raise NotImplementedError


#: how many failing cases a verdict lists before "... and N more"
MESSAGE_CASES = 8


@dataclass(frozen=True)
class GroupResult:
    name: str
    weight: float
    cases: int
    failures: tuple  # the failed cases' messages


@dataclass(frozen=True)
class Verdict:
    """An exercise's hidden checks, judged: the fraction of its points and the diagnosis."""

    exercise: str
    fraction: float
    groups: tuple  # of GroupResult

    @property
    def passed(self) -> bool:
        return all(not g.failures for g in self.groups)

    def lines(self, limit: Optional[int] = None) -> list[str]:
        """What the student reads: a line per group, then one line per failed case (at most ``limit``)."""
        cases = sum(g.cases for g in self.groups)
        if self.passed:
            return [f"✓ {self.exercise}: all {cases} hidden cases passed"]
        failed = sum(len(g.failures) for g in self.groups)
        head = f"hidden checks of {self.exercise}: {failed} of {cases} cases failed"
        if len(self.groups) > 1:
            head += f"; {_share(self.fraction)} of the points"
        lines = [head]
        if len(self.groups) > 1:
            for g in self.groups:
                mark = "✗" if g.failures else "✓"
                state = (f"{len(g.failures)} of {g.cases} cases failed" if g.failures
                         else f"all {g.cases} cases passed")
                lines.append(f"{mark} {g.name} ({_share(g.weight)} of the points): {state}")
            if self.groups[0].failures:
                lines.append(f"the {MAIN} failed, so the other groups earn nothing")
        messages = [m for g in self.groups for m in g.failures]
        shown = messages if limit is None else messages[:limit]
        lines += shown
        if len(shown) < len(messages):
            lines.append(f"... and {len(messages) - len(shown)} more")
        return lines


def _share(fraction: float) -> str:
    return f"{round(100 * fraction):d}%"


def score(check: HiddenCheck, cases: Sequence[Case], results: Sequence[Comparison]) -> Verdict:
    """The verdict of an exercise from its judged cases: the groups passed in full earn their
    weights, and nothing is earned when the main behaviour fails."""
    weights = check.group_weights(cases)
    failures: dict = {g: [] for g in weights}
    counts: dict = {g: 0 for g in weights}
    for case, result in zip(cases, results, strict=True):
        counts[case.group] += 1
        if result.ok is not True:
            failures[case.group].append(str(result.message))
    groups = tuple(GroupResult(g, w, counts[g], tuple(failures[g])) for g, w in weights.items())
    fraction = 0.0 if failures[MAIN] else sum(g.weight for g in groups if not g.failures)
    return Verdict(check.exercise, round(fraction, 6), groups)


def points_of(fraction: float, points: float) -> float:
    """The points a fraction earns, rounded to hundredths (what a gradebook shows)."""
    return round(fraction * points, 2)


def run_in_kernel(check: HiddenCheck, obj: Any) -> Verdict:
    """Run all three steps in this process (the stock nbgrader path) and score them."""
    cases = check.cases()
    return score(check, cases, [check.judge(case, check.call(obj, case)) for case in cases])


def by_exercise(checks: Sequence[HiddenCheck]) -> dict[str, HiddenCheck]:
    """Index a notebook's checks by exercise name, refusing duplicates."""
    index: dict[str, HiddenCheck] = {}
    for check in checks:
        if check.exercise in index:
            raise ValueError(f"two hidden checks for {check.exercise!r}")
        index[check.exercise] = check
    return index
