"""The reference implementations of a notebook, taken from the notebook itself.

The solution text lives in one place, the source notebook. Tests get the
reference functions by running that notebook's import statements and its
solution cells (cells whose ``metadata.nbgrader.solution`` is true) in a fresh
namespace::

    from solutions import solution_namespace
    ns = solution_namespace("source/week1/01_tensors_and_shapes.ipynb")
    broadcast_shape = ns["broadcast_shape"]

Only the ``import`` / ``from ... import`` statements of the other code cells
are run, not their demos, so this is fast and has no side effects beyond the
imports. The result is cached per notebook path; each call returns a shallow
copy, so a test that rebinds a name cannot disturb another test.
"""
from __future__ import annotations

import ast
import contextlib
import functools
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import nbformat

from notebooks import ROOT as REPO
from notebooks import is_graded, is_solution


def _python_source(cell: Any) -> str:
    """A cell's source without IPython magics and shell escapes (which are not Python)."""
    lines = cell.source.splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def _import_statements(source: str, filename: str) -> ast.Module:
    """The top-level import statements of a cell, as a module of their own."""
    tree = ast.parse(source, filename=filename)
    body = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return ast.Module(body=body, type_ignores=[])


@contextlib.contextmanager
def _notebook_context(directory: Path) -> Iterator[None]:
    """Run as the notebook would: cwd = its folder, the repository importable."""
    old_cwd = os.getcwd()
    added = str(REPO) not in sys.path
    if added:
        sys.path.insert(0, str(REPO))
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(REPO))


@functools.lru_cache(maxsize=None)
def _load(path: str) -> dict:
    nb = nbformat.read(path, as_version=4)
    namespace: dict = {"__name__": "__solutions__"}
    ran_solution = False
    with _notebook_context(Path(path).parent):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            filename = f"{path}[cell {index}]"
            source = _python_source(cell)
            if is_solution(cell):
                exec(compile(source, filename, "exec"), namespace)
                ran_solution = True
            elif not is_graded(cell):
                exec(compile(_import_statements(source, filename), filename, "exec"), namespace)
    if not ran_solution:
        raise ValueError(f"{path} has no solution cells (metadata nbgrader.solution = true)")
    return namespace


def solution_namespace(notebook_path: str | os.PathLike) -> dict:
    """The namespace after running a notebook's imports and solution cells (cached per path)."""
    path = Path(notebook_path)
    if not path.is_absolute():
        path = REPO / path
    return dict(_load(str(path.resolve())))


def visible_checks(path: str | os.PathLike, grade_id: str) -> str:
    """The visible part of a notebook's test cell (what comes before its hidden block)."""
    nb = nbformat.read(Path(path), as_version=4)
    (cell,) = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]
    return cell.source.split("### BEGIN HIDDEN TESTS")[0]


def run_visible(path: str | os.PathLike, ref: dict, grade_id: str, **overrides: Any) -> None:
    """Run the visible checks of a test cell in the solutions' namespace, with some names replaced
    (e.g. by a wrong implementation)."""
    exec(compile(visible_checks(path, grade_id), f"<{grade_id}>", "exec"), dict(ref) | overrides)
