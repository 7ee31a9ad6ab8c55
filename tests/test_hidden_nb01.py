"""Tests of the hidden checks of notebook 01 (tensors and shapes).

The notebook's own solutions (the single source of truth) must pass every
hidden check, and each typical wrong implementation must fail with a diagnosis
that names the mistake.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from solutions import run_visible, solution_namespace

from autograder.hidden import run_hidden
from autograder.hidden.nb01_tensors_and_shapes import BroadcastShapeCheck
from course.checks import CheckFailed

NB = "01_tensors_and_shapes"
NOTEBOOK = Path(__file__).resolve().parents[1] / "source" / "week1" / f"{NB}.ipynb"
EXERCISES = {"broadcast_shape", "add_bias_column", "perceptron_forward", "sse", "mse",
             "linear_forward", "pairwise_sq_distances", "standardize"}


@pytest.fixture(scope="module")
def ref() -> dict:
    return solution_namespace(NOTEBOOK)


def failure(exercise: str, fn) -> str:
    """The hidden checks' message for a wrong implementation (which must fail)."""
    with pytest.raises(CheckFailed) as info:
        run_hidden(NB, exercise, fn)
    return str(info.value)


# ----------------------------------------------------------------------------------------------
# the reference passes, the checks are well formed


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_lying_objects_fail(exercise):
    class AlwaysEqual:
        def __eq__(self, other):
            return True

        def __array__(self, dtype=None, copy=None):
            return np.zeros(3)

        def __float__(self):
            return 0.0

    class GarbageArray:
        def __array__(self, dtype=None, copy=None):
            return np.full((2, 2), 7.0)

    for liar in (AlwaysEqual, GarbageArray):
        message = failure(exercise, lambda *args: liar())
        assert liar.__name__ in message


def test_student_cannot_edit_hidden_inputs(ref):
    def editing(X, W):
        out = ref["perceptron_forward"](X, W)
        X[...] = 0.0  # vandalises its own copy only
        return out

    run_hidden(NB, "perceptron_forward", editing)


# ----------------------------------------------------------------------------------------------
# broadcast_shape


def _pad(a, b):
    n = max(len(a), len(b))
    return (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)


def bs_left_aligned(a, b):
    n = max(len(a), len(b))
    pa, pb = tuple(a) + (1,) * (n - len(a)), tuple(b) + (1,) * (n - len(b))
    out = []
    for p, q in zip(pa, pb):
        if p != q and 1 not in (p, q):
            raise ValueError(f"sizes {p} and {q} clash")
        out.append(q if p == 1 else p)
    return tuple(out)


def bs_list(a, b):
    pa, pb = _pad(a, b)
    out = []
    for p, q in zip(pa, pb):
        if p != q and 1 not in (p, q):
            raise ValueError(f"sizes {p} and {q} clash")
        out.append(q if p == 1 else p)
    return out


def bs_zero_like_one(a, b):
    pa, pb = _pad(a, b)
    out = []
    for p, q in zip(pa, pb):
        if p in (0, 1):
            out.append(q)
        elif q in (0, 1):
            out.append(p)
        elif p == q:
            out.append(p)
        else:
            raise ValueError(f"sizes {p} and {q} clash")
    return tuple(out)


def bs_max(a, b):
    pa, pb = _pad(a, b)
    for p, q in zip(pa, pb):
        if p != q and 1 not in (p, q):
            raise ValueError(f"sizes {p} and {q} clash")
    return tuple(max(p, q) for p, q in zip(pa, pb))


def bs_type_error(a, b):
    pa, pb = _pad(a, b)
    for p, q in zip(pa, pb):
        if p != q and 1 not in (p, q):
            raise TypeError(f"sizes {p} and {q} clash")
    return tuple(q if p == 1 else p for p, q in zip(pa, pb))


def bs_vague_error(a, b):
    pa, pb = _pad(a, b)
    for p, q in zip(pa, pb):
        if p != q and 1 not in (p, q):
            raise ValueError("shapes do not broadcast")
    return tuple(q if p == 1 else p for p, q in zip(pa, pb))


def bs_numpy(a, b):
    return tuple(np.broadcast_shapes(a, b))


def bs_numpy_hidden_in_try(a, b):
    try:
        return tuple(np.broadcast_shapes(a, b))
    except Exception:
        raise ValueError(f"shapes {a} and {b} do not broadcast") from None


def bs_torch(a, b):
    import torch

    return tuple(torch.broadcast_shapes(a, b))


def bs_arrays(a, b):
    return (np.empty(a) + np.empty(b)).shape


def bs_widget(a, b):
    from course.widgets import broadcast_report

    result = broadcast_report(a, b)["numpy"]
    if result is None:
        raise ValueError(f"{a} and {b} clash")
    return result


def test_broadcast_left_aligned_is_diagnosed():
    assert "lined up on the left" in failure("broadcast_shape", bs_left_aligned)


def test_broadcast_list_is_rejected():
    assert "return a tuple" in failure("broadcast_shape", bs_list)


@pytest.mark.parametrize("fn", [bs_zero_like_one, bs_max])
def test_broadcast_zero_treated_like_one_is_diagnosed(fn):
    message = failure("broadcast_shape", fn)
    assert "size of 0" in message and "only 1 stretches" in message


def test_broadcast_type_error_fails():
    message = failure("broadcast_shape", bs_type_error)
    assert "raised TypeError" in message and "expected a ValueError" in message


def test_broadcast_error_must_name_the_sizes():
    assert "does not name the clashing sizes" in failure("broadcast_shape", bs_vague_error)


@pytest.mark.parametrize("fn, helper", [(bs_numpy, "numpy.broadcast_shapes"),
                                        (bs_numpy_hidden_in_try, "numpy.broadcast_shapes"),
                                        (bs_torch, "torch.broadcast_shapes"),
                                        (bs_widget, "numpy.broadcast_shapes")])
def test_broadcast_library_helpers_are_refused(fn, helper):
    message = failure("broadcast_shape", fn)
    assert f"must apply the rule itself, not call {helper}" in message


def test_broadcast_helper_imported_by_name_is_refused():
    namespace = {}
    exec("from numpy import broadcast_shapes\n"
         "def broadcast_shape(a, b):\n"
         "    return tuple(broadcast_shapes(a, b))\n", namespace)
    assert "not call numpy.broadcast_shapes" in failure("broadcast_shape", namespace["broadcast_shape"])


def test_broadcast_helpers_are_restored_after_the_check():
    import torch

    originals = (np.broadcast_shapes, np.broadcast_to, np.broadcast, np.broadcast_arrays,
                 torch.broadcast_shapes, torch.broadcast_tensors)
    failure("broadcast_shape", bs_numpy)
    assert (np.broadcast_shapes, np.broadcast_to, np.broadcast, np.broadcast_arrays,
            torch.broadcast_shapes, torch.broadcast_tensors) == originals
    assert np.broadcast_shapes((3, 1), (1, 4)) == (3, 4)


def test_broadcast_building_arrays_fails_on_huge_shapes():
    message = failure("broadcast_shape", bs_arrays)
    assert "huge sizes" in message and "shape tuples only" in message


def test_broadcast_call_step_records_forbidden_use():
    check = BroadcastShapeCheck()
    outcome = check.call(bs_numpy, check.cases()[0])
    assert outcome.kind == "raised" and outcome.error == "ForbiddenHelper"


# ----------------------------------------------------------------------------------------------
# add_bias_column


def test_bias_column_last_is_diagnosed():
    def ones_last(X):
        return np.hstack([X, np.ones((X.shape[0], 1))])

    message = failure("add_bias_column", ones_last)
    assert "column of ones is last" in message and "first" in message


def test_bias_column_of_zeros_is_diagnosed():
    def zeros_first(X):
        return np.hstack([np.zeros((X.shape[0], 1)), X])

    assert "ones, not zeros" in failure("add_bias_column", zeros_first)


def test_bias_row_instead_of_column_is_diagnosed():
    def row(X):
        return np.vstack([np.ones((1, X.shape[1])), X])

    assert "add a column" in failure("add_bias_column", row)


# ----------------------------------------------------------------------------------------------
# perceptron_forward


def _aug(X):
    return np.hstack([np.ones((X.shape[0], 1)), X])


def test_perceptron_without_relu_is_diagnosed():
    assert "ReLU is missing" in failure("perceptron_forward", lambda X, W: _aug(X) @ W.T)


def test_perceptron_untransposed_w_is_diagnosed():
    message = failure("perceptron_forward", lambda X, W: np.maximum(_aug(X) @ W, 0.0))
    assert "raised ValueError" in message and "W transposed" in message


def test_perceptron_transposed_output_is_diagnosed():
    message = failure("perceptron_forward", lambda X, W: np.maximum(W @ _aug(X).T, 0.0))
    assert "transposed" in message


def test_perceptron_missing_bias_is_diagnosed():
    assert "bias W[0, 0] is missing" in failure("perceptron_forward",
                                                lambda X, W: np.maximum(X @ W[:, 1:].T, 0.0))


def test_perceptron_bias_taken_last_is_diagnosed():
    message = failure("perceptron_forward", lambda X, W: np.maximum(X @ W[:, :-1].T + W[0, -1], 0.0))
    assert "last entry of W" in message


def test_perceptron_flat_output_is_diagnosed():
    message = failure("perceptron_forward", lambda X, W: np.maximum(_aug(X) @ W[0], 0.0))
    assert "(N, 1)" not in message or "reshape" in message
    assert "keepdims" in message or "reshape" in message


# ----------------------------------------------------------------------------------------------
# sse and mse


def _check_shapes(a, b):
    if a.shape != b.shape:
        raise ValueError("shapes differ")


def test_sse_that_averages_is_diagnosed():
    def sse_mean(a, b):
        _check_shapes(a, b)
        return float(np.mean((a - b) ** 2))

    assert "this is the mean; sse is the sum" in failure("sse", sse_mean)


def test_mse_that_sums_is_diagnosed():
    def mse_sum(a, b):
        _check_shapes(a, b)
        return float(np.sum((a - b) ** 2))

    assert "this is the sum; mse divides" in failure("mse", mse_sum)


def test_mse_over_rows_only_is_diagnosed():
    def mse_rows(a, b):
        _check_shapes(a, b)
        return float(np.sum((a - b) ** 2) / a.shape[0])

    assert "number of rows" in failure("mse", mse_rows)


@pytest.mark.parametrize("exercise, reduce", [("mse", np.mean), ("sse", np.sum)])
def test_silent_broadcast_is_diagnosed(exercise, reduce):
    def silent(a, b):
        return float(reduce((a - b) ** 2))

    message = failure(exercise, silent)
    assert "(N,) against (N, 1)" in message
    assert "instead of raising ValueError" in message and "broadcasts silently" in message


def test_mse_returning_an_array_is_rejected():
    def mse_array(a, b):
        _check_shapes(a, b)
        return np.mean((a - b) ** 2, keepdims=True)

    assert "return a Python float" in failure("mse", mse_array)


def test_sse_with_wrong_error_type_fails():
    def sse_type_error(a, b):
        if a.shape != b.shape:
            raise TypeError("shapes differ")
        return float(np.sum((a - b) ** 2))

    message = failure("sse", sse_type_error)
    assert "raised TypeError" in message and "expected a ValueError" in message


# ----------------------------------------------------------------------------------------------
# linear_forward


def test_linear_untransposed_w_is_diagnosed():
    message = failure("linear_forward", lambda x, W, b: x @ W + b)
    assert "x @ W + b" in message  # the square case is caught by its values
    assert "must meet W.T (D, H)" in message  # the others raise, with a hint on the orientation


def test_linear_without_bias_is_diagnosed():
    assert "bias b is missing" in failure("linear_forward", lambda x, W, b: x @ W.T)


def test_linear_only_2d_fails_on_leading_axes():
    message = failure("linear_forward", lambda x, W, b: np.einsum("nd,hd->nh", x, W) + b)
    assert "keep every leading axis" in message
    assert "sequences (N, T, D)" in message and "no batch axis" in message


def test_linear_flattening_leading_axes_fails():
    message = failure("linear_forward", lambda x, W, b: np.atleast_2d(x).reshape(-1, x.shape[-1]) @ W.T + b)
    assert "sequences (N, T, D)" in message and "keep every leading axis" in message


# ----------------------------------------------------------------------------------------------
# pairwise_sq_distances


def test_pairwise_missing_factor_two_is_diagnosed():
    def no_two(A, B):
        return (A * A).sum(1)[:, None] - A @ B.T + (B * B).sum(1)[None, :]

    assert "cross term needs a factor 2" in failure("pairwise_sq_distances", no_two)


def test_pairwise_transposed_is_diagnosed(ref):
    message = failure("pairwise_sq_distances", lambda A, B: ref["pairwise_sq_distances"](A, B).T)
    assert "transposed" in message


def test_pairwise_not_squared_is_diagnosed(ref):
    message = failure("pairwise_sq_distances", lambda A, B: np.sqrt(ref["pairwise_sq_distances"](A, B)))
    assert "no square root" in message


def test_pairwise_broadcast_version_passes():
    run_hidden(NB, "pairwise_sq_distances", lambda A, B: ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1))


def test_pairwise_unclipped_expansion_passes():
    def unclipped(A, B):
        return (A * A).sum(1)[:, None] - 2 * A @ B.T + (B * B).sum(1)[None, :]

    run_hidden(NB, "pairwise_sq_distances", unclipped)


# ----------------------------------------------------------------------------------------------
# standardize


def _safe(std):
    return np.where(std > 0, std, 1.0)


def std_rows(X):
    return (X - X.mean(axis=1, keepdims=True)) / _safe(X.std(axis=1, keepdims=True))


def std_rows_flat(X):
    return (X - X.mean(axis=1)) / _safe(X.std(axis=1))


def std_global(X):
    return (X - X.mean()) / _safe(X.std())


def std_ddof1(X):
    return (X - X.mean(axis=0)) / _safe(X.std(axis=0, ddof=1))


def std_torch_default(X):
    import torch

    Xt = torch.from_numpy(X)
    return (Xt - Xt.mean(dim=0)) / Xt.std(dim=0)  # unbiased (N - 1) by default


def std_not_centred(X):
    return X / _safe(X.std(axis=0))


def std_not_scaled(X):
    return X - X.mean(axis=0)


def std_by_variance(X):
    return (X - X.mean(axis=0)) / _safe(X.var(axis=0))


def std_std_as_column(X):
    return (X - X.mean(axis=0)) / _safe(X.std(axis=0)).reshape(-1, 1)


def std_no_rule(X):
    with np.errstate(all="ignore"):
        return (X - X.mean(axis=0)) / X.std(axis=0)


def std_eps(X):
    return (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8)


def std_threshold(X):
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 1e-8, std, 1.0)


def std_one_pass(X):
    mean = X.mean(axis=0)
    return (X - mean) / _safe(np.sqrt(np.maximum((X ** 2).mean(axis=0) - mean ** 2, 0.0)))


@pytest.mark.parametrize("fn, words", [
    (std_rows, "each row (sample) was standardized: axis=1"),
    (std_rows_flat, "statistics over axis=1 (one per sample, shape (N,)) do not broadcast"),
    (std_rows_flat, "without keepdims: the (N,) result lined up with the features axis"),  # the square case
    (std_global, "the mean and std of the whole array"),
    (std_ddof1, "the sample std (ddof=1"),
    (std_torch_default, "the sample std (ddof=1, torch.std's default)"),
    (std_not_centred, "the mean was not subtracted"),
    (std_not_scaled, "not divided by the std"),
    (std_by_variance, "divided by the variance"),
    (std_std_as_column, "made a column (D, 1)"),
    (std_eps, "an eps (1e-08) was added to the std"),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_standardize_mistake_is_diagnosed(fn, words):
    message = failure("standardize", fn)
    assert words in message, message


def test_standardize_without_the_constant_column_rule_loses_only_the_edge_cases(capsys):
    assert run_hidden(NB, "standardize", std_no_rule, points=2) == pytest.approx(1.6)
    out = capsys.readouterr().out
    assert "batch of one N = 1" in out and "a constant column" in out
    assert "np.where(std > 0, std, 1)" in out


@pytest.mark.parametrize("fn, case, words", [
    (std_threshold, "tiny values ~1e-150", "treats a tiny but real spread"),
    (std_one_pass, "far from the origin", "mean(X²) − mean(X)² loses its digits"),
])
def test_standardize_numerical_slips_lose_only_the_edge_cases(capsys, fn, case, words):
    assert run_hidden(NB, "standardize", fn, points=2) == pytest.approx(1.6)
    out = capsys.readouterr().out
    assert case in out and words in out, out


@pytest.mark.parametrize("fn", [
    lambda X: (X - X.mean(axis=0)) / _safe(X.std(axis=0)),  # no keepdims: (D,) broadcasts over the rows anyway
    lambda X: (X - X.sum(axis=0, keepdims=True) / len(X))
    / _safe(np.sqrt(((X - X.mean(axis=0)) ** 2).sum(axis=0, keepdims=True) / len(X))),
], ids=["no_keepdims_on_axis_0", "by_hand"])
def test_standardize_correct_variants_pass(fn):
    run_hidden(NB, "standardize", fn)


def test_standardize_in_torch_passes():
    import torch

    def in_torch(X):
        Xt = torch.from_numpy(X)
        with warnings.catch_warnings():  # torch warns about 0 degrees of freedom for D = 0
            warnings.simplefilter("ignore")
            std = Xt.std(dim=0, unbiased=False, keepdim=True)
        return (Xt - Xt.mean(dim=0, keepdim=True)) / torch.where(std > 0, std, 1.0)

    run_hidden(NB, "standardize", in_torch)


# ----------------------------------------------------------------------------------------------
# the visible checks (what runs in the student's test cell) catch each exercise's central bug


def _run_visible(ref, grade_id: str, **overrides) -> str:
    """The visible part of a test cell, run on a wrong implementation: the CheckFailed message."""
    with pytest.raises(CheckFailed) as info:
        run_visible(NOTEBOOK, ref, grade_id, **overrides)
    return str(info.value)


@pytest.mark.parametrize("grade_id", ["test_broadcast_shape", "test_standardize", "test_linear_forward",
                                      "test_add_bias_column", "test_perceptron_forward", "test_sse", "test_mse",
                                      "test_pairwise_sq_distances"])
def test_visible_checks_pass_on_the_solution(ref, grade_id, capsys):
    run_visible(NOTEBOOK, ref, grade_id)
    assert "visible checks passed" in capsys.readouterr().out


def _in_place(ref, exercise, arg):
    """The solution, followed by an edit of argument number ``arg`` in place."""
    def edit(*args):
        out = ref[exercise](*(a.copy() for a in args))
        args[arg][...] = 0.0
        return out
    return edit


@pytest.mark.parametrize("exercise, arg", [
    ("standardize", 0), ("linear_forward", 0), ("linear_forward", 1), ("linear_forward", 2),
    ("add_bias_column", 0), ("perceptron_forward", 0), ("perceptron_forward", 1),
    ("sse", 0), ("sse", 1), ("mse", 0), ("mse", 1), ("pairwise_sq_distances", 0), ("pairwise_sq_distances", 1),
])
def test_visible_checks_catch_an_input_changed_in_place(ref, exercise, arg):
    message = _run_visible(ref, f"test_{exercise}", **{exercise: _in_place(ref, exercise, arg)})
    assert f"{exercise} changed" in message and "in place" in message


def test_visible_standardize_catches_the_usual_in_place_version(ref):
    def in_place(X):
        X -= X.mean(axis=0)
        X /= _safe(X.std(axis=0))
        return X

    assert "changed its input X in place" in _run_visible(ref, "test_standardize", standardize=in_place)


@pytest.mark.parametrize("fn, words", [
    (std_rows, "column means of standardize((3, 2))"),
    (std_rows_flat, "statistics over axis=1"),
    (std_global, "column means of standardize((3, 2))"),
    (std_ddof1, "column stds of standardize((3, 2)), population std (ddof=0)"),
    (std_torch_default, "column stds of standardize((3, 2)), population std (ddof=0)"),
    (std_not_centred, "column means of standardize((3, 2))"),
    (std_not_scaled, "column stds of standardize((3, 2))"),
    (std_no_rule, "column 3 constant"),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_visible_standardize_catches_the_typical_mistakes(ref, fn, words):
    assert words in _run_visible(ref, "test_standardize", standardize=fn)


def test_visible_mse_over_rows_only_shows_a_factor_of_3(ref):
    def mse_rows(a, b):
        _check_shapes(a, b)
        return float(np.sum((a - b) ** 2) / a.shape[0])

    message = _run_visible(ref, "test_mse", mse=mse_rows)
    assert "mse, 2 x 3" in message and "3 × expected" in message and "factor of 2" not in message


def test_visible_add_bias_column_needs_the_column_for_no_features(ref):
    def ones_like_first_column(X):
        return np.concatenate([np.ones_like(X[:, :1]), X], axis=1)  # (N, 0) when D = 0

    message = _run_visible(ref, "test_add_bias_column", add_bias_column=ones_like_first_column)
    assert "no features (3, 0)" in message and "expected (3, 1)" in message


@pytest.mark.parametrize("package, attr", [
    ("torch", "broadcast_shapes"), ("numpy", "broadcast_shapes"), ("numpy", "broadcast_arrays"),
])
def test_the_forbidden_helpers_are_forbidden_under_any_name(package, attr):
    """broadcast_shape written with a broadcasting helper reached through another module (for example
    torch.functional.broadcast_shapes) scores nothing."""
    import importlib
    import sys

    import torch  # noqa: F401 - the probe traps torch's helpers when torch is loaded, as in the notebook

    helper = getattr(importlib.import_module(package), attr)
    module_name = next(name for name, module in sorted(sys.modules.items())
                       if name != package and name.startswith(package + ".")
                       and getattr(module, attr, None) is helper)

    def broadcast_shape(a, b):  # looks the helper up when it runs, as `torch.functional.broadcast_shapes(...)` does
        fn = getattr(sys.modules[module_name], attr)
        if attr == "broadcast_arrays":
            return tuple(fn(np.empty(a), np.empty(b))[0].shape)
        return tuple(fn(a, b))

    message = failure("broadcast_shape", broadcast_shape)
    assert "must apply the rule itself" in message, (module_name, message)
