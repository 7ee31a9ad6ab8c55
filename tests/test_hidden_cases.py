"""What every notebook's hidden checks must be, in every notebook.

- The cases are the same on every call (fixed seeds), plain data that crosses the wire to the
  sandbox, and labelled uniquely (a student reads the labels).
- The source notebook's graded test cells call exactly the notebook's checks, by name, each with the
  cell's own points.
- The notebook's own solution passes every hidden check and every visible one (with nothing on
  stderr), and an unwritten exercise (a stub raising NotImplementedError) is reported as "not
  implemented yet" and earns nothing.

Notebook-specific properties (the typical mistakes and their diagnoses, correct code written in
other styles, malformed outcomes) live in tests/test_hidden_nbXX.py.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from solutions import run_visible, solution_namespace

from autograder.hidden import NOTEBOOK_MODULES, checks_for, hidden_verdict
from autograder.probe import wire

ROOT = Path(__file__).resolve().parents[1]
ALL = [(notebook, exercise) for notebook in sorted(NOTEBOOK_MODULES) for exercise in sorted(checks_for(notebook))]
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.DOTALL)
CALL = re.compile(r'run_hidden\("(\w+)", "(\w+)", ([A-Za-z_]\w*), points=(\d+(?:\.\d+)?)\)')


def source_notebook(notebook: str) -> Path:
    return ROOT / "source" / "week1" / f"{notebook}.ipynb"


def graded_calls(notebook: str) -> dict[str, tuple[str, float, float]]:
    """exercise -> (the object the cell passes, the call's points, the cell's points)."""
    calls = {}
    for cell in nbformat.read(source_notebook(notebook), as_version=4).cells:
        block = HIDDEN_BLOCK.search(cell.source)
        if not block:
            continue
        first, *rest = block.group(1).strip().splitlines()
        assert first == "from autograder.hidden import run_hidden", first
        for line in rest:
            match = CALL.fullmatch(line)
            assert match and match.group(1) == notebook, line
            assert match.group(2) not in calls, f"{match.group(2)} is graded twice"
            calls[match.group(2)] = (match.group(3), float(match.group(4)),
                                     float(cell.metadata["nbgrader"]["points"]))
    return calls


@pytest.mark.parametrize("notebook, exercise", ALL)
def test_cases_are_deterministic_plain_and_labelled(notebook, exercise):
    check = checks_for(notebook)[exercise]
    first, second = check.cases(), check.cases()
    assert first, "a check needs cases"
    labels = [c.label for c in first]
    assert len(set(labels)) == len(labels), "labels must be unique"
    # wire.dumps refuses anything that is not plain data; equal texts mean equal cases
    sent = [wire.dumps(wire.case_to_plain(c)) for c in first]
    assert sent == [wire.dumps(wire.case_to_plain(c)) for c in second]
    assert [c.group for c in first] == [c.group for c in second]


@pytest.mark.parametrize("notebook", sorted(NOTEBOOK_MODULES))
def test_test_cells_call_exactly_the_checks_with_their_points(notebook):
    calls = graded_calls(notebook)
    assert set(calls) == set(checks_for(notebook))
    for exercise, (obj, points, cell_points) in calls.items():
        assert points == cell_points, f"{exercise}: run_hidden(points={points}) in a cell worth {cell_points}"
        assert exercise == obj or exercise.startswith(obj + "_"), f"{exercise} is graded on {obj}"


@pytest.mark.parametrize("notebook, exercise", ALL)
def test_the_notebook_solution_passes(notebook, exercise):
    obj = solution_namespace(source_notebook(notebook))[graded_calls(notebook)[exercise][0]]
    verdict = hidden_verdict(notebook, exercise, obj)
    assert verdict.passed, "\n".join(verdict.lines())


def graded_test_cells(notebook: str) -> list[str]:
    """The grade ids of the notebook's test cells that hold hidden checks."""
    cells = nbformat.read(source_notebook(notebook), as_version=4).cells
    return [cell.metadata["nbgrader"]["grade_id"] for cell in cells if HIDDEN_BLOCK.search(cell.source)]


VISIBLE = [(notebook, grade_id) for notebook in sorted(NOTEBOOK_MODULES) for grade_id in graded_test_cells(notebook)]


@pytest.mark.parametrize("notebook, grade_id", VISIBLE)
def test_the_notebook_solution_passes_the_visible_checks_quietly(notebook, grade_id, capfd):
    run_visible(source_notebook(notebook), solution_namespace(source_notebook(notebook)), grade_id)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("notebook, exercise", ALL)
def test_an_unwritten_exercise_is_not_implemented_yet(notebook, exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"{exercise}: replace this line with your solution")

    class Stub:
        def __init__(self, *args, **kwargs):
            stub()

    solution = solution_namespace(source_notebook(notebook))[graded_calls(notebook)[exercise][0]]
    verdict = hidden_verdict(notebook, exercise, Stub if isinstance(solution, type) else stub)
    assert verdict.fraction == 0.0 and "not implemented yet" in "\n".join(verdict.lines())
