"""The learning-rate dashboard of notebook 08 (``course.optimizer_dashboard``): compute apart from display.

The report uses the student's SGD, Adam and trajectory where written and torch.optim otherwise, and
the two agree; a divergence is reported as such, quietly; the widgets answer every control; a change
computes in well under 100 ms; the module is light and holds no solution.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from notebooks import SOURCE
from solutions import solution_namespace

from course.optimizer_dashboard import benchmark, format_ravine_report, ravine_report

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("SGD", "Adam", "trajectory")


@pytest.fixture(scope="module")
def mine() -> dict:
    ns = solution_namespace(SOURCE / "08_optimizers.ipynb")
    return {name: ns[name] for name in NAMES}


def test_report_uses_the_students_optimizers_and_agrees_with_torch(mine):
    own = ravine_report(0.04, 0.8, 50, functions=mine)
    ref = ravine_report(0.04, 0.8, 50)
    for name in ("SGD", "momentum", "Adam"):
        assert own["runs"][name]["source"] == "yours" and ref["runs"][name]["source"] == "torch"
        np.testing.assert_allclose(own["runs"][name]["path"], ref["runs"][name]["path"], rtol=1e-10, atol=1e-12)
        assert own["runs"][name]["path"].shape == (51, 2)
    assert own["threshold"] == pytest.approx(2 / 20)


def test_divergence_is_reported_quietly(mine, capfd):
    for functions in (mine, None):
        report = ravine_report(0.2, 0.0, 100, functions=functions)
        run = report["runs"]["SGD"]
        assert run["diverged_at"] is not None and run["diverged_at"] < 100
        assert np.all(np.isfinite(run["path"])) and len(run["path"]) == run["diverged_at"] + 1
        assert "DIVERGED" in format_ravine_report(report)
    assert ravine_report(0.05, 0.0, 100)["runs"]["SGD"]["diverged_at"] is None
    assert capfd.readouterr().err == ""


def test_unwritten_or_broken_optimizers_fall_back_to_torch(capfd):
    class Stub:
        def __init__(self, *args, **kwargs):
            raise NotImplementedError("SGD: replace this line with your solution")

    class Broken:
        def __init__(self, params, **kw):
            raise ZeroDivisionError("oops")

    report = ravine_report(0.05, 0.9, 20, functions={"SGD": Stub, "Adam": Broken})
    assert {r["source"] for r in report["runs"].values()} == {"torch"}
    text = format_ravine_report(report)
    assert "not written yet" in text and "ZeroDivisionError" in text
    assert capfd.readouterr().err == ""


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="lr"):
        ravine_report(0.0)
    with pytest.raises(ValueError, match="momentum"):
        ravine_report(0.1, 1.0)
    with pytest.raises(TypeError, match="unknown functions"):
        ravine_report(0.1, functions={"RMSprop": object})


def test_the_explorer_answers_every_control(mine):
    import matplotlib

    matplotlib.use("Agg")
    from course.optimizer_dashboard import optimizer_explorer

    box = optimizer_explorer(**mine)
    controls = {w.description: w for row in box.children[:2] for w in row.children}
    assert {"learning rate", "momentum", "steps", "highlight"} <= set(controls)
    assert all(w.style.description_width == "initial" for w in controls.values())
    status = box.children[2]
    for description, value in (("learning rate", 0.3), ("learning rate", 0.002), ("momentum", 0.5),
                               ("steps", 150), ("highlight", "Adam")):
        status.value = ""
        controls[description].value = value
        assert "compute" in status.value, description
    with pytest.raises(TypeError, match="unknown functions"):
        optimizer_explorer(sigmoid=np.tanh)


def test_compute_per_change_is_under_100_ms(mine):
    for functions in (mine, None):
        timing = benchmark(lr=0.05, momentum=0.9, steps=200, functions=functions)
        assert timing["best_ms"] < 100, timing


def test_importing_the_module_stays_light_and_it_holds_no_solution():
    code = ("import sys, course.optimizer_dashboard, course.optimizers; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
    for module in ("optimizer_dashboard.py", "optimizers.py"):
        text = (ROOT / "course" / module).read_text()
        for name in ("SGD", "Adam", "AdamW", "trajectory"):
            assert f"class {name}" not in text and f"def {name}(" not in text, (module, name)
        for formula in ("np.sqrt(v", "(1 - dampening) *", "buf =", "self.m[", "m_hat ="):
            assert formula not in text, (module, formula)


def test_the_plot_says_which_run_diverged_and_where(mine, capfd):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course.optimizer_dashboard import plot_ravine_report

    report = ravine_report(0.105, 0.9, 80, functions=mine)
    fig, (ax, ax_loss) = plot_ravine_report(report)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    step = report["runs"]["SGD"]["diverged_at"]
    assert step is not None and any(f"DIVERGED at step {step}" in label for label in labels), labels
    assert sum("DIVERGED" in label for label in labels) == 1, labels
    assert "2 / a = 0.1" in ax.get_title()
    markers = [line for line in ax.get_lines() if line.get_marker() == "x"]
    assert len(markers) == 1
    plt.close(fig)
    assert capfd.readouterr().err == ""
