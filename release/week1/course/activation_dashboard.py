"""The activation explorer of notebook 05: the derivative as a valve, for a spread of pre-activations.

Three pieces kept apart:

* :func:`activation_report` computes (plain numbers): an activation f and its derivative f' on a
  grid, a fixed sample of pre-activations z ~ N(mean, std²) with its histogram, and the shares of
  the sample where f' is tiny (saturated: 0 < |f'(z)| < 0.01) or exactly 0 (dead: no gradient at
  all), and the mean |f'(z)|;
* :func:`format_activation_report` (text) and :func:`plot_activation_report` (matplotlib) show it;
* :func:`activation_explorer` wires a dropdown and two sliders to the two.

The student's own functions are used where they are written (passed in by name: ``sigmoid``,
``sigmoid_grad``, ``tanh_grad``, ``relu_grad``, ``leaky_relu``, ``leaky_relu_grad``, ``gelu``,
``gelu_grad``); PyTorch's otherwise (its functions, and autograd for the derivatives), so nothing
here solves an exercise. torch, matplotlib and ipywidgets are imported inside the functions that
need them: importing this module loads NumPy only.
"""
from __future__ import annotations

import functools
import statistics
import time
from typing import Any, Callable, Optional

import numpy as np

from .elementwise import form_problem, quiet_call, result_form

__all__ = [
    "ACTIVATIONS",
    "DEFAULTS",
    "SATURATED",
    "activation_report",
    "format_activation_report",
    "plot_activation_report",
    "benchmark_compute",
    "activation_explorer",
]

#: the dropdown's activations, in its order: name -> (the student's f, the student's f')
ACTIVATIONS = {
    "sigmoid": ("sigmoid", "sigmoid_grad"),
    "tanh": (None, "tanh_grad"),
    "relu": (None, "relu_grad"),
    "leaky_relu": ("leaky_relu", "leaky_relu_grad"),
    "gelu": ("gelu", "gelu_grad"),
}
#: |f'| below this counts as saturated (the valve almost closed)
SATURATED = 0.01
DEFAULTS = {"activation": "sigmoid", "std": 1.0, "mean": 0.0, "samples": 20_000, "grid": 401}
STD_RANGE = (0.1, 100.0)
MEAN_RANGE = (-5.0, 5.0)
_BINS = 60

NOT_WRITTEN = "not written yet"


def _torch():
    import torch

    return torch


def _torch_functions(name: str) -> tuple:
    """(f, f') of an activation in torch, as functions of a float64 NumPy array."""
    torch = _torch()
    F = torch.nn.functional
    table = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
             "leaky_relu": lambda t: F.leaky_relu(t, 0.01), "gelu": F.gelu}
    f = table[name]

    def value(x: np.ndarray) -> np.ndarray:
        return f(torch.from_numpy(x)).numpy()

    def derivative(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x.copy()).requires_grad_(True)
        f(t).backward(torch.ones_like(t))
        return t.grad.numpy()

    return value, derivative


@functools.lru_cache(maxsize=4)
def _standard_sample(samples: int, seed: int) -> np.ndarray:
    """The fixed standard-normal sample that every setting scales and shifts."""
    return np.random.default_rng(seed).standard_normal(samples)


def _evaluate(name: str, fn: Optional[Callable], fallback: Callable, x: np.ndarray, notes: list) -> tuple:
    """(values, "yours" or "torch") of fn(x), falling back to torch's when fn is missing or fails."""
    if fn is None:
        return fallback(x), "torch"
    try:
        got, caught = quiet_call(fn, x.copy())
    except NotImplementedError:
        notes.append(f"{name}: {NOT_WRITTEN}, torch's used")
        return fallback(x), "torch"
    except Exception as exc:  # the student's error is something to show, not a crash
        notes.append(f"your {name} raised {type(exc).__name__}: {str(exc)[:120]}; torch's used")
        return fallback(x), "torch"
    value = result_form(got)
    problem = form_problem(value, x.shape)
    if problem:
        notes.append(f"your {name} {problem[:160]}; torch's used")
        return fallback(x), "torch"
    if caught:
        notes.append(f"your {name} raised {caught[0]}")
    return np.asarray(value, dtype=np.float64), "yours"


def activation_report(activation: str = DEFAULTS["activation"], std: float = DEFAULTS["std"],
                      mean: float = DEFAULTS["mean"], functions: Optional[dict] = None, *,
                      samples: int = DEFAULTS["samples"], grid: int = DEFAULTS["grid"], seed: int = 0) -> dict:
    """The activation and its derivative, and what they do to z ~ N(mean, std²); plain numbers.

    Args:
        activation: one of ACTIVATIONS.
        std, mean: the spread and the centre of the pre-activations z.
        functions: the student's functions by name (missing ones, and ones not written yet: torch's).

    Returns a dict with
      settings:  activation, std, mean, samples;
      x, f, df:  (grid,) the grid and f, f' on it;
      edges, counts: the histogram of the sample z on the grid's range (_BINS bins);
      saturated: the share of z with 0 < |f'(z)| < SATURATED;
      dead:      the share of z with f'(z) == 0 exactly;
      mean_abs_grad: the mean |f'(z)|, how far the valve is open on average;
      sources:   {"f": "yours" or "torch", "df": ...};
      notes:     what went wrong with the student's functions, if anything.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {list(ACTIVATIONS)}")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    functions = functions or {}
    f_name, df_name = ACTIVATIONS[activation]
    torch_f, torch_df = _torch_functions(activation)
    z = mean + std * _standard_sample(samples, seed)
    reach = max(6.0, abs(mean) + 4.0 * std)
    x = np.linspace(-reach, reach, grid)
    notes: list = []
    f_mine = functions.get(f_name) if f_name else None
    df_mine = functions.get(df_name)
    f, f_source = _evaluate(f_name or activation, f_mine, torch_f, x, notes)
    df, df_source = _evaluate(df_name, df_mine, torch_df, x, notes)
    df_z, _ = _evaluate(df_name, df_mine if df_source == "yours" else None, torch_df, z, [])
    with np.errstate(all="ignore"):
        small = np.abs(df_z) < SATURATED
        zero = df_z == 0
        counts, edges = np.histogram(z, bins=_BINS, range=(-reach, reach))
    return {
        "settings": {"activation": activation, "std": float(std), "mean": float(mean), "samples": samples},
        "x": x, "f": f, "df": df, "edges": edges, "counts": counts.astype(np.int64),
        "saturated": float(np.mean(small & ~zero)), "dead": float(np.mean(zero)),
        "mean_abs_grad": float(np.mean(np.abs(df_z))),
        "sources": {"f": f_source, "df": df_source}, "notes": notes,
    }


def _percent(share: float) -> str:
    return f"{share:.1%}" if share == 0 or share >= 0.001 else "<0.1%"


def format_activation_report(report: dict) -> str:
    """The report in three lines of text."""
    s = report["settings"]
    f_name, df_name = ACTIVATIONS[s["activation"]]
    sources = report["sources"]
    lines = [f"{s['activation']}: z ~ N({s['mean']:g}, {s['std']:.3g}²), {s['samples']} samples "
             f"(f: {sources['f']}, f': {sources['df']})",
             f"  saturated 0 < |f'(z)| < {SATURATED:g}: {_percent(report['saturated'])}   "
             f"dead f'(z) = 0: {_percent(report['dead'])}   mean |f'(z)| = {report['mean_abs_grad']:.4f}"]
    lines += [f"  note: {note}" for note in report["notes"]]
    return "\n".join(lines)


def plot_activation_report(report: dict, fig=None):
    """f and f' over the histogram of z, on one set of axes. Returns (fig, ax)."""
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(9, 4.5))
    ax = fig.subplots()
    behind = ax.twinx()
    edges, counts = report["edges"], report["counts"]
    behind.bar(edges[:-1], counts / max(counts.sum(), 1), width=np.diff(edges), align="edge", color="0.85",
               edgecolor="0.75", label="histogram of z")
    behind.set_ylabel("share of z per bin", color="0.45")
    behind.set_zorder(0)
    ax.set_zorder(1)
    ax.patch.set_visible(False)
    s = report["settings"]
    ax.plot(report["x"], report["f"], color="tab:blue", label=f"f = {s['activation']} ({report['sources']['f']})")
    ax.plot(report["x"], report["df"], color="tab:red", label=f"f' ({report['sources']['df']})")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.axhspan(-SATURATED, SATURATED, color="tab:red", alpha=0.12, label=f"|f'| < {SATURATED:g}")
    finite = np.isfinite(report["f"])
    top = max(1.2, float(np.max(report["f"][finite], initial=1.0)) if s["activation"] in ("sigmoid", "tanh") else 1.2)
    ax.set_ylim(-1.2 if s["activation"] == "tanh" else -0.4, top)
    ax.set_xlim(report["x"][0], report["x"][-1])
    ax.set_xlabel("pre-activation z")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{s['activation']}, z ~ N({s['mean']:g}, {s['std']:.3g}²): saturated {_percent(report['saturated'])}, "
                 f"dead {_percent(report['dead'])}, mean |f'(z)| {report['mean_abs_grad']:.3f}", fontsize=10)
    fig.tight_layout()
    return fig, ax


def benchmark_compute(functions: Optional[dict] = None, repeats: int = 7, **settings: Any) -> dict:
    """Time activation_report at the given settings, in milliseconds: {"median_ms", "best_ms", "runs_ms"}."""
    options = {k: DEFAULTS[k] for k in ("activation", "std", "mean")} | settings
    activation_report(functions=functions, **options)  # warm the caches (the sample, torch)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        activation_report(functions=functions, **options)
        runs.append(1e3 * (time.perf_counter() - start))
    return {"median_ms": statistics.median(runs), "best_ms": min(runs), "runs_ms": runs, "repeats": repeats}


def activation_explorer(activation: str = DEFAULTS["activation"], std: float = DEFAULTS["std"],
                        mean: float = DEFAULTS["mean"], **functions: Callable):
    """The explorer: a dropdown of activations, sliders for the std (log scale) and the mean of z,
    and a figure redrawn on every change. Pass your functions by name, e.g. sigmoid=sigmoid."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    known = {name for pair in ACTIVATIONS.values() for name in pair if name}
    unknown = sorted(set(functions) - known)
    if unknown:
        raise TypeError(f"unknown functions {unknown}; the explorer uses {sorted(known)}")
    activation_box = widgets.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation")
    std_box = widgets.FloatLogSlider(value=std, base=10, min=-1, max=2, step=0.05, description="std of z",
                                     continuous_update=False, readout_format=".3g")
    mean_box = widgets.FloatSlider(value=mean, min=MEAN_RANGE[0], max=MEAN_RANGE[1], step=0.5,
                                   description="mean of z", continuous_update=False)
    out = widgets.Output()
    status = widgets.HTML()

    def update(_change=None) -> None:
        start = time.perf_counter()
        report = activation_report(activation_box.value, std_box.value, mean_box.value, functions)
        compute_ms = 1e3 * (time.perf_counter() - start)
        with out:
            out.clear_output(wait=True)
            fig, _ = plot_activation_report(report)
            plt.show()
            plt.close(fig)
            print(format_activation_report(report))
        status.value = f"<span style='color:#666'>compute {compute_ms:.0f} ms</span>"

    for box in (activation_box, std_box, mean_box):
        box.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([activation_box, std_box, mean_box]), status, out])
