"""Tests of the hidden checks of notebook 02 (autograd).

The notebook's own solutions must pass every hidden check; each typical wrong
implementation of the autodiff engine ``Value`` (built by editing the solution's
source) and of the other exercises must fail with a diagnosis that names the
mistake; the judges never raise, whatever comes back.
"""
from __future__ import annotations

import ast
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest

from solutions import run_visible, solution_namespace

from autograder.hidden import checks_for, hidden_verdict, run_hidden
from autograder.hidden.framework import Case, Outcome
from autograder.probe import nb02 as probe_nb02
from course.checks import CheckFailed, Comparison

NB = "02_autograd"
NOTEBOOK = Path(__file__).resolve().parents[1] / "source" / "week1" / f"{NB}.ipynb"
VALUE_PARTS = ("Value_arithmetic", "Value_backward", "Value_functions", "Value_accumulation")
EXERCISES = {*VALUE_PARTS, "graph_grads", "leaf_and_hidden_grads", "grad_history"}
GRADED_OBJECT = {name: "Value" for name in VALUE_PARTS} | {n: n for n in EXERCISES - set(VALUE_PARTS)}


@pytest.fixture(scope="module")
def ref() -> dict:
    return solution_namespace(NOTEBOOK)


def _value_source() -> str:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (cell,) = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "Value"]
    return cell.source


def broken_value(old: str, new: str, *, count: int = 1):
    """The notebook's Value with ``old`` replaced by ``new`` (exactly ``count`` times; 0 = all)."""
    source = _value_source()
    found = source.count(old)
    assert found and (count == 0 or found == count), f"{old!r} occurs {found} times"
    namespace = {"math": math}
    exec(compile(source.replace(old, new), "<broken Value>", "exec"), namespace)
    return namespace["Value"]


#: the body of the notebook's Value.backward, which several wrong versions replace whole
BACKWARD = """        order, visited = [], set()

        def visit(node):                  # depth-first: a node is appended after all its inputs
            if node not in visited:
                visited.add(node)
                for parent in node._prev:
                    visit(parent)
                order.append(node)

        visit(self)
        self.grad = 1.0                   # the seed: d self / d self = 1
        for node in reversed(order):
            node._backward()"""


def failure(exercise: str, obj) -> str:
    """The hidden checks' message for a wrong implementation (which must fail)."""
    with pytest.raises(CheckFailed) as info:
        run_hidden(NB, exercise, obj)
    return str(info.value)


# ----------------------------------------------------------------------------------------------
# the reference passes, the checks are well formed


@pytest.mark.parametrize("exercise", VALUE_PARTS)
def test_value_programs_are_well_formed(exercise):
    from autograder.hidden.nb02_autograd import _Reference

    for case in checks_for(NB)[exercise].cases():
        program, backward = case.args
        ref = _Reference(program, backward)
        assert all(math.isfinite(v) for v in ref.data + ref.grad), case.label
        if exercise == "Value_backward":  # tree-shaped: no node is used twice
            assert all(len(users) <= 1 for users in ref.consumers), case.label


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_not_implemented_is_reported(exercise, ref):
    if exercise in VALUE_PARTS:
        obj = broken_value("### BEGIN SOLUTION", "raise NotImplementedError('__add__: replace this line with "
                           "your solution')\n        ### BEGIN SOLUTION", count=0)
    else:
        def obj(*args):
            raise NotImplementedError(f"{exercise}: replace this line with your solution")
    assert "not implemented yet" in failure(exercise, obj)


def test_stubbed_value_names_the_missing_method():
    stub = broken_value("        ### BEGIN SOLUTION\n        other = other if isinstance(other, Value) else Value(other)\n"
                        "        out = Value(self.data + other.data",
                        "        raise NotImplementedError('__add__: replace this line with your solution')\n"
                        "        out = Value(self.data + other.data")
    message = failure("Value_arithmetic", stub)
    assert "not implemented yet" in message and "__add__" in message and "Value.__add__" in message


def test_probe_module_is_student_side_only():
    source = Path(probe_nb02.__file__).read_text()
    tree = ast.parse(source)
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
    assert imported <= {"__future__", "operator", "typing"}, imported
    assert "torch" not in source and "default_rng" not in source and "seed" not in source.lower()


# ----------------------------------------------------------------------------------------------
# Value: wrong engines, each diagnosed


def test_assigning_instead_of_adding_is_diagnosed():
    Value = broken_value(".grad += ", ".grad = ", count=0)
    for part in ("Value_arithmetic", "Value_backward", "Value_functions"):
        run_hidden(NB, part, Value)  # one contribution per node: assignment goes unnoticed there
    message = failure("Value_accumulation", Value)
    assert "grad not accumulated over the 2 paths" in message and "(+=), never assign (=)" in message


def test_forward_order_is_diagnosed():
    Value = broken_value("for node in reversed(order):", "for node in order:")
    message = failure("Value_backward", Value)
    assert "visited in forward order" in message


def test_recursive_backward_without_topological_sort_is_diagnosed():
    Value = broken_value(BACKWARD, """        self.grad = 1.0

        def propagate(node):
            node._backward()
            for parent in node._prev:
                propagate(parent)

        propagate(self)""")
    run_hidden(NB, "Value_backward", Value)  # correct on trees
    message = failure("Value_accumulation", Value)
    assert "passed its grad on more than once" in message and "topological" in message


def test_missing_seed_is_diagnosed():
    Value = broken_value("        self.grad = 1.0                   # the seed: d self / d self = 1\n", "")
    assert "seed it with 1.0" in failure("Value_backward", Value)


def test_relu_gradient_one_at_zero_is_diagnosed():
    Value = broken_value("(1.0 if self.data > 0 else 0.0)", "(1.0 if self.data >= 0 else 0.0)")
    message = failure("Value_functions", Value)
    assert "relu gradient at exactly 0 should be 0" in message and "relu at exactly 0" in message


def test_power_rule_without_minus_one_is_diagnosed():
    Value = broken_value("k * self.data ** (k - 1) * out.grad", "k * self.data ** k * out.grad")
    assert "the - 1 is missing" in failure("Value_backward", Value)


def test_power_rule_without_factor_k_is_diagnosed():
    Value = broken_value("k * self.data ** (k - 1) * out.grad", "self.data ** (k - 1) * out.grad")
    assert "the factor k = " in failure("Value_backward", Value)


def test_missing_reflected_operator_is_diagnosed():
    source_marker = '''    def __radd__(self, other):'''
    Value = broken_value(source_marker, "    def _unused_radd(self, other):")
    message = failure("Value_arithmetic", Value)
    assert "Value.__radd__" in message and "raised TypeError" in message and "define it" in message


def test_reflected_subtraction_the_wrong_way_round_is_diagnosed():
    Value = broken_value("return (-self) + other", "return self + (-other)")
    message = failure("Value_arithmetic", Value)
    assert "__rsub__ computed self - other" in message and "other - self" in message


def test_mul_gradient_with_own_factor_is_diagnosed():
    Value = broken_value("self.grad += other.data * out.grad", "self.grad += self.data * out.grad")
    message = failure("Value_backward", Value)
    assert "grad of a in a*b: expected b * out.grad" in message and "got a * out.grad" in message


def test_missing_chain_rule_factor_is_diagnosed():
    Value = broken_value("self.grad += out.data * out.grad", "self.grad += out.data")
    message = failure("Value_functions", Value)
    assert "the chain rule" in message and "must be multiplied by" in message and "exp()" in message


def test_tanh_derivative_from_the_input_is_diagnosed():
    Value = broken_value("(1.0 - t * t) * out.grad", "(1.0 - self.data * self.data) * out.grad")
    assert "uses the output t = out.data, not the input x" in failure("Value_functions", Value)


def test_sigmoid_derivative_without_one_minus_s_is_diagnosed():
    Value = broken_value("s * (1.0 - s) * out.grad", "s * out.grad")
    assert "sigmoid'(x) = s * (1 - s)" in failure("Value_functions", Value)


def test_log_derivative_is_diagnosed():
    Value = broken_value("out.grad / self.data", "out.grad * self.data")
    assert "the derivative of log(x) is 1 / x" in failure("Value_functions", Value)


def test_value_exponent_without_gradient_is_diagnosed():
    Value = broken_value("other.grad += out.data * math.log(self.data) * out.grad", "pass")
    message = failure("Value_functions", Value)
    assert "the exponent" in message and "needs a grad too" in message


def test_value_exponent_with_power_rule_is_diagnosed():
    Value = broken_value("other.grad += out.data * math.log(self.data) * out.grad",
                         "other.grad += other.data * self.data ** (other.data - 1) * out.grad")
    message = failure("Value_functions", Value)
    assert "grad of the exponent b in v ** w is v ** w * ln(v) * out.grad, not the power rule" in message
    assert "grad of a in k ** w is k ** w * ln(k) * out.grad, not the power rule" in message


def test_data_holding_a_value_is_rejected():
    Value = broken_value("out = Value(self.data + other.data, (self, other), \"+\")",
                         "out = Value(self.data + other.data, (self, other), \"+\"); out.data = out")
    message = failure("Value_arithmetic", Value)
    assert ".data must hold a Python float" in message


def test_lying_data_is_rejected():
    class Liar(float):
        def __eq__(self, other):
            return True

        __hash__ = float.__hash__

    Value = broken_value("self.data = float(data)", "self.data = Liar(data)")
    Value.__init__.__globals__["Liar"] = Liar
    for part in VALUE_PARTS:
        assert "must hold a Python float" in failure(part, Value)


# ----------------------------------------------------------------------------------------------
# graph_grads


def _graph(a, b, c):
    d = b * c
    e = a + d
    f = d * a
    g = e ** f
    return d, e, f, g, f * e ** (f - 1), g * math.log(e)


def test_graph_grads_path_through_f_missing_is_diagnosed():
    def one_path(a, b, c):
        d, e, f, g, dg_de, dg_df = _graph(a, b, c)
        return dg_de, (dg_de + dg_df * a) * c, (dg_de + dg_df * a) * b

    assert "dg/da misses the path through f = d*a" in failure("graph_grads", one_path)


def test_graph_grads_path_through_e_missing_for_b_is_diagnosed():
    def one_path(a, b, c):
        d, e, f, g, dg_de, dg_df = _graph(a, b, c)
        return dg_de + dg_df * d, dg_df * a * c, (dg_de + dg_df * a) * b

    assert "dg/db misses the path through e = a + d" in failure("graph_grads", one_path)


def test_graph_grads_missing_log_is_diagnosed():
    def no_log(a, b, c):
        d, e, f, g, dg_de, _ = _graph(a, b, c)
        return dg_de + g * d, (dg_de + g * a) * c, (dg_de + g * a) * b

    assert "the factor ln(e) is missing" in failure("graph_grads", no_log)


def test_graph_grads_wrong_order_is_diagnosed(ref):
    def swapped(a, b, c):
        da, db, dc = ref["graph_grads"](a, b, c)
        return da, dc, db

    assert "wrong order" in failure("graph_grads", swapped)


def test_graph_grads_returning_two_values_fails(ref):
    assert "tuple of three floats" in failure("graph_grads", lambda a, b, c: ref["graph_grads"](a, b, c)[:2])


# ----------------------------------------------------------------------------------------------
# the PyTorch exercises


def test_hidden_grad_without_retain_grad_is_diagnosed():
    import torch

    def no_retain(w, x):
        w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        h = w_t * torch.tensor(x, dtype=torch.float64)
        (torch.tanh(h) ** 2).backward()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return w_t.grad.item(), float(h.grad)

    assert "h.retain_grad()" in failure("leaf_and_hidden_grads", no_retain)


def test_hidden_grad_swapped_is_diagnosed(ref):
    assert "swapped" in failure("leaf_and_hidden_grads", lambda w, x: ref["leaf_and_hidden_grads"](w, x)[::-1])


def test_grad_history_never_zeroing_is_diagnosed(ref):
    message = failure("grad_history", lambda w0, xs, zero: ref["grad_history"](w0, xs, False))
    assert "zero w.grad after recording" in message


def test_grad_history_always_zeroing_is_diagnosed(ref):
    message = failure("grad_history", lambda w0, xs, zero: ref["grad_history"](w0, xs, True))
    assert "each backward() adds to w.grad" in message


# ----------------------------------------------------------------------------------------------
# judges never raise


MALFORMED = [
    Outcome("returned", value=None),
    Outcome("returned", value=3.5),
    Outcome("returned", value="text"),
    Outcome("returned", value=[1.0, 2.0]),
    Outcome("returned", value=(1.0, "x", None)),
    Outcome("returned", value={"data": [1.0], "grad": None}),
    Outcome("returned", value={"data": None, "grad": [0.0]}),
    Outcome("returned", value={"data": [[1.0]] * 40, "grad": [None] * 40}),
    Outcome("returned", value={"data": ["a Value"] * 40, "grad": [0.0] * 40}),
    Outcome("returned", value={"data": [float("nan")] * 40, "grad": [float("inf")] * 40}),
    Outcome("returned", value=np.zeros((2, 2))),
    Outcome("returned", value=[True, False, True]),
    Outcome("returned", value={"wrong": 1}),
    Outcome("raised", error="ValueError", message="step 999: boom"),
    Outcome("raised", error="TypeError", message="step backward: boom"),
    Outcome("raised", error="RecursionError", message="no step prefix"),
    Outcome("raised", error="NotImplementedError", message="step 0: x"),
    Outcome("unsupported", message="returned an object of type Foo"),
]


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_judge_never_raises_on_malformed_outcomes(exercise):
    check = checks_for(NB)[exercise]
    cases = check.cases()
    for case in (cases[0], cases[-1]):
        for outcome in MALFORMED:
            result = check.judge(case, outcome)
            assert isinstance(result, Comparison) and not result.ok, (case.label, outcome)
            assert result.message.startswith("✗"), result.message


def test_probe_reports_where_it_failed(ref):
    outcome = probe_nb02.value_program(ref["Value"], Case("x", ([("leaf", 1.0), ("frobnicate", 0)], False)))
    assert outcome.kind == "raised" and outcome.message.startswith("step 1:")

    class Exploding:
        def __init__(self, x):
            self.data = x
            self.grad = 0.0

        def backward(self):
            raise RuntimeError("nope")

    outcome = probe_nb02.value_program(Exploding, Case("x", ([("leaf", 1.0)], True)))
    assert outcome.kind == "raised" and outcome.message == "step backward: nope"


# ----------------------------------------------------------------------------------------------
# more wrong implementations a student writes (review of the notebook from the student's side)


def test_topological_sort_without_visited_set_is_diagnosed():
    Value = broken_value("            if node not in visited:\n                visited.add(node)\n                for parent",
                         "            if True:\n                for parent")
    run_hidden(NB, "Value_backward", Value)  # trees: every node is reached once
    message = failure("Value_accumulation", Value)
    assert "passed its grad on more than once" in message and "set of visited nodes" in message


def test_breadth_first_backward_is_diagnosed():
    Value = broken_value(BACKWARD, """        self.grad = 1.0
        queue, seen = [self], {id(self)}
        while queue:
            node = queue.pop(0)
            node._backward()
            for parent in node._prev:
                if id(parent) not in seen:
                    seen.add(id(parent))
                    queue.append(parent)""")
    message = failure("Value_accumulation", Value)
    assert "short and a long path" in message  # the case built to catch it
    assert "breadth-first order is not a topological order" in message
    assert "never assign" not in message  # not mistaken for = instead of +=


def test_only_the_outputs_backward_called_is_diagnosed():
    Value = broken_value("        for node in reversed(order):\n            node._backward()", "        self._backward()")
    assert "only the output's _backward was called" in failure("Value_backward", Value)


def test_exp_derivative_applied_twice_is_diagnosed():
    Value = broken_value("self.grad += out.data * out.grad     # d(e^v)/dv",
                         "self.grad += math.exp(out.data) * out.grad     # d(e^v)/dv")
    assert "exp applied twice" in failure("Value_functions", Value)


def test_reflected_operator_through_itself_is_diagnosed():
    Value = broken_value("        return self + other\n        ### END SOLUTION\n\n    def __rsub__",
                         "        return other + self\n        ### END SOLUTION\n\n    def __rsub__")
    message = failure("Value_arithmetic", Value)
    assert "RecursionError" in message and "inside __radd__, other + self" in message


def test_int_exponent_down_the_value_branch_is_diagnosed():
    Value = broken_value("        if isinstance(other, Value):\n            out = Value(self.data ** other.data",
                         "        if not isinstance(other, float):\n            out = Value(self.data ** other.data")
    message = failure("Value_arithmetic", Value)
    assert "v ** k with an int k" in message and "isinstance(other, Value)" in message
    assert "(Value.__truediv__)" in message  # a / b fails through b ** -1, and the hint says so


def test_graph_grads_b_and_c_multipliers_swapped_is_diagnosed():
    def swapped(a, b, c):
        d, e, f, g, dg_de, dg_df = _graph(a, b, c)
        dg_dd = dg_de + dg_df * a
        return dg_de + dg_df * d, dg_dd * b, dg_dd * c

    assert "dd/db = c, so dg/db = dg/dd * c" in failure("graph_grads", swapped)


def test_graph_grads_power_rule_without_minus_one_is_diagnosed():
    def no_minus_one(a, b, c):
        d, e, f, g, _, dg_df = _graph(a, b, c)
        dg_de = f * e ** f
        return dg_de + dg_df * d, (dg_de + dg_df * a) * c, (dg_de + dg_df * a) * b

    assert "the power rule's - 1 is missing" in failure("graph_grads", no_minus_one)


def test_graph_grads_log10_is_diagnosed():
    def log10(a, b, c):
        d, e, f, g, dg_de, _ = _graph(a, b, c)
        dg_df = g * math.log10(e)
        return dg_de + dg_df * d, (dg_de + dg_df * a) * c, (dg_de + dg_df * a) * b

    assert "not math.log10(e)" in failure("graph_grads", log10)


def test_hidden_grad_in_float32_is_diagnosed():
    import torch

    def float32(w, x):
        w_t = torch.tensor(w, requires_grad=True)  # float32, the default
        h = w_t * x
        h.retain_grad()
        (torch.tanh(h) ** 2).backward()
        return w_t.grad.item(), h.grad.item()

    assert "the tensors are float32" in failure("leaf_and_hidden_grads", float32)


def _history_of_tensors(w0, xs, zero):
    import torch

    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    history = []
    for x in xs:
        ((w * x - 1.0) ** 2).backward()
        history.append(w.grad)  # the tensor itself: later changed in place
        if zero:
            w.grad.zero_()
    return history


def test_grad_history_of_one_aliased_tensor_is_diagnosed():
    message = failure("grad_history", _history_of_tensors)
    assert "every recorded value is 0" in message and "every entry is the final w.grad" in message


def test_grad_history_recreating_w_is_diagnosed(ref):
    import torch

    def recreate(w0, xs, zero):
        history = []
        for x in xs:
            w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
            ((w * x - 1.0) ** 2).backward()
            history.append(w.grad.item())
        return history

    assert "create w once, before the loop" in failure("grad_history", recreate)


def _run_visible(ref, grade_id: str, **overrides) -> str:
    """The visible part of a test cell, run on a wrong implementation: the CheckFailed message."""
    with pytest.raises(CheckFailed) as info:
        run_visible(NOTEBOOK, ref, grade_id, **overrides)
    return str(info.value)


def test_visible_cells_fail_with_a_diagnosis_not_a_bare_assert(ref):
    assert "list of Python floats" in _run_visible(ref, "test_grad_history", grad_history=_history_of_tensors)
    assert "return a tuple of 3 floats" in _run_visible(ref, "test_graph_grads",
                                                        graph_grads=lambda a, b, c: ref["graph_grads"](a, b, c)[:2])
    Value = broken_value("        return self * other\n        ### END SOLUTION\n\n    def __rtruediv__",
                         "        return (self * other).data\n        ### END SOLUTION\n\n    def __rtruediv__")
    assert "expected a Value, got float" in _run_visible(ref, "test_Value_arithmetic", Value=Value)


def test_visible_cell_names_float32(ref):
    import torch

    def float32(w, x):
        w_t = torch.tensor(w, requires_grad=True)
        h = w_t * x
        h.retain_grad()
        (torch.tanh(h) ** 2).backward()
        return w_t.grad.item(), h.grad.item()

    assert "float32 rounding" in _run_visible(ref, "test_leaf_and_hidden_grads", leaf_and_hidden_grads=float32)


def test_visible_cell_accepts_a_list_from_graph_grads(ref):
    as_list = lambda a, b, c: list(ref["graph_grads"](a, b, c))  # noqa: E731
    run_visible(NOTEBOOK, ref, "test_graph_grads", graph_grads=as_list)
    run_hidden(NB, "graph_grads", as_list)  # the hidden check agrees


# ----------------------------------------------------------------------------------------------
# the visible cells catch the central bugs, and agree with the hidden checks on the verdict


_ADD_BACKWARD = ("            self.grad += out.grad          # d(a + b)/da = 1\n"
                 "            other.grad += out.grad         # d(a + b)/db = 1")


@pytest.mark.parametrize("old, new", [
    (_ADD_BACKWARD, _ADD_BACKWARD.replace("+=", "=")),
    ("            self.grad += out.grad          # d(a + b)/da = 1", "            self.grad = out.grad"),
    ("            other.grad += out.grad         # d(a + b)/db = 1", "            other.grad = out.grad"),
], ids=["both operands", "self only", "other only"])
def test_visible_accumulation_cell_catches_assignment_in_add(ref, old, new):
    Value = broken_value(old, new)
    for grade_id in ("test_Value_arithmetic", "test_Value_backward", "test_Value_functions"):
        run_visible(NOTEBOOK, ref, grade_id, Value=Value)  # one contribution per node there: unnoticed
    message = _run_visible(ref, "test_Value_accumulation", Value=Value)
    assert "assigns (=) where it should add (+=)" in message
    assert "d(a + a)/da" in message or "d((a + b) * a)/da" in message
    assert not hidden_verdict(NB, "Value_accumulation", Value).passed  # the hidden check agrees
    run_visible(NOTEBOOK, ref, "test_Value_accumulation")  # and the solution passes


_SIGMOID = "s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))"
_POWER_GUARD = ("                if k != 0:                     # v^0 = 1 is constant: no gradient (and 0.0 ** -1 would fail)\n"
                "                    self.grad")

EDGE_SLIPS = {
    "textbook sigmoid": ((_SIGMOID, "s = 1.0 / (1.0 + math.exp(-x))"),
                         ["✗ sigmoid at -800: raised OverflowError", "stable form"]),
    "sigmoid in the negative form only": ((_SIGMOID, "s = math.exp(x) / (1.0 + math.exp(x))"),
                                          ["✗ sigmoid at 800: raised OverflowError"]),
    "power rule at v ** 0": ((_POWER_GUARD, "                if True:\n                    self.grad"),
                             ["✗ v ** 0 at v = 0: raised ZeroDivisionError", "its gradient is 0"]),
    "relu gradient 1 at 0": (("(1.0 if self.data > 0 else 0.0)", "(1.0 if self.data >= 0 else 0.0)"),
                             ["✗ relu at exactly 0: grad got 1, expected 0"]),
}


@pytest.mark.parametrize("slip", sorted(EDGE_SLIPS))
def test_visible_functions_cell_names_an_edge_case_slip_and_the_hidden_check_keeps_the_main_share(ref, slip):
    """An edge-case slip fails the visible cell with its likely cause; the hidden check fails only the
    edge group, so the hardened grader keeps the main behaviour's share."""
    (old, new), words = EDGE_SLIPS[slip]
    Value = broken_value(old, new)
    message = _run_visible(ref, "test_Value_functions", Value=Value)
    assert all(w in message for w in words), message
    verdict = hidden_verdict(NB, "Value_functions", Value)
    assert 0 < verdict.fraction < 1, verdict.lines()


def test_visible_functions_cell_passes_the_solution(ref, capsys):
    run_visible(NOTEBOOK, ref, "test_Value_functions")
    out = capsys.readouterr().out
    assert "✗" not in out and "✓ Value functions: visible checks passed" in out
