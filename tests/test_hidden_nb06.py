"""Tests of the hidden checks of notebook 06 (losses and numerical stability).

The notebook's solutions pass every hidden check; typical wrong implementations lose points with a
diagnosis that names the mistake; correct implementations in other styles earn full marks on the
hidden check and pass the visible cells; the judge fails cleanly on malformed outcomes.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from solutions import run_visible, solution_namespace

from autograder.hidden import checks_for, hidden_verdict
from autograder.hidden.framework import Outcome
from course.checks import CheckFailed

NB = "06_losses"
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source" / "week1" / f"{NB}.ipynb"
EXERCISES = ("logsumexp", "softmax", "log_softmax", "cross_entropy", "cross_entropy_grad", "bce_with_logits",
             "huber", "huber_grad")


@pytest.fixture(scope="module")
def ref() -> dict:
    return solution_namespace(NOTEBOOK)


def verdict_text(exercise: str, obj) -> tuple:
    verdict = hidden_verdict(NB, exercise, obj)
    return verdict.fraction, "\n".join(verdict.lines())


def test_the_cases_hold_what_the_issue_asks_for():
    arrays = [c.args[0] for c in checks_for(NB)["logsumexp"].cases()]
    values = np.concatenate([a.reshape(-1) for a in arrays])
    assert 1e4 in values and -1e4 in values and -np.inf in values
    assert {(0, 4), (4, 1), (1, 6)} <= {a.shape for a in arrays}
    ce = checks_for(NB)["cross_entropy"].cases()
    assert any(set(np.asarray(c.args[1]).ravel()) == set(range(c.args[0].shape[1])) for c in ce)
    huber = checks_for(NB)["huber"].cases()
    assert any(np.any(np.abs(c.args[0] - c.args[1]) == c.kwargs.get("delta", 1.0)) for c in huber)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_judge_fails_cleanly_on_malformed_outcomes(exercise):
    check = checks_for(NB)[exercise]
    junk = [None, 3, "text", [], {}, {"result": 1.0}, {"result": 1.0, "warnings": "no", "changed": []},
            {"result": None, "warnings": [], "changed": []}, {"result": [1.0], "warnings": [], "changed": []}]
    outcomes = [Outcome("returned", value=v) for v in junk] + [Outcome("raised", error="TypeError", message="boom"),
                                                              Outcome("unsupported", message="Foo"), Outcome("weird")]
    for case in check.cases():
        for outcome in outcomes:
            result = check.judge(case, outcome)
            assert result.ok is False and isinstance(result.message, str), (case.label, outcome)


# ----------------------------------------------------------------------------------------------
# typical wrong implementations


def _max_shift_lse(z, axis=-1):
    m = np.max(z, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(z - m), axis=axis))


def _softmax(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(z, axis=-1):
    return z - np.expand_dims(_max_shift_lse(z, axis), axis)


def _validate(logits, targets):
    N, C = logits.shape
    if targets.shape != (N,):
        raise ValueError(f"targets {targets.shape}")
    if targets.dtype.kind not in "iu":
        raise ValueError("targets must be integers")
    if np.any((targets < 0) | (targets >= C)):
        raise ValueError(f"targets out of range: {targets.tolist()}")


def _ce(logits, targets, reduce=np.mean, shift=0, check=True):
    if check:
        _validate(logits, targets)
    C = logits.shape[1]
    return float(-reduce(_log_softmax(logits)[np.arange(len(targets)), (targets + shift) % C]))


def _ce_grad(logits, targets, scale=None, shift=0, sign=1.0):
    N, C = logits.shape
    g = _softmax(logits)
    g[np.arange(N), (targets + shift) % C] -= 1.0
    return sign * g / (N if scale is None else scale)


def _bce_checked(z, y):
    if z.shape != y.shape:
        raise ValueError(f"{z.shape} vs {y.shape}")
    if np.any((y < 0) | (y > 1)):
        raise ValueError(f"labels {y[(y < 0) | (y > 1)].tolist()}")


def _bce(z, y, reduce=np.mean, form="stable"):
    _bce_checked(z, y)
    if form == "naive":
        s = 1 / (1 + np.exp(-z))
        return float(reduce(-(y * np.log(s) + (1 - y) * np.log(1 - s))))
    if form == "no max":
        return float(reduce(-z * y + np.log1p(np.exp(-np.abs(z)))))
    return float(reduce(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def _huber(y_hat, y, delta=1.0, kind="huber", reduce=np.mean):
    if y_hat.shape != y.shape:
        raise ValueError(f"{y_hat.shape} vs {y.shape}")
    e = y_hat - y
    a = np.abs(e)
    values = np.where(a < delta, 0.5 * e * e, delta * (a - 0.5 * delta))
    if kind == "smoothl1":
        values = values / delta
    if kind == "no half":
        values = np.where(a < delta, 0.5 * e * e, delta * a)
    return float(reduce(values))


WRONG = [
    ("logsumexp", lambda z, axis=-1: np.log(np.sum(np.exp(z), axis=axis)), "exp of a large logit overflows"),
    ("logsumexp", lambda z, axis=-1: np.log(np.sum(np.exp(z - np.max(z, axis=axis, keepdims=True)), axis=axis)),
     "must be added back"),
    ("logsumexp", lambda z, axis=-1: _max_shift_lse(z, axis)[..., None] if np.ndim(_max_shift_lse(z, axis)) else
     _max_shift_lse(z, axis), "keepdims"),
    ("logsumexp", lambda z, axis=-1: _max_shift_lse(z, -1), "returned shape"),
    ("softmax", lambda z, axis=-1: np.exp(z) / np.sum(np.exp(z), axis=axis, keepdims=True), "overflows"),
    ("softmax", lambda z, axis=-1: np.exp(z - np.max(z, axis=axis, keepdims=True)), "division by the sum"),
    ("softmax", lambda z, axis=-1: _softmax(z, axis).astype(np.float32), "float32"),
    ("log_softmax", lambda z, axis=-1: np.log(_softmax(z, axis)), "log(0)"),
    ("log_softmax", lambda z, axis=-1: z - np.max(z, axis=axis, keepdims=True), "log Σ exp(z − m) term is missing"),
    ("cross_entropy", lambda logits, t: _ce(logits, t, reduce=np.sum), "factor N"),
    ("cross_entropy", lambda logits, t: _ce(logits, t, shift=-1), "off-by-one"),
    ("cross_entropy", lambda logits, t: _ce(logits, t, check=False) if t.dtype.kind in "iu" and t.ndim == 1 and
     len(t) == len(logits) else _ce(logits, t), "should raise ValueError"),
    ("cross_entropy", lambda logits, t: float(-np.mean(np.log(_softmax(logits))[np.arange(len(t)), t])), "log(0)"),
    ("cross_entropy", lambda logits, t: -_ce(logits, t), "sign is flipped"),
    ("cross_entropy", lambda logits, t: _ce(logits, t) * np.ones(len(t)), "one loss per sample"),
    ("cross_entropy_grad", lambda logits, t: _ce_grad(logits, t, scale=1.0), "factor N"),
    ("cross_entropy_grad", lambda logits, t: _ce_grad(logits, t, shift=1), "off-by-one"),
    ("cross_entropy_grad", lambda logits, t: _ce_grad(logits, t, sign=-1.0), "sign is flipped"),
    ("cross_entropy_grad", lambda logits, t: _softmax(logits) / len(t), "one-hot of the targets is not subtracted"),
    ("bce_with_logits", lambda z, y: _bce(z, y, form="naive"), "likely cause"),
    ("bce_with_logits", lambda z, y: _bce(z, y, reduce=np.sum), "factor N"),
    ("bce_with_logits", lambda z, y: _bce(z, y, form="no max"), "max(z, 0) is missing"),
    ("bce_with_logits", lambda z, y: _bce(z, 1.0 - y) if np.all((y >= 0) & (y <= 1)) else _bce(z, y), "swapped"),
    ("bce_with_logits", lambda z, y: float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))),
     "should raise ValueError"),
    ("huber", lambda a, y, delta=1.0: _huber(a, y, delta, "smoothl1"), "SmoothL1Loss"),
    ("huber", lambda a, y, delta=1.0: _huber(a, y, delta, reduce=np.sum), "factor N"),
    ("huber", lambda a, y, delta=1.0: _huber(a, y, delta, "no half"), "meet at |e| = delta"),
    ("huber", lambda a, y, delta=1.0: float(np.mean(0.5 * (a - y) ** 2)), "½·MSE"),
    ("huber_grad", lambda a, y, delta=1.0: np.clip(a - y, -delta, delta), "factor N"),
    ("huber_grad", lambda a, y, delta=1.0: np.clip(a - y, -delta, delta) / delta / (a - y).size, "SmoothL1Loss"),
    ("huber_grad", lambda a, y, delta=1.0: 2 * (a - y) / (a - y).size, "clip at ±delta is missing"),
    ("huber_grad", lambda a, y, delta=1.0: np.clip(y - a, -delta, delta) / (a - y).size, "sign is flipped"),
]


@pytest.mark.parametrize("exercise, fn, text", WRONG, ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(WRONG)])
def test_typical_mistakes_lose_points_with_a_diagnosis(exercise, fn, text):
    fraction, lines = verdict_text(exercise, fn)
    assert fraction < 1.0, lines
    assert text in lines, lines


def test_a_missing_validation_costs_only_the_errors_share():
    fraction, _ = verdict_text("huber", lambda a, y, delta=1.0: float(np.mean(np.where(
        np.abs(a - y) < delta, 0.5 * (a - y) ** 2, delta * (np.abs(a - y) - 0.5 * delta)))))
    assert fraction == pytest.approx(0.85)


# ----------------------------------------------------------------------------------------------
# correct implementations in other styles


def lse_logaddexp(z, axis=-1):
    return np.logaddexp.reduce(z, axis=axis)


def lse_loop(z, axis=-1):
    moved = np.moveaxis(z, axis, -1)
    out = np.empty(moved.shape[:-1])
    for index in np.ndindex(out.shape):
        row = moved[index]
        m = max(row)
        out[index] = m + math.log(sum(math.exp(v - m) for v in row))
    return out


def softmax_via_lse(z, axis=-1):
    return np.exp(z - np.expand_dims(np.logaddexp.reduce(z, axis=axis), axis))


def ce_onehot(logits, targets):
    _validate(logits, targets)
    onehot = np.eye(logits.shape[1])[targets]
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return np.float64(-np.einsum("nc,nc->", onehot, np.where(onehot > 0, logp, 0.0)) / len(targets))


def ce_loop(logits, targets):
    _validate(logits, targets)
    total = 0.0
    for row, t in zip(logits, targets):
        m = row.max()
        total += m + math.log(np.sum(np.exp(row - m))) - row[t]
    return np.array(total / len(targets))


def ce_grad_onehot(logits, targets):
    return (softmax_via_lse(logits) - np.eye(logits.shape[1])[targets]) / logits.shape[0]


def bce_logaddexp(z, y):
    _bce_checked(z, y)
    return np.mean(np.logaddexp(0.0, z) - z * y)


def bce_where(z, y):
    _bce_checked(z, y)
    softplus_neg = np.log1p(np.exp(-np.abs(z)))
    return float(np.mean(np.where(z >= 0, z * (1 - y), -z * y) + softplus_neg))


def huber_masks(y_hat, y, delta=1.0):
    if y_hat.shape != y.shape:
        raise ValueError(f"shapes {y_hat.shape} and {y.shape} differ")
    e = np.abs(y_hat - y)
    quad = np.minimum(e, delta)
    return float(np.mean(0.5 * quad ** 2 + delta * (e - quad)))


def huber_grad_where(y_hat, y, delta=1.0):
    e = y_hat - y
    return np.where(np.abs(e) < delta, e, delta * np.sign(e)) / e.size


GOOD = [
    ("logsumexp", lse_logaddexp),
    ("logsumexp", lse_loop),
    ("logsumexp", lambda z, axis=-1: torch.logsumexp(torch.from_numpy(z), dim=axis)),
    ("softmax", softmax_via_lse),
    ("softmax", lambda z, axis=-1: np.exp(z - np.max(z, axis=axis, keepdims=True))
     / np.exp(z - np.max(z, axis=axis, keepdims=True)).sum(axis=axis, keepdims=True)),
    ("log_softmax", lambda z, axis=-1: z - np.logaddexp.reduce(z, axis=axis, keepdims=True)),
    ("log_softmax", lambda z, axis=-1: (z - np.max(z, axis=axis, keepdims=True))
     - np.log(np.sum(np.exp(z - np.max(z, axis=axis, keepdims=True)), axis=axis, keepdims=True))),
    ("cross_entropy", ce_onehot),
    ("cross_entropy", ce_loop),
    ("cross_entropy", lambda logits, t: (_validate(logits, t), _ce(logits, t))[1]),
    ("cross_entropy_grad", ce_grad_onehot),
    ("cross_entropy_grad", lambda logits, t: np.einsum("nc->nc", _ce_grad(logits, t))),
    ("bce_with_logits", bce_logaddexp),
    ("bce_with_logits", bce_where),
    ("bce_with_logits", lambda z, y: (_bce_checked(z, y), np.array(np.mean(
        np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))))[1]),
    ("huber", huber_masks),
    ("huber", lambda a, y, delta=1.0: np.float64(_huber(a, y, delta))),
    ("huber_grad", huber_grad_where),
    ("huber_grad", lambda a, y, delta=1.0: np.minimum(np.maximum(a - y, -delta), delta) / np.size(a)),
]


@pytest.mark.parametrize("exercise, fn", GOOD, ids=[f"{e}-{i}" for i, (e, _) in enumerate(GOOD)])
def test_correct_implementations_in_other_styles_get_full_marks(exercise, fn):
    verdict = hidden_verdict(NB, exercise, fn)
    assert verdict.passed, "\n".join(verdict.lines())


@pytest.mark.parametrize("exercise, fn", GOOD, ids=[f"{e}-{i}" for i, (e, _) in enumerate(GOOD)])
def test_correct_implementations_in_other_styles_pass_the_visible_cells(ref, capfd, exercise, fn):
    run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: fn})
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("grade_id, name, fn, text", [
    ("test_logsumexp", "logsumexp", lambda z, axis=-1: np.log(np.sum(np.exp(z), axis=axis)), "overflow"),
    ("test_softmax", "softmax", lambda z, axis=-1: np.exp(z) / np.sum(np.exp(z), axis=axis, keepdims=True), "overflow"),
    ("test_log_softmax", "log_softmax", lambda z, axis=-1: np.log(_softmax(z, axis)), "log(0)"),
    ("test_cross_entropy", "cross_entropy", lambda logits, t: _ce(logits, t, reduce=np.sum), "factor N"),
    ("test_cross_entropy", "cross_entropy", lambda logits, t: _ce(logits, t, check=False), "should raise"),
    ("test_cross_entropy_grad", "cross_entropy_grad", lambda logits, t: _ce_grad(logits, t, scale=1.0), "factor N"),
    ("test_bce_with_logits", "bce_with_logits", lambda z, y: _bce(z, y, form="naive"), "✗"),
    ("test_huber", "huber", lambda a, y, delta=1.0: _huber(a, y, delta, "smoothl1"), "SmoothL1Loss"),
    ("test_huber_grad", "huber_grad", lambda a, y, delta=1.0: np.clip(a - y, -delta, delta), "factor N"),
])
def test_visible_cells_catch_the_central_bugs(ref, capfd, grade_id, name, fn, text):
    with pytest.raises(CheckFailed) as info:
        run_visible(NOTEBOOK, ref, grade_id, **{name: fn})
    assert text in str(info.value), str(info.value)
    assert "Warning" not in capfd.readouterr().err


# ----------------------------------------------------------------------------------------------
# found in review: more styles, and the implementations that exposed a problem


def lse_keepdims_squeeze(z, axis=-1):
    m = z.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _issubdtype_checked(logits, targets):
    if not isinstance(logits, np.ndarray) or logits.ndim != 2:
        raise ValueError(f"logits must be (N, C), got {np.shape(logits)}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be integers, got {targets.dtype}")
    if targets.shape != (logits.shape[0],):
        raise ValueError(f"targets shape {targets.shape} != ({logits.shape[0]},)")
    bad = targets[(targets < 0) | (targets >= logits.shape[1])]
    if bad.size:
        raise ValueError(f"targets out of range: {bad}")


def ce_fancy_float64(logits, targets):
    _issubdtype_checked(logits, targets)
    s = logits - logits.max(axis=1, keepdims=True)
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(targets)), targets].mean()          # a NumPy float64


def ce_take_along(logits, targets):
    _issubdtype_checked(logits, targets)
    picked = np.take_along_axis(logits, targets[:, None].astype(np.intp), axis=1)[:, 0]
    return np.asarray(np.mean(np.logaddexp.reduce(logits, axis=1) - picked))   # a 0-d array


def ce_onehot_product(logits, targets):
    # right everywhere except where a logit is -inf: 0 * (-inf) = NaN
    _issubdtype_checked(logits, targets)
    onehot = np.eye(logits.shape[1])[targets]
    return float(-(onehot * (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))).sum() / len(targets))


def huber_clip_form(y_hat, y, delta=1.0):
    if y_hat.shape != y.shape:
        raise ValueError(f"y_hat {y_hat.shape} vs y {y.shape}")
    e = y_hat - y
    c = np.clip(e, -delta, delta)
    return np.mean(c * e - 0.5 * c ** 2)


MORE_GOOD = [
    ("logsumexp", lse_keepdims_squeeze),
    ("softmax", lambda z, axis=-1: np.exp(z - np.logaddexp.reduce(z, axis=axis, keepdims=True))),
    ("log_softmax", lambda z, axis=-1: z - np.expand_dims(lse_keepdims_squeeze(z, axis), axis)),
    ("cross_entropy", ce_fancy_float64),
    ("cross_entropy", ce_take_along),
    ("cross_entropy_grad", lambda logits, t: (np.exp(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))
                                              - np.eye(logits.shape[1])[t]) / len(t)),
    ("bce_with_logits", lambda z, y: (_bce_checked(z, y), float(np.mean(np.maximum(z, 0) - z * y
                                                                         + np.log(1 + np.exp(-np.abs(z))))))[1]),
    ("huber", huber_clip_form),
    ("huber", lambda a, y, delta=1.0: (_huber(a, y, delta) if a.shape == y.shape else _huber(a, y, delta))),
    ("huber_grad", lambda a, y, delta=1.0: np.where(np.abs(a - y) <= delta, a - y, delta * np.sign(a - y))
     / float(np.prod((a - y).shape))),
]


@pytest.mark.parametrize("exercise, fn", MORE_GOOD, ids=[f"{e}-{i}" for i, (e, _) in enumerate(MORE_GOOD)])
def test_more_correct_styles_get_full_marks_and_pass_the_visible_cells(ref, capfd, exercise, fn):
    verdict = hidden_verdict(NB, exercise, fn)
    assert verdict.passed, "\n".join(verdict.lines())
    run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: fn})
    assert capfd.readouterr().err == ""


def test_a_one_hot_product_loses_only_the_edge_share_and_is_told_why(ref):
    # -inf logits are an edge of the contract: the NaN of 0 * (-inf) costs the edge group, named
    fraction, lines = verdict_text("cross_entropy", ce_onehot_product)
    assert fraction == pytest.approx(0.85), lines
    assert "0 * (-inf) = NaN" in lines and "one-hot product" in lines
    with pytest.raises(CheckFailed) as info:
        run_visible(NOTEBOOK, ref, "test_cross_entropy", cross_entropy=ce_onehot_product)
    assert "0 · (−∞) = NaN" in str(info.value)


def test_int64_only_targets_lose_the_edge_share_not_the_exercise():
    def strict(logits, targets):
        if targets.dtype != np.int64:
            raise ValueError(f"targets must be int64, got {targets.dtype}")
        return ce_fancy_float64(logits, targets)

    fraction, lines = verdict_text("cross_entropy", strict)
    assert fraction == pytest.approx(0.85), lines
    assert "raised ValueError on valid input" in lines and "int32" in lines


@pytest.mark.parametrize("error, where", [("TypeError", "dtype"), ("IndexError", "range")])
def test_another_exception_type_costs_the_errors_share_with_a_diagnosis(error, where):
    exc = {"TypeError": TypeError, "IndexError": IndexError}[error]

    def other(logits, targets):
        if where == "dtype" and targets.dtype.kind not in "iu":
            raise exc("targets must be integers")
        if where == "range" and np.any((targets < 0) | (targets >= logits.shape[1])):
            raise exc(f"targets out of range: {targets}")
        return ce_fancy_float64(logits, targets)

    fraction, lines = verdict_text("cross_entropy", other)
    assert fraction == pytest.approx(0.85), lines
    assert f"should raise ValueError, but raised {error}" in lines and "docstring asks for ValueError" in lines


def test_valid_edge_inputs_never_expect_a_value_error():
    # every case outside the errors group (C = 1, N = 1, -inf logits, int32 and int64 targets) is valid
    for exercise in EXERCISES:
        check = checks_for(NB)[exercise]
        for case in check.cases():
            if case.group != "errors on bad input":
                outcome = Outcome("raised", error="ValueError", message="no")
                assert check.judge(case, outcome).ok is False
                assert "on valid input" in check.judge(case, outcome).message


@pytest.mark.parametrize("exercise, fn, text", [
    # a finite result must never be "close" to an infinite candidate (inf - finite <= rtol * inf)
    ("cross_entropy", lambda logits, t: ce_fancy_float64(logits, np.zeros_like(t)), None),
    # N = 1: "a factor N" equals the reference itself and must not be offered as the cause
    ("cross_entropy", lambda logits, t: float(np.float32(ce_fancy_float64(logits, t))), "float32"),
    ("cross_entropy", lambda logits, t: float(-np.mean(np.log(_softmax(logits))[np.arange(len(t)), t]))
     if np.isfinite(logits).all() else ce_fancy_float64(logits, t), "log(0)"),
    ("bce_with_logits", lambda z, y: float(np.mean(z - z * y + np.log1p(np.exp(-z)))), "exp only sees -|z|"),
    ("cross_entropy", lambda logits, t: float(-np.mean(_log_softmax(logits)[np.arange(len(t)), t])),
     "NumPy reads index -1 as the last class"),
])
def test_review_diagnoses(exercise, fn, text):
    fraction, lines = verdict_text(exercise, fn)
    assert fraction < 1.0, lines
    if text is None:
        (line,) = [l for l in lines.splitlines() if "-inf logits" in l]
        assert "got 2.7" in line and "likely cause" not in line, line
    else:
        assert text in lines, lines
    assert "a factor N" not in "\n".join(l for l in lines.splitlines() if "N = 1" in l), lines
