"""The batch-size dashboard of notebook 09: one small model, a fixed budget of examples, any batch size.

Compute apart from display:

* :func:`batch_size_run` (plain numbers): the same MLP (8 -> 32 -> 4, Tanh) from the same start, trained
  with SGD for a fixed number of epochs (a fixed budget of examples) on 256 samples of four Gaussian
  blobs, cut into shuffled batches of the given size, **with the student's** ``train_epoch``; it
  returns the loss on the whole training set after every epoch and after some 40 updates spread on a
  log scale (read by a hook on the optimizer's step, whatever the loop looks like), the number of
  updates done, the wall time of every epoch and what ``train_epoch`` returned. Runs are cached per batch size (and per
  function: a rewritten ``train_epoch`` trains anew).
* :func:`gradient_spread` (plain numbers): at the starting point, the spread of the mini-batch
  gradient around the full-batch gradient against the batch size B: the 1/B line σ²/B of draws with
  replacement, the finite-population value (σ²/B)(N − B)/(N − 1) of batches drawn without replacement
  (what a shuffled epoch does), and the value measured on random batches. It needs no exercise.
* :func:`batch_size_report` puts a run beside the full-batch run (B = N) and the spread;
  :func:`format_batch_size_report` (text) and :func:`plot_batch_size_report` (matplotlib) show it.
* :func:`batch_size_dashboard` wires a batch-size slider (1 to N, powers of two: a log scale) to the
  two, with a progress bar (one ``IntProgress`` widget) while a run trains.

Nothing here solves an exercise: without a working ``train_epoch`` nothing trains, and the dashboard
says so plainly (the spread is shown all the same). torch, matplotlib and ipywidgets are imported
inside the functions that need them: importing this module loads NumPy only.
"""
from __future__ import annotations

import functools
import statistics
import time
from typing import Any, Callable, Optional

import numpy as np

from .training import make_blobs

__all__ = ["DEFAULTS", "SIZES", "MISSING", "make_task", "batch_size_run", "gradient_spread", "batch_size_report",
           "format_batch_size_report", "plot_batch_size_report", "batch_size_dashboard", "benchmark", "cache_size"]

#: the task and the training: N samples, a budget of `epochs` epochs (epochs * N examples) of plain SGD
DEFAULTS = {"n": 256, "epochs": 8, "lr": 0.5, "hidden": 32, "seed": 0}
#: the slider's batch sizes: 1 to N in powers of two
SIZES = tuple(2 ** k for k in range(9))
MISSING = ("train_epoch is not written yet (Exercise 2), so nothing can train: write it, run its test cell, then "
           "run this cell again. The gradient spread needs no exercise and is shown already.")
_D, _C = 8, 4


@functools.lru_cache(maxsize=4)
def make_task(seed: int = DEFAULTS["seed"], n: int = DEFAULTS["n"]) -> tuple:
    """(X (N, 8) float64, y (N,) int64): four Gaussian blobs (course.training.make_blobs), read-only."""
    X, y = make_blobs(n, np.random.default_rng(seed), d=_D, c=_C, spread=1.0)
    for a in (X, y):
        a.setflags(write=False)
    return X, y


def _build(torch, hidden: int, seed: int, dtype):
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Linear(_D, hidden), nn.Tanh(), nn.Linear(hidden, _C)).to(dtype)


class _Torch:
    """One thread (the model is tiny) and torch's generator left as it was found."""

    def __enter__(self):
        import torch

        self.torch = torch
        self.state, self.threads = torch.random.get_rng_state(), torch.get_num_threads()
        torch.set_num_threads(1)
        return torch

    def __exit__(self, *exc) -> None:
        self.torch.random.set_rng_state(self.state)
        self.torch.set_num_threads(self.threads)


# ----------------------------------------------------------------------------------------------
# the gradient spread


@functools.lru_cache(maxsize=4)
def _per_sample(seed: int, n: int, hidden: int) -> np.ndarray:
    """(N, P) float64: the gradient of every sample's loss at the starting parameters."""
    X, y = make_task(seed, n)
    with _Torch() as torch:
        model = _build(torch, hidden, seed, torch.float64)
        Xt, yt = torch.from_numpy(np.array(X)), torch.from_numpy(np.array(y))
        rows = []
        for i in range(n):
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(Xt[i:i + 1]), yt[i:i + 1]).backward()
            rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
        G = torch.stack(rows).numpy()
    G.setflags(write=False)
    return G


@functools.lru_cache(maxsize=8)
def _spread(seed: int, n: int, hidden: int, draws: int) -> dict:
    G = _per_sample(seed, n, hidden)
    g = G.mean(axis=0)
    sigma2 = float(np.mean(np.sum((G - g) ** 2, axis=1)))
    rng = np.random.default_rng(seed + 7)
    sizes = np.array([b for b in SIZES if b <= n] + ([n] if n not in SIZES else []))
    measured = []
    for b in sizes:
        weights = np.zeros((draws, n))
        for row in weights:
            row[rng.permutation(n)[:b]] = 1.0 / b
        means = weights @ G
        measured.append(float(np.mean(np.sum((means - g) ** 2, axis=1))))
    out = {"sizes": sizes, "sigma2": sigma2, "full_norm2": float(g @ g), "one_over_b": sigma2 / sizes,
           "finite": sigma2 / sizes * (n - sizes) / (n - 1), "measured": np.array(measured), "draws": draws, "n": n}
    return out


def gradient_spread(seed: int = DEFAULTS["seed"], n: int = DEFAULTS["n"], hidden: int = DEFAULTS["hidden"],
                    draws: int = 200) -> dict:
    """The spread of the mini-batch gradient at the starting parameters, against the batch size (cached).

    Returns {"sizes" (K,), "sigma2" (σ² = mean ‖g_i − g‖² over the samples), "full_norm2" (‖g‖²),
    "one_over_b" (σ²/B), "finite" ((σ²/B)(N − B)/(N − 1)), "measured" (mean ‖g_B − g‖² over `draws`
    random batches drawn without replacement), "draws", "n"}; arrays (K,)."""
    out = _spread(int(seed), int(n), int(hidden), int(draws))
    return {key: (value.copy() if isinstance(value, np.ndarray) else value) for key, value in out.items()}


# ----------------------------------------------------------------------------------------------
# the runs


#: (id of train_epoch, settings) -> run; the entry keeps the function, so the id cannot be reused
_RUNS: dict = {}
_CACHE_SIZE = 64


def cache_size() -> int:
    """How many runs are cached."""
    return len(_RUNS)


def _train(train_epoch: Callable, batch_size: int, seed: int, n: int, epochs: int, lr: float, hidden: int,
           progress: Optional[Callable]) -> dict:
    X, y = make_task(seed, n)
    with _Torch() as torch:
        Xt, yt = torch.tensor(X, dtype=torch.float32), torch.from_numpy(np.array(y))
        model = _build(torch, hidden, seed, torch.float32)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        order = torch.Generator().manual_seed(seed + 1)

        def full_loss() -> float:
            with torch.no_grad():
                return float(loss_fn(model(Xt), yt))

        total = epochs * -(-n // batch_size)
        record_at = set(np.round(np.geomspace(1, total, 40)).astype(int).tolist()) | {
            2 ** k for k in range(total.bit_length())}   # log-spaced, and every power of two: comparable runs
        steps, step_losses, count = [], [], [0]

        def after_step(_optimizer, _args, _kwargs) -> None:
            count[0] += 1
            if count[0] in record_at:
                steps.append(count[0])
                step_losses.append(full_loss())

        losses, updates, seconds, returned = [full_loss()], [0], [], []
        handle = optimizer.register_step_post_hook(after_step)
        for _ in range(epochs):
            batches = [(Xt[idx], yt[idx]) for idx in torch.randperm(n, generator=order).split(batch_size)]
            start = time.perf_counter()
            value = train_epoch(model, batches, loss_fn, optimizer, "cpu")
            seconds.append(time.perf_counter() - start)
            returned.append(float(value))
            updates.append(updates[-1] + len(batches))
            losses.append(full_loss())
            if progress is not None:
                progress(1)
        handle.remove()
    return {"losses": np.array(losses), "updates": np.array(updates), "seconds": np.array(seconds),
            "returned": np.array(returned), "steps": np.array(steps, dtype=np.int64),
            "step_losses": np.array(step_losses)}


def batch_size_run(batch_size: int, train_epoch: Callable, *, seed: int = DEFAULTS["seed"], n: int = DEFAULTS["n"],
                   epochs: int = DEFAULTS["epochs"], lr: float = DEFAULTS["lr"], hidden: int = DEFAULTS["hidden"],
                   progress: Optional[Callable] = None) -> dict:
    """One run of ``epochs`` epochs at this batch size with ``train_epoch`` (cached); plain numbers.

    Every epoch cuts a new permutation of the N samples into batches of ``batch_size`` (the last one
    shorter) and calls train_epoch(model, batches, CrossEntropyLoss(), SGD(lr), "cpu") once. The
    student's exceptions propagate (NotImplementedError while the exercise is not done).

    Returns {"losses" (epochs + 1,) the loss on all N samples before training and after every epoch,
    "updates" (epochs + 1,) the number of optimizer steps done by then (ceil(N / B) per epoch),
    "steps" (K,) and "step_losses" (K,) the loss on all N samples after some of the updates (about 40,
    spaced on a log scale, and every power of two; counted by a hook on optimizer.step, so K is 0 if
    the optimizer never steps),
    "seconds" (epochs,) the wall time of every train_epoch call, "returned" (epochs,) what it returned,
    "batch_size", "cached", "seconds_total" (0 when cached)}."""
    if not 1 <= int(batch_size) <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    if train_epoch is None:
        raise NotImplementedError(MISSING)
    settings = (int(batch_size), int(seed), int(n), int(epochs), float(lr), int(hidden))
    key = (id(train_epoch), settings)
    start = time.perf_counter()
    entry = _RUNS.get(key)
    cached = entry is not None and entry["fn"] is train_epoch
    if not cached:
        run = _train(train_epoch, *settings, progress)
        if len(_RUNS) >= _CACHE_SIZE:
            _RUNS.pop(next(iter(_RUNS)))
        _RUNS[key] = entry = {"fn": train_epoch, "run": run}
    run = entry["run"]
    return {**{k: v.copy() for k, v in run.items()}, "batch_size": int(batch_size), "cached": cached,
            "seconds_total": 0.0 if cached else time.perf_counter() - start}


def _cached_timings(train_epoch: Callable, settings_tail: tuple) -> dict:
    """{batch size: median wall time of an epoch} of the runs cached for this function and settings."""
    out = {}
    for (fn_id, settings), entry in _RUNS.items():
        if fn_id == id(train_epoch) and entry["fn"] is train_epoch and settings[1:] == settings_tail:
            out[settings[0]] = float(np.median(entry["run"]["seconds"]))
    return dict(sorted(out.items()))


def batch_size_report(batch_size: int = 16, train_epoch: Optional[Callable] = None, *,
                      seed: int = DEFAULTS["seed"], progress: Optional[Callable] = None, **options: Any) -> dict:
    """A run at ``batch_size`` beside the full-batch run (B = N), and the gradient spread.

    Returns {"batch_size", "n", "run" and "full" (:func:`batch_size_run` results, None when nothing
    could train), "spread" (:func:`gradient_spread`), "timings" ({B: seconds per epoch} of the cached
    runs), "notes" (list of str), "missing" (True while train_epoch is not written)}. The student's
    errors become notes; nothing is raised for them."""
    n = int(options.get("n", DEFAULTS["n"]))
    notes, run, full, missing = [], None, None, False
    try:
        full = batch_size_run(n, train_epoch, seed=seed, progress=progress, **options)
        run = full if int(batch_size) == n else batch_size_run(batch_size, train_epoch, seed=seed,
                                                               progress=progress, **options)
    except NotImplementedError:
        missing, run, full = True, None, None
        notes.append(MISSING)
    except ValueError as exc:
        if "batch_size must be" in str(exc):
            raise
        notes.append(f"your train_epoch raised ValueError: {str(exc)[:160]}")
        run = full = None
    except Exception as exc:  # the student's error is something to show, not a crash
        notes.append(f"your train_epoch raised {type(exc).__name__}: {str(exc)[:160]}")
        run = full = None
    for r in (run, full):
        if r is not None and not np.all(np.isfinite(r["losses"])):
            notes.append(f"the run with B = {r['batch_size']} diverged (the loss is not finite)")
    tail = (int(seed), n, int(options.get("epochs", DEFAULTS["epochs"])), float(options.get("lr", DEFAULTS["lr"])),
            int(options.get("hidden", DEFAULTS["hidden"])))
    timings = _cached_timings(train_epoch, tail) if train_epoch is not None and not missing else {}
    return {"batch_size": int(batch_size), "n": n, "run": run, "full": full, "timings": timings,
            "spread": gradient_spread(seed, n, int(options.get("hidden", DEFAULTS["hidden"]))),
            "notes": list(dict.fromkeys(notes)), "missing": missing}


def format_batch_size_report(report: dict) -> str:
    """The report in a few lines of text."""
    B, n = report["batch_size"], report["n"]
    spread = report["spread"]
    k = int(np.searchsorted(spread["sizes"], B))
    lines = [f"batch size {B} of N = {n}: {-(-n // B)} updates per epoch"]
    if k < len(spread["sizes"]) and spread["sizes"][k] == B:
        lines.append(f"  gradient spread at the start: E‖g_B − g‖² = {spread['measured'][k]:.3g} measured, "
                     f"{spread['finite'][k]:.3g} = (σ²/B)(N − B)/(N − 1), {spread['one_over_b'][k]:.3g} = σ²/B "
                     f"(‖g‖² = {spread['full_norm2']:.3g})")
    for name, r in (("this run", report["run"]), ("full batch", report["full"])):
        if r is None:
            continue
        lines.append(f"  {name:<10} (B = {r['batch_size']:>3}): loss {r['losses'][0]:.3f} -> {r['losses'][-1]:.3f} "
                     f"after {len(r['losses']) - 1} epochs, {r['updates'][-1]} updates, "
                     f"{1e3 * float(np.median(r['seconds'])):.1f} ms per epoch")
    return "\n".join(lines + [f"  note: {note}" for note in report["notes"]])


def plot_batch_size_report(report: dict, fig=None):
    """Loss against epochs and against updates (this run and the full batch), the gradient spread against
    B, and the wall time per epoch of the cached runs. Returns (fig, axes)."""
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(11, 6.4))
    axes = fig.subplots(2, 2)
    (ax_epochs, ax_updates), (ax_spread, ax_time) = axes
    B, n = report["batch_size"], report["n"]
    runs = [(r, label, style) for r, label, style in ((report["full"], f"full batch, B = {n}", "k--"),
                                                       (report["run"], f"B = {B}", "C0-"))
            if r is not None and not (label.startswith("B =") and B == n)]
    for r, label, style in runs:
        ax_epochs.plot(np.arange(len(r["losses"])), r["losses"], style, marker="o", ms=3, label=label)
        ax_updates.plot(r["steps"], r["step_losses"], style, marker="o", ms=2, label=label)
    if runs:
        ax_updates.axhline(runs[0][0]["losses"][0], color="0.6", lw=0.8, ls=":", label="at the start")
    for ax, xlabel in ((ax_epochs, "epoch (the same examples for every B)"),
                       (ax_updates, "updates (log scale)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("loss on all N samples")
        if runs:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "train_epoch is not written yet:\nnothing trains", ha="center", va="center",
                    transform=ax.transAxes, color="#b00")
    ax_updates.set_xscale("log")
    ax_updates.xaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x:g}"))
    ax_epochs.set_title("loss against epochs", fontsize=10)
    ax_updates.set_title("loss against updates", fontsize=10)
    s = report["spread"]
    ax_spread.loglog(s["sizes"], s["one_over_b"], ":", color="0.4", label="σ²/B (with replacement)")
    finite = s["sizes"] < s["n"]
    ax_spread.loglog(s["sizes"][finite], s["finite"][finite], "-", color="C1",
                     label="(σ²/B)(N − B)/(N − 1) (without)")
    ax_spread.axhline(s["full_norm2"], color="C2", lw=1, ls="--", label="‖g‖², the full gradient itself")
    ok = finite & (s["measured"] > 0)
    ax_spread.loglog(s["sizes"][ok], s["measured"][ok], "o", color="C1", ms=4, label=f"measured, {s['draws']} batches")
    k = np.flatnonzero(s["sizes"] == B)
    if k.size and B < s["n"]:
        ax_spread.loglog([B], [s["measured"][k[0]]], "o", ms=11, mfc="none", mec="C3", mew=2, label=f"B = {B}")
    ax_spread.set_xlabel("batch size B")
    ax_spread.set_ylabel("E‖g_B − g‖² at the start")
    ax_spread.set_title("spread of the mini-batch gradient (0 at B = N)", fontsize=10)
    ax_spread.legend(fontsize=7)
    timings = report["timings"]
    if timings:
        sizes = list(timings)
        ax_time.bar(range(len(sizes)), [1e3 * timings[b] for b in sizes],
                    color=["C3" if b == B else "C0" for b in sizes])
        ax_time.set_xticks(range(len(sizes)), [str(b) for b in sizes])
        ax_time.set_yscale("log")
    else:
        ax_time.text(0.5, 0.5, "no run yet", ha="center", va="center", transform=ax_time.transAxes, color="#b00")
    ax_time.set_xlabel("batch size (the runs done so far)")
    ax_time.set_ylabel("ms per epoch (log scale)")
    ax_time.set_title("wall time of one epoch", fontsize=10)
    fig.tight_layout()
    return fig, axes


def batch_size_dashboard(train_epoch: Optional[Callable] = None, batch_size: int = 16):
    """A batch-size slider (1 to N, powers of two): each change trains one run with your train_epoch
    (a progress bar shows it; a cached run shows at once) and redraws the four panels.

    The progress bar is one ``IntProgress`` widget beside the plot, updated in place: a tqdm bar
    inside an ``Output`` widget made headless execution hang now and then."""
    import html

    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    epochs, n = DEFAULTS["epochs"], DEFAULTS["n"]
    slider = widgets.SelectionSlider(options=[(str(b), b) for b in SIZES], value=batch_size, description="batch size",
                                     continuous_update=False, style={"description_width": "initial"})
    bar = widgets.IntProgress(value=0, min=0, max=epochs, description="training")
    out, status = widgets.Output(), widgets.HTML()
    ticks = [0]

    def progress(k: int) -> None:
        ticks[0] += k
        bar.value = min(ticks[0], bar.max)

    def update(_change=None) -> None:
        start = time.perf_counter()
        ticks[0] = 0
        bar.value = 0
        bar.max = epochs * (1 if _cached(train_epoch, n) else 2)
        status.value = "<span style='color:#666'>training...</span>"
        report = batch_size_report(slider.value, train_epoch, progress=progress)
        bar.value = bar.max
        with out:
            out.clear_output(wait=True)
            fig, _ = plot_batch_size_report(report)
            plt.show()
            plt.close(fig)
            print(format_batch_size_report(report))
        took = time.perf_counter() - start
        if report["missing"]:
            status.value = f"<b style='color:#b00'>{html.escape(MISSING)}</b>"
        else:
            cached = report["run"] is not None and report["run"]["cached"]
            status.value = f"<span style='color:#666'>{'cached run' if cached else 'trained'}, {took:.1f} s</span>"

    slider.observe(update, names="value")
    update()
    return widgets.VBox([slider, status, bar, out])


def _cached(train_epoch: Optional[Callable], n: int) -> bool:
    """Whether the full-batch run of this function is cached already."""
    settings = (n, DEFAULTS["seed"], n, DEFAULTS["epochs"], float(DEFAULTS["lr"]), DEFAULTS["hidden"])
    entry = _RUNS.get((id(train_epoch), settings))
    return entry is not None and entry["fn"] is train_epoch


def benchmark(batch_size: int, train_epoch: Callable, repeats: int = 3) -> dict:
    """Time an uncached run at this batch size, in seconds: {"median_s", "best_s", "runs_s"}."""
    runs = []
    for _ in range(repeats):
        for key in [k for k in _RUNS if k[1][0] == int(batch_size)]:
            _RUNS.pop(key)
        began = time.perf_counter()
        batch_size_run(batch_size, train_epoch)
        runs.append(time.perf_counter() - began)
    return {"median_s": statistics.median(runs), "best_s": min(runs), "runs_s": runs}
