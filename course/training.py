"""Checks of the training-loop exercises (notebook 09): one contract for the visible and the hidden checks.

The three exercises and what they must return:

* ``minibatch_indices(n, batch_size, shuffle, rng, drop_last=False)`` returns a **list of 1-d integer
  NumPy arrays** (a tuple is read as the list; an integer torch tensor is read as its array, a list of
  Python ints as the array of those ints: ``X[batch]`` picks the same rows), one per batch: the
  batches torch's ``BatchSampler`` makes, ``ceil(n / batch_size)`` of them, the last one shorter
  (``floor(n / batch_size)`` with ``drop_last``, the partial batch left out), covering each index
  once. With ``shuffle=False`` the indices come in order 0, 1, ..., n − 1; with ``shuffle=True`` in an
  order drawn from ``rng`` alone (the same seed gives the same batches, another seed others), across
  the whole epoch (not only inside each batch, nor only the order of the batches).
  ``batch_size < 1`` raises ValueError.
* ``train_epoch(model, loader, loss_fn, optimizer, device, accumulation_steps=1)`` returns the mean of
  the unscaled batch losses as a **number**: a Python float (a NumPy float64, a 0-d float64 array or
  tensor also do; float32 is too coarse), to 1e-10 relative. What it does to the model must be the
  contract's loop: every forward in training mode; a step that moves the parameters after every k-th
  batch and after the last, each reading as ``.grad`` the gradient of the sum of its group's batch
  losses divided by k; the parameters changed by those steps alone; the gradients zeroed after each
  step (or before each group), so that a second epoch starts clean. The visible check watches every
  ``optimizer.step()`` (:func:`check_train_epoch`); the hidden check compares the parameters and the
  BatchNorm running statistics it leaves with those of the contract's loop, to 1e-10 relative in
  float64, on models with Dropout and BatchNorm too.
* ``evaluate(model, loader, loss_fn, device)`` returns the pair **(mean loss over the samples,
  accuracy)**, a tuple (or list) of two numbers: the loss as for ``train_epoch`` (float64, 1e-10
  relative), the accuracy a fraction in [0, 1] compared to 1e-7 (so a float32 accuracy such as
  ``(pred == y).float().mean()`` is fine). Every forward pass runs in eval mode with gradients off
  (``torch.no_grad()`` or ``torch.inference_mode()``); afterwards the parameters, the running
  statistics, every ``.grad``, the mode of the model (training or eval), the loss function and
  torch's gradient switch are as they were. (A list, or a 1-d array of two float64 numbers, is read as
  the pair too.)

This module holds that contract once: :func:`plain_form` reads a returned object as the grader's
probe does; :func:`batches_problem`, :func:`order_problem`, :func:`number_problem`,
:func:`pair_problem`, :func:`cadence_problem`, :func:`returns_problem`, :func:`train_epoch_verdict` and
:func:`evaluate_verdict` judge plain data and say what is wrong (the visible checks and the hidden
checks call the same ones); the ``check_*`` functions are what the visible test cells run. The hint
texts name the typical mistakes.

NumPy and the standard library at import time; torch is imported inside the functions that need it.
Nothing here implements an exercise.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .checks import CheckFailed, Comparison, compare, compare_scalar, format_shape
from .elementwise import _kind, result_form

__all__ = ["RTOL", "ATOL", "ACCURACY_ATOL", "make_blobs", "plain_form", "torch_batches", "batches_problem",
           "order_problem", "number_problem", "pair_problem", "record_forwards", "snapshot", "expected_steps",
           "cadence_problem", "returns_problem", "train_epoch_verdict", "evaluate_verdict", "check_minibatch_indices",
           "check_train_epoch", "check_evaluate", "HINTS"]

#: parameters and losses are compared to 1e-10 relative; differences below 1e-12 never count
RTOL, ATOL = 1e-10, 1e-12
#: an accuracy is a fraction k / N: 1e-7 tells every two apart for N up to ten million, and lets float32 through
ACCURACY_ATOL = 1e-7

#: the likely causes, by name: the visible and the hidden checks say the same thing
HINTS = {
    "no zero_grad": "the gradients were never zeroed: .grad keeps adding up, so every update also repeats all "
                    "the earlier gradients; call optimizer.zero_grad() after each optimizer.step() (or before the "
                    "first backward of each group)",
    "zero every batch": "the gradients were zeroed before every backward, so each update used only the last batch "
                        "of its group: with accumulation, zero only after a step (or before the first backward of "
                        "a group)",
    "zero before step": "the parameters never moved: zero_grad() ran between backward() and step() (or step() is "
                        "missing), so each step saw no gradient",
    "not divided": "the loss was not divided by accumulation_steps: k backward passes add up k gradients, so each "
                   "update was k times too large; call backward() on loss / accumulation_steps",
    "own size": "the last, shorter group's loss was divided by its own number of batches: the contract divides "
                "every batch's loss by accumulation_steps, the last group's too",
    "no last step": "no step after the last batch: when the number of batches is not a multiple of "
                    "accumulation_steps, the last partial group must still be applied (also step when "
                    "i + 1 == len(loader))",
    "step every batch": "a step after every batch: with accumulation_steps = k, step (and zero) only after every "
                        "k-th batch and after the last one",
    "no accumulation": "accumulation_steps was ignored (a step after every batch, the loss not divided)",
    "offset": "the steps came after the first batch of each group instead of its last: step when "
              "(i + 1) % accumulation_steps == 0 (i counting from 0), not when i % accumulation_steps == 0",
    "extra step": "one more optimizer.step() after the last one: with momentum (or Adam) a step on zero gradients "
                  "still moves the parameters; step after the loop only when the last group is partial (or zero "
                  "with zero_grad(), whose .grad = None makes the optimizer skip the parameter)",
    "two steps": "optimizer.step() ran more than once for a group: one step per group of accumulation_steps batches",
    "no zero after last": "the gradients were not zeroed after the step of the last, partial group: they leak into "
                          "the first update of the next epoch; zero after every step (or before the first "
                          "backward of every group)",
    "extra forward": "more forward passes than batches: in training mode every forward moves BatchNorm's running "
                     "statistics (and draws new Dropout masks); one forward per batch",
    "no grad forward": "the forward ran with gradients off (inside torch.no_grad() or torch.inference_mode()), so "
                       "the loss has no graph and backward() cannot run: train with gradients on",
    "eval mode": "the forward passes ran in eval mode: call model.train() at the start of train_epoch (Dropout "
                 "and BatchNorm behave differently when training)",
    "return scaled": "the returned loss is the mean of the losses divided by accumulation_steps: return the mean "
                     "of the unscaled batch losses (take loss.item() before dividing)",
    "return sum": "the returned loss is the sum of the batch losses: return their mean",
    "return last": "the returned loss is the last batch's: return the mean over every batch of the epoch",
    "return per sample": "the returned loss weights the batches by their sizes (a mean over samples): train_epoch "
                         "returns the plain mean of the batch losses",
    "train mode": "the forward passes ran in training mode: call model.eval() first (Dropout drops units, "
                  "BatchNorm normalises with the batch's statistics and updates its running statistics)",
    "batch of one": "BatchNorm in training mode cannot normalise a batch of one sample (it raised \"Expected "
                    "more than 1 value per channel when training\"): evaluate in eval mode, model.eval()",
    "mean over batches": "the mean of the batch losses weights the samples of a smaller last batch more: sum "
                         "loss * len(batch) over the batches and divide by the number of samples",
    "accuracy over batches": "the mean of the batch accuracies weights the samples of a smaller last batch more: "
                             "count the correct predictions over all batches and divide by the number of samples",
    "loss sum": "the loss is the sum over the samples: divide by the number of samples",
    "graph": "the forward passes ran with gradients enabled, building a graph nobody needs: run them inside "
             "torch.no_grad() (or torch.inference_mode())",
    "left in eval": "the model came in training mode and was left in eval mode: remember model.training at the "
                    "start and restore it at the end (model.train(was_training))",
    "left in train": "the model came in eval mode and was left in training mode: restore the mode it found "
                     "(model.train(was_training)), not always model.train()",
    "grads changed": "the parameters' .grad changed: evaluate must not call zero_grad() or backward()",
    "params changed": "the parameters changed: evaluate must not step an optimizer or edit the weights",
    "stats changed": "BatchNorm's running statistics changed: the forward passes ran in training mode; "
                     "call model.eval() first",
    "percent": "the accuracy looks like a percentage: return the fraction of correct predictions, in [0, 1]",
    "accuracy per batch count": "the number of correct predictions was divided by the number of batches: divide "
                                "it by the number of samples",
    "grad mode left off": "gradients were left switched off after evaluate (torch.set_grad_enabled(False) with no "
                          "way back): use `with torch.no_grad():`, which switches them back on when the block ends",
    "loss_fn changed": "evaluate changed loss_fn (its reduction) and left it so: the caller trains with that same "
                       "object; put it back, or sum with loss.item() * len(y) instead",
    "float32": "off by about float32's precision: keep the loss in float64 (loss.item() is a Python float; "
               "torch.tensor(list_of_floats) makes a float32 tensor)",
    "swapped": "the pair came back in the wrong order: return (loss, accuracy)",
}


# ----------------------------------------------------------------------------------------------
# data


def make_blobs(n: int, rng: np.random.Generator, *, d: int = 8, c: int = 4, spread: float = 1.0) -> tuple:
    """A classification task: c Gaussian blobs in d dimensions, centres drawn from rng first.

    Returns X: (N, D) float64 and y: (N,) int64 class labels in [0, C). Draw train and validation
    sets in one call (2 N samples, then split) so that they share the centres."""
    if n < 0 or d < 1 or c < 2:
        raise ValueError(f"need n >= 0, d >= 1 and c >= 2, got n={n}, d={d}, c={c}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    centres = rng.standard_normal((c, d))
    y = rng.integers(0, c, size=n)
    X = centres[y] + spread * rng.standard_normal((n, d))
    return X, y.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# returned objects as plain data


class Unreadable:
    """A returned object that is not plain data (what the grader's probe refuses); ``what`` describes it."""

    def __init__(self, what: str) -> None:
        self.what = what


def plain_form(got: Any, depth: int = 0) -> Any:
    """What the grader's probe hands the judge: NumPy arrays and tensors as arrays, NumPy scalars as
    Python numbers, lists and tuples item by item; anything else becomes an :class:`Unreadable`."""
    t = type(got)
    if got is None or t in (bool, int, float, str):
        return got
    if (t is list or t is tuple) and depth < 8:
        return t(plain_form(v, depth + 1) for v in got)
    value = result_form(got)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            return Unreadable(f"an array of dtype {value.dtype}")
        return value
    if type(value) in (bool, int, float):
        return value
    return Unreadable(_kind(got))


def _what(value: Any) -> str:
    if isinstance(value, Unreadable):
        return value.what
    if isinstance(value, np.ndarray):
        return f"an array of shape {format_shape(value.shape)} ({value.dtype})"
    return _kind(value)


# ----------------------------------------------------------------------------------------------
# minibatch_indices


def torch_batches(n: int, batch_size: int, drop_last: bool = False) -> list:
    """torch's batches of range(n) in order: list(BatchSampler(SequentialSampler(range(n)), ...))."""
    from torch.utils.data import BatchSampler, SequentialSampler

    return [np.asarray(b, dtype=np.int64) for b in BatchSampler(SequentialSampler(range(n)), batch_size, drop_last)]


def _sizes_text(sizes: Sequence[int]) -> str:
    sizes = list(sizes)
    return str(sizes) if len(sizes) <= 8 else f"[{', '.join(map(str, sizes[:6]))}, ..., {sizes[-1]}]"


def batches_problem(value: Any, n: int, batch_size: int, drop_last: bool = False) -> Optional[str]:
    """Why returned batches (plain data) are not those of the contract for (n, batch_size, drop_last):
    the container, each batch's type, the number and sizes of the batches, the indices' range and
    that none repeats. None when all is well."""
    if type(value) not in (list, tuple):
        return f"returned {_what(value)}; return a list of integer index arrays, one per batch"
    for i, batch in enumerate(value):
        if type(batch) in (list, tuple):
            if any(type(v) is bool for v in batch):
                return f"batch {i} is a list of booleans; return the indices themselves (integers)"
            if not all(type(v) is int for v in batch):
                return (f"batch {i} is a {type(batch).__name__} that does not hold only integers; each batch holds "
                        f"indices")
            continue
        if not isinstance(batch, np.ndarray):
            return f"batch {i} is {_what(batch)}; each batch must be a 1-d integer NumPy array"
        if batch.dtype.kind == "b":
            return f"batch {i} is a boolean mask; return the indices themselves (integers)"
        if batch.dtype.kind not in "iu":
            return (f"batch {i} has dtype {batch.dtype}; indices must be integers (np.arange(n) and "
                    f"rng.permutation(n) give integers)")
        if batch.ndim != 1:
            return f"batch {i} has shape {format_shape(batch.shape)}; each batch must be 1-d"
    value = _as_batches(value)
    expected = [len(b) for b in torch_batches(n, batch_size, drop_last)]
    sizes = [len(b) for b in value]
    if sizes != expected:
        text = (f"got {len(sizes)} batches of sizes {_sizes_text(sizes)}, expected {len(expected)} of sizes "
                f"{_sizes_text(expected)} (n = {n}, batch_size = {batch_size}, drop_last = {drop_last})")
        rest = n % batch_size
        if sizes and sizes[-1] == 0:
            text += (" — likely cause: an empty last batch; stop at n: range(0, n, batch_size) gives "
                     "ceil(n / batch_size) starts")
        elif not drop_last and rest and sizes == expected[:-1]:
            text += (f" — likely cause: the last, partial batch of {rest} is missing: there are "
                     f"ceil(n / batch_size) = {len(expected)} batches, the last one shorter (it is left out only "
                     f"when drop_last=True)")
        elif drop_last and rest and sizes[:-1] == expected and sizes[-1] == rest:
            text += (f" — likely cause: drop_last=True leaves out the last, partial batch ({rest} samples): "
                     f"floor(n / batch_size) = {len(expected)} batches")
        elif len(set(sizes)) == 1 and sizes and len(sizes) == batch_size and n:
            text += " — likely cause: batch_size and the number of batches are swapped"
        return text
    if not sizes:
        return None
    flat = np.concatenate([np.asarray(b, dtype=np.int64) for b in value])
    if flat.min() < 0 or flat.max() >= n:
        bad = int(flat[(flat < 0) | (flat >= n)][0])
        return f"index {bad} is out of range(n) = range({n})"
    counts = np.bincount(flat, minlength=n)
    if counts.max() > 1:
        twice = int(np.argmax(counts))
        return (f"index {twice} appears {int(counts.max())} times: each sample once per epoch (a permutation, "
                f"not draws with replacement such as rng.integers or rng.choice(n, size))")
    return None


def _as_batches(value: Any) -> Any:
    """A list of batches with every batch given as a list (or tuple) of ints turned into an int64 array;
    anything else is left as it is."""
    if type(value) not in (list, tuple):
        return value
    return [np.array(b, dtype=np.int64) if type(b) in (list, tuple) and all(type(v) is int for v in b) else b
            for b in value]


def _same_batches(a: Any, b: Any) -> bool:
    a, b = _as_batches(a), _as_batches(b)
    if type(a) not in (list, tuple) or type(b) not in (list, tuple) or len(a) != len(b):
        return False
    return all(isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.shape == y.shape
               and bool(np.array_equal(x, y)) for x, y in zip(a, b))


def order_problem(first: Any, again: Any, other: Any, n: int, batch_size: int, shuffle: bool) -> Optional[str]:
    """Why the order of returned batches breaks the contract. ``first`` and ``again`` came from two
    generators of the same seed, ``other`` from another seed (all plain data, ``first`` already
    valid by :func:`batches_problem`)."""
    first = _as_batches(first)
    flat = np.concatenate([np.asarray(b, dtype=np.int64) for b in first]) if len(first) else np.zeros(0, np.int64)
    in_order = bool(np.array_equal(flat, np.arange(len(flat))))
    if not shuffle:
        if not in_order:
            return "with shuffle=False the batches keep the order 0, 1, ..., n − 1"
        return None
    if not _same_batches(first, again):
        return ("two calls with generators of the same seed gave different batches: the order must come from "
                "rng alone (rng.permutation(n)), not from np.random, torch or another generator")
    m = len(flat)   # the indices covered (fewer than n with drop_last)
    if m >= 8 and in_order:
        return "shuffle=True returned the indices in order: draw a permutation, rng.permutation(n), and cut it"
    if m >= 8 and _same_batches(first, other):
        return ("generators of different seeds gave the same batches: draw the order from the rng you are "
                "given (rng.permutation(n)), not from a generator of your own")
    if m >= 4 * batch_size and batch_size >= 4 and all(
            bool(np.array_equal(np.sort(b), np.arange(np.min(b), np.min(b) + len(b)))) for b in first):
        return ("every batch holds consecutive indices: only the order of the batches, or the order inside each "
                "batch, was shuffled; permute all n indices first, then cut the permutation into batches")
    return None


def check_minibatch_indices(fn: Callable, n: int, batch_size: int, shuffle: bool, *,
                            drop_last: Optional[bool] = None, seed: int = 0) -> Comparison:
    """Call fn(n, batch_size, shuffle, rng[, drop_last]) with generators of seeds (seed, seed, seed + 1)
    and check the batches against torch's BatchSampler and the contract; raises CheckFailed with the
    likely cause. Returns the passed Comparison (print it)."""
    __tracebackhide__ = True
    kwargs = {} if drop_last is None else {"drop_last": drop_last}
    label = (f"minibatch_indices(n={n}, batch_size={batch_size}, shuffle={shuffle}"
             + (f", drop_last={drop_last}" if drop_last is not None else "") + ")")
    results = [plain_form(fn(n, batch_size, shuffle, np.random.default_rng(s), **kwargs))
               for s in (seed, seed, seed + 1)]
    problem = (batches_problem(results[0], n, batch_size, bool(drop_last))
               or order_problem(*results, n, batch_size, shuffle))
    if problem:
        raise CheckFailed(f"✗ {label}: {problem}")
    sizes = [len(b) for b in results[0]]
    return Comparison(label, True, f"✓ {label}: {len(sizes)} batches of sizes {_sizes_text(sizes)}")


# ----------------------------------------------------------------------------------------------
# numbers and pairs


def number_problem(value: Any, what: str = "the loss") -> Optional[str]:
    """Why a returned number (plain data) is not a float64 number: a Python float or int, or a 0-d
    float64 array (what a NumPy float64 or a 0-d float64 tensor becomes)."""
    t = type(value)
    if t is float or t is int:
        return None
    if isinstance(value, np.ndarray):
        if value.ndim == 0 and value.dtype == np.float64:
            return None
        if value.ndim == 0 and value.dtype.kind in "iu":
            return None
        if value.ndim == 0:
            return (f"{what} came back as {value.dtype}; compute in float64 and return a Python float "
                    f"(loss.item())")
        text = f"{what} came back as an array of shape {format_shape(value.shape)}; return one number, a Python float"
        if value.size > 1:
            text += " — likely cause: a list of per-batch (or per-sample) values; return their mean"
        return text
    return f"{what} came back as {_what(value)}; return a Python float (e.g. loss.item())"


def pair_problem(value: Any) -> Optional[str]:
    """Why an evaluate result (plain data) is not a pair (loss, accuracy) of numbers: a tuple or a list
    of two, or a 1-d array of two (whose dtype then holds for both)."""
    if isinstance(value, np.ndarray) and value.shape == (2,):
        value = [value[0:1].reshape(()), value[1:2].reshape(())]
    if type(value) not in (tuple, list):
        return f"returned {_what(value)}; return a tuple (mean loss, accuracy) of two floats"
    if len(value) != 2:
        return f"returned a {type(value).__name__} of {len(value)} items; return a tuple (mean loss, accuracy)"
    problem = number_problem(value[0], "the loss")
    if problem:
        return problem
    acc = value[1]
    if type(acc) in (float, int) or (isinstance(acc, np.ndarray) and acc.ndim == 0 and acc.dtype.kind in "iuf"):
        return None
    return f"the accuracy came back as {_what(acc)}; return a Python float (e.g. correct / total)"


def _number(value: Any) -> float:
    return float(np.asarray(value, dtype=np.float64))


# ----------------------------------------------------------------------------------------------
# watching a model: forward passes, and what a call changed


@contextlib.contextmanager
def record_forwards(model) -> Iterator[list]:
    """Record (module.training, torch.is_grad_enabled()) at every forward of every leaf module of model
    (a forward hook each, removed on exit). Yields the list of records."""
    import torch

    records: list = []

    def hook(module, _inputs, _output):
        records.append((bool(module.training), bool(torch.is_grad_enabled())))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def snapshot(model) -> dict:
    """Copies of what a model holds, as plain data: {"params", "buffers", "grads" (None or an array),
    "modes" (each module's training flag, in model.modules() order), "names"}."""
    params = list(model.named_parameters())
    return {"names": [name for name, _ in params],
            "params": [p.detach().cpu().numpy().copy() for _, p in params],
            "buffers": [b.detach().cpu().numpy().copy() for b in model.buffers()],
            "grads": [None if p.grad is None else p.grad.detach().cpu().numpy().copy() for _, p in params],
            "modes": [bool(m.training) for m in model.modules()]}


# ----------------------------------------------------------------------------------------------
# train_epoch


def _params_match(got: Sequence, want: Sequence, rtol: float = RTOL, atol: float = ATOL) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if g is None or w is None:
            if g is not w:
                return False
            continue
        g, w = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
        if g.shape != w.shape:
            return False
        with np.errstate(all="ignore"):
            if not np.all(np.abs(g - w) <= atol + rtol * np.abs(w)):
                return False
    return True


def expected_steps(n_batches: int, k: int) -> list:
    """After which batches (counted from 1) the contract steps: every k-th one, and the last one."""
    return [min(end, n_batches) for end in range(k, n_batches + k, k)] if n_batches else []


def _positions_text(positions: Sequence[int]) -> str:
    positions = [int(p) for p in positions]
    if not positions:
        return "none"
    if len(positions) <= 10:
        return ", ".join(map(str, positions))
    return ", ".join(map(str, positions[:8])) + f", ..., {positions[-1]}"


def cadence_problem(after: Sequence[int], n_batches: int, k: int) -> Optional[str]:
    """Why the steps that moved the parameters came after the wrong batches: ``after`` holds, for every
    optimizer.step() that changed a parameter, the number of batches the model had seen in the epoch
    (plain ints). None when they are the contract's :func:`expected_steps`."""
    after = [int(a) for a in after]
    expected = expected_steps(n_batches, k)
    if after == expected:
        return None
    counted = f"({n_batches} batch{'' if n_batches == 1 else 'es'}, accumulation_steps={k})"
    text = (f"the parameters were updated after batches {_positions_text(after)} (counting from 1), expected "
            f"after {_positions_text(expected)} {counted}" if after else
            f"no optimizer.step() moved the parameters, expected steps after batches {_positions_text(expected)} "
            f"{counted}")
    offset = sorted({i + 1 for i in range(n_batches) if i % k == 0} | {n_batches})
    hint = None
    if not after:
        hint = HINTS["zero before step"]
    elif after == expected[:-1] and n_batches % k:
        hint = HINTS["no last step"]
    elif k > 1 and after == list(range(1, n_batches + 1)):
        hint = HINTS["step every batch"]
    elif after == offset:
        hint = HINTS["offset"]
    elif after == expected + [expected[-1]]:
        hint = HINTS["extra step"]
    elif sorted(set(after)) == expected:
        hint = HINTS["two steps"]
    return text + (f" — likely cause: {hint}" if hint else "")


def returns_problem(label: str, returns: Any, expected: Sequence[float], variants: Sequence = ()) -> Optional[str]:
    """Why train_epoch's returned losses (plain data, one per epoch) are not the expected means of the
    unscaled batch losses; ``variants`` are (name of a "return ..." mistake in :data:`HINTS`, its values).
    None when they match."""
    if type(returns) is not list or len(returns) != len(expected):
        return f"✗ {label}: expected {len(expected)} returned values"
    for epoch, (value, want) in enumerate(zip(returns, expected)):
        what = "the returned loss" + (f" of epoch {epoch + 1}" if len(returns) > 1 else "")
        problem = number_problem(value, what)
        if problem:
            return f"✗ {label}: {problem}"
        result = compare_scalar(f"{label}: {what}", _number(value), want, rtol=RTOL, atol=ATOL)
        if result.ok:
            continue
        hint = None
        for mistake, wrong in variants:
            if abs(_number(value) - wrong[epoch]) <= 1e-8 * abs(wrong[epoch]) + 1e-12 and abs(
                    wrong[epoch] - want) > 1e-8 * abs(want) + 1e-12:
                hint = HINTS[mistake]
                break
        if hint is None and 1e-10 < abs(_number(value) - want) / max(abs(want), 1e-300) < 1e-5:
            hint = HINTS["float32"]
        return result.message + (f" — likely cause: {hint}" if hint else "")
    return None


def train_epoch_verdict(label: str, names: Sequence[str], got: dict, expected: dict,
                        variants: Sequence = (), cadence: Optional[str] = None) -> tuple:
    """Judge what train_epoch left, as plain data (the hidden check's verdict). ``got`` and ``expected``
    hold "returns" (one returned value per epoch; expected's are numbers), "params" and "buffers"
    (lists of arrays), and got holds "modes" (the training flags seen at every forward, see
    :func:`record_forwards`), "start" (the params before) and optionally "forwards" (forward passes
    per epoch) with expected "batches" (batches per epoch). ``variants`` are (name of a typical mistake
    in :data:`HINTS`, its params, its returns): the first whose params (then returns) match gives the
    likely cause; ``cadence`` is what :func:`cadence_problem` found (or None), the next likely cause.
    Returns (ok, message)."""
    modes = list(got.get("modes", []))
    eval_forwards = sum(1 for training in modes if not training)
    if len(got["params"]) != len(expected["params"]):
        return False, f"✗ {label}: expected {len(expected['params'])} parameter tensors"
    start = got.get("start")
    for name, g, w in zip(names, got["params"], expected["params"]):
        result = compare(f"{label} {name}", g, w, rtol=RTOL, atol=ATOL)
        if result.ok:
            continue
        hint = HINTS["eval mode"] if eval_forwards else None
        if hint is None:
            for mistake, params, _ in variants:
                if params and _params_match(got["params"], params, rtol=1e-8, atol=1e-12):
                    hint = HINTS[mistake]
                    break
        if hint is None and cadence:
            return False, f"{result.message} — {cadence}"
        if hint is None and start is not None and all(
                np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
                for a, b in zip(got["params"], start)):
            hint = HINTS["zero before step"]
        return False, result.message + (f" — likely cause: {hint}" if hint else "")
    forwards, batches = got.get("forwards"), expected.get("batches")
    for i, (g, w) in enumerate(zip(got.get("buffers", []), expected.get("buffers", []))):
        result = compare(f"{label} buffer {i}", g, w, rtol=RTOL, atol=ATOL)
        if not result.ok:
            hint = HINTS["eval mode"] if eval_forwards else None
            if hint is None and forwards is not None and batches is not None and list(forwards) != list(batches):
                hint = (f"{HINTS['extra forward']} (forward passes per epoch: {list(forwards)}, batches: "
                        f"{list(batches)})")
            return False, result.message + (f" — likely cause: {hint}" if hint else "")
    if eval_forwards:
        return False, f"✗ {label}: {eval_forwards} of {len(modes)} layer calls ran in eval mode — {HINTS['eval mode']}"
    problem = returns_problem(label, got["returns"], expected["returns"],
                              [(mistake, wrong) for mistake, _, wrong in variants if wrong is not None])
    if problem:
        return False, problem
    return True, f"✓ {label}: parameters and returned loss match"


def _grads_hint(got: list, expected: list, per_batch: list, k: int, previous: Optional[list]) -> Optional[str]:
    """The likely cause when the .grad a step saw (``got``) is not ``expected`` = sum of ``per_batch``
    gradients / k (lists of tensors per parameter; ``previous`` the .grad the previous step saw)."""
    import torch

    def same(a: list, b: list) -> bool:
        return _params_match([None if t is None else t.numpy() for t in a], [t.numpy() for t in b], rtol=1e-8)

    if all(g is None or not torch.any(g) for g in got):
        return HINTS["zero before step"]
    total = [sum(parts) for parts in zip(*per_batch)]
    if k > 1 and same(got, total):
        return HINTS["not divided"]
    if 1 < len(per_batch) < k and same(got, [t / len(per_batch) for t in total]):
        return HINTS["own size"]
    if len(per_batch) > 1 and same(got, [t / k for t in per_batch[-1]]):
        return HINTS["zero every batch"]
    if previous is not None and all(p is not None for p in previous) and same(
            got, [e + p for e, p in zip(expected, previous)]):
        return HINTS["no zero_grad"]
    return None


def check_train_epoch(train_epoch: Callable, make_model: Callable, make_optimizer: Callable, batches: Sequence,
                      loss_fn, accumulation_steps: int = 1, *, device: Any = "cpu", label: str = "") -> Comparison:
    """Run the student's train_epoch for one epoch on make_model() (handed over in eval mode) and watch
    every optimizer.step(): after which batch it ran, the .grad it read and the parameters it left.

    No training loop runs here: each step that moves the parameters must come after the contract's
    batch (every accumulation_steps-th and the last) and read, as .grad, the gradient of
    sum(loss of each batch of its group) / accumulation_steps at the parameters of that moment
    (computed with torch.autograd.grad on a copy of the model); the parameters may change only in
    steps; every forward runs in training mode; the returned loss is the mean of the batch losses.
    The model must hold no Dropout or BatchNorm (its copy must compute what the model computes).
    Raises CheckFailed with the likely cause; returns the passed Comparison (print it)."""
    __tracebackhide__ = True
    import copy

    import torch

    k = int(accumulation_steps)
    label = label or f"train_epoch, accumulation_steps={k}"
    model = make_model()
    if any(isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd))
           for m in model.modules()):
        raise ValueError("check_train_epoch needs a model without Dropout or BatchNorm")
    model.eval()   # train_epoch must switch it to training mode itself
    shadow, reference_loss = copy.deepcopy(model).train(), copy.deepcopy(loss_fn)
    optimizer = make_optimizer(model.parameters())
    names = [name for name, _ in model.named_parameters()]
    params = list(model.parameters())
    start = [p.detach().clone() for p in params]
    first_layer = next(m for m in model.modules() if not list(m.children()))
    seen, steps = [0], []

    def count(_module, _inputs) -> None:
        if torch.is_grad_enabled():   # a forward for a backward (one with gradients off, e.g. to log, is not a batch)
            seen[0] += 1

    def before_step(_optimizer, _args, _kwargs) -> None:
        steps.append({"after": seen[0], "params": [p.detach().clone() for p in params],
                      "grads": [None if p.grad is None else p.grad.detach().clone() for p in params]})

    def after_step(_optimizer, _args, _kwargs) -> None:
        steps[-1]["result"] = [p.detach().clone() for p in params]

    handles = [first_layer.register_forward_pre_hook(count), optimizer.register_step_pre_hook(before_step),
               optimizer.register_step_post_hook(after_step)]
    try:
        with record_forwards(model) as records:
            returned = train_epoch(model, batches, loss_fn, optimizer, device, accumulation_steps=k)
    except RuntimeError as exc:
        if "does not require grad" in str(exc):
            raise CheckFailed(f"✗ {label}: raised RuntimeError: {str(exc)[:100]} — likely cause: "
                              f"{HINTS['no grad forward']}") from None
        raise
    finally:
        for handle in handles:
            handle.remove()
    final = [p.detach().clone() for p in params]

    def fail(text: str) -> None:
        raise CheckFailed(text if text.startswith("✗") else f"✗ {label}: {text}")

    def equal(a: list, b: list) -> bool:
        return all(torch.equal(x, y) for x, y in zip(a, b))

    current, moving = start, []          # the steps that changed a parameter (a step on no gradient does not)
    for number, step in enumerate(steps, start=1):
        if not equal(step["params"], current):
            fail(f"the parameters changed outside optimizer.step() (before step {number}): update them only "
                 f"with optimizer.step()")
        if "result" in step and not equal(step["result"], step["params"]):
            moving.append(step)
            current = step["result"]
    if not equal(final, current):
        fail("the parameters changed outside optimizer.step() (after the last step): update them only with "
             "optimizer.step()")
    n = len(batches)
    after = [step["after"] for step in moving]

    def group_gradients(at: list, group: Sequence) -> tuple:
        """Per batch of the group: the gradient of its loss, and the loss, at the parameters ``at``."""
        with torch.no_grad():
            for s, p in zip(shadow.parameters(), at):
                s.copy_(p)
        grads, losses = [], []
        for X, y in group:
            loss = reference_loss(shadow(X), y)
            grads.append([g.detach() for g in torch.autograd.grad(loss, list(shadow.parameters()))])
            losses.append(loss.item())
        return grads, losses

    problem = cadence_problem(after, n, k)
    if problem:
        if k > 1 and after == list(range(1, n + 1)):   # a step after every batch: was the loss divided?
            grads, _ = group_gradients(moving[0]["params"], batches[:1])
            if _params_match([g.numpy() for g in moving[0]["grads"]], [g.numpy() for g in grads[0]], rtol=1e-8):
                problem = problem.split(" — likely cause: ")[0] + f" — likely cause: {HINTS['no accumulation']}"
        fail(problem)
    losses, previous = [], None
    for number, step in enumerate(moving, start=1):
        group = batches[(number - 1) * k:number * k]
        per_batch, group_losses = group_gradients(step["params"], group)
        losses += group_losses
        expected = [sum(parts) / k for parts in zip(*per_batch)]
        for name, got, want in zip(names, step["grads"], expected):
            result = compare(f"{label}: .grad of {name} read by step {number} (after batch {step['after']})",
                             None if got is None else got.numpy(), want.numpy(), rtol=RTOL, atol=ATOL)
            if not result.ok:
                hint = _grads_hint(step["grads"], expected, per_batch, k, previous)
                fail(result.message + (f" — likely cause: {hint}" if hint else ""))
        previous = step["grads"]
    eval_forwards = sum(1 for training, _ in records if not training)
    if eval_forwards:
        fail(f"{eval_forwards} of {len(records)} layer calls ran in eval mode — {HINTS['eval mode']}")
    mean = float(np.mean(losses))
    variants = [("return scaled", [mean / k]), ("return sum", [float(np.sum(losses))]),
                ("return last", [losses[-1]])]
    problem = returns_problem(label, [plain_form(returned)], [mean], variants)
    if problem:
        fail(problem)
    return Comparison(label, True, f"✓ {label}: {len(moving)} steps after the right batches, each on the right "
                                   f"gradient; returned loss matches")


# ----------------------------------------------------------------------------------------------
# evaluate


def evaluate_verdict(label: str, value: Any, *, losses: np.ndarray, correct: np.ndarray, sizes: Sequence[int],
                     forwards: Sequence, before: dict, after: dict) -> tuple:
    """Judge an evaluate call, as plain data: ``value`` what it returned; ``losses`` and ``correct`` the
    per-sample losses and hits in eval mode (N,); ``sizes`` the batch sizes; ``forwards`` the records
    of :func:`record_forwards`; ``before`` and ``after`` the :func:`snapshot` of the model around the
    call (``after`` may add "grad_enabled", torch.is_grad_enabled() after the call, and both may hold
    "reduction", loss_fn.reduction). Returns (ok, message)."""
    in_train = any(training for training, _ in forwards)
    with_grad = any(grad for _, grad in forwards)
    problem = pair_problem(value)
    if problem:
        return False, f"✗ {label}: {problem}"
    loss, acc = _number(value[0]), _number(value[1])   # a tuple, a list or an array of two
    want_loss, want_acc = float(np.mean(losses)), float(np.mean(correct))
    bounds = np.cumsum([0, *sizes])
    batch_losses = [float(np.mean(losses[a:b])) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    batch_accs = [float(np.mean(correct[a:b])) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def near(x: float, y: float, tol: float) -> bool:
        return abs(x - y) <= tol * max(abs(y), 1.0)

    result = compare_scalar(f"{label}: loss", loss, want_loss, rtol=RTOL, atol=ATOL)
    if not result.ok:
        hint = None
        if in_train:
            hint = HINTS["train mode"]
        elif near(loss, want_acc, 1e-7) and near(acc, want_loss, 1e-8):
            hint = HINTS["swapped"]
        elif len(batch_losses) > 1 and near(loss, float(np.mean(batch_losses)), 1e-8):
            hint = HINTS["mean over batches"]
        elif near(loss, float(np.sum(losses)), 1e-8):
            hint = HINTS["loss sum"]
        return False, result.message + (f" — likely cause: {hint}" if hint else "")
    result = compare_scalar(f"{label}: accuracy", acc, want_acc, rtol=0.0, atol=ACCURACY_ATOL)
    if not result.ok:
        hint = None
        if in_train:
            hint = HINTS["train mode"]
        elif near(acc, 100 * want_acc, 1e-6) and want_acc:
            hint = HINTS["percent"]
        elif len(batch_accs) > 1 and near(acc, float(np.mean(batch_accs)), 1e-6):
            hint = HINTS["accuracy over batches"]
        elif len(sizes) > 1 and near(acc, float(np.sum(correct)) / len(sizes), 1e-6):
            hint = HINTS["accuracy per batch count"]
        return False, result.message + (f" — likely cause: {hint}" if hint else "")
    if in_train:
        return False, f"✗ {label}: the numbers are right, but {HINTS['train mode']}"
    if with_grad:
        return False, f"✗ {label}: the numbers are right, but {HINTS['graph']}"
    if after.get("grad_enabled", True) is not True:
        return False, f"✗ {label}: the numbers are right, but {HINTS['grad mode left off']}"
    if before.get("reduction") != after.get("reduction"):
        return False, f"✗ {label}: the numbers are right, but {HINTS['loss_fn changed']}"
    for key, name in (("params", "params changed"), ("buffers", "stats changed")):
        if not all(np.array_equal(a, b) for a, b in zip(before[key], after[key])):
            return False, f"✗ {label}: the numbers are right, but {HINTS[name]}"
    if not all((a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
               for a, b in zip(before["grads"], after["grads"])):
        return False, f"✗ {label}: the numbers are right, but {HINTS['grads changed']}"
    if list(before["modes"]) != list(after["modes"]):
        name = "left in eval" if before["modes"][0] else "left in train"
        return False, f"✗ {label}: the numbers are right, but {HINTS[name]}"
    return True, f"✓ {label}: loss {loss:.6f}, accuracy {acc:.4f}; model left as it came"


def check_evaluate(evaluate: Callable, model, batches: Sequence, loss_fn, losses: Any, correct: Any, *,
                   device: Any = "cpu", label: str = "") -> Comparison:
    """Run the student's evaluate on model and the batches and judge it with :func:`evaluate_verdict`
    against the per-sample losses and hits (N,) of eval mode, computed by the caller. Raises
    CheckFailed with the likely cause; returns the passed Comparison (print it)."""
    __tracebackhide__ = True
    label = label or f"evaluate, model in {'training' if model.training else 'eval'} mode"
    losses = np.asarray(losses.detach() if hasattr(losses, "detach") else losses, dtype=np.float64)
    correct = np.asarray(correct.detach() if hasattr(correct, "detach") else correct, dtype=np.float64)
    import torch

    before = snapshot(model) | {"reduction": getattr(loss_fn, "reduction", None)}
    grad_before = torch.is_grad_enabled()
    with record_forwards(model) as records:
        try:
            returned = evaluate(model, batches, loss_fn, device)
        except ValueError as exc:
            if "Expected more than 1 value per channel when training" in str(exc):
                raise CheckFailed(f"✗ {label}: raised ValueError: {str(exc)[:120]} — likely cause: "
                                  f"{HINTS['batch of one']}") from None
            raise
        finally:
            grad_enabled = torch.is_grad_enabled()
            torch.set_grad_enabled(grad_before)   # later cells need gradients, whatever evaluate did
    after = snapshot(model) | {"grad_enabled": grad_enabled or not grad_before,
                               "reduction": getattr(loss_fn, "reduction", None)}
    ok, message = evaluate_verdict(label, plain_form(returned), losses=losses, correct=correct,
                                   sizes=[len(b[1]) for b in batches], forwards=records, before=before, after=after)
    if not ok:
        raise CheckFailed(message)
    return Comparison(label, True, message)

