"""Probes of notebook 03, manual backprop (run in the student's process; no references here).

Each probe builds the student's object from a case's plain inputs, calls it step by step and
records, as plain data, what every call returned or raised and what the attributes held. It
never decides anything: the judge (``autograder.hidden.nb03_manual_backprop``) does.

A recorded call or attribute is a dict ``{"kind", "value", "error", "message"}`` with the
meaning of :class:`Outcome`'s fields, so that one failing call does not hide the others.

``train_step`` and ``Sequential`` are probed with stand-in objects that return arrays given
in the case and log every call, so that they are judged apart from the student's own layers.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .core import Case, Outcome, UnsupportedOutput, call_plain, copy_args, plain, raised


def _record(outcome: Outcome) -> dict:
    return {"kind": outcome.kind, "value": outcome.value, "error": outcome.error, "message": outcome.message}


def _call(fn: Callable, *args: Any) -> dict:
    """Call fn (student code) and record what it returned or raised."""
    return _record(call_plain(fn, *args))


def _method(obj: Any, name: str, *args: Any) -> dict:
    """Call obj.<name>(*args) and record the result; a missing method is recorded as raised."""
    try:
        fn = getattr(obj, name)
    except Exception as exc:  # AttributeError, or a property that raises
        return _record(raised(exc))
    return _call(fn, *args)


def _attribute(obj: Any, name: str) -> dict:
    """Read obj.<name> and record it as plain data."""
    try:
        value = getattr(obj, name)
    except Exception as exc:
        return _record(raised(exc))
    try:
        return _record(Outcome("returned", value=plain(value)))
    except UnsupportedOutput as exc:
        return _record(Outcome("unsupported", message=f".{name} is {exc}"))


def _set(obj: Any, name: str, value: Any) -> dict | None:
    """Set obj.<name> = value; the record of the exception if that fails, else None."""
    try:
        setattr(obj, name, value)
    except Exception as exc:
        return _record(raised(exc))
    return None


def _run_steps(layer: Any, steps: list, read_after_backward: tuple) -> list:
    """Call the layer's methods in the given order; after each backward read the named attributes."""
    records = []
    for method, arg in steps:
        record = {"method": method, "call": _method(layer, method, arg)}
        if method == "backward":
            for name in read_after_backward:
                record[name] = _attribute(layer, name)
        records.append(record)
    return records


# ----------------------------------------------------------------------------------------------
# Linear


def linear_init(obj: Any, case: Case) -> Outcome:
    """Build Linear(in_features, out_features, rng) for each (in, out, seed) of the case; read W and b."""
    built = []
    for in_features, out_features, seed in copy_args(case.kwargs["layers"]):
        try:
            layer = obj(in_features, out_features, np.random.default_rng(seed))
        except Exception as exc:
            error = _record(raised(exc))
            built.append({"W": error, "b": error})
            continue
        built.append({"W": _attribute(layer, "W"), "b": _attribute(layer, "b")})
    return Outcome("returned", value={"layers": built})


def linear(obj: Any, case: Case) -> Outcome:
    """Build a Linear, give it the case's W and b, then run the case's forward/backward steps."""
    kw = copy_args(case.kwargs)
    try:
        layer = obj(kw["in_features"], kw["out_features"], np.random.default_rng(kw["seed"]))
    except Exception as exc:
        return raised(exc)
    for name in ("W", "b"):
        failed = _set(layer, name, kw[name])
        if failed is not None:
            return Outcome("raised", error=failed["error"], message=f"setting .{name}: {failed['message']}")
    steps = _run_steps(layer, kw["steps"], ("dW", "db"))
    return Outcome("returned", value={"steps": steps, "W_after": _attribute(layer, "W"),
                                      "b_after": _attribute(layer, "b")})


# ----------------------------------------------------------------------------------------------
# ReLU and MSELoss


def relu(obj: Any, case: Case) -> Outcome:
    """Build ReLU() and run the case's forward/backward steps."""
    try:
        layer = obj()
    except Exception as exc:
        return raised(exc)
    return Outcome("returned", value={"steps": _run_steps(layer, copy_args(case.kwargs["steps"]), ())})


def mse_loss(obj: Any, case: Case) -> Outcome:
    """Build MSELoss(), call forward(y_pred, y_true), then backward() unless forward raised."""
    kw = copy_args(case.kwargs)
    try:
        loss_fn = obj()
    except Exception as exc:
        return raised(exc)
    forward = _method(loss_fn, "forward", kw["y_pred"], kw["y_true"])
    backward = _method(loss_fn, "backward") if forward["kind"] == "returned" else None
    return Outcome("returned", value={"forward": forward, "backward": backward})


# ----------------------------------------------------------------------------------------------
# Sequential, with stand-in layers


class _LoggingLayer:
    """A stand-in layer: logs what it receives and returns the arrays it was given."""

    def __init__(self, index: int, out: np.ndarray, grad: np.ndarray, log: list):
        self._index, self._out, self._grad, self._log = index, out, grad, log

    def forward(self, X):
        self._log.append(["forward", self._index, _as_logged(X)])
        return self._out.copy()

    def backward(self, dY):
        self._log.append(["backward", self._index, _as_logged(dY)])
        return self._grad.copy()

    def __call__(self, X):
        return self.forward(X)


def _as_logged(x: Any) -> Any:
    try:
        return plain(x)
    except UnsupportedOutput as exc:
        return f"unsupported: {exc}"


def sequential(obj: Any, case: Case) -> Outcome:
    """Build Sequential(*stand-ins), read .layers, call forward(X) then backward(dY)."""
    kw = copy_args(case.kwargs)
    log: list = []
    layers = [_LoggingLayer(i, out, grad, log) for i, (out, grad) in enumerate(zip(kw["outs"], kw["grads"]))]
    try:
        model = obj(*layers)
    except Exception as exc:
        return raised(exc)
    try:
        held = getattr(model, "layers")
        held_type = "list" if type(held) is list else ("tuple" if type(held) is tuple else "other")
        order = [next((i for i, layer in enumerate(layers) if item is layer), -1) for item in held]
    except Exception as exc:
        held_type, order = f"raised {type(exc).__name__}", []
    forward = _method(model, "forward", kw["X"])
    n_forward = len(log)
    backward = _method(model, "backward", kw["dY"])
    return Outcome("returned", value={"layers_type": held_type, "layers_order": order, "forward": forward,
                                      "backward": backward, "log": log, "n_forward_log": n_forward})


# ----------------------------------------------------------------------------------------------
# train_step, with a stand-in model, layers and loss


def _stand_in_linear_class(student_linear: Any) -> type:
    """A subclass of the student's Linear (so isinstance works) with canned behaviour."""

    def __init__(self, spec, index, log):
        self._spec, self._index, self._log = spec, index, log
        self.W = spec["W"].copy()
        self.b = spec["b"].copy()
        self.dW = spec["stale_dW"].copy()  # gradients of an earlier step, until backward runs
        self.db = spec["stale_db"].copy()

    def deliver(self):
        self.dW = self._spec["dW"].copy()
        self.db = self._spec["db"].copy()

    def forward(self, X):
        self._log.append(f"layer{self._index}.forward")
        return self._spec["out"].copy()

    def backward(self, dY):
        self._log.append(f"layer{self._index}.backward")
        self.deliver()
        return self._spec["dX"].copy()

    body = {"__init__": __init__, "deliver": deliver, "forward": forward, "backward": backward,
            "__call__": forward, "__module__": __name__, "__qualname__": "Linear"}
    if isinstance(student_linear, type):
        try:
            return type("Linear", (student_linear,), body)
        except Exception:  # a class that cannot be subclassed: fall back to a plain stand-in
            pass
    return type("Linear", (), body)


class _StandInActivation:
    """A layer without parameters; train_step must leave it alone."""

    def __init__(self, spec: dict, index: int, log: list):
        self._spec, self._index, self._log = spec, index, log

    def forward(self, X):
        self._log.append(f"layer{self._index}.forward")
        return self._spec["out"].copy()

    def backward(self, dY):
        self._log.append(f"layer{self._index}.backward")
        return self._spec["dX"].copy()

    def __call__(self, X):
        return self.forward(X)


class _StandInModel:
    """A model with .layers, .forward and .backward that returns the case's arrays."""

    def __init__(self, layers: list, y_pred: np.ndarray, dX: np.ndarray, log: list, received: dict):
        self.layers = layers
        self._y_pred, self._dX, self._log, self._received = y_pred, dX, log, received

    def forward(self, X):
        self._log.append("model.forward")
        self._received.setdefault("model.forward", _as_logged(X))
        return self._y_pred.copy()

    def backward(self, dY):
        self._log.append("model.backward")
        self._received.setdefault("model.backward", _as_logged(dY))
        for layer in self.layers:
            if hasattr(type(layer), "deliver"):
                layer.deliver()
        return self._dX.copy()

    def __call__(self, X):
        return self.forward(X)


class _StandInLoss:
    """A loss whose forward returns the case's losses in turn and whose backward returns its dY."""

    def __init__(self, losses: list, dY: np.ndarray, log: list, received: dict):
        self._losses, self._dY, self._log, self._received = losses, dY, log, received
        self._calls = 0

    def forward(self, y_pred, y_true):
        self._log.append("loss.forward")
        self._received.setdefault("loss.forward", [_as_logged(y_pred), _as_logged(y_true)])
        value = self._losses[min(self._calls, len(self._losses) - 1)]
        self._calls += 1
        return value

    def backward(self):
        self._log.append("loss.backward")
        return self._dY.copy()

    def __call__(self, y_pred, y_true):
        return self.forward(y_pred, y_true)


def _student_classes(obj: Any) -> dict:
    """The student's Linear and ReLU, from the namespace train_step was defined in (None when absent)."""
    try:
        namespace = getattr(obj, "__globals__")
    except Exception:
        return {}
    if type(namespace) is not dict:
        return {}
    return {name: namespace.get(name) for name in ("Linear", "ReLU")}


def _put(obj: Any, name: str, value: np.ndarray) -> bool:
    """Give obj.<name> the value from outside: by assignment, or else by writing into the array it holds."""
    if _set(obj, name, value.copy()) is None:
        return True
    try:
        held = getattr(obj, name)
        if type(held) is np.ndarray and held.shape == value.shape:
            held[...] = value
            return True
    except Exception:
        pass
    return False


class _RecordingModel:
    """A model over the student's own layers: runs their forward and backward in order, and logs
    each call from outside the layers."""

    def __init__(self, layers: list, backward_order: list, log: list, received: dict):
        self.layers = layers
        self._order = backward_order  # from the case: the probe holds no model of its own
        self._log, self._received = log, received

    def forward(self, X):
        self._log.append("model.forward")
        self._received.setdefault("model.forward", _as_logged(X))
        for layer in self.layers:
            X = layer.forward(X)
        return X

    def backward(self, dY):
        self._log.append("model.backward")
        self._received.setdefault("model.backward", _as_logged(dY))
        for index in self._order:
            dY = self.layers[index].backward(dY)
        return dY

    def __call__(self, X):
        return self.forward(X)


def _own_layers(classes: dict, kw: dict) -> list | None:
    """The case's layers as instances of the student's own Linear and ReLU, built through their
    constructors and given the case's W and b (and stale gradients) from outside; None when the
    student's classes cannot run the case's forward and backward on their own."""
    linear, relu = classes.get("Linear"), classes.get("ReLU")
    if not isinstance(linear, type) or not isinstance(relu, type):
        return None
    try:
        layers = []
        width = kw["X"].shape[1]
        for index, spec in enumerate(kw["layers"]):
            if spec["kind"] == "linear":
                out = spec["W"].shape[0]
                layer = linear(width, out, np.random.default_rng(index))  # W and b are then set from the case
                if not (_put(layer, "W", spec["W"]) and _put(layer, "b", spec["b"])):
                    return None
                _put(layer, "dW", spec["stale_dW"])  # gradients of an earlier step, where they can be set
                _put(layer, "db", spec["stale_db"])
                width = out
            else:
                layer = relu()
            layers.append(layer)
        # a dry run on a copy of the input: the layers must work before train_step is judged on them
        Y = kw["X"].copy()
        for layer in layers:
            Y = layer.forward(Y)
        dY = np.ones_like(np.asarray(Y, dtype=np.float64))
        for index in kw["backward_order"]:
            dY = layers[index].backward(dY)
        for layer, spec in zip(layers, kw["layers"]):
            if spec["kind"] == "linear":
                _put(layer, "dW", spec["stale_dW"])
                _put(layer, "db", spec["stale_db"])
        return layers
    except Exception:
        return None


def train_step(obj: Any, case: Case) -> Outcome:
    """Run the student's train_step; record the call log, the return value and every layer's state.

    The layers are the student's own Linear and ReLU (so isinstance, type(...) is and read-only
    properties behave as in the notebook), driven by a model and a loss that record from outside.
    Where the student's layers cannot run, stand-ins with canned arrays take their place, so that
    train_step is still judged apart from Linear and ReLU.
    """
    kw = copy_args(case.kwargs)
    log: list = []
    received: dict = {}
    layers = _own_layers(_student_classes(obj), kw)
    own = layers is not None
    if own:
        model: Any = _RecordingModel(layers, kw["backward_order"], log, received)
    else:
        linear_class = _stand_in_linear_class(_student_classes(obj).get("Linear"))
        layers = []
        for index, spec in enumerate(kw["layers"]):
            if spec["kind"] == "linear":
                try:
                    layer = linear_class(spec, index, log)
                except Exception:  # the student's class meddles with attribute setting
                    layer = _stand_in_linear_class(None)(spec, index, log)
            else:
                layer = _StandInActivation(spec, index, log)
            layers.append(layer)
        model = _StandInModel(layers, kw["y_pred"], kw["dX"], log, received)
    loss_fn = _StandInLoss(kw["losses"], kw["dY"], log, received)
    returned = _call(obj, model, loss_fn, kw["X"], kw["y"], kw["lr"])
    states = []
    for layer, spec in zip(layers, kw["layers"]):
        try:
            names = sorted(str(n) for n in vars(layer))
        except TypeError:  # a layer with __slots__
            names = []
        state: dict = {"parameters": sorted(set(names) & {"W", "b", "dW", "db"})}
        if spec["kind"] == "linear":
            for name in ("W", "b", "dW", "db"):
                state[name] = _attribute(layer, name)
        states.append(state)
    layers_intact = type(model.layers) is list and len(model.layers) == len(layers) and all(
        a is b for a, b in zip(model.layers, layers))
    return Outcome("returned", value={"mode": "own" if own else "stand-in", "returned": returned, "log": log,
                                      "received": received, "layers": states, "layers_intact": layers_intact})


#: probe name (without the "nb03." prefix) -> probe(obj, case) -> Outcome
PROBES: dict[str, Callable[[Any, Case], Outcome]] = {
    "Linear_init": linear_init,
    "Linear": linear,
    "ReLU": relu,
    "MSELoss": mse_loss,
    "Sequential": sequential,
    "train_step": train_step,
}
