"""Hidden checks of notebook 01, tensors and shapes. Never shipped to students.

One check per graded exercise, each in the framework's three steps:
``cases()`` builds inputs from fixed seeds, ``call()`` runs the student's
function (the default, except for broadcast_shape, which also forbids NumPy's
and PyTorch's broadcasting helpers), ``judge()`` compares with PyTorch in
float64 and says, in words, what most likely went wrong.

A message starts with the case's label (the situation, e.g. "empty batch
N = 0"), never with the code of the inputs.
"""
from __future__ import annotations

import math
import re
from typing import Any, Optional

import numpy as np

from course.checks import (
    Comparison,
    compare,
    compare_scalar,
    compare_shape_tuple,
    format_shape,
)

from .framework import EDGE, ERRORS, MAIN, Case, HiddenCheck, Outcome, by_exercise, grouped, outcome_failure
from .judging import array_or_none, matches, tensor, torch_module, with_hint

NOTEBOOK = "01_tensors_and_shapes"


# ----------------------------------------------------------------------------------------------
# helpers shared by the checks (judge side: they never run student code)


def _name(check: HiddenCheck, case: Case) -> str:
    return f"{check.exercise} [{case.label}]"


def _fail(name: str, text: str) -> Comparison:
    return Comparison(name, False, f"✗ {name} {text}")


def _describe_value(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"an array of shape {format_shape(v.shape)}"
    if type(v) in (int, float):
        return f"{v:.6g}" if type(v) is float else str(v)
    if type(v) in (tuple, list):
        text = repr(v)
        return text if len(text) <= 60 else text[:57] + "..."
    return type(v).__name__


def _mentions_matmul(outcome: Outcome) -> bool:
    text = outcome.message.lower()
    return outcome.kind == "raised" and any(w in text for w in ("matmul", "aligned", "mismatch in its core", "shapes"))


# ----------------------------------------------------------------------------------------------
# broadcast_shape


def _rule(a: tuple, b: tuple, *, left: bool = False, zero_is_one: bool = False) -> Optional[tuple]:
    """The broadcasting rule (and two classic misreadings of it), for diagnoses only.

    left=True lines the shapes up on the left; zero_is_one=True lets a size 0 stretch
    like a size 1. Returns None where the rule refuses.
    """
    n = max(len(a), len(b))
    pad = lambda s: (tuple(s) + (1,) * (n - len(s))) if left else ((1,) * (n - len(s)) + tuple(s))
    out = []
    for p, q in zip(pad(a), pad(b)):
        stretch_p = p == 1 or (zero_is_one and p == 0)
        stretch_q = q == 1 or (zero_is_one and q == 0)
        if p == q:
            out.append(p)
        elif stretch_p:
            out.append(q)
        elif stretch_q:
            out.append(p)
        else:
            return None
    return tuple(out)


def _clashes(a: tuple, b: tuple) -> list[tuple[int, int]]:
    """The (size of a, size of b) pairs that cannot broadcast, right-aligned."""
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + tuple(a)
    pb = (1,) * (n - len(b)) + tuple(b)
    return [(p, q) for p, q in zip(pa, pb) if p != q and p != 1 and q != 1]


def _names_number(text: str, k: int) -> bool:
    forms = {str(k), f"{k:,}", f"{k:_}"}
    return any(re.search(rf"(?<![0-9.,_]){re.escape(f)}(?![0-9_]|[.,][0-9])", text) for f in forms)


class BroadcastShapeCheck(HiddenCheck):
    exercise = "broadcast_shape"

    def cases(self) -> list[Case]:
        fixed = [
            ("bias add: (32, 128) with (128,)", (32, 128), (128,)),
            ("outer grid: (3, 1) with (1, 3)", (3, 1), (1, 3)),
            ("shorter shape first: (128,) with (32, 128)", (128,), (32, 128)),
            ("ranks 4 and 3: (8, 1, 6, 1) with (7, 1, 5)", (8, 1, 6, 1), (7, 1, 5)),
            ("equal shapes (2, 3)", (2, 3), (2, 3)),
            ("two 0-d shapes", (), ()),
            ("a 0-d shape first, then (2, 3)", (), (2, 3)),
            ("(5, 4), then a 0-d shape", (5, 4), ()),
            ("only ones: (1, 1) with (1,)", (1, 1), (1,)),
            ("size 0 with size 1: (0,) with (1,)", (0,), (1,)),
            ("size 1 with size 0: (1, 3) with (0, 1)", (1, 3), (0, 1)),
            ("size 0 with size 0", (0,), (0,)),
            ("zero-size middle axis: (2, 0, 4) with (1, 4)", (2, 0, 4), (1, 4)),
            ("huge sizes: (2**40, 1) with (1, 2**30)", (2**40, 1), (1, 2**30)),
            ("huge, ranks 3 and 2: (2**31, 1, 7) with (3, 1)", (2**31, 1, 7), (3, 1)),
            ("must fail: (4, 3) with (4,)", (4, 3), (4,)),
            ("must fail in the first axis: (2, 1, 3) with (4, 1, 3)", (2, 1, 3), (4, 1, 3)),
            ("must fail: size 0 against size 3", (0,), (3,)),
            ("must fail: (5, 3, 1) with (0, 1)", (5, 3, 1), (0, 1)),
            ("must fail after a compatible axis: (6, 5) with (7, 1)", (6, 5), (7, 1)),
            ("must fail, huge sizes: (2**40,) with (2**30,)", (2**40,), (2**30,)),
        ]
        main, edge, errors = [], [], []
        for label, a, b in fixed:
            group = errors if label.startswith("must fail") else edge if (
                0 in a + b or len(a) * len(b) == 0 or label.startswith("huge")) else main
            group.append(Case(label, (a, b)))
        rng = np.random.default_rng(20_101)
        sizes = [0, 1, 1, 2, 3, 4, 5, 7]
        for k in range(24):
            clash = k % 3 == 2
            n = int(rng.integers(1 if clash else 0, 6))
            full = [int(rng.choice(sizes)) for _ in range(n)]
            ra, rb = int(rng.integers(0, n + 1)), int(rng.integers(0, n + 1))
            if clash:
                ra = rb = n  # both shapes cover the clashing axis
            a = [s if rng.random() < 0.6 else 1 for s in full[n - ra:]]
            b = [s if rng.random() < 0.6 else 1 for s in full[n - rb:]]
            if clash:
                axis = int(rng.integers(0, n))
                p, q = (int(v) for v in rng.choice([0, 2, 3, 5, 6], size=2, replace=False))
                a[axis], b[axis] = p, q
            kind = "clashing" if clash else "compatible"
            (errors if clash else main).append(
                Case(f"random {kind} shapes #{k} (ranks {len(a)} and {len(b)})", (tuple(a), tuple(b))))
        return grouped(main, edge, errors)

    probe = "nb01.broadcast_shape"

    @staticmethod
    def _reference(a: tuple, b: tuple) -> Optional[tuple]:
        torch = torch_module()
        try:
            return tuple(int(s) for s in torch.broadcast_shapes(a, b))
        except RuntimeError:
            return None

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        name = _name(self, case)
        a, b = case.args
        expected = self._reference(a, b)
        if outcome.kind == "raised" and outcome.error == "NotImplementedError":
            return _fail(name, "not implemented yet")
        if outcome.kind == "raised" and outcome.error == "ForbiddenHelper":
            return _fail(name, outcome.message)
        if outcome.kind == "unsupported":
            return _fail(name, f"{outcome.message}; return a tuple of ints")

        if expected is not None:
            if outcome.kind == "raised":
                text = f"raised {outcome.error}: {outcome.message}; expected the shape {format_shape(expected)}"
                if outcome.error == "MemoryError" or "too big" in outcome.message:
                    text += (" — likely cause: building arrays to read their shape; work on the shape "
                             "tuples only (arrays of these shapes would need hundreds of gigabytes or more)")
                elif any(0 in s for s in (a, b)):
                    text += " — likely cause: a size of 0 is a size like any other: only a size of 1 stretches"
                return _fail(name, text)
            result = compare_shape_tuple(name, outcome.value, expected)
            got = outcome.value
            hint = None
            if not result.ok and type(got) is tuple:
                if got == _rule(a, b, left=True) and got != expected:
                    hint = ("the shapes were lined up on the left; broadcasting lines them up on the right "
                            "and pads the shorter shape with 1s on the left")
                elif (any(0 in s for s in (a, b)) and got == _rule(a, b, zero_is_one=True)
                      and "only 1 stretches" not in result.message):  # compare_shape_tuple may have said it
                    hint = "a size of 0 was treated like a size of 1; only 1 stretches (0 with 1 gives 0)"
                elif len(a) != len(b) and len(got) == min(len(a), len(b)):
                    hint = "the result has as many axes as the longer shape"
            return with_hint(result, hint)

        clashes = _clashes(a, b)
        pairs = " or ".join(f"{p} vs {q}" for p, q in clashes)
        if outcome.kind == "returned":
            text = (f"returned {_describe_value(outcome.value)}, but these shapes do not broadcast "
                    f"({pairs}): raise ValueError")
            if any(0 in pair for pair in clashes):
                text += " — likely cause: a size of 0 was treated like a size of 1; only 1 stretches"
            return _fail(name, text)
        if outcome.error != "ValueError":
            return _fail(name, f"raised {outcome.error}: {outcome.message}; expected a ValueError ({pairs})")
        if not any(_names_number(outcome.message, p) and _names_number(outcome.message, q) for p, q in clashes):
            return _fail(name, f"raised ValueError, but its message does not name the clashing sizes "
                               f"({pairs}): {outcome.message!r}")
        return Comparison(name, True, f"✓ {name} ValueError")


# ----------------------------------------------------------------------------------------------
# add_bias_column


class AddBiasColumnCheck(HiddenCheck):
    exercise = "add_bias_column"

    def cases(self) -> list[Case]:
        from course.data import perceptron_batch

        rng = np.random.default_rng(20_102)
        return grouped(main=[
            Case("the 7-sample perceptron batch", (perceptron_batch().X,)),
            Case("random batch (N, D) = (50, 17)", (rng.standard_normal((50, 17)),)),
            Case("one feature (N, 1)", (rng.standard_normal((9, 1)),)),
        ], edge=[
            Case("batch of one (1, D)", (rng.standard_normal((1, 5)),)),
            Case("empty batch N = 0", (np.zeros((0, 3)),)),
            Case("no features D = 0", (np.zeros((4, 0)),)),
            Case("large values ~1e150", (1e150 * rng.standard_normal((3, 2)),)),
            Case("tiny values ~1e-150", (1e-150 * rng.standard_normal((3, 2)),)),
        ])

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        name = _name(self, case)
        failure = outcome_failure(self.exercise, case, outcome)
        if failure is not None:
            return failure
        torch = torch_module()
        (X,) = case.args
        N, D = X.shape
        expected = torch.cat([torch.ones((N, 1), dtype=torch.float64), tensor(X)], dim=1).numpy()
        result = compare(name, outcome.value, expected, rtol=0.0, atol=0.0)  # a copy: exact
        got = array_or_none(outcome.value)
        hint = None
        if not result.ok and got is not None:
            if got.shape == (N, D + 1) and D > 0 and matches(got, np.hstack([X, np.ones((N, 1))]), rtol=0):
                hint = "the column of ones is last; it must come first (W[0, 0], the bias, multiplies it)"
            elif got.shape == (N, D + 1) and N > 0 and np.all(got[:, 0] == 0):
                hint = "the first column must be ones, not zeros"
            elif got.shape == (N + 1, D):
                hint = "a row was added; add a column (axis=1)"
        return with_hint(result, hint)


# ----------------------------------------------------------------------------------------------
# perceptron_forward


class PerceptronForwardCheck(HiddenCheck):
    exercise = "perceptron_forward"

    def cases(self) -> list[Case]:
        from course.data import perceptron_batch

        rng = np.random.default_rng(20_103)
        batch = perceptron_batch()

        def case(label: str, N: int, D: int, *, scale: float = 1.0, bias: float | None = None) -> Case:
            X = scale * rng.standard_normal((N, D))
            W = rng.standard_normal((1, D + 1))
            if bias is not None:
                W[0, 0] = bias
            return Case(label, (X, W))

        return grouped(main=[
            Case("the 7-sample perceptron batch", (batch.X, batch.W)),
            case("random batch (N, D) = (40, 8)", 40, 8, bias=0.5),
            case("many negative pre-activations (bias -1)", 25, 5, bias=-1.0),
            case("one feature D = 1", 12, 1, bias=0.3),
        ], edge=[
            case("batch of one (1, D)", 1, 4, bias=0.75),
            case("no features D = 0 (bias only)", 6, 0, bias=0.8),
            case("empty batch N = 0", 0, 3),
            case("large values ~1e150", 5, 3, scale=1e150, bias=0.0),
            case("tiny values ~1e-150", 5, 3, scale=1e-150, bias=0.0),
        ])

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        name = _name(self, case)
        X, W = case.args
        failure = outcome_failure(self.exercise, case, outcome)
        if failure is not None:
            if _mentions_matmul(outcome):
                return with_hint(failure, "multiply by W transposed: (N, D + 1) @ (D + 1, 1); W itself is (1, D + 1)")
            return failure
        torch = torch_module()
        Xt, Wt = tensor(X), tensor(W)
        expected = torch.relu(torch.nn.functional.linear(Xt, Wt[:, 1:], Wt[:, 0])).numpy()
        # rounding error of a dot product is below D * eps * sum |x_i w_i|
        X_aug = np.hstack([np.ones((X.shape[0], 1)), X])
        scale = float((np.abs(X_aug) @ np.abs(W).T).max()) if X.shape[0] else 0.0
        result = compare(name, outcome.value, expected, rtol=1e-10, atol=1e-12 * scale)
        got = array_or_none(outcome.value)
        hint = None
        if not result.ok and got is not None:
            z = X_aug @ W.T
            if matches(got, z) and np.any(z < 0):
                hint = "negative outputs where ReLU gives 0: the ReLU is missing (np.maximum(z, 0))"
            elif matches(got, np.maximum(X @ W[:, 1:].T, 0.0)):
                hint = "the bias W[0, 0] is missing: multiply the bias-augmented X (ones column first)"
            elif X.shape[1] > 0 and matches(got, np.maximum(X @ W[:, :-1].T + W[0, -1], 0.0)):
                hint = "the bias was taken from the last entry of W; W[0, 0] is the bias (ones column first)"
            elif X.shape[1] > 0 and matches(got, np.maximum(np.hstack([X, np.ones((X.shape[0], 1))]) @ W.T, 0.0)):
                hint = "the column of ones is last; it must come first, to meet W[0, 0]"
        return with_hint(result, hint)


# ----------------------------------------------------------------------------------------------
# sse and mse


class _SquaredErrorCheck(HiddenCheck):
    """Shared cases and judging of sse (reduction "sum") and mse (reduction "mean")."""

    reduction = "sum"
    seed = 0
    weights = {MAIN: 0.6, EDGE: 0.1, ERRORS: 0.3}

    def cases(self) -> list[Case]:
        from course.data import perceptron_batch

        rng = np.random.default_rng(self.seed)
        batch = perceptron_batch()
        X_aug = np.hstack([np.ones((7, 1)), batch.X])
        y_hat = np.maximum(X_aug @ batch.W.T, 0.0)
        r = rng.standard_normal
        main = [
            Case("the 7-sample perceptron batch (N, 1)", (batch.y_true, y_hat)),
            Case("column vectors (N, 1), N = 50", (r((50, 1)), r((50, 1)))),
            Case("flat vectors (N,), N = 33", (r(33), r(33))),
            Case("several outputs (N, C) = (20, 4)", (r((20, 4)), r((20, 4)))),
            Case("identical arrays (loss 0)", (lambda a: (a, a.copy()))(r((6, 2)))),
        ]
        edge = [
            Case("batch of one (1, 1)", (r((1, 1)), r((1, 1)))),
            Case("large values ~1e150", (1e150 * r((6, 1)), 1e150 * r((6, 1)))),
            Case("tiny values ~1e-150", (1e-150 * r((8, 1)), 1e-150 * r((8, 1)))),
        ]
        # the (N,) vs (N, 1) trap is half the lesson: its errors weigh more than usual
        errors = [
            Case("must raise: (N,) against (N, 1), N = 5", (r(5), r((5, 1)))),
            Case("must raise: (N, 1) against (N,), N = 5", (r((5, 1)), r(5))),
            Case("must raise: (N, 1) against (1, N), N = 4", (r((4, 1)), r((1, 4)))),
            Case("must raise: (N, 2) against (N, 1), N = 3", (r((3, 2)), r((3, 1)))),
            Case("must raise: (3,) against (4,)", (r(3), r(4))),
        ]
        if self.reduction == "sum":  # the mean of no numbers is undefined
            edge.append(Case("empty batch N = 0", (np.zeros((0, 1)), np.zeros((0, 1)))))
        return grouped(main, edge, errors)

    def _reference(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        torch = torch_module()
        a, b = tensor(y_true), tensor(y_pred)
        if self.reduction == "sum":
            return float(((a - b) ** 2).sum())
        return float(torch.nn.functional.mse_loss(b, a, reduction="mean"))

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        name = _name(self, case)
        y_true, y_pred = case.args
        if y_true.shape != y_pred.shape:
            sa, sb = format_shape(y_true.shape), format_shape(y_pred.shape)
            if outcome.kind == "raised" and outcome.error == "ValueError":
                return Comparison(name, True, f"✓ {name} ValueError")
            if outcome.kind == "raised" and outcome.error == "NotImplementedError":
                return _fail(name, "not implemented yet")
            if outcome.kind == "raised":
                return _fail(name, f"raised {outcome.error}: {outcome.message}; expected a ValueError "
                                   f"because the shapes {sa} and {sb} differ")
            return _fail(name, f"returned {_describe_value(outcome.value)} instead of raising ValueError: the shapes "
                               f"{sa} and {sb} differ, and subtracting them broadcasts silently — compare the "
                               f"shapes first")
        failure = outcome_failure(self.exercise, case, outcome)
        if failure is not None:
            return failure
        expected = self._reference(y_true, y_pred)
        # a sum of non-negative terms is well conditioned: only the summation order differs
        result = compare_scalar(name, outcome.value, expected, rtol=1e-10, atol=0.0)
        got = outcome.value
        hint = None
        if not result.ok and type(got) is float and expected > 0:
            n = y_true.size
            rows = y_true.shape[0] if y_true.ndim else 1
            close = lambda v: math.isclose(got, v, rel_tol=1e-8)
            total = expected * n if self.reduction == "mean" else expected
            if self.reduction == "sum" and n > 1 and close(expected / n):
                hint = "this is the mean; sse is the sum (no division)"
            elif self.reduction == "mean" and n > 1 and close(total):
                hint = "this is the sum; mse divides it by the number of entries"
            elif self.reduction == "mean" and rows != n and close(total / rows):
                hint = f"divided by the number of rows N = {rows}; the mean is over all {n} entries"
            elif close(math.sqrt(expected)):
                hint = "a square root was taken (that is the RMSE)"
            elif close(expected / 2) or close(expected * 2):
                hint = "a factor of 2: no 1/2 in front here"
        return with_hint(result, hint)


class SSECheck(_SquaredErrorCheck):
    exercise = "sse"
    reduction = "sum"
    seed = 20_104


class MSECheck(_SquaredErrorCheck):
    exercise = "mse"
    reduction = "mean"
    seed = 20_105


# ----------------------------------------------------------------------------------------------
# linear_forward


class LinearForwardCheck(HiddenCheck):
    exercise = "linear_forward"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(20_106)
        r = rng.standard_normal

        def case(label: str, lead: tuple, D: int, H: int, *, scale: float = 1.0) -> Case:
            return Case(label, (scale * r((*lead, D)), r((H, D)), scale * r(H)))

        return grouped(main=[
            case("one sample, no batch axis: x (D,)", (), 5, 3),
            case("a batch (N, D) = (8, 6), H = 4", (8,), 6, 4),
            case("sequences (N, T, D) = (4, 7, 5), H = 3", (4, 7), 5, 3),
            case("three leading axes (2, 3, 4, D)", (2, 3, 4), 6, 5),
            case("square weights H = D = 4", (6,), 4, 4),
            case("one output H = 1", (10,), 3, 1),
            case("wide layer (N, D) = (64, 256), H = 128", (64,), 256, 128),
        ], edge=[
            case("batch of one (1, D)", (1,), 7, 2),
            case("empty batch N = 0", (0,), 5, 3),
            case("no input features D = 0 (output is b)", (4,), 0, 3),
            case("large values ~1e150", (5,), 4, 3, scale=1e150),
            case("tiny values ~1e-150", (5,), 4, 3, scale=1e-150),
        ])

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        name = _name(self, case)
        x, W, b = case.args
        leading = x.ndim != 2
        keep_axes = "keep every leading axis of x: (..., D) -> (..., H)"
        failure = outcome_failure(self.exercise, case, outcome)
        if failure is not None:
            if _mentions_matmul(outcome):
                return with_hint(failure, "x (..., D) must meet W.T (D, H): W is stored (out, in) = (H, D)")
            if outcome.kind == "raised" and leading:
                return with_hint(failure, keep_axes)
            return failure
        torch = torch_module()
        expected = torch.nn.functional.linear(tensor(x), tensor(W), tensor(b)).numpy()
        # rounding error of each output is below D * eps * (sum_d |x_d W_hd| + |b_h|)
        scale = float((np.abs(x) @ np.abs(W).T + np.abs(b)).max()) if expected.size else 0.0
        result = compare(name, outcome.value, expected, rtol=1e-10, atol=1e-12 * scale)
        got = array_or_none(outcome.value)
        hint = None
        if not result.ok and got is not None:
            if W.shape[0] == W.shape[1] and matches(got, x @ W + b):
                hint = "this is x @ W + b; W is stored (out, in) = (H, D), so use its transpose"
            elif matches(got, x @ W.T) and np.any(b != 0):
                hint = "the bias b is missing"
            elif leading and got.shape != expected.shape:
                hint = keep_axes
        return with_hint(result, hint)


# ----------------------------------------------------------------------------------------------
# pairwise_sq_distances


class PairwiseSqDistancesCheck(HiddenCheck):
    exercise = "pairwise_sq_distances"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(20_107)
        r = rng.standard_normal
        A_dup = r((6, 3))
        B_dup = np.vstack([r((2, 3)), A_dup[[4, 1]], r((3, 3))])
        return grouped(main=[
            Case("small sets (M, D) = (3, 2), (N, D) = (4, 2)", (r((3, 2)), r((4, 2)))),
            Case("equal set sizes M = N = 5", (r((5, 3)), r((5, 3)))),
            Case("one query against many (1, D), (20, D)", (r((1, 3)), r((20, 3)))),
            Case("one feature D = 1", (r((7, 1)), r((4, 1)))),
            Case("many features D = 64", (r((10, 64)), r((12, 64)))),
            Case("points that appear in both sets (distance 0)", (A_dup, B_dup)),
            Case("far from the origin (offset 1e4)", (1e4 + r((8, 3)), 1e4 + r((9, 3)))),
        ], edge=[
            Case("one point each (1, D)", (r((1, 4)), r((1, 4)))),
            Case("no features D = 0", (np.zeros((3, 0)), np.zeros((4, 0)))),
            Case("first set empty M = 0", (np.zeros((0, 3)), r((4, 3)))),
            Case("second set empty N = 0", (r((4, 3)), np.zeros((0, 3)))),
            Case("large values ~1e150", (1e150 * r((4, 3)), 1e150 * r((5, 3)))),
            Case("tiny values ~1e-150", (1e-150 * r((4, 3)), 1e-150 * r((5, 3)))),
        ])

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        name = _name(self, case)
        failure = outcome_failure(self.exercise, case, outcome)
        if failure is not None:
            return failure
        A, B = case.args
        At, Bt = tensor(A), tensor(B)
        # reference without cancellation: the (M, N, D) differences, squared and summed
        expected = ((At[:, None, :] - Bt[None, :, :]) ** 2).sum(dim=-1).numpy()
        # The expansion |a|^2 - 2 a.b + |b|^2 is the usual vectorized solution. It cancels
        # when a and b are close or far from the origin, leaving an absolute error of a few
        # D * eps * (|a|^2 + |b|^2) (eps = 2.2e-16; D <= 64 here, so about 1.5e-14 of that
        # scale). atol = 1e-12 of the scale leaves a margin of ~60 and still catches a missing
        # factor 2 in the cross term (an error of |a.b|, many orders of magnitude larger).
        sq_a = (A * A).sum(axis=1)
        sq_b = (B * B).sum(axis=1)
        norm_scale = (float(sq_a.max()) if sq_a.size else 0.0) + (float(sq_b.max()) if sq_b.size else 0.0)
        result = compare(name, outcome.value, expected, rtol=1e-9, atol=1e-12 * norm_scale)
        got = array_or_none(outcome.value)
        hint = None
        if not result.ok and got is not None and expected.size:
            if matches(got, sq_a[:, None] - A @ B.T + sq_b[None, :], rtol=1e-6, atol=1e-10 * norm_scale):
                hint = "the cross term needs a factor 2: |a|^2 - 2 a.b + |b|^2"
            elif matches(got, np.sqrt(expected), rtol=1e-6, atol=1e-6 * math.sqrt(norm_scale)):
                hint = "these are distances; return the squared distances (no square root)"
            elif matches(got, sq_a[:, None] + 2 * A @ B.T + sq_b[None, :], rtol=1e-6, atol=1e-10 * norm_scale):
                hint = "the sign of the cross term: |a - b|^2 = |a|^2 - 2 a.b + |b|^2"
        return with_hint(result, hint)


# ----------------------------------------------------------------------------------------------
# standardize


def _safe(std: np.ndarray) -> np.ndarray:
    """The documented rule for a constant column: divide by 1 where the std is 0."""
    return np.where(std > 0, std, 1.0)


class StandardizeCheck(HiddenCheck):
    exercise = "standardize"

    def cases(self) -> list[Case]:
        from course.data import perceptron_batch

        rng = np.random.default_rng(20_108)
        r = rng.standard_normal

        def features(N: int, D: int, *, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
            """(N, D) with a different mean and spread in every column."""
            means = offset + scale * rng.uniform(-5.0, 5.0, size=D)
            spreads = scale * rng.uniform(0.5, 3.0, size=D)
            return means + spreads * r((N, D))

        with_constant = features(6, 4)
        with_constant[:, 2] = 7.5  # an exactly representable constant: its mean is exact, so its std is 0
        wide_scales = r((12, 3)) * np.array([1e-3, 1.0, 1e3])  # no offsets: cancellation is the edge case below
        return grouped(main=[
            Case("a batch (N, D) = (8, 5)", (features(8, 5),)),
            Case("more features than samples (N, D) = (3, 7)", (features(3, 7),)),
            Case("a square batch N = D = 4", (features(4, 4),)),
            Case("the 7-sample perceptron batch X (7, 3)", (perceptron_batch().X,)),
            Case("one feature (N, 1)", (features(9, 1),)),
            Case("features on scales 1e-3, 1 and 1e3", (wide_scales,)),
            Case("many samples (N, D) = (200, 3)", (features(200, 3),)),
        ], edge=[
            Case("batch of one N = 1 (every column is constant)", (features(1, 4),)),
            Case("a constant column (column 2 is all 7.5)", (with_constant,)),
            Case("no features D = 0", (np.zeros((4, 0)),)),
            # the squared deviations, ~1e300, still fit in float64 (up to 1.8e308); at ~1e155 they
            # would overflow, in the reference too
            Case("large values ~1e150", (features(5, 3, scale=1e150),)),
            # the squared deviations, ~1e-300, are still normal floats (down to 2.2e-308)
            Case("tiny values ~1e-150", (features(5, 3, scale=1e-150),)),
            Case("far from the origin (offset 1e6, spread ~1)", (features(10, 3, offset=1e6),)),
        ])

    @staticmethod
    def _reference(X: np.ndarray) -> np.ndarray:
        if X.size == 0:  # D = 0: nothing to standardize (torch would warn about 0 degrees of freedom)
            return np.zeros(X.shape)
        torch = torch_module()
        Xt = tensor(X)
        std = Xt.std(0, unbiased=False, keepdim=True)
        return ((Xt - Xt.mean(0, keepdim=True)) / torch.where(std > 0, std, torch.ones_like(std))).numpy()

    @staticmethod
    def _mistakes(X: np.ndarray) -> list[tuple[np.ndarray, str, bool]]:
        """What the typical mistakes return for X: (result, diagnosis, match it exactly?).

        An eps added to the std or the variance changes the result only a little where the std
        is ~1, so it is recognised only by an exact match (judge side only)."""
        N, D = X.shape
        out = []
        with np.errstate(all="ignore"):
            mean, std = X.mean(axis=0, keepdims=True), X.std(axis=0, keepdims=True)
            centred = X - mean
            row_mean, row_std = X.mean(axis=1, keepdims=True), X.std(axis=1, keepdims=True)
            out.append(((X - row_mean) / _safe(row_std),
                        "each row (sample) was standardized: axis=1; a feature is a column, so its mean "
                        "and std run over the samples, axis=0", False))
            if N == D:
                out.append(((X - row_mean[:, 0]) / _safe(row_std[:, 0]),
                            "statistics over axis=1 without keepdims: the (N,) result lined up with the "
                            "features axis (N = D here, so nothing raised); use axis=0, keepdims=True", False))
                out.append((centred / _safe(std).reshape(-1, 1),
                            "the std (one per feature) was made a column (D, 1), which lines up with the "
                            "samples axis (N = D here, so nothing raised); keep it a row: keepdims=True "
                            "gives (1, D)", False))
            if X.size:
                out.append(((X - X.mean()) / _safe(X.std()),
                            "the mean and std of the whole array; standardize each feature: axis=0", False))
            if N > 1:
                out.append((centred / _safe(X.std(axis=0, ddof=1, keepdims=True)),
                            "the sample std (ddof=1, torch.std's default); use the population std, "
                            "ddof=0 (np.std's default, torch.std(unbiased=False))", False))
            out.append((X / _safe(std), "the mean was not subtracted (no centring)", False))
            out.append((centred, "not divided by the std", False))
            out.append((centred / _safe(std ** 2), "divided by the variance; divide by its square root, the std",
                        False))
            one_pass = np.sqrt(np.maximum((X * X).mean(axis=0, keepdims=True) - mean ** 2, 0.0))
            out.append((centred / _safe(one_pass),
                        "the variance as mean(X²) − mean(X)² loses its digits far from the origin; take "
                        "the std of the centred values, X − mean (np.std does)", False))
            for eps in (1e-5, 1e-6, 1e-7, 1e-8, 1e-10, 1e-12):
                rule = "the rule here is exact: divide by the std wherever it is > 0, by 1 where it is 0"
                out.append((centred / (std + eps), f"an eps ({eps:g}) was added to the std; {rule}", True))
                out.append((centred / np.sqrt(std ** 2 + eps), f"an eps ({eps:g}) was added to the variance; {rule}",
                            True))
        return out

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        name = _name(self, case)
        (X,) = case.args
        N, D = X.shape
        failure = outcome_failure(self.exercise, case, outcome)
        if failure is not None:
            message = outcome.message.replace(" ", "")
            if outcome.kind == "raised" and f"({N},)" in message:
                return with_hint(failure, "statistics over axis=1 (one per sample, shape (N,)) do not "
                                          "broadcast against (N, D); a feature's mean and std run over the "
                                          "samples: axis=0, keepdims=True gives (1, D)")
            if outcome.kind == "raised" and f"({D},1)" in message:
                return with_hint(failure, "the statistics (one per feature) were made a column (D, 1), which "
                                          "lines up with the samples axis; keep them a row: keepdims=True "
                                          "gives (1, D)")
            if outcome.kind == "raised" and "broadcast" in outcome.message:
                return with_hint(failure, "check the shapes of the mean and the std: with axis=0 and "
                                          "keepdims=True both are (1, D)")
            return failure
        expected = self._reference(X)
        # Rounding: X - mean loses about log10(max |X| / std) digits in each column, so the
        # absolute error of a standardized value grows like N * eps * max |X| / std (measured:
        # 1e-10 in the offset-1e6 case). A tolerance of 1e-14 N max |X| / std (8e-8 there) leaves
        # a wide margin and still catches the one-pass variance (an error near 1e-4).
        with np.errstate(all="ignore"):
            std = X.std(axis=0)
            spread = np.abs(X).max(axis=0) / np.where(std > 0, std, np.inf) if X.size else np.zeros(0)
        cond = float(spread.max()) if spread.size else 0.0
        result = compare(name, outcome.value, expected, rtol=1e-9, atol=1e-10 + 1e-14 * N * cond)
        got = array_or_none(outcome.value)
        hint = None
        if not result.ok and got is not None and got.shape == expected.shape and expected.size:
            tol = dict(rtol=1e-6, atol=1e-9)
            tiny = float(np.abs(X).max()) < 1e-100
            if tiny and float(np.nanmax(np.abs(got), initial=0.0)) < 1e-3 * float(np.abs(expected).max()):
                hint = ("the values came out far too small, or 0: an eps added to the std, or a threshold "
                        "such as std > 1e-8, treats a tiny but real spread (std ~1e-150) as constant; "
                        "divide by the std wherever it is > 0")
            for candidate, text, exact in [] if hint else self._mistakes(X):
                if (matches(got, candidate, rtol=1e-12, atol=1e-15) if exact
                        else matches(got, candidate, **tol) and not matches(expected, candidate, **tol)):
                    hint = text
                    break
            if hint is None:
                with np.errstate(all="ignore"):
                    bad = ~np.isfinite(got) & np.isfinite(expected)
                    constant = np.broadcast_to(std == 0, X.shape)
                    if bad.any() and (bad & constant).any():
                        hint = ("NaN or inf in a constant column: its std is 0 (with N = 1 every column is "
                                "constant); the rule returns 0 there: divide by np.where(std > 0, std, 1)")
                    elif bad.any():
                        hint = "NaN or inf where the std is > 0: look for an overflow or a division by 0"
        elif not result.ok and got is not None and got.shape == (N, N) and N != D:
            hint = "statistics over axis=1 broadcast to (N, N); a feature's mean and std run over axis=0"
        return with_hint(result, hint)


CHECKS = by_exercise(
    [
        BroadcastShapeCheck(),
        AddBiasColumnCheck(),
        PerceptronForwardCheck(),
        SSECheck(),
        MSECheck(),
        LinearForwardCheck(),
        PairwiseSqDistancesCheck(),
        StandardizeCheck(),
    ]
)
