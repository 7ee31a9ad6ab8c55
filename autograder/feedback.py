"""Feedback a student reads: their notebook, its outputs, and at each graded cell the verdict.

The verdicts come from the judge (``hardened``); nothing here shows the
hidden checks' code, their inputs beyond the diagnosis, or a reference.
"""
from __future__ import annotations

import copy
import functools
from typing import Any

import nbformat

from .notebook_spec import grade_id_of

ICONS = {"passed": "✓", "failed": "✗", "error": "✗", "timeout": "⏱", "missing": "∅"}


def _fence(text: str) -> str:
    """Text shown verbatim in markdown (a fence longer than any backtick run inside)."""
    longest = max((len(run) for run in text.split("\n") for run in _backtick_runs(run)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _backtick_runs(line: str) -> list[str]:
    runs, current = [], ""
    for ch in line:
        if ch == "`":
            current += ch
        elif current:
            runs.append(current)
            current = ""
    return runs + ([current] if current else [])


def verdict_markdown(cell: Any) -> str:
    head = (f"**Grader — {cell.grade_id}: {ICONS.get(cell.status, '?')} {cell.status}, "
            f"{cell.score:g} / {cell.max_score:g} points**")
    return head if cell.status == "passed" else f"{head}\n\n{_fence(cell.message)}"


def summary_markdown(result: Any) -> str:
    lines = [f"# Feedback: {result.notebook}", "",
             f"Student **{result.student_id}**, score **{result.score:g} / {result.max_score:g}**.", "",
             "| graded cell | status | points |", "| --- | --- | --- |"]
    lines += [f"| {c.grade_id} | {ICONS.get(c.status, '?')} {c.status} | {c.score:g} / {c.max_score:g} |"
              for c in result.cells]
    if result.events:
        lines += ["", "While the notebook ran:", ""] + [f"- {e}" for e in result.events]
    return "\n".join(lines)


def annotated(result: Any) -> Any:
    """The notebook to render: the student's cells and outputs with the verdicts inserted."""
    nb = copy.deepcopy(result.feedback) if result.feedback is not None else nbformat.v4.new_notebook()
    by_id = {c.grade_id: c for c in result.cells}
    cells = [nbformat.v4.new_markdown_cell(summary_markdown(result))]
    placed = set()
    for cell in nb.cells:
        cells.append(cell)
        grade_id = grade_id_of(cell)
        if grade_id in by_id and grade_id not in placed:
            placed.add(grade_id)
            cells.append(nbformat.v4.new_markdown_cell(verdict_markdown(by_id[grade_id])))
    rest = [c for c in result.cells if c.grade_id not in placed]
    if rest and result.feedback is not None:
        cells.append(nbformat.v4.new_markdown_cell("## Graded cells missing from this notebook"))
    cells += [nbformat.v4.new_markdown_cell(verdict_markdown(c)) for c in rest]
    nb.cells = cells
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):  # ids that are the same on every run
        cell["id"] = f"cell-{i}"
    return nb


@functools.lru_cache(maxsize=1)
def _exporter():
    from nbconvert import HTMLExporter

    # sanitized: a student's markdown and outputs cannot run scripts in the reader's browser
    return HTMLExporter(template_name="classic", sanitize_html=True)


def render_html(result: Any) -> str:
    """The feedback page; when the student's notebook cannot be shown (it is not a valid
    notebook), the page holds the verdicts alone and says why."""
    try:
        body, _ = _exporter().from_notebook_node(annotated(result))
        return body
    except Exception as exc:  # a notebook nbconvert refuses: the verdicts still reach the student
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        bare = copy.copy(result)
        bare.feedback = None
        bare.events = list(result.events) + [f"your notebook could not be shown here ({reason})"]
        body, _ = _exporter().from_notebook_node(annotated(bare))
        return body
