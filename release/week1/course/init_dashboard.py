"""The init-scale slider of notebook 04: how the scale of the initial weights shapes a deep MLP.

Three pieces kept apart:

* :func:`init_scale_report` computes (plain numbers): the per-layer activation statistics come from
  the student's own ``forward_stats`` (passed in), the per-layer weight gradients of one backward pass
  from PyTorch in float64, and histograms of both;
* :func:`format_init_report` (text) and :func:`plot_init_report` (matplotlib) display a report;
* :func:`init_scale_dashboard` wires ipywidgets controls to the two.

The weights are drawn by PyTorch's own initializers (``torch.nn.init``), so nothing here solves a
graded exercise. torch, matplotlib and ipywidgets are imported inside the functions that need them:
importing this module loads NumPy only.
"""
from __future__ import annotations

import functools
import math
import statistics
import time
from typing import Any, Callable, Optional

import numpy as np

__all__ = [
    "SCHEMES",
    "ACTIVATIONS",
    "HEALTHY",
    "DEFAULTS",
    "draw_weights",
    "init_scale_report",
    "format_init_report",
    "plot_init_report",
    "benchmark_compute",
    "init_scale_dashboard",
]

#: the schemes the dropdown offers, in its order
SCHEMES = ("N(0, 1)", "N(0, 0.01²)", "Xavier", "Kaiming", "PyTorch default")
#: the activations forward_stats accepts
ACTIVATIONS = ("relu", "tanh", "linear", "sigmoid")
#: the range of standard deviations drawn as the healthy band
HEALTHY = (0.5, 2.0)
#: the default sizes: the batch and the width of every layer; depth from 10 to 50
DEFAULTS = {"scheme": "Kaiming", "activation": "relu", "depth": 20, "scale": 1.0, "width": 128, "batch": 128}
MIN_DEPTH, MAX_DEPTH = 10, 50
#: the layers whose histograms are shown, as fractions of the depth
_HISTOGRAM_AT = (0.0, 0.25, 0.5, 0.75, 1.0)
_BINS = 40

NOT_WRITTEN = "not written yet (do the exercise forward_stats above, then run this cell again)"


def _torch():
    import torch

    return torch


@functools.lru_cache(maxsize=16)
def _weights_at_scale_one(scheme: str, width: int, seed: int) -> tuple:
    """MAX_DEPTH (width, width) float64 tensors of a scheme at scale 1, drawn by torch.nn.init (cached)."""
    torch = _torch()
    init = torch.nn.init
    draw = {
        "N(0, 1)": lambda W, **g: init.normal_(W, 0.0, 1.0, **g),
        "N(0, 0.01²)": lambda W, **g: init.normal_(W, 0.0, 0.01, **g),
        "Xavier": lambda W, **g: init.xavier_normal_(W, **g),
        "Kaiming": lambda W, **g: init.kaiming_normal_(W, nonlinearity="relu", **g),
        "PyTorch default": lambda W, **g: init.kaiming_uniform_(W, a=math.sqrt(5), **g),
    }
    if scheme not in draw:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {SCHEMES}")
    generator = torch.Generator().manual_seed(seed)
    out = []
    for index in range(MAX_DEPTH):
        W = torch.empty(width, width, dtype=torch.float64)
        try:
            draw[scheme](W, generator=generator)
        except TypeError:  # torch before 2.2: no generator argument; draw from a forked global generator
            with torch.random.fork_rng():
                torch.manual_seed(seed * 1000 + index)
                draw[scheme](W)
        out.append(W)
    return tuple(out)


def draw_weights(scheme: str, depth: int, scale: float = 1.0, *, width: int = DEFAULTS["width"],
                 seed: int = 0) -> list:
    """``depth`` weight matrices (width, width) of a scheme, their standard deviation times ``scale``,
    as float64 torch tensors (the same draw for every scale: only the multiplier changes)."""
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be between 1 and {MAX_DEPTH}, got {depth}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return [scale * W for W in _weights_at_scale_one(scheme, width, seed)[:depth]]


@functools.lru_cache(maxsize=4)
def _batch(batch: int, width: int, seed: int) -> np.ndarray:
    """The fixed input batch (N, D), standard normal."""
    return np.random.default_rng(seed).standard_normal((batch, width))


@functools.lru_cache(maxsize=4)
def _output_gradient(batch: int, width: int, seed: int) -> np.ndarray:
    """The fixed gradient that the backward pass starts from, dL/dY = G / N with G standard normal."""
    return np.random.default_rng(seed + 1).standard_normal((batch, width)) / batch


def _torch_activation(name: str):
    torch = _torch()
    table = {"linear": lambda z: z, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")
    return table[name]


def _forward_backward(torch, H, leaves: list, activation_fn, shown: list, dY: np.ndarray) -> tuple:
    """(histograms of log10 |activation| at the layers shown, [dW of every layer]) of one pass in torch.

    Only the histograms leave this function, never the activations themselves: the per-layer
    statistics of the report are the student's forward_stats, which nothing here computes."""
    kept = {}
    for index, W in enumerate(leaves, start=1):
        H = activation_fn(H @ W.T)
        if index in shown:
            kept[index] = H.detach().numpy()
    H.backward(torch.from_numpy(dY))
    with np.errstate(all="ignore"):
        histograms = _log_histograms(kept)
    return histograms, [W.grad.numpy() for W in leaves]


def _layers_shown(depth: int) -> list:
    return sorted({max(1, round(f * depth)) for f in _HISTOGRAM_AT})


def _log_histograms(arrays: dict) -> dict:
    """Histograms of log10 |values| for some layers, on shared bins: {"edges": ..., "counts": {layer: ...},
    "zeros": {layer: fraction of exact zeros}, "nonfinite": {layer: fraction of inf/NaN}}."""
    logs, zeros, nonfinite = {}, {}, {}
    for layer, values in arrays.items():
        flat = np.abs(values.reshape(-1))
        finite = np.isfinite(flat)
        nonfinite[layer] = float(1.0 - finite.mean()) if flat.size else 0.0
        positive = finite & (flat > 0)
        zeros[layer] = float((finite & (flat == 0)).mean()) if flat.size else 0.0
        logs[layer] = np.log10(flat[positive])
    present = [v for v in logs.values() if v.size]
    if present:
        low = min(float(v.min()) for v in present)
        high = max(float(v.max()) for v in present)
    else:
        low, high = -1.0, 1.0
    if high - low < 1.0:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, _BINS + 1)
    counts = {layer: np.histogram(v, bins=edges)[0].astype(np.int64) for layer, v in logs.items()}
    return {"edges": edges, "counts": counts, "zeros": zeros, "nonfinite": nonfinite}


def _student_stats(forward_stats: Optional[Callable], X: np.ndarray, weights: list, activation: str,
                   depth: int) -> tuple:
    """(array (L, 2) or None, message or None) from the student's forward_stats."""
    if forward_stats is None:
        return None, "no forward_stats given"
    try:
        with np.errstate(all="ignore"):
            stats = forward_stats(X.copy(), [W.copy() for W in weights], activation)
    except NotImplementedError:
        return None, NOT_WRITTEN
    except Exception as exc:  # the student's error is something to show, not a crash
        return None, f"your forward_stats raised {type(exc).__name__}: {exc}"
    try:
        stats = np.array(stats, dtype=np.float64)
    except (TypeError, ValueError):
        return None, f"your forward_stats returned {type(stats).__name__}, not an array of numbers"
    if stats.shape != (depth, 2):
        return None, f"your forward_stats returned shape {stats.shape}, expected (L, 2) = ({depth}, 2)"
    return stats, None


def init_scale_report(forward_stats: Optional[Callable], scheme: str = DEFAULTS["scheme"],
                      activation: str = DEFAULTS["activation"], depth: int = DEFAULTS["depth"],
                      scale: float = DEFAULTS["scale"], *, width: int = DEFAULTS["width"],
                      batch: int = DEFAULTS["batch"], seed: int = 0) -> dict:
    """Run a depth-layer MLP (width units, no biases) on a fixed batch; return plain numbers.

    Returns a dict with
      settings:  the arguments (scheme, activation, depth, scale, width, batch);
      layers:    [1, ..., depth];
      act_mean, act_std: (depth,) arrays from ``forward_stats(X, weights, activation)`` (the student's),
                 or None when it is not written yet or fails (``message`` says why);
      grad_std:  (depth,) the standard deviation of each layer's weight gradient after one backward
                 pass of the fixed output gradient G / N (PyTorch, float64);
      act_hist, grad_hist: histograms of log10 |activation| and log10 |dW| for a few layers
                 (``act_hist`` is None when ``act_std`` is);
      message:   None, or what went wrong with forward_stats.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {SCHEMES}")
    activation_fn = _torch_activation(activation)
    torch = _torch()
    weights_t = draw_weights(scheme, depth, scale, width=width, seed=seed)
    X = _batch(batch, width, seed)
    weights = [W.numpy() for W in weights_t]
    stats, message = _student_stats(forward_stats, X, weights, activation, depth)

    shown = _layers_shown(depth)
    leaves = [W.clone().requires_grad_(True) for W in weights_t]
    H = torch.from_numpy(X)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices this small gain nothing from threads, and lose much on a busy machine
    try:
        act_hist, grads = _forward_backward(torch, H, leaves, activation_fn, shown,
                                            _output_gradient(batch, width, seed))
    finally:
        torch.set_num_threads(threads)
    with np.errstate(all="ignore"):
        grad_std = np.array([float(g.std()) for g in grads])
        grad_hist = _log_histograms({layer: grads[layer - 1] for layer in shown})
    if stats is None:
        act_hist = None
    return {
        "settings": {"scheme": scheme, "activation": activation, "depth": depth, "scale": float(scale),
                     "width": width, "batch": batch},
        "layers": list(range(1, depth + 1)),
        "act_mean": None if stats is None else stats[:, 0],
        "act_std": None if stats is None else stats[:, 1],
        "grad_std": grad_std,
        "act_hist": act_hist,
        "grad_hist": grad_hist,
        "message": message,
    }


def _verdict(std: np.ndarray) -> str:
    """Where a per-layer std curve leaves the healthy band (plain words)."""
    low, high = HEALTHY
    with np.errstate(invalid="ignore"):
        bad = ~((std >= low) & (std <= high))
    if not bad.any():
        return f"inside the band {low:g} to {high:g} at every layer"
    first = int(np.argmax(bad))
    value = std[first]
    side = "overflow (inf/NaN)" if not np.isfinite(value) else ("below" if value < low else "above")
    return f"leaves the band {low:g} to {high:g} at layer {first + 1} ({side}: {value:.3g})"


def format_init_report(report: dict, every: Optional[int] = None) -> str:
    """The report as a plain-text table: one line per layer (every ``every``-th layer and the last)."""
    s = report["settings"]
    depth = s["depth"]
    every = every or max(1, depth // 10)
    lines = [f"{s['scheme']} x {s['scale']:.3g}, activation {s['activation']}, {depth} layers of {s['width']} "
             f"units, batch {s['batch']}"]
    if report["act_std"] is None:
        lines.append(f"activations: {report['message']}")
        lines.append(f"{'layer':>5}  {'weight-gradient std':>19}")
    else:
        lines.append(f"activation std {_verdict(report['act_std'])}")
        lines.append(f"{'layer':>5}  {'activation mean':>15}  {'activation std':>14}  {'weight-gradient std':>19}")
    for i, layer in enumerate(report["layers"]):
        if layer % every and layer != depth and layer != 1:
            continue
        grad = f"{report['grad_std'][i]:19.3e}"
        if report["act_std"] is None:
            lines.append(f"{layer:>5}  {grad}")
        else:
            lines.append(f"{layer:>5}  {report['act_mean'][i]:15.3e}  {report['act_std'][i]:14.3e}  {grad}")
    return "\n".join(lines)


def _plot_curve(ax, layers, values, label: str, color: str, *, include: tuple = ()) -> None:
    """A per-layer curve on a log scale, spanning at least four decades (and the values in
    ``include``), so that noise does not look like a trend; 0, inf and NaN marked with x."""
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values) & (values > 0)
    ax.plot(np.asarray(layers)[ok], values[ok], marker="o", markersize=3, color=color, label=label)
    ax.set_yscale("log")
    if ok.any():
        low, high = float(values[ok].min()), float(values[ok].max())
        middle = math.sqrt(low * high)
        low, high = min([low, middle / 100, *include]), max([high, middle * 100, *include])
        ax.set_ylim(low / 2, high * 2)
    if (~ok).any():
        ax.plot(np.asarray(layers)[~ok], np.full((~ok).sum(), ax.get_ylim()[1] if ok.any() else 1.0), "x",
                color="black", label="0, inf or NaN")


def _histogram_label(hist: dict, layer: int) -> str:
    """'layer 5', with the shares a log scale cannot draw: exact zeros (ReLU) and inf/NaN (overflow)."""
    label = f"layer {layer}"
    zeros, nonfinite = hist["zeros"].get(layer, 0.0), hist["nonfinite"].get(layer, 0.0)
    if zeros:
        label += f", {_percent(zeros)} exactly 0"
    if nonfinite:
        label += f", {_percent(nonfinite)} inf/NaN"
    return label


def _percent(fraction: float) -> str:
    return f"{fraction:.0%}" if fraction >= 0.005 else "<1%"


def _plot_histograms(ax, hist: Optional[dict], title: str) -> None:
    ax.set_title(title, fontsize=10)
    if hist is None:
        ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
        return
    edges = hist["edges"]
    centres = (edges[:-1] + edges[1:]) / 2
    for layer, counts in hist["counts"].items():
        total = counts.sum() or 1
        ax.plot(centres, counts / total, label=_histogram_label(hist, layer))
    ax.set_xlabel("log10 |value|")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=8)


def plot_init_report(report: dict, fig=None):
    """Draw a report: std per layer (log scale, healthy band shaded) for the activations and the
    weight gradients, and the histograms of log10 |value| at a few layers. Returns (fig, axes)."""
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(11, 6.5))
    axes = fig.subplots(2, 2)
    s = report["settings"]
    layers = report["layers"]
    ax = axes[0, 0]
    ax.axhspan(*HEALTHY, color="tab:green", alpha=0.15, label="healthy 0.5 to 2")
    if report["act_std"] is not None:
        _plot_curve(ax, layers, report["act_std"], "activation std (your forward_stats)", "tab:blue", include=HEALTHY)
        ax.set_title(f"activations: {_verdict(report['act_std'])}", fontsize=10)
    else:
        ax.set_title(f"activations: {report['message']}", fontsize=9)
        ax.set_yscale("log")
        ax.set_ylim(HEALTHY[0] / 10, HEALTHY[1] * 10)
    ax.set_xlim(0.5, len(layers) + 0.5)
    ax.set_xlabel("layer")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    _plot_curve(ax, layers, report["grad_std"], "std of dW (PyTorch)", "tab:red")
    ax.set_xlabel("layer")
    ax.set_title("weight gradients of one backward pass (compare levels across settings)", fontsize=10)
    ax.legend(fontsize=8)
    _plot_histograms(axes[1, 0], report["act_hist"], "activations: log10 |a| at some layers")
    _plot_histograms(axes[1, 1], report["grad_hist"], "weight gradients: log10 |dW| at some layers")
    fig.suptitle(f"{s['scheme']} x {s['scale']:.3g}, {s['activation']}, {s['depth']} layers of {s['width']}")
    fig.tight_layout()
    return fig, axes


def benchmark_compute(forward_stats: Optional[Callable], repeats: int = 7, **settings: Any) -> dict:
    """Time the compute of one change (init_scale_report, drawing excluded) at the given settings
    (the defaults if none), in wall-clock milliseconds: {"median_ms", "best_ms", "runs_ms", "repeats",
    "depth", "width", "batch"}. On a busy machine the median includes waiting for other programs;
    the best run is what the computation itself costs."""
    options = {k: v for k, v in DEFAULTS.items()} | settings
    sizes = {"width": options.pop("width"), "batch": options.pop("batch")}
    init_scale_report(forward_stats, **options, **sizes)  # warm the caches (weights, batch)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        init_scale_report(forward_stats, **options, **sizes)
        runs.append(1e3 * (time.perf_counter() - start))
    return {"median_ms": statistics.median(runs), "best_ms": min(runs), "runs_ms": runs, "repeats": repeats,
            "depth": options["depth"], **sizes}


def init_scale_dashboard(forward_stats: Optional[Callable] = None, scheme: str = DEFAULTS["scheme"],
                         activation: str = DEFAULTS["activation"], depth: int = DEFAULTS["depth"],
                         scale: float = DEFAULTS["scale"]):
    """The slider: controls for the init scale (log scale), the scheme, the activation and the
    depth; a figure redrawn on every change. ``forward_stats`` is your function."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    scale_box = widgets.FloatLogSlider(value=scale, base=10, min=-2, max=2, step=0.01, description="init scale",
                                       continuous_update=False, readout_format=".3g")
    scheme_box = widgets.Dropdown(options=list(SCHEMES), value=scheme, description="scheme")
    activation_box = widgets.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation")
    depth_box = widgets.IntSlider(value=depth, min=MIN_DEPTH, max=MAX_DEPTH, step=1, description="depth",
                                  continuous_update=False)
    out = widgets.Output()
    status = widgets.HTML()

    def update(_change=None) -> None:
        start = time.perf_counter()
        report = init_scale_report(forward_stats, scheme_box.value, activation_box.value, depth_box.value,
                                   scale_box.value)
        compute_ms = 1e3 * (time.perf_counter() - start)
        with out:
            out.clear_output(wait=True)
            fig, _ = plot_init_report(report)
            plt.show()
            plt.close(fig)
        note = "" if report["message"] is None else f" — activations: {report['message']}"
        status.value = f"<span style='color:#666'>compute {compute_ms:.0f} ms{note}</span>"

    for box in (scale_box, scheme_box, activation_box, depth_box):
        box.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([scheme_box, activation_box]), widgets.HBox([scale_box, depth_box]), status, out])
