"""Hidden checks of notebook 02, autograd. Never shipped to students.

The scalar autodiff engine ``Value`` is checked in four parts (four exercise names,
one graded object): forward arithmetic, backward of the basic operators, the
functions and powers, accumulation over shared nodes. Each case is a small
program in plain data (see ``autograder.probe.nb02``); the probe runs it with the
student's class, the judge reruns it with float64 PyTorch tensors and compares
every node's ``.data`` and ``.grad``.

To say *why* a gradient is wrong, the judge also knows each operation's local
derivatives (from PyTorch, one operation at a time), so it can tell a wrong local
derivative from a missing chain-rule factor, a gradient that was assigned instead
of added, or nodes visited in the wrong order.
"""
from __future__ import annotations

import math
import re
from itertools import combinations
from typing import Any, Optional

import numpy as np

from course.checks import Comparison, compare

from .framework import grouped, Case, HiddenCheck, Outcome, by_exercise, outcome_failure
from .judging import torch_module

NOTEBOOK = "02_autograd"


def _fail(name: str, text: str) -> Comparison:
    return Comparison(name, False, f"✗ {name}: {text}")


def _as_sequence(value: Any) -> Any:
    """A returned 1-D array of numbers as a list of them (the contract: any sequence of numbers)."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return [v for v in value.tolist()]
    return value


def _num(v: float) -> str:
    return f"{v:.6g}"


def _pair(expected: float, got: float) -> tuple[str, str]:
    """expected and got, with as many digits as it takes to tell them apart (up to 17)."""
    for digits in (6, 10, 17):
        e, g = f"{expected:.{digits}g}", f"{got:.{digits}g}"
        if e != g:
            break
    return e, g


def _float32_hint(expected: float, got: float) -> Optional[str]:
    """A likely cause when got is expected rounded to single precision."""
    if not (math.isfinite(expected) and math.isfinite(got)) or got == expected:
        return None
    if abs(got - expected) <= 2 ** -20 * abs(expected):
        return ("the numbers are kept in single precision (float32, e.g. np.float32 or a torch tensor): "
                "keep .data and .grad as Python floats (double precision)")
    return None


def _close(got: float, expected: float, scale: float = 1.0) -> bool:
    if math.isnan(expected):
        return math.isnan(got)
    if math.isinf(expected):
        return got == expected
    return abs(got - expected) <= 1e-7 * abs(expected) + 1e-10 * scale


# ----------------------------------------------------------------------------------------------
# programs: naming, reference run, local derivatives

_BINARY_OPS = ("add", "sub", "mul", "div", "pow")
_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
_DUNDER = {"add": "__add__", "sub": "__sub__", "mul": "__mul__", "div": "__truediv__", "pow": "__pow__"}
_FUNCTIONS = ("exp", "log", "tanh", "sigmoid", "relu")


def _operands(step: tuple) -> list[int]:
    """Indices of the nodes a step uses, one entry per use (a * a uses node a twice)."""
    op = step[0]
    if op == "leaf":
        return []
    if op in _BINARY_OPS:
        return [step[1], step[2]]
    if op.endswith("_const"):
        return [step[2]] if op.startswith("r") and op[1:-6] in _BINARY_OPS else [step[1]]
    return [step[1]]


def _names(program: list) -> list[str]:
    names, leaves = [], 0
    for k, step in enumerate(program):
        if step[0] == "leaf":
            if len(step) > 2 and type(step[2]) is str:
                names.append(step[2])  # a leaf with a name of its own, e.g. the upstream factor u
            else:
                names.append("abcdefghijklmnopqrstuvwxyz"[leaves] if leaves < 26 else f"x{leaves}")
            leaves += 1
        else:
            names.append(f"v{k}")
    return names


def _const(k: Any) -> str:
    return repr(k)


def _expression(program: list, k: int, names: list[str]) -> str:
    """What node k computes, e.g. "v3 = a * b" or "v4 = 2.0 - v3"."""
    step = program[k]
    op = step[0]
    n = names
    if op == "leaf":
        return f"{n[k]} = Value({_const(step[1])})"
    if op in _BINARY_OPS:
        return f"{n[k]} = {n[step[1]]} {_SYMBOL[op]} {n[step[2]]}"
    if op.endswith("_const"):
        base = op[:-6]
        if base.startswith("r") and base[1:] in _BINARY_OPS:
            return f"{n[k]} = {_const(step[1])} {_SYMBOL[base[1:]]} {n[step[2]]}"
        return f"{n[k]} = {n[step[1]]} {_SYMBOL[base]} {_const(step[2])}"
    if op == "neg":
        return f"{n[k]} = -{n[step[1]]}"
    return f"{n[k]} = {n[step[1]]}.{op}()"


def _method(step: tuple) -> str:
    """The method of Value that a step calls."""
    op = step[0]
    if op == "leaf":
        return "__init__"
    if op in _BINARY_OPS:
        return _DUNDER[op]
    if op.endswith("_const"):
        base = op[:-6]
        if base.startswith("r") and base[1:] in _BINARY_OPS:
            return "__r" + _DUNDER[base[1:]][2:]
        return _DUNDER[base]
    if op == "neg":
        return "__neg__"
    return op


def _apply(step: tuple, args: list):
    """Step's operation on torch tensors (args: one tensor per use)."""
    torch = torch_module()
    op = step[0]
    if op in _BINARY_OPS:
        a, b = args
        return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b, "pow": a ** b}[op]
    if op.endswith("_const"):
        base = op[:-6]
        if base.startswith("r") and base[1:] in _BINARY_OPS:
            k, (v,) = float(step[1]), args
            return {"add": k + v, "sub": k - v, "mul": k * v, "div": k / v, "pow": k ** v}[base[1:]]
        (v,), k = args, float(step[2])
        return {"add": v + k, "sub": v - k, "mul": v * k, "div": v / k, "pow": v ** k}[base]
    (v,) = args
    if op == "neg":
        return -v
    return {"exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
            "relu": torch.relu}[op](v)


class _Reference:
    """A program run with float64 tensors: every node's value and gradient, and each
    step's local derivatives (one per use of an input)."""

    def __init__(self, program: list, backward: bool):
        torch = torch_module()
        self.program = program
        self.names = _names(program)
        self.uses = [_operands(tuple(step)) for step in program]
        tensors = []
        for step in program:
            step = tuple(step)
            if step[0] == "leaf":
                t = torch.tensor(float(step[1]), dtype=torch.float64, requires_grad=True)
            else:
                t = _apply(step, [tensors[i] for i in _operands(step)])
                t.retain_grad()
            tensors.append(t)
        self.data = [float(t.detach()) for t in tensors]
        self.local: list[list[float]] = []
        for step, uses in zip(program, self.uses):
            if not uses:
                self.local.append([])
                continue
            inputs = [torch.tensor(self.data[i], dtype=torch.float64, requires_grad=True) for i in uses]
            out = _apply(tuple(step), inputs)
            partials = torch.autograd.grad(out, inputs, allow_unused=True)
            self.local.append([0.0 if p is None else float(p) for p in partials])
        if backward:
            tensors[-1].backward()
            self.grad = [0.0 if t.grad is None else float(t.grad) for t in tensors]
        else:
            self.grad = [0.0] * len(tensors)
        self.consumers: list[list[tuple[int, int]]] = [[] for _ in program]  # (node, use position)
        for j, uses in enumerate(self.uses):
            for p, i in enumerate(uses):
                self.consumers[i].append((j, p))

    # engines with a known mistake, on the same local derivatives, for diagnoses

    def simulate(self, order: list[int], *, assign: bool = False) -> list[float]:
        """Gradients when each node in ``order`` passes on its current grad once."""
        grads = [0.0] * len(self.program)
        grads[-1] = 1.0
        for j in order:
            for i, local in zip(self.uses[j], self.local[j]):
                if assign:
                    grads[i] = local * grads[j]
                else:
                    grads[i] += local * grads[j]
        return grads

    def recursive(self, reverse_operands: bool) -> list[float]:
        """A backward that recurses into the inputs without a topological sort, so a node
        reached along k paths passes its grad on k times (each time with what it has so far)."""
        order: list[int] = []

        def visit(j: int, depth: int) -> None:
            if len(order) > 10_000 or depth > 200:
                return
            order.append(j)
            inputs = list(dict.fromkeys(self.uses[j]))
            for i in (reversed(inputs) if reverse_operands else inputs):
                visit(i, depth + 1)

        visit(len(self.program) - 1, 0)
        return self.simulate(order)

    def topological_without_visited(self, reverse_operands: bool, dedupe: bool) -> list[float]:
        """A depth-first topological sort that keeps no set of visited nodes: a node reached along
        k paths is appended k times, so its _backward runs k times (each time with what it has so far)."""
        order: list[int] = []

        def visit(j: int, depth: int) -> None:
            if len(order) > 10_000 or depth > 200:
                return
            inputs = list(dict.fromkeys(self.uses[j])) if dedupe else list(self.uses[j])
            for i in (reversed(inputs) if reverse_operands else inputs):
                visit(i, depth + 1)
            order.append(j)

        visit(len(self.program) - 1, 0)
        return self.simulate(order[::-1])

    def breadth_first(self, reverse_operands: bool) -> list[float]:
        """A backward that visits the nodes breadth-first from the output, each once: a node can pass its
        grad on before a node further from the output has added its share."""
        out = len(self.program) - 1
        order, seen, queue = [], {out}, [out]
        while queue:
            j = queue.pop(0)
            order.append(j)
            inputs = list(dict.fromkeys(self.uses[j]))
            for i in (reversed(inputs) if reverse_operands else inputs):
                if i not in seen:
                    seen.add(i)
                    queue.append(i)
        return self.simulate(order)

    def reachable(self) -> set[int]:
        seen, todo = set(), [len(self.program) - 1]
        while todo:
            j = todo.pop()
            if j not in seen:
                seen.add(j)
                todo.extend(self.uses[j])
        return seen


# ----------------------------------------------------------------------------------------------
# reading the probe's outcome


def _node_numbers(value: Any, key: str, n: int) -> tuple[Optional[list], Optional[str]]:
    """The per-node numbers under ``key``, or (None, what came back instead)."""
    if type(value) is not dict:
        return None, f"the probe returned {type(value).__name__}, not a dict of node values"
    items = value.get(key)
    if type(items) is not list or len(items) != n:
        kind = type(items).__name__ if type(items) is not list else f"a list of {len(items)}"
        return None, f"expected {n} node values under {key!r}, got {kind}"
    return items, None


def _step_failure(name: str, program: list, names: list[str], outcome: Outcome) -> Comparison:
    """Diagnosis of an exception raised while building the program or in backward."""
    match = re.match(r"step (\d+|backward): (.*)", outcome.message, re.DOTALL)
    if not match:
        failure = outcome_failure(name, Case(name), outcome)
        return failure if failure is not None else _fail(name, f"raised {outcome.error}")
    where, message = match.group(1), match.group(2)
    if where == "backward":
        context = f"calling backward() on {names[-1]}"
    else:
        k = int(where)
        step = tuple(program[k])
        context = f"computing {_expression(program, k, names)} (Value.{_method(step)})"
    if outcome.error == "NotImplementedError":
        stub = re.match(r"([A-Za-z_][\w.]*): replace this line", message)
        what = f" (the stub of {stub.group(1)} still raises)" if stub else ""
        return _fail(name, f"not implemented yet: {context}{what}")
    text = f"{context} raised {outcome.error}: {message}"
    if where != "backward":
        step = tuple(program[int(where)])
        reflected = step[0].startswith("r") and step[0].endswith("_const")
        number_attribute = re.search(r"'(int|float)' object has no attribute", message)
        if outcome.error == "TypeError" and reflected and "unsupported operand" in message:
            text += (f" — likely cause: a number on the left calls the Value's {_method(step)}; "
                     "define it (other + self for __radd__, other - self for __rsub__, ...)")
        elif outcome.error == "RecursionError" and reflected:
            symbol = _SYMBOL[step[0][1:-6]]
            text += (f" — likely cause: inside {_method(step)}, other {symbol} self with the number other on the "
                     f"left calls {_method(step)} again; write it with the Value on the left "
                     "(self + other for __radd__, (-self) + other for __rsub__, Value(other) ** self for __rpow__)")
        elif number_attribute and number_attribute.group(1) == "int" and step[0] in ("pow_const", "div", "div_const",
                                                                                     "rdiv_const"):
            text += (" — likely cause: v ** k with an int k (a / b computes b ** -1) went down the Value branch "
                     "of __pow__: test isinstance(other, Value), so that every plain number, int or float, takes "
                     "the power rule")
        elif outcome.error in ("TypeError", "AttributeError") and step[0].endswith("_const"):
            text += " — likely cause: a plain number must be wrapped: other = other if isinstance(other, Value) else Value(other)"
        elif outcome.error == "RecursionError":
            text += " — likely cause: an operator that calls itself (e.g. __sub__ defined through __sub__)"
    elif outcome.error == "RecursionError":
        text += (" — likely cause: the topological sort revisits nodes; keep a set of visited nodes")
    return _fail(name, text)


def _forward_hint(ref: _Reference, k: int, got: float) -> Optional[str]:
    step = tuple(ref.program[k])
    op = step[0]
    vals = [ref.data[i] for i in ref.uses[k]]
    with np.errstate(all="ignore"):
        def same(candidate: float) -> bool:
            return math.isfinite(candidate) and _close(got, candidate, 1.0)

        if op in ("sub", "div", "pow"):
            a, b = vals
            swapped = {"sub": lambda: b - a, "div": lambda: b / a if a else math.inf,
                       "pow": lambda: b ** a if b > 0 else math.nan}[op]()
            if same(swapped) and not same(ref.data[k]):
                return f"the operands are swapped: {_SYMBOL[op]} must compute self {_SYMBOL[op]} other"
        if op == "sub" and same(vals[0] + vals[1]):
            return "a - b came out as a + b: the minus sign is lost (a - b is a + (-b))"
        if op == "sub_const" and same(vals[0] + float(step[2])):
            return "v - k came out as v + k: the minus sign is lost (v - k is v + (-k))"
        if op in ("rsub_const", "rdiv_const", "rpow_const"):
            c, (v,) = float(step[1]), vals
            base = op[1:-6]
            swapped = {"sub": lambda: v - c, "div": lambda: v / c if c else math.inf,
                       "pow": lambda: v ** c if v > 0 else math.nan}[base]()
            if same(swapped):
                return (f"{_method(step)} computed self {_SYMBOL[base]} other; with the number on the left "
                        f"it must compute other {_SYMBOL[base]} self")
        if op == "sigmoid" and same(math.tanh(vals[0])):
            return "this is tanh; sigmoid is 1 / (1 + exp(-x))"
        if op == "relu" and same(abs(vals[0])):
            return "relu is max(x, 0), not |x|"
    return None


def _grad_hint(ref: _Reference, i: int, got: float, all_got: list[float]) -> Optional[str]:
    """Why node i, whose consumers all have the right grad, got the wrong grad."""
    expected = ref.grad[i]
    uses = ref.consumers[i]
    contributions = [ref.local[j][p] * ref.grad[j] for j, p in uses]
    scale = max([1.0] + [abs(c) for c in contributions])

    def same(candidate: float) -> bool:
        return math.isfinite(candidate) and _close(got, candidate, scale)

    n = len(ref.program)

    def matches(simulated: list[float]) -> bool:
        # the whole engine's signature: it must explain every node, and differ from the truth at several
        differs = sum(not _close(x, y, scale) for x, y in zip(simulated, ref.grad))
        return differs >= 2 and all(_close(x, y, scale) for x, y in zip(all_got, simulated))

    # orders that are not topological (checked first: a node that passed its grad on too early also
    # looks like "one path's share only")
    if any(matches(ref.breadth_first(reverse)) for reverse in (False, True)):
        return ("a node passed its grad on before every node that uses it had added its share (a breadth-first "
                "order is not a topological order): build the order depth-first, appending a node after all its "
                "inputs, then call each node's _backward once, in reverse order")
    if any(matches(ref.recursive(reverse)) for reverse in (False, True)) or any(
            matches(ref.topological_without_visited(reverse, dedupe))
            for reverse in (False, True) for dedupe in (False, True)):
        return ("a node reached along several paths passed its grad on more than once, each time with only part "
                "of it: build the topological order first, with a set of visited nodes so that every node appears "
                "in it once, then call each node's _backward once, in reverse order")
    # one path's contribution only: assigned instead of added
    if len(uses) >= 2:
        for size in range(1, len(uses)):
            for subset in combinations(range(len(uses)), size):
                partial = sum(contributions[s] for s in subset)
                if same(partial) and not same(expected):
                    return (f"grad not accumulated over the {len(uses)} paths from {ref.names[i]} to the output "
                            f"(got {'one path' if size == 1 else f'{size} paths'}'s contribution, "
                            f"{_num(partial)}, of {_num(expected)}): each _backward must add into its inputs' "
                            "grads (+=), never assign (=)")
    # whole-engine mistakes, recognised by simulating them
    if matches(ref.simulate(list(range(n)))):
        return ("only the output's own inputs received a grad: the nodes were visited in forward order (or only "
                "the output's _backward was called); backward must call every node's _backward, going through "
                "the topological order reversed, the output first, so each node has its full grad before passing "
                "it on")
    if len(uses) != 1:
        consumers = ", ".join(sorted({_expression(ref.program, j, ref.names) for j, _ in uses}))
        return (f"the nodes that use {ref.names[i]} ({consumers}) all have the right grad, so either one of their "
                "local derivatives is wrong or a node passed its grad on before it was complete: "
                "call each node's _backward once, in reverse topological order")
    (j, p), = uses
    step = tuple(ref.program[j])
    op = step[0]
    g = ref.grad[j]
    local = ref.local[j][p]
    out = ref.data[j]
    x = ref.data[i]
    role = ref.names[i]
    expr = _expression(ref.program, j, ref.names)
    if g != 1.0 and same(local) and not same(expected):
        return (f"the chain rule: in {expr} the local derivative ({_num(local)}) must be multiplied by "
                f"{ref.names[j]}.grad ({_num(g)})")
    if op == "mul":
        other = ref.data[ref.uses[j][1 - p]]
        if same(x * g):
            return (f"grad of {role} in a*b: expected b * out.grad ({_num(other)} * {_num(g)}), "
                    f"got a * out.grad (its own value instead of the other factor's)")
    if op in ("sub",) and p == 1 and same(g):
        return f"grad of {role} in a - b: expected -out.grad, got +out.grad (the sign of the second operand)"
    if op == "rsub_const" and same(g):
        return f"grad of {role} in {expr}: expected -out.grad, got +out.grad"
    if op == "div":
        a, b = (ref.data[u] for u in ref.uses[j])
        if p == 1 and same(a / b ** 2 * g):
            return f"grad of {role} in a / b: expected -a / b**2 * out.grad, the sign is missing"
        if p == 1 and same(-a / b * g):
            return (f"grad of {role} in a / b: expected -a / b**2 * out.grad, got -a / b * out.grad; with / as "
                    "a * b ** -1, the power rule's - 1 is missing")
        if p == 1 and same(1 / b * g):
            return f"grad of {role} in a / b: expected -a / b**2 * out.grad (d(a/b)/db), got 1/b * out.grad"
    if op == "rdiv_const" and same(-float(step[1]) / x * g):
        return (f"grad of {role} in k / v: expected -k / v**2 * out.grad, got -k / v * out.grad; with / as "
                "k * v ** -1, the power rule's - 1 is missing")
    if op == "rdiv_const" and same(-local * g):
        return f"grad of {role} in {expr}: expected -k / v**2 * out.grad, the sign is missing"
    if op == "pow_const":
        k = float(step[2])
        if same(k * x ** k * g):
            return "the derivative of v ** k is k * v ** (k - 1); got k * v ** k (the - 1 is missing)"
        if same(x ** (k - 1) * g):
            return f"the derivative of v ** k is k * v ** (k - 1); the factor k = {_num(k)} is missing"
    if op == "pow":
        base, expo = (ref.data[u] for u in ref.uses[j])
        if p == 1 and got == 0.0:
            return (f"the exponent {role} of {expr} got no grad: d(v ** w)/dw = v ** w * ln(v), "
                    "so the exponent needs a grad too")
        if p == 1 and same(expo * base ** (expo - 1) * g):
            return f"grad of the exponent {role} in v ** w is v ** w * ln(v) * out.grad, not the power rule"
        if p == 0 and same(out * math.log(base) * g):
            return f"grad of the base {role} in v ** w is w * v ** (w - 1) * out.grad; that was the exponent's"
    if op == "rpow_const":
        k = float(step[1])
        if same(x * k ** (x - 1) * g):
            return f"grad of {role} in k ** w is k ** w * ln(k) * out.grad, not the power rule"
        if same(out * g):
            return f"grad of {role} in k ** w is k ** w * ln(k) * out.grad; the factor ln(k) is missing"
    if op == "exp" and same(g):
        return "the derivative of exp(x) is exp(x): multiply out.grad by out.data"
    if op == "exp" and same(math.exp(out) * g):
        return "the derivative of exp(x) is exp(x), which is out.data already; got exp(out.data) (exp applied twice)"
    if op == "exp" and same(x * g):
        return "the derivative of exp(x) is exp(x) (= out.data), not x"
    if op == "log" and (same(x * g) or same(math.log(x) * g) or same(g)):
        return "the derivative of log(x) is 1 / x"
    if op == "tanh":
        if same((1 - x * x) * g):
            return "tanh'(x) = 1 - tanh(x)**2 uses the output t = out.data, not the input x"
        if same((1 - out) * g):
            return "tanh'(x) = 1 - t**2 with t = tanh(x); the square is missing"
    if op == "sigmoid":
        if same(out * g) or same((1 - out) * g):
            return "sigmoid'(x) = s * (1 - s) with s = sigmoid(x)"
        if same(x * (1 - x) * g):
            return "sigmoid'(x) = s * (1 - s) uses the output s = out.data, not the input x"
    if op == "relu":
        if x == 0.0 and same(g):
            return "relu gradient at exactly 0 should be 0: pass out.grad only where x > 0 (not x >= 0)"
        if x < 0 and same(g):
            return "relu blocks the gradient where x < 0: out.grad passes only where x > 0"
        if x > 0 and got == 0.0:
            return "relu passes out.grad unchanged where x > 0"
    if op == "neg" and same(g):
        return f"grad of {role} in -v is -out.grad"
    if got == 0.0 and expected != 0.0:
        return f"{expr} passed nothing back to {role}: its _backward is missing or adds 0"
    return None


def judge_program(check: HiddenCheck, case: Case, outcome: Outcome) -> Comparison:
    name = f"{check.exercise} [{case.label}]"
    program, backward = case.args
    ref = _Reference(program, backward)
    if outcome.kind == "raised":
        return _step_failure(name, program, ref.names, outcome)
    failure = outcome_failure(check.exercise, case, outcome)
    if failure is not None:
        return failure
    n = len(program)
    data, problem = _node_numbers(outcome.value, "data", n)
    if problem is None:
        grads, problem = _node_numbers(outcome.value, "grad", n)
    if problem is not None:
        return _fail(name, problem)
    # forward: the first node whose .data is wrong
    for k in range(n):
        got = data[k]
        expr = _expression(program, k, ref.names)
        if type(got) is str:
            return _fail(name, f"{expr}: .data is {got}; .data must hold a Python float"
                               + (" (did an op put a Value inside .data?)" if "Value" in got else ""))
        if type(got) is bool or type(got) not in (int, float):
            return _fail(name, f"{expr}: the probe returned {type(got).__name__} for .data, not a number")
        if not _close(float(got), ref.data[k], 1.0):
            method = _method(tuple(program[k]))
            e, g = _pair(ref.data[k], float(got))
            text = f"forward of {expr} (Value.{method}): expected {e}, got {g}"
            hint = _float32_hint(ref.data[k], float(got)) or _forward_hint(ref, k, float(got))
            return _fail(name, text + (f" — likely cause: {hint}" if hint else ""))
    # gradients
    for k in range(n):
        if type(grads[k]) is str:
            return _fail(name, f"{ref.names[k]}.grad is {grads[k]}; .grad must hold a Python float")
        if type(grads[k]) is bool or type(grads[k]) not in (int, float):
            return _fail(name, f"{ref.names[k]}: the probe returned {type(grads[k]).__name__} for .grad, not a number")
    got_grads = [float(g) for g in grads]
    if not backward:
        nonzero = [k for k in range(n) if got_grads[k] != 0.0]
        if nonzero:
            k = nonzero[0]
            return _fail(name, f"{ref.names[k]}.grad is {_num(got_grads[k])} before any backward(); "
                               "a new Value starts with grad 0.0")
        return Comparison(name, True, f"✓ {name}: {n} nodes")
    scale = max([1.0] + [abs(g) for g in ref.grad if math.isfinite(g)])
    wrong = [k for k in range(n) if not _close(got_grads[k], ref.grad[k], scale)]
    if not wrong:
        return Comparison(name, True, f"✓ {name}: {n} nodes, data and grad")
    out = n - 1
    if out in wrong:
        got = got_grads[out]
        if got == 0.0:
            return _fail(name, f"the output {ref.names[out]} has grad 0 after backward(): seed it with 1.0 "
                               "(d output / d output = 1) before the backward pass")
        return _fail(name, f"the output {ref.names[out]} should have grad 1.0 after backward(), got {_num(got)}")
    i = max(wrong)
    expected, got = ref.grad[i], got_grads[i]
    e, g = _pair(expected, got)
    text = (f"grad of {ref.names[i]}: expected {e}, got {g}"
            + (f" ({len(wrong)} nodes wrong)" if len(wrong) > 1 else ""))
    single = _float32_hint(expected, got)
    if single:
        return _fail(name, f"{text} — likely cause: {single}")
    if i not in ref.reachable() and got != 0.0:
        return _fail(name, text + f" — likely cause: {ref.names[i]} does not lead to the output, so it must keep "
                                  "grad 0.0 (visit only the nodes the output depends on)")
    hint = _grad_hint(ref, i, got, got_grads)
    users = ", ".join(sorted({_expression(program, j, ref.names) for j, _ in ref.consumers[i]}))
    text += f"; {ref.names[i]} is used in {users}"
    return _fail(name, text + (f" — likely cause: {hint}" if hint else ""))


# ----------------------------------------------------------------------------------------------
# Value, in four parts


def _leaves(*xs: float) -> list:
    return [("leaf", float(x)) for x in xs]


def _random_program(rng: np.random.Generator, n_ops: int, *, ops: tuple, share: bool) -> list:
    """Leaves in [-1.5, 1.5] (never near 0), then random steps on recent nodes."""
    program = [("leaf", float(np.round(rng.choice([-1, 1]) * rng.uniform(0.5, 1.5), 3))) for _ in range(3)]
    data = [s[1] for s in program]
    used = [0] * len(program)
    for _ in range(n_ops):
        for _attempt in range(50):
            op = str(rng.choice(ops))
            pool = list(range(len(program))) if share else [k for k in range(len(program)) if used[k] == 0]
            if not pool:
                pool = list(range(len(program)))
            i = int(rng.choice(pool[-4:]))
            others = [k for k in pool[-4:] if k != i]
            if not others and not share and op in _BINARY_OPS:
                continue
            j = int(rng.choice(others or pool[-4:]))
            c = rng.choice([2.0, 0.5, 3, -1.5]).item()
            step, value = _random_step(op, i, j, c, data)
            if step is not None and math.isfinite(value) and 0.05 < abs(value) < 50:
                break
        else:
            step, value = ("add", i, j), data[i] + data[j]
        program.append(step)
        data.append(value)
        used.append(0)
        for u in _operands(step):
            used[u] += 1
    if not share:
        # join the nodes not used yet, so every node leads to the output
        free = [k for k in range(len(program)) if used[k] == 0]
        while len(free) > 1:
            a, b = free.pop(), free.pop()
            program.append(("add", b, a))
            data.append(data[a] + data[b])
            free.append(len(program) - 1)
    return program


def _random_step(op: str, i: int, j: int, c: float, data: list):
    x, y = data[i], data[j]
    if op in ("add", "sub", "mul"):
        return (op, i, j), {"add": x + y, "sub": x - y, "mul": x * y}[op]
    if op == "div":
        return (("div", i, j), x / y) if abs(y) > 0.3 else (None, math.nan)
    if op == "neg":
        return ("neg", i), -x
    if op in ("add_const", "sub_const", "mul_const", "div_const"):
        return (op, i, c), {"add_const": x + c, "sub_const": x - c, "mul_const": x * c, "div_const": x / c}[op]
    if op in ("radd_const", "rsub_const", "rmul_const"):
        return (op, c, i), {"radd_const": c + x, "rsub_const": c - x, "rmul_const": c * x}[op]
    if op == "rdiv_const":
        return ((op, c, i), c / x) if abs(x) > 0.3 else (None, math.nan)
    if op == "pow_const":
        k = int(abs(c)) or 2
        return (op, i, k), x ** k
    raise ValueError(op)


_ARITHMETIC = ("add", "sub", "mul", "div", "neg", "add_const", "sub_const", "mul_const", "div_const",
               "radd_const", "rsub_const", "rmul_const", "rdiv_const", "pow_const")


class _ValueCheck(HiddenCheck):
    probe = "nb02.value_program"

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        try:
            return judge_program(self, case, outcome)
        except Exception as exc:  # a judge must never raise on an outcome
            name = f"{self.exercise} [{case.label}]"
            return _fail(name, f"the outcome could not be judged ({type(exc).__name__}); "
                               "check that .data and .grad hold Python floats")


class ValueArithmeticCheck(_ValueCheck):
    exercise = "Value_arithmetic"

    def cases(self) -> list[Case]:
        fixed = [
            ("a + b, a - b, a * b, a / b", _leaves(2.0, -3.0) + [("add", 0, 1), ("sub", 0, 1), ("mul", 0, 1), ("div", 0, 1)]),
            ("numbers on the right: v + 2, v - 2, v * 3, v / 4",
             _leaves(1.5) + [("add_const", 0, 2.0), ("sub_const", 0, 2.0), ("mul_const", 0, 3.0), ("div_const", 0, 4.0)]),
            ("numbers on the left: 2 + v, 2 - v, 3 * v, 4 / v",
             _leaves(1.5) + [("radd_const", 2.0, 0), ("rsub_const", 2.0, 0), ("rmul_const", 3.0, 0), ("rdiv_const", 4.0, 0)]),
            ("int constants: v + 1, 2 * v, 10 - v, v / 4",
             _leaves(2.5) + [("add_const", 0, 1), ("rmul_const", 2, 0), ("rsub_const", 10, 0), ("div_const", 0, 4)]),
            ("unary minus and v ** k for k = 2, -1, 0.5, 3",
             _leaves(3.0) + [("neg", 0), ("pow_const", 0, 2), ("pow_const", 0, -1), ("pow_const", 0, 0.5), ("pow_const", 0, 3.0)]),
            ("a Value used twice: a * a, a - a, a / a", _leaves(-1.25) + [("mul", 0, 0), ("sub", 0, 0), ("div", 0, 0)]),
            ("a Value added to itself: a + a", _leaves(0.75) + [("add", 0, 0)]),
            ("a chain: ((a * b + 1) / c - a) ** 2",
             _leaves(0.5, 4.0, -2.0) + [("mul", 0, 1), ("add_const", 3, 1.0), ("div", 4, 2), ("sub", 5, 0), ("pow_const", 6, 2)]),
            ("zero and negative values", _leaves(0.0, -2.0) + [("add", 0, 1), ("mul", 0, 1), ("div", 0, 1), ("rsub_const", 0.0, 1)]),
        ]
        cases = [Case(label, (program, False)) for label, program in fixed]
        rng = np.random.default_rng(20_201)
        for k in range(6):
            cases.append(Case(f"random expression #{k}", (_random_program(rng, 8, ops=_ARITHMETIC, share=True), False)))
        return cases


def _with_upstream(program: list, upstream: float = 1.75) -> list:
    """program, then its last node times a new leaf u (so the last op sees out.grad = u, not 1)."""
    n = len(program)
    return program + [("leaf", upstream, "u"), ("mul", n - 1, n)]


class ValueBackwardCheck(_ValueCheck):
    exercise = "Value_backward"

    def cases(self) -> list[Case]:
        a, b = 2.0, -3.0
        ops = [
            ("a + b", [("add", 0, 1)]), ("a - b", [("sub", 0, 1)]), ("a * b", [("mul", 0, 1)]),
            ("a / b", [("div", 0, 1)]), ("-a", [("neg", 0)]),
            ("a + 2", [("add_const", 0, 2.0)]), ("2 + a", [("radd_const", 2.0, 0)]),
            ("a - 2", [("sub_const", 0, 2.0)]), ("2 - b", [("rsub_const", 2.0, 1)]),
            ("a * 3", [("mul_const", 0, 3.0)]), ("3 * b", [("rmul_const", 3.0, 1)]),
            ("a / 4", [("div_const", 0, 4.0)]), ("4 / b", [("rdiv_const", 4.0, 1)]),
            ("b ** 2", [("pow_const", 1, 2)]), ("a ** 3", [("pow_const", 0, 3.0)]),
            ("b ** -1", [("pow_const", 1, -1)]), ("a ** 0.5", [("pow_const", 0, 0.5)]),
        ]
        cases = [Case(f"backward of {label}, times u", (_with_upstream(_leaves(a, b) + steps), True))
                 for label, steps in ops]
        cases.append(Case("backward of a single a * b (no upstream factor)", (_leaves(a, b) + [("mul", 0, 1)], True)))
        cases.append(Case("a chain: ((a * b + 1) / c - 2) ** 2",
                          (_leaves(0.5, 4.0, -2.0) + [("mul", 0, 1), ("add_const", 3, 1.0), ("div", 4, 2),
                                                       ("sub_const", 5, 2.0), ("pow_const", 6, 2)], True)))
        cases.append(Case("a long chain of 12 steps",
                          (_leaves(0.9) + [("mul_const", k, 1.1) if k % 2 == 0 else ("add_const", k, -0.2)
                                           for k in range(12)], True)))
        rng = np.random.default_rng(20_202)
        for k in range(6):
            cases.append(Case(f"random tree-shaped expression #{k}",
                              (_random_program(rng, 7, ops=_ARITHMETIC, share=False), True)))
        return cases


class ValueFunctionsCheck(_ValueCheck):
    exercise = "Value_functions"

    def cases(self) -> list[Case]:
        x = 0.7
        single = [
            ("exp of 0.7", _leaves(x) + [("exp", 0)]),
            ("exp of -2", _leaves(-2.0) + [("exp", 0)]),
            ("log of 0.7", _leaves(x) + [("log", 0)]),
            ("log of 5", _leaves(5.0) + [("log", 0)]),
            ("tanh of 0.7", _leaves(x) + [("tanh", 0)]),
            ("tanh of -1.5", _leaves(-1.5) + [("tanh", 0)]),
            ("sigmoid of 0.7", _leaves(x) + [("sigmoid", 0)]),
            ("sigmoid of -3", _leaves(-3.0) + [("sigmoid", 0)]),
            ("relu of a positive value", _leaves(1.3) + [("relu", 0)]),
            ("relu of a negative value", _leaves(-1.3) + [("relu", 0)]),
            ("v ** w with a Value exponent", _leaves(1.5, 2.5) + [("pow", 0, 1)]),
            ("v ** w with a base below 1", _leaves(0.4, -1.5) + [("pow", 0, 1)]),
            ("2 ** w", _leaves(1.5) + [("rpow_const", 2.0, 0)]),
            ("0.5 ** w", _leaves(-0.8) + [("rpow_const", 0.5, 0)]),
        ]
        cases = [Case(f"{label}, times u", (_with_upstream(program), True)) for label, program in single]
        cases += [
            Case("a tanh neuron: tanh(w1 x1 + w2 x2 + b)",
                 (_leaves(2.0, 0.0, -3.0, 1.0, 6.8813735870195432)
                  + [("mul", 0, 2), ("mul", 1, 3), ("add", 5, 6), ("add", 7, 4), ("tanh", 8)], True)),
            Case("a sigmoid neuron with a log loss: -log(sigmoid(w x + b))",
                 (_leaves(0.8, -1.2, 0.3) + [("mul", 0, 1), ("add", 3, 2), ("sigmoid", 4), ("log", 5), ("neg", 6)], True)),
            Case("exp and log undo each other: log(exp(a) * b)",
                 (_leaves(0.3, 2.5) + [("exp", 0), ("mul", 2, 1), ("log", 3)], True)),
            Case("a softplus: log(1 + exp(x))", (_leaves(-0.4) + [("exp", 0), ("radd_const", 1.0, 1), ("log", 2)], True)),
        ]
        edge = [Case(f"{label}, times u", (_with_upstream(program), True)) for label, program in [
            ("relu at exactly 0", _leaves(0.0) + [("relu", 0)]),
            ("sigmoid of -800 (1 + exp(800) overflows: use the stable form)", _leaves(-800.0) + [("sigmoid", 0)]),
            ("sigmoid of 800", _leaves(800.0) + [("sigmoid", 0)]),
            ("tanh of 30 (saturated)", _leaves(30.0) + [("tanh", 0)]),
            ("v ** 0 at v = 0 (gradient 0, like PyTorch)", _leaves(0.0) + [("pow_const", 0, 0)]),
            ("v ** 2 at v = 0", _leaves(0.0) + [("pow_const", 0, 2)]),
        ]]
        edge.append(Case("relu of a sum that is exactly 0",
                         (_leaves(1.5, -1.5) + [("add", 0, 1), ("relu", 2), ("mul_const", 3, 2.0)], True)))
        return grouped(cases, edge)


class ValueAccumulationCheck(_ValueCheck):
    exercise = "Value_accumulation"

    def cases(self) -> list[Case]:
        fixed = [
            ("a * a (one Value, both operands)", _with_upstream(_leaves(1.5) + [("mul", 0, 0)])),
            ("a + a (one Value, both operands)", _with_upstream(_leaves(1.5) + [("add", 0, 0)])),
            ("the seed's branching case x**2 + 3x at x = 2 (grad 7)",
             _leaves(2.0) + [("pow_const", 0, 2), ("rmul_const", 3.0, 0), ("add", 1, 2)]),
            ("a used in three places: a*b + a + 3a", _leaves(1.2, -0.7) + [("mul", 0, 1), ("add", 2, 0),
                                                                           ("rmul_const", 3.0, 0), ("add", 3, 4)]),
            ("a diamond: d = a * b feeds both p = d * 3 and q = d + b; out = p * q",
             _leaves(0.6, 1.4) + [("mul", 0, 1), ("mul_const", 2, 3.0), ("add", 2, 1), ("mul", 3, 4)]),
            ("two diamonds in a row",
             _leaves(0.9, -1.1) + [("mul", 0, 1), ("add_const", 2, 1.0), ("mul_const", 2, 2.0), ("mul", 3, 4),
                                   ("sub_const", 5, 0.5), ("mul", 6, 5), ("add", 7, 6)]),
            ("a node not used by the output keeps grad 0", _leaves(1.5, 2.0) + [("mul", 0, 1), ("add_const", 0, 1.0)]),
            ("v ** v (one Value, base and exponent)", _with_upstream(_leaves(1.3) + [("pow", 0, 0)])),
            ("the seed graph d = b*c, e = a + d, f = d*a, g = e**f at (1.5, 0.5, 2)",
             _leaves(1.5, 0.5, 2.0) + [("mul", 1, 2), ("add", 0, 3), ("mul", 3, 0), ("pow", 4, 5)]),
            ("a shared node on a short and a long path: d = a * b; out = d + (d * 2) * 3",
             _leaves(0.7, -1.3) + [("mul", 0, 1), ("mul_const", 2, 2.0), ("mul_const", 3, 3.0), ("add", 2, 4)]),
            ("a fan: x used by five multiplications, then summed",
             _leaves(0.8) + [("mul_const", 0, float(k)) for k in range(1, 6)] + [("add", 1, 2), ("add", 6, 3),
                                                                                 ("add", 7, 4), ("add", 8, 5)]),
        ]
        cases = [Case(label, (program, True)) for label, program in fixed]
        rng = np.random.default_rng(20_203)
        for k in range(6):
            cases.append(Case(f"random expression with shared nodes #{k}",
                              (_random_program(rng, 9, ops=("add", "sub", "mul", "mul_const", "rsub_const", "neg"),
                                               share=True), True)))
        return cases


# ----------------------------------------------------------------------------------------------
# graph_grads


def _graph_reference(a: float, b: float, c: float) -> tuple[float, float, float]:
    torch = torch_module()
    ta, tb, tc = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (a, b, c))
    d = tb * tc
    e = ta + d
    f = d * ta
    g = e ** f
    g.backward()
    return float(ta.grad), float(tb.grad), float(tc.grad)


class GraphGradsCheck(HiddenCheck):
    exercise = "graph_grads"

    def cases(self) -> list[Case]:
        fixed = [
            ("a = b = c = 1", (1.0, 1.0, 1.0)),
            ("a, b, c = 1.5, 0.5, 2 (the notebook's example)", (1.5, 0.5, 2.0)),
            ("e = a + b*c below 1, so ln(e) < 0", (0.2, 0.3, 0.4)),
            ("tiny values, all 1e-3", (1e-3, 1e-3, 1e-3)),
            ("large result, g about 1e72", (10.0, 2.0, 3.0)),
            ("b much larger than c", (0.5, 20.0, 0.05)),
        ]
        cases = [Case(label, args) for label, args in fixed]
        rng = np.random.default_rng(20_204)
        for k in range(8):
            a, b, c = (float(np.round(v, 4)) for v in rng.uniform(0.1, 2.5, size=3))
            cases.append(Case(f"random positive a, b, c #{k}", (a, b, c)))
        return cases

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        name = f"{self.exercise} [{case.label}]"
        failure = outcome_failure(self.exercise, case, outcome)
        if failure is not None:
            return failure
        a, b, c = case.args
        expected = np.array(_graph_reference(a, b, c))
        value = outcome.value
        if isinstance(value, np.ndarray) and value.shape == (3,):
            value = [float(v) for v in value]
        value = _as_sequence(value)
        if type(value) not in (tuple, list) or len(value) != 3:
            what = f"a {type(value).__name__} of length {len(value)}" if type(value) in (tuple, list) else (
                type(value).__name__ if not isinstance(value, np.ndarray) else f"an array of shape {value.shape}")
            return _fail(name, f"expected a tuple of three floats (dg/da, dg/db, dg/dc), got {what}")
        result = compare(name, value, expected, rtol=1e-9, atol=0.0)
        if result.ok:
            return result
        try:
            got = np.array([float(v) for v in value], dtype=np.float64)
        except (TypeError, ValueError):
            return result
        hint = self._hint(a, b, c, got, expected)
        if hint:
            return Comparison(name, False, f"{result.message} — likely cause: {hint}")
        return result

    @staticmethod
    def _hint(a: float, b: float, c: float, got: np.ndarray, expected: np.ndarray) -> Optional[str]:
        d = b * c
        e = a + d
        f = d * a
        with np.errstate(all="ignore"):
            g = e ** f
            dg_de, dg_df = f * e ** (f - 1), g * math.log(e)

            def near(x: float, y: float) -> bool:
                return math.isfinite(y) and abs(x - y) <= 1e-7 * abs(y) + 1e-300

            if near(got[0], dg_df * d) and not near(expected[0], dg_df * d):
                return "dg/da misses the path through e = a + d (a reaches g along two paths: add both)"
            if near(got[0], dg_de) and not near(expected[0], dg_de):
                return "dg/da misses the path through f = d*a (a reaches g along two paths: add both)"
            for k, (var, other) in enumerate((("b", c), ("c", b)), start=1):
                if near(got[k], dg_de * other) and not near(expected[k], dg_de * other):
                    return f"dg/d{var} misses the path through f = d*a (d reaches g through e and through f)"
                if near(got[k], dg_df * a * other) and not near(expected[k], dg_df * a * other):
                    return f"dg/d{var} misses the path through e = a + d (d reaches g through e and through f)"
            dg_dd = dg_de + dg_df * a
            if (near(got[1], dg_dd * b) and near(got[2], dg_dd * c) and near(got[0], expected[0])
                    and not near(expected[1], dg_dd * b)):
                return ("dg/db and dg/dc are swapped: d = b*c gives dd/db = c, so dg/db = dg/dd * c and "
                        "dg/dc = dg/dd * b (or the right numbers came back in the wrong order)")
            alt_df = g  # d(e**f)/df taken as e**f, forgetting ln(e)
            alt = np.array([dg_de + alt_df * d, (dg_de + alt_df * a) * c, (dg_de + alt_df * a) * b])
            if all(near(x, y) for x, y in zip(got, alt)):
                return "d(e**f)/df = e**f * ln(e); the factor ln(e) is missing"
            alt_de = f * e ** f  # the power rule without its - 1
            alt = np.array([alt_de + dg_df * d, (alt_de + dg_df * a) * c, (alt_de + dg_df * a) * b])
            if all(near(x, y) for x, y in zip(got, alt)):
                return "d(e**f)/de = f * e**(f - 1); got f * e**f (the power rule's - 1 is missing)"
            alt_df = g * math.log10(e)
            alt = np.array([dg_de + alt_df * d, (dg_de + alt_df * a) * c, (dg_de + alt_df * a) * b])
            if all(near(x, y) for x, y in zip(got, alt)):
                return "d(e**f)/df = e**f * ln(e) with the natural logarithm, math.log(e), not math.log10(e)"
            alt_de = g  # d(e**f)/de taken as e**f
            alt = np.array([alt_de + dg_df * d, (alt_de + dg_df * a) * c, (alt_de + dg_df * a) * b])
            if all(near(x, y) for x, y in zip(got, alt)):
                return "d(e**f)/de = f * e**(f - 1) (the power rule in e), not e**f"
            for perm in ((0, 2, 1), (1, 0, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)):
                if all(near(got[i], expected[p]) for i, p in enumerate(perm)):
                    return "the right numbers in the wrong order: return (dg/da, dg/db, dg/dc)"
        return None


# ----------------------------------------------------------------------------------------------
# the PyTorch exercises


class LeafAndHiddenGradsCheck(HiddenCheck):
    exercise = "leaf_and_hidden_grads"

    def cases(self) -> list[Case]:
        fixed = [("w = 0.5, x = 2", (0.5, 2.0)), ("w = -1.2, x = 0.3", (-1.2, 0.3)),
                 ("x = 0: h = 0", (0.8, 0.0)), ("a saturated tanh, w x = 6", (3.0, 2.0))]
        cases = [Case(label, args) for label, args in fixed]
        rng = np.random.default_rng(20_205)
        for k in range(4):
            w, x = (float(np.round(v, 4)) for v in rng.uniform(-2, 2, size=2))
            cases.append(Case(f"random w, x #{k}", (w, x)))
        return cases

    @staticmethod
    def _reference(w: float, x: float, dtype: str = "float64") -> tuple[float, float]:
        torch = torch_module()
        tw = torch.tensor(w, dtype=getattr(torch, dtype), requires_grad=True)
        tx = torch.tensor(x, dtype=getattr(torch, dtype))
        h = tw * tx
        h.retain_grad()
        loss = torch.tanh(h) ** 2
        loss.backward()
        return float(tw.grad), float(h.grad)

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        name = f"{self.exercise} [{case.label}]"
        failure = outcome_failure(self.exercise, case, outcome)
        if failure is not None:
            if outcome.kind == "raised" and "NoneType" in outcome.message:
                return Comparison(name, False, f"{failure.message} — likely cause: h is not a leaf, so h.grad "
                                               "stays None unless you call h.retain_grad() before backward()")
            return failure
        w, x = case.args
        expected = np.array(self._reference(w, x))
        value = outcome.value
        value = _as_sequence(value)
        if type(value) not in (tuple, list) or len(value) != 2:
            return _fail(name, f"expected a tuple of two floats (dL/dw, dL/dh), got "
                               f"{type(value).__name__ if type(value) not in (tuple, list) else f'{len(value)} items'}")
        result = compare(name, value, expected, rtol=1e-9, atol=1e-15)
        if result.ok:
            return result
        try:
            got = [float(v) for v in value]
        except (TypeError, ValueError):
            return result
        if math.isclose(got[0], expected[1], rel_tol=1e-9) and math.isclose(got[1], expected[0], rel_tol=1e-9):
            return Comparison(name, False, f"{result.message} — likely cause: the two are swapped: return (dL/dw, dL/dh)")
        single = self._reference(w, x, "float32")
        if all(math.isclose(g, s, rel_tol=1e-6, abs_tol=1e-12) for g, s in zip(got, single)):
            return Comparison(name, False, f"{result.message} — likely cause: the tensors are float32 (the default of "
                                           "torch.tensor(w)); make them float64: torch.tensor(w, dtype=torch.float64, "
                                           "requires_grad=True)")
        return result


class GradHistoryCheck(HiddenCheck):
    exercise = "grad_history"

    def cases(self) -> list[Case]:
        cases = [
            Case("three batches, zeroing between them", (0.5, [1.0, 2.0, -1.0], True)),
            Case("three batches, no zeroing: they add up", (0.5, [1.0, 2.0, -1.0], False)),
            Case("one batch", (-0.3, [1.5], False)),
            Case("no batches at all", (1.0, [], True)),
            Case("a zero input", (2.0, [0.0, 1.0], False)),
        ]
        rng = np.random.default_rng(20_206)
        for k in range(4):
            xs = [float(np.round(v, 3)) for v in rng.uniform(-2, 2, size=int(rng.integers(3, 7)))]
            cases.append(Case(f"random inputs #{k}, {'zeroing' if k % 2 == 0 else 'no zeroing'}",
                              (float(np.round(rng.uniform(-1, 1), 3)), xs, k % 2 == 0)))
        return cases

    @staticmethod
    def _reference(w0: float, xs: list, zero: bool, dtype: str = "float64") -> list[float]:
        torch = torch_module()
        w = torch.tensor(w0, dtype=getattr(torch, dtype), requires_grad=True)
        history = []
        for x in xs:
            loss = (w * x - 1.0) ** 2
            loss.backward()
            history.append(float(w.grad))
            if zero:
                w.grad.zero_()
        return history

    def judge(self, case: Case, outcome: Outcome) -> Comparison:
        name = f"{self.exercise} [{case.label}]"
        failure = outcome_failure(self.exercise, case, outcome)
        if failure is not None:
            return failure
        w0, xs, zero = case.args
        expected = self._reference(w0, xs, zero)
        value = outcome.value
        value = _as_sequence(value)
        if type(value) not in (list, tuple):
            return _fail(name, f"expected a list of {len(expected)} floats, got {type(value).__name__}")
        if len(value) != len(expected):
            return _fail(name, f"expected a list of {len(expected)} floats (one per batch), got {len(value)} items")
        if not expected:
            return Comparison(name, True, f"✓ {name}: empty history")
        result = compare(name, list(value), np.array(expected), rtol=1e-9, atol=1e-12)
        if result.ok:
            return result
        try:
            got = np.array([float(v) for v in value])
        except (TypeError, ValueError):
            return result
        other = np.array(self._reference(w0, xs, not zero))
        hint = None
        if np.allclose(got, other, rtol=1e-9, atol=1e-12):
            hint = ("the grads of the batches were added up: zero w.grad after recording each one" if zero else
                    "without zeroing, each backward() adds to w.grad: record the running total; create w once, "
                    "before the loop, and do not reset its grad")
        elif len(got) > 1 and np.all(got == got[-1]):
            if zero and np.all(got == 0.0):
                hint = ("every recorded value is 0: record w.grad right after backward() and before zeroing it, as a "
                        "float (w.grad.item()); a stored w.grad tensor is zeroed in place later by w.grad.zero_()")
            elif not zero and math.isclose(float(got[-1]), expected[-1], rel_tol=1e-9, abs_tol=1e-12):
                hint = ("every entry is the final w.grad: the list holds the same tensor len(xs) times, and backward() "
                        "adds into it in place; record a float, w.grad.item()")
        if hint is None and np.allclose(got, self._reference(w0, xs, zero, "float32"), rtol=1e-6, atol=1e-7):
            hint = ("w is float32 (the default of torch.tensor(w0)); make it float64: "
                    "torch.tensor(w0, dtype=torch.float64, requires_grad=True)")
        if hint:
            return Comparison(name, False, f"{result.message} — likely cause: {hint}")
        return result


CHECKS = by_exercise(
    [
        ValueArithmeticCheck(),
        ValueBackwardCheck(),
        ValueFunctionsCheck(),
        ValueAccumulationCheck(),
        GraphGradsCheck(),
        LeafAndHiddenGradsCheck(),
        GradHistoryCheck(),
    ]
)
