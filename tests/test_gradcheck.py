"""Tests for course.gradcheck: numerical gradients are accurate, x is left alone, and a wrong
analytic gradient is caught with the right diagnosis."""

import numpy as np
import pytest

from course import checks
from course.checks import CheckFailed, Comparison
from course.gradcheck import assert_gradcheck, gradcheck, numerical_gradient, relative_error

RNG = np.random.default_rng(7)
N, D, H, C = 5, 3, 4, 6
X = RNG.normal(size=(N, D))  # inputs (N, D)
Y = RNG.normal(size=(N, H))  # targets (N, H)
W = RNG.normal(size=(H, D))  # weights (H, D), PyTorch layout


def sum_of_squares(x):
    return float(np.sum(x**2))


def d_sum_of_squares(x):
    return 2 * x


def mse_loss(w):
    """0.5 * mean over N of ||X w^T - Y||^2 for w: (H, D)."""
    return 0.5 * float(np.sum((X @ w.T - Y) ** 2)) / N


def d_mse_loss(w):
    return (X @ w.T - Y).T @ X / N  # (H, D)


def log_sum_exp(z):
    """sum over rows of log sum exp, z: (N, C)."""
    m = z.max(axis=1, keepdims=True)
    return float(np.sum(m[:, 0] + np.log(np.exp(z - m).sum(axis=1))))


def d_log_sum_exp(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # softmax, (N, C)


def assert_accurate(num, analytic):
    """~1e-8 relative overall; elementwise a little looser, as small elements feel the round-off more."""
    assert np.linalg.norm(num - analytic) / np.linalg.norm(analytic) < 1e-8
    assert relative_error(num, analytic) < 1e-6


CASES = {
    "sum of squares": (sum_of_squares, d_sum_of_squares, RNG.normal(size=(3, 4))),
    "matmul loss": (mse_loss, d_mse_loss, W),
    "log-sum-exp": (log_sum_exp, d_log_sum_exp, RNG.normal(size=(N, C))),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_numerical_gradient_matches_analytic(case):
    f, df, x = CASES[case]
    num = numerical_gradient(f, x)
    assert num.shape == x.shape and num.dtype == np.float64
    assert_accurate(num, df(x))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck_passes_correct_gradients(case):
    f, df, x = CASES[case]
    result = gradcheck("dW", f, x, df(x))
    assert result.ok, result.message
    assert result.message.startswith(f"✓ dW      {checks.format_shape(x.shape)}  rel err ")
    assert assert_gradcheck("dW", f, x, df(x)) == result


def test_log_sum_exp_gradient_agrees_with_torch():
    torch = pytest.importorskip("torch")
    z = np.random.default_rng(4).normal(size=(N, C))
    zt = torch.tensor(z, requires_grad=True)
    torch.logsumexp(zt, dim=1).sum().backward()
    assert_accurate(numerical_gradient(log_sum_exp, z), zt.grad.numpy())


def test_x_is_not_modified_and_f_gets_copies():
    x = np.random.default_rng(3).normal(size=(3, 4))
    before = x.copy()
    seen = []

    def scribbling_f(v):
        seen.append((v.shape, v.dtype, v is x))
        total = float(np.sum(v**2))
        v[...] = 1e6  # an f that writes into its argument must not disturb the differences
        return total

    num = numerical_gradient(scribbling_f, x)
    np.testing.assert_array_equal(x, before)
    assert_accurate(num, 2 * before)
    assert seen and all(s == ((3, 4), np.float64, False) for s in seen)


def test_integer_input_is_differentiated_in_float64():
    num = numerical_gradient(sum_of_squares, np.array([1, 2, 3]))
    assert num.dtype == np.float64
    np.testing.assert_allclose(num, [2.0, 4.0, 6.0], rtol=1e-8)


def test_zero_dim_input():
    x = np.array(3.0)
    num = numerical_gradient(lambda v: float(v) ** 3, x)
    assert num.shape == () and abs(num - 27.0) < 1e-6
    assert gradcheck("x", lambda v: float(v) ** 3, x, np.array(27.0)).ok
    assert gradcheck("x", lambda v: float(v) ** 3, 3.0, 27.0).ok
    message = gradcheck("x", lambda v: float(v) ** 3, x, 54.0).message
    assert "factor of 2" in message and "worst at" not in message


def test_zero_size_input():
    calls = []

    def f(v):
        calls.append(v)
        return 0.0

    num = numerical_gradient(f, np.zeros((0, 3)))
    assert num.shape == (0, 3) and calls == []
    result = gradcheck("dW", f, np.zeros((0, 3)), np.zeros((0, 3)))
    assert result.ok and result.message == "✓ dW      (0, 3)  empty"
    assert not gradcheck("dW", f, np.zeros((0, 3)), np.zeros((3, 0))).ok


def test_factor_of_two_is_caught_with_its_hint():
    result = gradcheck("dW", mse_loss, W, 2 * d_mse_loss(W))
    assert not result.ok
    assert result.message.startswith("✗ dW      (4, 3)  rel err 3.33e-01, worst at [")
    assert "(analytic " in result.message and ", numerical " in result.message
    assert "looks off by a factor of 2 (analytic ≈ 2 × numerical)" in result.message
    with pytest.raises(CheckFailed, match="factor of 2"):
        assert_gradcheck("dW", mse_loss, W, 2 * d_mse_loss(W))


def test_missing_division_by_batch_size():
    message = gradcheck("dW", mse_loss, W, N * d_mse_loss(W)).message
    assert "looks off by a factor of 5 (analytic ≈ 5 × numerical: a sum where a mean is expected?)" in message


def test_sign_flip_and_transpose_and_wrong_shape():
    assert "sign flipped (analytic ≈ -numerical)" in gradcheck("dW", mse_loss, W, -d_mse_loss(W)).message
    message = gradcheck("dW", mse_loss, W, d_mse_loss(W).T).message
    assert message == "✗ dW      shape (3, 4), expected (4, 3) — looks transposed (got.T matches)"
    message = gradcheck("dW", mse_loss, W, d_mse_loss(W)[:, :2]).message
    assert message.startswith("✗ dW      shape (4, 2), expected (4, 3)")
    rng = np.random.default_rng(2)
    square = rng.normal(size=(4, 4))
    message = gradcheck("dW", lambda w: float(np.sum(w * square)), rng.normal(size=(4, 4)), square.T).message
    assert "matches the transpose (analytic ≈ numerical.T)" in message


def test_one_wrong_element_is_located_without_a_guess():
    wrong = d_mse_loss(W)
    wrong[2, 1] += 0.1
    message = gradcheck("dW", mse_loss, W, wrong).message
    assert "worst at [2, 1]" in message and "1/12 off" in message
    assert " — " not in message


def test_nan_in_analytic_gradient():
    bad = d_mse_loss(W)
    bad[0, 2] = np.nan
    message = gradcheck("dW", mse_loss, W, bad).message
    assert "NaN at [0, 2]: an unstable exp/log or a 0/0?" in message


def test_exact_zeros_from_dead_relus_pass():
    w = np.random.default_rng(1).normal(size=(H, D))

    def relu_loss(v):
        return float(np.sum(np.maximum(X @ v.T, 0.0) ** 2))

    pre = X @ w.T
    analytic = (2 * np.maximum(pre, 0.0)).T @ X
    w_dead = w.copy()
    w_dead[0] = -10 * np.abs(w_dead[0]) * np.sign(X.mean(0))  # unit 0 mostly dead
    analytic_dead = (2 * np.maximum(X @ w_dead.T, 0.0)).T @ X
    assert gradcheck("dW", relu_loss, w, analytic).ok
    assert gradcheck("dW", relu_loss, w_dead, analytic_dead).ok
    zero_grad = gradcheck("b", lambda v: float(np.sum(np.maximum(v, 0.0))), -np.ones(3), np.zeros(3))
    assert zero_grad.ok, zero_grad.message


def test_round_off_on_a_zero_gradient_is_not_a_failure():
    x = np.random.default_rng(0).normal(size=4)

    def f(x_in):  # gradient (1, 0, 1, 1); for x[1], one unit in the last place of round-off, on every platform
        s = x_in[0] + x_in[2] + x_in[3]  # computed without x[1]: the same for both of its perturbations
        return float(np.nextafter(s, np.inf)) if x_in[1] > x[1] else float(s)

    analytic = np.array([1.0, 0.0, 1.0, 1.0])
    num = numerical_gradient(f, x)
    s = x[0] + x[2] + x[3]
    assert num[1] == (np.nextafter(s, np.inf) - s) / 2e-6  # exactly one ulp over 2 eps
    assert num[1] != 0.0 and abs(num[1]) < 1e-9
    assert relative_error(num, analytic) > 0.5  # the plain formula cannot tell round-off from a bug ...
    result = gradcheck("dx", f, x, analytic)  # ... gradcheck can
    assert result.ok, result.message


def test_small_real_errors_are_not_hidden_by_the_noise_allowance():
    wrong = d_mse_loss(W)
    wrong[1, 1] += 1e-4
    assert not gradcheck("dW", mse_loss, W, wrong).ok


def test_non_scalar_f_gives_a_clear_error():
    with pytest.raises(CheckFailed) as info:
        numerical_gradient(lambda w: X @ w.T, W)
    assert str(info.value) == ("f(x) must be a scalar: returned an array of shape (5, 4); "
                               "return one number as a Python float, not an array of 20 numbers")
    result = gradcheck("dW", lambda w: X @ w.T, W, d_mse_loss(W))
    assert not result.ok and "shape (5, 4)" in result.message
    with pytest.raises(CheckFailed, match="did you forget `return`"):
        numerical_gradient(lambda w: None, W)
    assert numerical_gradient(lambda w: np.sum(w), W).shape == W.shape  # NumPy scalars are fine
    assert numerical_gradient(lambda w: np.array(np.sum(w)), W).shape == W.shape  # and 0-d arrays


def test_analytic_gradient_is_untrusted():
    class Liar:
        def __eq__(self, other):
            return True

        def __array__(self, dtype=None, copy=None):
            return d_mse_loss(W)

    result = gradcheck("dW", mse_loss, W, Liar())
    assert not result.ok and "expected a NumPy array" in result.message
    assert "did you forget `return`" in gradcheck("dW", mse_loss, W, None).message


def test_relative_error():
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert relative_error([1.0, 3.0], [1.0, 1.0]) == pytest.approx(0.5)
    assert relative_error([0.0], [0.0]) == 0.0
    assert relative_error([1e-13], [0.0]) == pytest.approx(0.1)
    assert relative_error(np.zeros((0, 2)), np.zeros((0, 2))) == 0.0
    assert np.isnan(relative_error([np.nan], [1.0]))
    assert isinstance(relative_error(2.0, 1.0), float)
    with pytest.raises(ValueError, match=r"shapes \(2,\) and \(3,\) differ"):
        relative_error([1.0, 2.0], [1.0, 2.0, 3.0])


def test_gradcheck_returns_a_comparison():
    result = gradcheck("dW", sum_of_squares, np.ones(3), 2 * np.ones(3))
    assert isinstance(result, Comparison) and result.name == "dW" and str(result) == result.message


def test_forward_pass_hints_are_not_given_for_gradients():
    """A missing ReLU or a bias describes an output, not a gradient: gradcheck does not guess them."""
    grad = d_mse_loss(W)
    shifted = gradcheck("dW", mse_loss, W, grad + np.array([0.5, -0.2, 0.3])).message  # same in every row
    assert "(4, 3)" in shifted and "bias" not in shifted and " — " not in shifted

    def relu_sum(v):
        return float(np.sum(np.maximum(v, 0.0)))

    v = np.random.default_rng(5).normal(size=(3, 4))
    analytic = np.where(v > 0, 1.0, -1.0)  # negative where the numerical gradient is 0
    message = gradcheck("dv", relu_sum, v, analytic).message
    assert not message.startswith("✓") and "ReLU" not in message


def test_assert_gradcheck_hides_its_frame():
    with pytest.raises(CheckFailed) as info:
        assert_gradcheck("dW", mse_loss, W, 2 * d_mse_loss(W))
    tb = info.value.__traceback__
    while tb is not None and tb.tb_frame.f_code is not assert_gradcheck.__code__:
        tb = tb.tb_next
    assert tb is not None and tb.tb_frame.f_locals.get("__tracebackhide__") is True
