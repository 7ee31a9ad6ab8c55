"""Probes of notebook 09, the training loop (run in the student's process; no references here).

``minibatch_indices`` calls the student's function once per seed the case lists, each time with a
fresh ``np.random.default_rng(seed)`` built here, and records what came back.

``train_epoch`` and ``evaluate`` cannot receive a model, a loader or an optimizer as data: the case
describes them (the layers, their parameters and buffers as arrays, the data and the batch size, the
loss, the optimizer and its settings), and :func:`build` makes them here, in float64, with torch. A
forward hook on every leaf module records its training flag and whether gradients were enabled at
each call. ``train_epoch`` is called ``epochs`` times with torch's generator seeded (``seed + epoch``)
right before each call, so that Dropout draws the same masks as the judge's own run; ``evaluate``
once, on a model whose ``.grad`` the case may preset. The probe hands back plain data: the returned
values, the parameters, buffers and ``.grad`` after the calls, every module's training flag, and the
forward records, and for ``train_epoch`` after which batch every optimizer step came and whether it
moved a parameter; whether gradients were still enabled after each call, and the loss's reduction.
It never decides anything: the judge (``autograder.hidden.nb09_training_loop``),
which builds the same objects with the same :func:`build`, does. torch's global random state is
restored afterwards.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .core import Case, Outcome, UnsupportedOutput, copy_args, plain, raised

#: the layers a case may describe: name -> number of constructor arguments
LAYERS = {"Linear": 2, "BatchNorm1d": 1, "Dropout": 1, "ReLU": 0, "Tanh": 0}
LOSSES = ("CrossEntropyLoss", "MSELoss")
OPTIMIZERS = ("SGD", "Adam", "AdamW")


def build(torch, kw: dict) -> dict:
    """The model (nn.Sequential, float64, in the case's mode, .grad preset when given), the loader
    (a list of (X, y) tuples or a DataLoader without shuffling or workers), the loss, the optimizer
    (None when the case has none) and the device, from a case's plain data."""
    nn = torch.nn
    modules = []
    for spec in kw["layers"]:
        name, args = spec[0], spec[1:]
        if name not in LAYERS or len(args) != LAYERS[name]:
            raise ValueError(f"unknown layer {spec!r}")
        if name == "Linear":
            modules.append(nn.Linear(int(args[0]), int(args[1])))
        elif name == "BatchNorm1d":
            modules.append(nn.BatchNorm1d(int(args[0])))
        elif name == "Dropout":
            modules.append(nn.Dropout(float(args[0])))
        else:
            modules.append(getattr(nn, name)())
    model = nn.Sequential(*modules).double()
    with torch.no_grad():
        for p, a in zip(model.parameters(), kw["params"], strict=True):
            p.copy_(torch.from_numpy(np.array(a, dtype=np.float64)))
        for b, a in zip(model.buffers(), kw["buffers"], strict=True):
            b.copy_(torch.from_numpy(np.array(a)))
    for p, g in zip(model.parameters(), kw.get("grads") or [None] * len(kw["params"])):
        p.grad = None if g is None else torch.from_numpy(np.array(g, dtype=np.float64))
    model.train(bool(kw["training"]))
    X, y = torch.from_numpy(np.array(kw["X"])), torch.from_numpy(np.array(kw["y"]))
    size = int(kw["batch_size"])
    if kw["loader"] == "DataLoader":
        from torch.utils.data import DataLoader, TensorDataset

        loader = DataLoader(TensorDataset(X, y), batch_size=size, shuffle=False, num_workers=0)
    else:
        loader = [(X[i:i + size], y[i:i + size]) for i in range(0, len(X), size)]
    if kw["loss"] not in LOSSES:
        raise ValueError(f"unknown loss {kw['loss']!r}")
    optimizer = None
    if kw.get("optimizer"):
        name, hyper = kw["optimizer"]
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}")
        optimizer = getattr(torch.optim, name)(model.parameters(), **hyper)
    device = torch.device("cpu") if kw.get("device") == "torch.device" else "cpu"
    return {"model": model, "loader": loader, "loss_fn": getattr(nn, kw["loss"])(), "optimizer": optimizer,
            "device": device}


def state(model) -> dict:
    """What a model holds after a call, as plain data."""
    return {"params": [p.detach().cpu().numpy().copy() for p in model.parameters()],
            "buffers": [b.detach().cpu().numpy().copy() for b in model.buffers()],
            "grads": [None if p.grad is None else p.grad.detach().cpu().numpy().copy() for p in model.parameters()],
            "modes": [bool(m.training) for m in model.modules()]}


def _hooks(torch, model, records: list) -> list:
    def hook(module, _inputs, _output):
        records.append((bool(module.training), bool(torch.is_grad_enabled())))

    return [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]


def minibatch_indices(obj: Any, case: Case) -> Outcome:
    """Call obj(n, batch_size, shuffle, np.random.default_rng(seed)[, drop_last=...]) for each seed."""
    kw = copy_args(case.kwargs)
    extra = {} if kw.get("drop_last") is None else {"drop_last": kw["drop_last"]}
    results = []
    for seed in kw["seeds"]:
        try:
            result = obj(kw["n"], kw["batch_size"], kw["shuffle"], np.random.default_rng(seed), **extra)
        except Exception as exc:  # the student's exception is data
            return raised(exc)
        try:
            results.append(plain(result))
        except UnsupportedOutput as exc:
            return Outcome("unsupported", message=f"returned {exc}")
    return Outcome("returned", value={"results": results})


def _watch_steps(torch, model, optimizer, epochs: list) -> list:
    """Hooks that record, in ``epochs[-1]``, the forwards of the model's first layer ("seen"; "with_grad":
    those with gradients on, the batches trained on so far) and, for every optimizer step, [batches
    trained on so far, whether a parameter changed]."""
    params = list(model.parameters())
    first = next(m for m in model.modules() if not list(m.children()))
    kept: list = []

    def count(_module, _inputs):
        epochs[-1]["seen"] += 1
        epochs[-1]["with_grad"] += bool(torch.is_grad_enabled())

    def before(_optimizer, _args, _kwargs):
        kept[:] = [p.detach().clone() for p in params]

    def after(_optimizer, _args, _kwargs):
        changed = not all(torch.equal(a, p.detach()) for a, p in zip(kept, params))
        epochs[-1]["steps"].append([epochs[-1]["with_grad"], changed])

    return [first.register_forward_pre_hook(count), optimizer.register_step_pre_hook(before),
            optimizer.register_step_post_hook(after)]


def _run(obj: Any, case: Case, train: bool) -> Outcome:
    import torch

    kw = copy_args(case.kwargs)
    generator_state = torch.random.get_rng_state()
    grad_state = torch.is_grad_enabled()
    torch.set_grad_enabled(True)   # whatever an earlier cell left, the student's code starts with gradients on
    try:
        built = build(torch, kw)
        model, records, epochs = built["model"], [], []
        handles = _hooks(torch, model, records)
        if train:
            handles += _watch_steps(torch, model, built["optimizer"], epochs)
        returns, grad_enabled = [], True
        try:
            for epoch in range(int(kw.get("epochs", 1))):
                torch.manual_seed(int(kw.get("seed", 0)) + epoch)
                epochs.append({"seen": 0, "with_grad": 0, "steps": []})
                if train:
                    args = (model, built["loader"], built["loss_fn"], built["optimizer"], built["device"])
                    extra = {} if kw.get("accumulation_steps") is None else {
                        "accumulation_steps": kw["accumulation_steps"]}
                else:
                    args, extra = (model, built["loader"], built["loss_fn"], built["device"]), {}
                try:
                    result = obj(*args, **extra)
                except Exception as exc:  # the student's exception is data
                    return raised(exc)
                finally:
                    grad_enabled = grad_enabled and torch.is_grad_enabled()
                    torch.set_grad_enabled(True)
                try:
                    returns.append(plain(result))
                except UnsupportedOutput as exc:
                    return Outcome("unsupported", message=f"returned {exc}")
        finally:
            for handle in handles:
                handle.remove()
        reduction = getattr(built["loss_fn"], "reduction", None)
        return Outcome("returned", value={"returns": returns, "forwards": [list(r) for r in records],
                                          "epochs": epochs, "grad_enabled": grad_enabled,
                                          "reduction": reduction if type(reduction) is str else None,
                                          **state(model)})
    finally:
        torch.random.set_rng_state(generator_state)
        torch.set_grad_enabled(grad_state)


def train_epoch(obj: Any, case: Case) -> Outcome:
    """Build the case's model, loader, loss and optimizer and call obj(...) once per epoch."""
    return _run(obj, case, train=True)


def evaluate(obj: Any, case: Case) -> Outcome:
    """Build the case's model and loader and call obj(model, loader, loss_fn, device) once."""
    return _run(obj, case, train=False)


#: probe name (without the "nb09." prefix) -> probe(obj, case) -> Outcome
PROBES: dict[str, Callable[[Any, Case], Outcome]] = {
    "minibatch_indices": minibatch_indices,
    "train_epoch": train_epoch,
    "evaluate": evaluate,
}
