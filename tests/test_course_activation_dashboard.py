"""The activation explorer of notebook 05 (``course.activation_dashboard``): compute apart from display.

The report uses the student's functions where they are written and torch's otherwise; its shares of
saturated and dead pre-activations are right; the widget is wired to the compute and answers every
control; a change computes in well under 100 ms; the module stays light and holds no solution.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from notebooks import SOURCE
from solutions import solution_namespace

from course.activation_dashboard import (
    ACTIVATIONS,
    SATURATED,
    activation_report,
    benchmark_compute,
    format_activation_report,
)

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("sigmoid", "sigmoid_grad", "tanh_grad", "relu_grad", "leaky_relu", "leaky_relu_grad", "gelu", "gelu_grad")


@pytest.fixture(scope="module")
def mine() -> dict:
    ns = solution_namespace(SOURCE / "05_activations.ipynb")
    return {name: ns[name] for name in NAMES}


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_the_students_functions_are_used_and_agree_with_torch(mine, activation):
    own = activation_report(activation, 2.0, 0.5, mine)
    torch_only = activation_report(activation, 2.0, 0.5, None)
    assert own["sources"]["df"] == "yours" and torch_only["sources"] == {"f": "torch", "df": "torch"}
    assert own["sources"]["f"] == ("torch" if activation in ("tanh", "relu") else "yours")
    for key in ("f", "df"):
        np.testing.assert_allclose(own[key], torch_only[key], rtol=1e-10, atol=1e-15)
    for key in ("saturated", "dead", "mean_abs_grad"):
        assert own[key] == pytest.approx(torch_only[key], rel=1e-9, abs=1e-12)
    assert own["notes"] == []


def test_the_shares_are_those_of_the_normal_distribution():
    relu = activation_report("relu", 1.0, 0.0)
    assert relu["dead"] == pytest.approx(0.5, abs=0.01) and relu["saturated"] == 0.0
    shifted = activation_report("relu", 1.0, -2.0)
    assert shifted["dead"] == pytest.approx(1 - 0.5 * math.erfc(2 / math.sqrt(2)), abs=0.01)   # P(z <= 0) = Φ(2)
    leaky = activation_report("leaky_relu", 1.0, -2.0)
    assert leaky["dead"] == 0.0 and leaky["saturated"] == 0.0      # f' = 0.01 is not below 0.01
    sigmoid = activation_report("sigmoid", 10.0, 0.0)
    # sigma'(z) < 0.01 for |z| > about 4.59: P(|z| > 4.59) with z ~ N(0, 10^2)
    threshold = math.log((1 + math.sqrt(1 - 4 * SATURATED)) / (1 - math.sqrt(1 - 4 * SATURATED)))
    assert sigmoid["saturated"] + sigmoid["dead"] == pytest.approx(math.erfc(threshold / 10 / math.sqrt(2)), abs=0.01)
    calm = activation_report("sigmoid", 1.0, 0.0)
    assert calm["saturated"] < 0.001 and calm["mean_abs_grad"] == pytest.approx(0.2066, abs=0.002)
    assert activation_report("tanh", 30.0, 0.0)["dead"] > 0.3       # tanh rounds to ±1: f' exactly 0


def test_the_histogram_and_grid_cover_the_sample():
    report = activation_report("gelu", 3.0, 1.0)
    assert report["counts"].sum() == report["settings"]["samples"]
    assert report["edges"][0] == report["x"][0] and report["edges"][-1] == report["x"][-1]
    assert report["x"][0] <= 1.0 - 4 * 3.0


def test_an_unwritten_or_broken_function_falls_back_to_torch_and_says_so(capfd):
    def stub(x):
        raise NotImplementedError("sigmoid: replace this line with your solution")

    report = activation_report("sigmoid", 1.0, 0.0, {"sigmoid": stub, "sigmoid_grad": lambda x: (x > 0).tolist()})
    assert report["sources"] == {"f": "torch", "df": "torch"}
    text = format_activation_report(report)
    assert "not written yet" in text and "a list" in text

    def steep(x):  # overflows on the grid: its warning becomes a note, never stderr
        return 1.0 / (1.0 + np.exp(-100.0 * x))

    report = activation_report("sigmoid", 50.0, 0.0, {"sigmoid": steep})
    assert report["sources"]["f"] == "yours" and any("overflow" in note for note in report["notes"])
    report = activation_report("gelu", 1.0, 0.0, {"gelu": lambda x: 1 / 0})
    assert "ZeroDivisionError" in format_activation_report(report)
    assert capfd.readouterr().err == ""


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="activation"):
        activation_report("swish")
    with pytest.raises(ValueError, match="std"):
        activation_report("relu", 0.0)


def test_format_and_plot(mine):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course.activation_dashboard import plot_activation_report

    report = activation_report("tanh", 5.0, 0.0, mine)
    text = format_activation_report(report)
    assert "saturated" in text and "dead" in text and "f': yours" in text
    for activation in ACTIVATIONS:
        fig, ax = plot_activation_report(activation_report(activation, 1.0, 0.0, mine))
        assert len(ax.get_lines()) >= 2
        plt.close(fig)


def test_the_explorer_has_its_controls_and_every_control_redraws(mine):
    import matplotlib

    matplotlib.use("Agg")
    import ipywidgets as widgets

    from course.activation_dashboard import activation_explorer

    box = activation_explorer(**mine)
    controls = {w.description: w for w in box.children[0].children}
    assert set(controls) == {"activation", "std of z", "mean of z"}
    assert list(controls["activation"].options) == list(ACTIVATIONS)
    assert isinstance(controls["std of z"], widgets.FloatLogSlider)
    status = box.children[1]
    for description, value in (("activation", "relu"), ("std of z", 10.0), ("mean of z", -2.0)):
        status.value = ""
        controls[description].value = value
        assert "compute" in status.value and "ms" in status.value, description
    with pytest.raises(TypeError, match="unknown functions"):
        activation_explorer(softplus=np.log1p)


@pytest.mark.parametrize("activation", ["sigmoid", "gelu"])
def test_compute_per_change_is_under_100_ms(mine, activation):
    """The best of seven runs (a busy 2-core machine can stretch any single run), with the student's
    functions: gelu_grad through np.vectorize(math.erf) is the slowest."""
    timing = benchmark_compute(mine, activation=activation, std=3.0)
    assert timing["best_ms"] < 100, timing


def test_importing_the_module_stays_light_and_it_holds_no_solution():
    code = ("import sys, course.activation_dashboard, course.elementwise; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
    for module in ("activation_dashboard.py", "elementwise.py"):
        text = (ROOT / "course" / module).read_text()
        for name in NAMES + ("collapse_linear", "dead_units"):
            assert f"def {name}(" not in text, (module, name)
        for formula in ("1 - s", "1.0 - s", "erf(", "np.tanh(", "W2 @ W1", "math.sqrt(2"):
            assert formula not in text, (module, formula)
