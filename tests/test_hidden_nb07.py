"""Tests of the hidden checks of notebook 07 (regularization).

The notebook's solutions pass every hidden check; typical wrong implementations lose their points
with a diagnosis that names the mistake; correct implementations written in other styles earn full
marks on the hidden checks and on the visible cells; the judge fails cleanly on malformed outcomes;
the probe holds no reference.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from solutions import run_visible, solution_namespace

from autograder.hidden import checks_for, hidden_verdict
from autograder.hidden.framework import Outcome
from course.checks import CheckFailed

NB = "07_regularization"
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source" / "week1" / f"{NB}.ipynb"
EXERCISES = ("dropout", "dropout_backward", "l2_penalty", "sgd_step_weight_decay", "l1_subgradient", "best_epoch")


@pytest.fixture(scope="module")
def ref() -> dict:
    return solution_namespace(NOTEBOOK)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_judge_fails_cleanly_on_malformed_outcomes(exercise):
    check = checks_for(NB)[exercise]
    junk = [None, 3, 2.5, "text", [], {}, np.zeros(3), {"calls": None, "changed": False},
            {"calls": [{"kind": "returned", "value": None}] * 3, "changed": False},
            {"calls": [{"kind": "weird"}] * 3, "changed": False},
            {"result": np.zeros(3), "warnings": [], "changed": []}, {"result": None, "warnings": [], "changed": []},
            {"result": (1.0, 2.0), "warnings": [], "changed": []}]
    outcomes = [Outcome("returned", value=v) for v in junk]
    outcomes += [Outcome("raised", error="TypeError", message="boom"), Outcome("unsupported", message="Foo"),
                 Outcome("weird")]
    for case in check.cases():
        for outcome in outcomes:
            result = check.judge(case, outcome)
            if result.ok:  # only a returned ValueError... never from junk; an errors case accepts nothing else
                pytest.fail(f"{case.label}: {outcome}")
            assert isinstance(result.message, str) and result.message


def test_probe_module_holds_no_reference():
    text = (ROOT / "autograder" / "probe" / "nb07.py").read_text()
    assert "torch" not in text and "course" not in text
    for forbidden in ("1 - p", "1.0 - p", "random(", "binomial", "sign(", "argmin"):
        assert forbidden not in text, forbidden


# ----------------------------------------------------------------------------------------------
# wrong implementations: each loses points, with a diagnosis


def _check(p):
    if not 0.0 <= p <= 1.0:
        raise ValueError("p")


def drop_scale_1_minus_p(x, p, training, rng):
    _check(p)
    if not training:
        return x.copy(), np.ones_like(x)
    mask = (rng.random(x.shape) >= p) * (1.0 - p)
    return x * mask, mask


def drop_no_scale(x, p, training, rng):
    _check(p)
    if not training:
        return x.copy(), np.ones_like(x)
    mask = (rng.random(x.shape) >= p).astype(float)
    return x * mask, mask


def drop_in_eval(x, p, training, rng):
    _check(p)
    if p == 1:
        return np.zeros_like(x), np.zeros_like(x)
    mask = (rng.random(x.shape) >= p) / (1.0 - p)
    return x * mask, mask


def drop_keep_p(x, p, training, rng):
    _check(p)
    if not training or p == 0:
        return x.copy(), np.ones_like(x)
    if p == 1:
        return np.zeros_like(x), np.zeros_like(x)
    mask = (rng.random(x.shape) < p) / (1.0 - p)
    return x * mask, mask


def drop_nan_at_one(x, p, training, rng):
    _check(p)
    if not training:
        return x.copy(), np.ones_like(x)
    with np.errstate(all="ignore"):
        mask = (rng.random(x.shape) >= p) / (1.0 - p)
        return x * mask, mask


def drop_global_rng(x, p, training, rng):
    _check(p)
    if not training or p == 0:
        return x.copy(), np.ones_like(x)
    if p == 1:
        return np.zeros_like(x), np.zeros_like(x)
    mask = (np.random.random(x.shape) >= p) / (1.0 - p)
    return x * mask, mask


def drop_no_error(x, p, training, rng):
    if not training or p == 0:
        return x.copy(), np.ones_like(x)
    if p >= 1:
        return np.zeros_like(x), np.zeros_like(x)
    mask = (rng.random(x.shape) >= p) / (1.0 - p)
    return x * mask, mask


def drop_in_place(x, p, training, rng):
    _check(p)
    if not training or p == 0:
        return x, np.ones_like(x)
    if p == 1:
        x *= 0
        return x, np.zeros_like(x)
    mask = (rng.random(x.shape) >= p) / (1.0 - p)
    x *= mask
    return x, mask


def drop_one_draw(x, p, training, rng):
    _check(p)
    if not training or p == 0:
        return x.copy(), np.ones_like(x)
    if p == 1:
        return np.zeros_like(x), np.zeros_like(x)
    mask = np.full(x.shape, float(rng.random() >= p) / (1.0 - p))
    return x * mask, mask


def drop_out_only(x, p, training, rng):
    out, _ = drop_no_error(x, p, training, rng) if 0 <= p <= 1 else (_check(p), None)
    return out


WRONG = [
    ("dropout", drop_scale_1_minus_p, "scaled by (1 - p)"),
    ("dropout", drop_no_scale, "the mask is not scaled"),
    ("dropout", drop_in_eval, "applied in evaluation mode"),
    ("dropout", drop_keep_p, "kept with probability p"),
    ("dropout", drop_global_rng, "rng passed in"),
    ("dropout", drop_in_place, "changed x in place"),
    ("dropout", drop_one_draw, "every entry got the same draw"),
    ("dropout", drop_out_only, "return the pair (out, mask)"),
    ("dropout_backward", lambda dout, mask: dout.copy(), "the mask is missing"),
    ("dropout_backward", lambda dout, mask: dout * (mask != 0), "scale 1/(1 - p) is missing"),
    ("l2_penalty", lambda ws, lam: lam * sum(float(np.sum(w ** 2)) for w in ws), "the 1/2 is missing"),
    ("l2_penalty", lambda ws, lam: lam / 2 * sum(float(np.linalg.norm(w)) for w in ws), "not squared"),
    ("l2_penalty", lambda ws, lam: lam / 2 * float(np.sum(ws[0] ** 2)), "only the first array"),
    ("sgd_step_weight_decay", lambda W, g, lr, wd: W - lr * (g - wd * W), "wrong sign"),
    ("sgd_step_weight_decay", lambda W, g, lr, wd: W - lr * g, "weight decay is missing"),
    ("sgd_step_weight_decay", lambda W, g, lr, wd: W * (1 - wd) - lr * g, "not multiplied by lr"),
    ("sgd_step_weight_decay", lambda W, g, lr, wd: W - lr * (g + 2 * wd * W), "2λW"),
    ("l1_subgradient", lambda W, lam: np.where(W >= 0, lam, -lam), "at exactly 0"),
    ("l1_subgradient", lambda W, lam: np.sign(W), "lam is missing"),
    ("l1_subgradient", lambda W, lam: lam * W, "L2"),
    ("best_epoch", lambda v: int(np.argmin(v)) if len(v) else (_ for _ in ()).throw(ValueError()), "a NaN won"),
    ("best_epoch", lambda v: int(np.nanargmin(v)) + 1 if len(v) else (_ for _ in ()).throw(ValueError()), "1-based"),
    ("best_epoch", lambda v: len(v) - 1 - int(np.nanargmin(np.asarray(v, dtype=float)[::-1])) if len(v)
     else (_ for _ in ()).throw(ValueError()), "last lowest"),
    ("best_epoch", lambda v: float(np.nanargmin(v)), "return an int index"),
]


def _sgd_in_place(W, g, lr, wd):
    W -= lr * (g + wd * W)
    return W


WRONG += [("sgd_step_weight_decay", _sgd_in_place, "in place"),
          ("dropout", drop_nan_at_one, "divides by zero")]


def best_none_when_all_nan(val_losses):
    if len(val_losses) == 0:
        raise ValueError("empty")
    best = None
    for i, v in enumerate(val_losses):
        if not math.isnan(v) and (best is None or v < val_losses[best]):
            best = i
    return best


def best_zero_when_all_nan(val_losses):
    if len(val_losses) == 0:
        raise ValueError("empty")
    return int(np.argmin(np.where(np.isnan(np.asarray(val_losses, dtype=float)), np.inf, val_losses)))


def drop_p1_python_division(x, p, training, rng):
    _check(p)
    if not training:
        return x.copy(), np.ones_like(x)
    keep = rng.random(x.shape) >= p
    return np.where(keep, x / (1 - p), 0.0), np.where(keep, 1 / (1 - p), 0.0)


def drop_per_row(x, p, training, rng):
    _check(p)
    if not training or p == 0:
        return x.copy(), np.ones_like(x)
    if p == 1:
        return np.zeros_like(x), np.zeros_like(x)
    mask = np.broadcast_to((rng.random((x.shape[0], 1)) >= p) / (1 - p), x.shape).copy()
    return x * mask, mask


def drop_float32(x, p, training, rng):
    _check(p)
    if not training or p == 0:
        return x.copy(), np.ones_like(x)
    if p == 1:
        return np.zeros_like(x), np.zeros_like(x)
    mask = ((rng.random(x.shape) >= p) / (1 - p)).astype(np.float32)
    return (x * mask).astype(np.float32), mask


def drop_eval_scaled(x, p, training, rng):
    _check(p)
    if not training:
        return x * (1 - p), np.ones_like(x)
    if p == 1:
        return np.zeros_like(x), np.zeros_like(x)
    mask = (rng.random(x.shape) >= p) / (1 - p)
    return x * mask, mask


# found in the review: an all-NaN list was unspecified (the solution returned None); it now raises
WRONG += [("best_epoch", best_none_when_all_nan, "only NaN"),
          ("best_epoch", best_zero_when_all_nan, "only NaN"),
          ("dropout", drop_p1_python_division, "p = 1 in training"),
          ("dropout", drop_per_row, "kept"),
          ("dropout", drop_float32, "float32"),
          ("dropout", drop_eval_scaled, "evaluation mode"),
          ("dropout_backward", lambda dout, mask: (dout * mask).astype(np.float32), "float32"),
          ("l2_penalty", lambda ws, lam: lam / 2 * sum(float(np.sum(np.abs(w))) for w in ws), "l2_penalty"),
          ("sgd_step_weight_decay", lambda W, g, lr, wd: (1 - lr * wd) * (W - lr * g), "sgd_step_weight_decay"),
          ("l1_subgradient", lambda W, lam: -lam * np.sign(W), "sign flipped")]


@pytest.mark.parametrize("exercise, fn, hint", WRONG, ids=[f"{e}-{h}" for e, _, h in WRONG])
def test_wrong_implementation_loses_points_with_a_diagnosis(exercise, fn, hint):
    verdict = hidden_verdict(NB, exercise, fn)
    assert not verdict.passed and verdict.fraction < 1.0
    text = "\n".join(verdict.lines())
    assert hint in text, text


@pytest.mark.parametrize("fn, fraction", [(drop_nan_at_one, 0.85), (drop_no_error, 0.85)])
def test_dropout_partial_credit(fn, fraction):
    assert hidden_verdict(NB, "dropout", fn).fraction == pytest.approx(fraction)


def test_best_epoch_without_the_empty_error_keeps_the_main_share():
    def no_error(v):
        return int(np.nanargmin(v)) if len(v) else 0

    assert hidden_verdict(NB, "best_epoch", no_error).fraction == pytest.approx(0.85)


# ----------------------------------------------------------------------------------------------
# correct implementations in other styles: full marks on the hidden checks and the visible cells


def drop_binomial(x, p, training, rng):
    if p < 0 or p > 1:
        raise ValueError("p must be a probability")
    if not training:
        return np.array(x, copy=True), np.ones(x.shape)
    if p == 1:
        zeros = np.zeros(x.shape)
        return zeros, zeros.copy()
    mask = rng.binomial(1, 1 - p, size=x.shape) / (1 - p)
    return x * mask, mask


def drop_uniform_less(x, p, training, rng):
    if not (0 <= p <= 1):
        raise ValueError(p)
    if training and p > 0:
        keep = rng.uniform(size=x.shape) < 1 - p
        mask = np.where(keep, 1.0 / (1.0 - p), 0.0) if p < 1 else np.zeros(x.shape)
    else:
        mask = np.ones(x.shape)
    return x * mask, mask


def drop_list(x, p, training, rng):
    out, mask = drop_binomial(x, p, training, rng)
    return [out, mask]


def drop_choice(x, p, training, rng):
    if not 0 <= p <= 1:
        raise ValueError("bad p")
    if not training:
        return x + 0.0, np.ones_like(x)
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    mask = rng.choice([0.0, scale], size=x.shape, p=[p, 1 - p]) if x.size else np.zeros(x.shape)
    return x * mask, mask


def drop_torch(x, p, training, rng):
    import torch

    if not 0 <= p <= 1:
        raise ValueError(p)
    out, mask = drop_binomial(x, p, training, rng)
    return torch.from_numpy(out), torch.from_numpy(mask)


def best_loop(val_losses):
    if not len(val_losses):
        raise ValueError("empty")
    best = None
    for i, v in enumerate(val_losses):
        if v == v and (best is None or v < val_losses[best]):
            best = i
    if best is None:
        raise ValueError("only NaN")
    return best


def best_nanargmin(val_losses):
    a = np.asarray(val_losses, dtype=float)
    if a.size == 0:
        raise ValueError("no epochs")
    return np.nanargmin(a)


def best_inf(val_losses):
    if len(val_losses) == 0:
        raise ValueError("empty")
    a = np.where(np.isnan(np.asarray(val_losses, dtype=float)), np.inf, val_losses)
    if np.all(np.isnan(np.asarray(val_losses, dtype=float))):
        raise ValueError("only NaN")
    return int(a.argmin())


def best_torch(val_losses):
    import torch

    if len(val_losses) == 0:
        raise ValueError("empty")
    t = torch.tensor(np.asarray(val_losses, dtype=float))
    if torch.isnan(t).all():
        raise ValueError("only NaN")
    return torch.argmin(torch.nan_to_num(t, nan=float("inf")))


def best_sorted(val_losses):
    if len(val_losses) == 0:
        raise ValueError("empty")
    order = sorted((v, i) for i, v in enumerate(val_losses) if not math.isnan(v))
    if not order:
        raise ValueError("only NaN")
    return order[0][1]


def sgd_two_lines(W, grad, lr, weight_decay):
    decayed = (1 - lr * weight_decay) * W
    return decayed - lr * grad


def sgd_torch(W, grad, lr, weight_decay):
    import torch

    w = torch.tensor(W)
    return w - lr * (torch.tensor(grad) + weight_decay * w)


def l2_einsum(weights, lam):
    return 0.5 * lam * sum(np.einsum("i,i->", w.ravel(), w.ravel()) for w in weights) if weights else 0.0


def l2_norms(weights, lam):
    return np.float64(lam / 2 * sum(np.linalg.norm(w.ravel()) ** 2 for w in weights))


def l2_concat(weights, lam):
    flat = np.concatenate([w.ravel() for w in weights]) if weights else np.zeros(0)
    return np.array(lam * (flat @ flat) / 2)


def l1_where(W, lam):
    return np.where(W > 0, lam, np.where(W < 0, -lam, 0.0))


def l1_copysign(W, lam):
    return np.where(W == 0, 0.0, np.copysign(lam, W))


def back_multiply(dout, mask):
    return np.multiply(dout, mask)


def drop_less_one_minus_p(x, p, training, rng):
    if not 0 <= p <= 1:
        raise ValueError(p)
    if not training:
        return x, np.ones_like(x)                       # x itself, as torch's eval mode returns its input
    keep = rng.random(x.shape) < 1 - p
    mask = keep.astype(np.float64) / (1 - p) if p < 1 else np.zeros_like(x)
    return x * mask, mask


def drop_where_out(x, p, training, rng):
    if p < 0 or p > 1:
        raise ValueError(p)
    if not training or p == 0:
        return x.copy(), np.ones_like(x)
    if p == 1:
        return np.zeros_like(x), np.zeros_like(x)
    keep = rng.binomial(1, 1 - p, size=x.shape).astype(bool)
    return np.where(keep, x / (1 - p), 0.0), np.where(keep, 1 / (1 - p), 0.0)


def drop_bool_choice(x, p, training, rng):
    if not 0 <= p <= 1:
        raise ValueError(p)
    if not training:
        return np.array(x), np.ones(x.shape)
    if p == 1:
        return np.zeros(x.shape), np.zeros(x.shape)
    keep = rng.choice([True, False], size=x.shape, p=[1 - p, p])
    mask = keep * (1 / (1 - p))
    return x * mask, mask


def best_nanargmin_plain(val_losses):
    if len(val_losses) == 0:
        raise ValueError("empty")
    return int(np.nanargmin(val_losses))               # raises ValueError on an all-NaN list itself


def best_min_key(val_losses):
    if len(val_losses) == 0:
        raise ValueError("empty")
    return min((i for i in range(len(val_losses)) if not math.isnan(val_losses[i])), key=lambda i: val_losses[i])


def l2_vdot(weights, lam):
    return lam / 2 * sum(np.vdot(w, w) for w in weights)


def l2_norm_squared(weights, lam):
    return lam / 2 * sum(np.linalg.norm(w) ** 2 for w in weights)


def sgd_decay_form(W, grad, lr, weight_decay):
    return W * (1 - lr * weight_decay) - grad * lr


def l1_bool_difference(W, lam):
    return lam * (W > 0) - lam * (W < 0)


STYLES = [
    ("dropout", drop_binomial), ("dropout", drop_uniform_less), ("dropout", drop_list), ("dropout", drop_choice),
    ("dropout", drop_torch),
    ("best_epoch", best_loop), ("best_epoch", best_nanargmin), ("best_epoch", best_inf), ("best_epoch", best_torch),
    ("best_epoch", best_sorted),
    ("sgd_step_weight_decay", sgd_two_lines), ("sgd_step_weight_decay", sgd_torch),
    ("l2_penalty", l2_einsum), ("l2_penalty", l2_norms), ("l2_penalty", l2_concat),
    ("l1_subgradient", l1_where), ("l1_subgradient", l1_copysign),
    ("dropout_backward", back_multiply),
    ("dropout", drop_less_one_minus_p), ("dropout", drop_where_out), ("dropout", drop_bool_choice),
    ("best_epoch", best_nanargmin_plain), ("best_epoch", best_min_key),
    ("l2_penalty", l2_vdot), ("l2_penalty", l2_norm_squared),
    ("sgd_step_weight_decay", sgd_decay_form), ("l1_subgradient", l1_bool_difference),
]


@pytest.mark.parametrize("exercise, fn", STYLES, ids=[f"{e}-{f.__name__}" for e, f in STYLES])
def test_other_correct_styles_earn_full_marks_everywhere(ref, exercise, fn):
    verdict = hidden_verdict(NB, exercise, fn)
    assert verdict.passed, "\n".join(verdict.lines())
    run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: fn})


@pytest.mark.parametrize("exercise, fn, hint", [w for w in WRONG if w[0] != "best_epoch" or w[2] != "return an int index"][:10],
                         ids=lambda v: getattr(v, "__name__", str(v))[:30])
def test_visible_cells_catch_the_central_mistakes(ref, exercise, fn, hint):
    if fn is drop_out_only or fn is drop_global_rng:
        pass
    with pytest.raises((CheckFailed, AssertionError, TypeError, ValueError)):
        run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: fn})
