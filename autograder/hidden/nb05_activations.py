"""Hidden checks of notebook 05, activations. Never shipped to students.

The eight element-wise exercises share one table of inputs (a grid through 0, the shapes (N,),
(N, D) and (N, C, H, W), magnitudes up to 1e4, tiny values, 0-d and empty arrays) and one judge:
the result must be a new float64 array of the input's shape (``course.elementwise.form_problem``,
the contract the visible cells use too) and equal PyTorch's value in float64 (the function, or
its autograd derivative). ``sigmoid`` and ``sigmoid_grad`` must also stay quiet: no overflow or
invalid-value warning. Each check lists the typical mistakes as (function of the input, hint).

``collapse_linear`` is compared with the matrix product in torch, ``dead_units`` with torch's
ReLU of the layer. The probe (``autograder.probe.nb05.watched``) records the result, the warnings
and the arguments changed in place; ``judge`` never runs student code and never raises.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from course.checks import Comparison, compare, format_shape
from course.elementwise import ATOL, RTOL, first_match, form_problem, mask_problem, pair_problem, warnings_hint

from .framework import Case, Outcome, by_exercise, grouped
from .judging import tensor, torch_module
from .nb03_manual_backprop import Malformed, _Check, _field

NOTEBOOK = "05_activations"


def _F():
    return torch_module().nn.functional


def _derivative(f: Callable) -> Callable:
    """The element-wise derivative of a torch function, by autograd: (tensor, **kw) -> tensor."""
    def grad(t, **kwargs):
        t = t.detach().clone().requires_grad_(True)
        f(t, **kwargs).backward(torch_module().ones_like(t))
        return t.grad

    return grad


# ----------------------------------------------------------------------------------------------
# the element-wise exercises


def _inputs() -> tuple:
    """(main, edge): lists of (label, x) shared by every element-wise check."""
    rng = np.random.default_rng(50_505)
    normal = rng.standard_normal((6, 5))
    normal[2, 3] = 0.0
    large = np.array([-1e4, -1000.0, -745.0, -710.0, -50.0, -20.0, 20.0, 50.0, 710.0, 745.0, 1000.0, 1e4])
    main = [
        ("(N,) = (13,): -6 to 6 in steps of 1, 0 included", np.linspace(-6.0, 6.0, 13)),
        ("(N, D) = (6, 5): standard normal, one entry exactly 0", normal),
        ("(N, C, H, W) = (2, 3, 4, 5): normal, standard deviation 4", rng.normal(0.0, 4.0, size=(2, 3, 4, 5))),
        ("(N,): large magnitudes ±20, ±50, ±710, ±745, ±1000, ±1e4", large),
    ]
    edge = [
        ("an empty array (0,)", np.zeros(0)),
        ("an empty array (3, 0)", np.zeros((3, 0))),
        ("a 0-d array holding 0", np.array(0.0)),
        ("a 0-d array holding -2.5", np.array(-2.5)),
        ("tiny values ±1e-300, ±5e-324, -0.0, ±1e-9", np.array([1e-300, -1e-300, 5e-324, -5e-324, -0.0, 1e-9, -1e-9])),
    ]
    return main, edge


class ElementwiseCheck(_Check):
    """An element-wise function against its torch reference."""

    probe = "nb05.watched"

    def __init__(self, exercise: str, reference: Callable, mistakes: Callable = lambda t, kw: [],
                 quiet: bool = False, extra: Callable = lambda: ([], []), rtol: float = RTOL, atol: float = ATOL):
        self.exercise = exercise
        self.reference = reference  # (tensor, **kwargs) -> tensor
        self.mistakes = mistakes  # (tensor, kwargs) -> [(tensor, hint)]
        self.quiet = quiet
        self.extra = extra  # () -> (main, edge) lists of (label, x, kwargs)
        self.rtol, self.atol = rtol, atol

    def cases(self) -> list[Case]:
        main, edge = _inputs()
        more_main, more_edge = self.extra()
        make = lambda items: [Case(item[0], args=(item[1],), kwargs=dict(item[2]) if len(item) > 2 else {})
                              for item in items]  # noqa: E731
        return grouped(main=make(main) + make(more_main), edge=make(edge) + make(more_edge))

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        if outcome.kind == "raised":
            hint = _raised_hint(outcome, self.exercise)
            if hint:
                return self.fail(case, f"raised {outcome.error}: {outcome.message} — likely cause: {hint}")
        return super().judge(case, outcome)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        result, caught, changed = _watched(value)
        x = case.args[0]
        if changed:
            return self.fail(case, "changed its input x in place — likely cause: an in-place operation such as "
                                   "x[x < 0] = 0, x *= ... or np.exp(x, out=x); x holds the caller's "
                                   "pre-activations: compute a new array")
        problem = form_problem(result, x.shape)
        if problem:
            return self.fail(case, problem)
        t = tensor(x)
        expected = self.reference(t, **case.kwargs).detach().numpy()
        name = self.name(case)
        comparison = compare(name, result, expected, rtol=self.rtol, atol=self.atol)
        if not comparison.ok:
            hints = [first_match(result, [(c.detach().numpy(), h) for c, h in self.mistakes(t, case.kwargs)]),
                     warnings_hint(caught, False) if caught else None]
            hints = [h for h in hints if h]
            return Comparison(name, False, comparison.message + (f" — likely cause: {'; '.join(hints)}" if hints else ""))
        if self.quiet and caught:
            return self.fail(case, f"the values are right, but the call raised {'; '.join(caught)} — likely "
                                   f"cause: {warnings_hint(caught, True)}")
        return comparison


def _watched(value: Any) -> tuple:
    """(result, warnings, changed) of what the probe recorded; Malformed when it is not that."""
    result, caught, changed = _field(value, "result"), _field(value, "warnings"), _field(value, "changed")
    if type(caught) is not list or any(type(w) is not str for w in caught):
        raise Malformed("the warnings are not a list of texts")
    if type(changed) is not list or any(type(i) is not int for i in changed):
        raise Malformed("the changed arguments are not a list of positions")
    return result, caught, changed


def _raised_hint(outcome: Outcome, exercise: str) -> Optional[str]:
    text = outcome.message
    if "has no attribute 'astype'" in text and text.startswith("'float'"):
        return ("on a 0-d array, x / math.sqrt(2) is a NumPy number, and np.frompyfunc (or np.vectorize "
                "without otypes) then returns a plain Python float, which has no .astype: convert with "
                "np.asarray(..., dtype=np.float64), or use np.vectorize(math.erf, otypes=[np.float64])")
    if "vectorize" in text and "size 0" in text:
        return ("np.vectorize cannot guess the output type of an empty array: give it one, "
                "np.vectorize(math.erf, otypes=[np.float64])")
    if "negative_slope" in text and "unexpected keyword" in text:
        return "keep the signature: the slope is the keyword argument negative_slope=0.01"
    if "only length-1 arrays" in text or "only 0-dimensional" in text or "only size-1 arrays" in text:
        return "math.erf (and math.exp) take one number, not an array: apply them element by element " \
               "(np.vectorize(math.erf, otypes=[np.float64]))"
    if "truth value of an array" in text:
        return "`if x > 0:` asks one question of a whole array: use np.where or a boolean mask"
    if "matmul" in text or "aligned" in text or "mismatch in its core dimension" in text:
        if exercise == "dead_units":
            return ("the shapes of a product do not fit: W has PyTorch's layout (H, D), so the pre-activations "
                    "of X (N, D) are Z = X @ W.T + b, of shape (N, H)")
        if exercise == "collapse_linear":
            return ("the factors of a product are in the wrong order: layer 1 acts first, so with W of shape "
                    "(out, in) the product is W2 @ W1, (C, H) @ (H, D)")
    return None


def _slopes() -> tuple:
    """The leaky checks' extra cases: other slopes, passed as the keyword negative_slope."""
    rng = np.random.default_rng(50_606)
    main = [
        ("(N,) grid through 0, negative_slope = 0.2", np.linspace(-3.0, 3.0, 7), {"negative_slope": 0.2}),
        ("(N, D) = (4, 6), negative_slope = 0.0 (a plain ReLU)", rng.standard_normal((4, 6)), {"negative_slope": 0.0}),
    ]
    edge = [("a 0-d array holding 0, negative_slope = 0.3", np.array(0.0), {"negative_slope": 0.3})]
    return main, edge


def _slope(kw: dict) -> float:
    return kw.get("negative_slope", 0.01)


def _erf_cdf(t):
    torch = torch_module()
    return 0.5 * (1.0 + torch.erf(t / math.sqrt(2.0)))


def _pdf(t):
    torch = torch_module()
    return torch.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


def _sigmoid_mistakes(t, kw):
    torch = torch_module()
    return [(torch.sigmoid(-t), "that is σ(−x) = 1 / (1 + exp(x)): a sign slip in the exponent"),
            (torch.tanh(t), "that is tanh(x); the sigmoid is 1 / (1 + exp(−x))")]


def _sigmoid_grad_mistakes(t, kw):
    torch = torch_module()
    s = torch.sigmoid(t)
    return [(t * (1 - t), "that is x·(1 − x): the formula σ(1 − σ) was applied to x itself; evaluate σ at x "
                          "first, then σ(x)·(1 − σ(x))"),
            (torch.sigmoid(s) * (1 - torch.sigmoid(s)), "that is the derivative evaluated at σ(x) instead of x "
                                                        "(σ applied twice): σ'(x) = σ(x)·(1 − σ(x)), one σ"),
            (s, "that is σ(x) itself, not its derivative"),
            (s * s, "that is σ(x)²; the derivative is σ(x)·(1 − σ(x))")]


def _tanh_grad_mistakes(t, kw):
    torch = torch_module()
    y = torch.tanh(t)
    return [(1 - t * t, "that is 1 − x²: the derivative evaluated at tanh(x) instead of x; take tanh of x "
                        "first, then 1 − tanh(x)²"),
            (1 - y, "that is 1 − tanh(x): the square is missing"),
            (y * y, "that is tanh(x)²; the derivative is 1 − tanh(x)²"),
            (1 - torch.tanh(y) ** 2, "that is the derivative evaluated at tanh(x) (tanh applied twice)")]


def _relu_grad_mistakes(t, kw):
    torch = torch_module()
    return [((t >= 0).double(), "relu_grad(0) is 1 here; PyTorch's gradient of ReLU at exactly 0 is 0: "
                                "1.0 only where x > 0 (use >, not >=)"),
            (torch.relu(t), "that is ReLU(x) itself, not its derivative (1.0 where x > 0, else 0.0)"),
            (torch.sign(t), "np.sign gives −1 for negative x; the derivative there is 0")]


def _leaky_mistakes(t, kw):
    torch = torch_module()
    a = _slope(kw)
    return [(torch.relu(t), "the negative side is 0: that is ReLU; LeakyReLU gives negative_slope · x there"),
            (torch.where(t > 0, t, 0.01 * t), f"negative_slope = {a:g} was ignored (0.01 used)"),
            (torch.where(t > 0, t, a * t.abs()), "the negative side has the wrong sign: negative_slope · x "
                                                 "is negative for x < 0")]


def _leaky_grad_mistakes(t, kw):
    torch = torch_module()
    a = _slope(kw)
    one, slope = torch.ones_like(t), torch.full_like(t, a)
    return [(torch.where(t >= 0, one, slope), f"at exactly 0 the gradient is 1 here; PyTorch's is negative_slope "
                                              f"({a:g}): 1 only where x > 0"),
            ((t > 0).double(), "the negative side is 0: that is ReLU's gradient; LeakyReLU's is negative_slope"),
            (torch.where(t > 0, one, torch.full_like(t, 0.01)), f"negative_slope = {a:g} was ignored (0.01 used)"),
            (_F().leaky_relu(t, a), "that is leaky_relu(x) itself, not its derivative")]


def _gelu_mistakes(t, kw):
    torch = torch_module()
    F = _F()
    return [(F.gelu(t, approximate="tanh"), "that is the tanh approximation (approximate='tanh'); the exact "
                                            "GELU is x·Φ(x) with Φ(x) = (1 + erf(x / √2)) / 2"),
            (t * torch.sigmoid(1.702 * t), "that is the sigmoid approximation x·σ(1.702 x); use the exact "
                                           "x·Φ(x) with erf"),
            (0.5 * t * (1 + torch.erf(t)), "erf(x) where Φ needs erf(x / √2)"),
            (t * (1 + torch.erf(t / math.sqrt(2.0))), "the factor 1/2 of Φ(x) = (1 + erf(x / √2)) / 2 is missing"),
            (_erf_cdf(t), "that is Φ(x) alone; GELU is x·Φ(x)")]


def _gelu_grad_mistakes(t, kw):
    torch = torch_module()
    return [(_erf_cdf(t), "that is Φ(x) alone: the term x·φ(x) of the product rule is missing, "
                          "d/dx [x·Φ(x)] = Φ(x) + x·φ(x)"),
            (_derivative(lambda u: _F().gelu(u, approximate="tanh"))(t),
             "that is the derivative of the tanh approximation; differentiate the exact x·Φ(x)"),
            (_erf_cdf(t) + t * torch.exp(-0.5 * t * t), "φ(x) is missing its factor 1/√(2π)"),
            (_erf_cdf(t) - t * _pdf(t), "the sign of x·φ(x) is wrong: Φ(x) + x·φ(x)"),
            (t * _pdf(t), "that is x·φ(x) alone: Φ(x) is missing"),
            (_F().gelu(t), "that is gelu(x) itself, not its derivative")]


def _elementwise_checks() -> list:
    torch, F = torch_module, _F
    return [
        ElementwiseCheck("sigmoid", lambda t: torch().sigmoid(t), _sigmoid_mistakes, quiet=True),
        ElementwiseCheck("sigmoid_grad", _derivative(lambda t: torch().sigmoid(t)), _sigmoid_grad_mistakes, quiet=True),
        ElementwiseCheck("tanh_grad", _derivative(lambda t: torch().tanh(t)), _tanh_grad_mistakes),
        ElementwiseCheck("relu_grad", _derivative(lambda t: torch().relu(t)), _relu_grad_mistakes, rtol=0.0, atol=0.0),
        ElementwiseCheck("leaky_relu", lambda t, negative_slope=0.01: F().leaky_relu(t, negative_slope),
                         _leaky_mistakes, extra=_slopes, rtol=1e-12, atol=0.0),
        ElementwiseCheck("leaky_relu_grad",
                         _derivative(lambda t, negative_slope=0.01: F().leaky_relu(t, negative_slope)),
                         _leaky_grad_mistakes, extra=_slopes, rtol=1e-12, atol=0.0),
        ElementwiseCheck("gelu", lambda t: F().gelu(t), _gelu_mistakes),
        ElementwiseCheck("gelu_grad", _derivative(lambda t: F().gelu(t)), _gelu_grad_mistakes),
    ]


# ----------------------------------------------------------------------------------------------
# collapse_linear


class CollapseLinearCheck(ElementwiseCheck):
    """collapse_linear(W1, b1, W2, b2) -> (W, b) against the product of the two layers in torch."""

    def __init__(self):
        self.exercise = "collapse_linear"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(50_707)

        def case(label: str, D: int, H: int, C: int, scale: float = 1.0) -> Case:
            r = lambda *shape: scale * rng.standard_normal(shape)  # noqa: E731
            return Case(label, args=(r(H, D), r(H), r(C, H), r(C)))

        main = [case("(D, H, C) = (4, 6, 3)", 4, 6, 3), case("square layers (D, H, C) = (5, 5, 5)", 5, 5, 5),
                case("(D, H, C) = (3, 8, 2), weights of scale 10", 3, 8, 2, 10.0),
                case("a bottleneck: (D, H, C) = (6, 1, 4)", 6, 1, 4)]
        edge = [case("a hidden layer of width 0: (D, H, C) = (3, 0, 2)", 3, 0, 2),
                case("one input, one output: (D, H, C) = (1, 4, 1)", 1, 4, 1),
                case("one unit everywhere: (D, H, C) = (1, 1, 1)", 1, 1, 1)]
        return grouped(main=main, edge=edge)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        result, _, changed = _watched(value)
        W1, b1, W2, b2 = case.args
        if changed:
            names = ", ".join(("W1", "b1", "W2", "b2")[i] for i in changed if 0 <= i < 4)
            return self.fail(case, f"changed {names} in place; leave the layers as they are and return new arrays")
        C, H, D = W2.shape[0], W1.shape[0], W1.shape[1]
        problem = pair_problem(result, D=D, H=H, C=C)
        if problem:
            return self.fail(case, problem)
        got = list(result)
        W1t, b1t, W2t, b2t = (tensor(a) for a in case.args)
        W_ref, b_ref = (W2t @ W1t).numpy(), (W2t @ b1t + b2t).numpy()
        scale = float(np.abs(W2).sum(axis=1).max() * max(np.abs(W1).max(), np.abs(b1).max(initial=0.0))) if W1.size else 0.0
        atol = 1e-12 * max(scale, 1.0)
        name = self.name(case)
        parts = []
        for label, mine, ref, mistakes in (
            ("W", got[0], W_ref, [(W1 @ W2 if W1.shape[1] == W2.shape[0] else np.zeros(0),
                                   "W1 @ W2 is in the wrong order: layer 1 acts first, y = (x W1ᵀ) W2ᵀ = x (W2 W1)ᵀ, "
                                   "so W = W2 @ W1"),
                                  (W_ref.T.copy(), "W is transposed: PyTorch's layout is (out, in) = (C, D)")]),
            ("b", got[1], b_ref, [(b1 + b2 if b1.shape == b2.shape else np.zeros(0),
                                   "the bias is missing W2: b1 passes through layer 2 as well, so b = W2 @ b1 + b2"),
                                  (W2.T @ b1 + b2 if W2.shape[0] == W2.shape[1] else np.zeros(0),
                                   "that is b1 @ W2 + b2: W2 is applied untransposed; layer 2 maps a row h to "
                                   "h @ W2.T, so b = b1 @ W2.T + b2 = W2 @ b1 + b2"),
                                  (W2 @ b1, "b2 is missing: b = W2 @ b1 + b2"),
                                  (b2, "layer 1's bias is missing: b1 passes through layer 2, b = W2 @ b1 + b2")]),
        ):
            comparison = compare(f"{name} {label}", mine, ref, rtol=1e-10, atol=atol)
            if not comparison.ok:
                hint = first_match(mine, mistakes, rtol=1e-8, atol=atol)
                comparison = Comparison(comparison.name, False,
                                        comparison.message + (f" — likely cause: {hint}" if hint else ""))
            parts.append(comparison)
        bad = [p for p in parts if not p.ok]
        if bad:
            return Comparison(name, False, "\n  ".join(p.message for p in bad))
        return Comparison(name, True, f"✓ {name}: W {format_shape(W_ref.shape)} and b {format_shape(b_ref.shape)}")


# ----------------------------------------------------------------------------------------------
# dead_units


def _dead_case(label: str, X: np.ndarray, W: np.ndarray, b: np.ndarray) -> Case:
    return Case(label, args=(np.asarray(X, dtype=np.float64), np.asarray(W, dtype=np.float64),
                             np.asarray(b, dtype=np.float64)))


class DeadUnitsCheck(ElementwiseCheck):
    """dead_units(X, W, b) -> (H,) booleans against torch's ReLU of the layer."""

    def __init__(self):
        self.exercise = "dead_units"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(50_808)
        X, W = rng.standard_normal((50, 4)), rng.standard_normal((8, 4))
        b = rng.standard_normal(8)
        b[[1, 4, 6]] = -100.0                                    # three units that never fire
        # integers, so that every order of summation gives the same exact numbers
        Xi, Wi = rng.integers(-3, 4, size=(20, 3)).astype(float), rng.integers(-2, 3, size=(6, 3)).astype(float)
        Zi = Xi @ Wi.T
        bi = rng.integers(-1, 2, size=6).astype(float)
        bi[2] = -Zi[:, 2].max()                                  # unit 2: largest pre-activation exactly 0
        bi[4] = -Zi[:, 4].max() - 1.0                             # unit 4: dead by a margin of 1
        Xo, Wo = rng.standard_normal((30, 5)), rng.standard_normal((4, 5))
        Zo = Xo @ Wo.T
        bo = -np.sort(Zo, axis=0)[-2] + 0.0                      # each unit positive on exactly one row
        bo[3] = -Zo[:, 3].max() - 0.5                            # ... except unit 3, dead
        main = [
            _dead_case("(N, D, H) = (50, 4, 8): three units with bias -100", X, W, b),
            _dead_case("(N, D, H) = (20, 3, 6), integers: a unit whose largest pre-activation is exactly 0", Xi, Wi, bi),
            _dead_case("(N, D, H) = (30, 5, 4): units that fire on one row only", Xo, Wo, bo),
        ]
        Xe = rng.standard_normal((10, 3))
        edge = [
            _dead_case("one row: (N, D, H) = (1, 3, 5)", rng.standard_normal((1, 3)), rng.standard_normal((5, 3)),
                       np.array([0.0, -50.0, 50.0, 0.5, -0.5])),
            _dead_case("one unit: (N, D, H) = (10, 3, 1)", Xe, rng.standard_normal((1, 3)), np.array([-100.0])),
            _dead_case("every unit dead: (N, D, H) = (10, 3, 4)", Xe, rng.standard_normal((4, 3)), np.full(4, -100.0)),
            _dead_case("no features, D = 0: each unit is its bias", np.zeros((6, 0)), np.zeros((4, 0)),
                       np.array([1.0, 0.0, -1.0, 2.0])),
        ]
        return grouped(main=main, edge=edge)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        result, _, changed = _watched(value)
        X, W, b = case.args
        if changed:
            names = ", ".join(("X", "W", "b")[i] for i in changed if 0 <= i < 3)
            return self.fail(case, f"changed {names} in place; compute the pre-activations in a new array")
        F = _F()
        Z = F.linear(tensor(X), tensor(W), tensor(b))
        expected = (torch_module().relu(Z) == 0).all(dim=0).numpy()
        H, N = W.shape[0], X.shape[0]
        problem = mask_problem(result, (H,))
        if problem:
            if "likely cause" in problem:  # the contract's own diagnosis (e.g. indices instead of a mask)
                pass
            elif isinstance(result, np.ndarray) and result.shape == (N,) and N != H:
                problem += " — likely cause: the reduction ran over the units (axis 1); reduce over the rows, axis 0"
            elif type(result) is int:
                problem += " — likely cause: that is the number of dead units; return one True/False per unit"
            return self.fail(case, problem)
        wrong = np.flatnonzero(result != expected)
        name = self.name(case)
        if wrong.size == 0:
            return Comparison(name, True, f"✓ {name}: {int(expected.sum())} of {H} units dead")
        Zn = Z.numpy()
        mistakes = [((Zn <= 0).any(axis=0), "a unit is dead only when its output is 0 for every row: .all over the "
                                            "rows, not .any"),
                    ((Zn < 0).all(axis=0), "a pre-activation of exactly 0 also gives ReLU(0) = 0 (and gradient 0): "
                                           "the unit is dead when Z <= 0 on every row, not only Z < 0"),
                    (~expected, "True and False are swapped: True marks the dead units"),
                    ((X @ W.T <= 0).all(axis=0) if X.shape[1] == W.shape[1] else np.zeros(0),
                     "the bias b is missing from the pre-activations Z = X @ W.T + b")]
        hint = first_match(result.astype(np.float64), [(np.asarray(m, dtype=np.float64), h) for m, h in mistakes])
        text = (f"units {wrong[:8].tolist()}{' ...' if wrong.size > 8 else ''} are wrong: got "
                f"{result.astype(int).tolist()}, expected {expected.astype(int).tolist()} (1 = dead)")
        return self.fail(case, text + (f" — likely cause: {hint}" if hint else ""))


CHECKS = by_exercise([*_elementwise_checks(), CollapseLinearCheck(), DeadUnitsCheck()])
