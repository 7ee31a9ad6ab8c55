"""The batch-size dashboard of notebook 09 (``course.batch_size_dashboard``): compute apart from display.

A run uses the student's train_epoch, returns plain numbers, is deterministic and cached per batch size
and per function; the gradient spread follows the finite-population formula; without a train_epoch
the dashboard says plainly what is missing and still shows the spread; a student's error becomes a
note; every batch size of the slider trains in under 2 s; the widget answers the slider with a progress
bar; the module is light and holds no solution.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from notebooks import SOURCE
from solutions import solution_namespace

from course import batch_size_dashboard as dash
from course.batch_size_dashboard import (DEFAULTS, MISSING, SIZES, batch_size_report, batch_size_run, benchmark,
                                         format_batch_size_report, gradient_spread)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def train_epoch():
    return solution_namespace(SOURCE / "09_training_loop.ipynb")["train_epoch"]


def test_the_slider_spans_1_to_n_in_powers_of_two():
    assert SIZES[0] == 1 and SIZES[-1] == DEFAULTS["n"]
    assert all(b == 2 * a for a, b in zip(SIZES, SIZES[1:]))


def test_a_run_is_plain_numbers_deterministic_and_uses_the_students_function(train_epoch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return train_epoch(*args, **kwargs)

    run = batch_size_run(32, counting, epochs=3)
    assert calls == [8, 8, 8]                                 # ceil(256 / 32) batches per epoch, 3 epochs
    assert run["losses"].shape == (4,) and run["seconds"].shape == run["returned"].shape == (3,)
    assert list(run["updates"]) == [0, 8, 16, 24] and not run["cached"]
    assert run["losses"][-1] < run["losses"][0]
    again = batch_size_run(32, counting, epochs=3)
    assert again["cached"] and len(calls) == 3 and again["seconds_total"] == 0.0
    np.testing.assert_array_equal(run["losses"], again["losses"])
    dash._RUNS.clear()
    fresh = batch_size_run(32, counting, epochs=3)
    assert not fresh["cached"]
    np.testing.assert_array_equal(run["losses"], fresh["losses"])


def test_a_rewritten_train_epoch_trains_anew(train_epoch):
    def first(*args, **kwargs):
        return train_epoch(*args, **kwargs)

    def second(*args, **kwargs):
        return train_epoch(*args, **kwargs)

    batch_size_run(64, first, epochs=2)
    assert not batch_size_run(64, second, epochs=2)["cached"]
    assert batch_size_run(64, first, epochs=2)["cached"]


def test_progress_is_counted_per_epoch_while_training(train_epoch):
    dash._RUNS.clear()
    ticks = []
    batch_size_run(128, train_epoch, progress=ticks.append)
    assert len(ticks) == DEFAULTS["epochs"]
    batch_size_run(128, train_epoch, progress=ticks.append)
    assert len(ticks) == DEFAULTS["epochs"]                  # a cached run does not train


def test_the_gradient_spread_follows_the_finite_population_formula():
    s = gradient_spread()
    n = s["n"]
    assert list(s["sizes"]) == list(SIZES)
    np.testing.assert_allclose(s["one_over_b"], s["sigma2"] / s["sizes"])
    np.testing.assert_allclose(s["finite"], s["sigma2"] / s["sizes"] * (n - s["sizes"]) / (n - 1))
    inner = s["sizes"] < n
    assert np.all(np.abs(s["measured"][inner] / s["finite"][inner] - 1) < 0.2)
    assert s["measured"][-1] < 1e-20 and s["finite"][-1] == 0.0   # B = N: no spread at all


def test_without_train_epoch_the_report_says_what_is_missing_and_shows_the_spread(capfd):
    def stub(*args, **kwargs):
        raise NotImplementedError("train_epoch: replace this line with your solution")

    for fn in (stub, None):
        report = batch_size_report(16, fn)
        assert report["missing"] and report["run"] is None and report["full"] is None
        assert report["notes"] == [MISSING] and "not written yet" in MISSING
        assert report["spread"]["sizes"].size == len(SIZES)
        text = format_batch_size_report(report)
        assert "train_epoch is not written yet" in text and "gradient spread" in text
    assert capfd.readouterr().err == ""


def test_a_students_error_becomes_a_note(capfd):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("oops")

    report = batch_size_report(16, broken)
    assert not report["missing"] and report["run"] is None
    assert "ZeroDivisionError" in format_batch_size_report(report)
    assert capfd.readouterr().err == ""


def test_bad_batch_sizes_are_refused(train_epoch):
    for bad in (0, DEFAULTS["n"] + 1):
        with pytest.raises(ValueError, match="batch_size"):
            batch_size_run(bad, train_epoch)


def test_smaller_batches_win_per_epoch_and_larger_ones_per_update(train_epoch):
    report = batch_size_report(8, train_epoch)
    run, full = report["run"], report["full"]
    assert run["updates"][-1] == 8 * 32 and full["updates"][-1] == 8
    assert run["losses"][-1] < full["losses"][-1]
    assert list(full["steps"]) == list(range(1, 9)) and {1, 2, 4, 8, 16, 32, 256} <= set(run["steps"])
    after = {r["batch_size"]: dict(zip(r["steps"], r["step_losses"])) for r in (run, full)}
    assert after[256][8] < after[8][8]                         # the same 8 updates: the full batch is ahead
    np.testing.assert_allclose(run["step_losses"][-1], run["losses"][-1])   # the last update ends the run
    assert set(report["timings"]) >= {8, DEFAULTS["n"]}


def test_every_batch_size_of_the_slider_trains_in_under_2_seconds(train_epoch):
    batch_size_run(DEFAULTS["n"], train_epoch)               # torch warm
    for size in SIZES:
        timing = benchmark(size, train_epoch, repeats=1)
        assert timing["best_s"] < 2.0, (size, timing)


def test_the_dashboard_answers_the_slider_with_a_progress_bar(train_epoch, capfd):
    import matplotlib

    matplotlib.use("Agg")
    dash._RUNS.clear()
    box = dash.batch_size_dashboard(train_epoch)
    slider, status, bar = box.children[:3]
    assert slider.description == "batch size" and [v for _, v in slider.options] == list(SIZES)
    assert "trained" in status.value and bar.value == bar.max == 2 * DEFAULTS["epochs"]
    before = dash.cache_size()
    slider.value = 4
    assert "trained" in status.value and dash.cache_size() == before + 1 and bar.value == bar.max == DEFAULTS["epochs"]
    slider.value = 16
    assert "cached run" in status.value
    assert capfd.readouterr().err == ""


def test_the_dashboard_without_train_epoch_says_so_plainly(capfd):
    import matplotlib

    matplotlib.use("Agg")

    def stub(*args, **kwargs):
        raise NotImplementedError("train_epoch: replace this line with your solution")

    box = dash.batch_size_dashboard(stub)
    status = box.children[1]
    assert "train_epoch is not written yet" in status.value and "Exercise 2" in status.value
    box.children[0].value = 2
    assert "not written yet" in status.value
    assert capfd.readouterr().err == ""


def test_the_plot_says_what_is_missing(capfd):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = dash.plot_batch_size_report(batch_size_report(16, None))
    texts = [t.get_text() for ax in axes.ravel() for t in ax.texts]
    assert any("not written yet" in t for t in texts)
    plt.close(fig)
    assert capfd.readouterr().err == ""


def test_importing_the_module_stays_light_and_it_holds_no_solution():
    code = ("import sys, course.batch_size_dashboard, course.training; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
    for module in ("batch_size_dashboard.py", "training.py"):
        text = (ROOT / "course" / module).read_text()
        for name in ("minibatch_indices", "train_epoch", "evaluate"):
            assert f"def {name}(" not in text, (module, name)
        for solution_line in ("(loss / accumulation_steps).backward()", "model.train(was_training)\n",
                              "rng.permutation(n) if shuffle else np.arange(n)"):
            assert solution_line not in text, (module, solution_line)
