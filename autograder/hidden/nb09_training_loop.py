"""Hidden checks of notebook 09, the training loop. Never shipped to students.

``minibatch_indices`` is probed by ``nb09.minibatch_indices`` with generators of seeds (s, s, t): the
batches must be torch's ``BatchSampler`` batches (their number and sizes), each index once, in order
without shuffling, in an order drawn from the rng alone with it (``course.training``).

``train_epoch`` and ``evaluate`` are probed by ``nb09.train_epoch`` / ``nb09.evaluate``: the case
describes a float64 model (Linear, Tanh, ReLU, Dropout, BatchNorm1d), its parameters and buffers,
the data, the batch size, a list or DataLoader loader, the loss, the optimizer (SGD with momentum,
Adam, AdamW) and torch's seed; the probe builds them in the student's process and returns plain
data. Here the same objects are built (``autograder.probe.nb09.build``) and the loop of the contract
runs on them, seeded alike: ``train_epoch``'s parameters and BatchNorm running statistics must equal
it to 1e-10 relative after one (or two) epochs, with and without accumulation, with a final partial
group, in training mode; its returned loss must be the mean of the unscaled batch losses.
``evaluate`` must return the mean loss over the samples and the accuracy of eval mode, with every
forward in eval mode and without gradients, and leave parameters, buffers, ``.grad`` and modes as
they were. Typical mistakes are the same loop with one thing changed, run here on the case's data:
(mistake, hint) pairs from ``course.training.HINTS``.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from course.checks import Comparison
from course.training import (HINTS, batches_problem, cadence_problem, evaluate_verdict, order_problem,
                             train_epoch_verdict)

from ..probe import nb09 as probe_nb09
from .framework import Case, Outcome, by_exercise, grouped
from .judging import torch_module, value_error_judgement
from .nb03_manual_backprop import _Check

NOTEBOOK = "09_training_loop"


class _Nb09Check(_Check):
    """Say what to return in this exercise's words when the probe could not read the returned object."""

    advice = "return a NumPy array or a number"

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        if outcome.kind == "unsupported":
            return self.fail(case, f"{outcome.message}; {self.advice}")
        return super().judge(case, outcome)


# ----------------------------------------------------------------------------------------------
# minibatch_indices


def _minibatch_cases() -> list:
    def case(label: str, n: int, batch_size: int, shuffle: bool, drop_last=None, seeds=(90_101, 90_101, 90_102)):
        return Case(label, kwargs={"n": n, "batch_size": batch_size, "shuffle": shuffle, "drop_last": drop_last,
                                   "seeds": list(seeds)})

    main = [case("n = 10, batch_size = 3, in order", 10, 3, False),
            case("n = 100, batch_size = 16, shuffled", 100, 16, True, seeds=(7, 7, 8)),
            case("n = 50, batch_size = 8, shuffled, drop_last=True", 50, 8, True, True, seeds=(3, 3, 4)),
            case("n = 23, batch_size = 5, in order, drop_last=True", 23, 5, False, True),
            case("n = 64, batch_size = 16, shuffled (n a multiple of batch_size)", 64, 16, True, seeds=(11, 11, 12)),
            case("n = 30, batch_size = 7, in order, drop_last=False given", 30, 7, False, False),
            case("n = 48, batch_size = 16, shuffled, drop_last=True (n a multiple: nothing left out)", 48, 16, True,
                 True, seeds=(13, 13, 14))]
    edge = [case("batch_size = 1 (SGD), n = 9, shuffled", 9, 1, True, seeds=(5, 5, 6)),
            case("batch_size = n = 12 (full batch)", 12, 12, False),
            case("batch_size 40 > n = 25", 25, 40, False),
            case("batch_size 40 > n = 25, drop_last=True: no batch", 25, 40, True, True),
            case("n = 0: no batch", 0, 4, False),
            case("n = 1, batch_size = 4, shuffled", 1, 4, True)]
    errors = [case("batch_size = 0", 10, 0, False, seeds=(1,)),
              case("batch_size = -2", 10, -2, True, seeds=(1,))]
    return grouped(main=main, edge=edge, errors=errors)


class MinibatchCheck(_Nb09Check):
    exercise = "minibatch_indices"
    probe = "nb09.minibatch_indices"
    advice = "return a list of integer index arrays, one per batch"

    def cases(self) -> list[Case]:
        return _minibatch_cases()

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        verdict = value_error_judgement(self, case, outcome, "should raise ValueError: a batch needs at least one "
                                        "sample (batch_size >= 1), as torch's BatchSampler says")
        return verdict if verdict is not None else super().judge(case, outcome)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        results = value["results"]
        if type(results) is not list or len(results) != len(kw["seeds"]):
            return self.fail(case, "what came back could not be read (results)")
        problem = batches_problem(results[0], kw["n"], kw["batch_size"], bool(kw["drop_last"]))
        if problem is None:
            for other in results[1:]:   # every call must keep the contract, not only the first
                problem = batches_problem(other, kw["n"], kw["batch_size"], bool(kw["drop_last"]))
                if problem:
                    break
        if problem is None:
            problem = order_problem(*results, kw["n"], kw["batch_size"], kw["shuffle"])
        if problem:
            return self.fail(case, problem)
        return Comparison(self.exercise, True, f"✓ {self.name(case)}")


# ----------------------------------------------------------------------------------------------
# models and data, as plain data


def _model_data(rng, layers: list, *, bn_stats: bool = False) -> tuple:
    """(params, buffers) for the layers, in model.parameters() / model.buffers() order."""
    params, buffers = [], []
    for spec in layers:
        if spec[0] == "Linear":
            fan_in, fan_out = spec[1], spec[2]
            bound = 1 / np.sqrt(fan_in)
            params += [rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out)]
        elif spec[0] == "BatchNorm1d":
            f = spec[1]
            params += [1 + 0.2 * rng.standard_normal(f), 0.2 * rng.standard_normal(f)]
            if bn_stats:
                buffers += [0.5 * rng.standard_normal(f), rng.uniform(0.5, 2.0, f), np.array(40, dtype=np.int64)]
            else:
                buffers += [np.zeros(f), np.ones(f), np.array(0, dtype=np.int64)]
    return params, buffers


def _data(rng, n: int, d: int, c: int, loss: str) -> tuple:
    X = rng.standard_normal((n, d))
    if loss == "CrossEntropyLoss":
        return X, rng.integers(0, c, size=n).astype(np.int64)
    return X, rng.standard_normal((n, c))


MLP = [["Linear", 4, 12], ["Tanh"], ["Linear", 12, 3]]
DROPOUT = [["Linear", 5, 16], ["ReLU"], ["Dropout", 0.4], ["Linear", 16, 3]]
BATCHNORM = [["Linear", 4, 10], ["BatchNorm1d", 10], ["ReLU"], ["Linear", 10, 3]]
BOTH = [["Linear", 6, 12], ["BatchNorm1d", 12], ["ReLU"], ["Dropout", 0.3], ["Linear", 12, 4]]
REGRESSION = [["Linear", 3, 8], ["Tanh"], ["Linear", 8, 2]]
LINEAR = [["Linear", 3, 3]]


def _train_case(label: str, seed: int, layers: list, n: int, batch_size: int, *, k=None, loss="CrossEntropyLoss",
                optimizer=("SGD", {"lr": 0.1, "momentum": 0.9}), loader="list", training=True, epochs=1,
                device="cpu") -> Case:
    rng = np.random.default_rng(seed)
    params, buffers = _model_data(rng, layers)
    X, y = _data(rng, n, layers[0][1], layers[-1][2], loss)
    return Case(label, kwargs={"layers": layers, "params": params, "buffers": buffers, "grads": None,
                               "training": training, "X": X, "y": y, "batch_size": batch_size, "loader": loader,
                               "loss": loss, "optimizer": [optimizer[0], dict(optimizer[1])], "device": device,
                               "seed": seed, "epochs": epochs, "accumulation_steps": k})


def _train_cases() -> list:
    adam = ("Adam", {"lr": 0.01})
    main = [
        _train_case("MLP, 5 batches of 8, no accumulation (default), SGD momentum", 90_201, MLP, 40, 8),
        _train_case("MLP, 5 batches of 8, accumulation_steps = 2 (a last group of one batch)", 90_202, MLP, 40, 8,
                    k=2),
        _train_case("MLP, DataLoader of 8 batches (the last of 3), accumulation_steps = 3, Adam", 90_203, MLP, 45, 6,
                    k=3, optimizer=adam, loader="DataLoader"),
        _train_case("Dropout(0.4), handed over in eval mode, accumulation_steps = 2", 90_204, DROPOUT, 36, 6, k=2,
                    training=False),
        _train_case("BatchNorm1d, DataLoader, handed over in eval mode, 5 batches (the last of 4)", 90_205, BATCHNORM,
                    36, 8, loader="DataLoader", training=False),
        _train_case("BatchNorm1d, accumulation_steps = 2, AdamW", 90_206, BATCHNORM, 40, 8, k=2,
                    optimizer=("AdamW", {"lr": 0.02, "weight_decay": 0.1})),
        _train_case("BatchNorm1d and Dropout, accumulation_steps = 3, two epochs in a row", 90_207, BOTH, 50, 6, k=3,
                    epochs=2),
        _train_case("regression (MSELoss), accumulation_steps = 2, two epochs in a row, SGD weight_decay", 90_208,
                    REGRESSION, 30, 4, k=2, loss="MSELoss",
                    optimizer=("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.01}), epochs=2),
        _train_case("MLP, 7 batches of 5, accumulation_steps = 3 (a last group of one), two epochs in a row", 90_209,
                    MLP, 35, 5, k=3, epochs=2),
    ]
    edge = [
        _train_case("a single batch (batch_size = N = 10)", 90_211, MLP, 10, 10),
        _train_case("accumulation_steps = 4 > 3 batches: one partial group", 90_212, REGRESSION, 10, 4, k=4,
                    loss="MSELoss"),
        _train_case("accumulation_steps = 4 = the number of batches", 90_213, MLP, 16, 4, k=4, optimizer=adam),
        _train_case("a last batch of one sample, accumulation_steps = 2", 90_214, MLP, 17, 8, k=2),
        _train_case("accumulation_steps = 1 given, device as torch.device('cpu')", 90_215, LINEAR, 12, 5, k=1,
                    device="torch.device"),
    ]
    return grouped(main=main, edge=edge)


# ----------------------------------------------------------------------------------------------
# the loop of the contract, and the same loop with one thing changed


def reference_train(kw: dict, *, zero: str = "after step", divide: str = "k", last_step: bool = True,
                    train: bool = True, every_batch_step: bool = False, zero_last: bool = True) -> dict:
    """Run the loop of the contract (or a variant) on the case's objects; plain data."""
    torch = torch_module()
    generator_state = torch.random.get_rng_state()
    try:
        built = probe_nb09.build(torch, kw)
        model, loader, loss_fn, optimizer, device = (built[key] for key in ("model", "loader", "loss_fn",
                                                                             "optimizer", "device"))
        k = 1 if kw.get("accumulation_steps") is None else int(kw["accumulation_steps"])
        returns, leftover = [], None
        for epoch in range(int(kw.get("epochs", 1))):
            torch.manual_seed(int(kw.get("seed", 0)) + epoch)
            if train:
                model.train()
            n, losses = len(loader), []
            for i, (X, y) in enumerate(loader):
                X, y = X.to(device), y.to(device)
                if zero == "every batch":
                    optimizer.zero_grad()
                loss = loss_fn(model(X), y)
                start = i - i % k
                size = min(k, n - start)
                scale = {"k": k, "none": 1, "own": size}[divide]
                (loss / scale).backward()
                losses.append(loss.item())
                end = every_batch_step or (i + 1) % k == 0 or (last_step and i + 1 == n)
                if end:
                    if zero == "before step":
                        optimizer.zero_grad()
                    optimizer.step()
                    leftover = [None if p.grad is None else p.grad.detach().numpy().copy()
                                for p in model.parameters()]
                    partial_end = (i + 1) % k != 0 and not every_batch_step
                    if zero == "after step" and (zero_last or not partial_end):
                        optimizer.zero_grad()
            returns.append(losses)
        out = probe_nb09.state(model)
        out["batch_losses"], out["leftover"] = returns, leftover
        out["sizes"] = [len(b[1]) for b in loader]
        return out
    finally:
        torch.random.set_rng_state(generator_state)


#: (mistake in HINTS, keywords of reference_train)
TRAIN_MISTAKES = [
    ("eval mode", {"train": False}),
    ("no zero_grad", {"zero": "never"}),
    ("zero every batch", {"zero": "every batch"}),
    ("not divided", {"divide": "none"}),
    ("own size", {"divide": "own"}),
    ("no last step", {"last_step": False}),
    ("step every batch", {"every_batch_step": True}),
    ("no accumulation", {"every_batch_step": True, "divide": "none"}),
    ("no zero after last", {"zero_last": False}),
]


def _names(kw: dict) -> list:
    torch = torch_module()
    generator_state = torch.random.get_rng_state()
    try:
        return [name for name, _ in probe_nb09.build(torch, kw)["model"].named_parameters()]
    finally:
        torch.random.set_rng_state(generator_state)


def _is_zero(grads: list) -> bool:
    return all(g is None or (isinstance(g, np.ndarray) and not np.any(g)) for g in grads)


class TrainEpochCheck(_Nb09Check):
    exercise = "train_epoch"
    probe = "nb09.train_epoch"
    advice = "return the mean loss as a Python float (loss.item() gives one)"

    def cases(self) -> list[Case]:
        return _train_cases()

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        if (outcome.kind == "raised" and outcome.error == "RuntimeError"
                and "does not require grad" in outcome.message):
            return self.fail(case, f"raised RuntimeError: {outcome.message[:120]} — likely cause: "
                                   f"{HINTS['no grad forward']}")
        return super().judge(case, outcome)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        ref = reference_train(kw)
        k = 1 if kw.get("accumulation_steps") is None else int(kw["accumulation_steps"])
        epochs = int(kw.get("epochs", 1))
        n_batches = len(ref["sizes"])
        expected = {"params": ref["params"], "buffers": ref["buffers"],
                    "returns": [float(np.mean(losses)) for losses in ref["batch_losses"]],
                    "batches": [n_batches] * epochs}
        got_params, got_buffers = value["params"], value["buffers"]
        if type(got_params) is not list or len(got_params) != len(ref["params"]) or type(got_buffers) is not list:
            return self.fail(case, "what came back could not be read (params)")
        watched = value["epochs"]
        if type(watched) is not list or len(watched) != epochs:
            return self.fail(case, "what came back could not be read (epochs)")
        cadence = None
        for epoch, record in enumerate(watched):
            after = [int(at) for at, changed in record["steps"] if changed]
            problem = cadence_problem(after, n_batches, k)
            if problem:
                cadence = (f"in epoch {epoch + 1}, " if epochs > 1 else "") + problem
                break
        forwards = value["forwards"]
        modes = [bool(f[0]) for f in forwards]
        variants = []
        wrong_params = not all(np.array_equal(np.asarray(g), w) for g, w in zip(got_params, ref["params"]))
        if wrong_params:  # the variants are run only when they can explain something
            for mistake, options in TRAIN_MISTAKES:
                if mistake == "eval mode" and kw["training"]:
                    continue
                wrong = reference_train(kw, **options)
                variants.append((mistake, wrong["params"], None))
        sizes = ref["sizes"]
        per_sample = [float(np.dot(losses, sizes) / np.sum(sizes)) for losses in ref["batch_losses"]]
        for mistake, values in (("return scaled", [float(np.mean(ls)) / k for ls in ref["batch_losses"]]),
                                ("return sum", [float(np.sum(ls)) for ls in ref["batch_losses"]]),
                                ("return last", [ls[-1] for ls in ref["batch_losses"]]),
                                ("return per sample", per_sample)):
            variants.append((mistake, [], values))
        got = {"params": got_params, "buffers": got_buffers, "returns": value["returns"], "modes": modes,
               "start": kw["params"], "forwards": [int(record["seen"]) for record in watched]}
        ok, message = train_epoch_verdict(self.name(case), _names(kw), got, expected, variants, cadence)
        if not ok:
            return Comparison(self.exercise, False, message)
        grads = value["grads"]
        if type(grads) is not list or len(grads) != len(ref["params"]):
            return self.fail(case, "what came back could not be read (grads)")
        if not _is_zero(grads) and not (ref["leftover"] is not None and all(
                g is not None and np.allclose(g, w, rtol=1e-8, atol=1e-12) for g, w in zip(grads, ref["leftover"]))):
            return self.fail(case, "the parameters are right, but after the epoch .grad holds neither zeros (zero "
                                   "after each step) nor the last update's gradients (zero before each group): an "
                                   "extra backward() after the last step?")
        return Comparison(self.exercise, True, f"✓ {self.name(case)}")


# ----------------------------------------------------------------------------------------------
# evaluate


def _eval_case(label: str, seed: int, layers: list, n: int, batch_size: int, *, training: bool, grads: bool,
               loader: str = "list", device: str = "cpu", params=None, X=None, y=None) -> Case:
    rng = np.random.default_rng(seed)
    default_params, buffers = _model_data(rng, layers, bn_stats=True)
    params = default_params if params is None else params
    if X is None:
        X, y = _data(rng, n, layers[0][1], layers[-1][2], "CrossEntropyLoss")
    preset = [rng.standard_normal(np.shape(p)) for p in params] if grads else None
    return Case(label, kwargs={"layers": layers, "params": params, "buffers": buffers, "grads": preset,
                               "training": training, "X": X, "y": y, "batch_size": batch_size, "loader": loader,
                               "loss": "CrossEntropyLoss", "optimizer": None, "device": device, "seed": seed,
                               "epochs": 1, "accumulation_steps": None})


def _eval_cases() -> list:
    main = [
        _eval_case("MLP, 3 batches of 8, handed over in training mode", 90_301, MLP, 24, 8, training=True,
                   grads=False),
        _eval_case("BatchNorm1d and Dropout, batches 8, 8, 3, in training mode, .grad set", 90_302, BOTH, 19, 8,
                   training=True, grads=True),
        _eval_case("BatchNorm1d and Dropout, batches 8, 8, 3, handed over in eval mode", 90_303, BOTH, 19, 8,
                   training=False, grads=False),
        _eval_case("BatchNorm1d, DataLoader with a last batch of one sample, in training mode", 90_304, BATCHNORM, 17,
                   8, training=True, grads=True, loader="DataLoader"),
        _eval_case("Dropout(0.4), batches of 5 (the last of 2), in training mode", 90_305, DROPOUT, 22, 5,
                   training=True, grads=False),
    ]
    eye = np.eye(3)
    labels = np.array([0, 1, 2, 2, 1, 0, 0], dtype=np.int64)
    edge = [
        _eval_case("one batch holding every sample", 90_311, BATCHNORM, 12, 12, training=False, grads=True),
        _eval_case("every prediction right (accuracy 1)", 90_312, LINEAR, 7, 3, training=True, grads=False,
                   params=[4 * eye, np.zeros(3)], X=eye[labels], y=labels),
        _eval_case("every prediction wrong (accuracy 0)", 90_313, LINEAR, 7, 3, training=False, grads=False,
                   params=[4 * eye[[1, 2, 0]], np.zeros(3)], X=eye[labels], y=labels),
        _eval_case("batches of one sample, device as torch.device('cpu')", 90_314, MLP, 5, 1, training=True,
                   grads=False, device="torch.device"),
    ]
    return grouped(main=main, edge=edge)


def reference_evaluate(kw: dict) -> dict:
    """Per-sample losses and hits of the case's model in eval mode, on a copy."""
    torch = torch_module()
    generator_state = torch.random.get_rng_state()
    try:
        built = probe_nb09.build(torch, kw)
        model = built["model"]
        before = probe_nb09.state(model)
        names = [name for name, _ in model.named_parameters()]
        X, y = torch.from_numpy(np.array(kw["X"])), torch.from_numpy(np.array(kw["y"]))
        copy_ = copy.deepcopy(model)
        copy_.eval()
        with torch.no_grad():
            logits = copy_(X)
            losses = torch.nn.functional.cross_entropy(logits, y, reduction="none").numpy()
            correct = (logits.argmax(dim=1) == y).double().numpy()
        sizes = [len(b[1]) for b in built["loader"]]
        return {"losses": losses, "correct": correct, "sizes": sizes,
                "before": before | {"names": names, "reduction": built["loss_fn"].reduction}}
    finally:
        torch.random.set_rng_state(generator_state)


class EvaluateCheck(_Nb09Check):
    exercise = "evaluate"
    probe = "nb09.evaluate"
    advice = "return a tuple (mean loss, accuracy) of two Python floats"

    def cases(self) -> list[Case]:
        return _eval_cases()

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        if (outcome.kind == "raised" and outcome.error == "ValueError"
                and "Expected more than 1 value per channel when training" in outcome.message):
            return self.fail(case, f"raised ValueError: {outcome.message[:120]} — likely cause: {HINTS['batch of one']}")
        return super().judge(case, outcome)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        ref = reference_evaluate(kw)
        returns = value["returns"]
        if type(returns) is not list or len(returns) != 1:
            return self.fail(case, "what came back could not be read (returns)")
        after = {key: value[key] for key in ("params", "buffers", "grads", "modes", "grad_enabled", "reduction")}
        for key in ("params", "buffers", "grads"):
            if type(after[key]) is not list or len(after[key]) != len(ref["before"][key]):
                return self.fail(case, f"what came back could not be read ({key})")
        forwards = [(bool(f[0]), bool(f[1])) for f in value["forwards"]]
        ok, message = evaluate_verdict(self.name(case), returns[0], losses=ref["losses"], correct=ref["correct"],
                                       sizes=ref["sizes"], forwards=forwards, before=ref["before"], after=after)
        return Comparison(self.exercise, ok, message)


CHECKS = by_exercise([MinibatchCheck(), TrainEpochCheck(), EvaluateCheck()])
