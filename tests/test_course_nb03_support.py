"""Support code of notebook 03 in ``course``: the sine data set and the training plots."""
from __future__ import annotations

import numpy as np
import pytest


def test_make_sine_shapes_range_and_determinism():
    from course.data import make_sine

    X, y = make_sine(50, np.random.default_rng(0), noise=0.0)
    assert X.shape == (50, 1) and y.shape == (50, 1)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert np.all(np.diff(X[:, 0]) >= 0), "X is sorted"
    assert X.min() >= -3.0 and X.max() < 3.0
    np.testing.assert_allclose(y, np.sin(X))
    X2, y2 = make_sine(50, np.random.default_rng(0), noise=0.0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_make_sine_noise_and_empty():
    from course.data import make_sine

    X, y = make_sine(4000, np.random.default_rng(1), noise=0.1)
    assert abs(float(np.std(y - np.sin(X))) - 0.1) < 0.01
    X0, y0 = make_sine(0, np.random.default_rng(2))
    assert X0.shape == (0, 1) and y0.shape == (0, 1)


def test_make_sine_rejects_bad_arguments():
    from course.data import make_sine

    with pytest.raises(TypeError):
        make_sine(3, 0)
    with pytest.raises(ValueError):
        make_sine(-1, np.random.default_rng(0))


def test_make_sine_leaves_global_random_state_alone():
    from course.data import make_sine

    state = np.random.get_state()
    make_sine(10, np.random.default_rng(0))
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_plot_loss_curve_draws_the_history():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from course.plots import plot_loss_curve

    fig, ax = plot_loss_curve({"loss": [1.0, 0.5, 0.25]})
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), [1.0, 0.5, 0.25])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step"
    plt.close(fig)
    fig, ax = plot_loss_curve([0.0, 1.0], log=True)    # a zero loss: stays linear
    assert ax.get_yscale() == "linear"
    plt.close(fig)
    with pytest.raises(ValueError):
        plot_loss_curve({"loss": []})


def test_plot_fit_1d_draws_data_and_curve():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from course.plots import plot_fit_1d

    X = np.linspace(-1, 1, 5).reshape(-1, 1)
    fig, ax = plot_fit_1d(X, X ** 2, X, X ** 2 + 0.1)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), (X ** 2 + 0.1).ravel())
    plt.close(fig)
    with pytest.raises(ValueError):
        plot_fit_1d(X, X[:3], X, X)


def test_course_holds_no_graded_solution_of_notebook_03():
    import inspect

    import course
    import course.data
    import course.plots

    for module in (course, course.data, course.plots, course.checks, course.gradcheck):
        text = inspect.getsource(module)
        for name in ("class Linear", "class ReLU", "class MSELoss", "class Sequential", "def train_step"):
            assert name not in text, (module.__name__, name)
