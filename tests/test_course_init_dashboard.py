"""The init-scale slider of notebook 04 (``course.init_dashboard``): compute apart from display.

The report's activation statistics are the student's ``forward_stats`` (here the notebook's own
solution), its weight gradients PyTorch's; the widget is wired to both; a change computes in well
under 100 ms at the default sizes; the module stays light and holds no solution.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from notebooks import SOURCE
from solutions import solution_namespace

from course.init_dashboard import (
    ACTIVATIONS,
    DEFAULTS,
    HEALTHY,
    NOT_WRITTEN,
    SCHEMES,
    benchmark_compute,
    draw_weights,
    format_init_report,
    init_scale_report,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def forward_stats():
    return solution_namespace(SOURCE / "04_init_and_normalization.ipynb")["forward_stats"]


def _inside(std: np.ndarray) -> np.ndarray:
    return (std >= HEALTHY[0]) & (std <= HEALTHY[1])


def test_report_holds_the_students_statistics_and_torchs_gradients(forward_stats):
    report = init_scale_report(forward_stats, "Xavier", "tanh", depth=12, scale=1.5)
    assert report["message"] is None and report["layers"] == list(range(1, 13))
    weights = [W.numpy() for W in draw_weights("Xavier", 12, 1.5)]
    X = np.random.default_rng(0).standard_normal((DEFAULTS["batch"], DEFAULTS["width"]))
    expected = forward_stats(X, weights, "tanh")
    np.testing.assert_allclose(report["act_mean"], expected[:, 0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(report["act_std"], expected[:, 1], rtol=1e-12)

    leaves = [torch.tensor(W, requires_grad=True) for W in weights]
    H = torch.from_numpy(X)
    for W in leaves:
        H = torch.tanh(H @ W.T)
    G = np.random.default_rng(1).standard_normal(X.shape) / X.shape[0]
    H.backward(torch.from_numpy(G))
    np.testing.assert_allclose(report["grad_std"], [W.grad.std(correction=0).item() for W in leaves], rtol=1e-10)
    assert set(report["act_hist"]["counts"]) == {1, 3, 6, 9, 12}
    for hist in (report["act_hist"], report["grad_hist"]):
        assert len(hist["edges"]) == 41
        assert all(c.sum() == DEFAULTS["batch"] * DEFAULTS["width"] or c.sum() == DEFAULTS["width"] ** 2
                   for c in hist["counts"].values())


@pytest.mark.parametrize("scheme, activation", [("Kaiming", "relu"), ("Xavier", "linear")])
def test_the_right_scheme_stays_in_the_healthy_band_and_a_scale_off_one_leaves_it(forward_stats, scheme, activation):
    healthy = init_scale_report(forward_stats, scheme, activation, depth=20, scale=1.0)
    assert _inside(healthy["act_std"]).all(), healthy["act_std"]
    for scale, leaves_below in ((0.5, True), (2.0, False)):
        report = init_scale_report(forward_stats, scheme, activation, depth=20, scale=scale)
        first_out = int(np.argmax(~_inside(report["act_std"])))
        assert not _inside(report["act_std"]).all() and first_out < 5, (scale, report["act_std"])
        assert (report["act_std"][-1] < HEALTHY[0]) == leaves_below


def test_the_extreme_schemes_explode_and_collapse(forward_stats):
    big = init_scale_report(forward_stats, "N(0, 1)", "relu", depth=10)
    tiny = init_scale_report(forward_stats, "N(0, 0.01²)", "relu", depth=10)
    assert big["act_std"][-1] > 1e8 and tiny["act_std"][-1] < 1e-8
    default = init_scale_report(forward_stats, "PyTorch default", "relu", depth=20)
    assert default["act_std"][-1] < 1e-6  # shrinks by sqrt(6) per layer


def test_overflow_is_reported_not_raised(forward_stats):
    report = init_scale_report(forward_stats, "N(0, 1)", "linear", depth=50, scale=100.0)
    text = format_init_report(report)
    assert "overflow" in text or "inf" in text


def test_an_unwritten_forward_stats_says_so_and_the_gradients_still_show():
    def forward_stats(X, weights, activation):
        raise NotImplementedError("forward_stats: replace this line with your solution")

    report = init_scale_report(forward_stats)
    assert report["message"] == NOT_WRITTEN and report["act_std"] is None and report["act_hist"] is None
    assert report["grad_std"].shape == (DEFAULTS["depth"],)
    assert "not written yet" in format_init_report(report)


@pytest.mark.parametrize("fn, text", [
    (lambda X, weights, activation: 1 / 0, "raised ZeroDivisionError"),
    (lambda X, weights, activation: np.zeros((2, len(weights))), "expected (L, 2)"),
    (lambda X, weights, activation: "stats", "not an array of numbers"),
])
def test_a_broken_forward_stats_is_reported(fn, text):
    report = init_scale_report(fn, depth=10)
    assert report["act_std"] is None and text in report["message"]


def test_bad_settings_are_refused(forward_stats):
    with pytest.raises(ValueError, match="scheme"):
        init_scale_report(forward_stats, scheme="Glorot")
    with pytest.raises(ValueError, match="activation"):
        init_scale_report(forward_stats, activation="gelu")
    with pytest.raises(ValueError, match="scale"):
        init_scale_report(forward_stats, scale=0.0)


def test_the_weights_are_torchs_and_only_the_multiplier_changes():
    a, b = draw_weights("Kaiming", 3, 1.0), draw_weights("Kaiming", 3, 2.0)
    assert all(torch.equal(2 * x, y) for x, y in zip(a, b))
    W = torch.cat([w.reshape(-1) for w in draw_weights("PyTorch default", 50, 1.0)])
    width = DEFAULTS["width"]
    assert W.abs().max().item() <= 1 / np.sqrt(width) and abs(W.var().item() * 3 * width - 1) < 0.02
    W = torch.cat([w.reshape(-1) for w in draw_weights("Xavier", 50, 1.0)])
    assert abs(W.var().item() * width - 1) < 0.02


def test_format_and_plot(forward_stats):
    import matplotlib

    matplotlib.use("Agg")
    from course.init_dashboard import plot_init_report
    import matplotlib.pyplot as plt

    report = init_scale_report(forward_stats, "Kaiming", "relu", depth=20, scale=0.7)
    text = format_init_report(report)
    assert "leaves the band 0.5 to 2 at layer" in text and text.count("\n") >= 10
    fig, axes = plot_init_report(report)
    assert axes.shape == (2, 2)
    plt.close(fig)


def test_the_dashboard_has_its_controls_and_redraws(forward_stats):
    import matplotlib

    matplotlib.use("Agg")
    import ipywidgets as widgets

    from course.init_dashboard import init_scale_dashboard

    box = init_scale_dashboard(forward_stats)
    controls = [w for row in box.children if isinstance(row, widgets.HBox) for w in row.children]
    by_description = {w.description: w for w in controls}
    assert set(by_description) == {"scheme", "activation", "init scale", "depth"}
    assert list(by_description["scheme"].options) == list(SCHEMES)
    assert list(by_description["activation"].options) == list(ACTIVATIONS)
    assert (by_description["depth"].min, by_description["depth"].max) == (10, 50)
    slider = by_description["init scale"]
    assert isinstance(slider, widgets.FloatLogSlider) and (slider.min, slider.max) == (-2, 2)
    slider.value = 0.5
    by_description["scheme"].value = "Xavier"
    status = box.children[2].value
    assert "compute" in status and "ms" in status


def test_compute_per_change_is_under_100_ms_at_the_default_sizes(forward_stats):
    """The best of nine runs: on this shared 2-core machine other jobs can stretch any single run (a
    median of 15 to 50 ms measured when it is quiet, several times that under a full test run)."""
    timing = benchmark_compute(forward_stats, repeats=9)
    assert (timing["width"], timing["batch"], timing["depth"]) == (128, 128, 20)
    assert timing["best_ms"] < 100, timing
    assert timing["best_ms"] <= timing["median_ms"] <= max(timing["runs_ms"])


def test_no_function_hands_out_the_activations():
    """The activations are computed in torch for the histograms only; what leaves the module is the
    student's own statistics, histograms and the weight gradients, never an (N, H) activation array
    from which forward_stats would be one line."""
    from course.init_dashboard import _forward_backward, _layers_shown, _torch_activation

    weights = draw_weights("Kaiming", 10, 1.0)
    X = np.random.default_rng(0).standard_normal((DEFAULTS["batch"], DEFAULTS["width"]))
    leaves = [W.clone().requires_grad_(True) for W in weights]
    dY = np.ones_like(X)
    hist, grads = _forward_backward(torch, torch.from_numpy(X), leaves, _torch_activation("relu"),
                                    list(range(1, 11)), dY)
    assert set(hist) == {"edges", "counts", "zeros", "nonfinite"}
    assert all(c.shape == (40,) for c in hist["counts"].values())
    assert all(g.shape == (DEFAULTS["width"], DEFAULTS["width"]) for g in grads)

    def arrays(x):
        if isinstance(x, np.ndarray):
            yield x
        elif isinstance(x, dict):
            for v in x.values():
                yield from arrays(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                yield from arrays(v)

    report = init_scale_report(None, "Kaiming", "relu", depth=10)
    assert report["act_std"] is None and report["act_hist"] is None
    assert not any(a.shape == X.shape for a in arrays(report))
    assert _layers_shown(10) == [1, 2, 5, 8, 10]


def test_the_histogram_legend_counts_relus_zeros_and_overflow(forward_stats):
    from course.init_dashboard import _histogram_label

    report = init_scale_report(forward_stats, "Kaiming", "relu", depth=10)
    labels = [_histogram_label(report["act_hist"], layer) for layer in report["act_hist"]["counts"]]
    assert all("exactly 0" in label for label in labels), labels
    share = report["act_hist"]["zeros"][10]
    assert 0.3 < share < 0.7, share
    hist = {"zeros": {3: 0.0}, "nonfinite": {3: 0.002}}
    assert _histogram_label(hist, 3) == "layer 3, <1% inf/NaN"


def test_importing_the_module_stays_light_and_it_holds_no_solution():
    code = ("import sys, course.init_dashboard; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
    text = (ROOT / "course" / "init_dashboard.py").read_text()
    for name in ("def forward_stats", "def xavier_normal", "def xavier_uniform", "def kaiming_normal",
                 "def pytorch_linear_init", "class BatchNorm1d", "class LayerNorm"):
        assert name not in text
    assert ".std(" not in text.replace("float(g.std())", ""), "activation statistics come from forward_stats"
