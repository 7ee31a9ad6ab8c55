"""Tests for course.checks: every diagnosis fires on its mistake and stays quiet otherwise,
and no untrusted object can talk its way into a pass."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from course import checks
from course.checks import CheckFailed, Comparison

RNG = np.random.default_rng(1234)
E34 = RNG.normal(size=(3, 4))  # a generic (3, 4) reference
E73 = RNG.normal(size=(7, 3))  # (N, D) with N = 7
V5 = RNG.normal(size=5)
X63 = RNG.normal(size=(6, 3))
SQ = RNG.normal(size=(4, 4))  # not symmetric
T234 = RNG.normal(size=(2, 3, 4))

EM_DASH = " — "  # separates the facts from the hints


def fresh(shape):
    """Unrelated random numbers, the same whatever the order the tests run in."""
    return np.random.default_rng(99).normal(size=shape)


def failed(got, expected, **tol) -> str:
    result = checks.compare("dW", got, expected, **tol)
    assert not result.ok, result.message
    assert result.message.startswith("✗ dW ")
    return result.message


# ----------------------------------------------------------------------------------------------
# the result type


def test_comparison_is_frozen_and_prints_its_message():
    result = checks.compare("dW", E34, E34)
    assert isinstance(result, Comparison)
    assert result.name == "dW" and result.ok is True
    assert str(result) == result.message
    with pytest.raises(AttributeError):
        result.ok = False  # type: ignore[misc]


def test_check_failed_is_an_assertion_error():
    assert issubclass(CheckFailed, AssertionError)


# ----------------------------------------------------------------------------------------------
# correct input: a tick, the name and the shape, and no hint at all

CORRECT = {
    "matrix": E34,
    "vector": V5,
    "column": V5[:, None],
    "3-d": T234,
    "0-d": np.array(1.5),
    "symmetric": SQ + SQ.T,
    "all zeros": np.zeros((3, 2)),
    "batch": E73,
    "ints": np.arange(6).reshape(2, 3),
    "with nan": np.array([1.0, np.nan, 3.0]),
    "with inf": np.array([-np.inf, 0.0, np.inf]),
}


@pytest.mark.parametrize("value", CORRECT.values(), ids=CORRECT.keys())
def test_correct_input_passes_without_hints(value):
    result = checks.compare("dW", value.copy(), value)
    assert result.ok, result.message
    assert result.message.startswith("✓ dW ")
    assert checks.format_shape(value.shape) in result.message
    assert EM_DASH not in result.message
    assert checks.assert_close("dW", value.copy(), value) == result


def test_ok_message_reports_the_largest_difference():
    assert checks.compare("dW", E34, E34).message == "✓ dW      (3, 4)  exact"
    message = checks.compare("dW", E34 + 1e-12, E34).message
    assert message.startswith("✓ dW      (3, 4)  max |Δ| ") and "e-1" in message


def test_failure_message_names_worst_element_and_counts():
    got = E34.copy()
    got[2, 1] += 0.5
    got[0, 0] += 0.1
    message = failed(got, E34)
    assert "(3, 4)" in message
    assert "max |Δ| 5.00e-01 at [2, 1]" in message
    assert f"expected {E34[2, 1]:.4g}" in message
    assert "2/12 off" in message
    assert EM_DASH not in message  # two unrelated wrong elements: no guess


def test_values_shown_with_enough_digits_to_differ():
    message = failed(E34 * (1 + 1e-6), E34)
    start = message.index("(got ")
    shown = message[start:message.index(")", start)]
    got_text, expected_text = shown[5:].split(", expected ")
    assert got_text != expected_text


# ----------------------------------------------------------------------------------------------
# shape diagnoses: each fires on its mistake and no other diagnosis does

y, y_hat = RNG.normal(size=5), RNG.normal(size=5)
SHAPE_CASES = {
    # name: (got, expected, phrase that must appear)
    "transposed": (E34.T, E34, "looks transposed (got.T matches)"),
    "reversed": (RNG.normal(size=(4, 3)), E34, "shape is reversed: rows and columns swapped (a transpose, or the wrong axis)?"),
    "(N,) for (N, 1)": (V5, V5[:, None], "you returned (5,) where (5, 1) is expected: reshape or keep the axis (keepdims=True)"),
    "(N, 1) for (N,)": (V5[:, None], V5, "you returned (5, 1) where (5,) is expected: drop the axis"),
    "broadcast": (y[None, :] - y_hat[:, None], (y - y_hat)[:, None],
                  "a (5,) and a (5, 1) broadcast against each other (the diagonal matches); make both (5, 1) or both (5,)"),
    "missing sum": (X63, X63.sum(axis=0), "missing a sum over axis 0 (the batch axis?)"),
    "missing mean": (X63, X63.mean(axis=0), "missing a mean over axis 0 (the batch axis?)"),
    "missing sum keepdims": (X63, X63.sum(axis=0, keepdims=True), "missing a sum over axis 0 (the batch axis?), with keepdims=True"),
    "summed too much": (X63.sum(axis=1), X63, "you summed over axis 1, which should stay"),
    "averaged too much": (X63.mean(axis=0), X63, "you averaged over axis 0 (the batch axis?), which should stay"),
    "extra singleton": (X63[None], X63, "extra axis of size 1 at position 0"),
    "missing singleton": (X63, X63[:, None, :], "missing axis of size 1 at position 1"),
    "reshaped": (X63.reshape(3, 6), X63, "the right numbers in the wrong shape: got.reshape(6, 3) matches"),
    "permuted": (T234.transpose(2, 0, 1), T234, "axes in the wrong order: got.transpose(1, 2, 0) matches"),
    "broadcast along an axis": (V5[:3] + y[:3, None], (V5[:3] + y[:3])[None, :],  # a column bias for a row
                                "axis 0 grew from 1 to 3: an operand of the wrong shape was broadcast along it, "
                                "e.g. (3, 1) where (3,) is meant?"),
}


@pytest.mark.parametrize("case", SHAPE_CASES, ids=str)
def test_shape_diagnosis_fires_on_its_mistake_only(case):
    got, expected, phrase = SHAPE_CASES[case]
    message = failed(got, expected)
    assert f"shape {checks.format_shape(got.shape)}, expected {checks.format_shape(expected.shape)}" in message
    assert phrase in message
    for other, (_, _, other_phrase) in SHAPE_CASES.items():
        if other != case and other_phrase not in phrase:
            assert other_phrase not in message, other


@pytest.mark.parametrize("case", ["transposed", "missing sum", "summed too much",
                                  "broadcast", "reshaped", "permuted"], ids=str)
def test_value_confirmed_shape_diagnosis_needs_matching_values(case):
    got, expected, phrase = SHAPE_CASES[case]
    message = failed(fresh(got.shape), expected)
    assert phrase not in message


def test_wrong_values_in_a_singleton_shape_are_reported_too():
    message = failed(fresh(5), V5[:, None])
    assert "you returned (5,) where (5, 1) is expected" in message
    assert "(and the values differ too)" in message


def test_unconfirmed_shape_guesses():
    assert "a (5,) and a (5, 1) broadcasting against each other?" in failed(fresh((5, 5)), V5)
    assert "an extra axis of size 6 at position 0" in failed(fresh((6, 3)), V5[:3])
    assert "axis 0 (size 6) is missing" in failed(fresh(3), X63)


def test_grown_axis_is_a_broadcast_only_when_nothing_else_explains_it():
    # one axis grown from 1, the others equal; no example when the sizes do not fit one
    assert failed(fresh((4, 3)), X63[:1]).endswith(
        " — axis 0 grew from 1 to 4: an operand of the wrong shape was broadcast along it?")
    # a confirmed missing reduction wins over the broadcast guess
    assert "grew" not in failed(X63, X63.sum(axis=0, keepdims=True))
    # the (N,) against (N, 1) diagnosis is kept for a grown last axis
    assert "a (5,) and a (5, 1) broadcasting against each other?" in failed(fresh((5, 5)), V5[:, None])
    for got_shape, expected_shape in [((3, 3), (2, 3)), ((3, 4), (1, 3)), ((1, 3), (3, 3)), ((3, 3), (1, 1))]:
        assert "grew" not in failed(fresh(got_shape), np.ones(expected_shape)), (got_shape, expected_shape)


def test_unrelated_shape_gets_a_plain_line():
    message = failed(fresh((2, 9)), X63)
    assert message == "✗ dW      shape (2, 9), expected (6, 3)"


SHAPE_ONLY = [
    ((4, 3), (3, 4), "shape is reversed"),
    ((5,), (5, 1), "keep the axis (keepdims=True)"),
    ((5, 1), (5,), "drop the axis"),
    ((5, 5), (5,), "broadcasting against each other?"),
    ((7, 3, 4), (3, 4), "an extra axis of size 7 at position 0"),
    ((1, 3, 4), (3, 4), "extra axis of size 1 at position 0"),
    ((3, 3), (1, 3), "axis 0 grew from 1 to 3: an operand of the wrong shape was broadcast along it, e.g. (3, 1) "
                     "where (3,) is meant, or a sum / mean over axis 0 (keepdims=True) is missing?"),
    ((2, 4, 4), (2, 1, 4), "axis 1 grew from 1 to 4: an operand of the wrong shape was broadcast along it, e.g. (4, 1)"),
]


@pytest.mark.parametrize("got_shape, expected_shape, phrase", SHAPE_ONLY)
def test_assert_shape_diagnoses_from_shapes(got_shape, expected_shape, phrase):
    with pytest.raises(CheckFailed) as info:
        checks.assert_shape("h", np.zeros(got_shape), expected_shape)
    message = str(info.value)
    assert message.startswith("✗ h ")
    assert f"shape {checks.format_shape(got_shape)}, expected {checks.format_shape(expected_shape)}" in message
    assert phrase in message


def test_assert_shape_passes_and_rejects_junk():
    assert checks.assert_shape("h", np.zeros((2, 3)), (2, 3)) is None
    assert checks.assert_shape("h", [[1, 2, 3]], [1, 3]) is None
    with pytest.raises(CheckFailed, match="did you forget `return`"):
        checks.assert_shape("h", None, (2, 3))


# ----------------------------------------------------------------------------------------------
# value diagnoses

nan_at_12 = E34.copy()
nan_at_12[1, 2] = np.nan
inf_at_00 = E34.copy()
inf_at_00[0, 0] = np.inf
BIAS_HINT = "got − expected is the same in every row: a bias missing, added twice, or of the wrong sign?"
VALUE_CASES = {
    "nan": (nan_at_12, E34, "NaN at [1, 2]: an unstable exp/log or a 0/0?"),
    "inf": (inf_at_00, E34, "inf at [0, 0]: an overflowing exp or a division by 0?"),
    "sign": (-E34, E34, "sign flipped (got ≈ -expected)"),
    "double": (2 * E34, E34, "looks off by a factor of 2 (got ≈ 2 × expected)"),
    "half": (E34 / 2, E34, "looks off by a factor of 2 (got ≈ expected / 2)"),
    "negative double": (-2 * E34, E34, "sign flipped and looks off by a factor of 2 (got ≈ -2 × expected)"),
    "batch mean": (E73 / 7, E73, "looks off by a factor of N = 7, the batch size? (got ≈ expected / 7: a mean where a sum is expected?)"),
    "batch sum": (E73 * 7, E73, "looks off by a factor of N = 7, the batch size? (got ≈ 7 × expected: a sum where a mean is expected?)"),
    "axis factor": (E34 * 4, E34, "looks off by a factor of 4, the size of axis 1?"),
    "other integer": (E34 / 10, E34, "looks off by a factor of 10 (got ≈ expected / 10"),
    "constant": (E34 * 0.75, E34, "got ≈ 0.75 × expected (a constant factor)"),
    "zeros": (np.zeros((3, 4)), E34, "all zeros — gradient not accumulated / function not applied?"),
    "transpose": (SQ.T, SQ, "matches the transpose (got ≈ expected.T)"),
    "float32": (E34.astype(np.float32), E34, "got float32 values; compute in float64 (the reference is float64)"),
    "close": (E34 * (1 + 1e-6), E34, "close, but not within rtol=1e-07"),
    "relu": (E73, np.maximum(E73, 0.0), "negative values where 0 is expected: a missing ReLU / clip at 0?"),
    "bias": (E34 + V5[:4], E34, BIAS_HINT),
    "bias twice": (E34 + 2 * V5[:4], E34 + V5[:4], BIAS_HINT),
    "scalar bias": (E34 - 0.25, E34, BIAS_HINT),
}


@pytest.mark.parametrize("case", VALUE_CASES, ids=str)
def test_value_diagnosis_fires_on_its_mistake_only(case):
    got, expected, phrase = VALUE_CASES[case]
    tol = {"rtol": 1e-9} if case == "float32" else {}
    message = failed(got, expected, **tol)
    assert phrase in message
    for other, (_, _, other_phrase) in VALUE_CASES.items():
        if other != case and other_phrase not in phrase:
            assert other_phrase not in message, other


UNRELATED = {
    "random": lambda e: fresh(e.shape),
    "one element": lambda e: e + np.eye(*e.shape) * np.eye(*e.shape)[:, :1] * 0.3,  # only [0, 0]
    "row offsets": lambda e: e + 0.25 * np.arange(len(e))[:, None],  # a different offset in each row
    "shuffled rows": lambda e: e[::-1],
    "squared": lambda e: e**2,
}


@pytest.mark.parametrize("mistake", UNRELATED.values(), ids=UNRELATED.keys())
@pytest.mark.parametrize("expected", [E34, E73, SQ], ids=["(3, 4)", "(7, 3)", "(4, 4)"])
def test_no_hint_on_unrelated_errors(mistake, expected):
    message = failed(mistake(expected), expected)
    assert EM_DASH not in message


def test_factor_hint_needs_a_nonzero_reference():
    message = failed(fresh((3, 4)), np.zeros((3, 4)))
    assert "factor" not in message and "zeros" not in message


def test_symmetric_reference_gives_no_transpose_hint():
    sym = SQ + SQ.T
    message = failed(sym + 0.5 * np.eye(4), sym)
    assert "transpose" not in message


def test_relu_hint_needs_negatives_exactly_where_zero_is_expected():
    relu = np.maximum(E73, 0.0)
    for got in (np.abs(E73),  # positive where 0 is expected
                np.minimum(E73, 0.0),  # also wrong where expected is positive
                E73 - 0.1):  # every element off
        assert "ReLU" not in failed(got, relu)
    assert "ReLU" not in failed(E73 - 1.0, E73)  # expected has negative values itself
    assert "ReLU" not in checks.compare_scalar("x", -0.5, 0.0).message  # one number says nothing
    one = relu.copy()
    one[np.argmin(E73.reshape(-1)) // 3, np.argmin(E73.reshape(-1)) % 3] = E73.min()
    assert "a missing ReLU / clip at 0?" in failed(one, relu)  # a single missed clip is still clear


def test_bias_hint_needs_a_clear_repeated_row():
    b = V5[:4]
    assert "same in every row" not in failed(E34[:1] + b, E34[:1])  # one row: nothing repeats
    assert "same in every row" not in failed(V5 + 0.5, V5)  # a vector has no rows
    rows = np.tile(b, (3, 1))
    assert "same in every row" not in failed(fresh((1, 4)) + rows, rows)  # expected repeats its rows itself
    # a difference at the level of the tolerance has no structure worth reading
    assert "same in every row" not in failed(E34 * (1 + 3e-7), E34)
    assert "same in every row" not in failed(E34.astype(np.float32), E34, rtol=1e-9)


def test_max_rel_is_left_out_when_expected_has_zeros():
    expected = E34.copy()
    expected[0, 0] = 0.0
    got = expected + fresh((3, 4))
    message = failed(got, expected)
    assert "max rel" not in message and "inf" not in message
    assert "max rel " in failed(E34 + fresh((3, 4)), E34)  # kept when it is finite


def test_nan_counts_extra_positions():
    got = E34.copy()
    got[0, 1] = got[2, 3] = got[1, 1] = np.nan
    message = failed(got, E34)
    assert "NaN at [0, 1] (and 2 more)" in message
    assert "max |Δ| nan at [0, 1] (got nan" in message


# ----------------------------------------------------------------------------------------------
# NaN, inf, 0-d and zero-size


def test_nan_where_expected_nan_counts_as_equal():
    expected = np.array([1.0, np.nan, np.inf, -np.inf])
    assert checks.compare("a", expected.copy(), expected).ok
    assert not checks.compare("a", np.array([1.0, 0.0, np.inf, -np.inf]), expected).ok
    assert not checks.compare("a", np.array([1.0, np.nan, np.inf, np.inf]), expected).ok
    assert not checks.compare("a", np.array([1.0, np.nan, 1e308, -np.inf]), expected).ok
    assert not checks.compare("a", np.array([np.inf]), np.array([1e308])).ok


def test_zero_size_arrays_compare_ok_when_shapes_match():
    result = checks.compare("e", np.zeros((0, 3)), np.zeros((0, 3)))
    assert result.ok and result.message == "✓ e       (0, 3)  empty"
    assert checks.compare("e", [], np.zeros(0)).ok
    assert "shape (3, 0), expected (0, 3)" in checks.compare("e", np.zeros((3, 0)), np.zeros((0, 3))).message


def test_zero_dim_values():
    assert checks.compare("s", 2.0, 2.0).ok
    assert checks.compare("s", np.float32(0.5), np.array(0.5)).ok
    assert checks.compare("s", np.array(3), 3).ok
    message = checks.compare("s", 4.0, 2.0).message
    assert message.startswith("✗ s       ()  max |Δ| 2.00e+00 (got 4, expected 2)")
    assert "at [" not in message
    assert "extra axis of size 1 at position 0" in checks.compare("s", [2.0], 2.0).message


def test_tolerances_are_keyword_only_and_used():
    assert checks.compare("a", E34 * (1 + 1e-5), E34, rtol=1e-4).ok
    assert not checks.compare("a", E34 + 1e-5, E34, rtol=0, atol=1e-6).ok
    assert checks.compare("a", E34 + 1e-5, E34, rtol=0, atol=1e-4).ok
    with pytest.raises(TypeError):
        checks.compare("a", E34, E34, 1e-3)  # type: ignore[misc]


@settings(max_examples=60, deadline=None, database=None)
@given(arrays(np.float64, array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
              elements=st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)))
def test_property_equal_passes_and_big_change_fails(x):
    assert checks.compare("x", x.copy(), x).ok
    if x.size:
        changed = checks.compare("x", x + (1.0 + np.abs(x)), x)
        assert not changed.ok
        assert changed.message.startswith("✗ x ")


# ----------------------------------------------------------------------------------------------
# conversion: an allow-list of exact types; nothing else is asked anything

CALLS: list = []


class Liar:
    """Claims, through every protocol it can, to be whatever it is compared with."""

    def __init__(self, claim):
        self.claim = claim

    def _log(name):  # noqa: N805 - a decorator factory used in the class body
        def method(self, *args, **kwargs):
            CALLS.append(name)
            if name in ("__eq__", "__bool__", "__contains__"):
                return True
            if name == "__ne__":
                return False
            if name in ("__float__", "item"):
                return float(np.asarray(self.claim).reshape(-1)[0])
            if name in ("__int__", "__index__", "__len__"):
                return 3
            if name == "__iter__":
                return iter(np.asarray(self.claim))
            if name in ("__repr__", "__str__"):
                return "array(it is right)"
            return np.asarray(self.claim)

        return method

    for _name in ("__eq__", "__ne__", "__bool__", "__float__", "__int__", "__index__", "__len__",
                  "__iter__", "__getitem__", "__array__", "__repr__", "__str__", "__contains__",
                  "numpy", "item", "detach", "cpu", "tolist", "astype", "__abs__", "__sub__",
                  "__rsub__", "__mul__", "__rmul__"):
        locals()[_name] = _log(_name)
    del _name, _log

    __hash__ = object.__hash__

    @property
    def shape(self):
        CALLS.append("shape")
        return np.shape(self.claim)

    @property
    def dtype(self):
        CALLS.append("dtype")
        return np.dtype(np.float64)

    @property
    def __array_interface__(self):
        CALLS.append("__array_interface__")
        return np.asarray(self.claim).__array_interface__


class LyingArray(np.ndarray):
    """A genuine ndarray whose Python-level methods all claim to equal CLAIM."""

    CLAIM = E34

    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)

    __ne__ = lambda self, other: np.zeros(np.shape(other), dtype=bool)  # noqa: E731
    __hash__ = None

    def __array__(self, dtype=None, copy=None):
        return LyingArray.CLAIM.copy()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return LyingArray.CLAIM.copy()

    def __array_function__(self, func, types, args, kwargs):
        return LyingArray.CLAIM.copy()

    def __getitem__(self, item):
        return LyingArray.CLAIM[item]

    def __float__(self):
        return float(LyingArray.CLAIM.reshape(-1)[0])

    def __bool__(self):
        return True

    def astype(self, *args, **kwargs):
        return LyingArray.CLAIM.copy()

    def copy(self, *args, **kwargs):
        return LyingArray.CLAIM.copy()

    def tolist(self):
        return LyingArray.CLAIM.tolist()


def lying_array(real_data):
    return np.asarray(real_data, dtype=np.float64).view(LyingArray)


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()
    yield


def test_liar_is_rejected_and_never_asked_anything():
    liar = Liar(E34)
    result = checks.compare("dW", liar, E34)
    assert not result.ok
    assert "expected a NumPy array, got <class" in result.message and "Liar'>" in result.message
    with pytest.raises(CheckFailed, match="dW: expected a NumPy array"):
        checks.as_array("dW", liar)
    assert not checks.compare_scalar("loss", Liar(2.5), 2.5).ok
    assert not checks.compare_shape_tuple("out", Liar((3, 4)), (3, 4)).ok
    with pytest.raises(CheckFailed):
        checks.assert_shape("dW", liar, (3, 4))
    with pytest.raises(CheckFailed):
        checks.assert_close("dW", liar, E34)
    assert CALLS == []


@pytest.mark.parametrize("container", [list, tuple])
def test_liar_inside_a_list_is_rejected(container):
    result = checks.compare("dW", container([Liar(E34[0]), E34[1], E34[2]]), E34)
    assert not result.ok and "Liar" in result.message
    assert CALLS == []


def test_lying_ndarray_subclass_is_judged_by_its_real_data():
    wrong = lying_array(np.zeros((3, 4)))
    result = checks.compare("dW", wrong, E34)
    assert not result.ok
    assert "all zeros" in result.message
    assert checks.compare("dW", lying_array(E34), E34).ok  # right data: right answer
    assert not checks.compare_scalar("loss", lying_array([[2.0]]), 2.0).ok
    assert checks.as_array("dW", wrong).sum() == 0.0
    assert type(checks.as_array("dW", wrong)) is np.ndarray


def test_lying_subclass_with_fake_shape_property():
    class FakeShape(np.ndarray):
        shape = property(lambda self: (3, 4))
        ndim = property(lambda self: 2)
        size = property(lambda self: 12)

    fake = np.arange(5.0).view(FakeShape)
    message = checks.compare("dW", fake, E34).message
    assert "shape (5,), expected (3, 4)" in message


def test_object_claiming_to_be_an_ndarray_is_rejected():
    class Spoof:
        @property
        def __class__(self):
            return np.ndarray

    spoof = Spoof()
    assert isinstance(spoof, np.ndarray)  # isinstance can be fooled ...
    result = checks.compare("dW", spoof, E34)  # ... the checks cannot
    assert not result.ok and "Spoof" in result.message


def test_metaclass_repr_is_never_called():
    class LoudMeta(type):
        def __repr__(cls):
            raise RuntimeError("repr of the class was called")

    class Sneaky(metaclass=LoudMeta):
        pass

    result = checks.compare("dW", Sneaky(), E34)
    assert not result.ok and "Sneaky'>" in result.message


def test_metaclass_cannot_fake_membership_of_the_allow_list():
    class PoseMeta(type):
        def __eq__(cls, other):
            return True

        def __hash__(cls):
            return hash(np.float64)

    class Poser(metaclass=PoseMeta):
        def __float__(self):
            return 2.5

        def __array__(self, dtype=None, copy=None):
            return np.array(2.5)

    assert Poser in {np.float64}  # a set lookup is fooled ...
    for result in (checks.compare("loss", Poser(), 2.5), checks.compare_scalar("loss", Poser(), 2.5),
                   checks.compare_shape_tuple("out", (Poser(),), (2,))):
        assert not result.ok and "Poser" in result.message  # ... the checks are not


class LyingFloat(float):
    def __float__(self):
        return 2.5

    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


class LyingFloat64(np.float64):
    def __float__(self):
        return 2.5


class LyingInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class LyingTuple(tuple):
    def __eq__(self, other):
        return True

    __hash__ = tuple.__hash__


@pytest.mark.parametrize("got", [LyingFloat(0.0), LyingFloat64(0.0), LyingInt(0)],
                         ids=lambda v: type(v).__name__)
def test_lying_scalar_subclasses_are_rejected(got):
    for result in (checks.compare_scalar("loss", got, 2.5), checks.compare("loss", got, 2.5)):
        assert not result.ok
        assert f"{type(got).__name__}'>" in result.message


def test_lying_shape_tuples_are_rejected():
    assert not checks.compare_shape_tuple("out", LyingTuple((3, 5)), (3, 4)).ok
    result = checks.compare_shape_tuple("out", (LyingInt(3), 4), (3, 4))
    assert not result.ok and "element 0 is" in result.message


JUNK = {
    "object": object(),
    "str": "0.5",
    "dict": {"dW": E34},
    "set": {1.0},
    "complex": 1j,
    "complex array": np.ones(3, dtype=complex),
    "str array": np.array(["a", "b"]),
    "structured": np.zeros(3, dtype=[("a", "f8"), ("b", "i4")]),
    "datetime": np.array(["2024-01-01"], dtype="datetime64[D]"),
    "object array": np.array([1.0, None], dtype=object),
    "mixed list": [1.0, "a"],
    "ragged": [[1.0, 2.0], [3.0]],
    "lambda": lambda: E34,
    "generator": (v for v in (1.0, 2.0)),
    "range": range(3),
    "bytes": b"\x00" * 8,
    "type": np.ndarray,
    "ellipsis": ...,
    "huge int": 10**400,
    "namedtuple-like": LyingTuple((1.0, 2.0)),
}


@pytest.mark.parametrize("junk", JUNK.values(), ids=JUNK.keys())
def test_compare_never_raises_on_junk(junk):
    for result in (checks.compare("dW", junk, E34), checks.compare_scalar("dW", junk, 1.0),
                   checks.compare_shape_tuple("dW", junk, (3, 4))):
        assert not result.ok
        assert result.message.startswith("✗ dW ")
    with pytest.raises(CheckFailed):
        checks.as_array("dW", junk)


def test_self_containing_list_is_rejected():
    loop: list = [1.0]
    loop.append(loop)
    result = checks.compare("dW", loop, [1.0, 1.0])
    assert not result.ok and "nested more than" in result.message


def test_dtype_messages():
    assert "dtype object" in checks.compare("a", JUNK["object array"], [1.0, 2.0]).message
    assert "complex" in checks.compare("a", JUNK["complex array"], np.ones(3)).message
    assert "dtype <U1" in checks.compare("a", JUNK["str array"], [1.0, 2.0]).message
    assert "ragged" in checks.compare("a", JUNK["ragged"], np.ones((2, 2))).message


@pytest.mark.parametrize("check", [
    lambda got: checks.compare("dW", got, E34),
    lambda got: checks.compare_scalar("dW", got, 1.0),
    lambda got: checks.compare_shape_tuple("dW", got, (3, 4)),
])
def test_none_gets_the_return_hint(check):
    assert check(None).message == "✗ dW      got None — did you forget `return`?"


def test_as_array_none_and_copy():
    with pytest.raises(CheckFailed, match=r"^dW: got None — did you forget `return`\?$"):
        checks.as_array("dW", None)
    source = np.arange(6, dtype=np.int32).reshape(2, 3)
    out = checks.as_array("dW", source)
    assert out.dtype == np.float64 and out.shape == (2, 3)
    out[0, 0] = 99
    assert source[0, 0] == 0
    assert checks.as_array("b", [True, False]).tolist() == [1.0, 0.0]
    assert checks.as_array("l", (np.float32(1), 2, np.int8(-3))).tolist() == [1.0, 2.0, -3.0]
    assert checks.as_array("l", [np.array([1.0, 2.0]), [3, 4]]).shape == (2, 2)


def test_torch_tensors_are_read_by_their_data():
    torch = pytest.importorskip("torch")
    t = torch.tensor(E34, requires_grad=True)
    assert checks.compare("dW", t, E34).ok
    assert checks.compare("dW", t.T, E34.T).ok  # non-contiguous
    assert checks.compare("dW", torch.tensor(E34, dtype=torch.bfloat16), E34, rtol=1e-2, atol=1e-2).ok
    assert "float32 values" in checks.compare("dW", t.float(), E34, rtol=1e-9).message
    param = torch.nn.Parameter(torch.tensor(E34))
    message = checks.compare("dW", param, E34).message
    assert "Parameter" in message and "x.detach()" in message

    class LyingTensor(torch.Tensor):
        def __eq__(self, other):
            return True

    assert not checks.compare("dW", torch.zeros(3, 4).as_subclass(LyingTensor), E34).ok
    assert checks.compare_scalar("loss", torch.tensor([2.0]), 2.0).message.endswith("e.g. value.item()")
    assert checks.compare_scalar("loss", torch.ones(3), 2.0).message.endswith(
        "returned a tensor of shape (3,); return one number as a Python float, not a tensor of 3 numbers")


def test_importing_checks_loads_no_heavy_library():
    code = ("import sys, course.checks, course.gradcheck; "
            "heavy = {'torch', 'matplotlib', 'ipywidgets'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# ----------------------------------------------------------------------------------------------
# scalars


def test_compare_scalar_accepts_real_scalars():
    for got in (2.5, np.float64(2.5), np.float32(2.5), 5 / 2):
        result = checks.compare_scalar("loss", got, 2.5)
        assert result.ok and result.message == "✓ loss    2.5  exact"
    assert checks.compare_scalar("count", 3, 3.0).ok
    assert checks.compare_scalar("count", np.int64(3), 3).ok
    assert checks.assert_scalar("loss", 2.5 + 1e-12, 2.5).ok


def test_compare_scalar_takes_a_0d_array_or_tensor_as_a_number():
    """One contract for visible and hidden checks: the probe hands a 0-d tensor to the judge as a 0-d array."""
    torch = pytest.importorskip("torch")
    for got in (np.array(2.5), torch.tensor(2.5, dtype=torch.float64), torch.tensor(2.5, requires_grad=True)):
        assert checks.compare_scalar("loss", got, 2.5).ok
    assert not checks.compare_scalar("loss", np.array(2.4), 2.5).ok


@pytest.mark.parametrize("shape", [(1, 1), (1,)])
def test_compare_scalar_rejects_arrays_helpfully(shape):
    message = checks.compare_scalar("loss", np.full(shape, 2.5), 2.5).message
    assert message == (f"✗ loss    returned an array of shape {checks.format_shape(shape)}; "
                       "return a Python float, e.g. float(value) or value.item()")


@pytest.mark.parametrize("shape", [(5, 4), (3,), (0,)])
def test_compare_scalar_advice_does_not_suggest_a_reduction(shape):
    message = checks.compare_scalar("loss", np.ones(shape), 2.5).message
    size = int(np.prod(shape))
    assert message == (f"✗ loss    returned an array of shape {checks.format_shape(shape)}; "
                       f"return one number as a Python float, not an array of {size} numbers")
    assert "sum" not in message and "mean" not in message


def test_compare_scalar_rejects_bool_and_lists():
    assert checks.compare_scalar("ok", True, 1.0).message == "✗ ok      returned a bool (True); return a number"
    assert "returned a list" in checks.compare_scalar("ok", [1.0], 1.0).message


LN2 = 0.6931471805599453  # not a round number


@pytest.mark.parametrize("got, expected, hint", [
    (LN2 / 7, LN2, "got is exactly expected / 7: a mean where a sum is expected, or a division too many?"),
    (LN2 * 7, LN2, "got is exactly 7 × expected: a sum where a mean is expected?"),
    (LN2 * 10_000, LN2, "got is exactly 10000 × expected: a sum where a mean is expected?"),
    (-LN2 * 3, LN2, "got is exactly -3 × expected: a sum where a mean is expected?"),
    (1.0, 1 / 3, "got is exactly 3 × expected: a sum where a mean is expected?"),  # one round number is enough
])
def test_compare_scalar_names_exact_integer_ratios(got, expected, hint):
    message = checks.compare_scalar("loss", got, expected).message
    assert message.endswith(f"{EM_DASH}{hint}")
    assert message.count(EM_DASH) == 1


@pytest.mark.parametrize("got, expected", [
    (LN2 * 7 * (1 + 1e-7), LN2),  # close to 7, but not exactly
    (LN2 * 10_001, LN2),  # too big a ratio to be a count
    (LN2 * 1.5, LN2),
    (0.5, 0.0),  # expected 0
    (6.9, 2.3),  # two round numbers: a coincidence as often as not
    (12.0, 3.0),
    (LN2, LN2 * 1.01),
])
def test_compare_scalar_stays_quiet_without_an_exact_ratio(got, expected):
    message = checks.compare_scalar("loss", got, expected).message
    assert "exactly" not in message and EM_DASH not in message


def test_compare_scalar_exact_ratio_is_not_given_for_correct_input_or_for_two():
    assert checks.compare_scalar("loss", LN2, LN2).message == f"✓ loss    {LN2:.4g}  exact"
    message = checks.compare_scalar("loss", 2 * LN2, LN2).message
    assert message.endswith(" — looks off by a factor of 2 (got ≈ 2 × expected)")


def test_compare_scalar_diagnoses_values():
    assert "looks off by a factor of 2 (got ≈ 2 × expected)" in checks.compare_scalar("loss", 4.6, 2.3).message
    assert "sign flipped" in checks.compare_scalar("loss", -2.3, 2.3).message
    assert "NaN: an unstable exp/log" in checks.compare_scalar("loss", float("nan"), 2.3).message
    assert checks.compare_scalar("loss", float("nan"), float("nan")).ok
    quiet = checks.compare_scalar("loss", 6.9, 2.3).message  # a factor of 3 is a coincidence for one number
    assert quiet == "✗ loss    got 6.9, expected 2.3  |Δ| 4.60e+00  rel 2.00e+00"
    with pytest.raises(CheckFailed, match="factor of 2"):
        checks.assert_scalar("loss", 1.15, 2.3)


# ----------------------------------------------------------------------------------------------
# shape tuples

SHAPE_TUPLE_CASES = [
    ((3, 4), "✓ out     (3, 4)"),
    ((np.int64(3), 4), "✓ out     (3, 4)"),
    ([3, 4], "✗ out     returned a list [3, 4]; return a tuple, e.g. (3, 4)"),
    ((3, 5), "✗ out     (3, 5), expected (3, 4) — 5 at position 1 instead of 4 (off by one)"),
    ((3, 3), "✗ out     (3, 3), expected (3, 4) — 3 at position 1 instead of 4 (off by one)"),
    ((1, 4), "✗ out     (1, 4), expected (3, 4) — 1 at position 0 instead of 3"),
    ((2, 7), "✗ out     (2, 7), expected (3, 4) — 2 at position 0 instead of 3, 7 at position 1 instead of 4"),
    ((4, 3), "✗ out     (4, 3), expected (3, 4) — looks reversed"),
    ((3, 4, 1), "✗ out     (3, 4, 1), expected (3, 4) — 3 dims instead of 2: extra axis of size 1 at position 2"),
    ((12,), "✗ out     (12,), expected (3, 4) — 1 dims instead of 2"),
    ((3, 4.0), "✗ out     element 1 is a float (4.0); sizes are ints: use // or int(...)"),
    ((True, 4), "✗ out     element 0 is a bool (True); sizes are ints"),
    (np.array([3, 4]), "✗ out     returned an array of shape (2,); return a tuple of ints, e.g. (N, H)"),
]


@pytest.mark.parametrize("got, message", SHAPE_TUPLE_CASES)
def test_compare_shape_tuple(got, message):
    result = checks.compare_shape_tuple("out", got, (3, 4))
    assert result.message == message
    assert result.ok == message.startswith("✓")


ZERO_HINT = "a size of 0 is a real size: only 1 stretches (0 with 1 gives 0)"


@pytest.mark.parametrize("got, expected, message", [
    ((1,), (0,), "(1,), expected (0,) — 1 at position 0 instead of 0; " + ZERO_HINT),
    ((5, 1), (5, 0), "(5, 1), expected (5, 0) — 1 at position 1 instead of 0; " + ZERO_HINT),
    ((4, 3), (0, 3), "(4, 3), expected (0, 3) — 4 at position 0 instead of 0; " + ZERO_HINT),
    ((0,), (1,), "(0,), expected (1,) — 0 at position 0 instead of 1"),  # not off by one, and no 0 expected
    ((2,), (1,), "(2,), expected (1,) — 2 at position 0 instead of 1"),
    ((0, 3), (3, 0), "(0, 3), expected (3, 0) — looks reversed"),
])
def test_compare_shape_tuple_zero_sizes_and_off_by_one(got, expected, message):
    assert checks.compare_shape_tuple("out", got, expected).message == "✗ out     " + message


def test_zero_hint_needs_an_expected_zero():
    assert checks.compare_shape_tuple("out", (0, 3), (0, 3)).message == "✓ out     (0, 3)"
    assert "size of 0" not in checks.compare_shape_tuple("out", (2, 7), (3, 4)).message


def test_assert_shape_tuple_raises_and_accepts_torch_size():
    with pytest.raises(CheckFailed, match="looks reversed"):
        checks.assert_shape_tuple("out", (4, 3), (3, 4))
    torch = pytest.importorskip("torch")
    assert checks.assert_shape_tuple("out", torch.Size([3, 4]), (3, 4)).ok


# ----------------------------------------------------------------------------------------------
# assert_raises


def strict_add(a, b):
    if a.shape != b.shape:
        raise ValueError(f"shapes {a.shape} and {b.shape} differ: sizes {a.shape[0]} and {b.shape[0]}")
    return a + b


def test_assert_raises_passes_on_the_right_error():
    assert checks.assert_raises("add", strict_add, np.zeros(3), np.zeros(4), mentions=("3", "4")) is None
    assert checks.assert_raises("add", strict_add, np.zeros(3), b=np.zeros(4), mentions=("SIZES",)) is None

    def raises_subclass():
        raise np.linalg.LinAlgError("singular")  # a subclass of ValueError

    checks.assert_raises("inv", raises_subclass)
    checks.assert_raises("any", raises_subclass, exc_type=(TypeError, ValueError))


def test_assert_raises_fails_when_nothing_is_raised():
    with pytest.raises(CheckFailed) as info:
        checks.assert_raises("add", lambda a, b: a + b, np.zeros(3), np.zeros(1))
    assert str(info.value) == ("✗ add     should raise ValueError for shapes (3,) and (1,), "
                               "but returned an array of shape (3,)")


def test_assert_raises_describes_returns_safely():
    with pytest.raises(CheckFailed) as info:
        checks.assert_raises("f", lambda x: Liar(0.0), 5)
    assert "for inputs (5), but returned an object of type <class" in str(info.value)
    assert CALLS == []
    with pytest.raises(CheckFailed, match="but returned None"):
        checks.assert_raises("f", lambda: None)


def test_assert_raises_wrong_exception_type():
    def wrong(a, b):
        raise TypeError("cannot add")

    with pytest.raises(CheckFailed) as info:
        checks.assert_raises("add", wrong, np.zeros(3), np.zeros(4))
    assert str(info.value) == ("✗ add     should raise ValueError for shapes (3,) and (4,), "
                               "but raised TypeError: 'cannot add'")


def test_assert_raises_message_must_mention():
    def vague(a, b):
        raise ValueError("shapes do not match")

    with pytest.raises(CheckFailed) as info:
        checks.assert_raises("add", vague, np.zeros(3), np.zeros(4), mentions=("3", "4"))
    assert str(info.value) == ("✗ add     the ValueError message should mention 3 and 4; "
                               "it was: 'shapes do not match'")


def test_assert_raises_describes_inputs_readably():
    def no_check(a, b):
        return (4, 3)

    with pytest.raises(CheckFailed) as info:
        checks.assert_raises("bs", no_check, (4, 3), (4,))
    assert str(info.value) == "✗ bs      should raise ValueError for inputs ((4, 3), (4,)), but returned (4, 3)"
    with pytest.raises(CheckFailed) as info:
        checks.assert_raises("f", no_check, [1, 2], np.zeros((7, 1)), 2.5, k=np.int64(3), s=(np.float64(0.5), True))
    assert ("for inputs ([1, 2], an array of shape (7, 1), 2.5, k=np.int64(3), s=(0.5, True))"
            in str(info.value))
    with pytest.raises(CheckFailed) as info:
        checks.assert_raises("f", no_check, tuple(range(100)), ())
    message = str(info.value)
    assert "for inputs ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11..., ())" in message
    assert len(message) < 120


def test_describing_a_returned_tuple_reads_only_exact_types():
    with pytest.raises(CheckFailed) as info:
        checks.assert_raises("f", lambda: (3, Liar(0.0)))
    assert str(info.value).endswith("but returned a tuple of length 2")
    with pytest.raises(CheckFailed) as info:
        checks.assert_raises("f", lambda: LyingTuple((3, 4)))
    assert "but returned an object of type <class" in str(info.value)
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(CheckFailed, match="but returned a list of length 2$"):
        checks.assert_raises("f", lambda: loop)
    assert CALLS == []


def test_assert_raises_does_not_call_exception_str():
    class LoudError(ValueError):
        def __str__(self):
            raise RuntimeError("str was called")

    def loud():
        raise LoudError("size 3")

    checks.assert_raises("f", loud, mentions=("3",))
    with pytest.raises(CheckFailed, match="it was: 'size 3'"):
        checks.assert_raises("f", loud, mentions=("4",))


# ----------------------------------------------------------------------------------------------
# tracebacks: the assert_* functions mark their frames hidden (__tracebackhide__, read by pytest and IPython)


PUBLIC_ASSERTS = {
    "assert_close": lambda: checks.assert_close("dW", 2 * E34, E34),
    "assert_shape": lambda: checks.assert_shape("h", np.zeros((2, 3)), (3, 2)),
    "assert_scalar": lambda: checks.assert_scalar("loss", 1.0, 2.0),
    "assert_shape_tuple": lambda: checks.assert_shape_tuple("out", (3, 5), (3, 4)),
    "assert_raises": lambda: checks.assert_raises("f", lambda: None),
}


def test_every_public_assert_is_covered():
    assert {n for n in checks.__all__ if n.startswith("assert_")} == set(PUBLIC_ASSERTS)


@pytest.mark.parametrize("name", PUBLIC_ASSERTS)
def test_assert_functions_hide_their_frame(name):
    import ast
    import inspect

    fn = getattr(checks, name)
    body = ast.parse(inspect.getsource(fn)).body[0].body
    first = body[1] if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body[0]
    assert ast.unparse(first) == "__tracebackhide__ = True"  # the first statement after the docstring
    with pytest.raises(CheckFailed) as info:
        PUBLIC_ASSERTS[name]()
    tb = info.value.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    raising = [f for f in frames if f.f_code is fn.__code__]
    assert raising and raising[0].f_locals.get("__tracebackhide__") is True


def test_jupyter_shows_only_the_diagnosis_of_a_failed_check():
    """IPython renders a CheckFailed through _render_traceback_: the message, no frames of checks.py."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    result = shell.run_cell(
        "from course.checks import assert_close\n"
        "import numpy as np\n"
        "assert_close('dW', np.ones((2, 3)), 2 * np.ones((2, 3)))\n",
        silent=True,
    )
    assert type(result.error_in_exec).__name__ == "CheckFailed"
    rendered = result.error_in_exec._render_traceback_()
    assert "CheckFailed" in rendered[0] and "dW" in rendered[0] and "factor of 2" in rendered[0]
    assert not any("checks.py" in line for line in rendered)


def test_assert_raises_lets_an_unfinished_exercise_show_its_stub():
    def stub(a, b):
        raise NotImplementedError("sse: replace this line with your solution")

    with pytest.raises(NotImplementedError, match="sse: replace this line"):
        checks.assert_raises("sse((N,), (N, 1))", stub, np.zeros(3), np.zeros((3, 1)))


def test_inputs_unchanged_names_the_arrays_changed_in_place():
    X, dY = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    with checks.inputs_unchanged("ReLU.forward", X=X, dY=dY):
        Y = np.maximum(X, 0.0)  # a new array: fine
    assert Y is not X
    with pytest.raises(CheckFailed) as info:
        with checks.inputs_unchanged("ReLU.forward", hint="X[X < 0] = 0 writes into X", X=X, dY=dY):
            X[0, 0] = -1.0
    assert str(info.value) == ("✗ ReLU.forward changed its input X in place; leave the caller's array as it was "
                               "and compute a new one — likely cause: X[X < 0] = 0 writes into X")
    with pytest.raises(CheckFailed, match="its inputs X and dY in place"):
        with checks.inputs_unchanged("f", X=X, dY=dY):
            X += 1.0
            dY *= 2.0
    with pytest.raises(ZeroDivisionError):  # an error inside the block is not masked
        with checks.inputs_unchanged("f", X=X):
            1 / 0
