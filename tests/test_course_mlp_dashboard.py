"""The dashboard of notebook 10 (``course.mlp_dashboard``): your own train_mlp on the digits.

It trains the student's train_mlp (the solution's here), reports the runs as plain numbers with a
plain verdict (trained, diverged, stalled), quietly; caches per setting and per version of the
exercises; finishes a run at the default sizes in well under 2 s; says which function is missing
while the release's stubs are unwritten, and works once they are written; its widgets answer every
control; the module is light and holds no solution.
"""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from notebooks import RELEASE, SOURCE
from solutions import solution_namespace

from course.mlp import DEFAULTS
from course.mlp_dashboard import benchmark, format_mlp_report, mlp_report, mlp_run

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "10_final_boss.ipynb"
EXERCISES = ("init_mlp", "mlp_forward", "softmax_cross_entropy", "mlp_backward", "sgd_momentum_step", "predict",
             "train_mlp")


@pytest.fixture(scope="module")
def mine() -> dict:
    return solution_namespace(SOURCE / NOTEBOOK)


@pytest.fixture(scope="module")
def release() -> dict:
    """The release notebook's exercise cells as a student receives them: every exercise a stub."""
    return solution_namespace(RELEASE / NOTEBOOK)


def student(release: dict, mine: dict, written: tuple) -> dict:
    """A student's namespace: the release's stubs, with the exercises in ``written`` filled in (the
    solution's code, living in the student's namespace, as if typed into the cells)."""
    ns = dict(release)
    for name in written:
        fn = mine[name]
        ns[name] = types.FunctionType(fn.__code__, ns, name, fn.__defaults__, fn.__closure__)
    return ns


def test_a_run_at_the_defaults_trains_and_reaches_the_target(mine, capfd):
    run = mlp_run(mine["train_mlp"], seed=1)
    assert run["state"] == "trained" and not run["diverged"]
    assert run["loss"].shape == run["val_acc"].shape == (DEFAULTS["epochs"],)
    assert run["loss"][-1] < 0.01 and run["val_acc"][-1] > 0.95 and run["test_acc"] >= 0.97
    again = mlp_run(mine["train_mlp"], seed=1)
    assert again["cached"] and not run["cached"] and again["seconds"] == 0.0
    np.testing.assert_array_equal(again["loss"], run["loss"])
    assert capfd.readouterr().err == ""


def test_diverged_and_stalled_runs_say_so_plainly_and_quietly(mine, capfd):
    report = mlp_report(mine["train_mlp"], lr=10.0)
    run = report["run"]
    assert run["state"] == "diverged" and run["diverged"] and len(run["loss"]) < DEFAULTS["epochs"]
    assert "DIVERGED" in format_mlp_report(report) and report["defaults"]["state"] == "trained"
    grew = mlp_run(mine["train_mlp"], lr=1.0)   # finite, but the loss grows by 90 orders of magnitude
    assert grew["state"] == "diverged" and "grew" in grew["message"]
    stalled = mlp_report(mine["train_mlp"], lr=1e-3, init_scale=1e-3)
    assert stalled["run"]["state"] == "stalled" and "STALLED" in format_mlp_report(stalled)
    assert capfd.readouterr().err == ""


def test_the_release_says_what_is_missing_instead_of_failing(release, mine, capfd):
    report = mlp_report(release["train_mlp"], lr=0.1)
    assert report["run"]["state"] == "missing" and report["run"]["missing"] == "train_mlp"
    text = format_mlp_report(report)
    assert "train_mlp is not written yet" in text and "lr 0.1" in text
    # train_mlp written, but an exercise it calls not yet: the report names that one
    half = student(release, mine, ("init_mlp", "mlp_forward", "softmax_cross_entropy", "train_mlp"))
    report = mlp_report(half["train_mlp"])
    assert report["run"]["state"] == "missing" and report["run"]["missing"] == "mlp_backward", report["run"]
    assert "mlp_backward is not written yet" in format_mlp_report(report)
    assert capfd.readouterr().err == ""


def test_the_release_dashboard_works_once_the_exercises_are_written(release, mine, capfd):
    done = student(release, mine, EXERCISES)
    report = mlp_report(done["train_mlp"], batch_size=64, hidden=64)
    assert report["run"]["state"] == report["defaults"]["state"] == "trained"
    assert report["run"]["test_acc"] > 0.9 and "not written yet" not in format_mlp_report(report)
    assert capfd.readouterr().err == ""


def test_a_rewritten_exercise_is_a_new_run(release, mine):
    done = student(release, mine, EXERCISES)
    first = mlp_run(done["train_mlp"], seed=3)
    assert mlp_run(done["train_mlp"], seed=3)["cached"]
    done.update(student(done, mine, ("mlp_backward",)))   # the student runs the mlp_backward cell again
    assert not mlp_run(done["train_mlp"], seed=3)["cached"]
    assert first["state"] == "trained"


def test_an_error_of_the_student_is_shown_not_raised(mine):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("oops")

    run = mlp_run(broken)
    assert run["state"] == "error" and "ZeroDivisionError: oops" in run["message"]


def test_progress_counts_the_epochs_of_each_trained_run(mine):
    ticks = []
    mlp_run(mine["train_mlp"], lr=0.07, seed=5, progress=ticks.append)
    assert sum(ticks) == DEFAULTS["epochs"] and len(ticks) == DEFAULTS["epochs"]   # one tick per shuffle
    ticks.clear()
    mlp_run(mine["train_mlp"], lr=0.07, seed=5, progress=ticks.append)
    assert ticks == []   # cached: nothing trained


def test_a_run_at_the_default_sizes_takes_well_under_2_s(mine):
    timing = benchmark(mine["train_mlp"], repeats=3)
    assert timing["best_s"] < 1.0, timing
    assert benchmark(mine["train_mlp"], repeats=1, batch_size=8, hidden=512)["best_s"] < 4.0


def test_bad_settings_are_refused(mine):
    with pytest.raises(ValueError, match="lr"):
        mlp_run(mine["train_mlp"], lr=0.0)
    with pytest.raises(ValueError, match="init_scale"):
        mlp_run(mine["train_mlp"], init_scale=-1.0)


def _controls(box):
    return {w.description: w for row in box.children[:2] for w in row.children}


def test_the_dashboard_answers_every_control(mine):
    import matplotlib

    matplotlib.use("Agg")
    from course.mlp_dashboard import mlp_dashboard

    box = mlp_dashboard(mine["train_mlp"])
    controls = _controls(box)
    assert set(controls) == {"learning rate", "init scale", "batch size", "hidden width"}
    status, bar = box.children[2], box.children[3]
    assert bar.value == bar.max and "trained" in status.value
    for description, value in (("learning rate", 10.0), ("learning rate", 0.1), ("init scale", 0.01),
                               ("batch size", 128), ("hidden width", 32)):
        status.value = ""
        controls[description].value = value
        assert status.value and "not written yet" not in status.value, description
    controls["learning rate"].value = 10.0
    assert "DIVERGED" in status.value


def test_the_release_dashboard_says_what_is_missing_at_every_control(release):
    import matplotlib

    matplotlib.use("Agg")
    from course.mlp_dashboard import mlp_dashboard

    box = mlp_dashboard(release["train_mlp"])
    controls = _controls(box)
    status = box.children[2]
    seen = {status.value}
    assert "train_mlp is not written yet" in status.value
    for description, value in (("learning rate", 0.2), ("init scale", 0.5), ("batch size", 64), ("hidden width", 64)):
        controls[description].value = value
        assert "not written yet" in status.value and status.value not in seen, description   # the output changes
        seen.add(status.value)


def test_the_plot_marks_a_diverged_run(mine):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course.mlp_dashboard import plot_mlp_report

    fig, (ax_loss, ax_acc) = plot_mlp_report(mlp_report(mine["train_mlp"], lr=10.0))
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert "this run (diverged)" in labels and "defaults" in labels
    assert [line for line in ax_loss.get_lines() if line.get_marker() == "x"]
    plt.close(fig)


def _code_only(path: Path) -> str:
    """The module's code without its strings and comments (hints may name a formula; code must not use it)."""
    import io
    import tokenize

    skipped = {tokenize.STRING, tokenize.COMMENT} | {getattr(tokenize, name) for name in
                                                     ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
                                                     if hasattr(tokenize, name)}   # f-strings: Python 3.12+
    kept = [tok.string for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
            if tok.type not in skipped]
    return " ".join(kept).replace(" . ", ".").replace(" (", "(").replace("( ", "(")


def test_importing_the_modules_stays_light_and_they_hold_no_solution():
    code = ("import sys, course.mlp_dashboard, course.mlp, course.digits; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
    for module in ("mlp_dashboard.py", "mlp.py", "digits.py"):
        text = (ROOT / "course" / module).read_text()
        for name in EXERCISES:
            assert f"def {name}(" not in text, (module, name)
        if module == "digits.py":
            continue
        code = _code_only(ROOT / "course" / module)
        for formula in ("np.maximum(", "dZ.T @", "dZ @", "*= momentum", "-= lr", "np.eye(", "np.exp("):
            assert formula not in code, (module, formula)


def _variant(mine: dict, old: str, new: str):
    """The solution's train_mlp with one line changed, living in the solution's namespace."""
    import nbformat

    (source,) = [cell.source for cell in nbformat.read(SOURCE / NOTEBOOK, as_version=4).cells
                 if cell.cell_type == "code" and cell.source.startswith("def train_mlp(")]
    assert old in source, old
    ns = dict(mine)
    exec(source.replace(old, new), ns)
    return ns["train_mlp"]


@pytest.mark.parametrize("order", ["rng.choice(N, size=N, replace=False)", "np.argsort(rng.random(N))",
                                   "np.argsort(rng.integers(0, 2 ** 62, N))"])
def test_a_shuffle_the_bar_cannot_count_still_gives_the_same_run_and_a_full_bar(mine, order, capfd):
    """The bar ticks on permutation / shuffle / permuted; a train_mlp that orders its samples another way
    gets the very run a plain np.random.default_rng(seed) gives, and a bar filled at the end."""
    from course.digits import load_digits

    train = _variant(mine, "rng.permutation(N)", order)
    ticks = []
    run = mlp_run(train, seed=11, progress=ticks.append)
    d = load_digits()
    _, history = train(d.X_train, d.y_train, [64, 128, 10], DEFAULTS["lr"], DEFAULTS["epochs"], DEFAULTS["batch_size"],
                       np.random.default_rng(11), momentum=DEFAULTS["momentum"], X_val=d.X_val, y_val=d.y_val)
    np.testing.assert_array_equal(run["loss"], history["loss"])
    assert run["state"] == "trained" and sum(ticks) == DEFAULTS["epochs"]
    assert capfd.readouterr().err == ""


def test_the_verdicts_give_the_likely_reason(mine):
    fast = mlp_run(mine["train_mlp"], lr=10.0)
    assert "lower the learning rate" in fast["message"]
    tiny = mlp_run(mine["train_mlp"], lr=1e-3, init_scale=1e-3)
    assert tiny["state"] == "stalled" and "raise the init scale" in tiny["message"]
    slow = mlp_run(mine["train_mlp"], lr=1e-4, init_scale=0.2)
    assert slow["state"] == "stalled" and "raise the learning rate" in slow["message"], slow["message"]
    big = mlp_run(mine["train_mlp"], init_scale=100.0)
    assert big["state"] == "trained" and "starts confidently wrong" in big["message"]


def test_a_broken_train_mlp_is_named_and_the_defaults_flag_it(mine):
    def returns_params(*args, **kwargs):
        return mine["train_mlp"](*args, **kwargs)[0]

    def renamed_loss(*args, **kwargs):
        params, history = mine["train_mlp"](*args, **kwargs)
        return params, {("losses" if k == "loss" else k): v for k, v in history.items()}

    assert "not the pair (params, history)" in mlp_run(returns_params)["message"]
    run = mlp_run(renamed_loss)
    assert run["state"] == "error" and "without the key 'loss'" in run["message"], run["message"]
    frozen = _variant(mine, "sgd_momentum_step(params, mlp_backward(params, cache, dlogits), velocity, lr, momentum)",
                      "sgd_momentum_step(params, mlp_backward(params, cache, dlogits), velocity, 0.0, momentum)")
    report = mlp_report(frozen, lr=0.1)
    assert report["defaults"]["state"] == "stalled" and "look for a bug" in format_mlp_report(report)
    assert "look for a bug" not in format_mlp_report(mlp_report(mine["train_mlp"], lr=0.1))
