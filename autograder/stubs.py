"""Stubs that name their exercise.

nbgrader's ClearSolutions replaces each ``### BEGIN SOLUTION`` ... ``### END SOLUTION``
region with one fixed code stub. :class:`NamedStubs` does the same and then fills
the ``{exercise}`` placeholder in the stub with the name of the function or class
the region sits in (the cell's grade_id when it sits in neither), so the student
reads ``NotImplementedError: broadcast_shape: ...`` rather than a bare error.
"""
from __future__ import annotations

import re

from nbgrader.preprocessors import ClearSolutions

PLACEHOLDER = "{exercise}"
STUB = f'raise NotImplementedError("{PLACEHOLDER}: replace this line with your solution")'

_DEFINITION = re.compile(r"^(\s*)(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)")


def enclosing_name(lines: list[str], index: int) -> str | None:
    """Dotted name of the definitions enclosing line ``index`` (``Linear.forward`` for a method), or None."""
    names = []
    indent = len(lines[index]) - len(lines[index].lstrip())
    for line in reversed(lines[:index]):
        match = _DEFINITION.match(line)
        if match and len(match.group(1)) < indent:
            names.append(match.group(2))
            indent = len(match.group(1))
    return ".".join(reversed(names)) or None


def name_stubs(source: str, fallback: str) -> str:
    """Replace every placeholder in ``source`` by its enclosing definition's name."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if PLACEHOLDER in line:
            lines[i] = line.replace(PLACEHOLDER, enclosing_name(lines, i) or fallback)
    return "\n".join(lines)


class NamedStubs(ClearSolutions):
    """ClearSolutions whose stubs say which exercise they belong to."""

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.cell_type == "code" and PLACEHOLDER in cell.source:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "this exercise")
            cell.source = name_stubs(cell.source, grade_id)
        return cell, resources
