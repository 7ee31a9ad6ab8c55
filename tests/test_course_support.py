"""The notebooks' support code in ``course``: data sets, the broadcasting explorer's
compute and formatting functions, and plots."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from solutions import solution_namespace

NOTEBOOK_01 = Path(__file__).resolve().parents[1] / "source" / "week1" / "01_tensors_and_shapes.ipynb"


@pytest.fixture(scope="module")
def ref() -> dict:
    return solution_namespace(NOTEBOOK_01)


def test_perceptron_batch_numbers():
    from course.data import perceptron_batch

    batch = perceptron_batch()
    assert batch.X.shape == (7, 3) and batch.W.shape == (1, 4) and batch.y_true.shape == (7, 1)
    z = np.hstack([np.ones((7, 1)), batch.X]) @ batch.W.T
    assert np.array_equal(np.maximum(z, 0).ravel(), [0.625, 0.375, 3.0, 0.0, 0.875, 3.25, 0.0])
    assert float(((batch.y_true - np.maximum(z, 0)) ** 2).sum()) == 9.359375
    batch.X[0, 0] = 99.0
    assert perceptron_batch().X[0, 0] == 1.0  # fresh arrays on every call


def test_make_regression_shapes_and_determinism():
    from course.data import make_regression

    X, y, W, b = make_regression(12, 3, np.random.default_rng(0), h=2, noise=0.0)
    assert X.shape == (12, 3) and y.shape == (12, 2) and W.shape == (2, 3) and b.shape == (2,)
    np.testing.assert_allclose(y, X @ W.T + b)
    X2, *_ = make_regression(12, 3, np.random.default_rng(0), h=2, noise=0.0)
    np.testing.assert_array_equal(X, X2)
    with pytest.raises(TypeError):
        make_regression(3, 2, 0)


@pytest.mark.parametrize("text, shape", [("32, 128", (32, 128)), ("(3, 1)", (3, 1)), ("[0]", (0,)),
                                         ("", ()), ("()", ()), ("7,", (7,))])
def test_parse_shape(text, shape):
    from course.widgets import parse_shape

    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["a", "-1", "3,,4", "2.5"])
def test_parse_shape_rejects(text):
    from course.widgets import parse_shape

    with pytest.raises(ValueError):
        parse_shape(text)


def test_broadcast_report_compute(ref):
    from course.widgets import broadcast_report, format_report, report_html

    report = broadcast_report((32, 128), (128,), ref["broadcast_shape"])
    assert report["numpy"] == (32, 128) and report["agree"] is True
    assert [c["axis"] for c in report["columns"]] == [-2, -1]
    assert report["columns"][0]["b"] is None  # the missing axis, shown as (1)

    failing = broadcast_report((4, 3), (4,), ref["broadcast_shape"])
    assert failing["numpy"] is None and "mismatch" in failing["numpy_error"]
    assert failing["agree"] is True and "ValueError" in failing["student"]
    assert failing["columns"][-1]["note"].startswith("✗ 3 vs 4")

    def not_done(a, b):
        raise NotImplementedError("broadcast_shape: write your code")

    pending = broadcast_report((0,), (1,), not_done)
    assert pending["numpy"] == (0,) and pending["agree"] is None and "not written yet" in pending["student"]
    assert "differs" not in format_report(pending) and "differs" not in report_html(pending)
    assert "(1)" in format_report(report) and "agrees with NumPy" in format_report(report)
    assert "<table" in report_html(failing) and "error" in report_html(failing)
    assert "no axes" in format_report(broadcast_report((), ()))


def test_broadcast_explorer_builds():
    from course.widgets import broadcast_explorer

    box = broadcast_explorer(lambda a, b: a, a="3, 1", b="1, 3")
    html_out = box.children[1]
    assert "(3, 3)" in html_out.value and "differs from NumPy" in html_out.value
    box.children[0].children[1].value = "x"
    assert "cannot read" in html_out.value


def test_plots_return_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from course.plots import plot_grid, plot_timings

    fig, ax = plot_grid(np.arange(6.0).reshape(2, 3), title="grid")
    assert ax.get_title() == "grid"
    plt.close(fig)
    fig, ax = plot_timings(["slow", "fast"], [0.1, 0.001])
    assert len(ax.patches) == 2
    plt.close(fig)
    with pytest.raises(ValueError):
        plot_timings(["a"], [0.0])
