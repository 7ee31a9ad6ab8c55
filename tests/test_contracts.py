"""One contract per exercise: the visible test cell and the hidden check accept the same returns.

Each exercise whose result is a number, or a few numbers, is run with the solution's result
turned into a borderline form (a NumPy scalar, a 0-d array or tensor, float32, a list for a
tuple...). Whatever the verdict, stock nbgrader (which needs the visible checks) and the hardened
grader (the hidden checks only) must agree on it; and the forms the docstrings allow must pass.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
import torch

from autograder.hidden import hidden_verdict
from course.checks import CheckFailed
from notebooks import SOURCE
from solutions import run_visible, solution_namespace
from forms_nb10 import FORWARD_FORMS, LABEL_FORMS, LOSS_PAIR_FORMS

F64, F32 = torch.float64, torch.float32


def _each(convert: Callable) -> Callable:
    return lambda seq: type(seq)(convert(v) for v in seq)


#: form name -> (what it does to a returned number or sequence of numbers, must it pass?)
NUMBER_FORMS: dict[str, tuple[Callable, bool]] = {
    "Python float": (float, True),
    "np.float64": (np.float64, True),
    "0-d array": (lambda v: np.array(v, dtype=np.float64), True),
    "0-d float64 tensor": (lambda v: torch.tensor(float(v), dtype=F64), True),
    "np.float32": (np.float32, False),
    "0-d float32 tensor": (lambda v: torch.tensor(float(v), dtype=F32), False),
    "array of shape (1,)": (lambda v: np.array([v], dtype=np.float64), False),
    "str": (lambda v: str(float(v)), False),
}

SEQUENCE_FORMS: dict[str, tuple[Callable, bool]] = {
    f"{name} items": (_each(convert), passes) for name, (convert, passes) in NUMBER_FORMS.items()
}
SEQUENCE_FORMS["list for tuple"] = (list, True)
SEQUENCE_FORMS["tuple for list"] = (tuple, True)
SEQUENCE_FORMS["one array"] = (lambda seq: np.array([float(v) for v in seq]), True)

#: forward_stats returns an (L, 2) array of numbers
STATS_FORMS: dict[str, tuple[Callable, bool]] = {
    "array": (lambda a: a, True),
    "nested list": (lambda a: np.asarray(a).tolist(), True),
    "tuple of tuples": (lambda a: tuple(tuple(row) for row in np.asarray(a).tolist()), True),
    "float64 tensor": (lambda a: torch.tensor(np.asarray(a), dtype=F64), True),
    "float32 array": (lambda a: np.asarray(a, dtype=np.float32), False),
    "transposed (2, L)": (lambda a: np.asarray(a).T.copy(), False),
    "flat (2 L,)": (lambda a: np.asarray(a).reshape(-1), False),
}

#: pytorch_linear_init returns the pair (W, b)
PAIR_FORMS: dict[str, tuple[Callable, bool]] = {
    "tuple": (tuple, True),
    "list": (list, True),
    "float64 tensors": (lambda p: tuple(torch.tensor(v, dtype=F64) for v in p), True),
    "float32 arrays": (lambda p: tuple(np.asarray(v, dtype=np.float32) for v in p), True),
    "(b, W) swapped": (lambda p: (p[1], p[0]), False),
    "W alone": (lambda p: p[0], False),
    "b as a column (H, 1)": (lambda p: (p[0], np.asarray(p[1]).reshape(-1, 1)), False),
    "a dict": (lambda p: {"W": p[0], "b": p[1]}, False),
}

#: notebook 05's element-wise functions return a float64 array of the input's shape (a number for a 0-d input)
ARRAY_FORMS: dict[str, tuple[Callable, bool]] = {
    "array": (lambda a: a, True),
    "float64 tensor": (lambda a: torch.tensor(np.asarray(a), dtype=F64), True),
    "a float for a 0-d input": (lambda a: float(a) if np.ndim(a) == 0 else a, True),
    "float32 array": (lambda a: np.asarray(a, dtype=np.float32), False),
    "float32 tensor": (lambda a: torch.tensor(np.asarray(a), dtype=F32), False),
    "list": (lambda a: np.asarray(a).tolist(), False),
    "flattened": (lambda a: np.asarray(a).reshape(-1), False),
    "bool array": (lambda a: np.asarray(a) != 0, False),
}

#: collapse_linear returns the pair (W, b) of float64 arrays
COLLAPSE_FORMS = {name: form for name, form in PAIR_FORMS.items() if name != "float32 arrays"}
COLLAPSE_FORMS["float32 arrays"] = (PAIR_FORMS["float32 arrays"][0], False)

#: dead_units returns a boolean array (H,)
MASK_FORMS: dict[str, tuple[Callable, bool]] = {
    "bool array": (lambda m: m, True),
    "bool tensor": (lambda m: torch.from_numpy(np.asarray(m)), True),
    "list of bools": (lambda m: np.asarray(m).tolist(), False),
    "float array": (lambda m: np.asarray(m, dtype=np.float64), False),
    "int array": (lambda m: np.asarray(m, dtype=np.int64), False),
    "count": (lambda m: int(np.sum(m)), False),
}

#: notebook 07's dropout returns the pair (out, mask) of float64 arrays of x's shape
DROPOUT_FORMS: dict[str, tuple[Callable, bool]] = {
    "tuple": (tuple, True),
    "list": (list, True),
    "float64 tensors": (lambda p: tuple(torch.tensor(np.asarray(v), dtype=F64) for v in p), True),
    "float32 arrays": (lambda p: tuple(np.asarray(v, dtype=np.float32) for v in p), False),
    "(mask, out) swapped": (lambda p: (p[1], p[0]), False),
    "out alone": (lambda p: p[0], False),
    "bool mask": (lambda p: (p[0], np.asarray(p[1]) != 0), False),
    "a dict": (lambda p: {"out": p[0], "mask": p[1]}, False),
}

#: notebook 07's best_epoch returns an index
INDEX_FORMS: dict[str, tuple[Callable, bool]] = {
    "int": (int, True),
    "np.int64": (np.int64, True),
    "0-d int64 tensor": (lambda i: torch.tensor(int(i)), True),
    "float": (float, False),
    "array of shape (1,)": (lambda i: np.array([i]), False),
    "str": (str, False),
}

#: (notebook, exercise, test cell, name in the notebook, forms)
EXERCISES = [
    ("01_tensors_and_shapes", "sse", "test_sse", "sse", NUMBER_FORMS),
    ("01_tensors_and_shapes", "mse", "test_mse", "mse", NUMBER_FORMS),
    ("02_autograd", "leaf_and_hidden_grads", "test_leaf_and_hidden_grads", "leaf_and_hidden_grads", SEQUENCE_FORMS),
    ("02_autograd", "grad_history", "test_grad_history", "grad_history", SEQUENCE_FORMS),
    ("02_autograd", "graph_grads", "test_graph_grads", "graph_grads", SEQUENCE_FORMS),
    ("03_manual_backprop", "train_step", "test_train_step", "train_step", NUMBER_FORMS),
    ("04_init_and_normalization", "forward_stats", "test_forward_stats", "forward_stats", STATS_FORMS),
    ("04_init_and_normalization", "pytorch_linear_init", "test_pytorch_linear_init", "pytorch_linear_init",
     PAIR_FORMS),
    ("05_activations", "sigmoid", "test_sigmoid", "sigmoid", ARRAY_FORMS),
    ("05_activations", "relu_grad", "test_relu_grad", "relu_grad", ARRAY_FORMS),
    ("05_activations", "leaky_relu_grad", "test_leaky_relu_grad", "leaky_relu_grad", ARRAY_FORMS),
    ("05_activations", "gelu", "test_gelu", "gelu", ARRAY_FORMS),
    ("05_activations", "collapse_linear", "test_collapse_linear", "collapse_linear", COLLAPSE_FORMS),
    ("05_activations", "dead_units", "test_dead_units", "dead_units", MASK_FORMS),
    ("06_losses", "cross_entropy", "test_cross_entropy", "cross_entropy", NUMBER_FORMS),
    ("06_losses", "bce_with_logits", "test_bce_with_logits", "bce_with_logits", NUMBER_FORMS),
    ("06_losses", "huber", "test_huber", "huber", NUMBER_FORMS),
    ("06_losses", "softmax", "test_softmax", "softmax", ARRAY_FORMS),
    ("06_losses", "cross_entropy_grad", "test_cross_entropy_grad", "cross_entropy_grad", ARRAY_FORMS),
    ("07_regularization", "dropout", "test_dropout", "dropout", DROPOUT_FORMS),
    ("07_regularization", "dropout_backward", "test_dropout_backward", "dropout_backward", ARRAY_FORMS),
    ("07_regularization", "l2_penalty", "test_l2_penalty", "l2_penalty", NUMBER_FORMS),
    ("07_regularization", "sgd_step_weight_decay", "test_sgd_step_weight_decay", "sgd_step_weight_decay", ARRAY_FORMS),
    ("07_regularization", "l1_subgradient", "test_l1_subgradient", "l1_subgradient", ARRAY_FORMS),
    ("07_regularization", "best_epoch", "test_best_epoch", "best_epoch", INDEX_FORMS),
    ("08_optimizers", "trajectory", "test_trajectory", "trajectory", ARRAY_FORMS),
    ("09_training_loop", "train_epoch", "test_train_epoch", "train_epoch", NUMBER_FORMS),
    ("09_training_loop", "evaluate", "test_evaluate", "evaluate", SEQUENCE_FORMS),
    ("10_final_boss", "mlp_forward", "test_mlp_forward", "mlp_forward", FORWARD_FORMS),
    ("10_final_boss", "softmax_cross_entropy", "test_softmax_cross_entropy", "softmax_cross_entropy", LOSS_PAIR_FORMS),
    ("10_final_boss", "predict", "test_predict", "predict", LABEL_FORMS),
]
CASES = [(nb, ex, cell, name, form) for nb, ex, cell, name, forms in EXERCISES for form in forms]


def _wrapped(ref: dict, name: str, convert: Callable) -> Any:
    """The solution with its result converted, defined in (a copy of) the notebook's namespace, as
    a student's function would be: the probe finds the notebook's classes through its globals."""
    namespace = dict(ref) | {"_solution": ref[name], "_convert": convert}
    exec(f"def {name}(*args, **kwargs):\n    return _convert(_solution(*args, **kwargs))\n", namespace)
    return namespace[name]


def _visible_passes(path, ref: dict, cell: str, name: str, fn) -> bool:
    try:
        run_visible(path, ref, cell, **{name: fn})
    except (CheckFailed, AssertionError, TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("notebook, exercise, cell, name, form", CASES)
def test_visible_and_hidden_checks_agree_on_a_borderline_return(notebook, exercise, cell, name, form):
    forms = dict(EXERCISES_FORMS[exercise])
    convert, must_pass = forms[form]
    path = SOURCE / f"{notebook}.ipynb"
    ref = solution_namespace(path)
    fn = _wrapped(ref, name, convert)
    visible = _visible_passes(path, ref, cell, name, fn)
    hidden = hidden_verdict(notebook, exercise, fn)
    assert visible == hidden.passed, (f"{form}: visible {'passes' if visible else 'fails'}, hidden "
                                      f"{'passes' if hidden.passed else 'fails'}\n" + "\n".join(hidden.lines()))
    assert hidden.passed == must_pass, "\n".join(hidden.lines())


EXERCISES_FORMS = {ex: forms for _, ex, _, _, forms in EXERCISES}
