"""The regularization dashboard of notebook 07 (``course.regularization_dashboard``): compute apart
from display.

A run returns plain numbers and is deterministic for a seed; regularization raises the training loss
and lowers the validation loss; runs are cached; a run trains in about a second; the widget answers
both sliders and shows a progress bar; the module stays light and holds no solution.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from course import regularization_dashboard as dash
from course.regularization_dashboard import (DEFAULTS, format_regularization_report, regularization_report,
                                             regularization_run)

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_is_plain_numbers_and_deterministic():
    run = regularization_run(0.2, 0.01, seed=5, epochs=50)
    assert run["train"].shape == run["val"].shape == (50,)
    assert run["hidden_weights"].shape == (DEFAULTS["hidden"] ** 2,)
    assert run["best_epoch"] == int(np.argmin(run["val"]))
    dash._RUNS.clear()
    again = regularization_run(0.2, 0.01, seed=5, epochs=50)
    assert not again["cached"]
    np.testing.assert_array_equal(run["val"], again["val"])


def test_the_cache_trains_each_setting_once_and_counts_progress():
    dash._RUNS.clear()
    ticks = []
    first = regularization_run(0.3, 0.1, seed=1, epochs=40, progress=ticks.append)
    assert len(ticks) == 40 and not first["cached"] and dash.cache_size() == 1
    second = regularization_run(0.3, 0.1, seed=1, epochs=40, progress=ticks.append)
    assert second["cached"] and len(ticks) == 40 and dash.cache_size() == 1 and second["seconds"] == 0.0


def test_a_run_takes_about_a_second_at_most():
    dash._RUNS.clear()
    regularization_run(0.0, 0.0, seed=9, epochs=20)  # warm torch
    start = time.perf_counter()
    regularization_run(0.5, 0.3, seed=9)
    assert time.perf_counter() - start < 2.0


def test_regularization_costs_training_loss_and_buys_validation_loss():
    report = regularization_report(0.0, 1.0, seed=0)
    run, base = report["summary"]["run"], report["summary"]["baseline"]
    assert run["final"]["train"] > base["final"]["train"] and run["final"]["val"] < base["final"]["val"]
    assert run["near_zero"] > 0.6 > 0.15 > base["near_zero"]
    text = format_regularization_report(report)
    assert "weight decay 1" in text and "baseline" in text


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        regularization_run(1.0, 0.0, epochs=5)
    with pytest.raises(ValueError):
        regularization_run(0.0, -1.0, epochs=5)


def test_the_widget_answers_both_sliders():
    import matplotlib

    matplotlib.use("Agg")
    box = dash.regularization_dashboard(dropout=0.0, weight_decay=1.0)
    dropout_box, decay_box = box.children[0].children
    status, bar = box.children[1], box.children[2]
    before = dash.cache_size()
    dropout_box.value = 0.4
    assert "trained" in status.value and dash.cache_size() == before + 1
    assert bar.value == bar.max == DEFAULTS["epochs"]
    decay_box.value = 0.01
    assert dash.cache_size() == before + 2
    dropout_box.value = 0.0
    decay_box.value = 1.0
    assert "cached" in status.value


def test_the_module_is_light_and_holds_no_solution():
    code = ("import sys, course.regularization_dashboard, course.regularization; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
    for name in ("regularization_dashboard.py", "regularization.py"):
        text = (ROOT / "course" / name).read_text()
        for forbidden in ("def dropout(", "def dropout_backward", "def l2_penalty", "def sgd_step_weight_decay",
                          "def l1_subgradient", "def best_epoch", "np.sign(", "nanargmin"):
            assert forbidden not in text, (name, forbidden)


def test_the_notebook_claims_hold_beyond_its_three_seeds():
    """Notebook 07, sections 1 and 7: over six seeds the baseline overfits (validation turns up while
    training keeps falling) and weight decay 1.0 always costs training loss and buys validation loss;
    dropout 0.5 always costs training loss but buys validation loss only in most seeds (the notebook
    says weight decay is the more dependable of the two here)."""
    dropout_helps = 0
    for seed in range(6):
        base = regularization_run(0.0, 0.0, seed=seed)
        best = base["best_epoch"]
        assert base["val"][-1] > 1.05 * base["val"][best] and base["train"][-1] < base["train"][best], seed
        decay = regularization_run(0.0, 1.0, seed=seed)
        assert decay["train"][-1] > base["train"][-1] and decay["val"][-1] < base["val"][-1], seed
        drop = regularization_run(0.5, 0.0, seed=seed)
        assert drop["train"][-1] > base["train"][-1], seed
        dropout_helps += drop["val"][-1] < base["val"][-1]
    assert 4 <= dropout_helps < 6
