"""Probes of notebook 02 (run in the student's process; no references here).

``value_program`` runs a small program, given as plain data, with the student's
``Value`` class and reports what every node holds. A program is a list of steps,
each creating one node (the node's index is the step's position):

    ("leaf", x)            Value(x)
    ("add", i, j)          n[i] + n[j]        also "sub", "mul", "div", "pow" (n[i] ** n[j])
    ("add_const", i, k)    n[i] + k           also "sub_const", "mul_const", "div_const", "pow_const"
    ("radd_const", k, i)   k + n[i]           also "rsub_const", "rmul_const", "rdiv_const", "rpow_const"
    ("neg", i)             -n[i]
    ("exp", i)             n[i].exp()         also "log", "tanh", "sigmoid", "relu"

The case is ``(program, backward)``; with ``backward`` true, ``.backward()`` is called
on the last node. The outcome is ``{"data": [...], "grad": [...]}``, one entry per node,
each a number or a string saying what was found instead. An exception is reported as
raised, its message starting with ``step <index>:`` or ``step backward:``.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

from .core import Case, Outcome, UnsupportedOutput, plain, raised

_BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
}
_METHODS = ("exp", "log", "tanh", "sigmoid", "relu")


def _step(obj: Any, nodes: list, step: tuple) -> Any:
    op = step[0]
    if op == "leaf":
        return obj(step[1])
    if op in _BINARY:
        return _BINARY[op](nodes[step[1]], nodes[step[2]])
    if op.endswith("_const"):
        name = op[: -len("_const")]
        if name.startswith("r") and name[1:] in _BINARY:
            return _BINARY[name[1:]](step[1], nodes[step[2]])  # the number on the left
        return _BINARY[name](nodes[step[1]], step[2])  # the number on the right
    if op == "neg":
        return -nodes[step[1]]
    if op in _METHODS:
        return getattr(nodes[step[1]], op)()
    raise ValueError(f"unknown step {op!r}")  # a malformed case: the grader's bug, not the student's


def _number(node: Any, attribute: str) -> Any:
    """``node.<attribute>`` as a plain number, or a string saying what was found instead."""
    try:
        value = getattr(node, attribute)
    except Exception as exc:  # the student's object is data: report what happened
        return f"reading .{attribute} raised {type(exc).__name__}"
    try:
        value = plain(value)
    except UnsupportedOutput as exc:
        return str(exc)
    if type(value) is bool or not (type(value) is int or type(value) is float):
        return "None" if value is None else f"a {type(value).__name__}"
    return value


def value_program(obj: Any, case: Case) -> Outcome:
    """Build the case's program with the student's class, optionally call backward on the last node."""
    program, backward = case.args
    nodes: list = []
    for index, step in enumerate(program):
        try:
            nodes.append(_step(obj, nodes, tuple(step)))
        except Exception as exc:
            failure = raised(exc)
            return Outcome("raised", error=failure.error, message=f"step {index}: {failure.message}")
    data = [_number(node, "data") for node in nodes]
    if backward:
        try:
            nodes[-1].backward()
        except Exception as exc:
            failure = raised(exc)
            return Outcome("raised", error=failure.error, message=f"step backward: {failure.message}")
    grad = [_number(node, "grad") for node in nodes]
    return Outcome("returned", value={"data": data, "grad": grad})


#: probe name (without the "nb02." prefix) -> probe(obj, case) -> Outcome
PROBES: dict[str, Callable[[Any, Case], Outcome]] = {
    "value_program": value_program,
}
