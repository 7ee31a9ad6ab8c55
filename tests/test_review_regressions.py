"""Regression tests for the expert review of notebooks 01-03 (issue "fixes from an expert review"):
messages that did not help, and a judge that crashed. Each wrong implementation must fail with a
line that names its cause."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.hidden import hidden_verdict
from notebooks import SOURCE
from solutions import solution_namespace


@pytest.fixture(scope="module")
def nb02() -> dict:
    return solution_namespace(SOURCE / "02_autograd.ipynb")


@pytest.fixture(scope="module")
def nb03() -> dict:
    return solution_namespace(SOURCE / "03_manual_backprop.ipynb")


def _text(notebook: str, exercise: str, obj) -> str:
    verdict = hidden_verdict(notebook, exercise, obj)
    assert not verdict.passed
    return "\n".join(verdict.lines())


def test_a_value_kept_in_float32_is_told_so_and_shows_the_digits_that_differ(nb02):
    class Value(nb02["Value"]):
        def __init__(self, data, _prev=(), _op=""):
            super().__init__(data, _prev, _op)
            self.data = np.float32(data)  # and so every result computed from it

    text = _text("02_autograd", "Value_arithmetic", Value)
    assert "single precision (float32" in text, text
    line = next(m for m in text.splitlines() if "forward of" in m)
    expected, got = line.split("expected ", 1)[1].split(", got ")
    assert expected != got.split(" ")[0], line  # no more "expected 1.54202, got 1.54202"


def test_grad_history_in_float32_names_the_dtype():
    def grad_history(w0, xs, zero_grad):
        weight = torch.tensor(w0, requires_grad=True)  # float32, the default
        history = []
        for x in xs:
            (weight * x - 1.0).pow(2).backward()
            history.append(weight.grad.item())
            if zero_grad:
                weight.grad.zero_()
        return history

    assert "w is float32" in _text("02_autograd", "grad_history", grad_history)


def test_a_wrong_rsub_with_a_zero_constant_is_judged_not_crashed(nb02):
    class Value(nb02["Value"]):
        def __rsub__(self, other):
            return self - other  # the operands swapped

    text = _text("02_autograd", "Value_arithmetic", Value)
    assert "could not be judged" not in text and "swapped" in text or "other - self" in text, text


def test_value_zero_to_the_power_zero_has_gradient_zero(nb02):
    V = nb02["Value"]
    v = V(0.0)
    out = v ** 0
    out.backward()
    assert (out.data, v.grad) == (1.0, 0.0)


def test_a_naive_sigmoid_loses_only_the_edge_cases(nb02):
    import math

    class Value(nb02["Value"]):
        def sigmoid(self):
            s = 1.0 / (1.0 + math.exp(-self.data))  # overflows for x < -709
            out = Value(s, (self,), "sigmoid")

            def _backward():
                self.grad += s * (1.0 - s) * out.grad

            out._backward = _backward
            return out

    verdict = hidden_verdict("02_autograd", "Value_functions", Value)
    text = "\n".join(verdict.lines())
    assert verdict.fraction == pytest.approx(0.8) and "sigmoid of -800" in text and "OverflowError" in text, text


def test_a_float32_linear_at_1e150_is_told_float32_overflows(nb03):
    class Linear(nb03["Linear"]):
        def forward(self, X):
            self.X = X
            with np.errstate(over="ignore", invalid="ignore"):  # as a notebook shows them: warnings, not errors
                return X.astype(np.float32) @ self.W.T.astype(np.float32) + self.b.astype(np.float32)

    text = _text("03_manual_backprop", "Linear_forward", Linear)
    line = next(m for m in text.splitlines() if "1e150" in m)
    assert "float32 values, which overflow" in line and "unstable exp" not in line, line
