"""Checks of the MLP exercises (notebook 10): one contract for the visible and the hidden checks.

The network is Linear -> ReLU -> ... -> Linear. Its parameters are a dict of float64 NumPy arrays
``{"W1", "b1", ..., "WL", "bL"}``, W_l in PyTorch's layout (out, in), b_l of shape (out,): for layer
sizes [D, H1, ..., C], W1 is (H1, D) and WL is (C, H_{L-1}). The exercises return:

* ``init_mlp(layer_sizes, rng, scheme)``: such a dict with exactly those keys, every W_l drawn from
  N(0, 2 / fan_in) ("kaiming") or N(0, 2 / (fan_in + fan_out)) ("xavier") and every b_l zeros;
  ValueError for an unknown scheme or fewer than two sizes;
* ``mlp_forward(params, X)``: the pair (logits (N, C), cache), a tuple or a list; logits a float64
  array (a float64 tensor also does); the cache is the student's own business;
* ``softmax_cross_entropy(logits, y)``: the pair (loss, dlogits): the mean cross-entropy as a number
  (a Python float; a NumPy float64, a 0-d float64 array or tensor also do) and its gradient with
  respect to the logits, a float64 array (N, C); quiet (no overflow warning) for logits of ±1e4;
* ``mlp_backward(params, cache, dlogits)``: a dict with the keys and shapes of params, float64;
* ``sgd_momentum_step(params, grads, velocity, lr, momentum)``: returns nothing that matters;
  updates, in place, every params[k] and velocity[k] array (the same array objects, new values) as
  ``torch.optim.SGD([...], lr, momentum)`` does: v = momentum · v + g (velocity starts at zeros, so
  the first step has v = g, as torch's buffer), then p -= lr · v. velocity[k] equals torch's
  momentum buffer (with momentum 0 only the params are compared). The grads are left as they are;
* ``predict(params, X)``: the labels argmax of the logits, an integer array (N,);
* ``train_mlp(...)``: (params, history), see :data:`HISTORY_CONTRACT`.

Every value is compared with PyTorch in float64 (``F.linear``, ``torch.relu``, ``F.cross_entropy``,
autograd and ``torch.optim.SGD``), to 1e-10 relative; an absolute floor scales with the size of the
terms summed. This module holds that contract once:

* the ``_torch_*`` functions are the references (torch in float64): internal to the checks, not
  part of the course's API (the exercises are NumPy by hand; the notebook compares them with torch);
* :func:`plain_form` turns a returned object into the plain data the grader's probe hands over;
* the ``*_problem`` functions say why plain data breaks the contract, with the likely cause when
  a reference variant (computed with torch) explains it;
* the ``check_*`` functions are what the visible test cells run.

NumPy and the standard library at import time; torch is imported inside the functions that need it.
Nothing here implements an exercise: the references are PyTorch's.
"""
from __future__ import annotations

import itertools
import math
import re
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .checks import CheckFailed, Comparison, compare, compare_scalar, format_shape
from .elementwise import quiet_call, result_form
from .losses import array_problem, first_match, scalar_problem, warnings_hint

__all__ = ["RTOL", "DEFAULTS", "TARGET_ACCURACY", "SCHEMES", "HISTORY_CONTRACT", "param_names", "layer_shapes",
           "plain_form", "random_params", "accuracy", "params_problem", "init_problem", "forward_problem",
           "loss_problem", "backward_problem", "momentum_problem", "labels_problem", "history_problem", "check_init_mlp",
           "check_forward", "check_loss", "check_backward", "check_momentum_step", "check_predict",
           "check_train_replay", "check_train_epoch_loss", "check_train_shuffle", "check_train_new_order",
           "check_divergence", "check_digits_accuracy"]

#: values are compared to 1e-10 relative (see :func:`_atol` for the absolute floor)
RTOL = 1e-10

#: the notebook's default hyperparameters of ``train_mlp`` on the digits (the hidden checks, the
#: dashboard and the benchmark use the same)
DEFAULTS = {"layer_sizes": (64, 128, 10), "lr": 0.05, "epochs": 20, "batch_size": 32, "momentum": 0.9,
            "init_scale": 1.0}
#: the test accuracy that train_mlp with DEFAULTS must reach on the digits, averaged over three seeds
TARGET_ACCURACY = 0.97

#: scheme -> (the variance of W_l as a function of (fan_in, fan_out), the formula in words)
SCHEMES = {"kaiming": (lambda fan_in, fan_out: 2.0 / fan_in, "Kaiming (He): N(0, 2 / fan_in)"),
           "xavier": (lambda fan_in, fan_out: 2.0 / (fan_in + fan_out), "Xavier (Glorot): N(0, 2 / (fan_in + fan_out))")}

HISTORY_CONTRACT = """\
history is a dict:
  "loss":     one number per epoch run: the mean of the training loss over that epoch's samples,
              each batch's loss taken in its forward pass (before its update); with equal batches,
              the mean of the batch losses;
  "val_acc":  when X_val and y_val are given, one number per epoch run: the accuracy (0 to 1) on
              them of the params at the end of that epoch (absent, None or empty otherwise);
  "diverged": True when a loss was not finite (NaN or inf), which stops the run at once (no error
              raised); False otherwise.
A run that does not diverge has exactly `epochs` entries in each list."""

#: how many standard errors a sample mean or variance may stray (a correct init misses by chance
#: with a probability far below one in a million)
SIGMAS = 6.0


# ----------------------------------------------------------------------------------------------
# structure


def param_names(n_layers: int) -> list:
    """["W1", "b1", ..., "WL", "bL"] for L = n_layers."""
    return [f"{kind}{l}" for l in range(1, n_layers + 1) for kind in ("W", "b")]


def layer_shapes(layer_sizes: Sequence[int]) -> dict:
    """{"W1": (H1, D), "b1": (H1,), ...} for layer sizes [D, H1, ..., C] (PyTorch's layout, (out, in))."""
    sizes = [int(n) for n in layer_sizes]
    shapes = {}
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        shapes[f"W{l}"], shapes[f"b{l}"] = (fan_out, fan_in), (fan_out,)
    return shapes


def _n_layers(params: dict) -> int:
    n = 0
    while f"W{n + 1}" in params:
        n += 1
    return n


def sizes_of(params: dict) -> list:
    """The layer sizes [D, H1, ..., C] of a params dict."""
    L = _n_layers(params)
    return [int(np.shape(params["W1"])[1])] + [int(np.shape(params[f"W{l}"])[0]) for l in range(1, L + 1)]


def plain_form(got: Any) -> Any:
    """What the grader's probe hands the judge for ``got``: tuples, lists and dicts are converted item
    by item, each item as :func:`course.elementwise.result_form` reads it (arrays copied, a torch tensor
    as its NumPy array, a NumPy scalar as a Python number); anything else stays as it is (and fails the
    ``*_problem`` functions)."""
    t = type(got)
    if t in (tuple, list):
        return t(plain_form(v) for v in got)
    if t is dict:
        return {k: plain_form(v) for k, v in got.items()}
    return result_form(got)


def _kind(value: Any) -> str:
    if value is None:
        return "None — did you forget `return`?"
    t = type(value)
    if isinstance(value, np.ndarray):
        return f"an array of shape {format_shape(value.shape)}"
    if t in (list, tuple, dict):
        return f"a {t.__name__} of length {len(value)}"
    if t in (bool, int, float, str):
        return f"a {t.__name__} ({value!r:.40})"
    return f"an object of type {t.__name__}"


def random_params(layer_sizes: Sequence[int], rng: np.random.Generator, scale: float = 1.0) -> dict:
    """Test parameters (not an initialisation of the course): W_l and b_l uniform in
    ±scale / sqrt(fan_in), biases non-zero so that a missing bias shows."""
    params = {}
    for name, shape in layer_shapes(layer_sizes).items():
        fan_in = layer_sizes[int(name[1:]) - 1]
        params[name] = rng.uniform(-1.0, 1.0, size=shape) * scale / math.sqrt(fan_in)
    return params


def params_problem(value: Any, shapes: dict, what: str = "params") -> Optional[str]:
    """Why ``value`` (plain data) is not a dict of float64 arrays with exactly these keys and shapes."""
    if type(value) is not dict:
        return f"{what} is {_kind(value)}; it must be a dict of arrays with the keys {list(shapes)}"
    missing = [k for k in shapes if k not in value]
    extra = [k for k in value if k not in shapes]
    if missing or extra:
        text = f"{what} has the keys {list(value)}; expected exactly {list(shapes)}"
        if any(k.lower() in shapes for k in extra) or any(k.upper() in shapes for k in extra):
            text += " — likely cause: the keys are case-sensitive: 'W1' and 'b1'"
        elif extra and all(type(k) is str and k[:1] in "Wb" and k[1:].isdigit() for k in extra + missing):
            text += " — likely cause: the layers are numbered from 1: W1, b1 for the first layer"
        return text
    for k, shape in shapes.items():
        item = value[k]
        if not isinstance(item, np.ndarray):
            return f"{what}[{k!r}] is {_kind(item)}; it must be a NumPy array of float64"
        if item.dtype != np.float64:
            return f"{what}[{k!r}] is an array of {item.dtype}; it must be float64"
        if item.shape != tuple(shape):
            text = f"{what}[{k!r}] has shape {format_shape(item.shape)}, expected {format_shape(shape)}"
            if k.startswith("W") and item.shape == tuple(shape)[::-1]:
                text += (" — likely cause: W is (in, out); this course uses PyTorch's layout, W of shape "
                         "(out, in), and y = x W^T + b")
            elif k.startswith("b") and item.size == int(np.prod(shape)):
                text += " — likely cause: b must be a flat vector (out,)"
            return text
    return None


def _atol(terms: float) -> float:
    """The absolute floor of a comparison whose values are sums of terms of this total size."""
    return 1e-13 * max(float(terms), 1e-300)


# ----------------------------------------------------------------------------------------------
# references (PyTorch, float64), imported on first use


def _torch():
    import torch

    return torch


def _t(a: Any, requires_grad: bool = False):
    t = _torch().from_numpy(np.array(a, dtype=np.float64, copy=True))
    return t.requires_grad_(True) if requires_grad else t


def _net(params: dict, X: Any, *, relu: bool = True, relu_last: bool = False, relu_input: bool = False,
         bias: bool = True, mask: str = "Z > 0"):
    """logits as a torch expression of tensors of params (so that autograd reaches them).

    The variants make typical mistakes: ``relu``/``relu_last``/``relu_input`` where the ReLUs are
    (``relu_input``: on X too), ``bias`` whether the biases are added, ``mask`` the ReLU's derivative
    on the way back: "Z > 0" (torch's), "Z >= 0" (1 at exactly 0), "none" (the gradient passes every
    unit) or "dH > 0" (the mask taken from the sign of the incoming gradient, not of Z)."""
    torch = _torch()
    F = torch.nn.functional
    H, L = X, _n_layers(params)
    if relu_input:
        H = torch.relu(H)
    for l in range(1, L + 1):
        H = F.linear(H, params[f"W{l}"], params[f"b{l}"] if bias else None)
        if (l < L and relu) or (l == L and relu_last):
            if mask == "Z > 0":
                H = torch.relu(H)
            elif mask == "Z >= 0":
                H = H * (H >= 0).to(H.dtype)
            else:
                H = H + (torch.relu(H) - H).detach()
                if mask == "dH > 0" and H.requires_grad:
                    H.register_hook(lambda g: g * (g > 0).to(g.dtype))
    return H


def _torch_logits(params: dict, X: np.ndarray, **variant: bool) -> np.ndarray:
    """The logits (N, C) of the network, by F.linear and torch.relu in float64."""
    with _torch().no_grad():
        return _net({k: _t(v) for k, v in params.items()}, _t(X), **variant).numpy()


def _term_size(params: dict, X: np.ndarray) -> float:
    """The largest sum of |terms| that makes one logit (the absolute scale of the rounding)."""
    H = np.abs(np.asarray(X, dtype=np.float64))
    for l in range(1, _n_layers(params) + 1):
        H = H @ np.abs(params[f"W{l}"]).T + np.abs(params[f"b{l}"])
    return float(H.max()) if H.size else 0.0


def _torch_loss(logits: np.ndarray, y: np.ndarray) -> tuple:
    """(mean cross-entropy as a float, its gradient with respect to the logits (N, C)), by F.cross_entropy."""
    torch = _torch()
    z = _t(logits, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(z, torch.from_numpy(np.asarray(y, dtype=np.int64)))
    loss.backward()
    return float(loss.item()), z.grad.numpy()


def _torch_param_grads(params: dict, X: np.ndarray, dlogits: np.ndarray, **variant: bool) -> dict:
    """d(sum(logits * dlogits)) / d params by autograd: the gradients that flow back from dlogits."""
    tensors = {k: _t(v, requires_grad=True) for k, v in params.items()}
    _net(tensors, _t(X), **variant).backward(_t(dlogits))
    return {k: (t.grad.numpy() if t.grad is not None else np.zeros(t.shape)) for k, t in tensors.items()}


def _torch_momentum(params0: dict, grads: Sequence[dict], lr: float, momentum: float) -> tuple:
    """torch.optim.SGD(lr, momentum) on the given gradient dicts: (params after each step, momentum
    buffers after each step (None with momentum 0)), lists of dicts."""
    torch = _torch()
    keys = list(params0)
    tensors = [_t(params0[k], requires_grad=True) for k in keys]
    opt = torch.optim.SGD(tensors, lr=lr, momentum=momentum)
    params_after, buffers_after = [], []
    with torch.no_grad():
        for step in grads:
            for k, t in zip(keys, tensors):
                t.grad = _t(step[k])
            opt.step()
            params_after.append({k: t.detach().numpy().copy() for k, t in zip(keys, tensors)})
            buffers_after.append({k: opt.state[t]["momentum_buffer"].numpy().copy() for k, t in zip(keys, tensors)}
                                 if momentum else None)
    return params_after, buffers_after


def _torch_train(params0: dict, X: np.ndarray, y: np.ndarray, lr: float, momentum: float, epochs: int,
                batches: Optional[Sequence[Sequence[np.ndarray]]] = None, X_val: Optional[np.ndarray] = None,
                y_val: Optional[np.ndarray] = None) -> dict:
    """Mini-batch SGD with momentum in torch from params0; ``batches[e]`` lists the index arrays of
    epoch e (None: the whole set as one batch every epoch). Returns {"loss" (epochs,): the mean over
    each epoch's samples of the batch losses taken before their updates, "loss_after" (epochs,): the
    full training loss after each epoch, "val_acc" (epochs,): the accuracy on (X_val, y_val) after
    each epoch (empty without them), "params": the params at the end}."""
    torch = _torch()
    F = torch.nn.functional
    keys = list(params0)
    tensors = {k: _t(v, requires_grad=True) for k, v in params0.items()}
    opt = torch.optim.SGD(list(tensors.values()), lr=lr, momentum=momentum)
    Xt, yt = _t(X), torch.from_numpy(np.asarray(y, dtype=np.int64))
    N = len(yt)
    losses, after, val = [], [], []
    for e in range(epochs):
        epoch_batches = [np.arange(N)] if batches is None else batches[e]
        total = 0.0
        for index in epoch_batches:
            index = torch.from_numpy(np.asarray(index, dtype=np.int64))
            opt.zero_grad()
            loss = F.cross_entropy(_net(tensors, Xt[index]), yt[index])
            loss.backward()
            opt.step()
            total += loss.item() * len(index)
        losses.append(total / N)
        with torch.no_grad():
            after.append(F.cross_entropy(_net(tensors, Xt), yt).item())
            if X_val is not None:
                predicted = _net(tensors, _t(X_val)).argmax(dim=1).numpy()
                val.append(float(np.mean(predicted == np.asarray(y_val))))
    return {"loss": np.array(losses), "loss_after": np.array(after), "val_acc": np.array(val),
            "params": {k: tensors[k].detach().numpy().copy() for k in keys}}


def accuracy(params: dict, X: np.ndarray, y: np.ndarray) -> float:
    """The share of rows whose largest logit (torch's forward) is at the label."""
    if len(y) == 0:
        return float("nan")
    return float(np.mean(np.argmax(_torch_logits(params, X), axis=1) == np.asarray(y)))


# ----------------------------------------------------------------------------------------------
# init_mlp


def _excess_kurtosis(values: np.ndarray) -> float:
    centred = values - values.mean()
    var = float(np.mean(centred ** 2))
    return float(np.mean(centred ** 4) / var ** 2 - 3.0) if var > 0 else float("nan")


def _variance_mistakes(scheme: str, fan_in: int, fan_out: int, first: Optional[tuple] = None) -> list:
    """(variance, diagnosis) of typical mistakes, for a W drawn with the wrong spread; ``first``: the
    fans (fan_in, fan_out) of layer 1, for a later layer."""
    kaiming, xavier = 2.0 / fan_in, 2.0 / (fan_in + fan_out)
    right = kaiming if scheme == "kaiming" else xavier
    out = []
    if first is not None and tuple(first) != (fan_in, fan_out):
        out.append((SCHEMES[scheme][0](*first), "this layer's variance was computed from the first layer's sizes: "
                                                 "each layer l uses its own fans, fan_in = layer_sizes[l - 1], "
                                                 "fan_out = layer_sizes[l]"))
    out += [(1.0 / fan_in, "LeCun's variance 1 / fan_in" + (
                ": Xavier (Glorot) averages the two fans, 2 / (fan_in + fan_out)" if scheme == "xavier" else
                ": Kaiming doubles it, 2 / fan_in, to make up for ReLU zeroing half the inputs")),
            (right ** 2, "the variance was passed where the standard deviation goes: rng.normal(0, std) takes "
                         "std = sqrt(variance)"),
            (math.sqrt(right), "the standard deviation was squared, or sqrt taken twice: std = sqrt(variance)"),
            (1.0 / (3.0 * fan_in), "PyTorch's default for nn.Linear, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance "
                                   "1 / (3 fan_in)"),
            (2.0 / fan_out, "the variance was computed from fan_out: W_l has shape (fan_out, fan_in) = (out, in)"),
            (1.0, "a standard normal, not scaled: multiply by std = sqrt(variance)")]
    if scheme == "kaiming":
        out.append((xavier, "Xavier's variance 2 / (fan_in + fan_out), where scheme='kaiming' asks for 2 / fan_in"))
    else:
        out += [(kaiming, "Kaiming's variance 2 / fan_in, where scheme='xavier' asks for 2 / (fan_in + fan_out)"),
                (1.0 / (fan_in + fan_out), "the variance 1 / (fan_in + fan_out): Xavier's is 2 / (fan_in + fan_out)"),
                (6.0 / (fan_in + fan_out), "Glorot's uniform bound squared, 6 / (fan_in + fan_out): the normal "
                                           "version has variance 2 / (fan_in + fan_out)")]
    return [(v, text) for v, text in out if abs(v / right - 1.0) > 0.15]


def _spread_problem(name: str, W: np.ndarray, scheme: str, fan_in: int, fan_out: int,
                    first: Optional[tuple] = None) -> Optional[str]:
    """What is wrong with the mean, the variance or the shape of the distribution of one W."""
    n = W.size
    target = SCHEMES[scheme][0](fan_in, fan_out)
    if n < 2:
        return None
    if np.all(W == W.flat[0]):
        return (f"every entry of {name} is {float(W.flat[0]):.4g} — likely cause: a constant initialisation; every "
                f"unit would compute the same output and get the same gradient: draw W from rng")
    mean, var = float(W.mean()), float(W.var())
    if n >= 100 and abs(mean) > SIGMAS * math.sqrt(target / n):
        return (f"the {n} entries of {name} have mean {mean:.4g}; they should be centred on 0 (|mean| below "
                f"{SIGMAS * math.sqrt(target / n):.2g} for this many draws)")
    tolerance = SIGMAS * math.sqrt(2.0 / n)
    if n >= 200 and abs(var / target - 1.0) > tolerance:
        text = (f"the variance of {name} is {var:.4g}; {SCHEMES[scheme][1]} gives {target:.4g} here "
                f"(fan_in = {fan_in}, fan_out = {fan_out}), ratio {var / target:.3g}")
        for candidate, hint in _variance_mistakes(scheme, fan_in, fan_out, first):
            if abs(var / candidate - 1.0) < tolerance:
                return f"{text} — likely cause: {hint}"
        return text
    if n >= 2000:
        kurt = _excess_kurtosis(W)
        if abs(kurt) > max(0.3, SIGMAS * math.sqrt(24.0 / n)):   # 24 / n: the sampling variance of the kurtosis
            flat = abs(kurt + 1.2) < 0.3
            return (f"the variance of {name} is right, but its entries are not normally distributed (excess "
                    f"kurtosis {kurt:.2f}; a normal has 0" + (", a uniform -1.2)" if flat else ")")
                    + (" — likely cause: a uniform distribution; draw from a normal, rng.normal(0.0, std, size=...) "
                       "or rng.standard_normal(...) * std" if flat else ""))
    return None


def init_problem(value: Any, layer_sizes: Sequence[int], scheme: str = "kaiming",
                 statistics: bool = True) -> Optional[str]:
    """Why ``value`` (plain data) is not what init_mlp(layer_sizes, rng, scheme) returns: the keys and
    shapes, float64, zero biases, and (``statistics``) each W's mean, variance and normal shape."""
    shapes = layer_shapes(layer_sizes)
    problem = params_problem(value, shapes, "the returned dict")
    if problem:
        return problem
    for k in shapes:
        if not np.all(np.isfinite(value[k])):
            return f"{k} holds NaN or inf"
    for l in range(1, len(layer_sizes)):
        b = value[f"b{l}"]
        if np.any(b != 0):
            return (f"b{l} is not all zeros (max |b{l}| = {float(np.abs(b).max()):.3g}) — likely cause: the biases "
                    f"start at zero in this exercise (np.zeros(fan_out)); only the weights are drawn")
    if statistics:
        for l in range(1, len(layer_sizes)):
            fan_in, fan_out = int(layer_sizes[l - 1]), int(layer_sizes[l])
            problem = _spread_problem(f"W{l}", value[f"W{l}"], scheme, fan_in, fan_out,
                                      (int(layer_sizes[0]), int(layer_sizes[1])))
            if problem:
                return problem
    return None


def _rng_state(rng: np.random.Generator) -> Any:
    return rng.bit_generator.state


def check_init_mlp(init_mlp: Callable) -> list:
    """The visible checks of init_mlp: structure, both schemes' statistics, the same seed giving the
    same weights, the rng being used, and ValueError on bad arguments. Returns the lines to print;
    raises CheckFailed with the diagnosis."""
    __tracebackhide__ = True
    lines = []
    for sizes, scheme, seed in (((5, 4, 3), "kaiming", 1), ((3, 7, 7, 7, 2), "xavier", 2),
                                ((500, 300, 200), "kaiming", 3), ((300, 100, 500), "xavier", 4)):
        rng = np.random.default_rng(seed)
        before = _rng_state(rng)
        value = plain_form(init_mlp(list(sizes), rng, scheme=scheme))
        label = f"init_mlp({list(sizes)}, rng, scheme={scheme!r})"
        problem = init_problem(value, sizes, scheme)
        if problem:
            raise CheckFailed(f"✗ {label}: {problem}")
        if _rng_state(rng) == before:
            raise CheckFailed(f"✗ {label}: nothing was drawn from rng — likely cause: the weights came from "
                              f"np.random.* (the global state) or a generator made inside; draw from rng")
        again = plain_form(init_mlp(list(sizes), np.random.default_rng(seed), scheme=scheme))
        if type(again) is not dict or any(not np.array_equal(value[k], again.get(k)) for k in value):
            raise CheckFailed(f"✗ {label}: two generators with the same seed gave different weights — likely cause: "
                              f"draw every number from rng")
        variances = ", ".join(f"var W{l} {float(value[f'W{l}'].var()):.3g} (target "
                              f"{SCHEMES[scheme][0](sizes[l - 1], sizes[l]):.3g})" for l in range(1, len(sizes))
                              if sizes[l - 1] * sizes[l] >= 10_000)
        lines.append(f"✓ {label}: {len(value)} arrays of the right shapes, zero biases"
                     + (f"; {variances}" if variances else ""))
    default = plain_form(init_mlp([400, 300], np.random.default_rng(5)))
    problem = init_problem(default, (400, 300), "kaiming")
    if problem:
        raise CheckFailed(f"✗ init_mlp([400, 300], rng) with the default scheme (kaiming): {problem}")
    for args, kwargs, what in ((([4, 3], np.random.default_rng(0)), {"scheme": "lecun"}, "scheme='lecun'"),
                               (([4], np.random.default_rng(0)), {}, "layer_sizes [4]")):
        try:
            init_mlp(*args, **kwargs)
        except ValueError:
            lines.append(f"✓ init_mlp raises ValueError for {what}")
            continue
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - diagnose any other exception
            raise CheckFailed(f"✗ init_mlp with {what}: should raise ValueError, raised {type(exc).__name__}: "
                              f"{exc}") from None
        raise CheckFailed(f"✗ init_mlp with {what}: should raise ValueError, but returned")
    return lines


# ----------------------------------------------------------------------------------------------
# mlp_forward


def forward_mistakes(params: dict, X: np.ndarray) -> list:
    """(logits, diagnosis) of typical mistakes of a forward pass, computed with torch."""
    out = [(_torch_logits(params, X, relu_last=True), "a ReLU after the last layer too: the logits are the last "
                                                      "Linear's output, negative values included"),
           (_torch_logits(params, X, relu=False), "no ReLU between the layers: apply the ReLU, max(Z, 0), after every "
                                                 "layer but the last")]
    if _n_layers(params) > 1:
        out.append((_torch_logits(params, X, relu=False, relu_last=True),
                    "the ReLU is applied after the last layer only; it goes after every layer but the last"))
    out.append((_torch_logits(params, X, relu_input=True), "a ReLU on the input X as well: H_0 = X as it is; the ReLU "
                                                         "comes after each hidden layer's Linear, not before"))
    out.append((_torch_logits(params, X, bias=False), "the biases are missing: Z = H W^T + b"))
    logits = _torch_logits(params, X)
    if logits.size:
        out.append((_torch().softmax(_t(logits), dim=1).numpy(),
                    "softmax was applied: mlp_forward returns the logits, before any softmax"))
    return out


def forward_problem(value: Any, params: dict, X: np.ndarray) -> Optional[str]:
    """Why ``value`` (plain data: what mlp_forward returned) is not (logits, cache) with the right logits."""
    if type(value) not in (tuple, list) or len(value) != 2:
        what = _kind(value)
        text = f"returned {what}; return the pair (logits, cache)"
        if isinstance(value, np.ndarray):
            text += " — the cache (whatever mlp_backward needs from the forward pass) goes with the logits"
        return text
    logits = value[0]
    expected = _torch_logits(params, X)
    problem = array_problem(logits, expected.shape)
    if problem:
        if isinstance(logits, np.ndarray) and logits.shape == expected.shape[::-1] and logits.ndim == 2:
            problem += " — likely cause: the logits are (C, N); one row per sample: H W^T, not W H^T"
        return f"logits: {problem}"
    result = compare("logits", logits, expected, rtol=RTOL, atol=_atol(_term_size(params, X)))
    if result.ok:
        return None
    hint = first_match(logits, forward_mistakes(params, X), expected=expected, rtol=1e-8)
    return result.message + (f" — likely cause: {hint}" if hint else "")


def _copies(*arrays: Any) -> list:
    return [{k: np.array(v, copy=True) for k, v in a.items()} if type(a) is dict else np.array(a, copy=True)
            for a in arrays]


def _changed(before: Any, after: Any) -> bool:
    if type(before) is dict:
        return any(not np.array_equal(before[k], after[k]) for k in before)
    return not np.array_equal(before, after)


def check_forward(mlp_forward: Callable, params: dict, X: np.ndarray, label: str) -> Comparison:
    """Run mlp_forward on copies of params and X and compare its logits with torch's."""
    __tracebackhide__ = True
    p, x = _copies(params, X)
    value = plain_form(mlp_forward(p, x))
    problem = forward_problem(value, params, X)
    if problem:
        raise CheckFailed(f"✗ mlp_forward [{label}]: {problem}")
    if _changed(params, p) or _changed(X, x):
        raise CheckFailed(f"✗ mlp_forward [{label}]: the logits are right, but params or X was changed in place")
    N, C = value[0].shape
    return Comparison("mlp_forward", True, f"✓ mlp_forward [{label}]: logits ({N}, {C}) match torch")


# ----------------------------------------------------------------------------------------------
# softmax_cross_entropy


def loss_mistakes(logits: np.ndarray, y: np.ndarray) -> tuple:
    """((loss candidates), (dlogits candidates)): (value, diagnosis) of typical mistakes, from torch."""
    loss, grad = _torch_loss(logits, y)
    N, C = logits.shape
    torch = _torch()
    with torch.no_grad():
        p = torch.softmax(_t(logits), dim=1).numpy()
        log_p = torch.log_softmax(_t(logits), dim=1).numpy()
    labels = np.asarray(y, dtype=np.int64)
    losses = [(N * loss, "a factor N: the sum of the per-sample losses, where the mean is expected"),
              (-loss, "the sign: the loss is −log p[target], a positive number")]
    if N > 1:
        losses.append((-float(log_p[:, labels].mean()), "log_p[:, y] picks an (N, N) block (every row at every "
                                                          "label); pair each row with its own label: "
                                                          "log_p[np.arange(N), y]"))
    grads = [(N * grad, "a factor N: the gradient of the MEAN loss carries 1/N (dlogits = (softmax − onehot) / N)"),
             (-grad, "the sign: dlogits = (softmax − onehot) / N"),
             (p / N, "the one-hot of the targets is not subtracted: dlogits = (softmax − onehot) / N"),
             (p, "softmax alone: subtract the one-hot of the targets and divide by N")]
    if C > 1:
        for k, word in ((1, "+ 1"), (-1, "− 1")):
            shifted = (np.asarray(y) + k) % C
            losses.append((_torch_loss(logits, shifted)[0], f"the targets are off by one (class y {word})"))
            grads.append((_torch_loss(logits, shifted)[1], f"the one-hot is off by one (class y {word})"))
    return losses, grads


def loss_problem(value: Any, logits: np.ndarray, y: np.ndarray, warnings: Sequence[str] = ()) -> Optional[str]:
    """Why ``value`` (plain data: what softmax_cross_entropy returned) is not (loss, dlogits) as torch's
    F.cross_entropy and its gradient; ``warnings``: those the call raised (a stable version raises none)."""
    if type(value) not in (tuple, list) or len(value) != 2:
        return f"returned {_kind(value)}; return the pair (loss, dlogits)"
    loss, dlogits = value
    expected_loss, expected_grad = _torch_loss(logits, y)
    problem = scalar_problem(loss)
    if problem:
        return f"the loss {problem}"
    problem = array_problem(dlogits, expected_grad.shape)
    if problem:
        return f"dlogits: {problem}"
    loss_mist, grad_mist = loss_mistakes(logits, y)
    hint_w = warnings_hint(warnings, False, "cross_entropy") if warnings else None
    result = compare_scalar("loss", loss, expected_loss, rtol=RTOL, atol=1e-12)
    if not result.ok:
        hints = [h for h in (first_match(loss, loss_mist, expected=expected_loss), hint_w) if h]
        return result.message + (f" — likely cause: {'; '.join(hints)}" if hints else "")
    result = compare("dlogits", dlogits, expected_grad, rtol=RTOL, atol=1e-15)
    if not result.ok:
        hints = [h for h in (first_match(dlogits, grad_mist, expected=expected_grad), hint_w) if h]
        return result.message + (f" — likely cause: {'; '.join(hints)}" if hints else "")
    if warnings:
        return (f"the values are right, but the call raised {'; '.join(warnings)} — likely cause: "
                f"{warnings_hint(warnings, True, 'cross_entropy')}")
    return None


def check_loss(softmax_cross_entropy: Callable, logits: np.ndarray, y: np.ndarray, label: str) -> Comparison:
    """Run softmax_cross_entropy quietly on copies and compare with torch."""
    __tracebackhide__ = True
    z, t = _copies(logits, y)
    returned, caught = quiet_call(softmax_cross_entropy, z, t)
    value = plain_form(returned)
    problem = loss_problem(value, logits, y, caught)
    if problem:
        raise CheckFailed(f"✗ softmax_cross_entropy [{label}]: {problem}")
    if _changed(logits, z) or _changed(y, t):
        raise CheckFailed(f"✗ softmax_cross_entropy [{label}]: the values are right, but logits or y was changed in "
                          f"place; compute new arrays")
    return Comparison("softmax_cross_entropy", True,
                      f"✓ softmax_cross_entropy [{label}]: loss {float(value[0]):.6g} and dlogits match torch")


# ----------------------------------------------------------------------------------------------
# mlp_backward


def backward_mistakes(params: dict, X: np.ndarray, dlogits: np.ndarray) -> list:
    """(grads, diagnosis) of typical mistakes of a backward pass, computed with torch autograd."""
    N = max(len(X), 1)
    right = _torch_param_grads(params, X, dlogits)
    out = [(_torch_param_grads(params, X, dlogits, mask="none"),
            "the ReLU's derivative is missing: multiply the gradient reaching each hidden layer by (Z > 0)"),
           (_torch_param_grads(params, X, dlogits, mask="Z >= 0"),
            "the ReLU's derivative at exactly Z = 0 is taken as 1 (Z >= 0); torch, and this course, take 0 (Z > 0)"),
           (_torch_param_grads(params, X, dlogits, mask="dH > 0"),
            "the ReLU mask comes from the sign of the gradient (dH > 0); it comes from the forward pass: (Z > 0), "
            "which is (H > 0) for the layer's output H"),
           ({k: (v / N if k.startswith("W") else v) for k, v in right.items()},
            "dW is averaged over the batch; it is the sum, dZ^T H (dlogits already carries the 1/N of the mean loss)"),
           ({k: (v / N if k.startswith("b") else v) for k, v in right.items()},
            "db is the mean over the batch; it is the sum (dlogits already carries the 1/N of the mean loss)"),
           ({k: v / N for k, v in right.items()},
            "every gradient is divided by N: dlogits already carries the 1/N of the mean loss"),
           ({k: N * v for k, v in right.items()}, "every gradient is N times too large")]
    return out


def _first_bad_grad(value: dict, expected: dict, scales: dict) -> Optional[Comparison]:
    for k in expected:
        result = compare(k, value[k], expected[k], rtol=RTOL, atol=scales[k])
        if not result.ok:
            return result
    return None


def backward_problem(value: Any, params: dict, X: np.ndarray, dlogits: np.ndarray) -> Optional[str]:
    """Why ``value`` (plain data: what mlp_backward returned for the cache of the forward pass on X)
    is not the gradients torch's autograd gives when dlogits flows back."""
    expected = _torch_param_grads(params, X, dlogits)
    problem = params_problem(value, {k: v.shape for k, v in expected.items()}, "grads")
    if problem:
        if type(value) is dict and any(type(k) is str and k.startswith("d") and k[1:] in expected for k in value):
            problem += " — likely cause: the grads use the params' own keys ('W1', not 'dW1')"
        return problem
    scales = {k: max(1e-12 * float(np.abs(v).max()) if v.size else 0.0, 1e-300) for k, v in expected.items()}
    bad = _first_bad_grad(value, expected, scales)
    if bad is None:
        return None
    for candidate, hint in backward_mistakes(params, X, dlogits):
        if all(k in candidate for k in expected) and _first_bad_grad(value, candidate, scales) is None \
                and _first_bad_grad(expected, candidate, scales) is not None:
            return bad.message + f" — likely cause: {hint}"
    return bad.message


def check_backward(mlp_forward: Callable, mlp_backward: Callable, params: dict, X: np.ndarray,
                   dlogits: np.ndarray, label: str) -> Comparison:
    """Your mlp_forward on X gives the cache; mlp_backward(params, cache, dlogits) must give torch's grads."""
    __tracebackhide__ = True
    p, x, d = _copies(params, X, dlogits)
    returned = mlp_forward(p, x)
    if type(returned) not in (tuple, list) or len(returned) != 2:
        raise CheckFailed(f"✗ mlp_backward [{label}]: needs the cache of your mlp_forward, which returned "
                          f"{_kind(plain_form(returned))}, not the pair (logits, cache)")
    value = plain_form(mlp_backward(p, returned[1], d))
    problem = backward_problem(value, params, X, dlogits)
    if problem:
        raise CheckFailed(f"✗ mlp_backward [{label}]: {problem}")
    if _changed(params, p) or _changed(dlogits, d):
        raise CheckFailed(f"✗ mlp_backward [{label}]: the gradients are right, but params or dlogits was changed "
                          f"in place")
    return Comparison("mlp_backward", True, f"✓ mlp_backward [{label}]: {len(value)} gradients match torch's autograd")


# ----------------------------------------------------------------------------------------------
# sgd_momentum_step


def momentum_problem(record: dict, params0: dict, grads: Sequence[dict], lr: float, momentum: float) -> Optional[str]:
    """Why a record of sgd_momentum_step's steps breaks the contract. ``record`` (plain data) holds
    "params" and "velocity": lists over the steps of the dicts' values after each step, "same_params"
    and "same_velocity": whether every array was still the caller's object after every step, and
    "grads_changed"."""
    from .optimizers import step_hint

    steps, velocities = record["params"], record["velocity"]
    expected, buffers = _torch_momentum(params0, grads, lr, momentum)
    keys = list(params0)
    scale = {k: 1e-13 * (1.0 + float(np.abs(params0[k]).max(initial=0.0)) + lr * len(grads) / max(1e-3, 1 - momentum)
                         * max(float(np.abs(g[k]).max(initial=0.0)) for g in grads)) for k in keys}
    for i, (got, want) in enumerate(zip(steps, expected)):
        problem = params_problem(got, {k: np.shape(v) for k, v in params0.items()}, f"params after step {i + 1}")
        if problem:
            return problem
        for k in keys:
            result = compare(f"params[{k!r}] after step {i + 1}", got[k], want[k], rtol=RTOL, atol=scale[k])
            if not result.ok:
                still = [name for name in keys if all(np.array_equal(s[name], params0[name]) for s in steps)]
                if still and len(still) < len(keys) and k in still:
                    return result.message + (f" — likely cause: {', '.join(still)} never moved while the other "
                                             f"params did: step every key of params (the biases too)")
                hint = step_hint("SGD", {"lr": lr, "momentum": momentum}, [params0[k] for k in keys],
                                 [[s[k] for k in keys] for s in steps], [[s[k] for k in keys] for s in expected],
                                 [[g[k] for k in keys] for g in grads])
                if hint and re.fullmatch(r"step 1 of param \d+ is -?0 times torch's", hint):
                    hint = ("the first step did not move the params: update the velocity first, v = momentum · v + g, "
                            "then step with it, p -= lr · v")
                elif hint and "in place (p -=" in hint:
                    hint = ("the params never changed: update each array in place (params[k] -= lr * v); "
                            "`p = p - ...` on a loop variable, or a step on a copy of the dict, changes nothing "
                            "the caller sees")
                return result.message + (f" — likely cause: {hint}" if hint else "")
        if buffers[i] is not None:
            got_v = velocities[i]
            problem = params_problem(got_v, {k: np.shape(v) for k, v in params0.items()}, f"velocity after step {i + 1}")
            if problem:
                return problem
            for k in keys:
                result = compare(f"velocity[{k!r}] after step {i + 1}", got_v[k], buffers[i][k], rtol=RTOL,
                                 atol=scale[k] / max(lr, 1e-12))
                if not result.ok:
                    return result.message + (" — likely cause: velocity must hold torch's momentum buffer, "
                                             "v = momentum · v + g (without the learning rate)")
    if record["grads_changed"]:
        return "the steps are right, but the grads given to it were changed: leave them as they are"
    return None


def in_place_problem(record: dict) -> Optional[str]:
    """Why the steps, right in value, were not made in place (None when they were)."""
    if not record["same_params"]:
        return ("the values are right, but a params array was replaced by a new one: update the caller's arrays "
                "in place, params[k] -= lr * velocity[k] (params[k] = params[k] - ... makes a new array)")
    if not record["same_velocity"]:
        return ("the values are right, but a velocity array was replaced by a new one: update it in place, "
                "v *= momentum; v += g (velocity[k] = momentum * velocity[k] + ... makes a new array)")
    return None


def record_steps(sgd_momentum_step: Callable, params0: dict, grads: Sequence[dict], lr: float,
                 momentum: float) -> dict:
    """Run sgd_momentum_step step by step on copies, from zero velocity, and record what the grader's
    probe records (see :func:`momentum_problem`)."""
    params = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params0.items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    p_ids, v_ids = dict(params), dict(velocity)
    record = {"params": [], "velocity": [], "same_params": True, "same_velocity": True, "grads_changed": False}
    for step in grads:
        given = {k: np.array(g, copy=True) for k, g in step.items()}
        sgd_momentum_step(params, given, velocity, lr, momentum)
        record["grads_changed"] |= any(not np.array_equal(given[k], step[k]) for k in step)
        record["params"].append(plain_form(dict(params)))
        record["velocity"].append(plain_form(dict(velocity)))
        record["same_params"] &= all(params.get(k) is p_ids[k] for k in p_ids)
        record["same_velocity"] &= all(velocity.get(k) is v_ids[k] for k in v_ids)
    return record


def check_momentum_step(sgd_momentum_step: Callable, params0: dict, grads: Sequence[dict], lr: float,
                        momentum: float, label: str) -> Comparison:
    """Several steps of sgd_momentum_step against torch.optim.SGD(lr, momentum) on the same gradients."""
    __tracebackhide__ = True
    record = record_steps(sgd_momentum_step, params0, grads, lr, momentum)
    problem = momentum_problem(record, params0, grads, lr, momentum) or in_place_problem(record)
    if problem:
        raise CheckFailed(f"✗ sgd_momentum_step [{label}]: {problem}")
    return Comparison("sgd_momentum_step", True, f"✓ sgd_momentum_step [{label}]: {len(grads)} steps match "
                                                 f"torch.optim.SGD, in place")


# ----------------------------------------------------------------------------------------------
# predict


def labels_problem(value: Any, params: dict, X: np.ndarray) -> Optional[str]:
    """Why ``value`` (plain data) is not the argmax labels (N,) of torch's logits, as integers."""
    logits = _torch_logits(params, X)
    N, C = logits.shape
    if not isinstance(value, np.ndarray):
        return f"returned {_kind(value)}; return a NumPy array of integer labels (N,) = ({N},)"
    if value.dtype.kind not in "iu":
        text = f"returned an array of {value.dtype}; return integer labels (np.argmax gives int64)"
        if value.shape == logits.shape:
            text += " — likely cause: those are the logits (or probabilities); take the argmax over the classes"
        return text
    if value.shape != (N,):
        text = f"returned shape {format_shape(value.shape)}, expected ({N},): one label per row of X"
        if value.shape == (C,):
            text += " — likely cause: argmax over axis 0 (the samples); the classes are axis 1"
        elif value.shape == (N, 1):
            text += " — likely cause: keepdims=True; return a flat array"
        return text
    expected = np.argmax(logits, axis=1)
    wrong = np.flatnonzero(value != expected)
    if wrong.size:
        i = int(wrong[0])
        text = f"{wrong.size} of {N} labels differ; row {i}: got {int(value[i])}, expected {int(expected[i])}"
        if N > 1 and np.array_equal(value, np.argmin(logits, axis=1)):
            text += " — likely cause: argmin; the predicted class has the LARGEST logit"
        return text
    return None


def check_predict(predict: Callable, params: dict, X: np.ndarray, label: str) -> Comparison:
    __tracebackhide__ = True
    p, x = _copies(params, X)
    value = plain_form(predict(p, x))
    problem = labels_problem(value, params, X)
    if problem:
        raise CheckFailed(f"✗ predict [{label}]: {problem}")
    return Comparison("predict", True, f"✓ predict [{label}]: {len(value)} labels match the argmax of torch's logits")


# ----------------------------------------------------------------------------------------------
# train_mlp


def _numbers(seq: Any) -> Optional[np.ndarray]:
    """A list, tuple or 1-D array of real numbers as a float64 array, else None."""
    if isinstance(seq, np.ndarray):
        if seq.ndim != 1 or seq.dtype.kind not in "biuf" or seq.dtype.kind == "b":
            return None
        return seq.astype(np.float64)
    if type(seq) not in (list, tuple):
        return None
    out = []
    for v in seq:
        if type(v) in (int, float):
            out.append(float(v))
        elif isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iuf":
            out.append(float(v))
        else:
            return None
    return np.array(out, dtype=np.float64)


def history_problem(history: Any, epochs: int, with_val: bool, diverged: Optional[bool] = False) -> tuple:
    """(problem or None, {"loss", "val_acc" (arrays or None), "diverged"}) for a returned history
    (plain data). ``diverged``: what the run must report (None: either; then the lists may be
    shorter than ``epochs``)."""
    if type(history) is not dict:
        return f"history is {_kind(history)}; return a dict with the keys 'loss', 'val_acc' and 'diverged'", None
    if "loss" not in history:
        return f"history has no 'loss'; it has {sorted(map(str, history))}", None
    loss = _numbers(history["loss"])
    if loss is None:
        return f"history['loss'] is {_kind(history['loss'])}; it must be a list of numbers, one per epoch", None
    if "diverged" not in history:
        return "history has no 'diverged' (True or False)", None
    flag = history["diverged"]
    if type(flag) is not bool:
        return f"history['diverged'] is {_kind(flag)}; it must be True or False (a bool)", None
    val = None
    if with_val:
        if history.get("val_acc") is None:
            return "history has no 'val_acc', though X_val and y_val were given", None
        val = _numbers(history["val_acc"])
        if val is None:
            return f"history['val_acc'] is {_kind(history['val_acc'])}; it must be a list of numbers, one per epoch", None
        if len(val) and (val.max() > 1.0 or val.min() < 0.0):
            hint = " — likely cause: a percentage; give the accuracy as a share, 0 to 1" if val.max() <= 100 else ""
            return f"history['val_acc'] holds {val.max():.4g}: an accuracy lies in [0, 1]{hint}", None
    else:
        given = history.get("val_acc")
        empty = given is None or (type(given) in (list, tuple) and len(given) == 0) or (
            isinstance(given, np.ndarray) and given.size == 0)
        if not empty:
            return "history['val_acc'] holds values, though no validation data was given", None
    record = {"loss": loss, "val_acc": val, "diverged": flag}
    if diverged is False:
        if flag:
            return (f"history['diverged'] is True on a run that should not diverge; the losses were "
                    f"{np.array2string(loss[:5], precision=4)}" + (" ..." if len(loss) > 5 else "")), record
        if len(loss) != epochs:
            return f"history['loss'] has {len(loss)} entries for {epochs} epochs", record
        if not np.all(np.isfinite(loss)):
            return "history['loss'] holds NaN or inf on a run that should not diverge", record
        if with_val and len(val) != epochs:
            return f"history['val_acc'] has {len(val)} entries for {epochs} epochs", record
    if diverged is True:
        if not flag:
            return (f"the loss became NaN or inf, but history['diverged'] is False (losses "
                    f"{np.array2string(loss[:4], precision=4)}" + (" ..." if len(loss) > 4 else "") + ")"), record
        if len(loss) >= epochs:
            return (f"history['loss'] has {len(loss)} entries for {epochs} epochs: a non-finite loss must stop the "
                    f"run at once (break out of the loops)"), record
    return None, record


def check_train_replay(train_mlp: Callable, X: np.ndarray, y: np.ndarray, layer_sizes: Sequence[int], lr: float,
                       epochs: int, *, momentum: float, seed: int, init_scale: float = 1.0,
                       X_val: Optional[np.ndarray] = None, y_val: Optional[np.ndarray] = None) -> Comparison:
    """Full-batch training (batch_size = N, so the order of the samples does not matter) against
    torch: a first call with lr = 0 gives the initial params (the same seed draws the same ones), a
    second the run; its loss per epoch and final params must be torch's from those initial params."""
    __tracebackhide__ = True
    N = len(X)
    label = f"full batch N = {N}, layers {list(layer_sizes)}, lr {lr}, momentum {momentum}, {epochs} epochs"
    common = dict(momentum=momentum, init_scale=init_scale, X_val=X_val, y_val=y_val)
    start, _ = train_mlp(X.copy(), y.copy(), list(layer_sizes), 0.0, epochs, N, np.random.default_rng(seed), **common)
    start = plain_form(start)
    shapes = layer_shapes(layer_sizes)
    problem = params_problem(start, shapes)
    if problem:
        raise CheckFailed(f"✗ train_mlp [{label}]: {problem}")
    params, history = train_mlp(X.copy(), y.copy(), list(layer_sizes), lr, epochs, N, np.random.default_rng(seed),
                                **common)
    value = plain_form((params, history))
    problem = train_replay_problem(value, start, X, y, layer_sizes, lr, epochs, momentum, X_val, y_val)
    if problem:
        raise CheckFailed(f"✗ train_mlp [{label}]: {problem}")
    return Comparison("train_mlp", True, f"✓ train_mlp [{label}]: the loss per epoch and the final params match torch")


def _pair_problem(value: Any, shapes: dict) -> Optional[str]:
    """Why ``value`` is not a pair (params, history) whose params have these shapes (None: it is)."""
    if type(value) not in (tuple, list) or len(value) != 2:
        return f"returned {_kind(value)}; return the pair (params, history)"
    return params_problem(value[0], shapes)


def _run_problem(value: Any, layer_sizes: Sequence[int], epochs: int, with_val: bool) -> tuple:
    """(problem, history's record) of a returned (params, history): :func:`_pair_problem`, then
    :func:`history_problem`; the record is None when there is a problem."""
    problem = _pair_problem(value, layer_shapes(layer_sizes))
    if problem:
        return problem, None
    return history_problem(value[1], epochs, with_val)


def train_replay_problem(value: Any, start: dict, X: np.ndarray, y: np.ndarray, layer_sizes: Sequence[int],
                         lr: float, epochs: int, momentum: float, X_val: Optional[np.ndarray] = None,
                         y_val: Optional[np.ndarray] = None) -> Optional[str]:
    """Why (params, history) of a full-batch run from the initial params ``start`` is not torch's."""
    problem, record = _run_problem(value, layer_sizes, epochs, X_val is not None)
    if problem:
        return problem
    params = value[0]
    ref = _torch_train(start, X, y, lr, momentum, epochs, X_val=X_val, y_val=y_val)
    scale = 1e-9 * (1.0 + float(np.max(ref["loss"])))
    result = compare("history['loss']", record["loss"], ref["loss"], rtol=1e-8, atol=scale)
    if not result.ok:
        hint = None
        if all(np.array_equal(params[k], start[k]) for k in start):
            hint = ("the params never moved: was any batch trained? With batch_size >= N the whole set is one batch "
                    "(for start in range(0, N, batch_size) gives it; N // batch_size gives no batch at all)")
        elif np.allclose(record["loss"], ref["loss_after"], rtol=1e-8, atol=scale):
            hint = ("each entry is the loss AFTER the epoch's update: record the loss of each batch's forward pass, "
                    "before its update")
        elif np.allclose(record["loss"][1:], ref["loss"][:-1], rtol=1e-8, atol=scale):
            hint = "the losses are shifted by one epoch"
        elif abs(record["loss"][0] - ref["loss"][0]) <= 1e-8 * abs(ref["loss"][0]) + scale:
            hint = ("the first epoch is right and a later one is not: look at the update (the momentum argument "
                    "passed on, the velocity kept across the steps and the epochs, v = momentum · v + g, then "
                    "p -= lr · v)")
        else:
            hint = ("the first epoch's loss, taken at your own initial params before any update, is already not "
                    "the loss of the whole set: every batch must pair X[idx] with y[idx] (the same indices for "
                    "both), and an epoch must visit every sample exactly once (a permutation, not draws with "
                    "replacement)")
        return result.message + (f" — likely cause: {hint}" if hint else "")
    for k, want in ref["params"].items():
        result = compare(f"params[{k!r}] at the end", params[k], want, rtol=1e-8,
                         atol=1e-10 * (1.0 + float(np.abs(want).max())))
        if not result.ok:
            return result.message
    if X_val is not None and not np.allclose(record["val_acc"], ref["val_acc"], rtol=0.0, atol=1e-12):
        e = int(np.flatnonzero(np.abs(record["val_acc"] - ref["val_acc"]) > 1e-12)[0])
        text = (f"history['val_acc'][{e}] is {record['val_acc'][e]:.6g}, but the params at the end of epoch {e + 1} "
                f"score {ref['val_acc'][e]:.6g} on X_val")
        if np.allclose(record["val_acc"][1:], ref["val_acc"][:-1], rtol=0.0, atol=1e-12):
            text += (" — likely cause: the accuracy is measured at the start of each epoch; measure it at the end, "
                     "after the epoch's updates")
        return text
    return None


def check_train_epoch_loss(train_mlp: Callable, X: np.ndarray, y: np.ndarray, layer_sizes: Sequence[int],
                           batch_size: int, epochs: int, seed: int) -> Comparison:
    """With lr = 0 the params never move, so every epoch's mean loss is the loss of the whole training
    set at the initial params, whatever the order; a batch_size that does not divide N leaves a
    smaller last batch, which the mean over the samples weights by its size."""
    __tracebackhide__ = True
    N = len(X)
    label = f"lr = 0, N = {N} in batches of {batch_size}"
    value = plain_form(train_mlp(X.copy(), y.copy(), list(layer_sizes), 0.0, epochs, batch_size,
                                 np.random.default_rng(seed)))
    problem = epoch_loss_problem(value, X, y, layer_sizes, epochs, batch_size)
    if problem:
        raise CheckFailed(f"✗ train_mlp [{label}]: {problem}")
    return Comparison("train_mlp", True, f"✓ train_mlp [{label}]: every epoch's loss is the mean over all {N} samples")


def epoch_loss_problem(value: Any, X: np.ndarray, y: np.ndarray, layer_sizes: Sequence[int], epochs: int,
                       batch_size: int) -> Optional[str]:
    problem, record = _run_problem(value, layer_sizes, epochs, False)
    if problem:
        return problem
    params = value[0]
    want = _torch_loss(_torch_logits(params, X), y)[0]
    loss = record["loss"]
    result = compare("history['loss']", loss, np.full(epochs, want), rtol=1e-9, atol=1e-12)
    if result.ok:
        return None
    N = len(X)
    n_batches = -(-N // batch_size)
    hint = None
    if np.allclose(loss, N / batch_size * want, rtol=1e-9):
        hint = f"the SUM of the {n_batches} batch losses; the epoch's loss is their mean over the {N} samples"
    elif N % batch_size:
        hint = (f"the plain mean of the {n_batches} batch losses, which weights the last batch (only "
                f"{N % batch_size} samples) like a full one, or the loss of one batch (the last?): add up "
                f"loss · len(idx) over the batches and divide by N at the end of the epoch")
    elif np.all(np.abs(loss - want) > 1e-9 * want):
        hint = ("the loss of one batch (the last?) rather than the mean over the epoch: accumulate every batch's "
                "loss (times its size) and divide by N at the end of the epoch")
    return result.message + (f" — likely cause: {hint}" if hint else "")


def check_train_shuffle(train_mlp: Callable, X: np.ndarray, y: np.ndarray, layer_sizes: Sequence[int], lr: float,
                        epochs: int, batch_size: int, *, seed: int, momentum: float = 0.9) -> Comparison:
    """The same seed twice gives the same run, another seed another, and the batches are shuffled
    (the run differs from torch's on the rows in their order, from the same initial params)."""
    __tracebackhide__ = True
    label = f"batches of {batch_size} from N = {len(X)}, shuffled with rng"

    def run(s, rate):
        return plain_form(train_mlp(X.copy(), y.copy(), list(layer_sizes), rate, epochs, batch_size,
                                    np.random.default_rng(s), momentum=momentum))

    values = [run(seed, lr), run(seed, lr), run(seed + 1, lr), run(seed, 0.0)]
    problem = shuffle_problem(values, X, y, layer_sizes, lr, epochs, batch_size, momentum)
    if problem:
        raise CheckFailed(f"✗ train_mlp [{label}]: {problem}")
    return Comparison("train_mlp", True, f"✓ train_mlp [{label}]: the same seed gives the same run, another seed "
                                         f"another, and the order changes")


def shuffle_problem(values: list, X: np.ndarray, y: np.ndarray, layer_sizes: Sequence[int], lr: float, epochs: int,
                    batch_size: int, momentum: float) -> Optional[str]:
    """Why four runs — seed s, seed s again, another seed, seed s with lr = 0 (the start) — show that
    train_mlp does not draw everything from rng, or does not shuffle."""
    shapes = layer_shapes(layer_sizes)
    pairs = []
    for value in values:
        problem = _pair_problem(value, shapes)
        if problem:
            return problem
        pairs.append(value[0])
    a, b, c, start = pairs
    if any(not np.allclose(a[k], b[k], rtol=1e-12, atol=1e-15) for k in shapes):
        return ("two runs with generators of the same seed gave different params — likely cause: something random "
                "does not come from rng (np.random.shuffle or np.random.permutation use the global state)")
    if all(np.allclose(a[k], c[k], rtol=1e-9) for k in shapes):
        return "two different seeds gave the same params — likely cause: the rng argument is not used"
    N = len(y)
    in_order = [[np.arange(s, min(s + batch_size, N)) for s in range(0, N, batch_size)]] * epochs
    unshuffled = _torch_train(start, X, y, lr, momentum, epochs, in_order)["params"]
    if all(np.allclose(a[k], unshuffled[k], rtol=1e-8, atol=1e-12) for k in shapes):
        return ("the batches are taken in the rows' order, without shuffling: draw a new order every epoch, "
                "order = rng.permutation(N), and take the batches from X[order]")
    return None


def check_train_new_order(train_mlp: Callable, X: np.ndarray, y: np.ndarray, layer_sizes: Sequence[int], lr: float,
                          epochs: int, *, seed: int, momentum: float = 0.9) -> Comparison:
    """A handful of samples (N <= 4) in batches of one: the run must not be a replay of one fixed
    order repeated every epoch (each epoch draws a new order). A first call with lr = 0 gives the
    initial params."""
    __tracebackhide__ = True
    N = len(X)
    label = f"N = {N} in batches of 1, {epochs} epochs: a new order every epoch"
    runs = [plain_form(train_mlp(X.copy(), y.copy(), list(layer_sizes), rate, epochs, 1, np.random.default_rng(seed),
                                 momentum=momentum)) for rate in (0.0, lr)]
    problem = new_order_problem(runs, X, y, layer_sizes, lr, epochs, momentum)
    if problem:
        raise CheckFailed(f"✗ train_mlp [{label}]: {problem}")
    return Comparison("train_mlp", True, f"✓ train_mlp [{label}]: the order changes from epoch to epoch")


def new_order_problem(values: list, X: np.ndarray, y: np.ndarray, layer_sizes: Sequence[int], lr: float, epochs: int,
                      momentum: float) -> Optional[str]:
    """Why two runs in batches of one — lr = 0 (the start), then lr — show one order of the N <= 4
    samples used in every epoch: the final params are torch's replay of some fixed order."""
    shapes = layer_shapes(layer_sizes)
    pairs = []
    for value in values:
        problem = _pair_problem(value, shapes)
        if problem:
            return problem
        pairs.append(value[0])
    start, end = pairs
    N = len(y)
    for order in itertools.permutations(range(N)):
        batches = [[np.array([i]) for i in order]] * epochs
        replay = _torch_train(start, X, y, lr, momentum, epochs, batches)["params"]
        if all(np.allclose(end[k], replay[k], rtol=1e-8, atol=1e-12) for k in shapes):
            if list(order) == list(range(N)):
                return ("the samples come in their rows' order in every epoch, without shuffling: draw a new order "
                        "every epoch, order = rng.permutation(N)")
            return (f"every epoch took the samples in the same order {list(order)}: the order is drawn once, before "
                    f"the epochs; draw a new one at the start of every epoch, inside the epoch loop")
    return None


def check_divergence(train_mlp: Callable, X: np.ndarray, y: np.ndarray, layer_sizes: Sequence[int], *,
                     init_scale: float, epochs: int, seed: int) -> Comparison:
    """Weights so large that the first logits overflow: the run must stop at once, saying so."""
    __tracebackhide__ = True
    label = f"init_scale = {init_scale:g}: the logits overflow at once"
    N = len(X)
    returned, _ = quiet_call(train_mlp, X.copy(), y.copy(), list(layer_sizes), 0.01, epochs, max(1, N // 2),
                             np.random.default_rng(seed), init_scale=init_scale)
    value = plain_form(returned)
    if type(value) not in (tuple, list) or len(value) != 2:
        raise CheckFailed(f"✗ train_mlp [{label}]: returned {_kind(value)}; return the pair (params, history)")
    problem, _ = history_problem(value[1], epochs, False, diverged=True)
    if problem:
        raise CheckFailed(f"✗ train_mlp [{label}]: {problem}")
    return Comparison("train_mlp", True, f"✓ train_mlp [{label}]: stopped after {len(value[1]['loss'])} epoch(s), "
                                         f"diverged = True")


def check_digits_accuracy(train_mlp: Callable, digits: Any, seeds: Sequence[int] = (0, 1, 2),
                          **overrides: Any) -> Comparison:
    """train_mlp with DEFAULTS (and ``overrides``) on the digits, once per seed: each run's history
    must keep the contract, the validation accuracy of its last epoch must be that of the returned
    params, and the test accuracy (torch's forward on the returned params), averaged over the
    seeds, must reach TARGET_ACCURACY."""
    __tracebackhide__ = True
    options = dict(DEFAULTS, **overrides)
    sizes = list(options.pop("layer_sizes"))
    accuracies = []
    for seed in seeds:
        returned = train_mlp(digits.X_train.copy(), digits.y_train.copy(), sizes, options["lr"], options["epochs"],
                             options["batch_size"], np.random.default_rng(seed), momentum=options["momentum"],
                             X_val=digits.X_val.copy(), y_val=digits.y_val.copy(), init_scale=options["init_scale"])
        value = plain_form(returned)
        problem = digits_run_problem(value, sizes, options["epochs"], digits.X_val, digits.y_val)
        if problem:
            raise CheckFailed(f"✗ train_mlp [the digits, seed {seed}]: {problem}")
        accuracies.append(accuracy(value[0], digits.X_test, digits.y_test))
    mean = float(np.mean(accuracies))
    runs = ", ".join(f"{a:.2%}" for a in accuracies)
    if not mean >= TARGET_ACCURACY:
        raise CheckFailed(f"✗ train_mlp [the digits, seeds {list(seeds)}]: test accuracy {mean:.2%} on average "
                          f"({runs}), below {TARGET_ACCURACY:.0%}")
    return Comparison("train_mlp", True, f"✓ train_mlp [the digits, seeds {list(seeds)}]: test accuracy {mean:.2%} on "
                                         f"average ({runs}), at least {TARGET_ACCURACY:.0%}")


def digits_run_problem(value: Any, sizes: Sequence[int], epochs: int, X_val: np.ndarray,
                       y_val: np.ndarray) -> Optional[str]:
    """Why one run's (params, history) on the digits breaks the contract (the accuracy aside)."""
    problem, record = _run_problem(value, sizes, epochs, True)
    if problem:
        return problem
    params = value[0]
    want = accuracy(params, X_val, y_val)
    if abs(record["val_acc"][-1] - want) > 1e-12:
        return (f"history['val_acc'][-1] is {record['val_acc'][-1]:.6g}, but the returned params score {want:.6g} on "
                f"X_val — likely cause: measure the validation accuracy at the end of each epoch, after its updates")
    if not record["loss"][-1] < record["loss"][0]:
        return (f"the training loss did not go down: {record['loss'][0]:.4g} in the first epoch, "
                f"{record['loss'][-1]:.4g} in the last")
    return None
