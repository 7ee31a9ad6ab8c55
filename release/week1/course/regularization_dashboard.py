"""The regularization dashboard of notebook 07: dropout and weight decay on a net that overfits.

Three pieces kept apart:

* :func:`regularization_run` computes (plain numbers): one training run of a small MLP
  (1 -> H -> H -> 1, ReLU, torch's own ``nn.Dropout`` after each hidden layer) on a noisy sine with
  few training points, full-batch AdamW with the given weight decay; it returns the training and
  validation losses per epoch, the best validation epoch and the hidden weights' histogram. Runs are
  cached: the same settings are never trained twice.
* :func:`format_regularization_report` (text) and :func:`plot_regularization_report` (matplotlib)
  show a run beside the baseline without regularization.
* :func:`regularization_dashboard` wires two sliders (dropout rate; weight decay on a log scale) to
  the two, with a progress bar (an ``IntProgress`` widget) while a run trains.

Nothing here solves an exercise of the notebook: dropout is ``torch.nn.Dropout``, weight decay is the
optimizer's. torch, matplotlib and ipywidgets are imported inside the functions that need them:
importing this module loads NumPy only.
"""
from __future__ import annotations

import functools
import time
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["DEFAULTS", "DROPOUT_RANGE", "DECAY_RANGE", "make_task", "regularization_run", "regularization_report",
           "format_regularization_report", "plot_regularization_report", "regularization_dashboard"]

#: the task and the training run: 20 noisy training points and a net of 2 x 64 hidden units (4 353 parameters)
#: that overfits them within a few hundred epochs
DEFAULTS = {"n_train": 20, "n_val": 400, "noise": 0.5, "hidden": 64, "epochs": 400, "lr": 0.02, "seed": 0}
DROPOUT_RANGE = (0.0, 0.8)
#: the weight-decay slider's range (log scale); below its left end a run counts as without decay
DECAY_RANGE = (1e-4, 1.0)
_BINS = 50
_HIST_RANGE = (-1.0, 1.0)


@functools.lru_cache(maxsize=8)
def make_task(seed: int = DEFAULTS["seed"], n_train: int = DEFAULTS["n_train"], n_val: int = DEFAULTS["n_val"],
              noise: float = DEFAULTS["noise"]) -> tuple:
    """(X_train, y_train, X_val, y_val): y = sin(x) + noise, x uniform in [-3, 3); X (N, 1), y (N, 1).

    The validation set is drawn from the same distribution, with its own noise."""
    rng = np.random.default_rng(seed)
    X_train = np.sort(rng.uniform(-3.0, 3.0, size=(n_train, 1)), axis=0)
    y_train = np.sin(X_train) + noise * rng.standard_normal((n_train, 1))
    X_val = rng.uniform(-3.0, 3.0, size=(n_val, 1))
    y_val = np.sin(X_val) + noise * rng.standard_normal((n_val, 1))
    for a in (X_train, y_train, X_val, y_val):
        a.setflags(write=False)
    return X_train, y_train, X_val, y_val


def _build(torch, hidden: int, dropout: float):
    nn = torch.nn
    return nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, 1))


def _train(dropout: float, weight_decay: float, seed: int, epochs: int, hidden: int, lr: float,
           progress: Optional[Callable]) -> dict:
    import torch

    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    X_train, y_train, X_val, y_val = (torch.tensor(a, dtype=torch.float32) for a in make_task(seed))
    generator_state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # a tiny net: one thread is faster than several taking turns
        torch.manual_seed(seed)  # the same start (and the same dropout masks) for a given seed
        net = _build(torch, hidden, dropout)
        weights = [p for name, p in net.named_parameters() if name.endswith("weight")]
        biases = [p for name, p in net.named_parameters() if name.endswith("bias")]
        # weight decay on the weights only, not on the biases: two parameter groups
        opt = torch.optim.AdamW([{"params": weights, "weight_decay": weight_decay},
                                 {"params": biases, "weight_decay": 0.0}], lr=lr)
        loss_fn = torch.nn.MSELoss()
        n_train = len(X_train)
        X_both, y_both = torch.cat([X_train, X_val]), torch.cat([y_train, y_val])
        train_losses, val_losses = [], []
        for epoch in range(epochs):
            net.train()
            opt.zero_grad()
            loss_fn(net(X_train), y_train).backward()
            opt.step()
            net.eval()  # both losses measured without dropout, on the weights after the step, in one pass
            with torch.no_grad():
                errors = (net(X_both) - y_both).pow(2)
                train_losses.append(errors[:n_train].mean().item())
                val_losses.append(errors[n_train:].mean().item())
            if progress is not None:
                progress(1)
        hidden_weights = net[3].weight.detach().numpy().ravel().astype(np.float64)
    finally:
        torch.random.set_rng_state(generator_state)
        torch.set_num_threads(threads)
    return {"train": np.array(train_losses), "val": np.array(val_losses), "hidden_weights": hidden_weights}


#: settings -> run: every run is trained once (at most _CACHE_SIZE kept, the oldest dropped first)
_RUNS: dict = {}
_CACHE_SIZE = 64


def cache_size() -> int:
    """How many runs are cached."""
    return len(_RUNS)


def regularization_run(dropout: float = 0.0, weight_decay: float = 0.0, *, seed: int = DEFAULTS["seed"],
                       epochs: int = DEFAULTS["epochs"], hidden: int = DEFAULTS["hidden"], lr: float = DEFAULTS["lr"],
                       progress: Optional[Callable] = None) -> dict:
    """One training run (cached by its settings); plain numbers.

    Args:
        dropout: torch's nn.Dropout rate after each hidden layer, in [0, 1).
        weight_decay: AdamW's decoupled weight decay on the weights (not on the biases); 0 for none.
        seed: the task's data, the net's initial weights and the dropout masks.
        progress: called with 1 after every epoch (e.g. to advance a progress bar), only when the run is trained.

    Returns a dict with
      train, val: (epochs,) the mean squared errors after every epoch (dropout off while measuring);
      best_epoch: the epoch with the lowest validation loss (the first one, on a tie);
      hidden_weights: (H * H,) the second layer's weights after training;
      settings: dropout, weight_decay, seed, epochs;
      cached: whether the run came from the cache; seconds: how long the training took (0 if cached).
    """
    key = (round(float(dropout), 6), float(f"{float(weight_decay):.6g}"), int(seed), int(epochs), int(hidden),
           float(lr))
    start = time.perf_counter()
    cached = key in _RUNS
    if not cached:
        run = _train(*key, progress)
        if len(_RUNS) >= _CACHE_SIZE:
            _RUNS.pop(next(iter(_RUNS)))
        _RUNS[key] = run
    run = _RUNS[key]
    return {"train": run["train"].copy(), "val": run["val"].copy(), "hidden_weights": run["hidden_weights"].copy(),
            "best_epoch": int(np.argmin(run["val"])),
            "settings": {"dropout": key[0], "weight_decay": key[1], "seed": key[2], "epochs": key[3]},
            "cached": cached, "seconds": 0.0 if cached else time.perf_counter() - start}


def regularization_report(dropout: float = 0.0, weight_decay: float = 0.0, *, seed: int = DEFAULTS["seed"],
                          progress: Optional[Callable] = None, **options: Any) -> dict:
    """A run and the baseline without regularization (same seed), with the numbers the display shows.

    Returns {"run", "baseline"} (two :func:`regularization_run` results), "edges" (the histogram's
    bin edges on _HIST_RANGE) and "summary" = {"run": ..., "baseline": ...}, each holding "final" =
    {"train", "val"} (the losses at the last epoch), "best" = {"epoch", "val"}, "counts" (the weight
    histogram, weights clipped to _HIST_RANGE) and "near_zero" (the share of weights below 0.01 in
    size)."""
    baseline = regularization_run(0.0, 0.0, seed=seed, **options)
    run = regularization_run(dropout, weight_decay, seed=seed, progress=progress, **options)
    edges = np.linspace(*_HIST_RANGE, _BINS + 1)
    summary = {name: {"final": {"train": float(r["train"][-1]), "val": float(r["val"][-1])},
                      "best": {"epoch": r["best_epoch"], "val": float(r["val"][r["best_epoch"]])},
                      "near_zero": float(np.mean(np.abs(r["hidden_weights"]) < 0.01)),
                      "counts": np.histogram(np.clip(r["hidden_weights"], *_HIST_RANGE), bins=edges)[0]}
               for name, r in (("run", run), ("baseline", baseline))}
    return {"run": run, "baseline": baseline, "summary": summary, "edges": edges}


def format_regularization_report(report: dict) -> str:
    """The report in three lines of text."""
    s = report["run"]["settings"]
    lines = [f"dropout {s['dropout']:g}, weight decay {s['weight_decay']:g} (seed {s['seed']}, {s['epochs']} epochs)"]
    for name in ("run", "baseline"):
        r = report["summary"][name]
        label = "this run" if name == "run" else "baseline"
        lines.append(f"  {label:<9} final train {r['final']['train']:.4f}  final val {r['final']['val']:.4f}  "
                     f"best val {r['best']['val']:.4f} at epoch {r['best']['epoch']}  "
                     f"|w| < 0.01: {r['near_zero']:.1%}")
    return "\n".join(lines)


def plot_regularization_report(report: dict, fig=None):
    """Left: training and validation losses of the run and the baseline; right: the weight histograms.
    Returns (fig, axes)."""
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(11, 4))
    ax_loss, ax_hist = fig.subplots(1, 2)
    for name, style in (("baseline", ":"), ("run", "-")):
        r = report[name]
        label = "no regularization" if name == "baseline" else "this run"
        ax_loss.plot(r["train"], style, color="tab:blue", label=f"train, {label}")
        ax_loss.plot(r["val"], style, color="tab:orange", label=f"validation, {label}")
    best = report["run"]["best_epoch"]
    ax_loss.axvline(best, color="0.6", linewidth=0.8)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("mean squared error")
    ax_loss.legend(fontsize=8)
    ax_loss.set_title(f"losses (grey line: this run's best validation epoch, {best})", fontsize=10)
    edges = report["edges"]
    for name, color in (("baseline", "0.6"), ("run", "tab:green")):
        ax_hist.stairs(report["summary"][name]["counts"], edges, color=color, fill=name == "baseline", alpha=0.8,
                       label="no regularization" if name == "baseline" else "this run")
    ax_hist.set_xlabel("weight of the second hidden layer (clipped to ±1)")
    ax_hist.set_ylabel("count")
    ax_hist.legend(fontsize=8)
    ax_hist.set_title("weights after training", fontsize=10)
    fig.tight_layout()
    return fig, (ax_loss, ax_hist)


def regularization_dashboard(dropout: float = 0.0, weight_decay: float = 1e-2, *, seed: int = DEFAULTS["seed"]):
    """Sliders for the dropout rate and the weight decay (log scale); each change trains one run (a
    progress bar shows it, a cached run shows at once) and redraws the curves and the histogram.

    The progress bar is one ``IntProgress`` widget beside the plot, updated in place: a bar created
    and closed inside the ``Output`` widget at every change (tqdm's notebook bar) made headless
    execution (nbclient) hang now and then."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    epochs = DEFAULTS["epochs"]
    dropout_box = widgets.FloatSlider(value=dropout, min=DROPOUT_RANGE[0], max=DROPOUT_RANGE[1], step=0.1,
                                      description="dropout p", continuous_update=False, readout_format=".1f")
    decay_box = widgets.FloatLogSlider(value=max(weight_decay, DECAY_RANGE[0]), base=10,
                                       min=np.log10(DECAY_RANGE[0]), max=np.log10(DECAY_RANGE[1]), step=0.25,
                                       description="weight decay", continuous_update=False, readout_format=".2g",
                                       style={"description_width": "initial"})
    bar = widgets.IntProgress(value=0, min=0, max=epochs, description="training")
    out = widgets.Output()
    status = widgets.HTML()
    ticks = [0]

    def progress(n: int) -> None:
        ticks[0] += n
        if ticks[0] % 20 == 0 or ticks[0] == epochs:  # every 20 epochs: a handful of widget messages per run
            bar.value = ticks[0]

    def update(_change=None) -> None:
        start = time.perf_counter()
        ticks[0] = 0
        bar.value = 0
        status.value = "<span style='color:#666'>training...</span>"
        report = regularization_report(dropout_box.value, decay_box.value, seed=seed, progress=progress)
        bar.value = epochs
        with out:
            out.clear_output(wait=True)
            fig, _ = plot_regularization_report(report)
            plt.show()
            plt.close(fig)
            print(format_regularization_report(report))
        took = time.perf_counter() - start
        status.value = (f"<span style='color:#666'>{'cached run' if report['run']['cached'] else 'trained'}, "
                        f"{took:.1f} s</span>")

    for box in (dropout_box, decay_box):
        box.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([dropout_box, decay_box]), status, bar, out])
