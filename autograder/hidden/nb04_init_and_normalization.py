"""Hidden checks of notebook 04, initialization and normalization. Never shipped to students.

The initializers are judged statistically on large draws: shape, bounds, sample mean and
variance (within a few standard errors of the sampling noise, so that a correct solution
passes with overwhelming probability), the shape of the distribution (the excess kurtosis
tells a normal from a uniform), the same seed giving the same weights, another seed other
weights, and the generator actually being drawn from. The cases are fixed seeds, so a verdict
never changes from one run to the next.

``forward_stats``, ``BatchNorm1d`` and ``LayerNorm`` are compared with PyTorch in float64
(``F.linear`` and the activations, ``F.batch_norm`` with running statistics, ``F.layer_norm``,
autograd for the backward passes). The probes (``autograder.probe.nb04``) record what the
student's objects return; ``judge`` never runs student code and never raises.
"""
from __future__ import annotations

import functools
import math
import re
from typing import Any, Optional

import numpy as np

from course.checks import Comparison, compare, format_shape

from .framework import Case, Outcome, by_exercise, grouped
from .judging import array_or_none, matches, tensor, torch_module, with_hint
from .nb03_manual_backprop import Malformed, _Check, _combine, _describe, _field, _record_problem, _value

NOTEBOOK = "04_init_and_normalization"

#: how many standard errors of the sampling noise a statistic may stray before it fails
SIGMAS = 6.0


# ----------------------------------------------------------------------------------------------
# the initializers


def _excess_kurtosis(values: np.ndarray) -> float:
    centred = values - values.mean()
    var = float(np.mean(centred ** 2))
    return float(np.mean(centred ** 4) / var ** 2 - 3.0) if var > 0 else float("nan")


class _InitializerCheck(_Check):
    """Shared judge of the four initializers.

    Subclasses give the distribution (``kind``: "normal" or "uniform"), its variance and, for a
    uniform, its bound as functions of (fan_in, fan_out, gain), and the typical mistakes as
    (variance, kind or None for either, diagnosis).
    """

    probe = "nb04.initializer"
    kind = "normal"
    takes_gain = False
    returns_bias = False
    formula = ""

    def variance(self, fan_in: int, fan_out: int, gain: float) -> float:
        raise NotImplementedError

    def bound(self, fan_in: int, fan_out: int, gain: float) -> float:
        return math.sqrt(3.0 * self.variance(fan_in, fan_out, gain))

    def mistakes(self, fan_in: int, fan_out: int, gain: float) -> list[tuple[float, Optional[str], str]]:
        return []

    # -- cases

    def _draw(self, fan_in: int, fan_out: int, seed: int, gain: Optional[float] = None) -> dict:
        spec = {"fan_in": fan_in, "fan_out": fan_out, "seed": seed}
        if gain is not None:
            spec["gain"] = gain
        return spec

    def cases(self) -> list[Case]:
        base = {"xavier_normal": 40_100, "xavier_uniform": 40_200, "kaiming_normal": 40_300,
                "pytorch_linear_init": 40_400}[self.exercise]

        def case(label: str, aspect: str, *draws: dict) -> Case:
            return Case(label, kwargs={"aspect": aspect, "draws": list(draws)})

        d = self._draw
        main = [
            case("fan_in = 5, fan_out = 3: the shape (fan_out, fan_in)", "shape", d(5, 3, base + 1)),
            case("twice from the same seed", "same seed", d(40, 30, base + 2), d(40, 30, base + 2)),
            case("from two different seeds", "other seed", d(40, 30, base + 3), d(40, 30, base + 4)),
            case("fan_in = 300, fan_out = 200: the distribution", "distribution", d(300, 200, base + 5)),
            case("fan_in = 100, fan_out = 900: the distribution", "distribution", d(100, 900, base + 6)),
            case("fan_in = 900, fan_out = 100: the distribution", "distribution", d(900, 100, base + 7)),
        ]
        if self.takes_gain:
            main += [
                case("gain = 5/3 (tanh), fan_in = 400, fan_out = 200", "distribution",
                     d(400, 200, base + 8, 5.0 / 3.0)),
                case("gain = sqrt(2) (ReLU), fan_in = 250, fan_out = 250", "distribution",
                     d(250, 250, base + 9, math.sqrt(2.0))),
            ]
        if self.returns_bias:
            main.append(case("fan_in = 20, fan_out = 30000: the distribution of b", "distribution",
                             d(20, 30_000, base + 10)))
        edge = [
            case("fan_in = fan_out = 1", "shape", d(1, 1, base + 11)),
            case("one input: fan_in = 1, fan_out = 500", "edge", d(1, 500, base + 12)),
            case("one output: fan_in = 500, fan_out = 1", "edge", d(500, 1, base + 13)),
        ]
        return grouped(main=main, edge=edge)

    # -- judging

    def _arrays(self, case: Case, spec: dict, draw: Any) -> tuple:
        """(W, b or None) of one draw, or a failed Comparison."""
        record = _field(draw, "result")
        fan_in, fan_out = spec["fan_in"], spec["fan_out"]
        what = f"{self.exercise}({fan_in}, {fan_out}, rng)"
        problem = _record_problem(what, record)
        if problem:
            if "gain" in problem and "unexpected keyword" in problem:
                problem += f" — likely cause: the signature must be {self.exercise}(fan_in, fan_out, rng, gain=1.0)"
            return self.fail(case, problem), None
        value = _value(record)
        if self.returns_bias:
            if type(value) not in (tuple, list) or len(value) != 2:
                return self.fail(case, f"{what} returned {_describe(value)}; it must return the pair (W, b)"), None
            W, b = array_or_none(value[0]), array_or_none(value[1])
            if W is None or b is None:
                return self.fail(case, f"{what} returned ({_describe(value[0])}, {_describe(value[1])}); W and b "
                                       f"must be NumPy arrays"), None
        else:
            W, b = array_or_none(value), None
            if W is None:
                return self.fail(case, f"{what} returned {_describe(value)}; it must return a NumPy array of "
                                       f"shape (fan_out, fan_in) = {format_shape((fan_out, fan_in))}"), None
        if W.shape != (fan_out, fan_in):
            text = f"W has shape {format_shape(W.shape)}, expected (fan_out, fan_in) = {format_shape((fan_out, fan_in))}"
            if W.shape == (fan_in, fan_out):
                text += (" — likely cause: W was drawn (in, out); this course uses PyTorch's layout, "
                         "W of shape (out, in) = (fan_out, fan_in)")
            return self.fail(case, text), None
        if b is not None and b.shape != (fan_out,):
            text = f"b has shape {format_shape(b.shape)}, expected (fan_out,) = {format_shape((fan_out,))}"
            if b.size == fan_out:
                text += " — likely cause: b must be a flat vector, one number per output"
            elif b.shape == (fan_in,):
                text += " — likely cause: b has one entry per output (fan_out), not per input"
            return self.fail(case, text), None
        for name, values in (("W", W), ("b", b)):
            if values is not None and not np.all(np.isfinite(values)):
                return self.fail(case, f"{name} holds NaN or inf"), None
        return W, b

    def judge_value(self, case: Case, value: Any) -> Comparison:
        aspect = case.kwargs["aspect"]
        specs = case.kwargs["draws"]
        draws = _field(value, "draws")
        if type(draws) is not list or len(draws) != len(specs):
            raise Malformed("expected one record per draw")
        arrays = []
        for spec, draw in zip(specs, draws):
            W, b = self._arrays(case, spec, draw)
            if isinstance(W, Comparison):
                return W
            arrays.append((W, b))
        for spec, draw in zip(specs, draws):
            if _field(draw, "rng_used") is False:
                return self.fail(case, "nothing was drawn from the rng argument — likely cause: the weights came "
                                       "from np.random.* (the global state) or from a generator made inside the "
                                       "function; draw every number from rng, e.g. rng.normal(...) or rng.uniform(...)")
        spec = specs[0]
        fan_in, fan_out, gain = spec["fan_in"], spec["fan_out"], spec.get("gain", 1.0)
        W, b = arrays[0]
        if W.size > 1 and np.all(W == W.flat[0]):
            return self.fail(case, f"every weight is {float(W.flat[0]):.4g} — likely cause: a constant (or zero) "
                                   f"initialisation; every unit would then compute the same output and get the same "
                                   f"gradient (the symmetry trap): draw W from rng")
        if aspect == "same seed":
            same = all(np.array_equal(a, c) for a, c in zip(arrays[0], arrays[1]) if a is not None)
            if not same:
                return self.fail(case, "two calls with generators of the same seed gave different weights — likely "
                                       "cause: the global np.random state was used; draw every number from rng")
            return Comparison(self.exercise, True, f"✓ {self.name(case)}: the same weights")
        if aspect == "other seed":
            if np.array_equal(arrays[0][0], arrays[1][0]):
                return self.fail(case, "two different seeds gave the same weights — likely cause: the rng argument is "
                                       "ignored (a fixed seed inside the function?)")
            return Comparison(self.exercise, True, f"✓ {self.name(case)}: different weights")
        problems = []
        if self.kind == "uniform" or self.returns_bias:
            limit = self.bound(fan_in, fan_out, gain)
            for name, values in (("W", W), ("b", b)):
                if values is None:
                    continue
                worst = float(np.abs(values).max())
                if worst > limit * (1 + 1e-6):  # float32 weights may round just past the bound
                    problems.append(self._beyond_bound(name, values, worst, limit, fan_in, fan_out, gain))
        if problems:
            return self.fail(case, problems[0])
        if aspect == "distribution":
            if self.returns_bias and fan_out > fan_in:  # the case for b
                text = self._spread("b", b, fan_in, fan_out, gain)
            else:
                text = self._spread("W", W, fan_in, fan_out, gain)
            if text:
                return self.fail(case, text)
        if b is not None and b.size > 1 and np.all(b == b.flat[0]):
            return self.fail(case, f"every entry of b is {float(b.flat[0]):.4g} — likely cause: b was not drawn; "
                                   f"PyTorch draws the bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) too")
        shapes = f"W {format_shape(W.shape)}" + (f", b {format_shape(b.shape)}" if b is not None else "")
        return Comparison(self.exercise, True, f"✓ {self.name(case)}: {shapes}")

    def _beyond_bound(self, name: str, values: np.ndarray, worst: float, limit: float,
                      fan_in: int, fan_out: int, gain: float) -> str:
        text = f"|{name}| reaches {worst:.4g}, beyond the bound {limit:.4g} of {self.formula}"
        hint = self._match_variance(float(values.var()), values, fan_in, fan_out, gain)
        if hint:
            text += f" — likely cause: {hint}"
        elif values.size >= 1000 and abs(_excess_kurtosis(values)) < 0.5:
            text += (f" — likely cause: a normal distribution; {self.exercise} draws from a uniform one, "
                     f"rng.uniform(-a, a, size=...)")
        return text

    def _match_variance(self, var: float, values: np.ndarray, fan_in: int, fan_out: int, gain: float) -> Optional[str]:
        """The diagnosis of a typical mistake whose variance matches the measured one, if any."""
        n = values.size
        if n < 1000:
            return None
        tolerance = SIGMAS * math.sqrt(2.0 / n)
        kurt = _excess_kurtosis(values)
        shape = "uniform" if abs(kurt + 1.2) < 0.3 else ("normal" if abs(kurt) < 0.3 else None)
        for candidate, kind, text in self.mistakes(fan_in, fan_out, gain):
            if candidate > 0 and abs(var / candidate - 1.0) < tolerance and (kind is None or kind == shape):
                return text
        return None

    def _spread(self, name: str, values: np.ndarray, fan_in: int, fan_out: int, gain: float) -> Optional[str]:
        """What is wrong with the mean, the variance or the shape of a large draw (None: nothing)."""
        n = values.size
        target = self.variance(fan_in, fan_out, gain)
        std = math.sqrt(target)
        mean, var = float(values.mean()), float(values.var())
        if abs(mean) > SIGMAS * std / math.sqrt(n):
            return (f"the {n} entries of {name} have mean {mean:.4g}; they should be centred on 0 "
                    f"(|mean| below {SIGMAS * std / math.sqrt(n):.2g} for this many draws)")
        tolerance = SIGMAS * math.sqrt(2.0 / n)
        if abs(var / target - 1.0) > tolerance:
            text = (f"the variance of {name} is {var:.4g}; {self.formula} has variance {target:.4g} "
                    f"(fan_in = {fan_in}, fan_out = {fan_out}" + (f", gain = {gain:.4g}" if self.takes_gain else "")
                    + f"), ratio {var / target:.3g}")
            hint = self._match_variance(var, values, fan_in, fan_out, gain)
            return text + (f" — likely cause: {hint}" if hint else "")
        kurt = _excess_kurtosis(values)
        if self.kind == "normal" and not self.returns_bias and abs(kurt) > 0.3:
            flat = abs(kurt + 1.2) < 0.3
            return (f"the variance of {name} is right, but the values are not normally distributed (excess kurtosis "
                    f"{kurt:.2f}; a normal has 0" + (", a uniform -1.2" if flat else "") + ")"
                    + (f" — likely cause: a uniform distribution; {self.exercise} draws from a normal one, "
                       f"rng.normal(0.0, std, size=...)" if flat else ""))
        if self.kind == "uniform" or self.returns_bias:
            limit = self.bound(fan_in, fan_out, gain)
            worst = float(np.abs(values).max())
            if worst < 0.99 * limit:
                return (f"|{name}| never exceeds {worst:.4g}, while {n} draws from U(-a, a) with a = {limit:.4g} "
                        f"come within 1% of a — likely cause: a smaller bound than {self.formula}")
        return None


class XavierNormalCheck(_InitializerCheck):
    exercise = "xavier_normal"
    takes_gain = True
    formula = "N(0, gain² · 2 / (fan_in + fan_out))"

    def variance(self, fan_in, fan_out, gain):
        return gain ** 2 * 2.0 / (fan_in + fan_out)

    def mistakes(self, fan_in, fan_out, gain):
        g2 = gain ** 2
        return [
            (g2 / fan_in, None, "LeCun's rule, variance 1 / fan_in; Xavier (Glorot) averages the two fans: "
                                "2 / (fan_in + fan_out)"),
            (g2 / fan_out, None, "variance 1 / fan_out; Xavier (Glorot) uses 2 / (fan_in + fan_out)"),
            (g2 * 2.0 / fan_in, None, "Kaiming's variance 2 / fan_in; Xavier (Glorot) uses 2 / (fan_in + fan_out)"),
            (g2 / (fan_in + fan_out), None, "the factor 2 is missing: 2 / (fan_in + fan_out)"),
            ((g2 * 2.0 / (fan_in + fan_out)) ** 2, None,
             "the variance was passed where the standard deviation goes: rng.normal(mean, std) takes "
             "std = gain * sqrt(2 / (fan_in + fan_out))"),
            (2.0 / (fan_in + fan_out), None, "the gain was ignored: the standard deviation is multiplied by gain"),
            (gain * 2.0 / (fan_in + fan_out), None,
             "the variance was multiplied by gain instead of gain²: multiply the standard deviation by gain"),
            (g2 * 2.0 / (fan_in + fan_out), "uniform",
             "a uniform distribution; xavier_normal draws from a normal one"),
        ]


class XavierUniformCheck(_InitializerCheck):
    exercise = "xavier_uniform"
    kind = "uniform"
    takes_gain = True
    formula = "U(-a, a) with a = gain · sqrt(6 / (fan_in + fan_out))"

    def variance(self, fan_in, fan_out, gain):
        return gain ** 2 * 2.0 / (fan_in + fan_out)

    def mistakes(self, fan_in, fan_out, gain):
        g2 = gain ** 2
        return [
            (g2 * 2.0 / (3.0 * (fan_in + fan_out)), None,
             "the bound is the normal's standard deviation sqrt(2 / (fan_in + fan_out)); a uniform U(-a, a) has "
             "variance a² / 3, so a = sqrt(6 / (fan_in + fan_out)) gives the same variance as xavier_normal"),
            (g2 / fan_in, None, "LeCun's bound sqrt(3 / fan_in) (variance 1 / fan_in); Xavier (Glorot) uses "
                                "sqrt(6 / (fan_in + fan_out))"),
            (g2 * 2.0 / fan_in, None, "Kaiming's bound sqrt(6 / fan_in); Xavier (Glorot) uses sqrt(6 / (fan_in + fan_out))"),
            (g2 / (3.0 * fan_in), None, "PyTorch's default bound 1 / sqrt(fan_in); Xavier (Glorot) uses "
                                        "sqrt(6 / (fan_in + fan_out))"),
            (g2 * 12.0 / (fan_in + fan_out) ** 2, None, "the square root is missing: a = sqrt(6 / (fan_in + fan_out))"),
            (2.0 / (fan_in + fan_out), None, "the gain was ignored: the bound is multiplied by gain"),
            (gain * 2.0 / (fan_in + fan_out), None, "the bound was multiplied by sqrt(gain); multiply it by gain"),
        ]


class KaimingNormalCheck(_InitializerCheck):
    exercise = "kaiming_normal"
    formula = "N(0, 2 / fan_in)"

    def variance(self, fan_in, fan_out, gain):
        return 2.0 / fan_in

    def mistakes(self, fan_in, fan_out, gain):
        return [
            (2.0 / fan_out, None, "the variance was computed from fan_out; Kaiming (fan_in mode) uses 2 / fan_in"),
            (1.0 / fan_in, None, "LeCun's variance 1 / fan_in: the factor 2 that makes up for ReLU zeroing half "
                                 "the inputs is missing"),
            (2.0 / (fan_in + fan_out), None, "Xavier's variance 2 / (fan_in + fan_out); Kaiming uses 2 / fan_in"),
            ((2.0 / fan_in) ** 2, None, "the variance was passed where the standard deviation goes: rng.normal(mean, "
                                        "std) takes std = sqrt(2 / fan_in)"),
            (1.0 / (3.0 * fan_in), None, "PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance "
                                         "1 / (3 fan_in); Kaiming-normal has variance 2 / fan_in"),
            (2.0 / fan_in, "uniform", "a uniform distribution; kaiming_normal draws from a normal one"),
        ]


class PytorchLinearInitCheck(_InitializerCheck):
    exercise = "pytorch_linear_init"
    kind = "uniform"
    returns_bias = True
    formula = "U(-1/sqrt(fan_in), 1/sqrt(fan_in))"

    def variance(self, fan_in, fan_out, gain):
        return 1.0 / (3.0 * fan_in)

    def bound(self, fan_in, fan_out, gain):
        return 1.0 / math.sqrt(fan_in)

    def mistakes(self, fan_in, fan_out, gain):
        return [
            (2.0 / fan_in, "normal", "Kaiming-normal, N(0, 2 / fan_in); PyTorch's default for nn.Linear is "
                                     "kaiming_uniform_ with a = sqrt(5), which is U(-1/sqrt(fan_in), 1/sqrt(fan_in))"),
            (1.0 / (3.0 * fan_out), None, "the bound was computed from fan_out; it is 1/sqrt(fan_in)"),
            (2.0 / fan_in, "uniform", "kaiming_uniform_ with a = 0, bound sqrt(6 / fan_in); PyTorch's nn.Linear uses "
                                      "a = sqrt(5), which gives the bound 1/sqrt(fan_in)"),
            (1.0 / (3.0 * fan_in ** 2), None, "the square root is missing: the bound is 1/sqrt(fan_in), not 1/fan_in"),
        ]


# ----------------------------------------------------------------------------------------------
# forward_stats


def _activation(name: str, z):
    torch = torch_module()
    return {"linear": lambda v: v, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[name](z)


def _layer_outputs(X: np.ndarray, weights: list, activation: str, *, pre: bool = False) -> list:
    """Each layer's output in float64 torch (before the activation when ``pre``)."""
    F = torch_module().nn.functional
    H, outs = tensor(X), []
    for W in weights:
        Z = F.linear(H, tensor(W))
        H = _activation(activation, Z)
        outs.append(Z if pre else H)
    return outs


def _stats(outs: list, *, ddof: int = 0) -> np.ndarray:
    rows = [[float(o.mean()), float(o.std(correction=ddof)) if o.numel() > ddof else float("nan")] for o in outs]
    return np.array(rows, dtype=np.float64).reshape(len(outs), 2)


class ForwardStatsCheck(_Check):
    exercise = "forward_stats"
    probe = "call"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(40_501)

        def case(label: str, N: int, widths: list, activation: str, *, scale: float = 1.0, w_scale: float = 1.0,
                 X: Optional[np.ndarray] = None) -> Case:
            X = scale * rng.standard_normal((N, widths[0])) if X is None else X
            weights = [w_scale * rng.standard_normal((h, d)) / math.sqrt(d) for d, h in zip(widths[:-1], widths[1:])]
            return Case(label, args=(X, weights, activation))

        return grouped(main=[
            case("tanh, widths 6 -> 5 -> 4 -> 3, N = 10", 10, [6, 5, 4, 3], "tanh", w_scale=1.5),
            case("relu, widths 8 -> 8 -> 8 -> 8 -> 8, N = 12", 12, [8, 8, 8, 8, 8], "relu", w_scale=1.4),
            case("linear, widths 5 -> 7 -> 2, N = 9", 9, [5, 7, 2], "linear"),
            case("sigmoid, widths 4 -> 6 -> 6, N = 7", 7, [4, 6, 6], "sigmoid", w_scale=2.0),
            case("one layer, relu, 3 -> 4, N = 6", 6, [3, 4], "relu"),
            case("square layers (H = D = 5), tanh, N = 5", 5, [5, 5, 5], "tanh", w_scale=2.0),
            case("shrinking weights (x 0.3), linear, 10 layers of 6", 8, [6] * 11, "linear", w_scale=0.3),
        ], edge=[
            case("batch of one (1, D), tanh", 1, [4, 5, 3], "tanh"),
            case("one unit per layer (D = H = 1), relu, N = 20", 20, [1, 1, 1, 1], "relu"),
            case("large values ~1e100, linear", 6, [4, 4, 3], "linear", scale=1e100),
            case("large values ~1e100, relu", 6, [4, 5, 3], "relu", scale=1e100),
            case("an all-zero input, sigmoid (every output 0.5, std 0)", 5, [3, 4, 2], "sigmoid",
                 X=np.zeros((5, 3))),
        ])

    def judge_value(self, case: Case, value: Any) -> Comparison:
        X, weights, activation = case.args
        L = len(weights)
        outs = _layer_outputs(X, weights, activation)
        expected = _stats(outs)
        scale = float(np.abs(expected).max()) if expected.size else 0.0
        name = self.name(case)
        result = compare(name, value, expected, rtol=1e-9, atol=1e-12 * scale)
        if result.ok:
            return result
        got = array_or_none(value)
        hint = None
        if got is not None:
            tol = dict(rtol=1e-7, atol=1e-10 * scale)
            candidates = [
                (_stats(_layer_outputs(X, weights, activation, pre=True)),
                 "the statistics of the pre-activation Z = H W^T; take them after the activation"),
                (_stats(outs, ddof=1), "the sample standard deviation (ddof=1); use the population one over all "
                                       "entries, ddof=0 (np.std's default)"),
                (np.stack([expected[:, 0], expected[:, 1] ** 2], axis=1),
                 "the variance in the second column; it holds the standard deviation"),
                (np.array([[float(o.mean()), float(o.std(0, correction=0).mean())] for o in outs]).reshape(L, 2),
                 "the standard deviation of each unit over the batch, averaged; take it over all entries of "
                 "the layer's output at once"),
                (expected.T, "the result is (2, L); return one row (mean, std) per layer: shape (L, 2)"),
                (_stats([tensor(X)] + outs), "an extra row for the input X; return one row per layer: (L, 2)"),
            ]
            if L > 1:
                hidden = _layer_outputs(X, weights[:-1], activation)
                last = torch_module().nn.functional.linear(hidden[-1], tensor(weights[-1]))
                candidates.append((_stats(hidden + [last]), "no activation after the last layer; it is applied "
                                                            "after every layer, the last one included"))
            if all(W.shape[0] == W.shape[1] for W in weights):
                candidates.append((self._untransposed(X, weights, activation),
                                   "H @ W instead of H @ W.T: W has PyTorch's layout (H_l, H_{l-1})"))
            for other in ("linear", "tanh", "relu", "sigmoid"):
                if other != activation:
                    candidates.append((_stats(_layer_outputs(X, weights, other)),
                                       f"the activation {other!r} was applied where {activation!r} was asked for"))
            for candidate, text in candidates:
                if matches(got, candidate, **tol) and not matches(expected, candidate, **tol):
                    hint = text
                    break
        return with_hint(result, hint)

    @staticmethod
    def _untransposed(X, weights, activation) -> np.ndarray:
        H, outs = tensor(X), []
        for W in weights:
            H = _activation(activation, H @ tensor(W))
            outs.append(H)
        return _stats(outs)

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        result = super().judge(case, outcome)
        text = outcome.message.lower() if outcome.kind == "raised" else ""
        if not result.ok and any(w in text for w in ("matmul", "aligned", "shapes", "broadcast")):
            return with_hint(result, "each layer computes H @ W.T with W of shape (H_l, H_{l-1}), PyTorch's layout; "
                                     "check the shapes of H and W")
        return result


# ----------------------------------------------------------------------------------------------
# BatchNorm1d and LayerNorm


BN_READ = ["gamma", "beta", "running_mean", "running_var", "training", "dgamma", "dbeta"]
LN_READ = ["gamma", "beta", "dgamma", "dbeta"]


def _affine(rng: np.random.Generator, D: int) -> dict:
    return {"gamma": 1.0 + 0.5 * rng.standard_normal(D), "beta": 0.5 * rng.standard_normal(D)}


def _bn_reference_forward(X, rm, rv, gamma, beta, training, momentum, eps):
    """(Y, new running mean, new running var) from F.batch_norm in float64."""
    F = torch_module().nn.functional
    rm_t, rv_t = tensor(rm), tensor(rv)
    Y = F.batch_norm(tensor(X), rm_t, rv_t, tensor(gamma), tensor(beta), training=training, momentum=momentum, eps=eps)
    return Y.numpy(), rm_t.numpy(), rv_t.numpy()


def _norm_reference_backward(kind: str, X, dY, gamma, beta, eps):
    """(dX, dgamma, dbeta) by autograd through F.batch_norm (training mode) or F.layer_norm."""
    F = torch_module().nn.functional
    Xt, gt, bt = tensor(X, True), tensor(gamma, True), tensor(beta, True)
    if kind == "bn":
        Y = F.batch_norm(Xt, None, None, gt, bt, training=True, eps=eps)
    else:
        Y = F.layer_norm(Xt, (X.shape[1],), gt, bt, eps)
    Y.backward(tensor(dY))
    return Xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


def names_batch_size(message: str) -> bool:
    """Whether a batch-of-one error message names the batch size: the word "batch" and a standalone 1,
    once the class name is taken out ("BatchNorm1d" alone holds both). The visible test cell applies
    the same rule."""
    rest = re.sub("batchnorm1d", "", message, flags=re.IGNORECASE)
    return "batch" in rest.lower() and re.search(r"(?<![\w.])1(?!\w|\.\d)", rest) is not None


def _normalize(X, axis: int, eps: float, *, ddof: int = 0, eps_outside: bool = False, one_pass: bool = False):
    """X normalized along an axis, the right way or a typical wrong way (judge side)."""
    mean = X.mean(axis=axis, keepdims=True)
    with np.errstate(all="ignore"):
        if one_pass:
            var = np.maximum((X * X).mean(axis=axis, keepdims=True) - mean ** 2, 0.0)
        else:
            n = X.shape[axis]
            var = ((X - mean) ** 2).sum(axis=axis, keepdims=True) / max(n - ddof, 1)
        std = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
        return (X - mean) / std, std


def _norm_backward_variants(X, dY, gamma, eps, axis: int) -> list[tuple[np.ndarray, str]]:
    """dX of the usual wrong backward passes (judge side)."""
    with np.errstate(all="ignore"):
        Xh, std = _normalize(X, axis, eps)
        g = dY * gamma
        m = lambda a: a.mean(axis=axis, keepdims=True)  # noqa: E731
        n = X.shape[axis]
        Xh1, std1 = _normalize(X, axis, eps, ddof=1)
        out = [
            (g / std, "dX = dY·γ/σ treats the mean and the variance as constants: that is the direct path through "
                      "x̂ alone (the gradient in eval mode); in training mode both depend on X: add the paths "
                      "through the mean and through the variance"),
            ((g - m(g)) / std, "the variance's dependence on X is missing: add the path through the variance"),
            ((g - Xh * m(g * Xh)) / std, "the mean's dependence on X is missing: add the path through the mean"),
            ((g - m(g) - Xh1 * m(g * Xh1)) / std1, "the unbiased variance (N − 1) was used in the normalization; "
                                                  "the layer divides by N (the biased variance)"),
            ((dY - m(dY) - Xh * m(dY * Xh)) / std, "γ is missing from dX: the gradient reaching x̂ is dx̂ = dY·γ"),
            (-(g - m(g) - Xh * m(g * Xh)) / std, "the sign of dX is flipped"),
        ]
        if n > 1:
            out.append(((g - m(g) - Xh * (g * Xh).sum(axis=axis, keepdims=True) / (n - 1)) / std,
                        "a factor N/(N − 1) in the variance term: the variance divides by N"))
    return out


class _NormCheck(_Check):
    """The shared judge of BatchNorm1d and LayerNorm: replay the steps in torch, compare each record."""

    probe = "nb04.norm_layer"
    layer = "bn"  # or "ln"
    part = "forward"  # or "backward"

    @property
    def cls(self) -> str:
        return "BatchNorm1d" if self.layer == "bn" else "LayerNorm"

    def case(self, label: str, D: int, steps: list, *, rng: np.random.Generator, options: Optional[dict] = None,
             affine: bool = True) -> Case:
        return Case(label, kwargs={
            "num_features": D, "options": dict(options or {}), "set": _affine(rng, D) if affine else {},
            "steps": steps, "read": BN_READ if self.layer == "bn" else LN_READ})

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        D = kw["num_features"]
        eps = kw["options"].get("eps", 1e-5)
        momentum = kw["options"].get("momentum", 0.1)
        gamma = kw["set"].get("gamma", np.ones(D))
        beta = kw["set"].get("beta", np.zeros(D))
        steps = _field(value, "steps")
        if type(steps) is not list or len(steps) != len(kw["steps"]):
            raise Malformed("expected one record per step")
        parts: list[Comparison] = []
        if self.part == "forward":
            created = _field(value, "created")
            problem = self._created(created, D)
            if problem:
                return self.fail(case, problem)
        rm, rv = np.zeros(D), np.ones(D)
        training = True
        X_last = None
        backward_count = 0
        previous = None  # the reference gradients of the previous backward call
        for index, ((method, arg), step) in enumerate(zip(kw["steps"], steps)):
            record = _field(step, "call")
            where = f"step {index + 1} ({method})"
            if method in ("train", "eval"):
                problem = _record_problem(f".{method}()", record)
                if problem and record["kind"] == "raised":  # what train() returns (self) does not matter
                    return self.fail(case, problem)
                training = method == "train"
                flag_record = _field(step, "training")
                flag = _value(flag_record) if type(flag_record) is dict and flag_record.get("kind") == "returned" else None
                if self.part == "forward" and (type(flag) not in (bool, int) or bool(flag) != training):
                    return self.fail(case, f"after .{method}() the attribute .training is {_describe(flag)}, "
                                           f"expected {training}")
                continue
            if method == "forward":
                N = arg.shape[0]
                if self.layer == "bn" and training and N == 1:
                    parts.append(self._batch_of_one(case, record))
                    continue
                problem = _record_problem("forward", record)
                if problem:
                    return self.fail(case, self._forward_problem(problem, arg))
                if self.layer == "bn":
                    Y, rm_new, rv_new = _bn_reference_forward(arg, rm, rv, gamma, beta, training, momentum, eps)
                else:
                    F = torch_module().nn.functional
                    Y = F.layer_norm(tensor(arg), (D,), tensor(gamma), tensor(beta), eps).numpy()
                    rm_new, rv_new = rm, rv
                if self.part == "forward":
                    parts.append(self._output(case, where, _value(record), Y, arg, gamma, beta, eps, training, rm, rv))
                    if self.layer == "bn":
                        parts += self._running(case, where, step, arg, rm, rv, rm_new, rv_new, momentum, training)
                rm, rv = rm_new, rv_new
                if training or self.layer == "ln":
                    X_last = arg
                continue
            if method == "backward":
                backward_count += 1
                if self.part != "backward":
                    continue
                problem = _record_problem("backward", record)
                if problem:
                    return self.fail(case, problem)
                dX, dgamma, dbeta = _norm_reference_backward(self.layer, X_last, arg, gamma, beta, eps)
                parts += self._gradients(case, step, X_last, arg, gamma, eps, dX, dgamma, dbeta, backward_count,
                                         previous)
                previous = {"dgamma": dgamma, "dbeta": dbeta}
        if not parts:
            raise Malformed("nothing to judge")
        return _combine(self.exercise, parts)

    # -- forward

    def _created(self, created: Any, D: int) -> Optional[str]:
        wanted = {"gamma": np.ones(D), "beta": np.zeros(D)}
        if self.layer == "bn":
            wanted |= {"running_mean": np.zeros(D), "running_var": np.ones(D)}
        for name, expected in wanted.items():
            record = _field(created, name)
            problem = _record_problem(f"{self.cls}({D}).{name}", record)
            if problem:
                if "AttributeError" in problem:
                    problem += f" — likely cause: __init__ must create self.{name}"
                return problem
            got = array_or_none(_value(record))
            if got is None or got.shape != expected.shape or not np.array_equal(got, expected):
                what = "ones" if expected.any() else "zeros"
                return (f"{self.cls}({D}).{name} is {_describe(_value(record))}"
                        + (f" with values {got.reshape(-1)[:4]}" if got is not None and got.size else "")
                        + f"; expected {what} of shape {format_shape((D,))}")
        if self.layer == "bn":
            record = _field(created, "training")
            flag = _value(record) if type(record) is dict and record.get("kind") == "returned" else None
            if flag is not True:
                return (f"{self.cls}({D}).training is {_describe(flag)} at creation; a new layer is in training "
                        f"mode: self.training = True")
        return None

    def _forward_problem(self, problem: str, X: np.ndarray) -> str:
        N, D = X.shape
        if self.layer == "ln" and "broadcast" in problem:
            return problem + (" — likely cause: the statistics of each sample are (N,); keep them a column (N, 1) "
                              "with keepdims=True so they broadcast against (N, D)")
        if self.layer == "bn" and N == 1:
            return problem + " — likely cause: in eval mode a batch of one is fine: it uses the running statistics"
        return problem

    def _batch_of_one(self, case: Case, record: dict) -> Comparison:
        name = f"{self.exercise} [{case.label}]"
        kind = record.get("kind")
        if kind == "raised":
            error, message = str(record.get("error", "")), str(record.get("message", ""))
            if error == "NotImplementedError":
                return Comparison(self.exercise, False, f"✗ {name}: forward: not implemented yet")
            if error != "ValueError":
                return Comparison(self.exercise, False, f"✗ {name}: forward raised {error}: {message}; expected a "
                                                        f"ValueError naming the batch size")
            if not names_batch_size(message):
                return Comparison(self.exercise, False, f"✗ {name}: the ValueError's message {message!r} should "
                                                        f"name the batch size: the word 'batch' and the size, 1 "
                                                        f"(the class name BatchNorm1d does not count)")
            return Comparison(self.exercise, True, f"✓ {name}: ValueError")
        return Comparison(self.exercise, False, f"✗ {name}: forward returned {_describe(record.get('value'))} on a "
                                                f"batch of one in training mode; the variance of one sample is 0, "
                                                f"so every output would be β: raise a ValueError naming the batch size "
                                                f"(torch raises too)")

    def _output(self, case, where, got_value, Y, X, gamma, beta, eps, training, rm, rv) -> Comparison:
        name = f"{self.exercise} [{case.label}] {where} output"
        axis = 0 if self.layer == "bn" else 1
        with np.errstate(all="ignore"):
            _, std = _normalize(X, axis, eps)
            spread = np.abs(X - X.mean(axis=axis, keepdims=True)).max() / std.min() if X.size else 0.0
        g = float(np.abs(gamma).max())
        scale = g * float(spread) + float(np.abs(beta).max())
        N = X.shape[axis]
        cond = float(np.abs(X).max() / std.min()) if X.size else 0.0
        result = compare(name, got_value, Y, rtol=1e-9, atol=1e-12 * scale + 1e-14 * N * g * cond)
        got = array_or_none(got_value)
        if result.ok or got is None or got.shape != Y.shape:
            if not result.ok and got is not None and got.shape == Y.shape[::-1]:
                return with_hint(result, "the output is transposed: it has the shape of X, (N, D)")
            return result
        tol = dict(rtol=1e-7, atol=1e-9 * max(scale, 1e-300))
        candidates = []
        with np.errstate(all="ignore"):
            if self.layer == "bn" and not training:
                batch = gamma * _normalize(X, 0, eps)[0] + beta if X.shape[0] > 1 else None
                if batch is not None:
                    candidates.append((batch, "eval mode normalized with the batch's own statistics; in eval mode "
                                              "BatchNorm uses the running mean and variance"))
                candidates.append((gamma * (X - rm) / np.sqrt(rv) + beta, "eps is missing: divide by sqrt(running_var + eps)"))
                candidates.append((gamma * (X - rm) / (np.sqrt(rv) + eps) + beta,
                                   "eps belongs inside the square root: sqrt(running_var + eps)"))
                candidates.append(((X - rm) / np.sqrt(rv + eps), "γ and β were not applied: y = γ·x̂ + β"))
            else:
                other = 1 - axis
                candidates += [
                    (gamma * _normalize(X, axis, eps, ddof=1)[0] + beta,
                     "normalized with the unbiased variance (divides by N − 1); the normalization divides by N "
                     "(np.var's default)" + (" — only the running variance uses N − 1" if self.layer == "bn" else "")),
                    (gamma * _normalize(X, axis, eps, eps_outside=True)[0] + beta,
                     "eps belongs inside the square root: (X − mean) / sqrt(var + eps)"),
                    (gamma * _normalize(X, axis, 0.0)[0] + beta, "eps is missing: divide by sqrt(var + eps)"),
                    (_normalize(X, axis, eps)[0], "γ and β were not applied: y = γ·x̂ + β"),
                    (gamma * _normalize(X, axis, eps, one_pass=True)[0] + beta,
                     "the variance as mean(X²) − mean(X)² loses its digits far from the origin; take the mean of "
                     "the squared deviations (X − mean)² (np.var does)"),
                    (beta + gamma * (X - X.mean(axis=axis, keepdims=True)), "not divided by the standard deviation"),
                ]
                if self.layer == "bn" and training:
                    candidates.append((gamma * (X - rm) / np.sqrt(rv + eps) + beta,
                                       "training mode used the running statistics; in training mode BatchNorm "
                                       "normalizes with the batch's own mean and variance"))
                if X.shape[other] > 1:
                    wrong = _normalize(X, other, eps)[0]
                    text = ("each sample was normalized over its features (axis 1): that is LayerNorm; BatchNorm "
                            "normalizes each feature over the batch (axis 0)" if self.layer == "bn" else
                            "each feature was normalized over the batch (axis 0): that is BatchNorm; LayerNorm "
                            "normalizes each sample over its features (axis 1)")
                    candidates.append((gamma * wrong + beta, text))
        for candidate, text in candidates:
            if candidate is not None and matches(got, candidate, **tol) and not matches(Y, candidate, **tol):
                return with_hint(result, text)
        if np.any(~np.isfinite(got)) and np.all(np.isfinite(Y)):
            return with_hint(result, "NaN or inf where a feature is constant (variance 0): eps inside the square "
                                     "root, sqrt(var + eps), keeps it finite")
        return result

    def _running(self, case, where, step, X, rm, rv, rm_new, rv_new, momentum, training) -> list[Comparison]:
        parts = []
        N = X.shape[0]
        for attr, old, new in (("running_mean", rm, rm_new), ("running_var", rv, rv_new)):
            record = _field(step, attr)
            name = f"{self.exercise} [{case.label}] {where} {attr}"
            problem = _record_problem(f".{attr} after forward", record)
            if problem:
                parts.append(Comparison(self.exercise, False, f"✗ {name}: {problem}"))
                continue
            scale = float(np.abs(new).max()) + float(np.abs(old).max())
            result = compare(name, _value(record), new, rtol=1e-8, atol=1e-12 * scale)
            got = array_or_none(_value(record))
            hint = None
            if not result.ok and got is not None and got.shape == new.shape:
                tol = dict(rtol=1e-7, atol=1e-12 * scale)
                if not training:
                    if not matches(got, old, **tol):
                        hint = "the running statistics changed in eval mode; only training mode updates them"
                else:
                    mean = X.mean(axis=0)
                    var = X.var(axis=0)
                    batch = mean if attr == "running_mean" else var * N / max(N - 1, 1)
                    m = momentum
                    if matches(got, old, **tol):
                        hint = ("not updated: in training mode every forward call moves the running statistics: "
                                "new = (1 − momentum)·old + momentum·batch")
                    elif attr == "running_var" and matches(got, (1 - m) * old + m * var, **tol):
                        hint = ("updated with the biased batch variance (÷ N); PyTorch updates the running variance "
                                "with the unbiased one, var · N/(N − 1), although it normalizes with the biased one")
                    elif matches(got, m * old + (1 - m) * batch, **tol):
                        hint = "momentum applied the other way round: new = (1 − momentum)·old + momentum·batch"
                    elif matches(got, batch, **tol):
                        hint = "replaced by the batch statistics; blend them: (1 − momentum)·old + momentum·batch"
                    elif attr == "running_var" and matches(got, (1 - m) * old + m * np.sqrt(batch), **tol):
                        hint = "updated with the standard deviation; the running variance blends in the variance"
                    elif matches(got, 0.9 * old + 0.1 * batch, **tol) and m != 0.1:
                        hint = f"momentum 0.1 was used; this layer was built with momentum = {m}"
            parts.append(with_hint(result, hint))
        return parts

    # -- backward

    def _gradients(self, case, step, X, dY, gamma, eps, dX, dgamma, dbeta, count, previous) -> list[Comparison]:
        base = f"{self.exercise} [{case.label}]"
        several = sum(1 for method, _ in case.kwargs["steps"] if method == "backward") > 1
        suffix = f" (backward call {count})" if several else ""
        axis = 0 if self.layer == "bn" else 1
        parts = []
        with np.errstate(all="ignore"):  # the size of dY·γ/σ: dX can cancel to ~0 (D = 1 in LayerNorm)
            sigma = _normalize(X, axis, eps)[1]
            scale_x = float(np.abs(dY * gamma / sigma).max()) if dX.size else 0.0
        result = compare(f"{base} dX{suffix}", _value(step["call"]), dX, rtol=1e-7, atol=1e-9 * scale_x)
        got = array_or_none(_value(step["call"]))
        if not result.ok and got is not None and got.shape == dX.shape:
            tol = dict(rtol=1e-6, atol=1e-8 * scale_x)
            for candidate, text in _norm_backward_variants(X, dY, gamma, eps, axis):
                if matches(got, candidate, **tol) and not matches(dX, candidate, **tol):
                    result = with_hint(result, text)
                    break
            else:
                if X.shape[1 - axis] > 1:
                    other = self._other_axis(X, dY, gamma, eps, axis)
                    if matches(got, other, **tol) and not matches(dX, other, **tol):
                        result = with_hint(result, "the means in dX run over the wrong axis: " + (
                            "over the batch (axis 0) for BatchNorm" if self.layer == "bn"
                            else "over the features (axis 1) for LayerNorm"))
        parts.append(result)
        for attr, expected in (("dgamma", dgamma), ("dbeta", dbeta)):
            record = _field(step, attr)
            problem = _record_problem(f".{attr} after backward", record)
            if problem:
                if "AttributeError" in problem:
                    problem += f" — likely cause: backward must store the gradient in self.{attr}"
                parts.append(Comparison(self.exercise, False, f"✗ {base} {attr}{suffix}: {problem}"))
                continue
            result = self._param_grad(f"{base} {attr}{suffix}", _value(record), expected, attr, X, dY)
            got = array_or_none(_value(record))
            if not result.ok and previous is not None and matches(got, expected + previous[attr], rtol=1e-7,
                                                                  atol=1e-9 * float(np.abs(expected).max())):
                result = with_hint(result, f"this is the sum of this call's and the previous call's {attr}: backward "
                                           f"sets self.{attr}, it does not add to it (+=)")
            parts.append(result)
        return parts

    @staticmethod
    def _other_axis(X, dY, gamma, eps, axis) -> np.ndarray:
        other = 1 - axis
        with np.errstate(all="ignore"):
            Xh, std = _normalize(X, other, eps)
            g = dY * gamma
            return (g - g.mean(axis=other, keepdims=True) - Xh * (g * Xh).mean(axis=other, keepdims=True)) / std

    @staticmethod
    def _param_grad(name, got_value, expected, attr, X, dY) -> Comparison:
        scale = float(np.abs(dY).sum(axis=0).max()) * (3.0 if attr == "dgamma" else 1.0) if dY.size else 0.0
        result = compare(name, got_value, expected, rtol=1e-8, atol=1e-10 * max(scale, float(np.abs(expected).max())))
        got = array_or_none(got_value)
        if result.ok or got is None:
            return result
        N = X.shape[0]
        tol = dict(rtol=1e-6, atol=1e-9 * max(scale, 1e-300))
        hint = None
        if got.shape == dY.shape and N > 1:
            hint = f"{attr} was not summed over the batch: γ and β are shared by all N samples, so sum over axis 0"
        elif got.shape == (N,) and N != X.shape[1]:
            hint = f"summed over the features (axis 1); {attr} has one entry per feature: sum over the batch, axis 0"
        elif attr == "dgamma" and matches(got, dY.sum(axis=0), **tol) and not matches(expected, dY.sum(axis=0), **tol):
            hint = "dgamma = Σ dY·x̂ over the batch: the normalized input x̂ is missing (that sum is dbeta)"
        elif attr == "dgamma" and matches(got, (dY * X).sum(axis=0), **tol):
            hint = "dgamma = Σ dY·x̂ uses the normalized input x̂, not the raw X"
        elif N > 1 and matches(got, expected / N, **tol):
            hint = f"the mean over the batch; {attr} is the sum, Σ over axis 0"
        elif matches(got, -expected, **tol) and np.any(expected != 0):
            hint = "the sign is flipped"
        return with_hint(result, hint)


def _spread_batch(rng: np.random.Generator, N: int, D: int, scale: float = 1.0, offset: float = 0.0, *,
                  per_sample: bool = False) -> np.ndarray:
    """(N, D) inputs with a centre and a spread of their own per feature (BatchNorm's statistics), or per
    sample with ``per_sample`` (LayerNorm's)."""
    size = (N, 1) if per_sample else D
    return offset + scale * (rng.uniform(-3, 3, size) + rng.uniform(0.5, 2.0, size) * rng.standard_normal((N, D)))


class BatchNormForwardCheck(_NormCheck):
    exercise = "BatchNorm1d_forward"
    layer, part = "bn", "forward"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(40_601)
        batch = functools.partial(_spread_batch, rng)

        with_constant = batch(6, 4)
        with_constant[:, 1] = 2.5
        c = self.case
        return grouped(main=[
            c("one training step (N, D) = (8, 4)", 4, [["forward", batch(8, 4)]], rng=rng),
            c("three training steps: the running statistics accumulate", 3,
              [["forward", batch(6, 3)], ["forward", batch(5, 3)], ["forward", batch(7, 3)]], rng=rng),
            c("two training steps, then .eval() and a new batch", 5,
              [["forward", batch(10, 5)], ["forward", batch(10, 5)], ["eval", None], ["forward", batch(4, 5)]], rng=rng),
            c("eval mode on a fresh layer (running mean 0, variance 1)", 3, [["eval", None], ["forward", batch(6, 3)]],
              rng=rng),
            c(".eval() then .train() again: training mode", 4,
              [["eval", None], ["train", None], ["forward", batch(5, 4)]], rng=rng),
            c("momentum = 0.3, eps = 1e-3", 3, [["forward", batch(6, 3)], ["forward", batch(6, 3)],
                                               ["eval", None], ["forward", batch(3, 3)]],
              rng=rng, options={"momentum": 0.3, "eps": 1e-3}),
            c("gamma and beta left at 1 and 0", 4, [["forward", batch(9, 4)]], rng=rng, affine=False),
            c("a batch of two (the smallest in training mode)", 3, [["forward", batch(2, 3)]], rng=rng),
        ], edge=[
            c("one feature D = 1", 1, [["forward", batch(7, 1)], ["eval", None], ["forward", batch(3, 1)]], rng=rng),
            c("batch of one in eval mode", 4, [["forward", batch(8, 4)], ["eval", None], ["forward", batch(1, 4)]],
              rng=rng),
            c("a constant column (variance 0)", 4, [["forward", with_constant]], rng=rng),
            c("large values ~1e100", 3, [["forward", batch(6, 3, scale=1e100)]], rng=rng),
            c("far from the origin (offset 1e6, spread ~1)", 3, [["forward", batch(10, 3, offset=1e6)]], rng=rng),
        ], errors=[
            c("must raise: a batch of one in training mode", 3, [["forward", batch(1, 3)]], rng=rng),
        ])


class BatchNormBackwardCheck(_NormCheck):
    exercise = "BatchNorm1d_backward"
    layer, part = "bn", "backward"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(40_701)
        r = rng.standard_normal

        batch = functools.partial(_spread_batch, rng)

        with_constant = batch(6, 4)
        with_constant[:, 2] = -1.25
        c = self.case
        return grouped(main=[
            c("(N, D) = (8, 4)", 4, [["forward", batch(8, 4)], ["backward", r((8, 4))]], rng=rng),
            c("(N, D) = (5, 7)", 7, [["forward", batch(5, 7)], ["backward", r((5, 7))]], rng=rng),
            c("(N, D) = (30, 3)", 3, [["forward", batch(30, 3)], ["backward", r((30, 3))]], rng=rng),
            c("gamma and beta left at 1 and 0", 4, [["forward", batch(6, 4)], ["backward", r((6, 4))]],
              rng=rng, affine=False),
            c("two forward calls, then backward: the latest batch counts", 3,
              [["forward", batch(6, 3)], ["forward", batch(6, 3)], ["backward", r((6, 3))]], rng=rng),
            c("backward twice: the gradients are set, not added up", 3,
              [["forward", batch(5, 3)], ["backward", r((5, 3))], ["backward", r((5, 3))]], rng=rng),
            c("eps = 1e-3", 3, [["forward", batch(6, 3, scale=0.05)], ["backward", r((6, 3))]], rng=rng,
              options={"eps": 1e-3}),
        ], edge=[
            c("a batch of two", 3, [["forward", batch(2, 3)], ["backward", r((2, 3))]], rng=rng),
            c("one feature D = 1", 1, [["forward", batch(7, 1)], ["backward", r((7, 1))]], rng=rng),
            c("a constant column (variance 0)", 4, [["forward", with_constant], ["backward", r((6, 4))]], rng=rng),
            c("large values ~1e100", 3, [["forward", batch(6, 3, scale=1e100)], ["backward", r((6, 3))]], rng=rng),
            c("far from the origin (offset 1e6, spread ~1)", 3,
              [["forward", batch(10, 3, offset=1e6)], ["backward", r((10, 3))]], rng=rng),
        ])


class LayerNormForwardCheck(_NormCheck):
    exercise = "LayerNorm_forward"
    layer, part = "ln", "forward"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(40_801)
        batch = functools.partial(_spread_batch, rng, per_sample=True)

        with_constant = batch(5, 4)
        with_constant[2] = 3.5
        c = self.case
        return grouped(main=[
            c("(N, D) = (6, 5)", 5, [["forward", batch(6, 5)]], rng=rng),
            c("(N, D) = (3, 8)", 8, [["forward", batch(3, 8)]], rng=rng),
            c("a square batch N = D = 4", 4, [["forward", batch(4, 4)]], rng=rng),
            c("two forward calls", 3, [["forward", batch(5, 3)], ["forward", batch(7, 3)]], rng=rng),
            c("gamma and beta left at 1 and 0", 6, [["forward", batch(4, 6)]], rng=rng, affine=False),
            c("eps = 1e-3", 4, [["forward", batch(5, 4, scale=0.05)]], rng=rng, options={"eps": 1e-3}),
        ], edge=[
            c("batch of one (1, D)", 5, [["forward", batch(1, 5)]], rng=rng),
            c("one feature D = 1 (every row is constant)", 1, [["forward", batch(6, 1)]], rng=rng),
            c("a constant row (variance 0)", 4, [["forward", with_constant]], rng=rng),
            c("large values ~1e100", 4, [["forward", batch(5, 4, scale=1e100)]], rng=rng),
            c("far from the origin (offset 1e6, spread ~1)", 6, [["forward", batch(4, 6, offset=1e6)]], rng=rng),
        ])


class LayerNormBackwardCheck(_NormCheck):
    exercise = "LayerNorm_backward"
    layer, part = "ln", "backward"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(40_901)
        r = rng.standard_normal

        batch = functools.partial(_spread_batch, rng, per_sample=True)

        with_constant = batch(5, 4)
        with_constant[1] = -0.75
        c = self.case
        return grouped(main=[
            c("(N, D) = (6, 5)", 5, [["forward", batch(6, 5)], ["backward", r((6, 5))]], rng=rng),
            c("(N, D) = (3, 8)", 8, [["forward", batch(3, 8)], ["backward", r((3, 8))]], rng=rng),
            c("(N, D) = (20, 3)", 3, [["forward", batch(20, 3)], ["backward", r((20, 3))]], rng=rng),
            c("gamma and beta left at 1 and 0", 4, [["forward", batch(5, 4)], ["backward", r((5, 4))]], rng=rng,
              affine=False),
            c("two forward calls, then backward: the latest batch counts", 3,
              [["forward", batch(4, 3)], ["forward", batch(4, 3)], ["backward", r((4, 3))]], rng=rng),
            c("backward twice: the gradients are set, not added up", 4,
              [["forward", batch(5, 4)], ["backward", r((5, 4))], ["backward", r((5, 4))]], rng=rng),
        ], edge=[
            c("batch of one (1, D)", 5, [["forward", batch(1, 5)], ["backward", r((1, 5))]], rng=rng),
            c("one feature D = 1", 1, [["forward", batch(6, 1)], ["backward", r((6, 1))]], rng=rng),
            c("a constant row (variance 0)", 4, [["forward", with_constant], ["backward", r((5, 4))]], rng=rng),
            c("large values ~1e100", 4, [["forward", batch(5, 4, scale=1e100)], ["backward", r((5, 4))]], rng=rng),
            c("far from the origin (offset 1e6, spread ~1)", 6,
              [["forward", batch(4, 6, offset=1e6)], ["backward", r((4, 6))]], rng=rng),
        ])


CHECKS = by_exercise(
    [
        XavierNormalCheck(),
        XavierUniformCheck(),
        KaimingNormalCheck(),
        PytorchLinearInitCheck(),
        ForwardStatsCheck(),
        BatchNormForwardCheck(),
        BatchNormBackwardCheck(),
        LayerNormForwardCheck(),
        LayerNormBackwardCheck(),
    ]
)
