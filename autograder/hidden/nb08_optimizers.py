"""Hidden checks of notebook 08, optimizers. Never shipped to students.

``SGD``, ``Adam`` and ``AdamW`` are probed by ``nb08.optimizer``: the student's class runs on params
and gradient sequences sent as data (several params of different shapes, a 0-d param, zero
gradients, entries whose gradient is 0 for many steps, 50 to 200 steps), twice with fresh instances;
the params recorded after every step must equal ``torch.optim`` run here in float64 on the same data
(``course.optimizers.torch_run``), to 1e-10 relative. Nesterov with momentum 0 or dampening ≠ 0
must raise ValueError, as torch does. Typical mistakes are NumPy variants computed here from the
case's data: (candidate steps, hint).

``trajectory`` is probed by ``nb08.trajectory`` on a diagonal quadratic with a gradient-descent
factory; the positions must equal torch.optim.SGD's on the same function.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from course.checks import Comparison
from course.losses import first_match
from course.optimizers import (GRADS_CHANGED, compare_steps, step_hint, steps_problem, torch_run, trajectory_mistakes,
                               trajectory_problem)
from course.checks import compare

from .framework import Case, Outcome, by_exercise, grouped
from .judging import torch_module, value_error_judgement
from .nb03_manual_backprop import _Check

NOTEBOOK = "08_optimizers"
RTOL, ATOL = 1e-10, 1e-12


# ----------------------------------------------------------------------------------------------
# typical mistakes, as NumPy variants of the updates (judge side only)


def _sgd_variant(hyper: dict, params0, grads, *, form: str = "torch") -> list:
    lr, mu = hyper["lr"], hyper.get("momentum", 0.0)
    damp, wd, nesterov = hyper.get("dampening", 0.0), hyper.get("weight_decay", 0.0), hyper.get("nesterov", False)
    params = [np.array(p, dtype=np.float64, copy=True) for p in params0]
    bufs: list = [None] * len(params)
    out = []
    for step_grads in grads:
        for i, (p, g) in enumerate(zip(params, step_grads)):
            d = g + wd * p if form not in ("decay after", "no decay") else np.array(g, dtype=np.float64)
            if mu:
                if form == "ema":
                    bufs[i] = (mu * bufs[i] if bufs[i] is not None else 0.0) + (1 - mu) * d
                elif form == "dampen first":
                    bufs[i] = (mu * bufs[i] if bufs[i] is not None else 0.0) + (1 - damp) * d
                elif form == "no state":
                    bufs[i] = d
                elif form == "dampening swapped":
                    bufs[i] = d.copy() if bufs[i] is None else mu * bufs[i] + damp * d
                else:
                    bufs[i] = d.copy() if bufs[i] is None else mu * bufs[i] + (1 - damp) * d
                if nesterov and form != "nesterov ignored":
                    d = d + mu * bufs[i]
                else:
                    d = bufs[i]
            if form == "decay after":
                d = d + wd * p
            if form == "sign":
                d = -d
            p -= lr * d
        out.append([p.copy() for p in params])
    return out


def _adam_variant(hyper: dict, params0, grads, *, decoupled: bool, form: str = "torch") -> list:
    lr, (b1, b2) = hyper.get("lr", 1e-3), hyper.get("betas", (0.9, 0.999))
    eps, wd = hyper.get("eps", 1e-8), hyper.get("weight_decay", 1e-2 if decoupled else 0.0)
    if form == "no decay":
        wd = 0.0
    if form == "swapped betas":
        b1, b2 = b2, b1
    params = [np.array(p, dtype=np.float64, copy=True) for p in params0]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    out = []
    with np.errstate(all="ignore"):
        for t, step_grads in enumerate(grads, start=1):
            for i, (p, g) in enumerate(zip(params, step_grads)):
                g = np.array(g, dtype=np.float64)
                couple = (not decoupled) != (form == "decay swapped")
                if form in ("decay twice", "decay twice, L2 first"):
                    l2 = wd * p
                    p *= 1 - lr * wd
                    g = g + (l2 if form == "decay twice, L2 first" else wd * p)
                elif couple:
                    g = g + wd * p
                elif form == "decay without lr":
                    p *= 1 - wd
                elif form != "decay after step":
                    p *= 1 - lr * wd
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                tt = {"t from 0": t - 1, "t per param": (t - 1) * len(params) + i + 1}.get(form, t)
                m_hat, v_hat = m[i] / (1 - b1 ** tt), v[i] / (1 - b2 ** tt)
                if form in ("no bias correction", "no m correction"):
                    m_hat = m[i]
                if form in ("no bias correction", "no v correction", "eps not rescaled"):
                    v_hat = v[i]
                denom = np.sqrt(v_hat + eps) if form == "eps inside" else np.sqrt(v_hat) + eps
                if form == "eps not rescaled":   # lr·sqrt(1 − β2^t)/(1 − β1^t) · m / (sqrt(v) + eps)
                    denom = denom / np.sqrt(1 - b2 ** tt)
                update = m_hat / denom
                p -= (-lr if form == "sign" else lr) * update
                if form == "decay after step" and not couple:
                    p *= 1 - lr * wd
            out.append([p.copy() for p in params])
    return out


SGD_MISTAKES = [
    ("ema", "the EMA form v = β v + (1 − β) g from v = 0: torch.optim.SGD uses v = β v + (1 − dampening) g, "
            "with the buffer started at the first gradient, undampened"),
    ("dampen first", "the buffer starts at 0, so the first gradient is dampened too: torch starts the buffer at "
                     "the first gradient itself (buf = d.copy() at the first step), without dampening"),
    ("no state", "the velocity is not kept between steps (the buffer is rebuilt every step)"),
    ("nesterov ignored", "with nesterov=True the steps are plain momentum's: either nesterov is ignored, or "
                         "d + momentum * buf uses the buffer from before this step's update; torch updates the "
                         "buffer first, then steps along d + momentum * buf"),
    ("decay after", "weight decay added after the momentum buffer: torch adds weight_decay * p to the gradient "
                    "first, and the buffer accumulates the sum"),
    ("dampening swapped", "the buffer update uses dampening * d: torch's is buf = momentum * buf + "
                          "(1 − dampening) * d"),
    ("no decay", "weight_decay is ignored: torch adds weight_decay * p to the gradient, d = g + weight_decay * p, "
                 "before the momentum buffer"),
    ("sign", "the step has the wrong sign: p -= lr * d moves against the gradient"),
]

ADAM_MISTAKES = [
    ("no bias correction", "the bias correction is missing: divide m by (1 − β1^t) and v by (1 − β2^t)"),
    ("no m correction", "m's bias correction is missing: m_hat = m / (1 − β1^t) (v's is there)"),
    ("no v correction", "v's bias correction is missing: v_hat = v / (1 − β2^t) (m's is there)"),
    ("eps not rescaled", "eps is added to sqrt(v) before v's bias correction (the paper's 'efficient' form with "
                         "ε̂ = ε): torch adds eps to sqrt(v_hat) = sqrt(v / (1 − β2^t))"),
    ("t per param", "the step count t advances once per param instead of once per step(): increment t once, "
                    "before the loop over the params (or keep one t per param)"),
    ("eps inside", "eps is inside the square root: torch divides by sqrt(v_hat) + eps"),
    ("t from 0", "the step count t starts at 0 in the bias correction (1 − β^0 = 0): increment t before using it, "
                 "so the first step has t = 1"),
    ("swapped betas", "β1 and β2 are swapped: β1 (0.9) averages the gradients, β2 (0.999) their squares"),
    ("sign", "the step has the wrong sign: p -= lr * m_hat / (sqrt(v_hat) + eps)"),
]

ADAM_DECAY_MISTAKES = [
    ("no decay", "weight_decay is ignored: torch.optim.Adam adds weight_decay * p to the gradient (L2) before "
                 "the moments"),
    ("decay swapped", "weight decay applied after the moment updates, to p (AdamW's decoupled decay): "
                      "torch.optim.Adam adds weight_decay * p to the gradient before the moments (L2)"),
]

ADAMW_DECAY_MISTAKES = [
    ("no decay", "no weight decay: torch.optim.AdamW multiplies p by (1 − lr * weight_decay) before the Adam step, "
                 "and its default weight_decay is 1e-2, not 0"),
    ("decay twice", "weight decay applied twice: AdamW decays p by (1 − lr * weight_decay) and its moments see "
                    "the gradient alone, without weight_decay * p"),
    ("decay twice, L2 first", "weight decay applied twice: AdamW decays p by (1 − lr * weight_decay) and its moments "
                              "see the gradient alone, without weight_decay * p"),
    ("decay swapped", "weight decay coupled (added to the gradient before the moments, as Adam's L2): AdamW "
                      "decouples it, p *= 1 − lr * weight_decay, before the Adam step"),
    ("decay without lr", "the decay is p *= 1 − weight_decay: torch.optim.AdamW scales it by the learning rate, "
                         "p *= 1 − lr * weight_decay"),
    ("decay after step", "the decay is applied after the Adam step: torch.optim.AdamW decays p first"),
]


# ----------------------------------------------------------------------------------------------
# the inputs


def _sequence(rng, shapes, steps, *, zeros_every=0, dead=True, scale=1.0) -> tuple:
    """Params of these shapes and `steps` gradient lists; some entries' gradients stay 0 for long runs."""
    params = [np.asarray(rng.standard_normal(s), dtype=np.float64) for s in shapes]
    grads = []
    for k in range(steps):
        step = [np.asarray(scale * rng.standard_normal(s), dtype=np.float64) for s in shapes]
        if zeros_every and k % zeros_every == zeros_every - 1:
            step = [np.zeros(s) for s in shapes]
        if dead and len(shapes) > 1 and np.size(step[1]) > 1 and 10 <= k < 10 + steps // 2:
            step[1] = np.array(step[1], copy=True)
            step[1].reshape(-1)[: np.size(step[1]) // 2] = 0.0   # half of param 1 sees no gradient for many steps
        grads.append(step)
    return params, grads


def _case(label: str, hyper: dict, params, grads, runs: int = 2) -> Case:
    return Case(label, kwargs={"hyper": hyper, "params": params, "grads": grads, "runs": runs})


def _sgd_cases() -> list:
    rng = np.random.default_rng(80_801)
    shapes = [(3, 4), (4,), (2, 3)]
    main = []
    for label, hyper, steps in [
            ("plain SGD, lr = 0.1", {"lr": 0.1}, 50),
            ("momentum 0.9", {"lr": 0.05, "momentum": 0.9}, 120),
            ("momentum 0.9, dampening 0.2", {"lr": 0.05, "momentum": 0.9, "dampening": 0.2}, 80),
            ("nesterov, momentum 0.8", {"lr": 0.05, "momentum": 0.8, "nesterov": True}, 100),
            ("momentum 0.5, weight_decay 0.01", {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.01}, 60),
            ("nesterov 0.9, weight_decay 0.1, zero gradients every 7th step",
             {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}, 200)]:
        params, grads = _sequence(rng, shapes, steps, zeros_every=7 if "zero" in label else 0)
        main.append(_case(f"{label}, {steps} steps, params {shapes}", hyper, params, grads))
    edge = []
    params, grads = _sequence(rng, [(), (5,)], 50, dead=False)
    edge.append(_case("a 0-d param and a (5,) param, momentum 0.9", {"lr": 0.1, "momentum": 0.9}, params, grads))
    params, grads = _sequence(rng, [(4, 2)], 50, scale=0.0)
    edge.append(_case("all gradients 0, weight_decay 0.5, momentum 0.9",
                      {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.5}, params, grads))
    params = [rng.standard_normal((2, 2))]
    errors = [_case("nesterov=True with momentum 0", {"lr": 0.1, "nesterov": True}, params, [], runs=1),
              _case("nesterov=True with dampening 0.5", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5,
                                                         "nesterov": True}, params, [], runs=1)]
    return grouped(main=main, edge=edge, errors=errors)


def _adam_cases(decoupled: bool) -> list:
    rng = np.random.default_rng(80_803 if decoupled else 80_802)
    shapes = [(3, 4), (6,), (2, 1, 3)]
    wd_key = 0.01 if decoupled else 0.0
    main = []
    for label, hyper, steps in [
            ("the defaults", {}, 60),
            ("lr 0.01, betas (0.8, 0.99)", {"lr": 0.01, "betas": (0.8, 0.99)}, 150),
            ("lr 0.05, eps 1e-3 (eps matters)", {"lr": 0.05, "eps": 1e-3}, 80),
            ("lr 0.01, weight_decay 0.1", {"lr": 0.01, "weight_decay": 0.1}, 120),
            ("lr 0.001, weight_decay 0, zero gradients every 5th step", {"lr": 1e-3, "weight_decay": 0.0}, 200)]:
        scale = 1e-3 if "eps" in label else 1.0
        params, grads = _sequence(rng, shapes, steps, zeros_every=5 if "zero" in label else 0, scale=scale)
        main.append(_case(f"{label}, {steps} steps", hyper, params, grads))
    edge = []
    params, grads = _sequence(rng, [(), (4,)], 50, dead=False)
    edge.append(_case("a 0-d param and a (4,) param", {"lr": 0.01, "weight_decay": 0.05}, params, grads))
    params, grads = _sequence(rng, [(3, 2)], 50, scale=0.0)
    edge.append(_case("all gradients 0, weight_decay 0.2", {"lr": 0.01, "weight_decay": 0.2}, params, grads))
    del wd_key
    return grouped(main=main, edge=edge)


def _trajectory_cases() -> list:
    rng = np.random.default_rng(80_804)

    def case(label, h, c, x0, lr, steps):
        return Case(label, kwargs={"h": np.asarray(h, dtype=np.float64), "c": np.asarray(c, dtype=np.float64),
                                   "x0": np.asarray(x0), "lr": lr, "steps": steps})

    main = [case("the ravine a = 10, b = 1 from (−2, 2), lr 0.15, 40 steps", [10.0, 1.0], [0.0, 0.0],
                 [-2.0, 2.0], 0.15, 40),
            case("D = 5, random curvatures and centre, 25 steps", rng.uniform(0.5, 3, 5), rng.standard_normal(5),
                 rng.standard_normal(5), 0.2, 25),
            case("a diverging step (lr above 2 / curvature), 12 steps", [3.0, 1.0], [1.0, -1.0], [0.5, 0.5], 0.8, 12)]
    edge = [case("D = 1, 10 steps", [2.0], [1.0], [4.0], 0.3, 10),
            case("steps = 0: only x0", [1.0, 1.0], [0.0, 0.0], [1.0, 2.0], 0.1, 0),
            case("x0 of dtype int64", [1.0, 4.0], [0.0, 0.0], np.array([3, -2]), 0.1, 8)]
    return grouped(main=main, edge=edge)


# ----------------------------------------------------------------------------------------------
# the checks


class OptimizerCheck(_Check):
    """An optimizer class against torch.optim.<exercise> on the same gradient sequences."""

    probe = "nb08.optimizer"

    def __init__(self, exercise: str, cases, mistakes) -> None:
        self.exercise, self._cases, self.mistakes = exercise, cases, mistakes

    def cases(self) -> list[Case]:
        return self._cases()

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        verdict = value_error_judgement(self, case, outcome, "should raise ValueError when built, as torch.optim.SGD "
                                        "does: Nesterov momentum needs momentum > 0 and dampening 0")
        return verdict if verdict is not None else super().judge(case, outcome)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        runs = value["runs"]
        if type(runs) is not list or len(runs) != kw["runs"]:
            return self.fail(case, "what came back could not be read (runs)")
        shapes = [np.shape(p) for p in kw["params"]]
        expected = torch_run(self.exercise, kw["hyper"], kw["params"], kw["grads"])
        for r, steps in enumerate(runs):
            problem = steps_problem(steps, shapes, len(kw["grads"]))
            if problem:
                return self.fail(case, problem)
            result = compare_steps(self.exercise, case.label, kw["hyper"], kw["params"], steps, expected)
            if not result.ok:
                hint = self._mistake(case, steps, expected) or step_hint(self.exercise, kw["hyper"], kw["params"],
                                                                           steps, expected, kw["grads"])
                if r > 0 and not hint:
                    hint = ("the first instance was right and a second, fresh one was not: state is shared between "
                            "instances (a mutable class attribute, or a default argument); create it in __init__")
                message = result.message + (f" — likely cause: {hint}" if hint else "")
                return Comparison(result.name, False, message)
        if value["grads_changed"] is not False:
            return self.fail(case, GRADS_CHANGED)
        return Comparison(self.exercise, True, f"✓ {self.name(case)}")

    def _mistake(self, case: Case, steps: list, expected: list):
        kw = case.kwargs
        flat = np.concatenate([np.asarray(p).reshape(-1) for s in steps for p in s])
        want = np.concatenate([np.asarray(p).reshape(-1) for s in expected for p in s])
        candidates = []
        for form, hint in self.mistakes:
            if self.exercise == "SGD":
                cand = _sgd_variant(kw["hyper"], kw["params"], kw["grads"], form=form)
            else:
                cand = _adam_variant(kw["hyper"], kw["params"], kw["grads"], decoupled=self.exercise == "AdamW",
                                     form=form)
            candidates.append((np.concatenate([np.asarray(p).reshape(-1) for s in cand for p in s]), hint))
        hints = [h for c, h in candidates if first_match(flat, [(c, h)], expected=want, rtol=1e-8)]
        return "; or ".join(dict.fromkeys(hints)) or None


class TrajectoryCheck(_Check):
    exercise = "trajectory"
    probe = "nb08.trajectory"

    def cases(self) -> list[Case]:
        return _trajectory_cases()

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        steps, D = int(kw["steps"]), len(kw["h"])
        torch = torch_module()
        x = torch.tensor(np.asarray(kw["x0"], dtype=np.float64), requires_grad=True)
        opt = torch.optim.SGD([x], lr=kw["lr"])
        positions = [x.detach().numpy().copy()]
        for _ in range(steps):
            with torch.no_grad():
                x.grad = torch.tensor(kw["h"]) * (x.detach() - torch.tensor(kw["c"]))
            opt.step()
            positions.append(x.detach().numpy().copy())
        expected = np.stack(positions)
        result = value["result"]
        problem = trajectory_problem(result, steps, D, x0=kw["x0"])
        if problem:
            return self.fail(case, problem)
        comparison = compare(self.name(case), result, expected, rtol=RTOL, atol=ATOL)
        if not comparison.ok:
            hint = first_match(result, trajectory_mistakes(expected), expected=expected)
            if not hint and value["grad_calls"] != steps:
                hint = f"grad_fn was called {value['grad_calls']} times for {steps} steps: call it once per step"
            if not hint and value["factory_calls"] not in ((0, 1) if steps == 0 else (1,)):
                hint = f"optimizer_factory was called {value['factory_calls']} times: build the optimizer once"
            return Comparison(comparison.name, False, comparison.message + (f" — likely cause: {hint}" if hint else ""))
        if value["x0_changed"] is not False:
            return self.fail(case, "the positions are right, but x0 was changed in place: optimise a float64 copy")
        if value["grad_calls"] != steps:
            return self.fail(case, f"grad_fn was called {value['grad_calls']} times for {steps} steps: call it "
                                   f"once per step")
        if value["factory_calls"] not in ((0, 1) if steps == 0 else (1,)):
            return self.fail(case, f"optimizer_factory was called {value['factory_calls']} times: build the "
                                   f"optimizer once, over [x]")
        return comparison


CHECKS = by_exercise([
    OptimizerCheck("SGD", _sgd_cases, SGD_MISTAKES),
    OptimizerCheck("Adam", lambda: _adam_cases(False), ADAM_MISTAKES + ADAM_DECAY_MISTAKES),
    OptimizerCheck("AdamW", lambda: _adam_cases(True), ADAM_MISTAKES + ADAMW_DECAY_MISTAKES),
    TrajectoryCheck(),
])
