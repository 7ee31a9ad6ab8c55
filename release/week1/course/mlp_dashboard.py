"""The dashboard of notebook 10: your own ``train_mlp`` on the digits, with its sliders.

Compute apart from display:

* :func:`mlp_run` (plain numbers): one run of the student's ``train_mlp`` on the course's digits
  split (``course.digits``) for a learning rate, an init scale, a batch size and a hidden width
  (one hidden layer, the other settings from ``course.mlp.DEFAULTS``): the training loss and the
  validation accuracy per epoch, the test accuracy of the returned params, and a plain verdict —
  trained, **diverged** (a loss that became NaN or inf, or grew far above where it started) or
  **stalled** (after all the epochs the loss is still within 10 % of ln C, what a uniform guess
  scores). Runs are cached by their settings and by the functions they call, so the same setting is
  never trained twice, and rewriting one of the exercises starts afresh.
* :func:`mlp_report` pairs a run with the run at the defaults; :func:`format_mlp_report` (text)
  and :func:`plot_mlp_report` (matplotlib) show the two side by side.
* :func:`mlp_dashboard` wires four sliders — learning rate (log scale), init scale (log scale),
  batch size (log scale, powers of two) and hidden width — to the two, with a progress bar (one
  ``IntProgress`` widget) while a run trains.

While ``train_mlp`` (or an exercise it calls) still raises NotImplementedError, nothing fails: the
report says which function is not written yet. Nothing here trains a network itself or implements
an exercise; the test accuracy is measured with PyTorch's forward (``course.mlp.accuracy``).

The progress bar counts the epochs by the shuffles: the generator handed to train_mlp is a
``np.random.Generator`` (the same numbers as ``np.random.default_rng(seed)``) that also counts its
calls of ``permutation``, ``shuffle`` and ``permuted``. A train_mlp that shuffles some other way
still runs; its bar simply fills at the end.

torch, matplotlib and ipywidgets are imported inside the functions that need them: importing this
module loads NumPy only.
"""
from __future__ import annotations

import html
import itertools
import math
import re
import statistics
import textwrap
import time
import warnings
from typing import Any, Callable, Optional

import numpy as np

from .mlp import DEFAULTS

__all__ = ["LR_RANGE", "INIT_RANGE", "BATCH_SIZES", "WIDTHS", "mlp_run", "mlp_report", "format_mlp_report",
           "defaults_warning", "plot_mlp_report", "mlp_dashboard", "cache_size", "benchmark"]

#: the sliders' ranges
LR_RANGE = (1e-4, 10.0)
INIT_RANGE = (1e-3, 100.0)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512)
WIDTHS = (8, 16, 32, 64, 128, 256, 512)
#: a run has stalled when its last loss is still above this share of ln C
STALL_SHARE = 0.9
#: the functions of the notebook that train_mlp may call: a new version of any of them is a new run
EXERCISES = ("init_mlp", "mlp_forward", "softmax_cross_entropy", "mlp_backward", "sgd_momentum_step", "predict",
             "train_mlp")
NOT_WRITTEN = "not written yet"
#: the largest loss the plot draws (larger ones are drawn at it, and the title says so)
_LOSS_CEILING = 1e30
_STUB = re.compile(r"^([A-Za-z_][\w.]*): replace this line with your solution")


class _CountingGenerator(np.random.Generator):
    """np.random.default_rng(seed)'s numbers, calling ``on_shuffle`` at each permutation or shuffle."""

    def __init__(self, seed: int, on_shuffle: Optional[Callable] = None) -> None:
        super().__init__(np.random.PCG64(seed))
        self._on_shuffle = on_shuffle

    def _tick(self) -> None:
        if self._on_shuffle is not None:
            self._on_shuffle()

    def permutation(self, x, axis=0):
        self._tick()
        return super().permutation(x, axis)

    def shuffle(self, x, axis=0):
        self._tick()
        return super().shuffle(x, axis)

    def permuted(self, x, *, axis=None, out=None):
        self._tick()
        return super().permuted(x, axis=axis, out=out)


def _helpers(train_mlp: Callable) -> tuple:
    """The notebook's exercise functions that train_mlp sees (its module's globals), for the cache key."""
    namespace = getattr(train_mlp, "__globals__", None)
    if not isinstance(namespace, dict):
        return ()
    return tuple(namespace.get(name) for name in EXERCISES)


def _missing(exc: BaseException) -> str:
    """Which function is not written yet, from a stub's NotImplementedError."""
    match = _STUB.match(str(exc))
    return match.group(1) if match else "train_mlp (or a function it calls)"


#: (train_mlp, its helpers, settings) -> run; at most _CACHE_SIZE kept, the oldest dropped first
_RUNS: dict = {}
_CACHE_SIZE = 64


def cache_size() -> int:
    """How many runs are cached."""
    return len(_RUNS)


def _settings(lr: float, init_scale: float, batch_size: int, hidden: int, seed: int, epochs: int) -> tuple:
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not init_scale > 0:
        raise ValueError(f"init_scale must be > 0, got {init_scale}")
    if int(batch_size) < 1 or int(hidden) < 1 or int(epochs) < 1:
        raise ValueError(f"batch_size, hidden and epochs must be >= 1, got {batch_size}, {hidden}, {epochs}")
    return (float(f"{float(lr):.4g}"), float(f"{float(init_scale):.4g}"), int(batch_size), int(hidden), int(seed),
            int(epochs))


def _verdict(loss: np.ndarray, diverged: bool, n_classes: int, lr: float = DEFAULTS["lr"],
             init_scale: float = DEFAULTS["init_scale"]) -> tuple:
    """(state, sentence) of a finished run: what happened, and the likely reason given the settings."""
    chance = math.log(n_classes)
    overshoot = ("each update overshoots and leaves the weights larger instead of the loss smaller, so they grow "
                 "without bound: lower the learning rate" + (" or the init scale" if init_scale > 1 else ""))
    if diverged or not np.all(np.isfinite(loss)):
        where = len(loss)
        reason = ("the initial weights are so large that the very first logits overflow: lower the init scale"
                  if where <= 1 and init_scale > 1 else overshoot)
        return "diverged", (f"DIVERGED: the loss became NaN or inf in epoch {where}, and the run stopped there: "
                            f"{reason}.")
    if len(loss) and loss[-1] > 2 * chance and loss[-1] > loss[0]:
        return "diverged", (f"DIVERGED: the loss grew from {loss[0]:.3g} to {loss[-1]:.3g} (a uniform guess scores "
                            f"ln {n_classes} = {chance:.2f}): {overshoot}.")
    if len(loss) and loss[-1] > STALL_SHARE * chance:
        reason = ("with weights this small every gradient is tiny too (each layer's gradient is proportional to "
                  "the weights of the other layers): raise the init scale or the learning rate"
                  if init_scale < 0.1 else "the steps are too small to move the weights: raise the learning rate")
        return "stalled", (f"STALLED: after {len(loss)} epochs the loss is still {loss[-1]:.4f}, within "
                           f"{1 - STALL_SHARE:.0%} of ln {n_classes} = {chance:.4f}, what a uniform guess scores: "
                           f"training has hardly begun; {reason}.")
    text = f"trained: the loss fell from {loss[0]:.3g} in the first epoch to {loss[-1]:.3g} in the last."
    if loss[0] > 10 * chance:
        text += (f" A first loss far above ln {n_classes} = {chance:.2f} means large initial weights: the network "
                 f"starts confidently wrong.")
    return "trained", text


class _Malformed(Exception):
    """train_mlp returned something the report cannot read."""


def _train(train_mlp: Callable, key: tuple, progress: Optional[Callable]) -> dict:
    from .digits import load_digits
    from .mlp import accuracy

    lr, init_scale, batch_size, hidden, seed, epochs = key
    d = load_digits()
    sizes = [d.X_train.shape[1], hidden, int(d.y_train.max()) + 1]
    ticks = [0]

    def on_shuffle() -> None:
        if ticks[0] < epochs and progress is not None:
            progress(1)
        ticks[0] += 1

    rng = _CountingGenerator(seed, on_shuffle)
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a diverging run overflows: the verdict says so, not a warning
        with np.errstate(all="ignore"):
            returned = train_mlp(d.X_train, d.y_train, sizes, lr, epochs, batch_size, rng,
                                 momentum=DEFAULTS["momentum"], X_val=d.X_val, y_val=d.y_val, init_scale=init_scale)
            seconds = time.perf_counter() - began
            params, history = _read_returned(returned)
            loss = np.asarray(history["loss"], dtype=np.float64).reshape(-1)
            val = history.get("val_acc")
            val = np.asarray(val if val is not None else [], dtype=np.float64).reshape(-1)
            diverged = bool(history.get("diverged", False))
            try:
                test = accuracy(params, d.X_test, d.y_test) if not diverged else float("nan")
            except Exception as exc:  # noqa: BLE001 - params the report cannot use: say so
                raise _Malformed(f"returned params that a network [64, {hidden}, 10] cannot use "
                                 f"({type(exc).__name__}: {str(exc)[:80]})") from None
    if progress is not None and ticks[0] < epochs:
        progress(epochs - ticks[0])
    state, sentence = _verdict(loss, diverged, sizes[-1], lr, init_scale)
    return {"loss": loss, "val_acc": val, "diverged": diverged, "test_acc": float(test), "state": state,
            "message": sentence, "train_seconds": seconds}


def _read_returned(returned: Any) -> tuple:
    """(params, history) from what train_mlp returned, or _Malformed saying what is wrong with it."""
    if type(returned) not in (tuple, list) or len(returned) != 2:
        what = "None (a missing return?)" if returned is None else type(returned).__name__
        raise _Malformed(f"returned {what}, not the pair (params, history)")
    params, history = returned
    if type(params) is not dict:
        raise _Malformed(f"returned params of type {type(params).__name__}, not a dict of arrays")
    if not isinstance(history, dict) or "loss" not in history:
        raise _Malformed("returned a history without the key 'loss'" if isinstance(history, dict) else
                         f"returned a history of type {type(history).__name__}, not a dict")
    try:
        np.asarray(history["loss"], dtype=np.float64)
        np.asarray(history.get("val_acc") if history.get("val_acc") is not None else [], dtype=np.float64)
    except (TypeError, ValueError):
        raise _Malformed("returned history['loss'] or history['val_acc'] that are not lists of numbers") from None
    return params, history


def mlp_run(train_mlp: Callable, lr: float = DEFAULTS["lr"], init_scale: float = DEFAULTS["init_scale"],
            batch_size: int = DEFAULTS["batch_size"], hidden: int = DEFAULTS["layer_sizes"][1], *, seed: int = 0,
            epochs: int = DEFAULTS["epochs"], progress: Optional[Callable] = None) -> dict:
    """One run of your train_mlp on the digits (cached); plain numbers.

    Args:
        train_mlp: the notebook's train_mlp (the exercise).
        lr, init_scale, batch_size: passed to it; hidden: the width H of the one hidden layer, [64, H, 10].
        seed: the generator's seed; epochs: as in DEFAULTS.
        progress: called with the number of epochs done since its last call (to advance a bar), only when
            the run is trained.

    Returns a dict with settings; state: "trained", "diverged", "stalled", "missing" (an exercise it
    needs raised NotImplementedError; nothing is cached then) or "error" (it raised something else);
    message: one sentence saying so; loss (epochs run,), val_acc (epochs run,), test_acc (nan unless
    trained or stalled), diverged; cached (whether it came from the cache); seconds (0 if cached)."""
    key = _settings(lr, init_scale, batch_size, hidden, seed, epochs)
    settings = dict(zip(("lr", "init_scale", "batch_size", "hidden", "seed", "epochs"), key))
    cache_key = (train_mlp, _helpers(train_mlp), key)
    start = time.perf_counter()
    cached = cache_key in _RUNS
    if not cached:
        try:
            run = _train(train_mlp, key, progress)
        except _Malformed as exc:
            return {"settings": settings, "state": "error", "message": f"your train_mlp {exc}", "loss": np.zeros(0),
                    "val_acc": np.zeros(0), "test_acc": float("nan"), "diverged": False, "cached": False,
                    "seconds": 0.0}
        except NotImplementedError as exc:
            name = _missing(exc)
            return {"settings": settings, "state": "missing", "missing": name,
                    "message": f"nothing trained: your {name} is {NOT_WRITTEN}", "loss": np.zeros(0),
                    "val_acc": np.zeros(0), "test_acc": float("nan"), "diverged": False, "cached": False,
                    "seconds": 0.0}
        except Exception as exc:  # noqa: BLE001 - the student's error is something to show, not a crash
            return {"settings": settings, "state": "error",
                    "message": f"your train_mlp raised {type(exc).__name__}: {str(exc)[:160]}", "loss": np.zeros(0),
                    "val_acc": np.zeros(0), "test_acc": float("nan"), "diverged": False, "cached": False,
                    "seconds": 0.0}
        if len(_RUNS) >= _CACHE_SIZE:
            _RUNS.pop(next(iter(_RUNS)))
        _RUNS[cache_key] = run
    run = _RUNS[cache_key]
    return {"settings": settings, **{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in run.items()},
            "cached": cached, "seconds": 0.0 if cached else time.perf_counter() - start}


def mlp_report(train_mlp: Callable, lr: float = DEFAULTS["lr"], init_scale: float = DEFAULTS["init_scale"],
               batch_size: int = DEFAULTS["batch_size"], hidden: int = DEFAULTS["layer_sizes"][1], *, seed: int = 0,
               progress: Optional[Callable] = None) -> dict:
    """A run and the run at the defaults (same seed): {"run", "defaults"}, two :func:`mlp_run` results."""
    defaults = mlp_run(train_mlp, seed=seed, progress=progress)
    if defaults["state"] in ("missing", "error"):
        run = dict(defaults, settings=dict(defaults["settings"], lr=lr, init_scale=init_scale, batch_size=batch_size,
                                           hidden=hidden))
    else:
        run = mlp_run(train_mlp, lr, init_scale, batch_size, hidden, seed=seed, progress=progress)
    return {"run": run, "defaults": defaults}


def _describe(settings: dict) -> str:
    return (f"lr {settings['lr']:.3g}, init scale {settings['init_scale']:.3g}, batch size {settings['batch_size']}, "
            f"hidden width {settings['hidden']}")


def format_mlp_report(report: dict) -> str:
    """The report in a few lines of text."""
    lines = []
    for name, label in (("run", "this run"), ("defaults", "defaults")):
        r = report[name]
        head = f"{label:<9} {_describe(r['settings'])}: "
        if r["state"] in ("missing", "error"):
            lines.append(head + r["message"])
            continue
        tail = []
        if len(r["val_acc"]):
            tail.append(f"validation accuracy {r['val_acc'][-1]:.1%}")
        if np.isfinite(r["test_acc"]):
            tail.append(f"test accuracy {r['test_acc']:.1%}")
        tail.append("from the cache" if r["cached"] else f"trained in {r['seconds']:.2f} s")
        lines.append(head + r["message"] + " " + ", ".join(tail).capitalize() + ".")
    warning = defaults_warning(report)
    if warning:
        lines.append(warning)
    return "\n".join(lines)


def defaults_warning(report: dict) -> Optional[str]:
    """A sentence when the run at the defaults itself falls short: then the cause is the code, not a
    setting (None when it trains as it should, or nothing ran)."""
    from .mlp import TARGET_ACCURACY

    r = report["defaults"]
    if r["state"] in ("missing", "error"):
        return None
    if r["state"] == "trained" and np.isfinite(r["test_acc"]) and r["test_acc"] >= TARGET_ACCURACY - 0.01:
        return None
    return (f"Note: with a correct train_mlp the defaults reach about 98 % on the test set, and yours "
            f"{'reach ' + format(r['test_acc'], '.1%') if np.isfinite(r['test_acc']) else r['state']}: look for a "
            f"bug before blaming a setting (the test cell of train_mlp says where your training parts from torch's).")


def plot_mlp_report(report: dict, fig=None):
    """Left: the training loss per epoch (log scale), right: the validation accuracy per epoch, for the
    run and the defaults; a diverged run ends in a cross. Returns (fig, (ax_loss, ax_acc))."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if fig is None:
        fig = plt.figure(figsize=(10, 3.4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    clipped = False
    for name, style, color in (("defaults", ":", "0.45"), ("run", "-", "tab:blue")):
        r = report[name]
        label = "defaults" if name == "defaults" else f"this run ({r['state']})"
        loss = r["loss"]
        if len(loss):
            epochs = np.arange(1, len(loss) + 1)
            finite = np.isfinite(loss)
            shown = np.clip(loss[finite], 1e-12, _LOSS_CEILING)   # a log axis of 1e297 overflows matplotlib
            clipped = clipped or bool(np.any(loss[finite] > _LOSS_CEILING))
            ax_loss.semilogy(epochs[finite], shown, style, color=color, label=label)
            if not finite.all() or r["state"] == "diverged":
                last = epochs[finite][-1] if finite.any() else 1
                ax_loss.plot(last, shown[-1] if finite.any() else 1.0, "x", ms=10, mew=2, color="tab:red")
        if len(r["val_acc"]):
            ax_acc.plot(np.arange(1, len(r["val_acc"]) + 1), r["val_acc"], style, color=color, label=label)
    ax_loss.axhline(math.log(10), color="0.8", linewidth=0.8)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (log scale)")
    ax_loss.set_title("training loss per epoch (grey: ln 10, a uniform guess)"
                      + (f"; losses above {_LOSS_CEILING:.0e} drawn at it" if clipped else ""), fontsize=9)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy")
    ax_acc.set_ylim(0.0, 1.02)
    ax_acc.set_title("validation accuracy per epoch", fontsize=9)
    empty = report["run"]["state"] in ("missing", "error")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        if empty:   # nothing trained: say why where the curves would be
            ax.text(0.5, 0.5, textwrap.fill(report["run"]["message"], 40), transform=ax.transAxes, ha="center",
                    va="center", color="tab:red")
    fig.tight_layout()
    return fig, (ax_loss, ax_acc)


def mlp_dashboard(train_mlp: Callable, *, seed: int = 0):
    """Sliders for the learning rate, the init scale, the batch size (all three on a log scale) and the
    hidden width; each change trains your train_mlp once (a progress bar shows it; a setting seen
    before shows at once) and redraws its curves beside those of the defaults.

    The progress bar is one ``IntProgress`` widget beside the plot, updated in place (a bar created
    inside an Output widget at every change made headless execution hang now and then)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    style = {"description_width": "initial"}
    lr = widgets.FloatLogSlider(value=DEFAULTS["lr"], base=10, min=math.log10(LR_RANGE[0]),
                                max=math.log10(LR_RANGE[1]), step=0.1, description="learning rate",
                                continuous_update=False, readout_format=".2g", style=style)
    scale = widgets.FloatLogSlider(value=DEFAULTS["init_scale"], base=10, min=math.log10(INIT_RANGE[0]),
                                   max=math.log10(INIT_RANGE[1]), step=0.25, description="init scale",
                                   continuous_update=False, readout_format=".2g", style=style)
    batch = widgets.SelectionSlider(options=list(BATCH_SIZES), value=DEFAULTS["batch_size"],
                                    description="batch size", continuous_update=False, style=style)
    width = widgets.SelectionSlider(options=list(WIDTHS), value=DEFAULTS["layer_sizes"][1],
                                    description="hidden width", continuous_update=False, style=style)
    epochs = DEFAULTS["epochs"]
    bar = widgets.IntProgress(value=0, min=0, max=epochs, description="training")
    out, status = widgets.Output(), widgets.HTML()

    def progress(n: int) -> None:
        bar.value = min(bar.max, bar.value + n)

    def update(_change=None) -> None:
        began = time.perf_counter()
        bar.value = 0
        bar.max = 2 * epochs   # at most two runs: the defaults (once) and this setting
        status.value = "<span style='color:#666'>training...</span>"
        report = mlp_report(train_mlp, lr.value, scale.value, batch.value, width.value, seed=seed, progress=progress)
        bar.value = bar.max
        run = report["run"]
        with out:
            out.clear_output(wait=True)
            fig, _ = plot_mlp_report(report)
            plt.show()
            plt.close(fig)
            print(format_mlp_report(report))
        took = time.perf_counter() - began
        failed = run["state"] in ("missing", "error")
        text = run["message"] if failed else (
            f"{run['message']} ({'from the cache' if run['cached'] else f'{took:.1f} s'})")
        warning = defaults_warning(report)
        if warning:
            text += " " + warning
        color = "#b00" if failed else "#666"
        status.value = f"<span style='color:{color}'>{html.escape(_describe(run['settings']) + ': ' + text)}</span>"

    for box in (lr, scale, batch, width):
        box.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([lr, scale]), widgets.HBox([batch, width]), status, bar, out])


_FRESH_SEEDS = itertools.count(10_000)


def benchmark(train_mlp: Callable, repeats: int = 3, **settings: Any) -> dict:
    """Seconds of uncached runs of mlp_run (the cache is bypassed by seeds never used before):
    {"median_s", "best_s", "runs_s"}."""
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        result = mlp_run(train_mlp, seed=next(_FRESH_SEEDS), **settings)
        runs.append(time.perf_counter() - began)
        if result["cached"]:
            raise RuntimeError("benchmark hit the cache")
    return {"median_s": statistics.median(runs), "best_s": min(runs), "runs_s": runs}
