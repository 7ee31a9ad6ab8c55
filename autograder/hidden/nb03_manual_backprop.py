"""Hidden checks of notebook 03, manual backprop. Never shipped to students.

Each check builds its cases from fixed seeds (plain data only), names a probe in
``autograder.probe.nb03`` that runs the student's object on a case and records every call,
and judges the record against PyTorch in float64 (``F.linear``, ``torch.relu`` and
``F.mse_loss`` with autograd, ``torch.optim.SGD`` for ``train_step``). ``judge`` never runs
student code and never raises: a record of the wrong structure becomes a failed Comparison
that says what came back.

``Sequential`` and ``train_step`` are judged on stand-in layers that log their calls, apart
from the student's own Linear, ReLU and MSELoss.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from course.checks import Comparison, as_array, compare, compare_scalar, format_shape

from .framework import Case, grouped, HiddenCheck, Outcome, by_exercise, outcome_failure
from .judging import array_or_none, matches, tensor, torch_module, with_hint

NOTEBOOK = "03_manual_backprop"


# ----------------------------------------------------------------------------------------------
# helpers (judge side: they never run student code)


def _np(t) -> np.ndarray:
    return t.detach().numpy().copy()


class Malformed(Exception):
    """What came back does not have the structure the probe writes."""


def _field(d: Any, key: str) -> Any:
    if type(d) is not dict or key not in d:
        raise Malformed(f"no {key!r} in what came back")
    return d[key]


def _record_problem(what: str, record: Any) -> Optional[str]:
    """Why a recorded call or attribute holds no usable value (None when it does)."""
    if type(record) is not dict or record.get("kind") not in ("returned", "raised", "unsupported"):
        raise Malformed(f"the record of {what} is malformed")
    if record["kind"] == "raised":
        error, message = str(record.get("error", "")), str(record.get("message", ""))
        if error == "NotImplementedError":
            return f"{what}: not implemented yet"
        text = f"{what} raised {error}: {message}"
        if "cannot reshape array of size 0" in message and ("-1" in message or "newaxis" in message):
            text += (" — likely cause: on an empty batch (N = 0) reshape(N, -1) cannot work out the -1; "
                     "X is already (N, D): use it as it is (or reshape(N, D))")
        return text
    if record["kind"] == "unsupported":
        return f"{what}: {record.get('message', '')}; it must be a NumPy array or a number"
    return None


def _value(record: dict) -> Any:
    return record.get("value")


def _describe(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"an array of shape {format_shape(v.shape)}"
    if type(v) in (int, float, bool):
        return repr(v)
    if v is None:
        return "None"
    if type(v) in (list, tuple, dict):
        return f"a {type(v).__name__} of length {len(v)}"
    return type(v).__name__


def _scale_linear(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> float:
    """The size of the terms summed into one output of X W^T + b (for an absolute tolerance)."""
    if X.shape[0] == 0:
        return 0.0
    return float((np.abs(X) @ np.abs(W).T + np.abs(b)).max())


def _combine(name: str, parts: list[Comparison]) -> Comparison:
    """One Comparison for a case from the comparisons of its tensors."""
    bad = [p for p in parts if not p.ok]
    if not bad:
        return Comparison(name, True, "\n  ".join(p.message for p in parts))
    return Comparison(name, False, "\n  ".join(p.message for p in bad))


class _Check(HiddenCheck):
    """A check whose judge turns any surprise in the structure of an outcome into a failure."""

    def name(self, case: Case) -> str:
        return f"{self.exercise} [{case.label}]"

    def fail(self, case: Case, text: str) -> Comparison:
        return Comparison(self.exercise, False, f"✗ {self.name(case)}: {text}")

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        failure = outcome_failure(self.exercise, case, outcome)
        if failure is not None:
            return failure
        try:
            return self.judge_value(case, outcome.value)
        except Malformed as exc:
            return self.fail(case, f"what came back could not be read ({exc}); got {_describe(outcome.value)}")
        except Exception as exc:  # noqa: BLE001 - a judge must never raise on what came back
            return self.fail(case, f"what came back could not be read ({type(exc).__name__}); "
                                   f"got {_describe(outcome.value)}")

    def judge_value(self, case: Case, value: Any) -> Comparison:
        raise NotImplementedError


def _steps(value: Any, expected: int) -> list:
    steps = _field(value, "steps")
    if type(steps) is not list or len(steps) != expected:
        raise Malformed(f"expected {expected} recorded steps")
    return steps


# ----------------------------------------------------------------------------------------------
# Linear: initialisation


class LinearInitCheck(_Check):
    exercise = "Linear_init"
    probe = "nb03.Linear_init"

    def cases(self) -> list[Case]:
        def case(label: str, aspect: str, *layers: tuple) -> Case:
            return Case(label, kwargs={"aspect": aspect, "layers": [list(layer) for layer in layers]})

        return [
            case("Linear(5, 3): shapes of W and b", "shapes", (5, 3, 30_101)),
            case("Linear(1, 1)", "shapes", (1, 1, 30_102)),
            case("Linear(4, 6) twice from the same seed", "same seed", (4, 6, 30_103), (4, 6, 30_103)),
            case("Linear(4, 6) from two different seeds", "other seed", (4, 6, 30_104), (4, 6, 30_105)),
            case("Linear(256, 128): the spread of W", "distribution", (256, 128, 30_106)),
            case("Linear(1000, 3): the bound 1/sqrt(in)", "bound", (1000, 3, 30_107)),
            case("Linear(2, 200): the bound depends on in, not out", "bound", (2, 200, 30_108)),
        ]

    def judge_value(self, case: Case, value: Any) -> Comparison:
        aspect = case.kwargs["aspect"]
        built = _field(value, "layers")
        if type(built) is not list or len(built) != len(case.kwargs["layers"]):
            raise Malformed("expected one record per layer built")
        arrays = []
        for (D, H, _), layer in zip(case.kwargs["layers"], built):
            for attr, shape in (("W", (H, D)), ("b", (H,))):
                record = _field(layer, attr)
                problem = _record_problem(f"Linear({D}, {H}).{attr}", record)
                if problem:
                    return self.fail(case, problem)
                got = array_or_none(_value(record))
                if got is None:
                    return self.fail(case, f".{attr} is {_describe(_value(record))}; it must be a NumPy array "
                                           f"of shape {format_shape(shape)}")
                if got.shape != shape:
                    text = f".{attr} has shape {format_shape(got.shape)}, expected {format_shape(shape)}"
                    if attr == "W" and got.shape == (D, H):
                        text += (" — likely cause: W stored (in, out); this course uses PyTorch's layout, "
                                 "W of shape (out, in) = (H, D)")
                    elif attr == "b" and got.size == H:
                        text += " — likely cause: b must be a flat (H,) vector, one number per output"
                    return self.fail(case, text)
                if not np.all(np.isfinite(got)):
                    return self.fail(case, f".{attr} holds NaN or inf")
            arrays.append((as_array("W", _value(layer["W"])), as_array("b", _value(layer["b"]))))

        (D, H, _) = case.kwargs["layers"][0]
        W, b = arrays[0]
        bound = 1.0 / math.sqrt(D)
        if W.size > 1 and np.all(W == W.flat[0]):
            return self.fail(case, "every weight is the same number — likely cause: a constant (or zero) "
                                   "initialisation; every hidden unit would then compute the same thing and get "
                                   "the same gradient (the symmetry trap): draw W from rng")
        if aspect == "same seed":
            (W2, b2) = arrays[1]
            if not (np.array_equal(W, W2) and np.array_equal(b, b2)):
                return self.fail(case, "two layers built from generators with the same seed got different "
                                       "weights — likely cause: the global np.random state was used; draw "
                                       "every number from the rng argument (e.g. rng.uniform(...))")
            return Comparison(self.exercise, True, f"✓ {self.name(case)}: same weights")
        if aspect == "other seed":
            (W2, _) = arrays[1]
            if np.array_equal(W, W2):
                return self.fail(case, "two different seeds gave the same weights — likely cause: the rng "
                                       "argument is ignored (a fixed seed inside __init__?)")
            return Comparison(self.exercise, True, f"✓ {self.name(case)}: different weights")
        for attr, values in (("W", W), ("b", b)):
            worst = float(np.abs(values).max()) if values.size else 0.0
            if worst > bound * (1 + 1e-12):
                text = (f"|{attr}| reaches {worst:.4g}, above the bound 1/sqrt(in) = 1/sqrt({D}) = {bound:.4g}")
                spread_of_out = values.size < 100 or worst >= 0.8 / math.sqrt(H)
                if H != D and worst <= 1.0 / math.sqrt(H) * (1 + 1e-12) and spread_of_out:
                    text += " — likely cause: the bound was computed from out_features; it is 1/sqrt(in_features)"
                elif attr == "W" and W.size > 100:
                    std = float(W.std())
                    text += (f" (the std of W is {std:.3g}; U(-1/sqrt(in), 1/sqrt(in)) has std "
                             f"{bound / math.sqrt(3):.3g}) — likely cause: a normal distribution (e.g. Kaiming-normal, "
                             f"std sqrt(2/in)); use PyTorch's default, rng.uniform(-1/sqrt(in), 1/sqrt(in), ...)")
                return self.fail(case, text)
        if aspect == "bound":
            worst = float(np.abs(W).max())
            if W.size >= 600 and worst < 0.9 * bound:
                return self.fail(case, f"|W| never exceeds {worst:.4g}, while U(-1/sqrt(in), 1/sqrt(in)) comes close "
                                       f"to its bound {bound:.4g} in {W.size} draws — likely cause: a smaller bound "
                                       f"than 1/sqrt(in_features)")
        if aspect == "distribution":
            var, target = float(W.var()), 1.0 / (3 * D)
            if abs(float(W.mean())) > 0.05 * bound:
                return self.fail(case, f"the weights have mean {float(W.mean()):.3g}; they should be centred on 0")
            if not 0.9 * target <= var <= 1.1 * target:
                return self.fail(case, f"the variance of W is {var:.4g}; U(-1/sqrt(in), 1/sqrt(in)) gives "
                                       f"1/(3 in) = {target:.4g}")
        if b.size > 1 and np.all(b == b.flat[0]):
            return self.fail(case, f"every entry of b is {float(b.flat[0]):.4g} — likely cause: b was not drawn; draw it "
                                   "from U(-1/sqrt(in), 1/sqrt(in)) like W (PyTorch's default for the bias too)")
        return Comparison(self.exercise, True, f"✓ {self.name(case)}: W {format_shape(W.shape)}, b {format_shape(b.shape)}")


# ----------------------------------------------------------------------------------------------
# Linear: forward and backward


def _linear_case(label: str, rng: np.random.Generator, N: int, D: int, H: int, *, x_scale: float = 1.0,
                 g_scale: float = 1.0, steps: str = "fb") -> Case:
    """A Linear case: W, b and the forward/backward steps (f = forward, b = backward)."""
    r = rng.standard_normal
    W, b = r((H, D)), r(H)
    step_list = []
    for kind in steps:
        if kind == "f":
            step_list.append(["forward", x_scale * r((N, D))])
        else:
            step_list.append(["backward", g_scale * r((N, H))])
    return Case(label, kwargs={"in_features": D, "out_features": H, "seed": int(rng.integers(2**31)),
                               "W": W, "b": b, "steps": step_list})


def _linear_reference(X: np.ndarray, W: np.ndarray, b: np.ndarray, dY: Optional[np.ndarray]):
    """(Y, dX, dW, db) from autograd in float64 (the gradients are None without dY)."""
    F = torch_module().nn.functional
    Xt, Wt, bt = tensor(X, True), tensor(W, True), tensor(b, True)
    Y = F.linear(Xt, Wt, bt)
    if dY is None:
        return _np(Y), None, None, None
    Y.backward(tensor(dY))
    return _np(Y), _np(Xt.grad), _np(Wt.grad), _np(bt.grad)


def _judge_forward(name: str, record: dict, X: np.ndarray, W: np.ndarray, b: np.ndarray) -> Comparison:
    problem = _record_problem("forward", record)
    if problem:
        if "matmul" in problem or "aligned" in problem or "mismatch" in problem:
            problem += " — likely cause: X (N, D) must meet W.T (D, H); W is stored (out, in) = (H, D)"
        return Comparison(name, False, f"✗ {name}: {problem}")
    expected = _linear_reference(X, W, b, None)[0]
    got = array_or_none(_value(record))
    result = compare(name, _value(record), expected, rtol=1e-10, atol=1e-12 * _scale_linear(X, W, b))
    hint = None
    if not result.ok and got is not None:
        if W.shape[0] == W.shape[1] and matches(got, X @ W + b):
            hint = "this is X @ W + b; W is stored (out, in) = (H, D), so use its transpose"
        elif matches(got, X @ W.T) and np.any(b != 0):
            hint = "the bias b is missing"
    return with_hint(result, hint)


class LinearForwardCheck(_Check):
    exercise = "Linear_forward"
    probe = "nb03.Linear"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(30_201)
        return grouped(main=[
            _linear_case("a batch (N, D) = (8, 5), H = 3", rng, 8, 5, 3, steps="f"),
            _linear_case("square weights H = D = 4", rng, 6, 4, 4, steps="f"),
            _linear_case("one input and one output D = H = 1", rng, 5, 1, 1, steps="f"),
            _linear_case("wide layer (N, D) = (32, 64), H = 16", rng, 32, 64, 16, steps="f"),
            _linear_case("two forward calls in a row", rng, 4, 3, 5, steps="ff"),
        ], edge=[
            _linear_case("batch of one (1, D)", rng, 1, 4, 2, steps="f"),
            _linear_case("empty batch N = 0", rng, 0, 3, 2, steps="f"),
            _linear_case("large inputs ~1e150", rng, 5, 3, 2, x_scale=1e150, steps="f"),
            _linear_case("tiny inputs ~1e-150", rng, 5, 3, 2, x_scale=1e-150, steps="f"),
        ])

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        steps = _steps(value, len(kw["steps"]))
        parts = []
        for i, ((_, X), step) in enumerate(zip(kw["steps"], steps)):
            name = f"{self.exercise} [{case.label}] Y" + (f" (call {i + 1})" if len(steps) > 1 else "")
            parts.append(_judge_forward(name, _field(step, "call"), X, kw["W"], kw["b"]))
        return _combine(self.exercise, parts)


class LinearBackwardCheck(_Check):
    exercise = "Linear_backward"
    probe = "nb03.Linear"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(30_301)
        return grouped(main=[
            _linear_case("a batch (N, D) = (8, 5), H = 3", rng, 8, 5, 3),
            _linear_case("square weights H = D = 4", rng, 6, 4, 4),
            _linear_case("one output H = 1", rng, 16, 7, 1),
            _linear_case("one input D = 1", rng, 9, 1, 3),
            _linear_case("more outputs than inputs (N, D) = (10, 2), H = 6", rng, 10, 2, 6),
            _linear_case("two forward calls, then backward: the latest input counts", rng, 6, 3, 2, steps="ffb"),
            _linear_case("backward twice: the gradients are set, not added up", rng, 5, 4, 3, steps="fbb"),
        ], edge=[
            _linear_case("batch of one (1, D)", rng, 1, 4, 2),
            _linear_case("empty batch N = 0", rng, 0, 3, 2),
            _linear_case("large gradients ~1e150", rng, 5, 3, 2, g_scale=1e150),
            _linear_case("tiny inputs and gradients ~1e-150", rng, 5, 3, 2, x_scale=1e-150, g_scale=1e-150),
        ])

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        W, b = kw["W"], kw["b"]
        steps = _steps(value, len(kw["steps"]))
        base = f"{self.exercise} [{case.label}]"
        X = None
        X_first = None
        parts: list[Comparison] = []
        backward_seen = 0
        previous_dW = previous_db = None  # the true gradients of the previous backward call
        for (method, arg), step in zip(kw["steps"], steps):
            record = _field(step, "call")
            if method == "forward":
                problem = _record_problem("forward", record)
                if problem:
                    return self.fail(case, problem + " (backward needs a working forward)")
                X_first = arg if X_first is None else X_first
                X = arg
                continue
            backward_seen += 1
            dY = arg
            _, dX_ref, dW_ref, db_ref = _linear_reference(X, W, b, dY)
            n_backward = sum(1 for m, _ in kw["steps"] if m == "backward")
            suffix = f" (backward call {backward_seen})" if n_backward > 1 else ""
            problem = _record_problem("backward", record)
            if problem:
                if "matmul" in problem or "aligned" in problem or "mismatch" in problem:
                    problem += (" — likely cause: check the shapes: dX = dY @ W is (N, H) @ (H, D), "
                                "dW = dY.T @ X is (H, N) @ (N, D)")
                return self.fail(case, problem)
            for attr in ("dW", "db"):
                p = _record_problem(f".{attr} after backward", _field(step, attr))
                if p:
                    if "AttributeError" in p:
                        p += f" — likely cause: backward must store the gradient in self.{attr}"
                    return self.fail(case, p)
            scale_w = float((np.abs(dY).T @ np.abs(X)).max()) if dY.size else 0.0
            scale_x = float((np.abs(dY) @ np.abs(W)).max()) if dY.size else 0.0
            scale_b = float(np.abs(dY).sum(axis=0).max()) if dY.size else 0.0
            parts += [
                self._dX(f"{base} dX{suffix}", _value(record), dX_ref, dY, W, scale_x),
                self._dW(f"{base} dW{suffix}", _value(step["dW"]), dW_ref, X, X_first, dY, scale_w, previous_dW),
                self._db(f"{base} db{suffix}", _value(step["db"]), db_ref, dY, scale_b, previous_db),
            ]
            previous_dW, previous_db = dW_ref, db_ref
        for attr, original in (("W", W), ("b", b)):
            record = _field(value, f"{attr}_after")
            if _record_problem(attr, record) is None and not matches(array_or_none(_value(record)), original, rtol=0.0):
                parts.append(Comparison(self.exercise, False,
                                        f"✗ {base} {attr}: backward changed .{attr} — it only computes gradients; "
                                        f"the update belongs to train_step"))
        return _combine(self.exercise, parts)

    @staticmethod
    def _dX(name, got_value, expected, dY, W, scale) -> Comparison:
        result = compare(name, got_value, expected, rtol=1e-10, atol=1e-12 * scale)
        got = array_or_none(got_value)
        hint = None
        if not result.ok and got is not None:
            if W.shape[0] == W.shape[1] and not matches(expected, dY @ W.T) and matches(got, dY @ W.T):
                hint = "this is dY @ W.T; with W stored (out, in) = (H, D), dX = dY @ W: (N, H) @ (H, D) -> (N, D)"
            elif got.shape == expected.shape[::-1] and matches(got, expected.T):
                hint = "dX is transposed: it has the shape of X, (N, D)"
        return with_hint(result, hint)

    @staticmethod
    def _dW(name, got_value, expected, X, X_first, dY, scale, previous=None) -> Comparison:
        result = compare(name, got_value, expected, rtol=1e-10, atol=1e-12 * scale)
        got = array_or_none(got_value)
        hint = None
        N = X.shape[0]
        if not result.ok and got is not None:
            if previous is not None and matches(got, expected + previous, atol=1e-12 * scale):
                hint = ("this is the sum of this call's and the previous call's dW: backward must set "
                        "self.dW = dY.T @ X, not add to it (+=)")
            elif matches(got, expected.T) and not matches(expected, expected.T):
                hint = ("this is X.T @ dY, the gradient of W stored (in, out); in PyTorch's layout "
                        "W is (out, in) = (H, D) and dW = dY.T @ X")
            elif N > 1 and matches(got, expected / N) and np.any(expected != 0):
                hint = ("dW was divided by the batch size N: dY already carries the 1/N of the mean loss, "
                        "so dW = dY.T @ X is a plain sum over the batch")
            elif X_first is not X and matches(got, dY.T @ X_first):
                hint = "dW uses the input of an earlier forward call; keep the latest input X in forward"
        return with_hint(result, hint)

    @staticmethod
    def _db(name, got_value, expected, dY, scale, previous=None) -> Comparison:
        result = compare(name, got_value, expected, rtol=1e-10, atol=1e-12 * scale)
        got = array_or_none(got_value)
        hint = None
        N = dY.shape[0]
        if not result.ok and got is not None:
            if previous is not None and matches(got, expected + previous, atol=1e-12 * scale):
                hint = ("this is the sum of this call's and the previous call's db: backward must set "
                        "self.db = dY.sum(axis=0), not add to it (+=)")
            elif got.shape == dY.shape and N > 1 and matches(got, dY):
                hint = "db was not summed over the batch: b is shared by all N samples, so db = dY.sum(axis=0)"
            elif N > 1 and matches(got, dY.mean(axis=0)) and np.any(expected != 0):
                hint = ("db is the mean over the batch; b is added to every sample, so its gradient is the sum, "
                        "dY.sum(axis=0) (dY already carries the 1/N of the mean loss)")
            elif got.shape == (N,) and matches(got, dY.sum(axis=1)):
                hint = "summed over the outputs (axis=1); sum over the batch, axis=0"
        return with_hint(result, hint)


# ----------------------------------------------------------------------------------------------
# ReLU


def _relu_steps(rng: np.random.Generator, shape: tuple, *, kind: str = "mixed", scale: float = 1.0,
                steps: str = "fb") -> list:
    out = []
    for s in steps:
        if s == "f":
            X = scale * rng.standard_normal(shape)
            if kind == "negative":
                X = -np.abs(X)
            elif kind == "positive":
                X = np.abs(X) + (scale if scale < 1 else 0.01)
            flat = X.reshape(-1)
            if kind == "mixed" and flat.size >= 4:  # exact zeros (both signs), where the gradient is 0
                flat[:: max(1, flat.size // 4)] = 0.0
                flat[1] = -0.0
            out.append(["forward", X])
        else:
            out.append(["backward", rng.standard_normal(shape)])
    return out


class ReLUCheck(_Check):
    exercise = "ReLU"
    probe = "nb03.ReLU"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(30_401)

        def case(label: str, shape: tuple, **kw) -> Case:
            return Case(label, kwargs={"steps": _relu_steps(rng, shape, **kw)})

        return grouped(main=[
            case("a batch (N, H) = (6, 5) with exact zeros", (6, 5)),
            case("a flat vector (H,)", (9,)),
            case("three axes (N, T, H) = (2, 3, 4)", (2, 3, 4)),
            case("all inputs negative (every unit dead)", (5, 3), kind="negative"),
            case("all inputs positive", (5, 3), kind="positive"),
            case("two forward calls, then backward: the latest input counts", (4, 5), steps="ffb"),
        ], edge=[
            case("batch of one (1, H)", (1, 7)),
            case("empty batch N = 0", (0, 4)),
            case("large values ~1e300", (4, 4), scale=1e300),
            case("tiny values ~1e-300", (4, 4), scale=1e-300),
        ])

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        steps = _steps(value, len(kw["steps"]))
        base = f"{self.exercise} [{case.label}]"
        torch = torch_module()
        parts: list[Comparison] = []
        X = X_first = None
        for (method, arg), step in zip(kw["steps"], steps):
            record = _field(step, "call")
            problem = _record_problem(method, record)
            if problem:
                return self.fail(case, problem)
            if method == "forward":
                X_first = arg if X_first is None else X_first
                X = arg
                expected = torch.relu(tensor(X)).numpy()
                parts.append(compare(f"{base} forward", _value(record), expected, rtol=0.0, atol=0.0))
                continue
            dY = arg
            Xt = tensor(X, True)
            torch.relu(Xt).backward(tensor(dY))
            expected = _np(Xt.grad)
            result = compare(f"{base} dX", _value(record), expected, rtol=0.0, atol=0.0)
            got = array_or_none(_value(record))
            hint = None
            if not result.ok and got is not None and got.shape == X.shape:
                if np.any(X == 0) and matches(got, dY * (X >= 0)):
                    hint = ("gradient 1 at x = 0: ReLU is not differentiable there and PyTorch uses 0; "
                            "mask with X > 0, not X >= 0")
                elif np.any(X < 0) and matches(got, dY):
                    hint = ("no mask applied (a mask from the output, Y >= 0, is true everywhere); "
                            "the mask is X > 0, taken from the forward input")
                elif matches(got, dY * (dY > 0)) or matches(got, dY * (dY >= 0)):
                    hint = ("the mask was taken from the sign of the incoming gradient dY; it must come from "
                            "the forward input, X > 0")
                elif matches(got, dY * np.maximum(X, 0.0)):
                    hint = "dY was multiplied by the output values; multiply by the 0/1 mask X > 0"
                elif X_first is not X and X_first.shape == X.shape and matches(got, dY * (X_first > 0)):
                    hint = "the mask comes from an earlier forward call; keep the latest input"
                elif matches(got, 1.0 * (X > 0)) and not matches(expected, 1.0 * (X > 0)):
                    hint = "backward returned the mask itself; multiply the incoming gradient by it: dY * (X > 0)"
                elif matches(got, -expected):
                    hint = "the sign is flipped"
            parts.append(with_hint(result, hint))
        return _combine(self.exercise, parts)


# ----------------------------------------------------------------------------------------------
# MSELoss


class MSELossCheck(_Check):
    exercise = "MSELoss"
    probe = "nb03.MSELoss"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(30_501)
        r = rng.standard_normal

        def case(label: str, y_pred, y_true) -> Case:
            return Case(label, kwargs={"y_pred": y_pred, "y_true": y_true})

        same = r((6, 2))
        return grouped(main=[
            case("a column (N, 1), N = 10", r((10, 1)), r((10, 1))),
            case("several outputs (N, C) = (8, 3)", r((8, 3)), r((8, 3))),
            case("several outputs (N, C) = (5, 4)", r((5, 4)), r((5, 4))),
            case("a flat vector (N,), N = 12", r(12), r(12)),
            case("perfect predictions (loss 0)", same.copy(), same.copy()),
        ], edge=[
            case("batch of one (1, 1)", r((1, 1)), r((1, 1))),
            case("batch of one with 5 outputs (1, 5)", r((1, 5)), r((1, 5))),
            case("large values ~1e100", 1e100 * r((4, 2)), 1e100 * r((4, 2))),
            case("tiny values ~1e-100", 1e-100 * r((4, 2)), 1e-100 * r((4, 2))),
        ], errors=[
            case("must raise: (N,) against (N, 1), N = 5", r(5), r((5, 1))),
            case("must raise: (N, 2) against (N, 1), N = 3", r((3, 2)), r((3, 1))),
        ])

    def judge_value(self, case: Case, value: Any) -> Comparison:
        y_pred, y_true = case.kwargs["y_pred"], case.kwargs["y_true"]
        base = f"{self.exercise} [{case.label}]"
        forward = _field(value, "forward")
        if y_pred.shape != y_true.shape:
            sp, st = format_shape(y_pred.shape), format_shape(y_true.shape)
            if type(forward) is dict and forward.get("kind") == "raised":
                if forward.get("error") == "ValueError":
                    return Comparison(self.exercise, True, f"✓ {base}: ValueError")
                if forward.get("error") == "NotImplementedError":
                    return self.fail(case, "forward: not implemented yet")
                return self.fail(case, f"forward raised {forward.get('error')}: {forward.get('message')}; "
                                       f"expected a ValueError because the shapes {sp} and {st} differ")
            _record_problem("forward", forward)
            return self.fail(case, f"forward returned instead of raising ValueError: y_pred {sp} and y_true {st} "
                                   f"differ, and y_pred - y_true broadcasts silently — compare the shapes first")
        problem = _record_problem("forward", forward)
        if problem:
            return self.fail(case, problem)
        F = torch_module().nn.functional
        yp = tensor(y_pred, True)
        loss = F.mse_loss(yp, tensor(y_true), reduction="mean")
        loss.backward()
        expected_loss, expected_grad = float(loss.detach()), _np(yp.grad)
        parts = [self._loss(f"{base} loss", _value(forward), expected_loss, y_true)]
        backward = _field(value, "backward")
        problem = _record_problem("backward", backward)
        if problem:
            parts.append(Comparison(self.exercise, False, f"✗ {base}: {problem}"))
        else:
            parts.append(self._grad(f"{base} grad", _value(backward), expected_grad, y_pred, y_true))
        return _combine(self.exercise, parts)

    @staticmethod
    def _loss(name: str, got: Any, expected: float, y_true: np.ndarray) -> Comparison:
        result = compare_scalar(name, got, expected, rtol=1e-10, atol=0.0)
        hint = None
        if not result.ok and type(got) is float and expected > 0:
            n, rows = y_true.size, y_true.shape[0]
            close = lambda v: math.isclose(got, v, rel_tol=1e-8)
            if n > 1 and close(expected * n):
                hint = "this is the sum of the squared errors; the mean divides it by the number of entries"
            elif rows != n and close(expected * n / rows):
                hint = f"divided by the number of rows N = {rows}; the mean is over all {n} entries"
            elif close(math.sqrt(expected)):
                hint = "a square root was taken (that is the RMSE)"
            elif close(expected / 2) or close(expected * 2):
                hint = "a factor of 2: the loss itself is the plain mean of the squared errors"
        return with_hint(result, hint)

    @staticmethod
    def _grad(name: str, got_value: Any, expected: np.ndarray, y_pred: np.ndarray, y_true: np.ndarray) -> Comparison:
        scale = 2.0 * float(np.abs(y_pred - y_true).max()) / y_pred.size if y_pred.size else 0.0
        result = compare(name, got_value, expected, rtol=1e-10, atol=1e-14 * scale)
        got = array_or_none(got_value)
        hint = None
        if not result.ok and got is not None and got.shape == expected.shape and np.any(expected != 0):
            n = y_pred.size
            rows = y_pred.shape[0]
            cols = n // rows if rows else 1
            if cols > 1 and matches(got, expected * cols):
                hint = (f"this is 2/N (y_pred - y_true) with N = {rows} rows; the mean runs over all N·M = {n} "
                        f"entries, so the gradient is 2/(N M) (y_pred - y_true)")
            elif matches(got, expected / 2):
                hint = "the factor 2 from the derivative of the square is missing: 2/(N M) (y_pred - y_true)"
            elif matches(got, -expected):
                hint = "the sign is flipped: the gradient wrt y_pred is 2/(N M) (y_pred - y_true)"
            elif n > 1 and matches(got, expected * n):
                hint = "not divided by the number of entries: 2/(N M) (y_pred - y_true)"
            elif n > 1 and matches(got, expected * n / 2):
                hint = "this is y_pred - y_true; the gradient of the mean is 2/(N M) (y_pred - y_true)"
        return with_hint(result, hint)


# ----------------------------------------------------------------------------------------------
# Sequential (judged on stand-in layers)


class SequentialCheck(_Check):
    exercise = "Sequential"
    probe = "nb03.Sequential"

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        result = super().judge(case, outcome)
        if (not result.ok and outcome.kind == "raised" and outcome.error == "TypeError"
                and any(s in outcome.message for s in ("positional argument", "not iterable"))):
            return Comparison(result.name, False, f"{result.message} — likely cause: the layers come as separate "
                                                  "arguments, Sequential(layer1, layer2, ...); take them all with "
                                                  "def __init__(self, *layers)")
        return result

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(30_601)

        def case(label: str, N: int, widths: list[int]) -> Case:
            # layer i maps widths[i] -> widths[i + 1]; every array has its own shape and values
            r = rng.standard_normal
            outs = [r((N, w)) for w in widths[1:]]
            grads = [r((N, w)) for w in widths[:-1]]
            return Case(label, kwargs={"X": r((N, widths[0])), "dY": r((N, widths[-1])),
                                       "outs": outs, "grads": grads})

        return [
            case("three layers", 4, [3, 5, 6, 2]),
            case("one layer", 3, [4, 2]),
            case("five layers", 2, [2, 3, 4, 5, 6, 7]),
            case("batch of one, two layers", 1, [3, 4, 1]),
            case("no layers at all (the identity)", 3, [4]),
        ]

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        X, dY, outs, grads = kw["X"], kw["dY"], kw["outs"], kw["grads"]
        L = len(outs)
        problems: list[str] = []
        layers_type = _field(value, "layers_type")
        order = _field(value, "layers_order")
        if layers_type != "list":
            problems.append(f".layers is a {layers_type}, not a list — likely cause: store list(layers)"
                            if layers_type == "tuple" else f".layers could not be read as a list ({layers_type})")
        elif order != list(range(L)):
            text = f".layers holds the layers in the order {order}, expected {list(range(L))}"
            if order == list(range(L))[::-1]:
                text += " — likely cause: reversed when stored; keep the order they were given in"
            problems.append(text)

        log = _field(value, "log")
        n_forward = _field(value, "n_forward_log")
        if type(log) is not list or type(n_forward) is not int:
            raise Malformed("the call log is malformed")
        forward_calls, backward_calls = log[:n_forward], log[n_forward:]
        forward = _field(value, "forward")
        problem = _record_problem("forward", forward)
        if problem:
            problems.append(problem)
        else:
            problems += self._chain("forward", forward_calls, list(range(L)), [X] + outs[:-1], X)
            final = outs[-1] if L else X
            got = array_or_none(_value(forward))
            if not matches(got, final, rtol=0.0):
                text = f"forward returned {_describe(_value(forward))}, not the output of the last layer"
                if L and got is not None and matches(got, X, rtol=0.0):
                    text += " (it returned X unchanged)"
                problems.append(text)
        backward = _field(value, "backward")
        problem = _record_problem("backward", backward)
        if problem:
            problems.append(problem)
        else:
            order_back = list(range(L))[::-1]
            inputs_back = [dY] + [grads[i] for i in order_back[:-1]]
            problems += self._chain("backward", backward_calls, order_back, inputs_back, dY)
            final = grads[0] if L else dY
            got = array_or_none(_value(backward))
            if not matches(got, final, rtol=0.0):
                text = (f"backward returned {_describe(_value(backward))}, not the gradient that the first layer's "
                        f"backward returned")
                if L > 1 and got is not None and matches(got, grads[-1], rtol=0.0):
                    text += " — likely cause: the layers were visited in forward order; go through reversed(self.layers)"
                problems.append(text)
        if problems:
            return self.fail(case, "; ".join(problems))
        return Comparison(self.exercise, True, f"✓ {self.name(case)}: {L} layers, forward and backward in order")

    @staticmethod
    def _chain(method: str, calls: list, order: list, inputs: list, first: np.ndarray) -> list[str]:
        """Problems with a forward or backward pass through the stand-in layers."""
        for call in calls:
            if type(call) is not list or len(call) != 3 or call[0] != method:
                if type(call) is list and len(call) == 3 and call[0] in ("forward", "backward"):
                    return [f"{method} called layer {call[1]}'s {call[0]}"]
                raise Malformed("the call log is malformed")
        visited = [call[1] for call in calls]
        if visited != order:
            text = f"{method} called the layers in the order {visited}, expected {order}"
            if method == "backward" and len(order) > 1 and visited == order[::-1]:
                text += " — likely cause: backward must visit the layers in reverse order: reversed(self.layers)"
            elif method == "forward" and len(order) > 1 and visited == order[::-1]:
                text += " — likely cause: forward must visit the layers in the order they were given"
            return [text]
        for k, (call, expected) in enumerate(zip(calls, inputs)):
            got = array_or_none(call[2])
            if not matches(got, expected, rtol=0.0):
                text = f"layer {call[1]}'s {method} did not receive the "
                text += ("input X" if k == 0 and method == "forward" else
                         "gradient dY" if k == 0 else
                         "previous layer's output" if method == "forward" else "next layer's gradient")
                if k > 0 and matches(got, first, rtol=0.0):
                    text += (" — likely cause: every layer got the same " + ("X" if method == "forward" else "dY") +
                             "; pass each layer's result on to the next one")
                return [text]
        return []


# ----------------------------------------------------------------------------------------------
# train_step (judged on a stand-in model, layers and loss)


class TrainStepCheck(_Check):
    exercise = "train_step"
    probe = "nb03.train_step"

    def cases(self) -> list[Case]:
        rng = np.random.default_rng(30_701)

        def case(label: str, N: int, D: int, arch: list, lr: float) -> Case:
            r = rng.standard_normal
            layers, width = [], D
            for kind, size in arch:
                if kind == "linear":
                    layers.append({"kind": "linear", "W": r((size, width)), "b": r(size),
                                   "dW": r((size, width)), "db": r(size),
                                   "stale_dW": r((size, width)), "stale_db": r(size),
                                   "out": r((N, size)), "dX": r((N, width))})
                else:
                    layers.append({"kind": "activation", "out": r((N, width)), "dX": r((N, width))})
                width = size if kind == "linear" else width
            loss0 = float(rng.uniform(0.5, 2.0))
            return Case(label, kwargs={
                "X": r((N, D)), "y": r((N, width)), "lr": lr, "layers": layers,
                "backward_order": list(range(len(layers)))[::-1],
                "y_pred": layers[-1]["out"] if layers else r((N, width)), "dX": r((N, D)),
                "dY": r((N, width)), "losses": [loss0, loss0 / 3],
            })

        return [
            case("Linear, ReLU, Linear; lr = 0.1", 6, 3, [("linear", 4), ("relu", 0), ("linear", 2)], 0.1),
            case("one Linear layer; lr = 0.5", 5, 4, [("linear", 1)], 0.5),
            case("a ReLU first, then Linear, ReLU, Linear; lr = 0.01", 4, 3,
                 [("relu", 0), ("linear", 5), ("relu", 0), ("linear", 3)], 0.01),
            case("three Linear layers; lr = 1.0", 3, 2, [("linear", 3), ("linear", 3), ("linear", 1)], 1.0),
            case("batch of one; lr = 0.05", 1, 3, [("linear", 2), ("relu", 0), ("linear", 1)], 0.05),
        ]

    @staticmethod
    def _sgd(spec: dict, lr: float, dW: np.ndarray, db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """W and b after one torch.optim.SGD step with the given gradients."""
        torch = torch_module()
        W, b = tensor(spec["W"], True), tensor(spec["b"], True)
        W.grad, b.grad = tensor(dW), tensor(db)
        torch.optim.SGD([W, b], lr=lr).step()
        return _np(W), _np(b)

    @staticmethod
    def _forward(kw: dict) -> np.ndarray:
        """The model's output on X with the case's layers, in float64 torch."""
        torch = torch_module()
        Y = tensor(kw["X"])
        for spec in kw["layers"]:
            Y = (torch.nn.functional.linear(Y, tensor(spec["W"]), tensor(spec["b"])) if spec["kind"] == "linear"
                 else torch.relu(Y))
        return _np(Y)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        lr = kw["lr"]
        base = f"{self.exercise} [{case.label}]"
        returned = _field(value, "returned")
        problem = _record_problem("train_step", returned)
        if problem:
            if "AttributeError" in problem and any(s in problem for s in ("'W'", "'dW'", "'b'", "'db'")):
                problem += (" — likely cause: a layer without parameters (ReLU) was updated; update only the "
                            "Linear layers (isinstance(layer, Linear))")
            return self.fail(case, problem)
        problems: list[str] = []

        loss0, loss1 = kw["losses"]
        got = _value(returned)
        result = compare_scalar("the returned loss", got, loss0, rtol=1e-12, atol=0.0)
        if not result.ok:
            if compare_scalar("", got, loss1, rtol=1e-12, atol=0.0).ok:
                problems.append("it returned the loss computed after the update; return the loss of the forward "
                                "pass before the step")
            else:
                problems.append(" ".join(result.message.lstrip("✗ ").split()))

        log = _field(value, "log")
        if type(log) is not list or not all(type(entry) is str for entry in log):
            raise Malformed("the call log is malformed")
        forward_at = [i for i, e in enumerate(log) if e == "model.forward" or e.endswith(".forward") and
                      e.startswith("layer")]
        loss_at = [i for i, e in enumerate(log) if e == "loss.forward"]
        loss_back_at = [i for i, e in enumerate(log) if e == "loss.backward"]
        back_at = [i for i, e in enumerate(log) if e == "model.backward" or e.endswith(".backward") and
                   e.startswith("layer")]
        if not forward_at:
            problems.append("the model's forward pass was never run (model.forward(X))")
        if not loss_at:
            problems.append("the loss was never computed (loss_fn.forward(y_pred, y))")
        elif forward_at and loss_at[0] < forward_at[0]:
            problems.append("the loss was computed before the forward pass")
        if not loss_back_at:
            problems.append("loss_fn.backward() was never called: it gives the gradient wrt y_pred")
        if not back_at:
            problems.append("model.backward(dY) was never called, so no layer computed its gradients")
        elif loss_back_at and back_at[0] < loss_back_at[0]:
            problems.append("model.backward ran before loss_fn.backward()")

        received = _field(value, "received")
        if type(received) is not dict:
            raise Malformed("the received arguments are malformed")
        own = value.get("mode") == "own"  # the student's own layers, driven from outside
        y_pred = self._forward(kw) if own else kw["y_pred"]
        args = received.get("loss.forward")
        if type(args) is list and len(args) == 2:
            a0, a1 = array_or_none(args[0]), array_or_none(args[1])
            if own and a0 is not None and a0.shape == y_pred.shape and not matches(a0, y_pred, rtol=1e-9):
                y_pred = a0  # the student's Linear computes its own output; Linear_forward judges that
            if matches(a0, kw["y"], rtol=0.0) and matches(a1, y_pred, rtol=0.0):
                problems.append("loss_fn.forward got (y, y_pred); the order is loss_fn.forward(y_pred, y)")
            elif not matches(a0, y_pred, rtol=1e-9):
                problems.append("loss_fn.forward did not get the model's prediction as its first argument")
            elif not matches(a1, kw["y"], rtol=0.0):
                problems.append("loss_fn.forward did not get the targets y as its second argument")
        if "model.forward" in received and not matches(array_or_none(received["model.forward"]), kw["X"], rtol=0.0):
            problems.append("model.forward did not get X")
        if "model.backward" in received and not matches(array_or_none(received["model.backward"]), kw["dY"], rtol=0.0):
            problems.append("model.backward did not get the gradient that loss_fn.backward() returned")

        states = _field(value, "layers")
        if type(states) is not list or len(states) != len(kw["layers"]):
            raise Malformed("expected one state per layer")
        for index, (spec, state) in enumerate(zip(kw["layers"], states)):
            parameters = _field(state, "parameters")
            if spec["kind"] != "linear":
                if parameters:
                    problems.append(f"layer {index} has no parameters, but train_step gave it {parameters}: update "
                                    f"only the Linear layers")
                continue
            grads = {"W": spec["dW"], "b": spec["db"]}
            if own:  # the gradients the student's own backward left in the layer
                for attr in ("W", "b"):
                    record = _field(state, f"d{attr}")
                    problem = _record_problem(f"layer {index}.d{attr}", record)
                    grads[attr] = array_or_none(_value(record)) if not problem else None
                    if grads[attr] is None or grads[attr].shape != spec[attr].shape:
                        problems.append(problem or f"layer {index}.d{attr} after the step is not an array shaped "
                                                   f"like {attr} {format_shape(spec[attr].shape)}")
                        grads[attr] = None
                if grads["W"] is None or grads["b"] is None:
                    continue
            W_ref, b_ref = self._sgd(spec, lr, grads["W"], grads["b"])
            w_updated = True
            for attr, ref, grad, stale in (("W", W_ref, grads["W"], spec["stale_dW"]),
                                           ("b", b_ref, grads["b"], spec["stale_db"])):
                record = _field(state, attr)
                problem = _record_problem(f"layer {index}.{attr}", record)
                if problem:
                    problems.append(problem)
                    w_updated = False
                    continue
                old = spec[attr]
                scale = float(np.abs(old).max() + lr * np.abs(grad).max())
                comparison = compare(f"layer {index}.{attr}", _value(record), ref, rtol=1e-12, atol=1e-14 * scale)
                if comparison.ok:
                    continue
                if attr == "W":
                    w_updated = False
                new = array_or_none(_value(record))
                if matches(new, old, rtol=0.0) and lr != 0:
                    text = f"layer {index}.{attr} was not updated"
                    if attr == "b" and w_updated:
                        text += " — likely cause: the bias was forgotten: b -= lr * db as well as W -= lr * dW"
                elif matches(new, old + lr * grad, rtol=1e-10):
                    text = (f"layer {index}.{attr} moved up the gradient ({attr} + lr d{attr}); gradient descent "
                            f"subtracts: {attr} - lr d{attr}")
                elif matches(new, old - lr * stale, rtol=1e-10):
                    text = (f"layer {index}.{attr} was updated with the gradient from before backward — likely "
                            f"cause: the update ran before model.backward(...); update after it")
                elif lr != 1 and matches(new, old - grad, rtol=1e-10):
                    text = f"layer {index}.{attr} moved by the whole gradient; multiply it by lr"
                else:
                    text = comparison.message.split(" ", 1)[1]
                problems.append(text)
        if value.get("layers_intact") is not True:
            problems.append("model.layers was replaced or changed; train_step only updates the layers' W and b")
        if problems:
            return self.fail(case, "; ".join(problems))
        return Comparison(self.exercise, True, f"✓ {self.name(case)}: loss {loss0:.6g}, every Linear updated")


CHECKS = by_exercise(
    [
        LinearInitCheck(),
        LinearForwardCheck(),
        LinearBackwardCheck(),
        ReLUCheck(),
        MSELossCheck(),
        SequentialCheck(),
        TrainStepCheck(),
    ]
)
