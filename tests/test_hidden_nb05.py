"""Tests of the hidden checks of notebook 05 (activations).

The notebook's own solutions pass every hidden check; typical wrong implementations lose their
points with a diagnosis that names the mistake; correct implementations written in other styles
earn full marks; the judge fails cleanly on malformed outcomes; the probe holds no reference and
keeps the student's warnings off stderr; the visible cells catch the central bug of each exercise.
"""
from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from solutions import run_visible, solution_namespace

from autograder.hidden import checks_for, hidden_verdict, run_hidden
from autograder.hidden.framework import Outcome
from autograder.probe import Case, run_probe
from course.checks import CheckFailed

NB = "05_activations"
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source" / "week1" / f"{NB}.ipynb"
EXERCISES = ("sigmoid", "sigmoid_grad", "tanh_grad", "relu_grad", "leaky_relu", "leaky_relu_grad", "gelu",
             "gelu_grad", "collapse_linear", "dead_units")
ERF = np.vectorize(math.erf, otypes=[np.float64])


@pytest.fixture(scope="module")
def ref() -> dict:
    return solution_namespace(NOTEBOOK)


def failure(exercise: str, obj) -> str:
    """The hidden checks' message for a wrong implementation that earns nothing."""
    with pytest.raises(CheckFailed) as info:
        run_hidden(NB, exercise, obj)
    verdict = hidden_verdict(NB, exercise, obj)
    assert verdict.fraction == 0.0, verdict.lines()
    return str(info.value)


def verdict_text(exercise: str, obj) -> tuple:
    verdict = hidden_verdict(NB, exercise, obj)
    return verdict.fraction, "\n".join(verdict.lines())


# ----------------------------------------------------------------------------------------------
# the reference passes, the checks are well formed


def test_the_shared_inputs_hold_what_the_issue_asks_for():
    check = checks_for(NB)["sigmoid"]
    arrays = [c.args[0] for c in check.cases()]
    values = np.concatenate([a.reshape(-1) for a in arrays])
    assert 0.0 in values and 1e4 in values and -1e4 in values and -1000.0 in values and 5e-324 in values
    shapes = {a.shape for a in arrays}
    assert {(), (0,), (13,), (6, 5), (2, 3, 4, 5)} <= shapes


@pytest.mark.parametrize("exercise", EXERCISES)
def test_judge_fails_cleanly_on_malformed_outcomes(exercise):
    check = checks_for(NB)[exercise]
    junk = [None, 3, 2.5, "text", [], [1, 2], {}, np.zeros(3), {"result": np.zeros(3)},
            {"result": np.zeros(3), "warnings": "no", "changed": []},
            {"result": np.zeros(3), "warnings": [], "changed": ["x"]},
            {"result": None, "warnings": [], "changed": []}, {"result": (None, None), "warnings": [], "changed": []},
            {"result": [1.0], "warnings": [], "changed": []}, {"result": {"a": 1}, "warnings": [], "changed": []}]
    outcomes = [Outcome("returned", value=v) for v in junk]
    outcomes += [Outcome("raised", error="ValueError", message="boom"),
                 Outcome("unsupported", message="returned an object of type Foo"), Outcome("weird")]
    for case in check.cases():
        for outcome in outcomes:
            result = check.judge(case, outcome)
            assert result.ok is False, (case.label, outcome)
            assert isinstance(result.message, str) and result.message


def test_probe_module_holds_no_reference():
    text = (ROOT / "autograder" / "probe" / "nb05.py").read_text()
    assert "torch" not in text and "course" not in text
    for forbidden in ("exp(", "tanh", "erf(", "maximum(", "where(", " @ ", "0.01", "sigmoid(", "sqrt"):
        assert forbidden not in text, forbidden
    imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", text, re.MULTILINE)
    assert set(imports) <= {"__future__", "typing", "numpy", "warnings", ".core"}, imports


def naive_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_probe_records_warnings_and_keeps_them_off_stderr(capfd):
    case = Case("large", args=(np.array([-1000.0, 0.0, 1000.0]),))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escaped the probe would raise here
        outcome = run_probe("nb05.watched", naive_sigmoid, case)
    assert outcome.kind == "returned"
    assert any("overflow" in w for w in outcome.value["warnings"]), outcome.value
    np.testing.assert_array_equal(outcome.value["result"], [0.0, 0.5, 1.0])
    with pytest.raises(CheckFailed):
        run_hidden(NB, "sigmoid", naive_sigmoid, points=2)
    captured = capfd.readouterr()
    assert "Warning" not in captured.err and captured.err == "", captured.err


def test_probe_sees_warnings_even_when_the_student_silenced_numpy():
    old = np.seterr(all="ignore")
    try:
        outcome = run_probe("nb05.watched", naive_sigmoid, Case("x", args=(np.array([-1000.0]),)))
    finally:
        np.seterr(**old)
    assert any("overflow" in w for w in outcome.value["warnings"])


def test_probe_records_arguments_changed_in_place():
    def clobber(x):
        x[...] = 0.0
        return x

    outcome = run_probe("nb05.watched", clobber, Case("x", args=(np.array([1.0, -1.0]),)))
    assert outcome.value["changed"] == [0]


# ----------------------------------------------------------------------------------------------
# typical wrong implementations lose their points, with a diagnosis


def where_both_branches(x):
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-x)), np.exp(x) / (1.0 + np.exp(x)))


def sigmoid_in_place(x):
    e = np.exp(-np.abs(x))
    x[...] = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return x


def stable(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


WRONG = [
    ("sigmoid", naive_sigmoid, "overflow"),
    ("sigmoid", where_both_branches, "computes a and b for every element"),
    ("sigmoid", lambda x: stable(-x), "sign slip"),
    ("sigmoid", lambda x: stable(x).astype(np.float32), "float32"),
    ("sigmoid", sigmoid_in_place, "in place"),
    ("sigmoid", lambda x: stable(x).tolist(), "return a NumPy array"),
    ("sigmoid_grad", lambda x: x * (1 - x), "x·(1 − x)"),
    ("sigmoid_grad", lambda x: stable(stable(x)) * (1 - stable(stable(x))), "evaluated at σ(x) instead of x"),
    ("sigmoid_grad", lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2, "NaN"),
    ("sigmoid_grad", lambda x: stable(x), "σ(x) itself"),
    ("tanh_grad", lambda x: 1 - x * x, "evaluated at tanh(x) instead of x"),
    ("tanh_grad", lambda x: 1 - np.tanh(x), "the square is missing"),
    ("relu_grad", lambda x: np.where(x >= 0, 1.0, 0.0), "relu_grad(0) is 1 here"),
    ("relu_grad", lambda x: x > 0, "boolean array"),
    ("relu_grad", lambda x: (x > 0).astype(np.int64), "integer array"),
    ("relu_grad", lambda x: np.maximum(x, 0.0), "ReLU(x) itself"),
    ("leaky_relu", lambda x, negative_slope=0.01: np.where(x > 0, x, 0.01 * x), "was ignored"),
    ("leaky_relu", lambda x, negative_slope=0.01: np.maximum(x, 0.0), "that is ReLU"),
    ("leaky_relu", lambda x, alpha=0.01: np.where(x > 0, x, alpha * x), "negative_slope=0.01"),
    ("leaky_relu_grad", lambda x, negative_slope=0.01: np.where(x >= 0, 1.0, negative_slope), "at exactly 0"),
    ("leaky_relu_grad", lambda x, negative_slope=0.01: np.where(x > 0, 1.0, 0.01), "was ignored"),
    ("leaky_relu_grad", lambda x, negative_slope=0.01: np.where(x > 0, 1.0, 0.0), "ReLU's gradient"),
    ("gelu", lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))), "tanh approximation"),
    ("gelu", lambda x: 0.5 * x * (1 + ERF(x)), "erf(x / √2)"),
    ("gelu", lambda x: x / (1 + np.exp(-1.702 * x)), "sigmoid approximation"),
    ("gelu_grad", lambda x: 0.5 * (1 + ERF(x / math.sqrt(2))), "x·φ(x) of the product rule is missing"),
    ("gelu_grad", lambda x: 0.5 * (1 + ERF(x / math.sqrt(2))) + x * np.exp(-x * x / 2), "1/√(2π)"),
    ("gelu_grad", lambda x: _tanh_gelu_grad(x), "tanh approximation"),
]


def _tanh_gelu_grad(x):
    k = math.sqrt(2 / math.pi)
    u = k * (x + 0.044715 * x ** 3)
    t = np.tanh(u)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)


@pytest.mark.parametrize("exercise, fn, text", WRONG, ids=[f"{e}-{t[:24]}" for e, _, t in WRONG])
def test_typical_mistakes_lose_points_with_a_diagnosis(exercise, fn, text):
    fraction, lines = verdict_text(exercise, fn)
    assert fraction < 1.0, lines
    assert text in lines, lines


def test_a_float32_or_in_place_or_naive_sigmoid_earns_nothing():
    for fn in (naive_sigmoid, lambda x: stable(x).astype(np.float32), sigmoid_in_place):
        assert hidden_verdict(NB, "sigmoid", fn).fraction == 0.0


def test_gelu_with_vectorize_but_no_otypes_loses_only_the_edge_share():
    fraction, lines = verdict_text("gelu", lambda x: x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2))))
    assert fraction == pytest.approx(0.8) and "otypes" in lines, lines


def test_gelu_with_math_erf_on_an_array_is_diagnosed():
    assert "one number, not an array" in failure("gelu", lambda x: x * 0.5 * (1 + math.erf(x / math.sqrt(2))))


def collapse(order="right", bias="right", transpose=False):
    def collapse_linear(W1, b1, W2, b2):
        W = W1 @ W2 if order == "wrong" else W2 @ W1
        b = {"right": W2 @ b1 + b2, "no W2": b1 + b2, "no b2": W2 @ b1}[bias]
        return (W.T if transpose else W), b

    return collapse_linear


@pytest.mark.parametrize("kwargs, text", [
    ({"order": "wrong"}, "W1 @ W2 is in the wrong order"),
    ({"bias": "no W2"}, "the bias is missing W2"),
    ({"bias": "no b2"}, "b2 is missing"),
    ({"transpose": True}, "transposed"),
])
def test_collapse_linear_mistakes_are_diagnosed(kwargs, text):
    assert text in failure("collapse_linear", collapse(**kwargs))


def test_collapse_linear_wrong_order_on_non_square_layers_names_the_order():
    message = failure("collapse_linear", collapse(order="wrong"))
    assert "layer 1 acts first" in message


def dead(kind="right"):
    def dead_units(X, W, b):
        Z = X @ W.T + b
        if kind == "any":
            return np.any(Z <= 0, axis=0)
        if kind == "strict":
            return np.all(Z < 0, axis=0)
        if kind == "float":
            return np.all(Z <= 0, axis=0).astype(np.float64)
        if kind == "count":
            return int(np.all(Z <= 0, axis=0).sum())
        if kind == "axis 1":
            return np.all(Z <= 0, axis=1)
        if kind == "no bias":
            return np.all(X @ W.T <= 0, axis=0)
        if kind == "list":
            return np.all(Z <= 0, axis=0).tolist()
        if kind == "alive":
            return np.any(Z > 0, axis=0)
        return np.all(Z <= 0, axis=0)

    return dead_units


@pytest.mark.parametrize("kind, text", [
    ("any", "not .any"),
    ("strict", "not only Z < 0"),
    ("float", "boolean array"),
    ("count", "number of dead units"),
    ("axis 1", "reduce over the rows, axis 0"),
    ("no bias", "the bias b is missing"),
    ("list", "a list"),
    ("alive", "swapped"),
])
def test_dead_units_mistakes_are_diagnosed(kind, text):
    fraction, lines = verdict_text("dead_units", dead(kind))
    assert fraction == 0.0 and text in lines, lines


def test_dead_units_with_w_untransposed_gets_the_dead_units_hint_not_collapse_linears():
    """A matmul shape error in dead_units used to be explained with collapse_linear's W2 @ W1 hint."""
    fraction, lines = verdict_text("dead_units", lambda X, W, b: np.all(X @ W + b <= 0, axis=0))
    assert fraction == 0.0 and "X @ W.T + b" in lines and "W2 @ W1" not in lines, lines


def test_dead_units_returning_indices_is_diagnosed_by_visible_and_hidden_checks(ref):
    def indices(X, W, b):
        return np.flatnonzero(np.all(X @ W.T + b <= 0, axis=0))

    fraction, lines = verdict_text("dead_units", indices)
    assert fraction == 0.0 and "indices of the dead units" in lines and "axis 1" not in lines, lines
    assert "indices of the dead units" in _run_visible(ref, "test_dead_units", dead_units=indices)


def test_collapse_linear_bias_through_untransposed_w2_is_diagnosed(ref):
    def untransposed(W1, b1, W2, b2):
        return W2 @ W1, (b1 @ W2 + b2 if W2.shape[0] == W2.shape[1] else W2 @ b1 + b2)

    assert "b1 @ W2 + b2" in failure("collapse_linear", untransposed)
    assert "b1 @ W2 + b2" in _run_visible(ref, "test_collapse_linear", collapse_linear=untransposed)


@pytest.mark.parametrize("label, fn", [
    ("lists", lambda W1, b1, W2, b2: ((W2 @ W1).tolist(), (W2 @ b1 + b2).tolist())),
    ("float32", lambda W1, b1, W2, b2: ((W2 @ W1).astype(np.float32), (W2 @ b1 + b2).astype(np.float32))),
    ("a float b when C = 1", lambda W1, b1, W2, b2: (W2 @ W1, float((W2 @ b1 + b2)[0]) if len(b2) == 1 else W2 @ b1 + b2)),
    ("b of shape (1, C)", lambda W1, b1, W2, b2: (W2 @ W1, (W2 @ b1 + b2)[None, :])),
])
def test_collapse_linear_contract_is_the_same_in_visible_and_hidden_checks(ref, label, fn):
    """The visible cell used to accept W and b as lists (or b as a number) that the grader refuses."""
    assert hidden_verdict(NB, "collapse_linear", fn).fraction < 1.0
    message = _run_visible(ref, "test_collapse_linear", collapse_linear=fn)
    assert "collapse_linear, (D, H, C)" in message, message


def test_gelu_with_frompyfunc_astype_on_a_number_is_diagnosed():
    def gelu_frompyfunc(x):
        erf = np.frompyfunc(math.erf, 1, 1)
        return x * 0.5 * (1.0 + erf(x / math.sqrt(2.0)).astype(np.float64))

    fraction, lines = verdict_text("gelu", gelu_frompyfunc)
    assert fraction == pytest.approx(0.8) and "np.asarray(..., dtype=np.float64)" in lines, lines


def test_an_overflow_outside_exp_gets_a_hint_that_names_it():
    fraction, lines = verdict_text("sigmoid_grad", lambda x: 0.25 / np.cosh(x / 2) ** 2)
    assert fraction == 0.0 and "np.cosh" in lines, lines


# ----------------------------------------------------------------------------------------------
# correct implementations in other styles earn full marks


def sigmoid_masks(x):
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def erf_by_list(x):
    flat = np.array([math.erf(v) for v in np.ravel(x)], dtype=np.float64)
    return flat.reshape(np.shape(x))


def leaky_masks(x, negative_slope=0.01):
    out = x.copy()
    out[x <= 0] *= negative_slope
    return out


def leaky_grad_masks(x, negative_slope=0.01):
    g = np.ones_like(x)
    g[x <= 0] = negative_slope
    return g


def relu_grad_masks(x):
    g = np.zeros_like(x)
    g[x > 0] = 1.0
    return g


def collapse_einsum(W1, b1, W2, b2):
    return [np.einsum("ch,hd->cd", W2, W1), np.einsum("ch,h->c", W2, b1) + b2]


def collapse_read_off(W1, b1, W2, b2):
    """The affine map read off its values at 0 and at the basis vectors."""
    layers = lambda x: (x @ W1.T + b1) @ W2.T + b2  # noqa: E731
    b = layers(np.zeros((1, W1.shape[1])))[0]
    W = (layers(np.eye(W1.shape[1])) - b).T
    return W, b


GOOD = [
    ("sigmoid", lambda x: np.exp(-np.logaddexp(0.0, -x))),
    ("sigmoid", sigmoid_masks),
    ("sigmoid", lambda x: 0.5 * (1.0 + np.tanh(0.5 * x))),
    ("sigmoid", lambda x: torch.sigmoid(torch.from_numpy(x))),
    ("sigmoid_grad", lambda x: np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))) ** 2),
    ("sigmoid_grad", lambda x: np.exp(-np.logaddexp(0.0, -x)) * np.exp(-np.logaddexp(0.0, x))),
    ("tanh_grad", lambda x: 1.0 / np.cosh(x) ** 2),
    ("tanh_grad", lambda x: 1.0 - np.tanh(x) ** 2),
    ("relu_grad", lambda x: np.heaviside(x, 0.0)),
    ("relu_grad", lambda x: (x > 0).astype(np.float64)),
    ("relu_grad", relu_grad_masks),
    ("leaky_relu", lambda x, negative_slope=0.01: np.maximum(x, negative_slope * x)),
    ("leaky_relu", leaky_masks),
    ("leaky_relu_grad", leaky_grad_masks),
    ("leaky_relu_grad", lambda x, negative_slope=0.01: np.where(x > 0, 1.0, 0.0) + np.where(x > 0, 0.0, negative_slope)),
    ("gelu", lambda x: x * 0.5 * (1.0 + erf_by_list(x / math.sqrt(2.0)))),
    ("gelu", lambda x: 0.5 * x * np.vectorize(math.erfc, otypes=[np.float64])(-x / math.sqrt(2.0))),
    ("gelu_grad", lambda x: 0.5 * np.vectorize(math.erfc, otypes=[float])(-x / math.sqrt(2.0))
     + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)),
    ("gelu_grad", lambda x: 0.5 * (1.0 + erf_by_list(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x ** 2) / np.sqrt(2 * np.pi)),
    ("collapse_linear", collapse_einsum),
    ("collapse_linear", collapse_read_off),
    ("collapse_linear", lambda W1, b1, W2, b2: (np.linalg.multi_dot([W2, W1]), b1 @ W2.T + b2)),
    ("dead_units", lambda X, W, b: (X @ W.T + b).max(axis=0) <= 0),
    ("dead_units", lambda X, W, b: ~np.any(np.einsum("nd,hd->nh", X, W) + b > 0, axis=0)),
    ("dead_units", lambda X, W, b: np.logical_not((np.maximum(X @ W.T + b, 0.0) > 0).any(axis=0))),
    ("dead_units", lambda X, W, b: torch.all(torch.relu(torch.from_numpy(X @ W.T + b)) == 0, dim=0)),
    # further styles tried in review
    ("sigmoid", lambda x: np.exp(x - np.logaddexp(0.0, x))),
    ("sigmoid", lambda x: np.piecewise(x, [x >= 0, x < 0], [lambda u: 1 / (1 + np.exp(-u)),
                                                             lambda u: np.exp(u) / (1 + np.exp(u))])),
    ("sigmoid_grad", lambda x: stable(x) * stable(-x)),
    ("sigmoid_grad", lambda x: 0.25 * (1.0 - np.tanh(0.5 * x) ** 2)),
    ("tanh_grad", lambda x: (1.0 - np.tanh(x)) * (1.0 + np.tanh(x))),
    ("tanh_grad", lambda x: 4.0 * stable(2 * x) * stable(-2 * x)),
    ("relu_grad", lambda x: (x > 0) * 1.0),
    ("relu_grad", lambda x: np.sign(np.maximum(x, 0.0))),
    ("leaky_relu", lambda x, negative_slope=0.01: np.maximum(x, 0.0) + negative_slope * np.minimum(x, 0.0)),
    ("leaky_relu_grad", lambda x, negative_slope=0.01: (x > 0) * 1.0 + (x <= 0) * negative_slope),
    ("gelu", lambda x: (x * 0.5 * (1 + np.frompyfunc(math.erf, 1, 1)(x / math.sqrt(2)))).astype(np.float64)),
    ("gelu_grad", lambda x: 0.5 * (1 + np.asarray(np.frompyfunc(math.erf, 1, 1)(x / math.sqrt(2)), dtype=np.float64))
     + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)),
    ("collapse_linear", lambda W1, b1, W2, b2: tuple(torch.from_numpy(a) for a in (W2 @ W1, W2 @ b1 + b2))),
    ("collapse_linear", lambda W1, b1, W2, b2: [np.dot(W2, W1), np.dot(W2, b1) + b2]),
    ("dead_units", lambda X, W, b: np.all(X @ W.T + b <= 0, axis=0)),
    ("dead_units", lambda X, W, b: np.array([all(X[n] @ W[h] + b[h] <= 0 for n in range(X.shape[0]))
                                             for h in range(W.shape[0])], dtype=bool)),
    ("dead_units", lambda X, W, b: np.maximum(X @ W.T + b, 0.0).sum(axis=0) == 0),
]


@pytest.mark.parametrize("exercise, fn", GOOD, ids=[f"{e}-{i}" for i, (e, _) in enumerate(GOOD)])
def test_correct_implementations_in_other_styles_get_full_marks(exercise, fn):
    verdict = hidden_verdict(NB, exercise, fn)
    assert verdict.passed, "\n".join(verdict.lines())


@pytest.mark.parametrize("exercise, fn", GOOD, ids=[f"{e}-{i}" for i, (e, _) in enumerate(GOOD)])
def test_correct_implementations_in_other_styles_pass_the_visible_cells(ref, capfd, exercise, fn):
    run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: fn})
    assert capfd.readouterr().err == ""


# ----------------------------------------------------------------------------------------------
# the visible cells catch the central bug of each exercise


def _run_visible(ref, grade_id: str, **overrides) -> str:
    with pytest.raises(CheckFailed) as info:
        run_visible(NOTEBOOK, ref, grade_id, **overrides)
    return str(info.value)


@pytest.mark.parametrize("grade_id, name, fn, text", [
    ("test_sigmoid", "sigmoid", naive_sigmoid, "overflow"),
    ("test_sigmoid", "sigmoid", where_both_branches, "computes a and b for every element"),
    ("test_sigmoid_grad", "sigmoid_grad", lambda x: x * (1 - x), "x·(1 − x)"),
    ("test_sigmoid_grad", "sigmoid_grad", lambda x: stable(stable(x)) * (1 - stable(stable(x))), "evaluated at σ(x)"),
    ("test_tanh_grad", "tanh_grad", lambda x: 1 - x * x, "evaluated at tanh(x)"),
    ("test_relu_grad", "relu_grad", lambda x: np.where(x >= 0, 1.0, 0.0), "relu_grad(0) is 1 here"),
    ("test_relu_grad", "relu_grad", lambda x: x > 0, "boolean array"),
    ("test_leaky_relu", "leaky_relu", lambda x, negative_slope=0.01: np.where(x > 0, x, 0.01 * x), "was ignored"),
    ("test_leaky_relu_grad", "leaky_relu_grad", lambda x, negative_slope=0.01: np.where(x >= 0, 1.0, negative_slope),
     "at exactly 0"),
    ("test_gelu", "gelu", lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
     "tanh approximation"),
    ("test_gelu", "gelu", lambda x: x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2))), "size 0"),
    ("test_gelu_grad", "gelu_grad", lambda x: 0.5 * (1 + ERF(x / math.sqrt(2))), "x·φ(x)"),
    ("test_collapse_linear", "collapse_linear", collapse(order="wrong"), "wrong order"),
    ("test_collapse_linear", "collapse_linear", collapse(bias="no W2"), "missing W2"),
    ("test_dead_units", "dead_units", dead("any"), "not .any"),
    ("test_dead_units", "dead_units", dead("strict"), "Z <= 0"),
    ("test_dead_units", "dead_units", dead("float"), "boolean array"),
])
def test_visible_cells_catch_the_central_bugs(ref, capfd, grade_id, name, fn, text):
    try:
        message = _run_visible(ref, grade_id, **{name: fn})
    except ValueError as exc:  # the np.vectorize error reaches the student as it is
        message = str(exc)
    assert text in message, message
    assert "Warning" not in capfd.readouterr().err


def test_visible_cells_leave_the_formulas_of_the_derivatives_to_the_student():
    """The test cells students receive compare with autograd; they do not spell out the answers."""
    from solutions import visible_checks

    for grade_id, forbidden in [("test_sigmoid", ("np.exp(-np.abs", "logaddexp")),
                                ("test_sigmoid_grad", ("(1 - torch.sigmoid(t))", "s * (1 - s)")),
                                ("test_tanh_grad", ("1 - torch.tanh(t) ** 2", "cosh")),
                                ("test_gelu_grad", ("torch.exp(-", "φ(x) =")),
                                ("test_collapse_linear", ("W2 @ W1", "W2 @ b1"))]:
        text = visible_checks(NOTEBOOK, grade_id)
        for phrase in forbidden:
            assert phrase not in text, (grade_id, phrase)
