"""Hidden checks of notebook 10, the NumPy MLP on the digits. Never shipped to students.

The contract is ``course.mlp``'s (the visible cells run the same ``*_problem`` functions); the
references are PyTorch's in float64 (``F.linear``, ``torch.relu``, ``F.cross_entropy``, autograd,
``torch.optim.SGD``). The cases are data, built from fixed seeds with ``course.mlp.random_params``:

* ``init_mlp``: keys, shapes, zero biases; the mean, variance and normal shape of every W of a large
  draw, per scheme, within 6 standard errors of the sampling noise (a correct draw misses with a
  probability below 1e-8); the seeds are data (the probe builds each generator); the same seed gives
  the same params, another seed others; ValueError for an unknown scheme or fewer than two sizes.
* ``mlp_forward``, ``mlp_backward``, ``predict``: depth 1 to 4, C = 2 and 10, a batch of one, an empty
  batch, logits of about 1e4, a pre-activation of exactly 0 (the ReLU's derivative there is 0, as
  torch's). ``mlp_backward`` gets its cache from the student's own ``mlp_forward``.
* ``softmax_cross_entropy``: logits of ±1e4, equal logits, C = 2, N = 1, int32 labels; quiet.
* ``sgd_momentum_step``: 12 to 60 steps against torch.optim.SGD(lr, momentum); the velocity must be
  torch's momentum buffer; a separate group checks that the arrays are updated in place.
* ``train_mlp``: judged from what it returns, outside the student's process. With the notebook's
  defaults on the digits, the test accuracy of the returned params (computed here with torch's
  forward, on a test set the student's process never sees), averaged over three seeds, must reach
  97 % (a correct implementation averages about 98.3 % over 60 seeds, each run at least 97.0 %; a mean
  of three spreads by 0.27 %, so 97 % lies more than four spreads below). Full-batch runs
  (batch_size >= N, so the order of the rows does not matter) are replayed in torch from the
  student's own initial params (read by a call with lr = 0 and the same seed): the loss of every
  epoch and the final params must agree to 1e-8. With lr = 0 every epoch's loss is the loss of the
  whole set (the mean over the epoch, not one batch's; with a smaller last batch, each batch
  weighted by its size). init_scale multiplies the initial W; the start (lr = 0) has init_mlp's
  Kaiming statistics; the same seed gives the same run, another seed another, and the batches are
  shuffled, in a new order every epoch (3 samples in batches of one: the final params must not be
  torch's replay of any one order repeated). A run whose logits overflow must stop at once with
  diverged = True. No check depends on the order in which the student draws from rng: the replays
  start from the student's own initial params.

Warnings are not penalized in ``train_mlp``: a run that diverges overflows by nature, and the probe
catches the warnings so that none reaches the grader's output; the loss function itself, whose
contract is to be stable, must stay quiet on the cases it is given.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from course.checks import Comparison
from course.digits import load_digits
from course.losses import first_match
from course.mlp import _torch_momentum as torch_momentum  # the reference, kept out of course.mlp's API
from course.mlp import (DEFAULTS, TARGET_ACCURACY, accuracy, backward_problem, digits_run_problem, epoch_loss_problem,
                        forward_problem, history_problem, in_place_problem, init_problem, labels_problem, layer_shapes,
                        loss_problem, momentum_problem, new_order_problem, params_problem, random_params,
                        shuffle_problem, train_replay_problem)

from .framework import EDGE, MAIN, Case, by_exercise, grouped
from .nb03_manual_backprop import Malformed, _Check, _field, _record_problem, _value
from .nb05_activations import _watched

NOTEBOOK = "10_final_boss"
IN_PLACE = "updates in place"
#: the seeds of the end-to-end runs on the digits (the visible cell uses 0, 1 and 2)
DIGITS_SEEDS = (100, 101, 102)


# ----------------------------------------------------------------------------------------------
# init_mlp


def _init_cases() -> list:
    def case(label, aspect, *draws):
        return Case(label, kwargs={"aspect": aspect, "draws": [
            {"sizes": sizes, "scheme": scheme, "seed": seed} for sizes, scheme, seed in draws]})

    main = [case("[5, 4, 3], kaiming: the keys, shapes and zero biases", "structure", ([5, 4, 3], "kaiming", 1001)),
            case("[3, 7, 7, 7, 2], xavier: four layers", "structure", ([3, 7, 7, 7, 2], "xavier", 1002)),
            case("the default scheme is kaiming: [400, 300]", "distribution", ([400, 300], None, 1003)),
            case("kaiming, [500, 300, 200]", "distribution", ([500, 300, 200], "kaiming", 1004)),
            case("kaiming, [1000, 64, 10]", "distribution", ([1000, 64, 10], "kaiming", 1005)),
            case("xavier, [300, 100, 500]", "distribution", ([300, 100, 500], "xavier", 1006)),
            case("xavier, [200, 600, 50]", "distribution", ([200, 600, 50], "xavier", 1007)),
            case("the same seed twice", "same seed", ([50, 40, 30], "kaiming", 1008), ([50, 40, 30], "kaiming", 1008)),
            case("two different seeds", "other seed", ([50, 40, 30], "xavier", 1009), ([50, 40, 30], "xavier", 1010))]
    edge = [case("one layer [784, 10]: a linear model", "distribution", ([784, 10], "kaiming", 1011)),
            case("layer_sizes as a tuple (64, 32, 10)", "distribution", ((64, 32, 10), "xavier", 1012)),
            case("widths of 1: [1, 1, 1]", "structure", ([1, 1, 1], "kaiming", 1013))]
    errors = [case("scheme='lecun'", "error", ([4, 3], "lecun", 1014)),
              case("scheme='he'", "error", ([4, 3], "he", 1015)),
              case("layer_sizes [5]: one size", "error", ([5], "kaiming", 1016)),
              case("layer_sizes []: no size", "error", ([], None, 1017))]
    return grouped(main=main, edge=edge, errors=errors)


class InitCheck(_Check):
    exercise = "init_mlp"
    probe = "nb10.init"

    def cases(self) -> list[Case]:
        return _init_cases()

    def judge_value(self, case: Case, value: Any) -> Comparison:
        draws = _field(value, "draws")
        specs = case.kwargs["draws"]
        if type(draws) is not list or len(draws) != len(specs):
            raise Malformed("expected one record per draw")
        aspect = case.kwargs["aspect"]
        record = _field(draws[0], "result")
        if aspect == "error":
            if record.get("kind") == "raised" and record.get("error") == "ValueError":
                return Comparison(self.exercise, True, f"✓ {self.name(case)}: ValueError")
            if record.get("kind") == "raised":
                return self.fail(case, f"should raise ValueError, but raised {record.get('error')}: "
                                       f"{record.get('message')}")
            return self.fail(case, "should raise ValueError, but returned — likely cause: check the scheme against "
                                   "'kaiming' and 'xavier', and that there are at least two sizes, before drawing")
        results = []
        for spec, draw in zip(specs, draws):
            record = _field(draw, "result")
            what = f"init_mlp({list(spec['sizes'])}, rng" + (f", scheme={spec['scheme']!r})" if spec["scheme"] else ")")
            problem = _record_problem(what, record)
            if problem:
                if "ValueError" in problem:
                    problem += " on valid arguments"
                return self.fail(case, problem)
            scheme = spec["scheme"] or "kaiming"
            problem = init_problem(_value(record), spec["sizes"], scheme, statistics=aspect == "distribution")
            if problem:
                return self.fail(case, problem)
            if _field(draw, "rng_used") is False:
                return self.fail(case, "nothing was drawn from the rng argument — likely cause: the weights came from "
                                       "np.random.* (the global state) or from a generator made inside the function")
            results.append(_value(record))
        if aspect == "same seed":
            if any(not np.array_equal(results[0][k], results[1][k]) for k in results[0]):
                return self.fail(case, "two generators with the same seed gave different params — likely cause: "
                                       "draw every number from rng, not from np.random")
        if aspect == "other seed" and np.array_equal(results[0]["W1"], results[1]["W1"]):
            return self.fail(case, "two different seeds gave the same W1 — likely cause: the rng argument is ignored")
        return Comparison(self.exercise, True, f"✓ {self.name(case)}")


# ----------------------------------------------------------------------------------------------
# mlp_forward, mlp_backward, predict: networks and batches as data


def _net_case(label: str, sizes: list, N: int, seed: int, *, scale: float = 1.0, x_scale: float = 1.0,
              zero_row: bool = False, dlogits: bool = False) -> Case:
    rng = np.random.default_rng(seed)
    params = random_params(sizes, rng, scale=scale)
    X = x_scale * rng.standard_normal((N, sizes[0]))
    if zero_row:   # a sample whose first pre-activations are exactly 0: the ReLU's derivative at 0
        X[0] = 0.0
        params["b1"][: sizes[1] // 2] = 0.0
    kwargs = {"params": params, "X": X}
    if dlogits:
        kwargs["dlogits"] = rng.standard_normal((N, sizes[-1])) / max(N, 1)
    return Case(label, kwargs=kwargs)


def _net_cases(base: int, *, dlogits: bool = False, predict: bool = False) -> list:
    s = 3.0 if predict else 1.0
    main = [_net_case("one layer [4, 3], N = 5: a linear model", [4, 3], 5, base + 1, scale=s, dlogits=dlogits),
            _net_case("two layers [6, 5, 4], N = 7", [6, 5, 4], 7, base + 2, scale=s, dlogits=dlogits),
            _net_case("three layers [5, 8, 8, 10], N = 6, C = 10", [5, 8, 8, 10], 6, base + 3, scale=s,
                      dlogits=dlogits),
            _net_case("four layers [3, 7, 7, 7, 2], N = 9, C = 2", [3, 7, 7, 7, 2], 9, base + 4, scale=s,
                      dlogits=dlogits),
            _net_case("the digits' shape [64, 32, 10], N = 16", [64, 32, 10], 16, base + 5, scale=s, dlogits=dlogits),
            _net_case("large values: X of scale 100, W of scale 10", [6, 12, 4], 8, base + 6, scale=10.0,
                      x_scale=100.0, dlogits=dlogits)]
    edge = [_net_case("a batch of one, N = 1", [5, 6, 3], 1, base + 7, scale=s, dlogits=dlogits),
            _net_case("one input feature, D = 1", [1, 4, 3], 6, base + 8, scale=s, dlogits=dlogits),
            _net_case("a sample whose pre-activations are exactly 0", [4, 6, 3], 5, base + 9, scale=s, zero_row=True,
                      dlogits=dlogits)]
    if not dlogits:
        edge.append(_net_case("an empty batch, N = 0", [4, 5, 3], 0, base + 10, scale=s))
    return grouped(main=main, edge=edge)


class ForwardCheck(_Check):
    exercise = "mlp_forward"
    probe = "nb10.forward"

    def cases(self) -> list[Case]:
        return _net_cases(10_200)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        pair = _field(value, "pair")
        returned = (value.get("logits"), None) if pair is True else _field(value, "value")
        problem = forward_problem(returned, kw["params"], kw["X"])
        if problem:
            return self.fail(case, problem)
        if value.get("changed") is not False:
            return self.fail(case, "the logits are right, but params or X was changed in place: compute new arrays")
        return Comparison(self.exercise, True, f"✓ {self.name(case)}")


class PredictCheck(_Check):
    exercise = "predict"
    probe = "nb05.watched"

    def cases(self) -> list[Case]:
        return [Case(c.label, args=(c.kwargs["params"], c.kwargs["X"]), group=c.group)
                for c in _net_cases(10_600, predict=True)]

    def judge_value(self, case: Case, value: Any) -> Comparison:
        result, _, changed = _watched(value)
        params, X = case.args
        problem = labels_problem(result, params, X)
        if problem:
            return self.fail(case, problem)
        if changed:
            return self.fail(case, "the labels are right, but params or X was changed in place")
        return Comparison(self.exercise, True, f"✓ {self.name(case)}")


def _numpy_backward_mistakes(params: dict, X: np.ndarray, dlogits: np.ndarray) -> list:
    """(grads, diagnosis) of mistakes that torch's autograd does not express, in NumPy (judge side only)."""
    L = len(params) // 2
    inputs, H = [], X
    for l in range(1, L + 1):
        inputs.append(H)
        Z = H @ params[f"W{l}"].T + params[f"b{l}"]
        H = np.maximum(Z, 0.0) if l < L else Z
    grads, dZ = {}, dlogits * (H > 0)   # the ReLU mask applied to the logits too
    for l in range(L, 0, -1):
        grads[f"W{l}"] = dZ.T @ inputs[l - 1]
        grads[f"b{l}"] = dZ.sum(axis=0)
        if l > 1:
            dZ = (dZ @ params[f"W{l}"]) * (inputs[l - 1] > 0)
    return [(grads, "a ReLU mask on dlogits: the last layer has no ReLU, so dZ_L = dlogits as it is")]


class BackwardCheck(_Check):
    exercise = "mlp_backward"
    probe = "nb10.backward"

    def cases(self) -> list[Case]:
        return _net_cases(10_400, dlogits=True)

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        forward = _field(value, "forward")
        if forward == "missing":
            return self.fail(case, "needs your mlp_forward (for the cache), and none was found in the notebook")
        if forward == "no pair":
            return self.fail(case, "needs the cache of your mlp_forward, which did not return the pair (logits, cache)")
        if forward != "ok":
            problem = _record_problem("your mlp_forward (which gives the cache)", forward)
            return self.fail(case, problem or "your mlp_forward failed")
        record = _field(value, "grads")
        problem = _record_problem("mlp_backward", record)
        if problem:
            return self.fail(case, problem)
        grads = _value(record)
        problem = backward_problem(grads, kw["params"], kw["X"], kw["dlogits"])
        if problem:
            if "likely cause" not in problem and type(grads) is dict:
                candidates = _numpy_backward_mistakes(kw["params"], kw["X"], kw["dlogits"])
                for candidate, hint in candidates:
                    if all(k in grads and isinstance(grads[k], np.ndarray) and grads[k].shape == v.shape
                           and np.allclose(grads[k], v, rtol=1e-8, atol=1e-12) for k, v in candidate.items()):
                        problem += f" — likely cause: {hint}"
                        break
            return self.fail(case, problem)
        if value.get("changed") is not False:
            return self.fail(case, "the gradients are right, but params or dlogits was changed in place")
        return Comparison(self.exercise, True, f"✓ {self.name(case)}")


# ----------------------------------------------------------------------------------------------
# softmax_cross_entropy


def _loss_cases() -> list:
    rng = np.random.default_rng(10_300)
    big = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, -1e4], [-1e4, 1e4, 0.0], [800.0, 799.0, -5.0], [-750.0, -751.0, 0.0]])
    equal = rng.standard_normal((5, 10))
    equal[2] = 0.7
    main = [("(N, C) = (8, 10), targets at every class", rng.standard_normal((8, 10)) * 2, np.arange(8) % 10),
            ("C = 2, N = 6", rng.standard_normal((6, 2)), np.array([0, 1, 1, 0, 1, 0])),
            ("logits of ±1e4 and 800, right and confidently wrong", big, np.array([0, 2, 2, 1, 0])),
            ("(N, C) = (7, 10), logits with std 30", 30 * rng.standard_normal((7, 10)), rng.integers(0, 10, 7)),
            ("a row of equal logits", equal, np.array([0, 9, 4, 2, 7]))]
    edge = [("N = 1, C = 10, target 9", rng.standard_normal((1, 10)), np.array([9])),
            ("labels of dtype int32", rng.standard_normal((6, 4)), np.array([3, 0, 1, 2, 3, 1], dtype=np.int32)),
            ("C = 1: one class, the loss is 0", rng.standard_normal((3, 1)), np.zeros(3, dtype=np.int64))]
    return grouped(main=[Case(label, args=(z, y)) for label, z, y in main],
                   edge=[Case(label, args=(z, y)) for label, z, y in edge])


class LossCheck(_Check):
    exercise = "softmax_cross_entropy"
    probe = "nb05.watched"

    def cases(self) -> list[Case]:
        return _loss_cases()

    def judge_value(self, case: Case, value: Any) -> Comparison:
        result, caught, changed = _watched(value)
        logits, y = case.args
        problem = loss_problem(result, logits, y, caught)
        if problem:
            return self.fail(case, problem)
        if changed:
            return self.fail(case, "the values are right, but logits or y was changed in place")
        return Comparison(self.exercise, True, f"✓ {self.name(case)}")


# ----------------------------------------------------------------------------------------------
# sgd_momentum_step


def _momentum_variant(params0: dict, grads: list, lr: float, momentum: float, form: str) -> list:
    """The params after each step under a typical mistake (judge side only)."""
    params = {k: np.array(v, copy=True) for k, v in params0.items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    out = []
    for step in grads:
        for k in params:
            g = step[k]
            if form == "ema":
                velocity[k] = momentum * velocity[k] + (1 - momentum) * g
                params[k] = params[k] - lr * velocity[k]
            elif form == "update after":
                params[k] = params[k] - lr * velocity[k]
                velocity[k] = momentum * velocity[k] + g
            elif form == "no velocity":
                params[k] = params[k] - lr * g
            elif form == "nesterov":
                velocity[k] = momentum * velocity[k] + g
                params[k] = params[k] - lr * (g + momentum * velocity[k])
            elif form == "sign":
                velocity[k] = momentum * velocity[k] + g
                params[k] = params[k] + lr * velocity[k]
            elif form == "lr in velocity, minus":
                velocity[k] = momentum * velocity[k] - lr * g
                params[k] = params[k] - velocity[k]
        out.append({k: v.copy() for k, v in params.items()})
    return out


MOMENTUM_MISTAKES = [
    ("ema", "the EMA form v = β v + (1 − β) g: torch.optim.SGD uses v = β v + g"),
    ("update after", "the params step with the velocity of the previous step: update v first, then p -= lr · v"),
    ("no velocity", "the velocity is not used: p -= lr · v, with v = momentum · v + g kept across the steps"),
    ("nesterov", "that is Nesterov's step, p -= lr (g + β v): torch.optim.SGD's default steps along v"),
    ("sign", "the step has the wrong sign: p -= lr · v"),
    ("lr in velocity, minus", "v = β v − lr · g, then p -= v: the sign of the step is flipped (p += v in that form)"),
]


def _momentum_case(label: str, sizes: list, steps: int, lr: float, momentum: float, seed: int,
                   zeros_every: int = 0) -> Case:
    rng = np.random.default_rng(seed)
    params = random_params(sizes, rng)
    grads = []
    for k in range(steps):
        step = {name: rng.standard_normal(v.shape) for name, v in params.items()}
        if zeros_every and k % zeros_every == zeros_every - 1:
            step = {name: np.zeros(v.shape) for name, v in params.items()}
        grads.append(step)
    return Case(label, kwargs={"params": params, "grads": grads, "lr": lr, "momentum": momentum})


class MomentumCheck(_Check):
    exercise = "sgd_momentum_step"
    probe = "nb10.step"
    weights = {MAIN: 0.7, EDGE: 0.1, IN_PLACE: 0.2}

    def cases(self) -> list[Case]:
        main = [_momentum_case("lr 0.1, momentum 0.9, 20 steps, layers [4, 3, 2]", [4, 3, 2], 20, 0.1, 0.9, 10_501),
                _momentum_case("lr 0.05, momentum 0.5, 30 steps, layers [5, 4, 4, 3]", [5, 4, 4, 3], 30, 0.05, 0.5,
                               10_502),
                _momentum_case("lr 0.01, momentum 0.99, 60 steps, every 7th gradient 0", [3, 6, 2], 60, 0.01, 0.99,
                               10_503, zeros_every=7)]
        edge = [_momentum_case("momentum 0: plain SGD, 12 steps", [4, 3, 2], 12, 0.2, 0.0, 10_504),
                _momentum_case("a single step", [6, 5, 4], 1, 0.3, 0.9, 10_505)]
        in_place = [_momentum_case("the caller's arrays are updated in place, 5 steps", [4, 3, 2], 5, 0.1, 0.9,
                                   10_506)]
        cases = grouped(main=main, edge=edge)
        return cases + [Case(c.label, kwargs=c.kwargs, group=IN_PLACE) for c in in_place]

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        for key in ("params", "velocity", "same_params", "same_velocity", "grads_changed"):
            _field(value, key)
        if type(value["params"]) is not list or len(value["params"]) != len(kw["grads"]) or \
                type(value["velocity"]) is not list or len(value["velocity"]) != len(kw["grads"]):
            raise Malformed("expected one record per step")
        problem = momentum_problem(value, kw["params"], kw["grads"], kw["lr"], kw["momentum"])
        if problem:
            hint = self._mistake(value, kw) if problem.startswith("✗ params[") else None
            if hint:   # a known mistake, recognised from all the steps, says more than the first step's ratio
                problem = problem.split(" — likely cause: ")[0] + f" — likely cause: {hint}"
            return self.fail(case, problem)
        if case.group == IN_PLACE:
            problem = in_place_problem(value)
            if problem:
                return self.fail(case, problem)
        return Comparison(self.exercise, True, f"✓ {self.name(case)}")

    def _mistake(self, value: dict, kw: dict):
        keys = list(kw["params"])
        try:
            got = np.concatenate([np.asarray(s[k], dtype=np.float64).reshape(-1) for s in value["params"] for k in keys])
        except Exception:
            return None
        want = np.concatenate([s[k].reshape(-1) for s in torch_momentum(kw["params"], kw["grads"], kw["lr"],
                                                                        kw["momentum"])[0] for k in keys])
        candidates = []
        for form, hint in MOMENTUM_MISTAKES:
            steps = _momentum_variant(kw["params"], kw["grads"], kw["lr"], kw["momentum"], form)
            candidates.append((np.concatenate([s[k].reshape(-1) for s in steps for k in keys]), hint))
        return first_match(got, candidates, expected=want, rtol=1e-8)


# ----------------------------------------------------------------------------------------------
# train_mlp


def _small_data(seed: int, N: int, D: int, C: int) -> tuple:
    """A small classification problem: labels from a random linear rule, so that training helps."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    y = np.argmax(X @ rng.standard_normal((D, C)), axis=1).astype(np.int64)
    return X, y


def _call(seed: int, sizes: list, lr: float, epochs: int, batch_size: int, *, val: bool = False,
          momentum: float = 0.9, init_scale: float = 1.0) -> dict:
    return {"seed": seed, "sizes": sizes, "lr": lr, "epochs": epochs, "batch_size": batch_size, "val": val,
            "options": {"momentum": momentum, "init_scale": init_scale}}


def _train_case(label: str, kind: str, data: dict, calls: list) -> Case:
    return Case(label, kwargs={"kind": kind, "data": data, "calls": calls})


def _train_cases() -> list:
    d = load_digits()
    digits = {"X": d.X_train, "y": d.y_train, "X_val": d.X_val, "y_val": d.y_val}
    D = DEFAULTS
    e2e = [_call(seed, list(D["layer_sizes"]), D["lr"], D["epochs"], D["batch_size"], val=True,
                 momentum=D["momentum"], init_scale=D["init_scale"]) for seed in DIGITS_SEEDS]
    X, y = _small_data(10_701, 88, 6, 3)
    small = {"X": X[:48], "y": y[:48], "X_val": X[48:], "y_val": y[48:]}
    X2, y2 = _small_data(10_702, 30, 4, 3)
    small2 = {"X": X2, "y": y2}
    X3, y3 = _small_data(10_703, 20, 5, 4)
    small3 = {"X": X3, "y": y3}
    X4, y4 = _small_data(10_704, 1, 3, 2)
    tiny = {"X": X4, "y": y4}
    few = {"X": np.random.default_rng(10_705).standard_normal((3, 4)), "y": np.array([0, 1, 1])}
    X6, y6 = _small_data(10_706, 8, 200, 3)
    wide = {"X": X6, "y": y6}

    def replay(seed, sizes, lr, epochs, batch, **options):
        return [_call(seed, sizes, 0.0, epochs, batch, **options), _call(seed, sizes, lr, epochs, batch, **options)]

    main = [
        _train_case(f"the digits with the notebook's defaults, seeds {', '.join(map(str, DIGITS_SEEDS))}: the test "
                    f"accuracy of the returned params", "digits", digits, e2e),
        _train_case("full batch N = 48, layers [6, 10, 3], lr 0.2, momentum 0.9, 15 epochs, with validation data",
                    "replay", small, replay(7, [6, 10, 3], 0.2, 15, 48, val=True)),
        _train_case("full batch N = 30, layers [4, 8, 8, 3], lr 0.1, momentum 0, init_scale 0.5, 10 epochs",
                    "replay", small2, replay(8, [4, 8, 8, 3], 0.1, 10, 30, momentum=0.0, init_scale=0.5)),
        _train_case("lr = 0, N = 48 in 6 batches of 8: each epoch's loss is the mean over all 48", "epoch loss",
                    small, [_call(9, [6, 10, 3], 0.0, 3, 8)]),
        _train_case("init_scale 0.25 against 1 (lr = 0, the same seed)", "init scale", small,
                    [_call(10, [6, 10, 3], 0.0, 1, 48), _call(10, [6, 10, 3], 0.0, 1, 48, init_scale=0.25)]),
        _train_case("batches of 8 shuffled with rng: the same seed twice, another seed", "shuffle", small,
                    [_call(11, [6, 10, 3], 0.1, 4, 8), _call(11, [6, 10, 3], 0.1, 4, 8),
                     _call(12, [6, 10, 3], 0.1, 4, 8), _call(11, [6, 10, 3], 0.0, 4, 8)]),
    ]
    edge = [
        _train_case("init_scale 1e200: the logits overflow at once", "diverge", small,
                    [_call(13, [6, 16, 16, 3], 0.01, 10, 24, init_scale=1e200)]),
        _train_case("batch_size 64 > N = 20: one batch per epoch", "replay", small3, replay(14, [5, 7, 4], 0.3, 8, 64)),
        _train_case("a training set of one sample, N = 1", "replay", tiny, replay(15, [3, 4, 2], 0.5, 5, 1)),
        _train_case("lr = 0, N = 48 in batches of 10, the last of 8: each batch's loss weighted by its size",
                    "epoch loss", small, [_call(16, [6, 10, 3], 0.0, 3, 10)]),
        _train_case("N = 3 in batches of 1, 8 epochs: a new order every epoch", "new order", few,
                    [_call(17, [4, 5, 2], 0.0, 8, 1), _call(17, [4, 5, 2], 0.5, 8, 1)]),
        _train_case("the initial params are init_mlp's Kaiming draw (lr = 0, layers [200, 100, 3])", "start", wide,
                    [_call(18, [200, 100, 3], 0.0, 1, 8)]),
    ]
    return grouped(main=main, edge=edge)


class TrainCheck(_Check):
    exercise = "train_mlp"
    probe = "nb10.train"

    def cases(self) -> list[Case]:
        return _train_cases()

    def judge_value(self, case: Case, value: Any) -> Comparison:
        kw = case.kwargs
        runs = _field(value, "runs")
        if type(runs) is not list or len(runs) != len(kw["calls"]):
            raise Malformed("expected one record per call")
        results = []
        for call, run in zip(kw["calls"], runs):
            record = _field(run, "result")
            problem = _record_problem(f"train_mlp (seed {call['seed']}, lr {call['lr']:g})", record)
            if problem:
                if "ValueError" in problem and call["lr"] == 0:
                    problem += " — lr = 0 is allowed: the params then stay at their initial values"
                return self.fail(case, problem)
            if _field(run, "changed") is not False:
                return self.fail(case, "X or y was changed in place: leave the caller's data as it is (X[idx] makes a "
                                       "new array; shuffling X itself does not)")
            results.append(_value(record))
        judge = getattr(self, "_" + kw["kind"].replace(" ", "_"))
        problem = judge(kw, results)
        if problem:
            return self.fail(case, problem)
        return Comparison(self.exercise, True, f"✓ {self.name(case)}")

    @staticmethod
    def _pair(value: Any) -> tuple:
        if type(value) not in (tuple, list) or len(value) != 2:
            raise Malformed("train_mlp did not return the pair (params, history)")
        return value[0], value[1]

    def _digits(self, kw: dict, results: list):
        d = load_digits()
        accuracies = []
        for call, value in zip(kw["calls"], results):
            problem = digits_run_problem(value, call["sizes"], call["epochs"], d.X_val, d.y_val)
            if problem:
                return f"seed {call['seed']}: {problem}"
            accuracies.append(accuracy(value[0], d.X_test, d.y_test))
        mean = float(np.mean(accuracies))
        if mean >= TARGET_ACCURACY:
            return None
        text = (f"test accuracy {mean:.2%} on average ({', '.join(f'{a:.2%}' for a in accuracies)}), below "
                f"{TARGET_ACCURACY:.0%}")
        if mean < 0.2:
            text += (" — likely cause: the network does not learn (chance is 10%): the full-batch cases compare your "
                     "training with torch's step by step and say where it parts")
        return text

    def _replay(self, kw: dict, results: list):
        start, _ = self._pair(results[0])
        problem = params_problem(start, layer_shapes(kw["calls"][0]["sizes"]), "the params returned with lr = 0")
        if problem:
            return problem
        call = kw["calls"][1]
        data = kw["data"]
        return train_replay_problem(results[1], start, data["X"], data["y"], call["sizes"], call["lr"], call["epochs"],
                                    call["options"]["momentum"], data.get("X_val") if call["val"] else None,
                                    data.get("y_val") if call["val"] else None)

    def _epoch_loss(self, kw: dict, results: list):
        call = kw["calls"][0]
        return epoch_loss_problem(results[0], kw["data"]["X"], kw["data"]["y"], call["sizes"], call["epochs"],
                                  call["batch_size"])

    def _init_scale(self, kw: dict, results: list):
        shapes = layer_shapes(kw["calls"][0]["sizes"])
        (one, _), (scaled, _) = self._pair(results[0]), self._pair(results[1])
        for value in (one, scaled):
            problem = params_problem(value, shapes)
            if problem:
                return problem
        factor = kw["calls"][1]["options"]["init_scale"]
        for k in shapes:
            if k.startswith("b"):
                if np.any(scaled[k] != 0):
                    return f"{k} is not zero at the start — likely cause: the biases start at zero (init_mlp)"
                continue
            if not np.allclose(scaled[k], factor * one[k], rtol=1e-12, atol=0.0):
                with np.errstate(all="ignore"):
                    ratio = float(np.median(scaled[k] / one[k]))
                known = [(1.0, "init_scale is ignored"),
                         (factor ** 2, "init_scale is applied twice (or squared)"),
                         (float(np.sqrt(factor)), "init_scale multiplies the variance; it multiplies the weights")]
                hints = [h for r, h in known if abs(ratio - r) <= 1e-6 * r]
                return (f"with init_scale {factor} the initial {k} should be {factor} times the one with init_scale 1 "
                        f"(the same seed); it is {ratio:.4g} times" + (f" — likely cause: {hints[0]}" if hints else ""))
        return None

    def _shuffle(self, kw: dict, results: list):
        call, data = kw["calls"][0], kw["data"]
        for value in results:
            problem = history_problem(self._pair(value)[1], call["epochs"], False)[0]
            if problem:
                return problem
        return shuffle_problem(results, data["X"], data["y"], call["sizes"], call["lr"], call["epochs"],
                               call["batch_size"], call["options"]["momentum"])

    def _new_order(self, kw: dict, results: list):
        call, data = kw["calls"][1], kw["data"]
        return new_order_problem(results, data["X"], data["y"], call["sizes"], call["lr"], call["epochs"],
                                 call["options"]["momentum"])

    def _start(self, kw: dict, results: list):
        call = kw["calls"][0]
        params, _ = self._pair(results[0])
        problem = init_problem(params, call["sizes"], "kaiming")
        if problem:
            return (f"{problem} (the params returned with lr = 0 are the start: train_mlp begins with "
                    f"init_mlp(layer_sizes, rng), the default scheme, Kaiming)")
        return None

    def _diverge(self, kw: dict, results: list):
        _, history = self._pair(results[0])
        problem, _ = history_problem(history, kw["calls"][0]["epochs"], False, diverged=True)
        return problem


CHECKS = by_exercise([
    InitCheck(),
    ForwardCheck(),
    LossCheck(),
    BackwardCheck(),
    MomentumCheck(),
    PredictCheck(),
    TrainCheck(),
])
