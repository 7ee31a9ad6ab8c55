"""Speed of notebook 10's NumPy MLP, measured (a script, not a timed test).

Two figures, both with the solution's own functions, taken from the solution cells of
source/week1/10_final_boss.ipynb (nothing is copied into this script or into ``course``):

1. training to 97 % test accuracy: ``train_mlp`` with the notebook's defaults
   (``course.mlp.DEFAULTS``) on the digits, from a fresh generator per run; the time of each run and
   the test accuracy it reaches (goal: under 2 s);
2. one epoch of the NumPy MLP against the same MLP in PyTorch on the CPU: the same layer sizes,
   the same batches in the same order, SGD with momentum, in float32 and in float64; the ratio
   NumPy / PyTorch (goal: at most 1.2). With --profile, cProfile says where the NumPy epoch spends
   its time.

Usage: python bench/mlp_speed.py [--repeat 7] [--profile] [--torch-threads N]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

import nbformat
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course.digits import load_digits  # noqa: E402
from course.mlp import DEFAULTS, TARGET_ACCURACY, accuracy  # noqa: E402

NOTEBOOK = ROOT / "source" / "week1" / "10_final_boss.ipynb"


def solution_functions(path: Path = NOTEBOOK) -> dict:
    """The notebook's imports and solution cells, run in a fresh namespace."""
    nb = nbformat.read(path, as_version=4)
    namespace: dict = {"__name__": "__mlp_speed__"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            exec(compile(cell.source, f"{path.name}[solution]", "exec"), namespace)
        elif not meta.get("grade") and cell.source.lstrip().startswith(("import", "from")):
            lines = [line for line in cell.source.splitlines() if not line.startswith(("torch.", "print("))]
            exec(compile("\n".join(lines), f"{path.name}[imports]", "exec"), namespace)
    return namespace


def time_training(ns: dict, digits, seeds) -> list:
    rows = []
    sizes = list(DEFAULTS["layer_sizes"])
    for seed in seeds:
        began = time.perf_counter()
        params, _ = ns["train_mlp"](digits.X_train, digits.y_train, sizes, DEFAULTS["lr"], DEFAULTS["epochs"],
                                    DEFAULTS["batch_size"], np.random.default_rng(seed), momentum=DEFAULTS["momentum"],
                                    X_val=digits.X_val, y_val=digits.y_val)
        seconds = time.perf_counter() - began
        rows.append((seed, seconds, accuracy(params, digits.X_test, digits.y_test)))
    return rows


def numpy_epoch(ns: dict, params: dict, X: np.ndarray, y: np.ndarray, order: np.ndarray) -> None:
    """One epoch with the solution's pieces: the inner loop of train_mlp, without the bookkeeping."""
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    B, lr, momentum = DEFAULTS["batch_size"], DEFAULTS["lr"], DEFAULTS["momentum"]
    forward, loss_fn, backward, step = (ns[n] for n in ("mlp_forward", "softmax_cross_entropy", "mlp_backward",
                                                        "sgd_momentum_step"))
    for s in range(0, len(order), B):
        idx = order[s:s + B]
        logits, cache = forward(params, X[idx])
        _, dlogits = loss_fn(logits, y[idx])
        step(params, backward(params, cache, dlogits), velocity, lr, momentum)


def torch_epoch(torch, net, opt, X, y, order) -> None:
    F = torch.nn.functional
    B = DEFAULTS["batch_size"]
    for s in range(0, len(order), B):
        idx = order[s:s + B]
        opt.zero_grad()
        F.cross_entropy(net(X[idx]), y[idx]).backward()
        opt.step()


def median_time(fn, repeat: int) -> float:
    fn()  # warm up
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - began)
    return statistics.median(runs)


def compare_epochs(ns: dict, digits, dtype, repeat: int, profile: bool) -> dict:
    import torch

    sizes = list(DEFAULTS["layer_sizes"])
    start = ns["init_mlp"](sizes, np.random.default_rng(0))
    order = np.random.default_rng(1).permutation(len(digits.y_train))
    X, y = digits.X_train.astype(dtype), digits.y_train
    params = {k: v.astype(dtype) for k, v in start.items()}
    t_numpy = median_time(lambda: numpy_epoch(ns, {k: v.copy() for k, v in params.items()}, X, y, order), repeat)

    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    net = torch.nn.Sequential(torch.nn.Linear(sizes[0], sizes[1]), torch.nn.ReLU(),
                              torch.nn.Linear(sizes[1], sizes[2])).to(tdtype)
    with torch.no_grad():
        for l, layer in ((1, net[0]), (2, net[2])):
            layer.weight.copy_(torch.from_numpy(params[f"W{l}"]))
            layer.bias.copy_(torch.from_numpy(params[f"b{l}"]))
    opt = torch.optim.SGD(net.parameters(), lr=DEFAULTS["lr"], momentum=DEFAULTS["momentum"])
    Xt, yt, ot = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(order)
    t_torch = median_time(lambda: torch_epoch(torch, net, opt, Xt, yt, ot), repeat)
    result = {"dtype": np.dtype(dtype).name, "numpy_s": t_numpy, "torch_s": t_torch, "ratio": t_numpy / t_torch}
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(5):
            numpy_epoch(ns, {k: v.copy() for k, v in params.items()}, X, y, order)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
        result["profile"] = out.getvalue()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the NumPy epoch")
    parser.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    ns = solution_functions()
    digits = load_digits()
    batches = -(-len(digits.y_train) // DEFAULTS["batch_size"])
    print(f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"defaults {DEFAULTS}")

    rows = time_training(ns, digits, range(args.repeat))
    times = [r[1] for r in rows]
    accs = [r[2] for r in rows]
    print(f"1. train_mlp with the defaults ({DEFAULTS['epochs']} epochs of {batches} batches): median "
          f"{statistics.median(times):.3f} s, slowest {max(times):.3f} s over {len(rows)} seeds; test accuracy "
          f"{min(accs):.1%} to {max(accs):.1%} (goal: >= {TARGET_ACCURACY:.0%} in under 2 s)")

    print(f"2. one epoch ({batches} batches of {DEFAULTS['batch_size']}, layers {list(DEFAULTS['layer_sizes'])}), "
          f"median of {args.repeat}:")
    for dtype in (np.float32, np.float64):
        r = compare_epochs(ns, digits, dtype, args.repeat, args.profile)
        verdict = "within the goal" if r["ratio"] <= 1.2 else "ABOVE the goal of 1.2"
        print(f"   {r['dtype']}: NumPy {1e3 * r['numpy_s']:.2f} ms, PyTorch {1e3 * r['torch_s']:.2f} ms, "
              f"ratio NumPy / PyTorch {r['ratio']:.2f} ({verdict})")
        if args.profile:
            print(r["profile"])


if __name__ == "__main__":
    main()
