"""The two explorers of notebook 06: a softmax explorer and a regression-loss comparison.

Compute apart from display:

* :func:`softmax_report` (plain numbers): for 3-5 logits, a temperature T and a target class, the
  probabilities softmax(z / T), the cross-entropy of the target and its gradient with respect to
  each logit; :func:`format_softmax_report` and :func:`plot_softmax_report` show it;
* :func:`regression_report` (plain numbers): nine fixed targets near 0 and one outlier of a chosen
  size, a model that predicts 0 for all ten; for MSE, MAE and Huber the loss, the gradient each
  point sends back to its prediction, the outlier's share of it, and the best constant prediction;
  :func:`format_regression_report` and :func:`plot_regression_report` show it;
* :func:`softmax_explorer` and :func:`regression_explorer` wire sliders to the two.

The student's functions are used where written (passed by name: ``softmax``, ``cross_entropy``,
``cross_entropy_grad``, ``huber``, ``huber_grad``), PyTorch's otherwise (its functions, autograd for
the gradients), so nothing here solves an exercise. torch, matplotlib and ipywidgets are imported
inside the functions that need them: importing this module loads NumPy only.
"""
from __future__ import annotations

import functools
import statistics
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .elementwise import quiet_call, result_form
from .losses import array_problem, scalar_problem

__all__ = ["softmax_report", "format_softmax_report", "plot_softmax_report", "softmax_explorer",
           "regression_report", "format_regression_report", "plot_regression_report", "regression_explorer",
           "benchmark"]

SOFTMAX_NAMES = ("softmax", "cross_entropy", "cross_entropy_grad")
REGRESSION_NAMES = ("huber", "huber_grad")
NOT_WRITTEN = "not written yet"
LOSSES = ("MSE", "MAE", "Huber")


def _torch():
    import torch

    return torch


def _mine(name: str, fn: Optional[Callable], fallback: Callable, args: tuple, kwargs: dict, kind: str,
          shape: tuple, notes: list) -> tuple:
    """(value, "yours" or "torch"): fn(*args) if it is written and keeps the contract, else torch's."""
    if fn is None:
        return fallback(), "torch"
    try:
        got, caught = quiet_call(fn, *(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args),
                                 **kwargs)
    except NotImplementedError:
        notes.append(f"{name}: {NOT_WRITTEN}, torch's used")
        return fallback(), "torch"
    except Exception as exc:  # the student's error is something to show, not a crash
        notes.append(f"your {name} raised {type(exc).__name__}: {str(exc)[:120]}; torch's used")
        return fallback(), "torch"
    value = result_form(got)
    problem = scalar_problem(value) if kind == "scalar" else array_problem(value, shape)
    if problem:
        notes.append(f"your {name} {problem[:160]}; torch's used")
        return fallback(), "torch"
    if caught:
        notes.append(f"your {name} raised {caught[0]}")
    return (float(value) if kind == "scalar" else np.asarray(value, dtype=np.float64)), "yours"


# ----------------------------------------------------------------------------------------------
# the softmax explorer


def softmax_report(logits: Sequence[float] = (2.0, 1.0, 0.1), temperature: float = 1.0, target: int = 0,
                   functions: Optional[dict] = None) -> dict:
    """Softmax, cross-entropy and its gradient for one sample; plain numbers.

    Args:
        logits: C numbers (3 <= C <= 5 in the explorer; any C >= 1 here).
        temperature: T > 0; the probabilities are softmax(logits / T).
        target: the true class, 0 <= target < C.
        functions: the student's functions by name (missing ones, or ones not written: torch's).

    Returns a dict with settings (logits, temperature, target), probs (C,), loss (the cross-entropy
    -log p_target), grad (C,) (d loss / d logit_i = (p_i - [i = target]) / T), sources and notes.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(1, -1)
    C = z.shape[1]
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0 <= int(target) < C:
        raise ValueError(f"target must be a class in 0..{C - 1}, got {target}")
    functions, notes = functions or {}, []
    torch = _torch()
    F = torch.nn.functional
    scaled = z / temperature
    targets = np.array([int(target)])
    t_targets = torch.from_numpy(targets)

    def torch_grad() -> np.ndarray:
        t = torch.from_numpy(scaled.copy()).requires_grad_(True)
        F.cross_entropy(t, t_targets).backward()
        return t.grad.numpy()

    probs, p_src = _mine("softmax", functions.get("softmax"),
                         lambda: torch.softmax(torch.from_numpy(scaled), dim=-1).numpy(), (scaled,), {}, "array",
                         (1, C), notes)
    loss, l_src = _mine("cross_entropy", functions.get("cross_entropy"),
                        lambda: F.cross_entropy(torch.from_numpy(scaled), t_targets).item(), (scaled, targets), {},
                        "scalar", (), notes)
    grad, g_src = _mine("cross_entropy_grad", functions.get("cross_entropy_grad"), torch_grad, (scaled, targets),
                        {}, "array", (1, C), notes)
    return {"settings": {"logits": z[0].tolist(), "temperature": float(temperature), "target": int(target)},
            "probs": np.asarray(probs)[0], "loss": float(loss), "grad": np.asarray(grad)[0] / temperature,
            "sources": {"softmax": p_src, "cross_entropy": l_src, "cross_entropy_grad": g_src}, "notes": notes}


def format_softmax_report(report: dict) -> str:
    s = report["settings"]
    lines = [f"logits {np.round(s['logits'], 3).tolist()}, T = {s['temperature']:.3g}, target class {s['target']}",
             "class   p        d loss / d logit"]
    for i, (p, g) in enumerate(zip(report["probs"], report["grad"])):
        lines.append(f"{i:>5}{'*' if i == s['target'] else ' '}  {p:.4f}   {g:+.4f}")
    lines.append(f"cross-entropy -log p[{s['target']}] = {report['loss']:.4f}   "
                 f"(sources: " + ", ".join(f"{k} {v}" for k, v in report["sources"].items()) + ")")
    lines += [f"note: {note}" for note in report["notes"]]
    return "\n".join(lines)


def plot_softmax_report(report: dict, fig=None):
    """Bars of the probabilities and of the gradient per logit. Returns (fig, axes)."""
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    s = report["settings"]
    C = len(report["probs"])
    colors = ["tab:green" if i == s["target"] else "tab:blue" for i in range(C)]
    axes[0].bar(range(C), report["probs"], color=colors)
    axes[0].set_ylim(0, 1)
    axes[0].set_title(f"softmax(z / {s['temperature']:.3g}); loss {report['loss']:.3f}", fontsize=10)
    axes[0].set_xlabel("class (green: target)")
    axes[1].bar(range(C), report["grad"], color=colors)
    axes[1].axhline(0.0, color="black", linewidth=0.6)
    axes[1].set_ylim(-1.05 / s["temperature"], 1.05 / s["temperature"])
    axes[1].set_title("d loss / d logit", fontsize=10)
    axes[1].set_xlabel("class")
    for ax in axes:  # classes are whole numbers
        ax.set_xticks(range(C))
    fig.tight_layout()
    return fig, axes


def softmax_explorer(classes: int = 4, **functions: Callable):
    """Sliders for the logits (3-5 classes) and the temperature, a dropdown for the target."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    unknown = sorted(set(functions) - set(SOFTMAX_NAMES))
    if unknown:
        raise TypeError(f"unknown functions {unknown}; the explorer uses {list(SOFTMAX_NAMES)}")
    if not 3 <= classes <= 5:
        raise ValueError(f"classes must be 3, 4 or 5, got {classes}")
    start = [2.0, 1.0, 0.1, -1.0, 0.5][:classes]
    logit_boxes = [widgets.FloatSlider(value=v, min=-10.0, max=10.0, step=0.1, description=f"logit {i}",
                                       continuous_update=False) for i, v in enumerate(start)]
    temperature = widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05, description="temperature",
                                         continuous_update=False, readout_format=".3g",
                                         style={"description_width": "initial"})
    target = widgets.Dropdown(options=list(range(classes)), value=0, description="target")
    out, status = widgets.Output(), widgets.HTML()

    def update(_change=None) -> None:
        began = time.perf_counter()
        report = softmax_report([b.value for b in logit_boxes], temperature.value, target.value, functions)
        compute_ms = 1e3 * (time.perf_counter() - began)
        with out:
            out.clear_output(wait=True)
            fig, _ = plot_softmax_report(report)
            plt.show()
            plt.close(fig)
            print(format_softmax_report(report))
        status.value = f"<span style='color:#666'>compute {compute_ms:.0f} ms</span>"

    for box in (*logit_boxes, temperature, target):
        box.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox(logit_boxes[:3]), widgets.HBox([*logit_boxes[3:], temperature, target]),
                         status, out])


# ----------------------------------------------------------------------------------------------
# the regression-loss comparison


@functools.lru_cache(maxsize=1)
def _inliers() -> np.ndarray:
    return np.random.default_rng(6).normal(0.0, 0.5, size=9)


def regression_report(outlier: float = 10.0, delta: float = 1.0, functions: Optional[dict] = None) -> dict:
    """Ten targets (nine near 0, the last one = outlier) and predictions y_hat = 0; plain numbers.

    Returns a dict with settings, y (10,), loss {name: float}, grad {name: (10,)} (d loss / d y_hat_i
    of the mean loss), outlier_share {name: |grad of the outlier| / sum |grad|}, best {name: the
    constant prediction that minimises the loss: the mean, the median (the midpoint of the two middle
    targets), Huber's (near the median: beyond delta a point pulls with a fixed force)},
    sources and notes. The Huber rows use the student's huber / huber_grad where written.
    """
    if not delta > 0:
        raise ValueError(f"delta must be positive, got {delta}")
    functions, notes = functions or {}, []
    torch = _torch()
    F = torch.nn.functional
    y = np.append(_inliers(), float(outlier))
    y_hat = np.zeros_like(y)
    t_y = torch.from_numpy(y)
    torch_losses = {"MSE": F.mse_loss, "MAE": F.l1_loss, "Huber": lambda a, b: F.huber_loss(a, b, delta=delta)}

    def torch_grad(name: str, at: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(at.copy()).requires_grad_(True)
        torch_losses[name](t, t_y).backward()
        return t.grad.numpy()

    loss = {name: fn(torch.from_numpy(y_hat), t_y).item() for name, fn in torch_losses.items()}
    grad = {name: torch_grad(name, y_hat) for name in LOSSES}
    sources = {}
    loss["Huber"], sources["huber"] = _mine("huber", functions.get("huber"), lambda: loss["Huber"], (y_hat, y),
                                            {"delta": delta}, "scalar", (), notes)
    grad["Huber"], sources["huber_grad"] = _mine("huber_grad", functions.get("huber_grad"), lambda: grad["Huber"],
                                                 (y_hat, y), {"delta": delta}, "array", y.shape, notes)
    share = {name: float(abs(g[-1]) / max(np.abs(g).sum(), 1e-300)) for name, g in grad.items()}
    # the best constant c: where the mean gradient changes sign (bisection; torch's Huber gradient)
    low, high = float(y.min()), float(y.max())
    for _ in range(60):
        mid = 0.5 * (low + high)
        if torch_grad("Huber", np.full_like(y, mid)).sum() > 0:
            high = mid
        else:
            low = mid
    best = {"MSE": float(np.mean(y)), "MAE": float(np.median(y)), "Huber": 0.5 * (low + high)}
    return {"settings": {"outlier": float(outlier), "delta": float(delta)}, "y": y, "loss": loss, "grad": grad,
            "outlier_share": share, "best": best, "sources": sources, "notes": notes}


def format_regression_report(report: dict) -> str:
    s = report["settings"]
    lines = [f"outlier {s['outlier']:g}, delta {s['delta']:g}; predictions 0 for all 10 points",
             "loss    value     grad of the outlier   its share of |grad|   best constant"]
    for name in LOSSES:
        lines.append(f"{name:<6}{report['loss'][name]:>9.4f}   {report['grad'][name][-1]:>+12.4f}        "
                     f"{report['outlier_share'][name]:>8.1%}          {report['best'][name]:+.4f}")
    lines.append("(Huber: " + ", ".join(f"{k} {v}" for k, v in report["sources"].items()) + ")")
    lines += [f"note: {note}" for note in report["notes"]]
    return "\n".join(lines)


def plot_regression_report(report: dict, fig=None):
    """The gradient each point sends back, per loss, and the best constants. Returns (fig, axes)."""
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    y = report["y"]
    width = 0.27
    for k, (name, color) in enumerate(zip(LOSSES, ("tab:red", "tab:blue", "tab:green"))):
        axes[0].bar(np.arange(len(y)) + (k - 1) * width, report["grad"][name], width=width, color=color, label=name)
    axes[0].axhline(0.0, color="black", linewidth=0.6)
    axes[0].set_xlabel("point (9 = the outlier)")
    axes[0].set_ylabel("gradient of the mean loss")
    axes[0].set_title("d loss / d y_hat_i at y_hat = 0", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].scatter(np.arange(len(y)), y, color="black", s=15, label="targets y")
    for name, color, style in zip(LOSSES, ("tab:red", "tab:blue", "tab:green"), ("-", "--", ":")):
        axes[1].axhline(report["best"][name], color=color, linestyle=style, linewidth=1.6,
                        label=f"best constant, {name} ({report['best'][name]:+.2f})")
    axes[1].set_xlabel("point (9 = the outlier)")
    axes[1].set_ylabel("target y")
    axes[1].set_title("the constant each loss prefers", fontsize=10)
    for ax in axes:  # points are numbered
        ax.set_xticks(np.arange(len(y)))
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig, axes


def regression_explorer(**functions: Callable):
    """A slider for the outlier's size and one for Huber's delta."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    unknown = sorted(set(functions) - set(REGRESSION_NAMES))
    if unknown:
        raise TypeError(f"unknown functions {unknown}; the explorer uses {list(REGRESSION_NAMES)}")
    outlier = widgets.FloatSlider(value=10.0, min=-50.0, max=50.0, step=1.0, description="outlier",
                                  continuous_update=False)
    delta = widgets.FloatSlider(value=1.0, min=0.1, max=5.0, step=0.1, description="delta", continuous_update=False)
    out, status = widgets.Output(), widgets.HTML()

    def update(_change=None) -> None:
        began = time.perf_counter()
        report = regression_report(outlier.value, delta.value, functions)
        compute_ms = 1e3 * (time.perf_counter() - began)
        with out:
            out.clear_output(wait=True)
            fig, _ = plot_regression_report(report)
            plt.show()
            plt.close(fig)
            print(format_regression_report(report))
        status.value = f"<span style='color:#666'>compute {compute_ms:.0f} ms</span>"

    for box in (outlier, delta):
        box.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([outlier, delta]), status, out])


def benchmark(report: Callable, repeats: int = 7, **kwargs: Any) -> dict:
    """Time a report function, in milliseconds: {"median_ms", "best_ms", "runs_ms"}."""
    report(**kwargs)  # warm the caches (torch)
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        report(**kwargs)
        runs.append(1e3 * (time.perf_counter() - began))
    return {"median_ms": statistics.median(runs), "best_ms": min(runs), "runs_ms": runs}
