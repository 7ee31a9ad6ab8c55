"""Tests of the hidden checks of notebook 03 (manual backprop).

The notebook's own solutions pass every hidden check; each typical wrong
implementation fails with a diagnosis that names the mistake; the judge fails
cleanly on malformed outcomes; the probe holds no reference.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from solutions import run_visible, solution_namespace

from autograder.hidden import checks_for, run_hidden
from autograder.hidden.framework import Outcome
from course.checks import CheckFailed

NB = "03_manual_backprop"
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source" / "week1" / f"{NB}.ipynb"
CHECK_OBJECT = {"Linear_init": "Linear", "Linear_forward": "Linear", "Linear_backward": "Linear",
                "ReLU": "ReLU", "MSELoss": "MSELoss", "Sequential": "Sequential", "train_step": "train_step"}


@pytest.fixture(scope="module")
def ref() -> dict:
    return solution_namespace(NOTEBOOK)


def failure(exercise: str, obj) -> str:
    """The hidden checks' message for a wrong implementation (which must fail)."""
    with pytest.raises(CheckFailed) as info:
        run_hidden(NB, exercise, obj)
    return str(info.value)


# ----------------------------------------------------------------------------------------------
# the reference passes, the checks are well formed


@pytest.mark.parametrize("exercise", sorted(CHECK_OBJECT))
def test_judge_fails_cleanly_on_malformed_outcomes(exercise):
    check = checks_for(NB)[exercise]
    junk = [None, 3, 2.5, "text", [], [1, 2], {}, {"steps": 5}, {"steps": [None]}, {"layers": [{}]},
            {"forward": {"kind": "returned"}, "backward": 7}, {"returned": {"kind": "bogus"}},
            {"layers_type": "list", "layers_order": "x", "log": 4, "n_forward_log": "a"},
            np.zeros(3), {"steps": [{"call": {"kind": "returned", "value": np.zeros((2, 2))}}] * 3}]
    outcomes = [Outcome("returned", value=v) for v in junk]
    outcomes += [Outcome("raised", error="ValueError", message="boom"),
                 Outcome("unsupported", message="returned an object of type Foo"), Outcome("weird")]
    for case in check.cases():
        for outcome in outcomes:
            result = check.judge(case, outcome)
            assert result.ok is False, (case.label, outcome)
            assert isinstance(result.message, str) and result.message


def test_probe_module_holds_no_reference():
    text = (ROOT / "autograder" / "probe" / "nb03.py").read_text()
    assert "torch" not in text
    assert not re.search(r"default_rng\(\s*\d", text), "no seeds in the probe"
    for forbidden in (" @ ", ".T", ".sum(", "mean(", "reversed(", "maximum(", "np.where", " > 0", "lr *", "- lr"):
        assert forbidden not in text, forbidden
    imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", text, re.MULTILINE)
    assert set(imports) <= {"__future__", "typing", "numpy", ".core"}, imports


# ----------------------------------------------------------------------------------------------
# Linear


def make_linear(ref, *, init=None, forward=None, backward=None):
    """A Linear class with one method replaced by a wrong one."""
    base = ref["Linear"]
    body = {}
    if init:
        body["__init__"] = init
    if forward:
        body["forward"] = forward
    if backward:
        body["backward"] = backward
    return type("Linear", (base,), body)


def test_linear_kaiming_normal_init_is_diagnosed(ref):
    def init(self, D, H, rng):
        self.W = rng.normal(0.0, np.sqrt(2.0 / D), size=(H, D))
        self.b = np.zeros(H)

    assert "Kaiming-normal" in failure("Linear_init", make_linear(ref, init=init))


def test_linear_global_random_state_is_diagnosed(ref):
    def init(self, D, H, rng):
        bound = 1 / np.sqrt(D)
        self.W = np.random.uniform(-bound, bound, size=(H, D))
        self.b = np.random.uniform(-bound, bound, size=H)

    assert "global np.random state" in failure("Linear_init", make_linear(ref, init=init))


def test_linear_in_out_layout_is_diagnosed(ref):
    def init(self, D, H, rng):
        bound = 1 / np.sqrt(D)
        self.W = rng.uniform(-bound, bound, size=(D, H))
        self.b = rng.uniform(-bound, bound, size=H)

    assert "W stored (in, out)" in failure("Linear_init", make_linear(ref, init=init))


def test_linear_bound_from_out_features_is_diagnosed(ref):
    def init(self, D, H, rng):
        bound = 1 / np.sqrt(H)
        self.W = rng.uniform(-bound, bound, size=(H, D))
        self.b = rng.uniform(-bound, bound, size=H)

    assert "out_features" in failure("Linear_init", make_linear(ref, init=init))


def test_linear_zero_init_is_diagnosed(ref):
    def init(self, D, H, rng):
        self.W, self.b = np.zeros((H, D)), np.zeros(H)

    assert "symmetry" in failure("Linear_init", make_linear(ref, init=init))


def test_linear_forward_untransposed_is_diagnosed(ref):
    def forward(self, X):
        self.X = X
        return X @ self.W + self.b

    message = failure("Linear_forward", make_linear(ref, forward=forward))
    assert "X @ W + b" in message and "W.T" in message


def test_linear_forward_without_bias_is_diagnosed(ref):
    def forward(self, X):
        self.X = X
        return X @ self.W.T

    assert "bias b is missing" in failure("Linear_forward", make_linear(ref, forward=forward))


def _backward(dX=None, dW=None, db=None):
    def backward(self, dY):
        self.dW = dY.T @ self.X if dW is None else dW(self, dY)
        self.db = dY.sum(axis=0) if db is None else db(self, dY)
        return dY @ self.W if dX is None else dX(self, dY)

    return backward


def test_linear_transposed_dw_is_diagnosed(ref):
    cls = make_linear(ref, backward=_backward(dW=lambda s, dY: s.X.T @ dY))
    message = failure("Linear_backward", cls)
    assert "X.T @ dY" in message and "dW = dY.T @ X" in message


def test_linear_db_not_summed_is_diagnosed(ref):
    cls = make_linear(ref, backward=_backward(db=lambda s, dY: dY))
    assert "not summed over the batch" in failure("Linear_backward", cls)


def test_linear_db_mean_is_diagnosed(ref):
    cls = make_linear(ref, backward=_backward(db=lambda s, dY: dY.mean(axis=0)))
    assert "db is the mean over the batch" in failure("Linear_backward", cls)


def test_linear_dx_with_w_transposed_is_diagnosed(ref):
    cls = make_linear(ref, backward=_backward(dX=lambda s, dY: dY @ s.W.T))
    message = failure("Linear_backward", cls)
    assert "this is dY @ W.T" in message  # the square case
    assert "dX = dY @ W is (N, H) @ (H, D)" in message  # the others raise, with the shapes to use


def test_linear_dw_divided_by_n_is_diagnosed(ref):
    cls = make_linear(ref, backward=_backward(dW=lambda s, dY: dY.T @ s.X / len(dY)))
    assert "divided by the batch size N" in failure("Linear_backward", cls)


def test_linear_accumulating_gradients_fail(ref):
    def backward(self, dY):
        self.dW = self.dW + dY.T @ self.X
        self.db = self.db + dY.sum(axis=0)
        return dY @ self.W

    message = failure("Linear_backward", make_linear(ref, backward=backward))
    assert "backward twice" in message and "backward call 2" in message
    assert "not add to it (+=)" in message


def test_linear_backward_that_updates_w_fails(ref):
    def backward(self, dY):
        dX = dY @ self.W
        self.dW, self.db = dY.T @ self.X, dY.sum(axis=0)
        self.W = self.W - 0.1 * self.dW
        return dX

    assert "backward changed .W" in failure("Linear_backward", make_linear(ref, backward=backward))


# ----------------------------------------------------------------------------------------------
# ReLU


def make_relu(backward_mask):
    class WrongReLU:
        def forward(self, X):
            self.X = X
            return np.maximum(X, 0.0)

        def backward(self, dY):
            return backward_mask(self.X, dY)

    return WrongReLU


def test_relu_gradient_one_at_zero_is_diagnosed():
    assert "gradient 1 at x = 0" in failure("ReLU", make_relu(lambda X, dY: dY * (X >= 0)))


def test_relu_mask_from_gradient_sign_is_diagnosed():
    assert "sign of the incoming gradient" in failure("ReLU", make_relu(lambda X, dY: dY * (dY > 0)))


def test_relu_mask_from_output_ge_zero_is_diagnosed():
    message = failure("ReLU", make_relu(lambda X, dY: dY * (np.maximum(X, 0.0) >= 0)))
    assert "no mask applied" in message and "Y >= 0" in message


def test_relu_times_output_is_diagnosed():
    assert "multiplied by the output values" in failure("ReLU", make_relu(lambda X, dY: dY * np.maximum(X, 0.0)))


def test_relu_mask_from_output_gt_zero_passes():
    class OutputMask:
        def forward(self, X):
            self.Y = np.maximum(X, 0.0)
            return self.Y

        def backward(self, dY):
            return dY * (self.Y > 0)

    run_hidden(NB, "ReLU", OutputMask)


# ----------------------------------------------------------------------------------------------
# MSELoss


def make_mse(grad, value=lambda d: float(np.mean(d ** 2))):
    class WrongMSE:
        def forward(self, y_pred, y_true):
            if y_pred.shape != y_true.shape:
                raise ValueError("shapes differ")
            self.d = y_pred - y_true
            return value(self.d)

        def backward(self):
            return grad(self.d)

    return WrongMSE


def test_mse_two_over_n_is_diagnosed():
    message = failure("MSELoss", make_mse(lambda d: 2.0 * d / d.shape[0]))
    assert "2/N" in message and "2/(N M)" in message


def test_mse_missing_factor_two_is_diagnosed():
    assert "factor 2" in failure("MSELoss", make_mse(lambda d: d / d.size))


def test_mse_returning_an_array_is_rejected():
    message = failure("MSELoss", make_mse(lambda d: 2 * d / d.size, value=lambda d: np.mean(d ** 2, keepdims=True)))
    assert "return a Python float" in message


def test_mse_sign_flip_is_diagnosed():
    assert "sign is flipped" in failure("MSELoss", make_mse(lambda d: -2 * d / d.size))


def test_mse_without_shape_check_is_diagnosed():
    class Broadcasting:
        def forward(self, y_pred, y_true):
            self.d = y_pred - y_true
            return float(np.mean(self.d ** 2))

        def backward(self):
            return 2 * self.d / self.d.size

    assert "broadcasts silently" in failure("MSELoss", Broadcasting)


# ----------------------------------------------------------------------------------------------
# Sequential


class _Seq:
    def __init__(self, *layers):
        self.layers = list(layers)


def test_sequential_backward_in_forward_order_is_diagnosed(ref):
    class ForwardOrder(ref["Sequential"]):
        def backward(self, dY):
            for layer in self.layers:
                dY = layer.backward(dY)
            return dY

    assert "reverse order" in failure("Sequential", ForwardOrder)


def test_sequential_same_input_to_every_layer_is_diagnosed(ref):
    class SameInput(ref["Sequential"]):
        def forward(self, X):
            out = X
            for layer in self.layers:
                out = layer.forward(X)
            return out

    assert "every layer got the same X" in failure("Sequential", SameInput)


def test_sequential_tuple_layers_is_diagnosed(ref):
    class TupleLayers(ref["Sequential"]):
        def __init__(self, *layers):
            self.layers = layers

    assert "not a list" in failure("Sequential", TupleLayers)


# ----------------------------------------------------------------------------------------------
# train_step


def _train_step(*, update_before=False, return_after=False, forget_b=False, every_layer=False, plus=False,
                use_hasattr=False):
    def train_step(model, loss_fn, X, y, lr):
        y_pred = model.forward(X)
        loss = loss_fn.forward(y_pred, y)
        layers = [layer for layer in model.layers
                  if every_layer or (hasattr(layer, "W") if use_hasattr else isinstance(layer, Linear))]
        sign = 1.0 if plus else -1.0
        if update_before:
            for layer in layers:
                layer.W = layer.W + sign * lr * layer.dW
                layer.b = layer.b + sign * lr * layer.db
        model.backward(loss_fn.backward())
        if not update_before:
            for layer in layers:
                layer.W = layer.W + sign * lr * layer.dW
                if not forget_b:
                    layer.b = layer.b + sign * lr * layer.db
        if return_after:
            return float(loss_fn.forward(model.forward(X), y))
        return float(loss)

    return train_step


@pytest.fixture()
def train_step_factory(ref):
    """Build train_step variants whose globals hold the notebook's Linear, as a student's would."""
    def build(**kw):
        fn = _train_step(**kw)
        namespace = {"Linear": ref["Linear"], "ReLU": ref["ReLU"], "np": np}
        return type(fn)(fn.__code__, namespace, "train_step", None, fn.__closure__)

    return build


def _with_globals(fn, **names):
    """fn as if defined in a notebook whose namespace holds ``names``."""
    return type(fn)(fn.__code__, {"np": np, **names}, fn.__name__, None, fn.__closure__)


def test_train_step_written_with_type_is_or_not_isinstance_relu_gets_full_marks(ref):
    """Correct code in another style: the layers are the student's own classes, not subclasses or stand-ins."""
    def by_type(model, loss_fn, X, y, lr):
        loss = loss_fn.forward(model.forward(X), y)
        model.backward(loss_fn.backward())
        for layer in model.layers:
            if type(layer) is Linear:  # noqa: F821 - from the notebook's namespace
                layer.W = layer.W - lr * layer.dW
                layer.b = layer.b - lr * layer.db
        return float(loss)

    def not_relu(model, loss_fn, X, y, lr):
        loss = loss_fn.forward(model.forward(X), y)
        model.backward(loss_fn.backward())
        for layer in model.layers:
            if not isinstance(layer, ReLU):  # noqa: F821
                layer.W -= lr * layer.dW
                layer.b -= lr * layer.db
        return np.array(loss)  # a 0-d array is a number too (the docstring's contract)

    for fn in (by_type, not_relu):
        run_hidden(NB, "train_step", _with_globals(fn, Linear=ref["Linear"], ReLU=ref["ReLU"]))


def test_train_step_is_fair_to_a_linear_with_read_only_gradient_properties(ref):
    class Linear:
        """A correct Linear, written differently: gradients behind read-only properties."""

        def __init__(self, in_features, out_features, rng):
            bound = in_features ** -0.5
            self.W = rng.uniform(-bound, bound, (out_features, in_features))
            self.b = rng.uniform(-bound, bound, out_features)
            self._grads = (np.zeros_like(self.W), np.zeros_like(self.b))

        dW = property(lambda self: self._grads[0])
        db = property(lambda self: self._grads[1])

        def forward(self, X):
            self._X = X
            return np.einsum("nd,hd->nh", X, self.W) + self.b

        def backward(self, dY):
            self._grads = (np.einsum("nh,nd->hd", dY, self._X), dY.sum(axis=0))
            return dY @ self.W

    run_hidden(NB, "train_step", _with_globals(ref["train_step"], Linear=Linear, ReLU=ref["ReLU"]))


def test_train_step_is_judged_apart_from_a_broken_linear(ref):
    """With a Linear whose backward raises, train_step runs on stand-ins and a correct one still passes."""
    class Linear(ref["Linear"]):
        def backward(self, dY):
            raise NotImplementedError("Linear.backward: replace this line")

    run_hidden(NB, "train_step", _with_globals(ref["train_step"], Linear=Linear, ReLU=ref["ReLU"]))


def test_train_step_that_updates_nothing_is_not_told_it_forgot_the_bias(ref):
    def lazy(model, loss_fn, X, y, lr):
        loss = loss_fn.forward(model.forward(X), y)
        model.backward(loss_fn.backward())
        return float(loss)

    message = failure("train_step", _with_globals(lazy, Linear=ref["Linear"], ReLU=ref["ReLU"]))
    assert "W was not updated" in message and "bias was forgotten" not in message


def test_train_step_returned_loss_names_its_label_once(ref):
    def wrong_loss(model, loss_fn, X, y, lr):
        ref["train_step"](model, loss_fn, X, y, lr)
        return 12345.0

    message = failure("train_step", _with_globals(wrong_loss, Linear=ref["Linear"], ReLU=ref["ReLU"]))
    line = next(m for m in message.splitlines() if "returned loss" in m)
    assert line.count("train_step [") == 1, line


def test_train_step_hasattr_style_passes(train_step_factory):
    run_hidden(NB, "train_step", train_step_factory(use_hasattr=True))


def test_train_step_returning_the_loss_after_the_step_is_diagnosed(train_step_factory):
    assert "loss computed after the update" in failure("train_step", train_step_factory(return_after=True))


def test_train_step_forgetting_b_is_diagnosed(train_step_factory):
    assert "bias was forgotten" in failure("train_step", train_step_factory(forget_b=True))


def test_train_step_updating_before_backward_is_diagnosed(train_step_factory):
    assert "before model.backward" in failure("train_step", train_step_factory(update_before=True))


def test_train_step_gradient_ascent_is_diagnosed(train_step_factory):
    assert "moved up the gradient" in failure("train_step", train_step_factory(plus=True))


def test_train_step_updating_every_layer_is_diagnosed(train_step_factory):
    assert "update only the Linear layers" in failure("train_step", train_step_factory(every_layer=True))


def test_train_step_with_swapped_loss_arguments_is_diagnosed(ref):
    Linear = ref["Linear"]

    def train_step(model, loss_fn, X, y, lr):
        loss = loss_fn.forward(y, model.forward(X))
        model.backward(loss_fn.backward())
        for layer in model.layers:
            if isinstance(layer, Linear):
                layer.W = layer.W - lr * layer.dW
                layer.b = layer.b - lr * layer.db
        return float(loss)

    assert "the order is loss_fn.forward(y_pred, y)" in failure("train_step", train_step)


# ----------------------------------------------------------------------------------------------
# more wrong implementations a student writes (review of the notebook from the student's side)


def test_linear_bias_left_at_zero_is_diagnosed(ref):
    def init(self, D, H, rng):
        bound = 1 / np.sqrt(D)
        self.W = rng.uniform(-bound, bound, size=(H, D))
        self.b = np.zeros(H)

    message = failure("Linear_init", make_linear(ref, init=init))
    assert "every entry of b is 0" in message and "b was not drawn" in message


def test_linear_normal_init_with_the_right_std_is_not_blamed_on_out_features(ref):
    def init(self, D, H, rng):
        bound = 1 / np.sqrt(D)
        self.W = rng.normal(0.0, bound, size=(H, D))
        self.b = rng.uniform(-bound, bound, size=H)

    message = failure("Linear_init", make_linear(ref, init=init))
    assert "a normal distribution" in message and "out_features" not in message


def test_relu_returning_the_mask_is_diagnosed():
    assert "returned the mask itself" in failure("ReLU", make_relu(lambda X, dY: 1.0 * (X > 0)))


def test_sequential_taking_a_list_is_diagnosed():
    class ListSequential:
        def __init__(self, layers):
            self.layers = list(layers)

        def forward(self, X):
            for layer in self.layers:
                X = layer.forward(X)
            return X

        def backward(self, dY):
            for layer in reversed(self.layers):
                dY = layer.backward(dY)
            return dY

    assert "def __init__(self, *layers)" in failure("Sequential", ListSequential)


def _run_visible(ref, grade_id: str, **overrides) -> str:
    """The visible part of a test cell, run on a wrong implementation: the CheckFailed message."""
    with pytest.raises(CheckFailed) as info:
        run_visible(NOTEBOOK, ref, grade_id, **overrides)
    return str(info.value)


def test_visible_cells_fail_with_a_diagnosis_not_a_bare_assert(ref):
    def zero_bias(self, D, H, rng):
        bound = 1 / np.sqrt(D)
        self.W = rng.uniform(-bound, bound, size=(H, D))
        self.b = np.zeros(H)

    def global_state(self, D, H, rng):
        bound = 1 / np.sqrt(D)
        self.W = np.random.uniform(-bound, bound, size=(H, D))
        self.b = np.random.uniform(-bound, bound, size=H)

    def small_bound(self, D, H, rng):
        self.W = rng.uniform(-1 / D, 1 / D, size=(H, D))
        self.b = rng.uniform(-1 / D, 1 / D, size=H)

    assert "draw b from U" in _run_visible(ref, "test_Linear_init", Linear=make_linear(ref, init=zero_bias))
    assert "not from np.random" in _run_visible(ref, "test_Linear_init", Linear=make_linear(ref, init=global_state))
    assert "the variance of W" in _run_visible(ref, "test_Linear_init", Linear=make_linear(ref, init=small_bound))

    class TupleLayers(ref["Sequential"]):
        def __init__(self, *layers):
            self.layers = layers

    assert "must be the list [first, second]" in _run_visible(ref, "test_Sequential", Sequential=TupleLayers)
    returns_int = lambda *args, **kw: int(ref["train_step"](*args, **kw))  # noqa: E731
    assert "the loss before the step" in _run_visible(ref, "test_train_step", train_step=returns_int)


def test_visible_linear_backward_catches_accumulating_gradients(ref):
    def backward(self, dY):
        self.dW = self.dW + dY.T @ self.X
        self.db = self.db + dY.sum(axis=0)
        return dY @ self.W

    message = _run_visible(ref, "test_Linear_backward", Linear=make_linear(ref, backward=backward))
    assert "second backward" in message and "set, not added" in message


def test_visible_train_step_catches_an_update_of_the_relu(ref):
    def train_step(model, loss_fn, X, y, lr):
        loss = loss_fn.forward(model.forward(X), y)
        model.backward(loss_fn.backward())
        for layer in model.layers:
            layer.W = layer.W - lr * layer.dW
            layer.b = layer.b - lr * layer.db
        return float(loss)

    with pytest.raises(AttributeError, match="'ReLU' object has no attribute 'W'"):
        run_visible(NOTEBOOK, ref, "test_train_step", train_step=train_step)


def test_visible_train_step_accepts_a_numpy_float(ref):
    run_visible(NOTEBOOK, ref, "test_train_step",
                train_step=lambda *args, **kw: np.float64(ref["train_step"](*args, **kw)))


def test_visible_mse_two_over_n_shows_the_factor_m(ref):
    class TwoOverN(ref["MSELoss"]):
        def backward(self):
            return 2.0 * self.diff / len(self.diff)

    assert "factor of 3, the size of axis 1" in _run_visible(ref, "test_MSELoss", MSELoss=TwoOverN)


@pytest.mark.parametrize("grade_id", ["test_Linear_forward", "test_Linear_backward", "test_ReLU", "test_Sequential"])
def test_visible_checks_pass_on_the_solution(ref, grade_id, capsys):
    run_visible(NOTEBOOK, ref, grade_id)
    assert "visible checks passed" in capsys.readouterr().out


def test_visible_sequential_catches_a_backward_in_forward_order(ref):
    class ForwardOrder(ref["Sequential"]):
        def backward(self, dY):
            for layer in self.layers:  # not reversed
                dY = layer.backward(dY)
            return dY

    message = _run_visible(ref, "test_Sequential", Sequential=ForwardOrder)
    assert "forward order" in message and "reverse order" in message


def test_visible_relu_catches_inputs_changed_in_place(ref):
    class ForwardInPlace(ref["ReLU"]):
        def forward(self, X):
            self.mask = X > 0
            X[X < 0] = 0
            return X

    class BackwardInPlace(ref["ReLU"]):
        def backward(self, dY):
            dY[~self.mask] = 0
            return dY

    assert "ReLU.forward changed its input X in place" in _run_visible(ref, "test_ReLU", ReLU=ForwardInPlace)
    assert "ReLU.backward changed its input dY in place" in _run_visible(ref, "test_ReLU", ReLU=BackwardInPlace)


def test_visible_linear_catches_inputs_changed_in_place(ref):
    def forward(self, X):
        self.X = X.copy()
        X *= 2.0  # vandalises the caller's array, returns the right values
        return self.X @ self.W.T + self.b

    def backward(self, dY):
        self.dW = dY.T @ self.X
        self.db = dY.sum(axis=0)
        dX = dY @ self.W
        dY[...] = 0.0  # right values, but the caller's dY is edited
        return dX

    assert "Linear.forward changed its input X in place" in _run_visible(
        ref, "test_Linear_forward", Linear=make_linear(ref, forward=forward))
    message = _run_visible(ref, "test_Linear_backward", Linear=make_linear(ref, backward=backward))
    assert "changed its input" in message and "in place" in message
