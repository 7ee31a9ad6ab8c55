"""Tests of the hidden checks of notebook 08 (optimizers).

The notebook's solutions pass every hidden check; typical wrong implementations lose points with a
diagnosis that names the mistake; correct implementations in other styles earn full marks on the
hidden check and pass the visible cells; the judge fails cleanly on malformed outcomes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from solutions import run_visible, solution_namespace

from autograder.hidden import checks_for, hidden_verdict
from autograder.hidden.framework import Outcome
from course.checks import CheckFailed

NB = "08_optimizers"
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "source" / "week1" / f"{NB}.ipynb"
EXERCISES = ("SGD", "Adam", "AdamW", "trajectory")


@pytest.fixture(scope="module")
def ref() -> dict:
    return solution_namespace(NOTEBOOK)


def verdict_text(exercise: str, obj) -> tuple:
    verdict = hidden_verdict(NB, exercise, obj)
    return verdict.fraction, "\n".join(verdict.lines())


def test_the_cases_hold_what_the_issue_asks_for():
    for exercise in ("SGD", "Adam", "AdamW"):
        cases = checks_for(NB)[exercise].cases()
        lengths = [len(c.kwargs["grads"]) for c in cases if c.kwargs["grads"]]
        assert min(lengths) >= 50 and max(lengths) >= 150
        shapes = {np.shape(p) for c in cases for p in c.kwargs["params"]}
        assert () in shapes and len(shapes) >= 4
        assert any(all(not np.any(g) for g in step) for c in cases for step in c.kwargs["grads"])
    hypers = [c.kwargs["hyper"] for c in checks_for(NB)["SGD"].cases()]
    assert any(h.get("nesterov") for h in hypers) and any(h.get("dampening") for h in hypers)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_judge_fails_cleanly_on_malformed_outcomes(exercise):
    check = checks_for(NB)[exercise]
    junk = [None, 3, "text", [], {}, {"runs": 1}, {"runs": [[]], "grads_changed": False},
            {"runs": [[[1.0]]] * 2, "grads_changed": False}, {"result": None}, {"result": [1.0], "grad_calls": 1}]
    outcomes = [Outcome("returned", value=v) for v in junk] + [Outcome("raised", error="TypeError", message="boom"),
                                                              Outcome("unsupported", message="Foo"), Outcome("weird")]
    for case in check.cases():
        for outcome in outcomes:
            result = check.judge(case, outcome)
            assert result.ok is False and isinstance(result.message, str), (case.label, outcome)


# ----------------------------------------------------------------------------------------------
# a configurable optimizer family: the right one, and the typical mistakes as switches


class MySGD:
    form = "torch"

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0) and self.form != "no error":
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        self.params, self.lr, self.mu, self.damp, self.wd, self.nesterov = params, lr, momentum, dampening, \
            weight_decay, nesterov
        self.bufs = [None] * len(params)

    def step(self, grads):
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if self.form == "mutates grads":
                g += self.wd * p
                d = g
            else:
                d = g + self.wd * p
            if self.mu:
                if self.form == "ema":
                    self.bufs[i] = (0.0 if self.bufs[i] is None else self.mu * self.bufs[i]) + (1 - self.mu) * d
                elif self.form == "dampen first":
                    self.bufs[i] = (0.0 if self.bufs[i] is None else self.mu * self.bufs[i]) + (1 - self.damp) * d
                elif self.form == "no state":
                    self.bufs[i] = d
                else:
                    self.bufs[i] = d.copy() if self.bufs[i] is None else self.mu * self.bufs[i] + (1 - self.damp) * d
                d = d + self.mu * self.bufs[i] if self.nesterov and self.form != "nesterov ignored" else self.bufs[i]
            if self.form == "sign":
                d = -d
            if self.form == "rebind":
                self.params[i] = p - self.lr * d
            else:
                p -= self.lr * d


def sgd(form):
    return type(f"SGD_{form.replace(' ', '_')}", (MySGD,), {"form": form})


class SharedSGD(MySGD):
    bufs_shared: dict = {}

    def __init__(self, params, lr, **kw):
        super().__init__(params, lr, **kw)
        self.bufs = self.bufs_shared.setdefault("bufs", [None] * len(params))
        if len(self.bufs) != len(params):
            self.bufs[:] = [None] * len(params)


class MyAdam:
    form = "torch"
    adamw = False
    default_wd = 0.0

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=None):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.wd = self.default_wd if weight_decay is None else weight_decay
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        b1, b2 = self.betas
        if self.form == "swapped betas":
            b1, b2 = b2, b1
        if self.form != "t from 0":
            self.t += 1
        couple = (not self.adamw) != (self.form == "decay swapped")
        with np.errstate(all="ignore"):
            for i, (p, g) in enumerate(zip(self.params, grads)):
                if couple:
                    g = g + self.wd * p
                elif self.form == "decay without lr":
                    p *= 1 - self.wd
                elif self.form != "decay after step":
                    p *= 1 - self.lr * self.wd
                self.m[i] = b1 * self.m[i] + (1 - b1) * g
                self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
                if self.form == "no bias correction":
                    m_hat, v_hat = self.m[i], self.v[i]
                else:
                    m_hat, v_hat = self.m[i] / (1 - b1 ** self.t), self.v[i] / (1 - b2 ** self.t)
                denom = np.sqrt(v_hat + self.eps) if self.form == "eps inside" else np.sqrt(v_hat) + self.eps
                p -= (-1 if self.form == "sign" else 1) * self.lr * m_hat / denom
                if self.form == "decay after step" and not couple:
                    p *= 1 - self.lr * self.wd
        if self.form == "t from 0":
            self.t += 1


def adam(form, decoupled=False):
    return type(f"Adam_{form.replace(' ', '_')}", (MyAdam,),
                {"form": form, "adamw": decoupled, "default_wd": 1e-2 if decoupled else 0.0})


def traj(grad_fn, x0, factory, steps, *, form="right"):
    x = np.array(x0, dtype=np.float64, copy=True) if form != "in place" else x0
    opt = factory([x])
    out = [x.copy()] if form != "no x0" else []
    for _ in range(steps):
        g = grad_fn(x)
        if form == "twice":
            grad_fn(x)
        opt.step([g])
        out.append(x if form == "no copy" else x.copy())
    return np.stack(out) if form != "transposed" else np.stack(out).T


WRONG = [
    ("SGD", sgd("ema"), "EMA form"),
    ("SGD", sgd("dampen first"), "without dampening"),
    ("SGD", sgd("no state"), "not kept between steps"),
    ("SGD", sgd("nesterov ignored"), "either nesterov is ignored"),
    ("SGD", sgd("sign"), "wrong sign"),
    ("SGD", sgd("rebind"), "in place"),
    ("SGD", sgd("mutates grads"), "the gradients given to step were changed"),
    ("SGD", sgd("no error"), "should raise ValueError"),
    ("SGD", SharedSGD, "shared between instances"),
    ("Adam", adam("no bias correction"), "bias correction is missing"),
    ("Adam", adam("eps inside"), "eps is inside the square root"),
    ("Adam", adam("t from 0"), "starts at 0"),
    ("Adam", adam("swapped betas"), "swapped"),
    ("Adam", adam("sign"), "wrong sign"),
    ("Adam", adam("decay swapped"), "AdamW's decoupled decay"),
    ("AdamW", adam("decay swapped", decoupled=True), "coupled"),
    ("AdamW", adam("decay without lr", decoupled=True), "scales it by the learning rate"),
    ("AdamW", adam("decay after step", decoupled=True), "decays p first"),
    ("AdamW", adam("no bias correction", decoupled=True), "bias correction is missing"),
    ("AdamW", adam("eps inside", decoupled=True), "eps is inside"),
    ("trajectory", lambda *a: traj(*a, form="no copy"), "append a copy"),
    ("trajectory", lambda *a: traj(*a, form="no x0"), "x0 is missing"),
    ("trajectory", lambda *a: traj(*a, form="twice"), "once per step"),
    ("trajectory", lambda *a: traj(*a, form="in place"), "x0 was changed in place"),
    ("trajectory", lambda *a: traj(*a, form="transposed"), "transposed"),
]


@pytest.mark.parametrize("exercise, obj, text", WRONG, ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(WRONG)])
def test_typical_mistakes_lose_points_with_a_diagnosis(exercise, obj, text):
    fraction, lines = verdict_text(exercise, obj)
    assert fraction < 1.0, lines
    assert text in lines, lines


# ----------------------------------------------------------------------------------------------
# correct implementations in other styles


class SGDDict:
    """State in a dict keyed by position; the update written with np.subtract(out=)."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("bad nesterov")
        self.groups = {"params": params, "lr": lr, "momentum": momentum, "dampening": dampening,
                       "weight_decay": weight_decay, "nesterov": nesterov}
        self.state = {}

    def step(self, grads):
        gr = self.groups
        for i, (p, g) in enumerate(zip(gr["params"], grads)):
            d = np.add(g, gr["weight_decay"] * p)
            if gr["momentum"]:
                buf = self.state.get(i)
                buf = np.copy(d) if buf is None else buf * gr["momentum"] + d * (1 - gr["dampening"])
                self.state[i] = buf
                d = d + gr["momentum"] * buf if gr["nesterov"] else buf
            np.subtract(p, gr["lr"] * d, out=p)


class SGDSlice:
    """Buffers allocated up front, updated with [...] assignment."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and not (momentum > 0 and dampening == 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.params, self.lr, self.mu, self.dampening, self.wd, self.nesterov = (params, lr, momentum, dampening,
                                                                                weight_decay, nesterov)
        self.bufs = [np.zeros_like(p) for p in params]
        self.started = False

    def step(self, grads):
        for p, g, buf in zip(self.params, grads, self.bufs):
            d = g + self.wd * p if self.wd else np.array(g, dtype=np.float64)
            if self.mu:
                if not self.started:
                    buf[...] = d
                else:
                    buf[...] = self.mu * buf + (1 - self.dampening) * d
                d = d + self.mu * buf if self.nesterov else buf
            p[...] = p - self.lr * d
        self.started = True


class SGDTorch:
    """Wraps torch.optim.SGD over tensors that share memory with the arrays."""

    def __init__(self, params, lr, **kw):
        self.arrays = params
        self.tensors = [torch.from_numpy(p) for p in params]
        self.opt = torch.optim.SGD(self.tensors, lr=lr, **kw)

    def step(self, grads):
        for t, g in zip(self.tensors, grads):
            t.grad = torch.from_numpy(np.array(g, dtype=np.float64))
        self.opt.step()


class AdamLerp:
    """Adam with the moments updated by lerp-like forms and the step size folded as torch does."""

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=None):
        self.params, self.lr, (self.b1, self.b2), self.eps = params, lr, betas, eps
        self.wd = (1e-2 if self.decoupled else 0.0) if weight_decay is None else weight_decay
        self.state = [{"m": np.zeros(p.shape), "v": np.zeros(p.shape)} for p in params]
        self.step_count = 0

    def step(self, grads):
        self.step_count += 1
        t = self.step_count
        for p, g, s in zip(self.params, grads, self.state):
            if self.decoupled:
                p *= 1 - self.lr * self.wd
            elif self.wd:
                g = g + self.wd * p
            s["m"] += (1 - self.b1) * (g - s["m"])
            s["v"] = self.b2 * s["v"] + (1 - self.b2) * np.square(g)
            step_size = self.lr / (1 - self.b1 ** t)
            denom = np.sqrt(s["v"]) / np.sqrt(1 - self.b2 ** t) + self.eps
            p -= step_size * s["m"] / denom


class AdamWLerp(AdamLerp):
    decoupled = True


def adam_torch(name):
    class Wrapped:
        def __init__(self, params, **kw):
            self.tensors = [torch.from_numpy(p) for p in params]
            self.opt = getattr(torch.optim, name)(self.tensors, **kw)

        def step(self, grads):
            for t, g in zip(self.tensors, grads):
                t.grad = torch.tensor(np.asarray(g, dtype=np.float64))
            self.opt.step()
    return Wrapped


def traj_prealloc(grad_fn, x0, factory, steps):
    x = np.asarray(x0, dtype=np.float64).copy()
    out = np.empty((steps + 1, x.size))
    out[0] = x
    opt = factory([x])
    for k in range(1, steps + 1):
        opt.step([grad_fn(x)])
        out[k] = x
    return out


def traj_list_tensor(grad_fn, x0, factory, steps):
    x = x0.astype(np.float64)
    opt = factory([x])
    rows = [x.tolist()]
    for _ in range(steps):
        opt.step([grad_fn(x)])
        rows.append(x.tolist())
    return torch.tensor(rows, dtype=torch.float64)


GOOD = [
    ("SGD", SGDDict), ("SGD", SGDSlice), ("SGD", SGDTorch), ("SGD", MySGD),
    ("Adam", AdamLerp), ("Adam", adam_torch("Adam")), ("Adam", adam("torch")),
    ("AdamW", AdamWLerp), ("AdamW", adam_torch("AdamW")), ("AdamW", adam("torch", decoupled=True)),
    ("trajectory", traj_prealloc), ("trajectory", traj_list_tensor), ("trajectory", traj),
]


@pytest.mark.parametrize("exercise, obj", GOOD, ids=[f"{e}-{i}" for i, (e, _) in enumerate(GOOD)])
def test_correct_implementations_in_other_styles_get_full_marks(exercise, obj):
    verdict = hidden_verdict(NB, exercise, obj)
    assert verdict.passed, "\n".join(verdict.lines())


@pytest.mark.parametrize("exercise, obj", GOOD, ids=[f"{e}-{i}" for i, (e, _) in enumerate(GOOD)])
def test_correct_implementations_in_other_styles_pass_the_visible_cells(ref, capfd, exercise, obj):
    run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: obj})
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("exercise, obj, text", [
    ("SGD", sgd("ema"), "EMA form"),
    ("SGD", sgd("rebind"), "in place"),
    ("SGD", sgd("no error"), "ValueError"),
    ("Adam", adam("no bias correction"), "bias correction"),
    ("Adam", adam("sign"), "wrong sign"),
    ("AdamW", adam("decay swapped", decoupled=True), "✗"),
    ("trajectory", lambda *a: traj(*a, form="no copy"), "append a copy"),
    ("trajectory", lambda *a: traj(*a, form="twice"), "once per step"),
])
def test_visible_cells_catch_the_central_bugs(ref, exercise, obj, text):
    with pytest.raises((CheckFailed, AssertionError)) as info:
        run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: obj})
    assert text in str(info.value), str(info.value)


# ----------------------------------------------------------------------------------------------
# more styles, from a review: state keyed by id(p) or by index, buffers created lazily, a step
# counter per param, in-place buffer updates, np.subtract(out=), the paper's "efficient" Adam with a
# rescaled eps, AdamW as decay-then-Adam or decay from the old p, trajectories built with vstack, a
# generator or a preallocated array (and steps = 0 without an optimizer)

# ---------------- correct SGD styles
class SGD_idkey:
    """state dict keyed by id(p), lazily created"""
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov")
        self.params = params; self.lr = lr; self.mu = momentum; self.damp = dampening; self.wd = weight_decay
        self.nesterov = nesterov; self.state = {}
    def step(self, grads):
        for p, g in zip(self.params, grads):
            d = g + self.wd * p
            if self.mu != 0:
                if id(p) not in self.state:
                    self.state[id(p)] = np.array(d, copy=True)
                else:
                    buf = self.state[id(p)]
                    buf *= self.mu
                    buf += (1 - self.damp) * d
                buf = self.state[id(p)]
                d = np.add(d, self.mu * buf) if self.nesterov else buf
            p -= self.lr * d

class SGD_lazy:
    """velocity list created lazily on the first step; p[...] ="""
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov:
            if momentum <= 0 or dampening != 0:
                raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.params, self.lr = params, lr
        self.hp = dict(momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        self.v = None
    def step(self, grads):
        mu, damp, wd, nest = (self.hp[k] for k in ("momentum", "dampening", "weight_decay", "nesterov"))
        first = self.v is None
        if first:
            self.v = [None for _ in self.params]
        for i in range(len(self.params)):
            p = self.params[i]
            d = grads[i] + wd * p
            if mu:
                self.v[i] = d if first else mu * self.v[i] + (1 - damp) * d
                step = d + mu * self.v[i] if nest else self.v[i]
            else:
                step = d
            p[...] = p - self.lr * step

class SGD_lrvel:
    """Sutskever form: velocity holds lr * buf (identical for constant lr); np.subtract(out=)"""
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("bad")
        self.params, self.lr, self.mu, self.damp, self.wd, self.nest = params, lr, momentum, dampening, weight_decay, nesterov
        self.vel = {}
    def step(self, grads):
        for k, (p, g) in enumerate(zip(self.params, grads)):
            d = g + self.wd * p
            if self.mu == 0:
                np.subtract(p, self.lr * d, out=p); continue
            if k in self.vel:
                self.vel[k] = self.mu * self.vel[k] + (1 - self.damp) * self.lr * d
            else:
                self.vel[k] = self.lr * d
            upd = self.lr * d + self.mu * self.vel[k] if self.nest else self.vel[k]
            np.subtract(p, upd, out=p)

class SGD_stepcount:
    """a step counter instead of None buffers; buffers preallocated; in-place buffer ops"""
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0.0 or dampening != 0.0):
            raise ValueError("x")
        self.params = list(params); self.lr = float(lr); self.m = momentum; self.dm = dampening; self.wd = weight_decay; self.n = nesterov
        self.t = 0; self.b = [np.zeros_like(p) for p in self.params]
    def step(self, grads):
        self.t += 1
        for p, g, b in zip(self.params, grads, self.b):
            d = np.asarray(g, dtype=np.float64) + self.wd * p
            if self.m > 0:
                if self.t == 1:
                    np.copyto(b, d)
                else:
                    np.multiply(b, self.m, out=b); b += (1.0 - self.dm) * d
                d = d + self.m * b if self.n else b
            p -= self.lr * d

# ---------------- correct Adam styles
class Adam_pert:
    """t stored per parameter, state dicts per param, lazily"""
    decoupled = False
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = params; self.lr = lr; self.b1, self.b2 = betas; self.eps = eps; self.wd = weight_decay
        self.state = [dict() for _ in params]
    def step(self, grads):
        for p, g, s in zip(self.params, grads, self.state):
            if not s:
                s["t"] = 0; s["m"] = np.zeros_like(p); s["v"] = np.zeros_like(p)
            s["t"] += 1
            if self.decoupled:
                p *= 1 - self.lr * self.wd
            else:
                g = g + self.wd * p
            s["m"] = self.b1 * s["m"] + (1 - self.b1) * g
            s["v"] = self.b2 * s["v"] + (1 - self.b2) * g ** 2
            mh = s["m"] / (1 - self.b1 ** s["t"]); vh = s["v"] / (1 - self.b2 ** s["t"])
            p[...] = p - self.lr * mh / (np.sqrt(vh) + self.eps)

class AdamW_pert(Adam_pert):
    decoupled = True
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)

class Adam_idkey:
    """state keyed by id(p), in-place moments, np.subtract(out=)"""
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = params; self.lr = lr; self.betas = betas; self.eps = eps; self.wd = weight_decay
        self.m = {id(p): np.zeros(np.shape(p)) for p in params}; self.v = {id(p): np.zeros(np.shape(p)) for p in params}
        self.t = 0
    def step(self, grads):
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, g in zip(self.params, grads):
            if self.wd:
                g = g + self.wd * p
            m, v = self.m[id(p)], self.v[id(p)]
            m *= b1; m += (1 - b1) * g
            v *= b2; v += (1 - b2) * np.square(g)
            np.subtract(p, self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps), out=p)

class Adam_paper:
    """Kingma-Ba 'efficient' form with eps_hat = eps * sqrt(1 - b2^t): exactly torch's"""
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.p = params; self.lr = lr; self.b = betas; self.eps = eps; self.wd = weight_decay
        self.m = [0.0 * x for x in params]; self.v = [0.0 * x for x in params]; self.t = 0
    def step(self, grads):
        self.t += 1; b1, b2 = self.b
        alpha = self.lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        eps_hat = self.eps * np.sqrt(1 - b2 ** self.t)
        for i, x in enumerate(self.p):
            g = grads[i] + self.wd * x
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            x -= alpha * self.m[i] / (np.sqrt(self.v[i]) + eps_hat)

class Adam_lazy:
    """moments created at the first step, as lists"""
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = params; self.lr = lr; self.beta1, self.beta2 = betas; self.eps = eps; self.weight_decay = weight_decay
        self.m = self.v = None; self.t = 0
    def step(self, grads):
        if self.m is None:
            self.m = [np.zeros_like(g, dtype=np.float64) for g in grads]; self.v = [np.zeros_like(g, dtype=np.float64) for g in grads]
        self.t += 1
        for i, p in enumerate(self.params):
            g = grads[i] + self.weight_decay * p if self.weight_decay != 0 else grads[i]
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * (g * g)
            m_hat = self.m[i] / (1 - self.beta1 ** self.t)
            v_hat = self.v[i] / (1 - self.beta2 ** self.t)
            p -= self.lr * m_hat / (v_hat ** 0.5 + self.eps)

class AdamW_inline:
    """AdamW written as p *= (1 - lr*wd) then the Adam step, inline"""
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        self.params = params; self.lr = lr; self.betas = betas; self.eps = eps; self.wd = weight_decay
        self.m = [np.zeros_like(p) for p in params]; self.v = [np.zeros_like(p) for p in params]; self.t = 0
    def step(self, grads):
        self.t += 1; b1, b2 = self.betas
        for p in self.params:
            p *= (1 - self.lr * self.wd)
        for i, (p, g) in enumerate(zip(self.params, grads)):
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            p -= self.lr * (self.m[i] / (1 - b1 ** self.t)) / (np.sqrt(self.v[i] / (1 - b2 ** self.t)) + self.eps)

class AdamW_oldp:
    """decay computed from the old p, subtracted together with the Adam step"""
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        self.params = params; self.lr = lr; self.b1, self.b2 = betas; self.eps = eps; self.wd = weight_decay
        self.m = [np.zeros_like(p) for p in params]; self.v = [np.zeros_like(p) for p in params]; self.t = 0
    def step(self, grads):
        self.t += 1
        for i, (p, g) in enumerate(zip(self.params, grads)):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            adam = self.m[i] / (1 - self.b1 ** self.t) / (np.sqrt(self.v[i] / (1 - self.b2 ** self.t)) + self.eps)
            p[...] = p - self.lr * self.wd * p - self.lr * adam

def make_adamw_sub(Adam):
    class AdamW_sub(Adam):
        def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
            super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=0.0)
            self.decay = weight_decay
        def step(self, grads):
            for p in self.params:
                p -= self.lr * self.decay * p
            super().step(grads)
    return AdamW_sub

# ---------------- correct trajectory styles
def traj_vstack(grad_fn, x0, factory, steps):
    x = x0.astype(np.float64)
    opt = factory([x])
    out = x[None, :].copy()
    for _ in range(steps):
        opt.step([grad_fn(x)])
        out = np.vstack([out, x])
    return out

def traj_array_of_lists(grad_fn, x0, factory, steps):
    x = np.array(x0, dtype=float)
    opt = factory([x])
    hist = [list(x)]
    for _ in range(steps):
        g = grad_fn(x)
        opt.step([g])
        hist.append(list(x))
    return np.array(hist, dtype=np.float64)

def traj_gen(grad_fn, x0, factory, steps):
    x = np.copy(x0).astype(np.float64)
    params = [x]
    opt = factory(params)
    def positions():
        yield params[0].copy()
        for _ in range(steps):
            opt.step([grad_fn(params[0])])
            yield params[0].copy()
    return np.stack(list(positions()))


def traj_early_return(grad_fn, x0, factory, steps):
    """steps = 0 answered without building an optimizer"""
    x = np.array(x0, dtype=np.float64)
    if steps == 0:
        return x[None, :].copy()
    opt = factory([x])
    rows = np.zeros((steps + 1, x.shape[0]))
    rows[0] = x
    for k in range(steps):
        opt.step([grad_fn(x)])
        rows[k + 1] = x
    return rows


MORE_GOOD = [
    ("SGD", SGD_idkey), ("SGD", SGD_lazy), ("SGD", SGD_lrvel), ("SGD", SGD_stepcount),
    ("Adam", Adam_pert), ("Adam", Adam_idkey), ("Adam", Adam_paper), ("Adam", Adam_lazy),
    ("AdamW", AdamW_pert), ("AdamW", AdamW_inline), ("AdamW", AdamW_oldp), ("AdamW", make_adamw_sub(Adam_lazy)),
    ("trajectory", traj_vstack), ("trajectory", traj_array_of_lists), ("trajectory", traj_gen),
    ("trajectory", traj_early_return),
]


@pytest.mark.parametrize("exercise, obj", MORE_GOOD, ids=[f"{e}-{o.__name__}" for e, o in MORE_GOOD])
def test_more_correct_styles_get_full_marks_and_pass_the_visible_cells(ref, capfd, exercise, obj):
    verdict = hidden_verdict(NB, exercise, obj)
    assert verdict.passed, "\n".join(verdict.lines())
    run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: obj})
    assert capfd.readouterr().err == ""


# ----------------------------------------------------------------------------------------------
# more mistakes, from the same review; each loses points with a diagnosis naming it

class W_SGD_nest_oldbuf(SGD_lazy):
    """nesterov uses the buffer before its update"""
    def step(self, grads):
        mu, damp, wd, nest = (self.hp[k] for k in ("momentum", "dampening", "weight_decay", "nesterov"))
        if self.v is None:
            self.v = [None] * len(self.params)
        for i, p in enumerate(self.params):
            d = grads[i] + wd * p
            if mu:
                old = self.v[i] if self.v[i] is not None else np.zeros_like(d)
                self.v[i] = d.copy() if self.v[i] is None else mu * self.v[i] + (1 - damp) * d
                step = d + mu * old if nest else self.v[i]
            else:
                step = d
            p -= self.lr * step

class W_SGD_damp_swapped(SGD_lazy):
    """dampening * d instead of (1 - dampening) * d"""
    def step(self, grads):
        mu, damp, wd, nest = (self.hp[k] for k in ("momentum", "dampening", "weight_decay", "nesterov"))
        if self.v is None:
            self.v = [None] * len(self.params)
        for i, p in enumerate(self.params):
            d = grads[i] + wd * p
            if mu:
                self.v[i] = d.copy() if self.v[i] is None else mu * self.v[i] + (damp if damp else 1.0) * d
                step = d + mu * self.v[i] if nest else self.v[i]
            else:
                step = d
            p -= self.lr * step

class W_SGD_decoupled(SGD_lazy):
    """weight decay as p *= 1 - lr wd (decoupled), not in the gradient"""
    def step(self, grads):
        mu, damp, wd, nest = (self.hp[k] for k in ("momentum", "dampening", "weight_decay", "nesterov"))
        if self.v is None:
            self.v = [None] * len(self.params)
        for i, p in enumerate(self.params):
            p *= 1 - self.lr * wd
            d = np.array(grads[i], dtype=float)
            if mu:
                self.v[i] = d.copy() if self.v[i] is None else mu * self.v[i] + (1 - damp) * d
                step = d + mu * self.v[i] if nest else self.v[i]
            else:
                step = d
            p -= self.lr * step

class W_SGD_no_wd(SGD_lazy):
    def step(self, grads):
        self.hp = dict(self.hp, weight_decay=0.0); super().step(grads)

class W_SGD_nest_no_raise_damp(SGD_idkey):
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and momentum <= 0:
            raise ValueError("x")
        self.params = params; self.lr = lr; self.mu = momentum; self.damp = dampening; self.wd = weight_decay
        self.nesterov = nesterov; self.state = {}

class W_SGD_raise_in_step(SGD_lazy):
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self.params, self.lr = params, lr
        self.hp = dict(momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        self.v = None
    def step(self, grads):
        if self.hp["nesterov"] and (self.hp["momentum"] <= 0 or self.hp["dampening"]):
            raise ValueError("x")
        super().step(grads)

class W_SGD_buf_noncopy_alias:
    """first buffer aliases d; when wd==0 d is the grad -> later in-place updates change an old gradient (harmless?)"""
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("x")
        self.params = params; self.lr = lr; self.mu = momentum; self.damp = dampening; self.wd = weight_decay; self.n = nesterov
        self.b = [None] * len(params)
    def step(self, grads):
        for i, (p, g) in enumerate(zip(self.params, grads)):
            d = g if self.wd == 0 else g + self.wd * p
            if self.mu:
                if self.b[i] is None:
                    self.b[i] = d
                else:
                    self.b[i] *= self.mu; self.b[i] += (1 - self.damp) * d
                d = d + self.mu * self.b[i] if self.n else self.b[i]
            p -= self.lr * d

class W_Adam_only_m_corr(Adam_lazy):
    def step(self, grads):
        if self.m is None:
            self.m = [np.zeros_like(g) for g in grads]; self.v = [np.zeros_like(g) for g in grads]
        self.t += 1
        for i, p in enumerate(self.params):
            g = grads[i] + self.weight_decay * p
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
            p -= self.lr * self.m[i] / (1 - self.beta1 ** self.t) / (np.sqrt(self.v[i]) + self.eps)

class W_Adam_only_v_corr(Adam_lazy):
    def step(self, grads):
        if self.m is None:
            self.m = [np.zeros_like(g) for g in grads]; self.v = [np.zeros_like(g) for g in grads]
        self.t += 1
        for i, p in enumerate(self.params):
            g = grads[i] + self.weight_decay * p
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
            p -= self.lr * self.m[i] / (np.sqrt(self.v[i] / (1 - self.beta2 ** self.t)) + self.eps)

class W_Adam_t_per_param_loop(Adam_lazy):
    """shared t incremented inside the loop over params"""
    def step(self, grads):
        if self.m is None:
            self.m = [np.zeros_like(g) for g in grads]; self.v = [np.zeros_like(g) for g in grads]
        for i, p in enumerate(self.params):
            self.t += 1
            g = grads[i] + self.weight_decay * p
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
            p -= self.lr * self.m[i] / (1 - self.beta1 ** self.t) / (np.sqrt(self.v[i] / (1 - self.beta2 ** self.t)) + self.eps)

class W_Adam_eps_before_corr(Adam_lazy):
    """paper's efficient form with eps not rescaled"""
    def step(self, grads):
        if self.m is None:
            self.m = [np.zeros_like(g) for g in grads]; self.v = [np.zeros_like(g) for g in grads]
        self.t += 1
        a = self.lr * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        for i, p in enumerate(self.params):
            g = grads[i] + self.weight_decay * p
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
            p -= a * self.m[i] / (np.sqrt(self.v[i]) + self.eps)

class W_Adam_abs(Adam_lazy):
    def step(self, grads):
        if self.m is None:
            self.m = [np.zeros_like(g) for g in grads]; self.v = [np.zeros_like(g) for g in grads]
        self.t += 1
        for i, p in enumerate(self.params):
            g = grads[i] + self.weight_decay * p
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * np.abs(g)
            p -= self.lr * self.m[i] / (1 - self.beta1 ** self.t) / (self.v[i] / (1 - self.beta2 ** self.t) + self.eps)

class W_Adam_wd_after_m(Adam_lazy):
    """L2 added to g only for v (after m update)"""
    def step(self, grads):
        if self.m is None:
            self.m = [np.zeros_like(g) for g in grads]; self.v = [np.zeros_like(g) for g in grads]
        self.t += 1
        for i, p in enumerate(self.params):
            g = grads[i]
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            g = g + self.weight_decay * p
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
            p -= self.lr * self.m[i] / (1 - self.beta1 ** self.t) / (np.sqrt(self.v[i] / (1 - self.beta2 ** self.t)) + self.eps)

class W_Adam_wrong_default_lr(Adam_lazy):
    def __init__(self, params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, betas, eps, weight_decay)

class W_AdamW_both(AdamW_inline):
    """decoupled decay and also L2 in the gradient"""
    def step(self, grads):
        super().step([g + self.wd * p for g, p in zip(grads, self.params)])

class W_AdamW_default0(AdamW_inline):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, betas, eps, weight_decay)

class W_AdamW_wd_times_lr_sq(AdamW_inline):
    """decay p *= 1 - lr*lr*wd"""
    def step(self, grads):
        self.wd, w = self.wd * self.lr, self.wd
        super().step(grads); self.wd = w

def W_traj_short(grad_fn, x0, factory, steps):
    x = np.array(x0, dtype=np.float64); opt = factory([x]); out = [x.copy()]
    for _ in range(steps - 1):
        opt.step([grad_fn(x)]); out.append(x.copy())
    return np.stack(out) if out else np.zeros((0, len(x0)))

def W_traj_factory_each(grad_fn, x0, factory, steps):
    x = np.array(x0, dtype=np.float64); out = [x.copy()]
    for _ in range(steps):
        factory([x]).step([grad_fn(x)]); out.append(x.copy())
    return np.stack(out)

def W_traj_grad_x0(grad_fn, x0, factory, steps):
    x = np.array(x0, dtype=np.float64); opt = factory([x]); out = [x.copy()]
    g0 = grad_fn(x0)
    for k in range(steps):
        opt.step([g0 if k == 0 else grad_fn(out[-2] if len(out) > 1 else x0)]); out.append(x.copy())
    return np.stack(out)

def W_traj_float32(grad_fn, x0, factory, steps):
    x = np.array(x0, dtype=np.float64); opt = factory([x]); out = [x.copy()]
    for _ in range(steps):
        opt.step([grad_fn(x)]); out.append(x.copy())
    return np.stack(out).astype(np.float32)

def W_traj_list(grad_fn, x0, factory, steps):
    x = np.array(x0, dtype=np.float64); opt = factory([x]); out = [x.copy()]
    for _ in range(steps):
        opt.step([grad_fn(x)]); out.append(x.copy())
    return out

def W_traj_rebuild_x(grad_fn, x0, factory, steps):
    """passes [x] but then works on x = x - ... itself"""
    x = np.array(x0, dtype=np.float64); opt = factory([x]); out = [x.copy()]
    for _ in range(steps):
        g = grad_fn(x); x = x.copy(); opt.step([g]); out.append(x.copy())
    return np.stack(out)


MORE_WRONG = [
    ("SGD", W_SGD_nest_oldbuf, "buffer from before this step's update"),
    ("SGD", W_SGD_damp_swapped, "dampening * d"),          # dampening 0.5 could not tell (1 - d) from d
    ("SGD", W_SGD_decoupled, "weight decay added after the momentum buffer"),
    ("SGD", W_SGD_no_wd, "weight_decay is ignored"),
    ("SGD", W_SGD_nest_no_raise_damp, "should raise ValueError"),
    ("SGD", W_SGD_raise_in_step, "should raise ValueError when built"),
    ("SGD", W_SGD_buf_noncopy_alias, "store a copy (d.copy())"),   # a later step wrote into an old gradient
    ("Adam", W_Adam_only_m_corr, "v's bias correction is missing"),
    ("Adam", W_Adam_only_v_corr, "m's bias correction is missing"),
    ("Adam", W_Adam_t_per_param_loop, "once per param"),
    ("Adam", W_Adam_eps_before_corr, "before v's bias correction"),
    ("Adam", W_Adam_abs, "✗"),
    ("Adam", W_Adam_wd_after_m, "weight_decay is ignored"),   # the all-zero-gradient case names the decay
    ("Adam", W_Adam_wrong_default_lr, "this case uses the defaults"),
    ("AdamW", W_AdamW_both, "weight decay applied twice"),
    ("AdamW", W_AdamW_default0, "default weight_decay is 1e-2"),
    ("AdamW", W_AdamW_wd_times_lr_sq, "✗"),
    ("trajectory", W_traj_short, "the last position is missing"),
    ("trajectory", W_traj_factory_each, "build the optimizer once"),
    ("trajectory", W_traj_grad_x0, "✗"),
    ("trajectory", W_traj_float32, "float64"),
    ("trajectory", W_traj_list, "returned a list"),
    ("trajectory", W_traj_rebuild_x, "never move"),
]


@pytest.mark.parametrize("exercise, obj, text", MORE_WRONG, ids=[f"{e}-{o.__name__}" for e, o, _ in MORE_WRONG])
def test_more_mistakes_lose_points_with_a_diagnosis(exercise, obj, text):
    fraction, lines = verdict_text(exercise, obj)
    assert fraction < 1.0, lines
    assert text in lines, lines
    if text != "should raise ValueError" and "when built" not in text:
        assert fraction == 0.0, lines   # a mistake in the main behaviour earns nothing


def test_a_zero_step_is_not_blamed_on_an_update_out_of_place():
    """With all gradients 0 only the weight decay moves the params: ignoring it leaves them still, and the
    diagnosis must name the decay, not an update that is not in place."""
    fraction, lines = verdict_text("SGD", W_SGD_no_wd)
    assert "never changed" not in lines and "in place (p -=" not in lines, lines


def W_traj_int_copy(grad_fn, x0, factory, steps):
    """optimises x0.copy(), which keeps x0's integer dtype"""
    x = x0.copy()
    opt = factory([x])
    out = [x.astype(float)]
    for _ in range(steps):
        opt.step([grad_fn(x)])
        out.append(x.astype(float))
    return np.stack(out)


def test_an_integer_x0_costs_the_edge_cases_only():
    fraction, lines = verdict_text("trajectory", W_traj_int_copy)
    assert 0.0 < fraction < 1.0 and "x0 of dtype int64" in lines, lines


def test_visible_cells_catch_more_mistakes(ref):
    for exercise, obj, text in [("SGD", W_SGD_damp_swapped, "✗"), ("SGD", W_SGD_buf_noncopy_alias, "store a copy"),
                                ("Adam", W_Adam_only_v_corr, "✗"), ("trajectory", W_traj_short, "last position"),
                                ("trajectory", W_traj_factory_each, "build the optimizer once"),
                                ("trajectory", W_traj_int_copy, "float64 copy")]:
        with pytest.raises((CheckFailed, AssertionError)) as info:
            run_visible(NOTEBOOK, ref, f"test_{exercise}", **{exercise: obj})
        assert text in str(info.value), (exercise, obj.__name__, str(info.value))
