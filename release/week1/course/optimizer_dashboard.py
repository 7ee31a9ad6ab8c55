"""The learning-rate dashboard of notebook 08: SGD, momentum and Adam on a ravine.

Compute apart from display:

* :func:`ravine_report` (plain numbers): on f(x, y) = (a x² + b y²) / 2, the positions and losses of
  plain SGD, SGD with momentum and Adam from the same start, for a learning rate, a momentum and a
  number of steps; a run whose |x| or |y| exceeds 100 times the start's is stopped and marked as diverged (its step);
* :func:`plot_ravine_report` draws the contours, the paths and the losses against the step;
* :func:`optimizer_explorer` wires a log-scale learning-rate slider, a momentum slider, a step-count
  slider and a dropdown of the optimizer to highlight to the two.

The student's ``SGD``, ``Adam`` and ``trajectory`` are used where written (passed by name), and
``torch.optim`` otherwise, so nothing here solves an exercise. torch, matplotlib and ipywidgets are
imported inside the functions that need them: importing this module loads NumPy only.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["ravine_report", "plot_ravine_report", "optimizer_explorer", "benchmark"]

NAMES = ("SGD", "Adam", "trajectory")
RUNS = ("SGD", "momentum", "Adam")
#: a run has diverged once a coordinate is this many times the largest of the start's
ESCAPE = 100.0
NOT_WRITTEN = "not written yet"


def _torch_path(kind: str, lr: float, momentum: float, steps: int, curv: np.ndarray, start: np.ndarray) -> np.ndarray:
    import torch

    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = (torch.optim.Adam([x], lr=lr) if kind == "Adam"
           else torch.optim.SGD([x], lr=lr, momentum=momentum if kind == "momentum" else 0.0))
    c = torch.tensor(curv)
    out = np.empty((steps + 1, 2))
    out[0] = start
    for k in range(steps):
        with torch.no_grad():
            x.grad = c * x.detach()
        opt.step()
        out[k + 1] = x.detach().numpy()
        if not np.all(np.abs(out[k + 1]) < ESCAPE * np.max(np.abs(start))):
            return out[: k + 2]
    return out


def _own_path(kind: str, lr: float, momentum: float, steps: int, curv: np.ndarray, start: np.ndarray,
              functions: dict) -> np.ndarray:
    cls = functions["Adam" if kind == "Adam" else "SGD"]
    factory = ((lambda params: cls(params, lr=lr)) if kind != "momentum"
               else (lambda params: cls(params, lr=lr, momentum=momentum)))
    limit = {"n": 0}

    def grad_fn(x):
        limit["n"] += 1
        if not np.all(np.abs(x) < ESCAPE * np.max(np.abs(start))):    # stop a diverging run early: its positions stay finite
            raise _Diverged
        return curv * x

    run = functions.get("trajectory")
    try:
        if run is None:
            raise NotImplementedError
        with np.errstate(all="ignore"):
            path = np.asarray(run(grad_fn, start, factory, steps), dtype=np.float64)
    except (NotImplementedError, _Diverged):
        x = np.array(start, dtype=np.float64)
        opt = factory([x])
        rows = [x.copy()]
        with np.errstate(all="ignore"):
            for _ in range(steps):
                opt.step([curv * x])
                rows.append(x.copy())
                if not np.all(np.abs(x) < ESCAPE * np.max(np.abs(start))):
                    break
        path = np.stack(rows)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"trajectory returned shape {path.shape}, expected ({steps + 1}, 2)")
    return path


class _Diverged(Exception):
    pass


def ravine_report(lr: float = 0.05, momentum: float = 0.9, steps: int = 60, a: float = 20.0, b: float = 1.0,
                  start: tuple = (-1.0, 2.0), functions: Optional[dict] = None) -> dict:
    """The three runs on the ravine, as plain numbers.

    Returns {"a", "b", "lr", "momentum", "steps", "threshold" (2 / a), "notes" (list of str),
    "runs": {name: {"path" (K, 2), "losses" (K,), "diverged_at" (step or None), "source"}}}, with
    K <= steps + 1 (a diverged run stops at the step it escaped)."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    functions = dict(functions or {})
    unknown = sorted(set(functions) - set(NAMES))
    if unknown:
        raise TypeError(f"unknown functions {unknown}; the dashboard uses {list(NAMES)}")
    curv, x0 = np.array([a, b], dtype=np.float64), np.array(start, dtype=np.float64)
    notes, runs = [], {}
    for kind in RUNS:
        name = "Adam" if kind == "Adam" else "SGD"
        path, source = None, "torch"
        if functions.get(name) is not None:
            try:
                path, source = _own_path(kind, lr, momentum, steps, curv, x0, functions), "yours"
            except NotImplementedError:
                notes.append(f"{name}: {NOT_WRITTEN}, torch's used")
            except Exception as exc:  # the student's error is something to show, not a crash
                notes.append(f"your {name} raised {type(exc).__name__}: {str(exc)[:120]}; torch's used")
        if path is None:
            path = _torch_path(kind, lr, momentum, steps, curv, x0)
        with np.errstate(all="ignore"):
            finite = np.all(np.isfinite(path) & (np.abs(path) < ESCAPE * np.max(np.abs(x0))), axis=1)
            if not finite.all():
                bad = int(np.argmin(finite))
                path = path[: bad + 1]
            losses = 0.5 * (a * path[:, 0] ** 2 + b * path[:, 1] ** 2)
        diverged = None if finite.all() and len(path) == steps + 1 else len(path) - 1
        runs[kind] = {"path": path, "losses": losses, "diverged_at": diverged, "source": source}
    notes = list(dict.fromkeys(notes))
    return {"a": a, "b": b, "lr": lr, "momentum": momentum, "steps": steps, "threshold": 2.0 / a,
            "notes": notes, "runs": runs}


def format_ravine_report(report: dict) -> str:
    lines = [f"lr = {report['lr']:.3g} (SGD's threshold 2 / a = {report['threshold']:.3g}), momentum = "
             f"{report['momentum']:.2f}, {report['steps']} steps"]
    for name, run in report["runs"].items():
        end = (f"DIVERGED at step {run['diverged_at']}" if run["diverged_at"] is not None
               else f"f = {run['losses'][-1]:.3e}")
        lines.append(f"  {name:9s} ({run['source']}): {end}")
    return "\n".join(lines + [f"  note: {n}" for n in report["notes"]])


def plot_ravine_report(report: dict, highlight: str = "all", fig=None):
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(10, 3.6))
    ax, ax_loss = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    a, b = report["a"], report["b"]
    X, Y = np.meshgrid(np.linspace(-1.5, 1.5, 121), np.linspace(-1.0, 2.5, 121))
    ax.contour(X, Y, 0.5 * (a * X ** 2 + b * Y ** 2), levels=np.geomspace(0.02, 40, 12), colors="0.8")
    for name, run in report["runs"].items():
        alpha = 1.0 if highlight in ("all", name) else 0.2
        path = run["path"]
        label = f"{name} ({run['source']})" + (f": DIVERGED at step {run['diverged_at']}"
                                               if run["diverged_at"] is not None else "")
        line, = ax.plot(path[:, 0], path[:, 1], ".-", ms=3, alpha=alpha, label=label)
        ax_loss.semilogy(np.arange(len(path)), np.maximum(run["losses"], 1e-300), alpha=alpha, color=line.get_color(),
                         label=name)
        if run["diverged_at"] is not None:
            ax.plot(*np.clip(path[-1], [-1.5, -1.0], [1.5, 2.5]), "x", ms=12, mew=3, color=line.get_color())
            ax_loss.plot(len(path) - 1, min(run["losses"][-1], 1e30), "x", ms=10, color=line.get_color())
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.0, 2.5)
    ax.set_title(f"lr = {report['lr']:.3g} (SGD diverges above 2 / a = {report['threshold']:.3g}), "
                 f"momentum {report['momentum']:.2f}", fontsize=9)
    ax.set_xlabel("x (steep)")
    ax.set_ylabel("y (flat)")
    ax.legend(fontsize=8)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("f(x, y), log scale")
    ax_loss.set_title("loss against the step (x: diverged)", fontsize=9)
    fig.tight_layout()
    return fig, (ax, ax_loss)


def optimizer_explorer(**functions: Callable):
    """Sliders for the learning rate (log scale), the momentum and the steps; a dropdown to highlight one run."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    unknown = sorted(set(functions) - set(NAMES))
    if unknown:
        raise TypeError(f"unknown functions {unknown}; the dashboard uses {list(NAMES)}")
    style = {"description_width": "initial"}
    lr = widgets.FloatLogSlider(value=0.05, base=10, min=-3, max=0, step=0.05, description="learning rate",
                                continuous_update=False, readout_format=".3g", style=style)
    momentum = widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="momentum",
                                   continuous_update=False, style=style)
    steps = widgets.IntSlider(value=60, min=5, max=200, step=5, description="steps", continuous_update=False,
                              style=style)
    show = widgets.Dropdown(options=["all", *RUNS], value="all", description="highlight", style=style)
    out, status = widgets.Output(), widgets.HTML()

    def update(_change=None) -> None:
        began = time.perf_counter()
        report = ravine_report(lr.value, momentum.value, steps.value, functions=functions)
        compute_ms = 1e3 * (time.perf_counter() - began)
        with out:
            out.clear_output(wait=True)
            fig, _ = plot_ravine_report(report, show.value)
            plt.show()
            plt.close(fig)
            print(format_ravine_report(report))
        status.value = f"<span style='color:#666'>compute {compute_ms:.0f} ms</span>"

    for box in (lr, momentum, steps, show):
        box.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([lr, momentum]), widgets.HBox([steps, show]), status, out])


def benchmark(repeats: int = 5, **kwargs: Any) -> dict:
    """Time ravine_report, in milliseconds: {"median_ms", "best_ms", "runs_ms"}."""
    ravine_report(**kwargs)
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        ravine_report(**kwargs)
        runs.append(1e3 * (time.perf_counter() - began))
    return {"median_ms": statistics.median(runs), "best_ms": min(runs), "runs_ms": runs}
