"""Correct implementations written the way other courses and books write them get full marks.

Each class below follows the contract of the notebooks' docstrings but not their code: a
micrograd-style autograd engine (operators built from a few primitives, an iterative
topological sort, properties), and CS231n-style layers (a cache dict, np.dot, hasattr and
type() tests, a list reversed in place). The checks judge what they compute, never how the code
looks, so every exercise must pass in full; where a style really breaks an edge case (CS231n's
reshape on an empty batch), the exercise keeps its main share and the feedback names the cause.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from autograder.hidden import hidden_verdict


# ----------------------------------------------------------------------------------------------
# notebook 02: a micrograd-style engine


class Scalar:
    """An autograd scalar in the style of micrograd: every op is built from add, mul, pow, exp, log."""

    __slots__ = ("data", "grad", "_prev", "_op", "_backward")

    def __init__(self, data, _children=(), _op=""):
        self.data = float(data)
        self.grad = 0.0
        self._prev = set(_children)
        self._op = _op
        self._backward = lambda: None

    @staticmethod
    def _wrap(x):
        return x if isinstance(x, Scalar) else Scalar(x)

    def __add__(self, other):
        other = self._wrap(other)
        out = Scalar(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = self._wrap(other)
        out = Scalar(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, other):
        if not isinstance(other, Scalar):  # the power rule, for any plain number
            k = float(other)
            out = Scalar(self.data ** k, (self,), f"**{k:g}")

            def _backward():
                self.grad += (k * self.data ** (k - 1) if k != 0 else 0.0) * out.grad
            out._backward = _backward
            return out
        return (other * self.log()).exp()  # v ** w = exp(w ln v), for v > 0

    def exp(self):
        out = Scalar(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self):
        out = Scalar(math.log(self.data), (self,), "log")

        def _backward():
            self.grad += out.grad / self.data
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Scalar(t, (self,), "tanh")

        def _backward():
            self.grad += (1 - t ** 2) * out.grad
        out._backward = _backward
        return out

    def sigmoid(self):
        z = math.exp(-abs(self.data))  # never overflows
        s = 1 / (1 + z) if self.data >= 0 else z / (1 + z)
        out = Scalar(s, (self,), "sigmoid")

        def _backward():
            self.grad += s * (1 - s) * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = Scalar(max(self.data, 0.0), (self,), "ReLU")

        def _backward():
            self.grad += float(self.data > 0) * out.grad
        out._backward = _backward
        return out

    def backward(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:  # an iterative depth-first search: no recursion limit on long chains
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev if child not in seen)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

    __radd__ = __add__
    __rmul__ = __mul__

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __truediv__(self, other):
        return self * other ** -1

    def __rtruediv__(self, other):
        return other * self ** -1

    def __rpow__(self, other):
        return Scalar(other) ** self


@pytest.mark.parametrize("exercise", ["Value_arithmetic", "Value_backward", "Value_functions", "Value_accumulation"])
def test_a_micrograd_style_engine_gets_full_marks(exercise):
    verdict = hidden_verdict("02_autograd", exercise, Scalar)
    assert verdict.passed, "\n".join(verdict.lines())


# ----------------------------------------------------------------------------------------------
# notebook 03: CS231n-style layers


class Affine:
    """forward keeps a cache; gradients with np.dot; W in (out, in) as the contract says."""

    def __init__(self, in_features, out_features, rng):
        limit = 1 / math.sqrt(in_features)
        self.W = rng.uniform(low=-limit, high=limit, size=(out_features, in_features))
        self.b = rng.uniform(low=-limit, high=limit, size=(out_features,))
        self.cache = None
        self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)

    def forward(self, x):
        self.cache = x
        return np.dot(x, self.W.T) + self.b

    def backward(self, dout):
        x = self.cache
        self.dW = np.dot(dout.T, x)
        self.db = np.sum(dout, axis=0)
        return np.dot(dout, self.W)


class Rectifier:
    def forward(self, x):
        self.cache = x
        return np.maximum(0, x)

    def backward(self, dout):
        dx = np.array(dout, copy=True)
        dx[self.cache <= 0] = 0
        return dx


class SquaredError:
    def forward(self, y_pred, y_true):
        if np.shape(y_pred) != np.shape(y_true):
            raise ValueError(f"shapes {np.shape(y_pred)} and {np.shape(y_true)} differ")
        self.cache = (y_pred, y_true)
        return np.mean(np.square(y_pred - y_true))  # a NumPy float: a number too

    def backward(self):
        y_pred, y_true = self.cache
        return 2 * (y_pred - y_true) / y_pred.size


class Net:
    def __init__(self, *layers):
        self.layers = [*layers]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in self.layers[::-1]:
            dout = layer.backward(dout)
        return dout


def sgd_step(model, loss_fn, X, y, lr):
    loss = loss_fn.forward(model.forward(X), y)
    model.backward(loss_fn.backward())
    for layer in model.layers:
        if hasattr(layer, "W"):
            layer.W -= lr * layer.dW
            layer.b -= lr * layer.db
    return loss


def _in_a_notebook(fn, **names):
    """fn as a student's function: its globals are the notebook's namespace, holding its classes."""
    return type(fn)(fn.__code__, {"np": np, **names}, fn.__name__, None, fn.__closure__)


@pytest.mark.parametrize("exercise, obj", [
    ("Linear_init", Affine), ("Linear_forward", Affine), ("Linear_backward", Affine),
    ("ReLU", Rectifier), ("MSELoss", SquaredError), ("Sequential", Net),
])
def test_cs231n_style_layers_get_full_marks(exercise, obj):
    verdict = hidden_verdict("03_manual_backprop", exercise, obj)
    assert verdict.passed, "\n".join(verdict.lines())


def test_a_cs231n_style_training_step_gets_full_marks():
    step = _in_a_notebook(sgd_step, Linear=Affine, ReLU=Rectifier)
    verdict = hidden_verdict("03_manual_backprop", "train_step", step)
    assert verdict.passed, "\n".join(verdict.lines())
