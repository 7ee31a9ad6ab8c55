"""Hidden checks of notebook 06, losses and numerical stability. Never shipped to students.

Every exercise is judged the same way: the probe ``nb05.watched`` calls the student's function on a
copy of the case (recording warnings and inputs changed in place); the result must satisfy the
contract of ``course.losses`` (a float64 number for a loss, a float64 array of torch's shape
otherwise) and equal PyTorch's value in float64 (its function, or autograd for a gradient). The
cases are data: fresh inputs with logits of ±1e4, rows of equal logits, -inf logits where torch is
finite, targets at every class, C = 1, N = 1, residuals exactly at ±delta, empty batches where a
result exists. Bad input must raise ValueError whose message names what is wrong. Each check lists
its typical mistakes as functions of the case's arguments: (candidate value, hint).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from course.checks import Comparison, compare, compare_scalar
from course.losses import ATOL, RTOL, array_problem, first_match, precision_hint, scalar_problem, warnings_hint

from .framework import ERRORS, Case, Outcome, by_exercise, grouped
from .judging import tensor, torch_module
from .nb03_manual_backprop import _Check
from .nb05_activations import _watched

NOTEBOOK = "06_losses"


def _F():
    return torch_module().nn.functional


def _grad(loss: Callable) -> Callable:
    """(first argument, *rest) -> d loss / d first argument, by torch's autograd in float64."""
    def grad(a, *rest, **kwargs):
        t = tensor(a, requires_grad=True)
        loss(t, *rest, **kwargs).backward()
        return t.grad.numpy()
    return grad


# ----------------------------------------------------------------------------------------------
# references (torch, float64) and the numbers of typical mistakes


def _lse(z, axis=-1):
    return torch_module().logsumexp(tensor(z), dim=axis).numpy()


def _softmax(z, axis=-1):
    return torch_module().softmax(tensor(z), dim=axis).numpy()


def _log_softmax(z, axis=-1):
    return torch_module().log_softmax(tensor(z), dim=axis).numpy()


def _ce_t(t, targets):
    return _F().cross_entropy(t, torch_module().from_numpy(np.asarray(targets, dtype=np.int64)))


def _ce(logits, targets):
    return _ce_t(tensor(logits), targets).item()


def _bce_t(t, y):
    return _F().binary_cross_entropy_with_logits(t, tensor(y))


def _huber_t(t, y, delta=1.0):
    return _F().huber_loss(t, tensor(y), delta=delta)


def _shifted(targets, C, k):
    return (np.asarray(targets) + k) % C


def _softmax_mistakes(kind):
    def mistakes(z, axis=-1):
        m = np.max(z, axis=axis, keepdims=True) if z.size else z
        other = 0 if axis in (-1, z.ndim - 1) else -1
        out = []
        if kind == "lse":
            with np.errstate(all="ignore"):
                out += [(np.log(np.sum(np.exp(z - m), axis=axis)) if z.size else _lse(z, axis),
                         "the maximum you subtracted must be added back: logsumexp(z) = m + log Σ exp(z − m)"),
                        (np.squeeze(m, axis=axis) if z.size else _lse(z, axis),
                         "that is max(z) alone; the log Σ exp(z − m) term is missing")]
        elif kind == "softmax":
            out += [(np.exp(z - m) if z.size else z, "the division by the sum is missing"),
                    (_softmax(z, other) if z.ndim > 1 else z, "normalised over the wrong axis: each slice along "
                                                               "`axis` must sum to 1")]
        else:
            out += [(z - m, "that is z − max(z); the log Σ exp(z − m) term is missing"),
                    (_softmax(z, axis), "that is softmax(z); take its log, stably: z − logsumexp(z)"),
                    (_log_softmax(z, other) if z.ndim > 1 else z, "normalised over the wrong axis")]
        return out
    return mistakes


def _ce_mistakes(grad: bool):
    def mistakes(logits, targets):
        N, C = logits.shape
        ref = (_grad(_ce_t) if grad else _ce)
        value = ref(logits, targets)
        out = [(N * np.asarray(value), "a factor N: the sum over the batch where the mean is expected"
                                       + (" (the 1/N of the mean is missing from the gradient)" if grad else "")),
               (-np.asarray(value), "the sign is flipped" + (": the gradient is softmax − onehot" if grad else
                                                             ": the loss is −log p_target"))]
        if C > 1:
            out += [(ref(logits, _shifted(targets, C, -1)), "an off-by-one one-hot: the class targets − 1 was used"),
                    (ref(logits, _shifted(targets, C, 1)), "an off-by-one one-hot: the class targets + 1 was used")]
        if not grad and np.isneginf(logits).any():
            out += [(float("nan"), "NaN where a logit is -inf: 0 * (-inf) = NaN — a one-hot product (onehot * log p) "
                                   "multiplies the -inf log-probability of a ruled-out class by 0; pick each row's "
                                   "target entry by indexing, log_p[np.arange(N), targets]")]
        if grad:
            out += [(_softmax(logits) / N, "softmax / N alone: the one-hot of the targets is not subtracted"),
                    (_softmax(logits) - np.eye(C)[targets], "softmax − onehot without the 1/N of the mean")]
        return out
    return mistakes


def _bce_mistakes(grad: bool = False):
    def mistakes(z, y):
        out = [(z.size * _bce_t(tensor(z), y).item(), "a factor N: the sum where the mean is expected"),
               (_bce_t(tensor(z), 1.0 - y).item(), "y and 1 − y are swapped (or the sign of z)")]
        with np.errstate(all="ignore"):
            out += [(float(np.mean(-z * y + np.log1p(np.exp(-np.abs(z))))), "the term max(z, 0) is missing"),
                    (float(np.mean(np.maximum(z, 0) + z * y + np.log1p(np.exp(-np.abs(z))))),
                     "the sign of z·y: the stable form is max(z, 0) − z·y + log(1 + exp(−|z|))")]
        return out
    return mistakes


def _huber_mistakes(grad: bool):
    def mistakes(y_hat, y, delta=1.0):
        e = y_hat - y
        n = max(e.size, 1)
        ref = _grad(_huber_t)(y_hat, y, delta=delta) if grad else _huber_t(tensor(y_hat), y, delta).item()
        ref = np.asarray(ref)
        out = [(n * ref, "a factor N: the sum where the mean is expected" + (" (1/N missing)" if grad else "")),
               (ref / delta, f"that is SmoothL1Loss(beta=delta), which is HuberLoss / delta (a factor {delta:g}); "
                             f"HuberLoss is ½e² inside |e| < delta and delta·(|e| − ½delta) outside"),
               (-ref, "the sign is flipped: the gradient is with respect to y_hat, e = y_hat − y")]
        if grad:
            out += [(2 * e / n, "that is the MSE's gradient 2e/N: the clip at ±delta is missing"),
                    (np.sign(e) / n, "that is the MAE's gradient sign(e)/N")]
        else:
            out += [(float(np.mean(0.5 * e * e)), "that is ½·MSE: the linear part beyond delta is missing"),
                    (float(np.mean(np.where(np.abs(e) < delta, e * e, delta * (2 * np.abs(e) - delta)))),
                     "a factor 2: the quadratic part is ½e², the linear part delta·(|e| − ½delta)"),
                    (float(np.mean(np.where(np.abs(e) < delta, 0.5 * e * e, delta * np.abs(e)))),
                     "the linear part must be delta·(|e| − ½delta), so that the two parts meet at |e| = delta")]
        return out
    return mistakes


# ----------------------------------------------------------------------------------------------
# the inputs


def _softmax_cases() -> tuple:
    rng = np.random.default_rng(60_601)
    big = np.array([[1e4, -1e4, 0.0, 5.0], [1000.0, 1.0, 1.0, -3.0], [-1e4, -1e4 + 1.0, -1e4 + 2.0, -1e4],
                    [750.0, 749.0, -750.0, 0.0]])
    inf = np.array([[-np.inf, 0.0, 1.0, 2.0], [3.0, 3.0, 3.0, 3.0], [-np.inf, -np.inf, 5.0, -np.inf]])
    main = [("(N, C) = (5, 4), normal with std 3", (3.0 * rng.standard_normal((5, 4)),), {}),
            ("(N, C) = (4, 4): logits of ±1e4, 1000 and 750", (big,), {}),
            ("(N, C) = (3, 4): -inf logits and a row of equal logits", (inf,), {}),
            ("(C,) = (3,): the vector [1000, 1, 1]", (np.array([1000.0, 1.0, 1.0]),), {}),
            ("(D, N) = (4, 6) with axis=0", (rng.standard_normal((4, 6)) * 50,), {"axis": 0}),
            ("(N, C, H) = (2, 5, 3) with axis=1", (rng.standard_normal((2, 5, 3)) * 400,), {"axis": 1})]
    edge = [("C = 1: (N, C) = (4, 1)", (rng.standard_normal((4, 1)) * 1e3,), {}),
            ("N = 1: (N, C) = (1, 6)", (rng.standard_normal((1, 6)),), {}),
            ("an empty batch (N, C) = (0, 4)", (np.zeros((0, 4)),), {}),
            ("a row of equal logits -1e4", (np.full((2, 5), -1e4),), {})]
    return main, edge


def _ce_cases() -> tuple:
    rng = np.random.default_rng(60_602)
    big = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [-5.0, 800.0, 799.0]])
    mixed = rng.standard_normal((5, 10))
    mixed[0, [1, 3, 8]] = -np.inf
    mixed[2] = 0.7                                            # equal logits: loss ln(10)
    equal = rng.standard_normal((5, 10))
    equal[2] = 0.7
    i32 = np.arange(7, dtype=np.int32) % 4
    # the main group: the loss itself; the contract's corners (-inf logits, int32 targets, C = 1, N = 1)
    # are edge cases, so that one slip there costs the edge share, not the exercise
    main = [("(N, C) = (8, 5), normal, targets at every class", (rng.standard_normal((8, 5)), np.arange(8) % 5)),
            ("(N, C) = (4, 3): logits of ±1e4, right and confidently wrong", (big, np.array([0, 1, 2, 2]))),
            ("(N, C) = (5, 10) with a row of equal logits", (equal, np.array([0, 9, 4, 2, 7]))),
            ("(N, C) = (7, 4), std 30", (30 * rng.standard_normal((7, 4)), i32.astype(np.int64)))]
    edge = [("C = 1: (N, C) = (3, 1)", (rng.standard_normal((3, 1)), np.zeros(3, dtype=np.int64))),
            ("N = 1: (N, C) = (1, 6), target 5", (rng.standard_normal((1, 6)), np.array([5]))),
            ("(N, C) = (5, 10): -inf logits off the target", (mixed, np.array([0, 9, 4, 2, 7]))),
            ("(N, C) = (7, 4), targets of dtype int32", (3 * rng.standard_normal((7, 4)), i32))]
    logits = rng.standard_normal((3, 4))
    errors = [("target 4 with C = 4 (out of range)", (logits, np.array([0, 4, 1])), ("4",)),
              ("target -1 (out of range)", (logits, np.array([0, -1, 1])), ("-1",)),
              ("targets of dtype float64 [0.0, 1.5, 2.0]", (logits, np.array([0.0, 1.5, 2.0])), ()),
              ("targets of shape (3, 1) for logits (3, 4)", (logits, np.array([[0], [1], [2]])), ("(3, 1)",)),
              ("4 targets for logits (3, 4)", (logits, np.array([0, 1, 2, 3])), ("(4,)",))]
    return main, edge, errors


def _bce_cases() -> tuple:
    rng = np.random.default_rng(60_603)
    z = np.array([-1e4, -1000.0, -710.0, -50.0, -1.0, 0.0, 1.0, 50.0, 710.0, 1000.0, 1e4])
    main = [("(N,) = (20,), normal, labels 0 and 1", (rng.standard_normal(20) * 2, rng.integers(0, 2, 20) * 1.0)),
            ("(N, C) = (4, 5), soft labels in [0, 1]", (rng.standard_normal((4, 5)) * 3, rng.uniform(0, 1, (4, 5)))),
            ("(N,): |z| up to 1e4, right and wrong labels", (z, np.array([0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1.0]))),
            ("(N,): |z| up to 1e4, labels ½", (z, np.full(z.shape, 0.5)))]
    edge = [("N = 1", (np.array([3.0]), np.array([1.0]))),
            ("(N, 1) = (3, 1) with y (3, 1)", (rng.standard_normal((3, 1)), np.array([[0.0], [1.0], [1.0]])))]
    errors = [("z (4,) with y (4, 1)", (np.zeros(4), np.zeros((4, 1))), ("(4,)", "(4, 1)")),
              ("z (3,) with y (5,)", (np.zeros(3), np.zeros(5)), ("(3,)", "(5,)")),
              ("a label 1.5, outside [0, 1]", (np.zeros(3), np.array([0.0, 1.5, 1.0])), ("1.5",))]
    return main, edge, errors


def _huber_cases() -> tuple:
    rng = np.random.default_rng(60_604)
    at_delta = np.array([-0.5, 0.5, 0.0, 0.25, -2.0, 3.0])
    main = [("(N,) = (12,), residuals with std 3, delta = 1", (3 * rng.standard_normal(12), np.zeros(12)), {}),
            ("(N, D) = (4, 3), delta = 2", (5 * rng.standard_normal((4, 3)), rng.standard_normal((4, 3))),
             {"delta": 2.0}),
            ("residuals exactly ±delta, 0 and beyond, delta = 0.5", (at_delta + 1.0, np.ones(6)), {"delta": 0.5}),
            ("outliers of ±1e4, delta = 1.5", (np.array([1e4, -1e4, 0.1, 2.0]), np.zeros(4)), {"delta": 1.5})]
    edge = [("N = 1, residual 4", (np.array([4.0]), np.array([0.0])), {}),
            ("all residuals 0", (np.ones((2, 3)), np.ones((2, 3))), {"delta": 3.0}),
            ("residuals exactly ±1 with the default delta", (np.array([1.0, -1.0, 2.0]), np.array([0.0, 0.0, 3.0])), {})]
    errors = [("y_hat (5,) with y (5, 1)", (np.zeros(5), np.zeros((5, 1))), {}, ("(5,)", "(5, 1)")),
              ("y_hat (3,) with y (4,)", (np.zeros(3), np.zeros(4)), {}, ("(3,)", "(4,)"))]
    return main, edge, errors


# ----------------------------------------------------------------------------------------------
# the check


class LossCheck(_Check):
    """A function of NumPy arrays against its torch reference; errors cases must raise ValueError."""

    probe = "nb05.watched"

    def __init__(self, exercise: str, reference: Callable, kind: str, inputs: Callable,
                 mistakes: Callable = lambda *a, **k: []):
        self.exercise, self.reference, self.kind = exercise, reference, kind
        self.inputs, self.mistakes = inputs, mistakes

    def _mentions(self, label: str) -> tuple:
        return {item[0]: item[-1] for item in (self.inputs() + ((),))[2]}.get(label, ())

    def cases(self) -> list[Case]:
        groups = self.inputs()
        make = lambda items, err=False: [  # noqa: E731
            Case(i[0], args=tuple(i[1]), kwargs=dict(i[2]) if len(i) > 2 and type(i[2]) is dict else {})
            for i in items]
        return grouped(main=make(groups[0]), edge=make(groups[1]),
                       errors=make(groups[2]) if len(groups) > 2 else ())

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        if case.group != ERRORS:
            if outcome.kind == "raised" and outcome.error == "ValueError":
                return self.fail(case, f"raised ValueError on valid input: {outcome.message}")
            return super().judge(case, outcome)
        if outcome.kind == "raised" and outcome.error == "NotImplementedError":
            return self.fail(case, "not implemented yet")
        if outcome.kind != "raised":
            return self.fail(case, f"should raise ValueError, but returned a value — likely cause: "
                                   f"{_silent_cause(case.label)}")
        if outcome.error != "ValueError":
            return self.fail(case, f"should raise ValueError, but raised {outcome.error}: {outcome.message} — the "
                                   f"docstring asks for ValueError: check the arguments before computing and raise "
                                   f"ValueError yourself")
        missing = [m for m in self._mentions(case.label) if m not in outcome.message]
        if missing:
            return self.fail(case, f"the ValueError's message should name {' and '.join(missing)}; it was "
                                   f"{outcome.message!r}")
        return Comparison(self.exercise, True, f"✓ {self.name(case)}: ValueError")

    def judge_value(self, case: Case, value: Any) -> Comparison:
        result, caught, changed = _watched(value)
        if changed:
            return self.fail(case, "changed its input in place; compute new arrays and leave the caller's as they were")
        expected = self.reference(*case.args, **case.kwargs)
        if self.kind == "scalar":
            problem, compare_fn, expected = scalar_problem(result), compare_scalar, float(expected)
        else:
            expected = np.asarray(expected, dtype=np.float64)
            problem, compare_fn = array_problem(result, expected.shape), compare
        if problem:
            return self.fail(case, problem)
        name = self.name(case)
        comparison = compare_fn(name, result, expected, rtol=RTOL, atol=ATOL)
        if not comparison.ok:
            hints = [first_match(result, self.mistakes(*case.args, **case.kwargs), expected=expected),
                     warnings_hint(caught, False, self.exercise) if caught else None]
            hints = [h for h in hints if h] or [h for h in [precision_hint(result, expected)] if h]
            return Comparison(name, False, comparison.message + (f" — likely cause: {'; '.join(hints)}" if hints else ""))
        if caught:
            return self.fail(case, f"the values are right, but the call raised {'; '.join(caught)} — likely cause: "
                                   f"{warnings_hint(caught, True, self.exercise)}")
        return comparison


def _silent_cause(label: str) -> str:
    """Why bad input went through without an error, from the case's label."""
    if "-1" in label:
        return ("NumPy reads index -1 as the last class, without an error: check 0 <= targets < C before "
                "indexing")
    if "dtype float" in label:
        return "check that targets hold integers (targets.dtype.kind in 'iu', or np.issubdtype(..., np.integer))"
    if "label" in label:
        return "check that every label lies in [0, 1] before computing"
    if "out of range" in label:
        return "check 0 <= targets < C before indexing"
    return ("NumPy broadcast the two shapes (an (N,) against an (N, 1) becomes (N, N)) or indexed silently: "
            "compare the shapes first and raise ValueError naming both")


def _no_mentions(items):
    return [(label, args, {}, mentions) for label, args, mentions in items]


CHECKS = by_exercise([
    LossCheck("logsumexp", _lse, "array", _softmax_cases, _softmax_mistakes("lse")),
    LossCheck("softmax", _softmax, "array", _softmax_cases, _softmax_mistakes("softmax")),
    LossCheck("log_softmax", _log_softmax, "array", _softmax_cases, _softmax_mistakes("log_softmax")),
    LossCheck("cross_entropy", _ce, "scalar", lambda: (lambda m, e, x: (m, e, _no_mentions(x)))(*_ce_cases()),
              _ce_mistakes(False)),
    LossCheck("cross_entropy_grad", _grad(_ce_t), "array", lambda: _ce_cases()[:2], _ce_mistakes(True)),
    LossCheck("bce_with_logits", lambda z, y: _bce_t(tensor(z), y).item(), "scalar",
              lambda: (lambda m, e, x: (m, e, _no_mentions(x)))(*_bce_cases()), _bce_mistakes()),
    LossCheck("huber", lambda a, y, delta=1.0: _huber_t(tensor(a), y, delta).item(), "scalar", _huber_cases,
              _huber_mistakes(False)),
    LossCheck("huber_grad", _grad(_huber_t), "array", lambda: _huber_cases()[:2], _huber_mistakes(True)),
])
