"""Partial credit by groups of cases: the one rule (framework.score) and every check's groups."""
from __future__ import annotations

import numpy as np
import pytest

from autograder.hidden import NOTEBOOK_MODULES, checks_for, hidden_verdict, run_hidden
from autograder.hidden.framework import EDGE, ERRORS, MAIN, HiddenCheck, score
from autograder.hidden.judging import tensor
from autograder.probe import Case
from course.checks import CheckFailed, Comparison
from solutions import solution_namespace
from notebooks import SOURCE

NOTEBOOKS = tuple(NOTEBOOK_MODULES)  # every notebook with hidden checks
ALL_CHECKS = [(nb, ex) for nb in NOTEBOOKS for ex in sorted(checks_for(nb))]


class _Three(HiddenCheck):
    exercise = "three"


CASES = [Case("m1", group=MAIN), Case("m2", group=MAIN), Case("e1", group=EDGE), Case("x1", group=ERRORS)]


def _results(*failed: str) -> list[Comparison]:
    return [Comparison(c.label, c.label not in failed, f"✗ {c.label}" if c.label in failed else "ok") for c in CASES]


@pytest.mark.parametrize("failed, fraction", [
    ((), 1.0), (("e1",), 0.85), (("x1",), 0.85), (("e1", "x1"), 0.7),
    (("m1",), 0.0), (("m2", "e1"), 0.0), (("m1", "m2", "e1", "x1"), 0.0),
])
def test_groups_passed_in_full_earn_their_weights_and_a_wrong_main_earns_nothing(failed, fraction):
    verdict = score(_Three(), CASES, _results(*failed))
    assert verdict.fraction == pytest.approx(fraction)
    assert verdict.passed == (not failed)


def test_the_verdict_says_which_groups_passed_and_why_the_others_failed():
    lines = score(_Three(), CASES, _results("e1")).lines()
    assert lines[0] == "hidden checks of three: 1 of 4 cases failed; 85% of the points"
    assert "✓ main behaviour (70% of the points): all 2 cases passed" in lines
    assert "✗ edge cases (15% of the points): 1 of 1 cases failed" in lines
    assert lines[-1] == "✗ e1"
    lines = score(_Three(), CASES, _results("m1")).lines()
    assert "the main behaviour failed, so the other groups earn nothing" in lines


def test_weights_that_do_not_sum_to_one_or_favour_an_edge_are_refused():
    class Bad(_Three):
        weights = {MAIN: 0.4, EDGE: 0.3, ERRORS: 0.3}

    with pytest.raises(ValueError, match="at least half"):
        Bad().group_weights(CASES)
    with pytest.raises(ValueError, match="no weights"):
        _Three().group_weights([Case("only an edge", group=EDGE)])


@pytest.mark.parametrize("notebook, exercise", ALL_CHECKS)
def test_every_check_declares_usable_weights(notebook, exercise):
    check = checks_for(notebook)[exercise]
    weights = check.group_weights(check.cases())
    assert weights[MAIN] >= 0.5 and sum(weights.values()) == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------
# the stock path: run_hidden's value is the cell's partial credit


def _linear_forward_without_the_bias_for_no_features(x, W, b):
    """Right everywhere except D = 0, where every output is b."""
    if x.size == 0:
        return np.zeros(x.shape[:-1] + (W.shape[0],))
    return x @ W.T + b


def test_run_hidden_returns_the_points_earned(capsys):
    ref = solution_namespace(SOURCE / "01_tensors_and_shapes.ipynb")
    assert run_hidden("01_tensors_and_shapes", "linear_forward", ref["linear_forward"], points=2) == 2.0
    assert capsys.readouterr().out == ""
    earned = run_hidden("01_tensors_and_shapes", "linear_forward", _linear_forward_without_the_bias_for_no_features,
                        points=2)
    assert earned == 1.6
    out = capsys.readouterr().out
    assert "✗ edge cases" in out and "no input features D = 0" in out
    with pytest.raises(CheckFailed, match="main behaviour"):
        run_hidden("01_tensors_and_shapes", "linear_forward", lambda x, W, b: x @ W.T, points=2)


def test_a_cs231n_style_linear_that_fails_only_on_the_empty_batch_keeps_the_main_share():
    """x.reshape(x.shape[0], -1) raises for N = 0: the edge group fails, with the error named."""
    ref = solution_namespace(SOURCE / "03_manual_backprop.ipynb")

    class Linear(ref["Linear"]):
        def forward(self, X):
            self.X = X
            return X.reshape(X.shape[0], -1) @ self.W.T + self.b

    for exercise in ("Linear_forward", "Linear_backward"):
        verdict = hidden_verdict("03_manual_backprop", exercise, Linear)
        assert verdict.fraction == pytest.approx(0.8), verdict.lines()
        text = "\n".join(verdict.lines())
        assert "empty batch N = 0" in text and "reshape(N, -1) cannot work out the -1" in text, text
