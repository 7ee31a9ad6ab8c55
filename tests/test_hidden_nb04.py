"""Tests of the hidden checks of notebook 04 (initialization and normalization).

The notebook's own solutions pass every hidden check; each typical wrong implementation earns
nothing (or only the share its slip leaves) with a diagnosis that names the mistake; the judge
fails cleanly on malformed outcomes; the probe holds no reference; the visible cells catch the
central bug of each exercise.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from solutions import run_visible, solution_namespace

from autograder.hidden import checks_for, hidden_verdict, run_hidden
from autograder.hidden.framework import Outcome
from course.checks import CheckFailed

NB = "04_init_and_normalization"
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source" / "week1" / f"{NB}.ipynb"
CHECK_OBJECT = {"xavier_normal": "xavier_normal", "xavier_uniform": "xavier_uniform",
                "kaiming_normal": "kaiming_normal", "pytorch_linear_init": "pytorch_linear_init",
                "forward_stats": "forward_stats", "BatchNorm1d_forward": "BatchNorm1d",
                "BatchNorm1d_backward": "BatchNorm1d", "LayerNorm_forward": "LayerNorm",
                "LayerNorm_backward": "LayerNorm"}
CLASSES = {"BatchNorm1d", "LayerNorm"}


@pytest.fixture(scope="module")
def ref() -> dict:
    return solution_namespace(NOTEBOOK)


def failure(exercise: str, obj) -> str:
    """The hidden checks' message for a wrong implementation, which must earn nothing."""
    with pytest.raises(CheckFailed) as info:
        run_hidden(NB, exercise, obj)
    verdict = hidden_verdict(NB, exercise, obj)
    assert verdict.fraction == 0.0, verdict.lines()
    return str(info.value)


# ----------------------------------------------------------------------------------------------
# the reference passes, the checks are well formed


def _plain(x) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype == np.float64
    if type(x) in (int, float, str, bool) or x is None:
        return True
    if type(x) in (list, tuple):
        return all(_plain(v) for v in x)
    if type(x) is dict:
        return all(type(k) is str and _plain(v) for k, v in x.items())
    return False


def _equal(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if type(a) in (list, tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return type(b) is dict and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("exercise", sorted(CHECK_OBJECT))
def test_cases_are_deterministic_plain_and_labelled(exercise):
    check = checks_for(NB)[exercise]
    first, second = check.cases(), check.cases()
    assert len({c.label for c in first}) == len(first), "labels must be unique"
    for c1, c2 in zip(first, second):
        assert c1.label == c2.label and _plain(c1.kwargs) and _plain(c1.args)
        assert _equal(c1.kwargs, c2.kwargs) and _equal(c1.args, c2.args)


@pytest.mark.parametrize("exercise", sorted(CHECK_OBJECT))
def test_judge_fails_cleanly_on_malformed_outcomes(exercise):
    check = checks_for(NB)[exercise]
    junk = [None, 3, 2.5, "text", [], [1, 2], {}, {"draws": 5}, {"draws": [None]}, {"draws": [{}]},
            {"draws": [{"result": {"kind": "returned", "value": None}, "rng_used": True}] * 2},
            {"steps": 5}, {"steps": [None]}, {"created": {}, "steps": []}, {"created": 3, "steps": [{}] * 4},
            np.zeros(3), np.zeros((3, 2)), {"steps": [{"call": {"kind": "returned", "value": np.zeros((2, 2))}}] * 3}]
    outcomes = [Outcome("returned", value=v) for v in junk]
    outcomes += [Outcome("raised", error="ValueError", message="boom"),
                 Outcome("unsupported", message="returned an object of type Foo"), Outcome("weird")]
    for case in check.cases():
        for outcome in outcomes:
            result = check.judge(case, outcome)
            assert result.ok is False, (case.label, outcome)
            assert isinstance(result.message, str) and result.message


def test_probe_module_holds_no_reference():
    text = (ROOT / "autograder" / "probe" / "nb04.py").read_text()
    assert "torch" not in text
    assert not re.search(r"default_rng\(\s*\d", text), "no seeds in the probe"
    for forbidden in (" @ ", ".T", ".sum(", "mean(", "var(", "std(", "sqrt", "tanh", "maximum(", "momentum",
                      "1e-5", "0.1", "fan_in +", "6.0", "2.0"):
        assert forbidden not in text, forbidden
    assert not re.search(r"\beps\b", text), "no eps in the probe"
    imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", text, re.MULTILINE)
    assert set(imports) <= {"__future__", "typing", "numpy", ".core", ".nb03"}, imports


# ----------------------------------------------------------------------------------------------
# the initializers


def test_xavier_lecun_variance_is_diagnosed():
    fn = lambda fi, fo, rng, gain=1.0: rng.normal(0.0, gain / np.sqrt(fi), size=(fo, fi))  # noqa: E731
    assert "LeCun" in failure("xavier_normal", fn)


def test_xavier_variance_passed_as_std_is_diagnosed():
    fn = lambda fi, fo, rng, gain=1.0: rng.normal(0.0, gain ** 2 * 2 / (fi + fo), size=(fo, fi))  # noqa: E731
    assert "where the standard deviation goes" in failure("xavier_normal", fn)


def test_xavier_global_random_state_is_diagnosed():
    fn = lambda fi, fo, rng, gain=1.0: np.random.normal(0.0, gain * np.sqrt(2 / (fi + fo)), size=(fo, fi))  # noqa: E731
    assert "nothing was drawn from the rng" in failure("xavier_normal", fn)


def test_xavier_in_out_layout_is_diagnosed():
    fn = lambda fi, fo, rng, gain=1.0: rng.normal(0.0, gain * np.sqrt(2 / (fi + fo)), size=(fi, fo))  # noqa: E731
    assert "(in, out)" in failure("xavier_normal", fn)


def test_xavier_normal_drawn_uniform_is_diagnosed():
    fn = lambda fi, fo, rng, gain=1.0: rng.uniform(-1, 1, size=(fo, fi)) * gain * np.sqrt(6 / (fi + fo))  # noqa: E731
    assert "uniform distribution" in failure("xavier_normal", fn)


def test_xavier_gain_ignored_is_diagnosed():
    fn = lambda fi, fo, rng, gain=1.0: rng.normal(0.0, np.sqrt(2 / (fi + fo)), size=(fo, fi))  # noqa: E731
    assert "gain was ignored" in failure("xavier_normal", fn)


def test_xavier_without_gain_argument_is_diagnosed():
    fn = lambda fi, fo, rng: rng.normal(0.0, np.sqrt(2 / (fi + fo)), size=(fo, fi))  # noqa: E731
    assert "gain=1.0" in failure("xavier_normal", fn)


def test_xavier_uniform_with_the_normal_std_as_bound_is_diagnosed():
    fn = lambda fi, fo, rng, gain=1.0: rng.uniform(-1, 1, size=(fo, fi)) * gain * np.sqrt(2 / (fi + fo))  # noqa: E731
    assert "a² / 3" in failure("xavier_uniform", fn)


def test_xavier_uniform_drawn_normal_is_diagnosed():
    fn = lambda fi, fo, rng, gain=1.0: rng.normal(0.0, gain * np.sqrt(2 / (fi + fo)), size=(fo, fi))  # noqa: E731
    assert "a normal distribution" in failure("xavier_uniform", fn)


def test_xavier_uniform_gain_ignored_is_diagnosed():
    fn = lambda fi, fo, rng, gain=1.0: rng.uniform(-1, 1, size=(fo, fi)) * np.sqrt(6 / (fi + fo))  # noqa: E731
    assert "gain was ignored" in failure("xavier_uniform", fn)


def test_kaiming_from_fan_out_is_diagnosed():
    fn = lambda fi, fo, rng: rng.normal(0.0, np.sqrt(2 / fo), size=(fo, fi))  # noqa: E731
    assert "fan_out" in failure("kaiming_normal", fn)


def test_kaiming_without_the_factor_two_is_diagnosed():
    fn = lambda fi, fo, rng: rng.normal(0.0, np.sqrt(1 / fi), size=(fo, fi))  # noqa: E731
    assert "factor 2" in failure("kaiming_normal", fn)


def test_kaiming_constant_is_diagnosed():
    fn = lambda fi, fo, rng: np.zeros((fo, fi)) + 0.0 * rng.random()  # noqa: E731
    assert "symmetry trap" in failure("kaiming_normal", fn)


def test_pytorch_init_as_kaiming_normal_is_diagnosed():
    def fn(fi, fo, rng):
        bound = 1 / np.sqrt(fi)
        return rng.normal(0.0, np.sqrt(2 / fi), size=(fo, fi)), rng.uniform(-bound, bound, size=fo)

    assert "Kaiming-normal" in failure("pytorch_linear_init", fn)


def test_pytorch_init_zero_bias_is_diagnosed():
    def fn(fi, fo, rng):
        bound = 1 / np.sqrt(fi)
        return rng.uniform(-bound, bound, size=(fo, fi)), np.zeros(fo)

    assert "b was not drawn" in failure("pytorch_linear_init", fn)


def test_pytorch_init_bound_from_fan_out_is_diagnosed():
    def fn(fi, fo, rng):
        bound = 1 / np.sqrt(fo)
        return rng.uniform(-bound, bound, size=(fo, fi)), rng.uniform(-bound, bound, size=fo)

    assert "fan_out" in failure("pytorch_linear_init", fn)


def test_pytorch_init_column_bias_is_diagnosed():
    def fn(fi, fo, rng):
        bound = 1 / np.sqrt(fi)
        return rng.uniform(-bound, bound, size=(fo, fi)), rng.uniform(-bound, bound, size=(fo, 1))

    assert "flat vector" in failure("pytorch_linear_init", fn)


def test_pytorch_init_returning_w_only_is_diagnosed():
    fn = lambda fi, fo, rng: rng.uniform(-1, 1, size=(fo, fi)) / np.sqrt(fi)  # noqa: E731
    assert "the pair (W, b)" in failure("pytorch_linear_init", fn)


# ----------------------------------------------------------------------------------------------
# forward_stats


ACTS = {"linear": lambda z: z, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0),
        "sigmoid": lambda z: 0.5 * (1 + np.tanh(z / 2))}


def stats_fn(*, pre=False, ddof=0, last_act=True, transpose=True, layout="rows", square_std=False):
    def forward_stats(X, weights, activation):
        H, rows = X, []
        for index, W in enumerate(weights):
            Z = H @ W.T if transpose else H @ W
            H = ACTS[activation](Z) if (last_act or index < len(weights) - 1) else Z
            out = Z if pre else H
            std = out.std(ddof=ddof) if out.size > ddof else np.nan
            rows.append([out.mean(), std ** 2 if square_std else std])
        stats = np.array(rows)
        return stats.T if layout == "cols" else stats

    return forward_stats


@pytest.mark.parametrize("kwargs, text", [
    ({"pre": True}, "pre-activation"),
    ({"ddof": 1}, "ddof=1"),
    ({"last_act": False}, "the last one included"),
    ({"transpose": False}, "H @ W.T"),
    ({"layout": "cols"}, "(L, 2)"),
    ({"square_std": True}, "the variance in the second column"),
])
def test_forward_stats_mistakes_are_diagnosed(kwargs, text):
    assert text in failure("forward_stats", stats_fn(**kwargs))


def test_forward_stats_variants_of_the_reference_pass():
    assert hidden_verdict(NB, "forward_stats", stats_fn()).passed


# ----------------------------------------------------------------------------------------------
# BatchNorm1d


def make_bn(ref, **methods):
    return type("BatchNorm1d", (ref["BatchNorm1d"],), methods)


def bn_forward(*, ddof=0, running_ddof=1, update=True, eval_batch=False, axis=0, eps_outside=False, eps=True,
               momentum_reversed=False, check_batch=True):
    def forward(self, X):
        if self.training or eval_batch:
            N = X.shape[0]
            if self.training and check_batch and N < 2:
                raise ValueError(f"batch size {N}")
            mean = X.mean(axis=axis, keepdims=True)
            var = X.var(axis=axis, ddof=ddof, keepdims=True)
            if self.training and update:
                m = 1 - self.momentum if momentum_reversed else self.momentum
                n = X.shape[0]
                self.running_mean = (1 - m) * self.running_mean + m * X.mean(axis=0)
                self.running_var = (1 - m) * self.running_var + m * X.var(axis=0, ddof=running_ddof) * (1 if running_ddof else 1)
                del n
        else:
            mean, var = self.running_mean, self.running_var
        e = self.eps if eps else 0.0
        with np.errstate(all="ignore"):
            self.sigma = np.sqrt(var) + e if eps_outside else np.sqrt(var + e)
            self.X_hat = (X - mean) / self.sigma
        return self.gamma * self.X_hat + self.beta

    return forward


@pytest.mark.parametrize("kwargs, text", [
    ({"ddof": 1}, "unbiased variance"),
    ({"running_ddof": 0}, "biased batch variance"),
    ({"update": False}, "not updated"),
    ({"eval_batch": True}, "eval mode normalized with the batch"),
    ({"axis": 1}, "that is LayerNorm"),
    ({"eps_outside": True}, "eps belongs inside"),
    ({"momentum_reversed": True}, "momentum applied the other way"),
])
def test_batchnorm_forward_mistakes_are_diagnosed(ref, kwargs, text):
    assert text in failure("BatchNorm1d_forward", make_bn(ref, forward=bn_forward(**kwargs)))


def test_batchnorm_without_the_batch_of_one_error_keeps_the_main_and_edge_shares(ref):
    verdict = hidden_verdict(NB, "BatchNorm1d_forward", make_bn(ref, forward=bn_forward(check_batch=False)))
    assert verdict.fraction == pytest.approx(0.85), verdict.lines()
    assert "ValueError naming the batch size" in "\n".join(verdict.lines())


def test_batchnorm_without_eps_fails_only_the_constant_column(ref):
    verdict = hidden_verdict(NB, "BatchNorm1d_forward", make_bn(ref, forward=bn_forward(eps=False)))
    text = "\n".join(verdict.lines())
    assert verdict.fraction == pytest.approx(0.0) or "constant column" in text, text


def test_batchnorm_batch_of_one_error_must_name_the_batch(ref):
    def forward(self, X):
        if self.training and X.shape[0] < 2:
            raise ValueError("variance undefined")
        return ref["BatchNorm1d"].forward(self, X)

    verdict = hidden_verdict(NB, "BatchNorm1d_forward", make_bn(ref, forward=forward))
    assert verdict.fraction == pytest.approx(0.85)
    assert "should name the batch size" in "\n".join(verdict.lines())


def test_batchnorm_training_flag_missing_is_diagnosed(ref):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        ref["BatchNorm1d"].__init__(self, num_features, eps, momentum)
        del self.training

    def forward(self, X):
        self.training = getattr(self, "training", True)
        return ref["BatchNorm1d"].forward(self, X)

    assert ".training" in failure("BatchNorm1d_forward", make_bn(ref, __init__=__init__, forward=forward))


def bn_backward(kind):
    def backward(self, dY):
        Xh, s, g = self.X_hat, self.sigma, dY * self.gamma
        self.dgamma = (dY * Xh).sum(axis=0)
        self.dbeta = dY.sum(axis=0)
        if kind == "shortcut":
            return g / s
        if kind == "no variance term":
            return (g - g.mean(axis=0)) / s
        if kind == "no mean term":
            return (g - Xh * (g * Xh).mean(axis=0)) / s
        if kind == "dgamma without x_hat":
            self.dgamma = dY.sum(axis=0)
        if kind == "dgamma not summed":
            self.dgamma = dY * Xh
        if kind == "accumulate":
            self.dgamma = getattr(self, "_acc_g", 0) + (dY * Xh).sum(axis=0)
            self.dbeta = getattr(self, "_acc_b", 0) + dY.sum(axis=0)
            self._acc_g, self._acc_b = self.dgamma, self.dbeta
        return (g - g.mean(axis=0) - Xh * (g * Xh).mean(axis=0)) / s

    return backward


@pytest.mark.parametrize("kind, text", [
    ("shortcut", "treats the mean and the variance as constants"),
    ("no variance term", "the variance's dependence on X is missing"),
    ("no mean term", "the mean's dependence on X is missing"),
    ("dgamma without x_hat", "x̂ is missing"),
    ("dgamma not summed", "not summed over the batch"),
    ("accumulate", "does not add to it"),
])
def test_batchnorm_backward_mistakes_are_diagnosed(ref, kind, text):
    assert text in failure("BatchNorm1d_backward", make_bn(ref, backward=bn_backward(kind)))


def test_batchnorm_unbiased_normalization_is_diagnosed_in_backward(ref):
    assert "unbiased variance" in failure("BatchNorm1d_backward", make_bn(ref, forward=bn_forward(ddof=1)))


# ----------------------------------------------------------------------------------------------
# LayerNorm


def make_ln(ref, **methods):
    return type("LayerNorm", (ref["LayerNorm"],), methods)


def ln_forward(*, axis=1, keepdims=True, ddof=0):
    def forward(self, X):
        mean = X.mean(axis=axis, keepdims=keepdims)
        with np.errstate(all="ignore"):
            self.row_sigma = np.sqrt(X.var(axis=axis, ddof=ddof, keepdims=keepdims) + self.eps)
            self.row_hat = (X - mean) / self.row_sigma
        return self.gamma * self.row_hat + self.beta

    return forward


@pytest.mark.parametrize("kwargs, text", [
    ({"axis": 0}, "that is BatchNorm"),
    ({"keepdims": False}, "keepdims=True"),
    ({"ddof": 1}, "unbiased variance"),
])
def test_layernorm_forward_mistakes_are_diagnosed(ref, kwargs, text):
    assert text in failure("LayerNorm_forward", make_ln(ref, forward=ln_forward(**kwargs)))


def ln_backward(kind):
    def backward(self, dY):
        Xh, s, g = self.row_hat, self.row_sigma, dY * self.gamma
        self.dgamma = (dY * Xh).sum(axis=0)
        self.dbeta = dY.sum(axis=0)
        if kind == "shortcut":
            return g / s
        if kind == "dgamma over features":
            self.dgamma = (dY * Xh).sum(axis=1)
        if kind == "no variance term":
            return (g - g.mean(axis=1, keepdims=True)) / s
        if kind == "no mean term":
            return (g - Xh * (g * Xh).mean(axis=1, keepdims=True)) / s
        return (g - g.mean(axis=1, keepdims=True) - Xh * (g * Xh).mean(axis=1, keepdims=True)) / s

    return backward


@pytest.mark.parametrize("kind, text", [
    ("shortcut", "treats the mean and the variance as constants"),
    ("dgamma over features", "summed over the features"),
])
def test_layernorm_backward_mistakes_are_diagnosed(ref, kind, text):
    assert text in failure("LayerNorm_backward", make_ln(ref, backward=ln_backward(kind)))


# ----------------------------------------------------------------------------------------------
# the visible cells catch the central bug of each exercise


def _run_visible(ref, grade_id: str, **overrides) -> str:
    with pytest.raises(CheckFailed) as info:
        run_visible(NOTEBOOK, ref, grade_id, **overrides)
    return str(info.value)


def test_visible_initializer_cells_catch_the_central_bugs(ref):
    lecun = lambda fi, fo, rng, gain=1.0: rng.normal(0.0, gain / np.sqrt(fi), size=(fo, fi))  # noqa: E731
    assert "LeCun" in _run_visible(ref, "test_xavier_normal", xavier_normal=lecun)
    global_state = lambda fi, fo, rng, gain=1.0: np.random.normal(0, np.sqrt(2 / (fi + fo)), size=(fo, fi))  # noqa: E731
    assert "drew nothing from rng" in _run_visible(ref, "test_xavier_normal", xavier_normal=global_state)
    std_bound = lambda fi, fo, rng, gain=1.0: rng.uniform(-1, 1, size=(fo, fi)) * gain * np.sqrt(2 / (fi + fo))  # noqa: E731
    assert "U(-a, a)" in _run_visible(ref, "test_xavier_uniform", xavier_uniform=std_bound)
    fan_out = lambda fi, fo, rng: rng.normal(0.0, np.sqrt(2 / fo), size=(fo, fi))  # noqa: E731
    assert "2/fan_out" in _run_visible(ref, "test_kaiming_normal", kaiming_normal=fan_out)

    def kaiming(fi, fo, rng):
        return rng.normal(0.0, np.sqrt(2 / fi), size=(fo, fi)), rng.uniform(-1, 1, size=fo) / np.sqrt(fi)

    assert "a normal distribution" in _run_visible(ref, "test_pytorch_linear_init", pytorch_linear_init=kaiming)


def test_visible_initializer_cells_name_the_typical_slips(ref):
    """The visible cells diagnose from the numbers alone: the variance or bound a slip gives, or the kurtosis."""
    as_std = lambda fi, fo, rng, gain=1.0: rng.normal(0.0, gain ** 2 * 2 / (fi + fo), size=(fo, fi))  # noqa: E731
    assert "where rng.normal takes the standard deviation" in _run_visible(ref, "test_xavier_normal",
                                                                           xavier_normal=as_std)
    gain_once = lambda fi, fo, rng, gain=1.0: rng.normal(0.0, np.sqrt(gain * 2 / (fi + fo)), size=(fo, fi))  # noqa: E731
    assert "the variance gets gain²" in _run_visible(ref, "test_xavier_normal", xavier_normal=gain_once)
    no_gain = lambda fi, fo, rng, gain=1.0: rng.normal(0.0, np.sqrt(2 / (fi + fo)), size=(fo, fi))  # noqa: E731
    assert "without the gain" in _run_visible(ref, "test_xavier_normal", xavier_normal=no_gain)

    std_bound = lambda fi, fo, rng, gain=1.0: rng.uniform(-1, 1, size=(fo, fi)) * gain * np.sqrt(2 / (fi + fo))  # noqa: E731
    assert "a/√3" in _run_visible(ref, "test_xavier_uniform", xavier_uniform=std_bound)
    normal = lambda fi, fo, rng, gain=1.0: rng.normal(0.0, gain * np.sqrt(2 / (fi + fo)), size=(fo, fi))  # noqa: E731
    assert "look normal" in _run_visible(ref, "test_xavier_uniform", xavier_uniform=normal)

    lecun = lambda fi, fo, rng: rng.normal(0.0, np.sqrt(1 / fi), size=(fo, fi))  # noqa: E731
    assert "factor 2 is missing" in _run_visible(ref, "test_kaiming_normal", kaiming_normal=lecun)

    def kaiming_uniform(fi, fo, rng):
        bound = np.sqrt(6 / fi)
        return rng.uniform(-bound, bound, size=(fo, fi)), rng.uniform(-1, 1, size=fo) / np.sqrt(fi)

    text = _run_visible(ref, "test_pytorch_linear_init", pytorch_linear_init=kaiming_uniform)
    assert "kaiming_uniform_ with a = 0" in text and "normal" not in text

    def from_fan_out(fi, fo, rng):
        bound = 1 / np.sqrt(fo)
        return rng.uniform(-bound, bound, size=(fo, fi)), rng.uniform(-bound, bound, size=fo)

    assert "1/sqrt(fan_out)" in _run_visible(ref, "test_pytorch_linear_init", pytorch_linear_init=from_fan_out)


@pytest.mark.parametrize("kwargs, text", [
    ({"pre": True}, "before the activation"),
    ({"ddof": 1}, "ddof=1"),
    ({"square_std": True}, "holds the variance"),
    ({"last_act": False}, "after the last layer too"),
])
def test_visible_forward_stats_names_the_typical_slips(ref, kwargs, text):
    message = _run_visible(ref, "test_forward_stats", forward_stats=stats_fn(**kwargs))
    assert "forward_stats" in message and text in message


def test_visible_forward_stats_compares_with_stored_numbers_not_a_reference():
    """The test cell students receive must not compute forward_stats itself (a loop of layers in torch)."""
    from solutions import visible_checks

    text = visible_checks(NOTEBOOK, "test_forward_stats")
    for forbidden in ("F.linear", "torch.tanh", "torch.relu", "torch.sigmoid", "@", ".std(", "np.tanh", "maximum("):
        assert forbidden not in text, forbidden


def test_visible_batchnorm_cells_catch_the_central_bugs(ref):
    text = _run_visible(ref, "test_BatchNorm1d_forward", BatchNorm1d=make_bn(ref, forward=bn_forward(running_ddof=0)))
    assert "biased batch variance" in text
    assert "training output" in _run_visible(ref, "test_BatchNorm1d_forward",
                                             BatchNorm1d=make_bn(ref, forward=bn_forward(ddof=1)))
    assert "eval output" in _run_visible(ref, "test_BatchNorm1d_forward",
                                         BatchNorm1d=make_bn(ref, forward=bn_forward(eval_batch=True)))
    assert "batch of one" in _run_visible(ref, "test_BatchNorm1d_forward",
                                          BatchNorm1d=make_bn(ref, forward=bn_forward(check_batch=False)))
    text = _run_visible(ref, "test_BatchNorm1d_backward", BatchNorm1d=make_bn(ref, backward=bn_backward("shortcut")))
    assert "treats the batch mean and variance as constants" in text
    text = _run_visible(ref, "test_BatchNorm1d_backward", BatchNorm1d=make_bn(ref, backward=bn_backward("no variance term")))
    assert "dX" in text and "path through the variance" in text
    text = _run_visible(ref, "test_BatchNorm1d_backward", BatchNorm1d=make_bn(ref, backward=bn_backward("no mean term")))
    assert "path through the mean" in text


def test_visible_layernorm_cells_catch_the_central_bugs(ref):
    assert "LayerNorm.forward" in _run_visible(ref, "test_LayerNorm_forward",
                                               LayerNorm=make_ln(ref, forward=ln_forward(axis=0)))
    text = _run_visible(ref, "test_LayerNorm_backward", LayerNorm=make_ln(ref, backward=ln_backward("shortcut")))
    assert "treats each row's mean and variance as constants" in text
    text = _run_visible(ref, "test_LayerNorm_backward", LayerNorm=make_ln(ref, backward=ln_backward("no variance term")))
    assert "path through the row's variance" in text
    text = _run_visible(ref, "test_LayerNorm_backward", LayerNorm=make_ln(ref, backward=ln_backward("no mean term")))
    assert "path through the row's mean" in text


@pytest.mark.parametrize("message, names_it", [
    ("BatchNorm1d in training mode needs more than one sample per batch, got a batch of size 1", True),
    ("batch size 1", True),
    ("Batch of 1 sample: the variance is 0", True),
    ("expected a batch with N=1 > 1", True),
    ("BatchNorm1d needs more than one sample", False),       # 'batch' and '1' only inside the class name
    ("BatchNorm1d: a batch is too small", False),             # no size
    ("expected more than 1 value per channel", False),        # no 'batch'
    ("batch too small (eps = 1e-5, size 10)", False),         # 1 only inside other numbers
    ("variance undefined", False),
])
def test_the_batch_of_one_message_contract_is_the_same_visible_and_hidden(ref, message, names_it):
    from autograder.hidden.nb04_init_and_normalization import names_batch_size

    def forward(self, X):
        if self.training and X.shape[0] < 2:
            raise ValueError(message)
        return ref["BatchNorm1d"].forward(self, X)

    cls = make_bn(ref, forward=forward)
    assert names_batch_size(message) is names_it
    verdict = hidden_verdict(NB, "BatchNorm1d_forward", cls)
    assert verdict.passed is names_it, verdict.lines()
    if names_it:
        run_visible(NOTEBOOK, ref, "test_BatchNorm1d_forward", BatchNorm1d=cls)
    else:
        assert "should name the batch size" in _run_visible(ref, "test_BatchNorm1d_forward", BatchNorm1d=cls)


def test_what_students_receive_leaves_the_backward_formula_and_the_forwards_to_them():
    """Outside the solution cells, the notebook gives the three paths of dX, not the assembled formula,
    and no cell normalizes X by hand before the exercises (torch's outputs only)."""
    import nbformat

    from notebooks import is_solution

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for index, cell in enumerate(nb.cells):
        if is_solution(cell):
            continue
        text = cell.source.split("### BEGIN HIDDEN TESTS")[0]
        for formula in ("mean(dx̂·x̂)", "x̂·mean", "mean_n(d\\hat x", "operatorname{mean}"):
            assert formula not in text, (index, formula)
        if cell.cell_type == "code":
            assert not re.search(r"X_small\.var\(axis=\d, keepdims=True\) \+ eps", text), index
            assert "by_hand" not in text, index
