"""Drawing functions for the notebooks.

Each function takes numbers, draws them and returns ``(fig, ax)``; none of them
computes anything a notebook is meant to compute. matplotlib is imported here,
so ``import course`` stays light; ``course.plots`` loads on first use.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_grid", "plot_timings", "plot_loss_curve", "plot_fit_1d"]


def _fmt(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}"


def plot_grid(
    values,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str = "",
    annotate: bool = True,
):
    """Draw a 2-D array as a coloured grid, each cell labelled with its value.

    values: (R, K) numbers; row_labels: R strings; col_labels: K strings.
    Returns (fig, ax).
    """
    a = np.asarray(values, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"plot_grid draws a 2-D array, got shape {a.shape}")
    rows, cols = a.shape
    fig, ax = plt.subplots(figsize=(0.6 * cols + 2.0, 0.5 * rows + 1.2))
    ax.imshow(a, cmap="Blues", aspect="auto")
    if annotate and a.size <= 400:
        mid = (np.nanmax(a) + np.nanmin(a)) / 2 if a.size else 0.0
        for i in range(rows):
            for j in range(cols):
                ax.text(j, i, _fmt(a[i, j]), ha="center", va="center", fontsize=9,
                        color="white" if a[i, j] > mid else "black")
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    ax.set_xticklabels(col_labels if col_labels is not None else [str(j) for j in range(cols)])
    ax.set_yticklabels(row_labels if row_labels is not None else [str(i) for i in range(rows)])
    ax.set_title(title or f"shape {a.shape}")
    fig.tight_layout()
    return fig, ax


def plot_timings(labels: Sequence[str], seconds: Sequence[float], *, title: str = ""):
    """Horizontal bars of run times on a log scale, each labelled with its time and
    its speed-up over the slowest one.

    labels: K names; seconds: K positive times. Returns (fig, ax).
    """
    t = np.asarray(seconds, dtype=float)
    if len(labels) != t.size or t.size == 0:
        raise ValueError(f"need one time per label, got {len(labels)} labels and {t.size} times")
    if np.any(~np.isfinite(t)) or np.any(t <= 0):
        raise ValueError("times must be positive and finite")
    slowest = t.max()
    fig, ax = plt.subplots(figsize=(7.0, 0.6 * t.size + 1.2))
    y = np.arange(t.size)
    ax.barh(y, t, color="tab:blue")
    ax.set_xscale("log")
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    for i, ti in enumerate(t):
        ms = ti * 1e3
        ax.text(ti, i, f"  {ms:.3g} ms  (x{slowest / ti:,.0f})", va="center", fontsize=9)
    ax.set_xlim(t.min() / 3, slowest * 30)
    ax.set_xlabel("seconds (log scale)")
    ax.set_title(title or "run time")
    fig.tight_layout()
    return fig, ax


def plot_loss_curve(history, *, title: str = "", log: bool = True):
    """The training loss against the step, on a log scale by default.

    history: a dict with a "loss" entry (one number per step), as a training loop returns it,
             or the sequence of losses itself. Returns (fig, ax).
    """
    losses = history["loss"] if isinstance(history, dict) else history
    values = np.asarray(losses, dtype=float).reshape(-1)
    if values.size == 0:
        raise ValueError("no losses to plot")
    fig, ax = plt.subplots(figsize=(6.0, 3.5))
    ax.plot(np.arange(1, values.size + 1), values, color="tab:blue")
    if log and np.all(values > 0):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title or f"training loss (last {values[-1]:.4g})")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig, ax


def plot_fit_1d(X, y, X_grid, y_grid, *, title: str = "", label: str = "model"):
    """Data points of a one-feature regression and a model's curve over a grid.

    X, y: (N, 1) data; X_grid, y_grid: (G, 1) points of the curve. Returns (fig, ax).
    """
    X, y = np.asarray(X, dtype=float).reshape(-1), np.asarray(y, dtype=float).reshape(-1)
    xg, yg = np.asarray(X_grid, dtype=float).reshape(-1), np.asarray(y_grid, dtype=float).reshape(-1)
    if X.size != y.size or xg.size != yg.size:
        raise ValueError(f"need as many x as y: {X.size} and {y.size}, {xg.size} and {yg.size}")
    fig, ax = plt.subplots(figsize=(6.0, 3.5))
    ax.scatter(X, y, s=10, color="tab:gray", alpha=0.7, label="data")
    ax.plot(xg, yg, color="tab:red", linewidth=2, label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    ax.set_title(title or "fit")
    fig.tight_layout()
    return fig, ax
