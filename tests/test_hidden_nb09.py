"""Tests of the hidden checks of notebook 09 (the training loop).

The notebook's solutions pass every hidden check; typical wrong implementations lose their points with
a diagnosis that names the mistake; correct implementations written in other styles (zero_grad before
the backward or after the step, set_to_none either way, counters or enumerate, a materialised loader,
no_grad or inference_mode, a summed loss or one concatenated forward, a deep copy...) earn full marks
on the hidden checks and pass the visible cells; the judge fails cleanly on malformed outcomes; the
probe holds no reference and leaves torch's generator as it found it.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from solutions import run_visible, solution_namespace

from autograder.hidden import checks_for, hidden_verdict
from autograder.hidden.framework import Outcome
from autograder.probe import run_probe
from course.checks import CheckFailed

NB = "09_training_loop"
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source" / "week1" / f"{NB}.ipynb"
EXERCISES = ("minibatch_indices", "train_epoch", "evaluate")


@pytest.fixture(scope="module")
def ref() -> dict:
    return solution_namespace(NOTEBOOK)


def verdict_text(exercise: str, obj) -> tuple:
    verdict = hidden_verdict(NB, exercise, obj)
    return verdict.fraction, "\n".join(verdict.lines())


def test_checks_cover_exactly_the_exercises():
    assert set(checks_for(NB)) == set(EXERCISES)


def test_the_cases_hold_what_the_issue_asks_for():
    cases = checks_for(NB)["train_epoch"].cases()
    kinds = {name for c in cases for name, *_ in c.kwargs["layers"]}
    assert {"Dropout", "BatchNorm1d", "Linear"} <= kinds
    steps = [c.kwargs["accumulation_steps"] for c in cases]
    assert None in steps and 1 in steps and any(k and k > 1 for k in steps)
    partial = [c for c in cases if (k := c.kwargs["accumulation_steps"]) and k > 1
               and (-(-len(c.kwargs["X"]) // c.kwargs["batch_size"])) % k]
    assert partial, "a case with a final partial group"
    assert any(not c.kwargs["training"] for c in cases)   # handed over in eval mode
    assert {c.kwargs["loader"] for c in cases} == {"list", "DataLoader"}
    assert any(c.kwargs["epochs"] == 2 for c in cases)
    assert any(c.kwargs["epochs"] == 2 and (k := c.kwargs["accumulation_steps"]) and k > 1
               and (-(-len(c.kwargs["X"]) // c.kwargs["batch_size"])) % k for c in cases), \
        "two epochs with a final partial group: gradients left after its step leak into the next epoch"
    assert {c.kwargs["optimizer"][0] for c in cases} == {"SGD", "Adam", "AdamW"}
    for c in cases:   # Dropout draws from torch's generator; a DataLoader's iterator does too: never both
        assert not (c.kwargs["loader"] == "DataLoader" and any(s[0] == "Dropout" for s in c.kwargs["layers"]))
    evals = checks_for(NB)["evaluate"].cases()
    assert any(c.kwargs["training"] for c in evals) and any(not c.kwargs["training"] for c in evals)
    assert any(c.kwargs["grads"] is not None for c in evals)
    assert any(len(c.kwargs["X"]) % c.kwargs["batch_size"] == 1 and any(s[0] == "BatchNorm1d" for s in
                                                                         c.kwargs["layers"]) for c in evals)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_judge_fails_cleanly_on_malformed_outcomes(exercise):
    check = checks_for(NB)[exercise]
    junk = [None, 3, "text", [], {}, np.zeros(3), {"results": None}, {"results": [[np.zeros(2)]] * 3},
            {"returns": [1.0], "params": None, "buffers": [], "grads": [], "modes": [], "forwards": []},
            {"returns": [(1.0, 0.5)], "params": [np.zeros(2)], "buffers": [], "grads": [None], "modes": [True],
             "forwards": [[True, True]]},
            {"returns": "x", "params": [], "buffers": [], "grads": [], "modes": [], "forwards": "x"}]
    outcomes = [Outcome("returned", value=v) for v in junk]
    outcomes += [Outcome("raised", error="TypeError", message="boom"), Outcome("unsupported", message="Foo"),
                 Outcome("weird")]
    for case in check.cases():
        for outcome in outcomes:
            result = check.judge(case, outcome)
            assert result.ok is False and isinstance(result.message, str) and result.message, (case.label, outcome)


def test_probe_module_holds_no_reference():
    text = (ROOT / "autograder" / "probe" / "nb09.py").read_text()
    assert "course" not in text
    for forbidden in (".backward(", ".step(", "zero_grad", "argmax", "cross_entropy", "permutation", "inference_mode"):
        assert forbidden not in text, forbidden


def test_the_probe_leaves_torchs_generator_as_it_found_it(ref):
    check = checks_for(NB)["train_epoch"]
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    for case in check.cases()[:4]:
        run_probe(check.probe, ref["train_epoch"], case)
    assert torch.equal(before, torch.random.get_rng_state())


# ----------------------------------------------------------------------------------------------
# minibatch_indices: typical mistakes, and correct styles


def mb(n, batch_size, shuffle, rng, drop_last=False, *, form="right"):
    if batch_size < 1 and form != "no error":
        raise ValueError("batch_size must be >= 1")
    order = np.arange(n)
    if shuffle and form not in ("ignore shuffle", "within", "batch order"):
        order = {"global": lambda: np.random.permutation(n), "own rng": lambda: np.random.default_rng(0).permutation(n),
                 "replace": lambda: rng.integers(0, n, size=n)}.get(form, lambda: rng.permutation(n))()
    if form == "floor":
        stop = n - n % batch_size
    elif form == "ignore drop_last" or not drop_last:
        stop = n
    else:
        stop = n - n % batch_size
    if form == "empty last":
        batches = [order[i:i + batch_size] for i in range(0, n - n % batch_size + batch_size if not drop_last else stop,
                                                           batch_size)] if batch_size > 0 else []
    else:
        batches = [order[i:i + batch_size] for i in range(0, stop, batch_size)] if batch_size > 0 else []
    if shuffle and form == "within":
        batches = [rng.permutation(b) for b in batches]
    if shuffle and form == "batch order":
        batches = [batches[j] for j in rng.permutation(len(batches))]
    if form == "float":
        batches = [b.astype(np.float64) for b in batches]
    if form == "lists":
        batches = [b.tolist() for b in batches]
    return batches


def mbf(form):
    return lambda n, b, s, rng, drop_last=False: mb(n, b, s, rng, drop_last, form=form)


WRONG_MB = [
    (mbf("floor"), "the last, partial batch"),
    (mbf("ignore drop_last"), "drop_last=True leaves out"),
    (mbf("ignore shuffle"), "returned the indices in order"),
    (mbf("global"), "not from np.random"),
    (mbf("own rng"), "generators of different seeds gave the same batches"),
    (mbf("within"), "consecutive indices"),
    (mbf("batch order"), "consecutive indices"),
    (mbf("replace"), "times: each sample once per epoch"),
    (mbf("float"), "has dtype float64"),
    (mbf("empty last"), "an empty last batch"),
    (mbf("no error"), "should raise ValueError"),
]


@pytest.mark.parametrize("fn, text", WRONG_MB, ids=[t for _, t in WRONG_MB])
def test_minibatch_mistakes_lose_points_with_a_diagnosis(fn, text):
    fraction, lines = verdict_text("minibatch_indices", fn)
    assert fraction < 1.0, lines
    assert text in lines, lines


def mb_split(n, batch_size, shuffle, rng, drop_last=False):
    """np.split at multiples of batch_size, rng.shuffle in place."""
    if not batch_size >= 1:
        raise ValueError("batch_size")
    idx = np.arange(n)
    if shuffle:
        rng.shuffle(idx)
    parts = np.split(idx, range(batch_size, n, batch_size)) if n else []
    if drop_last and parts and len(parts[-1]) < batch_size:
        parts = parts[:-1]
    return parts


def mb_while(n, batch_size, shuffle, rng, drop_last=False):
    """a while loop over a start pointer; rng.choice without replacement; int32 batches in a tuple"""
    if batch_size <= 0:
        raise ValueError(f"bad batch_size {batch_size}")
    order = rng.choice(n, size=n, replace=False) if shuffle else np.arange(n)
    out, start = [], 0
    while start < n:
        stop = min(start + batch_size, n)
        if drop_last and stop - start < batch_size:
            break
        out.append(order[start:stop].astype(np.int32))
        start = stop
    return tuple(out)


def mb_argsort(n, batch_size, shuffle, rng, drop_last=False):
    """argsort of uniform draws; count the batches first; torch int64 tensors"""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    order = np.argsort(rng.random(n), kind="stable") if shuffle else np.arange(n)
    count = n // batch_size if drop_last else -(-n // batch_size)
    return [torch.from_numpy(order[k * batch_size:(k + 1) * batch_size]) for k in range(count)]


def mb_reshape(n, batch_size, shuffle, rng, drop_last=False):
    """full batches by a reshape, the remainder appended"""
    if batch_size < 1:
        raise ValueError("batch_size < 1")
    order = rng.permutation(n) if shuffle else np.arange(n)
    full = n // batch_size
    batches = list(order[:full * batch_size].reshape(full, batch_size))
    if n % batch_size and not drop_last:
        batches.append(order[full * batch_size:])
    return batches


def mb_drop_always(n, batch_size, shuffle, rng, drop_last=False):
    """drop_last drops the last batch even when it is full"""
    if batch_size < 1:
        raise ValueError("batch_size")
    order = rng.permutation(n) if shuffle else np.arange(n)
    out = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    return out[:-1] if drop_last else out


def mb_balanced(n, batch_size, shuffle, rng, drop_last=False):
    """np.array_split into ceil(n / B) parts: balanced sizes, not B, B, ..., rest"""
    if batch_size < 1:
        raise ValueError("batch_size")
    order = rng.permutation(n) if shuffle else np.arange(n)
    parts = n // batch_size if drop_last else -(-n // batch_size)
    return np.array_split(order, parts) if parts else []


def mb_zero_only(n, batch_size, shuffle, rng, drop_last=False):
    """only batch_size == 0 raises; a negative one gives no batch"""
    if batch_size == 0:
        raise ValueError("batch_size")
    order = rng.permutation(n) if shuffle else np.arange(n)
    if batch_size < 0:
        return []
    stop = n - n % batch_size if drop_last else n
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]


def mb_assert(n, batch_size, shuffle, rng, drop_last=False):
    """an assert instead of a ValueError"""
    assert batch_size >= 1, "batch_size"
    return mb(n, batch_size, shuffle, rng, drop_last)


def mb_off_by_one(n, batch_size, shuffle, rng, drop_last=False):
    """range(0, n - 1, B): the last index is lost when it starts a batch"""
    if batch_size < 1:
        raise ValueError("batch_size")
    order = rng.permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n - 1
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]


def mb_generator(n, batch_size, shuffle, rng, drop_last=False):
    """a generator instead of a list"""
    if batch_size < 1:
        raise ValueError("batch_size")
    order = rng.permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return (order[i:i + batch_size] for i in range(0, stop, batch_size))


def mb_always_shuffled(n, batch_size, shuffle, rng, drop_last=False):
    """shuffles whatever shuffle says"""
    return mb(n, batch_size, True, rng, drop_last)


def mb_matrix(n, batch_size, shuffle, rng, drop_last=False):
    """one (n // B, B) array: the partial batch cannot fit"""
    if batch_size < 1:
        raise ValueError("batch_size")
    order = rng.permutation(n) if shuffle else np.arange(n)
    return order[:n // batch_size * batch_size].reshape(-1, batch_size)


MORE_WRONG_MB = [
    (mb_drop_always, "expected 3 of sizes [16, 16, 16]"),
    (mb_balanced, "expected 4 of sizes [3, 3, 3, 1]"),
    (mb_zero_only, "should raise ValueError: a batch needs at least one sample"),
    (mb_assert, "but raised AssertionError"),
    (mb_off_by_one, "the last, partial batch of 1 is missing"),
    (mb_generator, "generator; return a list of integer index arrays"),
    (mb_always_shuffled, "with shuffle=False the batches keep the order"),
    (mb_matrix, "return a list of integer index arrays"),
]


@pytest.mark.parametrize("fn, text", MORE_WRONG_MB, ids=[t for _, t in MORE_WRONG_MB])
def test_more_minibatch_mistakes_lose_points_with_a_diagnosis(fn, text):
    fraction, lines = verdict_text("minibatch_indices", fn)
    assert fraction < 1.0, lines
    assert text in lines, lines


def mb_array_split(n, batch_size, shuffle, rng, drop_last=False):
    """np.array_split at the multiples of B; the short part popped for drop_last"""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}")
    order = rng.permutation(n) if shuffle else np.arange(n)
    parts = list(np.array_split(order, np.arange(batch_size, n, batch_size))) if n else []
    if drop_last and parts and parts[-1].size < batch_size:
        parts.pop()
    return parts


def mb_int_lists(n, batch_size, shuffle, rng, drop_last=False):
    """batches as Python lists of ints (X[batch] picks the same rows)"""
    if batch_size < 1:
        raise ValueError("batch_size")
    order = rng.permutation(n).tolist() if shuffle else list(range(n))
    out = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    if drop_last and out and len(out[-1]) < batch_size:
        out = out[:-1]
    return out


def mb_int32_count(n, batch_size, shuffle, rng, drop_last=False):
    """int32 indices; the number of batches computed first"""
    if batch_size < 1:
        raise ValueError("batch_size")
    order = (rng.permutation(n) if shuffle else np.arange(n)).astype(np.int32)
    count = n // batch_size if drop_last else (n + batch_size - 1) // batch_size
    return [order[j * batch_size:(j + 1) * batch_size] for j in range(count)]


def mb_torch_from_rng(n, batch_size, shuffle, rng, drop_last=False):
    """torch.randperm with a generator seeded from rng (the order still comes from rng alone); tensor.split"""
    if batch_size < 1:
        raise ValueError("batch_size")
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(int(rng.integers(2 ** 31))))
    else:
        order = torch.arange(n)
    batches = list(order.split(batch_size)) if n else []
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def mb_generator_listed(n, batch_size, shuffle, rng, drop_last=False):
    """an inner generator function, listed before returning"""
    if batch_size < 1:
        raise ValueError("batch_size")

    def batches():
        order = rng.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            if drop_last and len(batch) < batch_size:
                return
            yield batch

    return list(batches())


GOOD_MB = [mb_split, mb_while, mb_argsort, mb_reshape, mbf("right"), mbf("lists"), mb_array_split, mb_int_lists,
           mb_int32_count, mb_torch_from_rng, mb_generator_listed]


# ----------------------------------------------------------------------------------------------
# train_epoch: a configurable loop (the right one, and the typical mistakes as switches)


def te(model, loader, loss_fn, optimizer, device, accumulation_steps=1, *, form="right"):
    k = accumulation_steps
    if form != "no train":
        model.train()
    n = len(loader)
    losses, sizes = [], []
    for i, (X, y) in enumerate(loader):
        X, y = X.to(device), y.to(device)
        if form == "zero every batch":
            optimizer.zero_grad()
        loss = loss_fn(model(X), y)
        scale = {"not divided": 1, "own size": min(k, n - (i - i % k))}.get(form, k)
        if form == "no accumulation":
            scale = 1
        (loss / scale).backward()
        losses.append(loss.item())
        sizes.append(len(y))
        last = i + 1 == n and form != "no last step"
        if (i + 1) % k == 0 or last or form in ("step every batch", "no accumulation"):
            if form == "zero before step":
                optimizer.zero_grad()
            optimizer.step()
            if form not in ("no zero", "zero every batch"):
                optimizer.zero_grad()
    mean = sum(losses) / len(losses)
    return {"return scaled": mean / k, "return sum": sum(losses), "return last": losses[-1],
            "return per sample": float(np.dot(losses, sizes) / sum(sizes)), "return list": losses,
            "return float32": torch.tensor(mean, dtype=torch.float32)}.get(form, mean)


def tef(form):
    def train_epoch(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
        return te(model, loader, loss_fn, optimizer, device, accumulation_steps, form=form)
    return train_epoch


WRONG_TE = [
    (tef("no zero"), "never zeroed"),
    (tef("zero before step"), "the parameters never moved"),
    (tef("zero every batch"), "zeroed before every backward"),
    (tef("not divided"), "not divided by accumulation_steps"),
    (tef("own size"), "divided by its own number of batches"),
    (tef("no last step"), "no step after the last batch"),
    (tef("step every batch"), "a step after every batch"),
    (tef("no accumulation"), "accumulation_steps was ignored"),
    (tef("no train"), "ran in eval mode"),
    (tef("return scaled"), "the mean of the losses divided by accumulation_steps"),
    (tef("return sum"), "the sum of the batch losses"),
    (tef("return last"), "the last batch's"),
    (tef("return per sample"), "weights the batches by their sizes"),
    (tef("return list"), "came back as a list"),
    (tef("return float32"), "came back as float32"),
]


@pytest.mark.parametrize("fn, text", WRONG_TE, ids=[t for _, t in WRONG_TE])
def test_train_epoch_mistakes_lose_points_with_a_diagnosis(fn, text):
    fraction, lines = verdict_text("train_epoch", fn)
    assert fraction == 0.0, lines   # each of them breaks the main behaviour
    assert text in lines, lines


def te_zero_first(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """zero_grad(set_to_none=False) before the first backward of each group; a counter; np.mean"""
    model.train()
    losses, pending = [], 0
    for X, y in loader:
        if pending == 0:
            optimizer.zero_grad(set_to_none=False)
        X = X.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        loss = loss_fn(model(X), y)
        losses.append(loss.item())
        (loss * (1.0 / accumulation_steps)).backward()
        pending += 1
        if pending == accumulation_steps:
            optimizer.step()
            pending = 0
    if pending:
        optimizer.step()
    return np.mean(losses)


def te_counter_after(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """counter reset after each step, a final step after the loop; model.zero_grad(); running mean"""
    model.train(True)
    optimizer.zero_grad(set_to_none=True)
    count, running, seen = 0, 0.0, 0
    for X, y in loader:
        output = model(X.to(device))
        loss = loss_fn(output, y.to(device))
        seen += 1
        running += (loss.item() - running) / seen
        loss.div(accumulation_steps).backward()
        count += 1
        if count == accumulation_steps:
            optimizer.step()
            model.zero_grad()
            count = 0
    if count > 0:
        optimizer.step()
        model.zero_grad()
    return running


def te_materialised(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """the loader materialised into a list first; losses kept as detached tensors; a 0-d tensor returned"""
    model.train()
    batches = list(loader)
    kept = []
    for index in range(len(batches)):
        X, y = (t.to(device) for t in batches[index])
        loss = loss_fn(model(X), y)
        kept.append(loss.detach())
        (loss / accumulation_steps).backward()
        if (index + 1) % accumulation_steps == 0 or index == len(batches) - 1:
            optimizer.step()
            optimizer.zero_grad()
    return torch.stack(kept).mean()


def te_start_one(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """enumerate(loader, start=1); a float sum divided by the count"""
    model.train()
    total, steps_total = 0.0, len(loader)
    for step, (inputs, targets) in enumerate(loader, start=1):
        inputs, targets = inputs.to(device), targets.to(device)
        predictions = model(inputs)
        loss = loss_fn(predictions, targets)
        total += float(loss.detach())
        scaled = loss / accumulation_steps
        scaled.backward()
        if step % accumulation_steps == 0 or step == steps_total:
            optimizer.step()
            optimizer.zero_grad()
    return total / steps_total


def te_groups(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """batches grouped explicitly with itertools, zero at the start of each group"""
    import itertools

    model.train()
    iterator, losses = iter(loader), []
    while True:
        group = list(itertools.islice(iterator, accumulation_steps))
        if not group:
            break
        optimizer.zero_grad()
        for X, y in group:
            loss = loss_fn(model(X.to(device)), y.to(device))
            (loss / accumulation_steps).backward()
            losses.append(loss.item())
        optimizer.step()
    optimizer.zero_grad()
    return sum(losses) / len(losses)


def te_restores_mode(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """trains in training mode, then puts back the mode it found; np.float64 returned"""
    was = model.training
    model.train()
    try:
        losses = []
        n = len(loader)
        for i, (X, y) in enumerate(loader):
            loss = loss_fn(model(X.to(device)), y.to(device))
            losses.append(loss.item())
            (loss / accumulation_steps).backward()
            if (i + 1) % accumulation_steps == 0 or (i + 1) == n:
                optimizer.step()
                optimizer.zero_grad(set_to_none=False)
        return np.float64(np.sum(losses) / n)
    finally:
        model.train(was)


def _loop(model, loader, loss_fn, optimizer, k, *, when=None, after_step=None, final=None):
    """The plain loop with hooks for the mistakes below: when(i, n) decides a step; after_step() runs after one;
    final() after the loop. Returns the batch losses."""
    model.train()
    losses, n = [], len(loader)
    for i, (X, y) in enumerate(loader):
        loss = loss_fn(model(X), y)
        losses.append(loss.item())
        (loss / k).backward()
        if (when or (lambda i, n: (i + 1) % k == 0 or i + 1 == n))(i, n):
            optimizer.step()
            (after_step or optimizer.zero_grad)()
    if final:
        final()
    return losses


def te_offset(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """steps when i % k == 0: after the first batch of each group"""
    k = accumulation_steps
    return float(np.mean(_loop(model, loader, loss_fn, optimizer, k, when=lambda i, n: i % k == 0 or i + 1 == n)))


def te_final_no_zero(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """steps on full groups, then one step for the partial group after the loop, but no zero_grad after it"""
    k = accumulation_steps
    losses = _loop(model, loader, loss_fn, optimizer, k, when=lambda i, n: (i + 1) % k == 0,
                   final=lambda: optimizer.step() if len(loader) % k else None)
    return sum(losses) / len(losses)


def te_float32_mean(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """the right loop; the mean taken by torch.tensor(losses), a float32 tensor"""
    return torch.tensor(_loop(model, loader, loss_fn, optimizer, accumulation_steps)).mean().item()


def te_extra_step(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """zero_grad(set_to_none=False), and an unconditional step after the loop: a momentum step on zeros"""
    k = accumulation_steps
    zero = lambda: optimizer.zero_grad(set_to_none=False)   # noqa: E731
    losses = _loop(model, loader, loss_fn, optimizer, k, after_step=zero, final=lambda: (optimizer.step(), zero()))
    return sum(losses) / len(losses)


def te_two_steps(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """two steps at the end of every group"""
    def twice():
        optimizer.step()
        optimizer.zero_grad()
    return float(np.mean(_loop(model, loader, loss_fn, optimizer, accumulation_steps, after_step=twice)))


def te_no_grad_forward(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """the forward inside torch.no_grad()"""
    model.train()
    losses = []
    for X, y in loader:
        with torch.no_grad():
            output = model(X)
        loss = loss_fn(output, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def te_extra_forward(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """the right loop, then one more forward in training mode (to "check" the last batch)"""
    losses = _loop(model, loader, loss_fn, optimizer, accumulation_steps)
    with torch.no_grad():
        model(next(iter(loader))[0])
    return sum(losses) / len(losses)


def te_divide_by_pending(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """backward on the whole loss; the gradients divided by the number of batches of the group at its step"""
    model.train()
    losses, pending, n = [], 0, len(loader)
    for i, (X, y) in enumerate(loader):
        loss = loss_fn(model(X), y)
        losses.append(loss.item())
        loss.backward()
        pending += 1
        if pending == accumulation_steps or i + 1 == n:
            for p in model.parameters():
                p.grad /= pending
            optimizer.step()
            optimizer.zero_grad()
            pending = 0
    return sum(losses) / n


WRONG_TE_PARTIAL = [
    (te_final_no_zero, "not zeroed after the step of the last, partial group"),
    (te_extra_forward, "more forward passes than batches"),
]
MORE_WRONG_TE = [
    (te_offset, "after the first batch of each group instead of its last"),
    (te_float32_mean, "makes a float32 tensor"),
    (te_extra_step, "one more optimizer.step() after the last one"),
    (te_two_steps, "ran more than once for a group"),
    (te_no_grad_forward, "the forward ran with gradients off"),
]


@pytest.mark.parametrize("fn, text", MORE_WRONG_TE, ids=[t for _, t in MORE_WRONG_TE])
def test_more_train_epoch_mistakes_lose_points_with_a_diagnosis(fn, text):
    fraction, lines = verdict_text("train_epoch", fn)
    assert fraction == 0.0, lines   # each of them breaks the main behaviour
    assert text in lines, lines


@pytest.mark.parametrize("fn, text", WRONG_TE_PARTIAL, ids=[t for _, t in WRONG_TE_PARTIAL])
def test_train_epoch_mistakes_seen_only_by_some_cases_lose_some_points(fn, text):
    fraction, lines = verdict_text("train_epoch", fn)
    assert fraction < 1.0, lines
    assert text in lines, lines


def test_the_divided_by_its_own_group_mistake_is_named():
    fraction, lines = verdict_text("train_epoch", te_divide_by_pending)
    assert fraction < 1.0 and "divided by its own number of batches" in lines, lines


def te_grads_to_none(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """zero_grad by hand: p.grad = None for every parameter"""
    model.train()
    losses, n = [], len(loader)
    for i, (X, y) in enumerate(loader):
        loss = loss_fn(model(X.to(device)), y.to(device))
        losses.append(loss.item())
        (loss / accumulation_steps).backward()
        if (i + 1) % accumulation_steps == 0 or i + 1 == n:
            optimizer.step()
            for p in model.parameters():
                p.grad = None
    return float(np.mean(losses))


def te_iter_next(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """iter() and next() until StopIteration; a pending counter reset at each step; zero_grad(set_to_none=False)"""
    model.train()
    batches, total, count, pending = iter(loader), 0.0, 0, 0
    while True:
        try:
            X, y = next(batches)
        except StopIteration:
            break
        loss = loss_fn(model(X.to(device)), y.to(device))
        total += loss.item()
        count += 1
        (loss / accumulation_steps).backward()
        pending += 1
        if pending == accumulation_steps:
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)
            pending = 0
    if pending:
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)
    return total / count


def te_divide_grads(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """backward on the whole loss, the gradients divided by k in place before each step"""
    model.train()
    losses, n = [], len(loader)
    for i, (X, y) in enumerate(loader):
        loss = loss_fn(model(X), y)
        losses.append(float(loss.detach()))
        loss.backward()
        if (i + 1) % accumulation_steps == 0 or i + 1 == n:
            for p in model.parameters():
                if p.grad is not None:
                    p.grad.div_(accumulation_steps)
            optimizer.step()
            optimizer.zero_grad()
    return sum(losses) / n


def te_unconditional_final(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """steps on full groups, and one step after the loop whatever: with .grad = None (zero_grad's default)
    a step skips every parameter, so the extra step changes nothing"""
    model.train()
    losses = []
    for i, (X, y) in enumerate(loader):
        loss = loss_fn(model(X), y)
        losses.append(loss.item())
        (loss / accumulation_steps).backward()
        if (i + 1) % accumulation_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
    optimizer.step()
    optimizer.zero_grad()
    return sum(losses) / len(losses)


def te_count_down(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
    """counts down the batches left in the group and in the epoch; loss.mul(1 / k); model.zero_grad()"""
    model.train()
    remaining, left, losses = accumulation_steps, len(loader), []
    for X, y in loader:
        left -= 1
        loss = loss_fn(model(X), y)
        loss.mul(1.0 / accumulation_steps).backward()
        losses.append(loss.detach().item())
        remaining -= 1
        if remaining == 0 or left == 0:
            optimizer.step()
            model.zero_grad(set_to_none=False)
            remaining = accumulation_steps
    return np.float64(np.mean(losses))


GOOD_TE = [te_zero_first, te_counter_after, te_materialised, te_start_one, te_groups, te_restores_mode, tef("right"),
           te_grads_to_none, te_iter_next, te_divide_grads, te_unconditional_final, te_count_down]


# ----------------------------------------------------------------------------------------------
# evaluate: a configurable pass (the right one, and the typical mistakes as switches)


def ev(model, loader, loss_fn, device, *, form="right"):
    was = model.training
    if form != "no eval":
        model.eval()
    total, correct, count, batch_losses, batch_accs = 0.0, 0, 0, [], []
    context = torch.enable_grad() if form in ("graph", "backward") else torch.no_grad()
    with context:
        if form == "zero grads":
            model.zero_grad()
        for X, y in loader:
            logits = model(X.to(device))
            loss = loss_fn(logits, y.to(device))
            if form == "backward":
                loss.backward()
            hits = (logits.argmax(dim=1) == y).sum().item()
            total += loss.item() * len(y)
            correct += hits
            count += len(y)
            batch_losses.append(loss.item())
            batch_accs.append(hits / len(y))
    if form == "leave eval":
        pass
    elif form == "always train":
        model.train()
    else:
        model.train(was)
    loss, acc = total / count, correct / count
    return {"mean over batches": (float(np.mean(batch_losses)), acc),
            "accuracy over batches": (loss, float(np.mean(batch_accs))),
            "percent": (loss, 100 * acc), "swapped": (acc, loss), "loss sum": (total, acc),
            "float32 array": np.array([loss, acc], dtype=np.float32),
            "dict": {"loss": loss, "accuracy": acc}, "loss only": loss}.get(form, (loss, acc))


def evf(form):
    def evaluate(model, loader, loss_fn, device):
        return ev(model, loader, loss_fn, device, form=form)
    return evaluate


WRONG_EV = [
    (evf("no eval"), "ran in training mode"),
    (evf("mean over batches"), "the mean of the batch losses"),
    (evf("accuracy over batches"), "the mean of the batch accuracies"),
    (evf("graph"), "gradients enabled"),
    (evf("backward"), "gradients enabled"),
    (evf("zero grads"), ".grad changed"),
    (evf("leave eval"), "left in eval mode"),
    (evf("always train"), "left in training mode"),
    (evf("percent"), "percentage"),
    (evf("swapped"), "wrong order"),
    (evf("loss sum"), "the sum over the samples"),
    (evf("dict"), "return a tuple (mean loss, accuracy)"),
    (evf("loss only"), "return a tuple (mean loss, accuracy)"),
    (evf("float32 array"), "the loss came back as float32"),
]


@pytest.mark.parametrize("fn, text", WRONG_EV, ids=[t for _, t in WRONG_EV])
def test_evaluate_mistakes_lose_points_with_a_diagnosis(fn, text):
    fraction, lines = verdict_text("evaluate", fn)
    assert fraction == 0.0, lines
    assert text in lines, lines


def test_evaluating_a_batch_of_one_in_training_mode_is_explained():
    fraction, lines = verdict_text("evaluate", evf("no eval"))
    assert "Expected more than 1 value per channel when training" in lines and "model.eval()" in lines, lines


def ev_inference_sum(model, loader, loss_fn, device):
    """inference_mode; reduction='sum' through the functional form; try/finally"""
    previous = model.training
    model.eval()
    try:
        with torch.inference_mode():
            loss_sum, hits, total = 0.0, 0, 0
            for X, y in loader:
                X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
                out = model(X)
                loss_sum += F.cross_entropy(out, y, reduction="sum").item()
                hits += int((out.argmax(1) == y).sum())
                total += X.shape[0]
        return loss_sum / total, hits / total
    finally:
        model.train(previous)


def ev_concatenate(model, loader, loss_fn, device):
    """one concatenated forward result: the loss of all logits at once; restore with if/else"""
    training = model.training
    model.eval()
    outputs, targets = [], []
    with torch.no_grad():
        for X, y in loader:
            outputs.append(model(X.to(device)))
            targets.append(y.to(device))
    logits, y_all = torch.cat(outputs), torch.cat(targets)
    loss = loss_fn(logits, y_all).item()
    accuracy = (torch.max(logits, dim=1).indices == y_all).double().mean().item()
    if training:
        model.train()
    return [loss, accuracy]


def ev_deepcopy(model, loader, loss_fn, device):
    """evaluates a deep copy, so the original is never touched; float32 accuracy tensor"""
    frozen = copy.deepcopy(model).eval()
    total, acc_sum, n = 0.0, 0.0, 0
    with torch.no_grad():
        for X, y in loader:
            logits = frozen(X)
            total += loss_fn(logits, y).item() * len(y)
            acc_sum += (logits.argmax(-1) == y).float().mean() * len(y)
            n += len(y)
    return total / n, acc_sum / n


def ev_tensors(model, loader, loss_fn, device):
    """accumulates tensors and returns 0-d float64 tensors; model.train(mode=...)"""
    mode = model.training
    model.eval()
    loss_total = torch.zeros((), dtype=torch.float64)
    right = torch.zeros((), dtype=torch.float64)
    samples = 0
    with torch.no_grad():
        for X, y in loader:
            logits = model(X.to(device))
            loss_total += loss_fn(logits, y.to(device)) * y.numel()
            right += (logits.argmax(dim=1) == y).sum()
            samples += y.numel()
    model.train(mode=mode)
    return loss_total / samples, right / samples


def ev_none_reduction(model, loader, loss_fn, device):
    """per-sample losses from a copy of the loss with reduction='none', np.float64 results"""
    per_sample = type(loss_fn)(reduction="none")
    state = model.training
    model.eval()
    losses, hits = [], []
    with torch.no_grad():
        for X, y in loader:
            logits = model(X)
            losses.append(per_sample(logits, y))
            hits.append(logits.argmax(1) == y)
    model.train(state)
    return np.float64(torch.cat(losses).mean().item()), np.float64(torch.cat(hits).double().mean().item())


def _eval_pass(model, loader, loss_fn):
    """(sum of the batch losses times their sizes, hits, samples), without touching the mode or grad switch."""
    total, hits, count = 0.0, 0, 0
    for X, y in loader:
        logits = model(X)
        total += loss_fn(logits, y).item() * len(y)
        hits += (logits.argmax(1) == y).sum().item()
        count += len(y)
    return total, hits, count


def ev_grad_switched_off(model, loader, loss_fn, device):
    """torch.set_grad_enabled(False) as a call, never switched back"""
    was = model.training
    model.eval()
    torch.set_grad_enabled(False)
    total, hits, count = _eval_pass(model, loader, loss_fn)
    model.train(was)
    return total / count, hits / count


def ev_per_batch_count(model, loader, loss_fn, device):
    """the hits divided by the number of batches"""
    was = model.training
    model.eval()
    with torch.no_grad():
        total, hits, count = _eval_pass(model, loader, loss_fn)
    model.train(was)
    return total / count, hits / len(loader)


def ev_mode_read_late(model, loader, loss_fn, device):
    """model.training read after model.eval(): always restores eval mode"""
    model.eval()
    was = model.training
    with torch.no_grad():
        total, hits, count = _eval_pass(model, loader, loss_fn)
    model.train(was)
    return total / count, hits / count


def ev_reduction_changed(model, loader, loss_fn, device):
    """loss_fn.reduction = "sum", left so"""
    was = model.training
    model.eval()
    loss_fn.reduction = "sum"
    total, hits, count = 0.0, 0, 0
    with torch.no_grad():
        for X, y in loader:
            logits = model(X)
            total += loss_fn(logits, y).item()
            hits += (logits.argmax(1) == y).sum().item()
            count += len(y)
    model.train(was)
    return total / count, hits / count


def ev_softmax_first(model, loader, loss_fn, device):
    """softmax applied before CrossEntropyLoss (which applies log-softmax itself)"""
    was = model.training
    model.eval()
    with torch.no_grad():
        total, hits, count = _eval_pass(lambda X: model(X).softmax(dim=1), loader, loss_fn)
    model.train(was)
    return total / count, hits / count


def ev_last_batch(model, loader, loss_fn, device):
    """the numbers of the last batch only"""
    was = model.training
    model.eval()
    with torch.no_grad():
        for X, y in loader:
            logits = model(X)
            loss, acc = loss_fn(logits, y).item(), (logits.argmax(1) == y).double().mean().item()
    model.train(was)
    return loss, acc


MORE_WRONG_EV = [
    (ev_grad_switched_off, "gradients were left switched off"),
    (ev_per_batch_count, "divided by the number of batches"),
    (ev_mode_read_late, "left in eval mode"),
    (ev_reduction_changed, "evaluate changed loss_fn"),
    (ev_softmax_first, "loss got"),
    (ev_last_batch, "loss got"),
]


@pytest.mark.parametrize("fn, text", MORE_WRONG_EV, ids=[f.__name__ for f, _ in MORE_WRONG_EV])
def test_more_evaluate_mistakes_lose_points_with_a_diagnosis(fn, text):
    try:
        fraction, lines = verdict_text("evaluate", fn)
    finally:
        torch.set_grad_enabled(True)
    assert fraction == 0.0, lines
    assert text in lines, lines


def ev_per_module_modes(model, loader, loss_fn, device):
    """each module's flag saved and restored one by one; inference_mode; reduction="sum" on the functional form"""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    total, hits, count = 0.0, 0, 0
    with torch.inference_mode():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            logits = model(X)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            hits += int((logits.argmax(-1) == y).sum())
            count += y.numel()
    for module, mode in modes.items():
        module.training = mode
    return total / count, hits / count


def ev_reduction_restored(model, loader, loss_fn, device):
    """loss_fn.reduction switched to "sum" and put back in a finally; model.train(False)"""
    was, old = model.training, loss_fn.reduction
    loss_fn.reduction = "sum"
    model.train(False)
    try:
        with torch.no_grad():
            total, hits, count = 0.0, 0, 0
            for X, y in loader:
                logits = model(X)
                total += loss_fn(logits, y).item()
                hits += (logits.argmax(1) == y).sum().item()
                count += len(y)
    finally:
        loss_fn.reduction = old
        model.train(was)
    return total / count, hits / count


def ev_counts_as_tensors(model, loader, loss_fn, device):
    """a float64 tensor of the loss, an int32 tensor of the hits; returns np.float64 and a float32 0-d tensor"""
    was = model.training
    model.eval()
    total, hits, count = torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.int32), 0
    with torch.no_grad():
        for X, y in loader:
            logits = model(X)
            total += loss_fn(logits, y) * y.shape[0]
            hits += (logits.argmax(1) == y).sum().int()
            count += y.shape[0]
    if was:
        model.train()
    return np.float64(total.item() / count), hits.float() / count


def ev_decorated(model, loader, loss_fn, device):
    """an inner function decorated with @torch.no_grad(); try/finally for the mode"""
    @torch.no_grad()
    def run():
        total, hits, count = _eval_pass(model, loader, loss_fn)
        return total / count, hits / count

    was = model.training
    model.eval()
    try:
        return run()
    finally:
        model.train(was)


GOOD_EV = [ev_inference_sum, ev_concatenate, ev_deepcopy, ev_tensors, ev_none_reduction, evf("right"),
           ev_per_module_modes, ev_reduction_restored, ev_counts_as_tensors, ev_decorated]

GOOD = ([("minibatch_indices", f) for f in GOOD_MB] + [("train_epoch", f) for f in GOOD_TE]
        + [("evaluate", f) for f in GOOD_EV])


@pytest.mark.parametrize("exercise, fn", GOOD, ids=[f"{e}-{getattr(f, '__doc__', '') and f.__name__}-{i}"
                                                    for i, (e, f) in enumerate(GOOD)])
def test_correct_styles_get_full_marks_and_pass_the_visible_cells(ref, capfd, exercise, fn):
    verdict = hidden_verdict(NB, exercise, fn)
    assert verdict.passed, "\n".join(verdict.lines())
    run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: fn})
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("exercise, fn, text", [
    ("minibatch_indices", mbf("floor"), "the last, partial batch"),
    ("minibatch_indices", mbf("ignore shuffle"), "in order"),
    ("minibatch_indices", mbf("global"), "not from np.random"),
    ("train_epoch", tef("no zero"), "never zeroed"),
    ("train_epoch", tef("zero before step"), "never moved"),
    ("train_epoch", tef("zero every batch"), "zeroed before every backward"),
    ("train_epoch", tef("not divided"), "not divided"),
    ("train_epoch", tef("no last step"), "no step after the last batch"),
    ("train_epoch", tef("own size"), "its own number of batches"),
    ("train_epoch", tef("no train"), "eval mode"),
    ("train_epoch", tef("return scaled"), "unscaled"),
    ("evaluate", evf("no eval"), "model.eval()"),
    ("evaluate", evf("mean over batches"), "the mean of the batch losses"),
    ("evaluate", evf("graph"), "gradients enabled"),
    ("evaluate", evf("leave eval"), "left in eval mode"),
    ("evaluate", evf("always train"), "left in training mode"),
    ("evaluate", evf("zero grads"), ".grad changed"),
    ("train_epoch", tef("step every batch"), "a step after every batch"),
    ("train_epoch", tef("no accumulation"), "accumulation_steps was ignored"),
    ("train_epoch", te_offset, "after the first batch of each group"),
    ("train_epoch", te_extra_step, "one more optimizer.step()"),
    ("train_epoch", te_two_steps, "more than once for a group"),
    ("train_epoch", te_no_grad_forward, "gradients off"),
    ("train_epoch", te_float32_mean, "float32"),
    ("evaluate", ev_grad_switched_off, "switched off"),
    ("evaluate", ev_reduction_changed, "changed loss_fn"),
    ("evaluate", ev_per_batch_count, "number of batches"),
])
def test_visible_cells_catch_the_central_bugs(ref, exercise, fn, text):
    with pytest.raises((CheckFailed, AssertionError)) as info:
        run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: fn})
    assert text in str(info.value), str(info.value)


def test_a_train_epoch_that_leaves_stray_gradients_is_caught():
    def stray(model, loader, loss_fn, optimizer, device, accumulation_steps=1):
        value = te(model, loader, loss_fn, optimizer, device, accumulation_steps)
        X, y = next(iter(loader))
        loss_fn(model(X), y).backward()       # one more backward after the last step
        return value

    fraction, lines = verdict_text("train_epoch", stray)
    assert fraction == 0.0 and "extra backward" in lines, lines


def test_the_visible_check_of_train_epoch_runs_no_training_loop():
    """course/ is shipped to students: neither the check of train_epoch nor the dashboard may hold a loop
    that steps an optimizer (a copy of it would be an answer). The check watches the student's steps and
    asks autograd for the gradients they should read."""
    import ast

    # the dashboard's per-sample gradients need backward() and zero_grad(), but nothing there steps
    for module, forbidden in (("training.py", {"step", "zero_grad", "backward"}),
                              ("batch_size_dashboard.py", {"step"})):
        tree = ast.parse((ROOT / "course" / module).read_text())
        calls = {node.func.attr for node in ast.walk(tree)
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
        assert not calls & forbidden, (module, calls & forbidden)


def test_the_probe_leaves_the_grad_switch_on_for_the_next_exercise(ref):
    check = checks_for(NB)["evaluate"]
    run_probe(check.probe, ev_grad_switched_off, check.cases()[0])
    assert torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:   # an earlier cell that switched gradients off does not break the student's train_epoch
        train = checks_for(NB)["train_epoch"]
        outcome = run_probe(train.probe, ref["train_epoch"], train.cases()[0])
        assert outcome.kind == "returned" and not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(True)
