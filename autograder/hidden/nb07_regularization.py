"""Hidden checks of notebook 07, regularization. Never shipped to students.

``dropout`` is judged by statistics (``course.regularization.dropout_problem``, the contract the
visible cell uses too): over 120 000 entries, the mask holds only 0 and 1/(1 - p), out is x * mask,
and the share kept and the mean of out lie within Hoeffding bounds that a correct implementation
exceeds with probability below 1e-9; the same seed must give the same mask and another seed another
one. p = 0, p = 1 and evaluation mode are judged exactly; p outside [0, 1] must raise ValueError.
The probe (``autograder.probe.nb07.dropout``) builds each generator from a seed sent as data.

The other five are compared with PyTorch in float64 on fresh inputs (cases as data, one generic
judge): ``dropout_backward`` with autograd through x * mask, ``l2_penalty`` with (λ/2) Σ ‖W‖²,
``sgd_step_weight_decay`` with one step of ``torch.optim.SGD(weight_decay=...)``, ``l1_subgradient``
with autograd of λ‖W‖₁, ``best_epoch`` with ``torch.argmin`` after NaN is made +inf (an empty or all-NaN list must raise ValueError). Each lists
its typical mistakes as (value, hint). ``judge`` never runs student code and never raises.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from course.checks import Comparison, compare, compare_scalar
from course.elementwise import first_match, form_problem
from course.regularization import dropout_form_problem, dropout_problem, index_problem

from .framework import Case, Outcome, by_exercise, grouped
from .judging import tensor, torch_module
from .nb03_manual_backprop import Malformed, _Check, _field, _record_problem
from .nb05_activations import _watched

NOTEBOOK = "07_regularization"
N_STAT = (300, 400)  # x for the statistics: 120 000 entries


# ----------------------------------------------------------------------------------------------
# dropout


def _dropout_case(label: str, x: np.ndarray, p: float, training: bool, seeds: tuple, aspect: str) -> Case:
    return Case(label, kwargs={"x": x, "p": p, "training": training, "seeds": list(seeds), "aspect": aspect})


class DropoutCheck(_Check):
    exercise = "dropout"
    probe = "nb07.dropout"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(70_101)
        big = 1.0 + rng.standard_normal(N_STAT)
        small = rng.standard_normal((4, 6))
        main = [_dropout_case(f"training, p = {p}, x (300, 400), seed {seed} twice and seed {seed + 1}", big, p, True,
                              (seed, seed, seed + 1), "statistics")
                for p, seed in ((0.5, 7), (0.2, 11), (0.75, 13))]
        main.append(_dropout_case("evaluation mode (training False), p = 0.5, x (300, 400)", big, 0.5, False, (3,), "eval"))
        edge = [_dropout_case("p = 0 in training: nothing dropped, out is x", small, 0.0, True, (5,), "p=0"),
                _dropout_case("p = 1 in training: everything dropped, no NaN or inf", small, 1.0, True, (5,), "p=1"),
                _dropout_case("x of shape (N, C, H) = (2, 3, 4), evaluation mode, p = 0.9", rng.standard_normal((2, 3, 4)),
                              0.9, False, (6,), "eval"),
                _dropout_case("an empty x (0, 5), training, p = 0.5", np.zeros((0, 5)), 0.5, True, (8,), "empty")]
        errors = [_dropout_case(f"p = {p} (training {t}) must raise ValueError", small, p, t, (9,), "error")
                  for p, t in ((-0.1, True), (1.5, True), (2.0, False))]
        return grouped(main=main, edge=edge, errors=errors)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        calls, changed = _field(value, "calls"), _field(value, "changed")
        if type(calls) is not list or len(calls) != len(kw["seeds"]) or type(changed) is not bool:
            raise Malformed("expected one record per call")
        x, p = kw["x"], kw["p"]
        if kw["aspect"] == "error":
            record = calls[0]
            _record_problem("dropout", record)  # malformed records raise
            if record["kind"] == "raised" and record["error"] == "ValueError":
                return Comparison(self.exercise, True, f"✓ {self.name(case)}: ValueError")
            got = (f"raised {record['error']}" if record["kind"] == "raised" else "returned without an error")
            return self.fail(case, f"{got}; a p outside [0, 1] is not a probability: raise ValueError, whatever "
                                   f"training is")
        results = []
        for record in calls:
            problem = _record_problem("dropout", record)
            if problem:
                return self.fail(case, problem)
            result = record["value"]
            problem = dropout_form_problem(result, x.shape)
            if problem:
                return self.fail(case, problem)
            results.append(result)
        if changed:
            return self.fail(case, "changed x in place; x holds the layer's activations: build out as a new array")
        out, mask = results[0]
        if kw["aspect"] in ("eval", "p=0", "empty"):
            ones = np.ones_like(x)
            if not (np.array_equal(out, x) and np.array_equal(mask, ones)):
                hint = ""
                if kw["aspect"] == "eval":
                    hint = (" — likely cause: dropout is applied in evaluation mode too; with training False, "
                            "out is x and the mask all ones" if not np.array_equal(out, x) else
                            " — likely cause: in evaluation mode the mask is all ones")
                return self.fail(case, f"out must equal x exactly and the mask be all ones{hint}")
            return Comparison(self.exercise, True, f"✓ {self.name(case)}")
        if kw["aspect"] == "p=1":
            if not (np.all(np.isfinite(out)) and np.all(np.isfinite(mask))):
                return self.fail(case, "out or mask holds NaN or inf — likely cause: 1/(1 - p) divides by zero at "
                                       "p = 1; every entry is dropped, so return zeros without dividing")
            if np.any(out != 0) or np.any(mask != 0):
                return self.fail(case, "with p = 1 every entry is dropped: out and mask must be all zeros")
            return Comparison(self.exercise, True, f"✓ {self.name(case)}")
        problem = dropout_problem(x, p, out, mask)
        if problem:
            return self.fail(case, problem)
        if not (np.array_equal(results[1][1], mask) and np.array_equal(results[1][0], out)):
            return self.fail(case, "two calls with generators built from the same seed gave different masks — likely "
                                   "cause: the mask does not come from rng alone (np.random.rand, np.random.seed or a "
                                   "generator of your own); draw it with the rng passed in")
        if np.array_equal(results[2][1], mask):
            return self.fail(case, "generators with different seeds gave the same mask — likely cause: the mask does "
                                   "not come from the rng passed in")
        return Comparison(self.exercise, True, f"✓ {self.name(case)}: kept {np.mean(mask != 0):.4f}, "
                                               f"expected {1 - p:.4f}")


# ----------------------------------------------------------------------------------------------
# the exercises compared with torch: one generic judge, cases and references as data


class TorchCheck(_Check):
    """An exercise compared with a torch reference. ``reference(*args) -> (expected, mistakes)``;
    ``kind`` is "array" (a new float64 array of the first argument's shape), "number" or "index"."""

    probe = "nb05.watched"

    def __init__(self, exercise: str, make_cases: Callable, reference: Callable, kind: str = "array"):
        self.exercise, self.make_cases, self.reference, self.kind = exercise, make_cases, reference, kind

    def cases(self) -> list[Case]:
        return self.make_cases()

    def judge_value(self, case: Case, value: Any) -> Comparison:
        result, _, changed = _watched(value)
        if case.group == "errors on bad input":
            return self.fail(case, f"returned {result!r:.60}; expected a ValueError")
        if changed:
            return self.fail(case, "changed its input in place — likely cause: an in-place update such as W -= ... "
                                   "or W *= ...; leave the arguments as they are and return a new array")
        expected, mistakes = self.reference(*case.args)
        name = self.name(case)
        if self.kind == "index":
            problem = index_problem(result, len(case.args[0]))
            if problem:
                return self.fail(case, problem)
            got = int(result)
            if got == expected:
                return Comparison(name, True, f"✓ {name}: {got}")
            hint = next((h for candidate, h in mistakes if candidate == got), None)
            return self.fail(case, f"got {got}, expected {expected}" + (f" — likely cause: {hint}" if hint else ""))
        if self.kind == "number":
            comparison = compare_scalar(name, result, expected, rtol=1e-10, atol=1e-12)
        else:
            problem = form_problem(result, np.shape(case.args[0]))
            if problem:
                return self.fail(case, problem)
            comparison = compare(name, result, expected, rtol=1e-10, atol=1e-12)
        if comparison.ok:
            return comparison
        hint = first_match(result, mistakes, rtol=1e-9, atol=1e-12)
        return Comparison(name, False, comparison.message + (f" — likely cause: {hint}" if hint else ""))

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        if case.group == "errors on bad input":
            if outcome.kind == "raised" and outcome.error == "ValueError":
                return Comparison(self.exercise, True, f"✓ {self.name(case)}: ValueError")
            if outcome.kind == "raised" and outcome.error != "NotImplementedError":
                return self.fail(case, f"raised {outcome.error}: {outcome.message}; expected a ValueError")
        return super().judge(case, outcome)


def _rng(seed: int):
    return np.random.default_rng(seed)


# dropout_backward(dout, mask)

def _backward_cases() -> list[Case]:
    rng = _rng(70_201)

    def case(label: str, shape: tuple, p: float) -> Case:
        mask = np.where(rng.random(shape) >= p, 1.0 / (1.0 - p), 0.0) if p < 1 else np.zeros(shape)
        return Case(label, args=(rng.standard_normal(shape), mask))

    return grouped(main=[case("(N, H) = (8, 5), p = 0.5", (8, 5), 0.5), case("(N, H) = (16, 3), p = 0.2", (16, 3), 0.2),
                         case("(N, C, H) = (2, 3, 4), p = 0.6", (2, 3, 4), 0.6)],
                   edge=[case("an empty batch (0, 5)", (0, 5), 0.5), case("p = 0: the mask is all ones", (3, 4), 0.0),
                         case("p = 1: the mask is all zeros", (3, 4), 1.0)])


def _backward_reference(dout, mask):
    x = tensor(np.zeros_like(dout), requires_grad=True)
    (x * tensor(mask)).backward(tensor(dout))
    return x.grad.numpy(), [(dout, "the mask is missing: a dropped unit passes no gradient back, dx = dout * mask"),
                            (dout * (mask != 0), "the mask's scale 1/(1 - p) is missing: out = x * mask, so "
                                                 "dx = dout * mask, kept entries scaled too"),
                            (np.where(mask != 0, dout / np.where(mask == 0, 1, mask), 0.0),
                             "dout is divided by the mask; the forward pass multiplied by it, so the backward does too")]


# l2_penalty(weights, lam)

def _l2_cases() -> list[Case]:
    rng = _rng(70_301)
    return grouped(main=[Case("[W (5, 4), W (3, 5)], lam = 0.1", args=([rng.standard_normal((5, 4)),
                                                                        rng.standard_normal((3, 5))], 0.1)),
                         Case("[W (6, 6)], lam = 0.01, weights of scale 10", args=([10 * rng.standard_normal((6, 6))], 0.01)),
                         Case("three arrays (4, 3), (4,), (2, 4), lam = 0.5",
                              args=([rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((2, 4))], 0.5))],
                   edge=[Case("an empty list, lam = 0.1", args=([], 0.1)),
                         Case("lam = 0", args=([rng.standard_normal((3, 3))], 0.0)),
                         Case("a list holding an empty array (0, 4) and a (2, 2)",
                              args=([np.zeros((0, 4)), rng.standard_normal((2, 2))], 0.3))])


def _l2_reference(weights, lam):
    sq = [float(tensor(w).pow(2).sum()) for w in weights]
    total = sum(sq)
    return lam / 2 * total, [(lam * total, "the 1/2 is missing: the penalty is (λ/2)‖W‖², whose gradient is λW"),
                             (lam / 2 * sum(np.sqrt(s) for s in sq), "the norms are not squared: ‖W‖² = Σ w², "
                                                                     "no square root"),
                             (lam / 2 * (sq[0] if sq else 0.0), "only the first array counts; sum over every array "
                                                                "in the list"),
                             (lam / 2 * sum(s / max(np.size(w), 1) for s, w in zip(sq, weights)),
                              "a mean of the squares; the penalty sums them")]


# sgd_step_weight_decay(W, grad, lr, weight_decay)

def _sgd_cases() -> list[Case]:
    rng = _rng(70_401)
    r = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    return grouped(main=[Case("W (4, 3), lr = 0.1, weight_decay = 0.01", args=(r(4, 3), r(4, 3), 0.1, 0.01)),
                         Case("W (5, 5), lr = 0.5, weight_decay = 0.2", args=(r(5, 5), r(5, 5), 0.5, 0.2)),
                         Case("b (6,), lr = 0.05, weight_decay = 1.0", args=(r(6), r(6), 0.05, 1.0))],
                   edge=[Case("weight_decay = 0: plain SGD", args=(r(3, 2), r(3, 2), 0.1, 0.0)),
                         Case("lr = 0: nothing moves", args=(r(3, 2), r(3, 2), 0.0, 0.1)),
                         Case("an empty W (0, 3)", args=(np.zeros((0, 3)), np.zeros((0, 3)), 0.1, 0.1))])


def _sgd_reference(W, grad, lr, weight_decay):
    torch = torch_module()
    w = tensor(W, requires_grad=True)
    w.grad = tensor(grad)
    torch.optim.SGD([w], lr=lr, weight_decay=weight_decay).step()
    return w.detach().numpy(), [
        (W - lr * (grad - weight_decay * W), "the decay has the wrong sign: it pulls W towards 0, "
                                             "W ← W − lr (grad + λ W)"),
        (W - lr * grad, "the weight decay is missing: W ← W − lr (grad + λ W)"),
        (W * (1 - weight_decay) - lr * grad, "the decay is not multiplied by lr: W ← (1 − lr λ) W − lr grad"),
        (W - lr * (grad + 2 * weight_decay * W), "2λW is the gradient of λ‖W‖²; torch's weight_decay adds λW, "
                                                 "the gradient of (λ/2)‖W‖²"),
        (W + lr * (grad + weight_decay * W), "the step goes up the gradient: subtract lr (grad + λ W)"),
    ]


# l1_subgradient(W, lam)

def _l1_cases() -> list[Case]:
    rng = _rng(70_501)
    W = rng.standard_normal((5, 4))
    W[1, 2] = W[3, 0] = 0.0
    return grouped(main=[Case("W (5, 4) with two entries exactly 0, lam = 0.1", args=(W, 0.1)),
                         Case("W (3, 3) of small values ±1e-8 and 0, lam = 0.5",
                              args=(np.array([[1e-8, -1e-8, 0.0], [-0.0, 2e-9, -3e-9], [0.0, 1e-12, -1e-12]]), 0.5)),
                         Case("b (7,), lam = 2.0", args=(rng.standard_normal(7), 2.0))],
                   edge=[Case("an empty W (0, 4)", args=(np.zeros((0, 4)), 0.1)),
                         Case("lam = 0", args=(rng.standard_normal((2, 3)), 0.0)),
                         Case("all zeros (3, 2)", args=(np.zeros((3, 2)), 0.3))])


def _l1_reference(W, lam):
    t = tensor(W, requires_grad=True)
    (lam * t.abs().sum()).backward()
    return t.grad.numpy(), [(np.where(W >= 0, lam, -lam), "at exactly 0 the subgradient is 0 (torch's choice, "
                                                          "sign(0) = 0), not +lam"),
                            (np.sign(W), "lam is missing: lam * sign(W)"),
                            (lam * W, "that is λW, the gradient of L2; L1's is λ sign(W)"),
                            (lam / 2 * np.sign(W), "a factor 1/2: the L1 penalty λ‖W‖₁ has no 1/2")]


# best_epoch(val_losses)

def _best_cases() -> list[Case]:
    nan = float("nan")
    main = [Case("[0.9, 0.7, 0.5, 0.6, 0.8]", args=([0.9, 0.7, 0.5, 0.6, 0.8],)),
            Case("a tie: [0.9, 0.4, 0.6, 0.4, 0.7]", args=([0.9, 0.4, 0.6, 0.4, 0.7],)),
            Case("NaN at the start: [nan, 0.8, 0.6, 0.7]", args=([nan, 0.8, 0.6, 0.7],)),
            Case("NaN in the middle: [1.0, 0.9, nan, 0.95, 0.92]", args=([1.0, 0.9, nan, 0.95, 0.92],)),
            Case("a NumPy array of 12 losses", args=(np.array([2.3, 1.9, 1.5, 1.2, 1.05, 1.0, 0.98, 0.99, 1.01,
                                                                1.04, 1.1, 1.2]),))]
    edge = [Case("one epoch: [0.5]", args=([0.5],)),
            Case("the best is the last: [3.0, 2.0, 1.0]", args=([3.0, 2.0, 1.0],)),
            Case("the best is the first: [0.1, 0.2, 0.3]", args=([0.1, 0.2, 0.3],)),
            Case("with inf: [inf, 2.0, inf, 1.5]", args=([float("inf"), 2.0, float("inf"), 1.5],))]
    errors = [Case("an empty list must raise ValueError", args=([],)),
              Case("an empty array must raise ValueError", args=(np.zeros(0),)),
              Case("only NaN: [nan, nan, nan] must raise ValueError (no epoch to keep)", args=([nan, nan, nan],))]
    return grouped(main=main, edge=edge, errors=errors)


def _best_reference(val_losses):
    torch = torch_module()
    t = tensor(np.asarray(val_losses, dtype=np.float64))
    expected = int(torch.argmin(torch.nan_to_num(t, nan=float("inf"), posinf=float("inf"))))
    a = np.asarray(val_losses, dtype=np.float64)
    finite = np.where(np.isnan(a), np.inf, a)
    last = len(a) - 1 - int(np.argmin(finite[::-1]))
    return expected, [(last, "on a tie the last lowest epoch was taken; keep the first one (the model was as good "
                             "earlier: fewer epochs)"),
                      (int(np.argmin(a)), "a NaN won: np.argmin returns the first NaN; NaN entries never win "
                                          "(np.nanargmin, or treat NaN as inf)"),
                      (expected + 1, "the index is 1-based; epochs count from 0 here"),
                      (int(np.argmax(finite)), "that is the highest loss: argmin, not argmax")]


CHECKS = by_exercise([
    DropoutCheck(),
    TorchCheck("dropout_backward", _backward_cases, _backward_reference),
    TorchCheck("l2_penalty", _l2_cases, _l2_reference, kind="number"),
    TorchCheck("sgd_step_weight_decay", _sgd_cases, _sgd_reference),
    TorchCheck("l1_subgradient", _l1_cases, _l1_reference),
    TorchCheck("best_epoch", _best_cases, _best_reference, kind="index"),
])
