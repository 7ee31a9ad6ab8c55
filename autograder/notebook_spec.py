"""What the instructor's notebooks say about grading: the graded cells, their points, their exercises.

The hardened grader takes all of this from the course's own files, never from
a submission: a student who deletes a test cell, edits it or changes its
points in the metadata changes nothing about how it is graded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

#: a hidden block's call: run_hidden("<notebook>", "<exercise>", <object name>[, points=<points>])
RUN_HIDDEN = re.compile(r'run_hidden\(\s*"([^"]+)"\s*,\s*"([^"]+)"\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*'
                        r'(?:,\s*points\s*=\s*([0-9.]+)\s*)?\)')
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)


class SpecError(ValueError):
    """A source notebook's graded cells cannot be read."""


@dataclass(frozen=True)
class GradedCell:
    """One autograded test cell: its id, points, and the (exercise, object name) pairs it checks."""

    grade_id: str
    points: float
    exercises: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class NotebookSpec:
    name: str  # file stem, e.g. "01_tensors_and_shapes"
    graded: tuple[GradedCell, ...]
    #: grade_id -> the release's text of each locked cell (what a test cell must contain)
    locked: dict

    @property
    def max_score(self) -> float:
        return sum(cell.points for cell in self.graded)


def _nbgrader(cell) -> dict:
    """A cell's nbgrader metadata, {} when it has none or it is not a dict (untrusted cells too)."""
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def grade_id_of(cell) -> str | None:
    """A cell's nbgrader grade_id, or None (a submitted cell may carry anything in its metadata)."""
    grade_id = _nbgrader(cell).get("grade_id")
    return grade_id if isinstance(grade_id, str) else None


def read_spec(source: Path, release: Path) -> NotebookSpec:
    """The grading spec of one notebook from its source and release versions."""
    name = source.stem
    graded = []
    for cell in nbformat.read(source, as_version=4).cells:
        meta = _nbgrader(cell)
        if not meta.get("grade") or cell.cell_type != "code":
            continue
        calls = []
        for block in HIDDEN_BLOCK.findall(cell.source):
            for notebook, exercise, obj, points in RUN_HIDDEN.findall(block):
                if notebook != name:
                    raise SpecError(f"{source.name}: cell {meta['grade_id']} checks notebook {notebook!r}")
                if not points or float(points) != float(meta.get("points", 0)):
                    raise SpecError(f"{source.name}: cell {meta['grade_id']} passes points={points} to "
                                    f"run_hidden but is worth {meta.get('points')} points")
                calls.append((exercise, obj))
        if len(calls) != 1:
            raise SpecError(f"{source.name}: graded cell {meta.get('grade_id')!r} has {len(calls)} run_hidden "
                            "calls; it needs one, its last line (its value is the cell's partial credit)")
        graded.append(GradedCell(meta["grade_id"], float(meta.get("points", 0)), tuple(calls)))
    locked = {}
    if release.exists():
        for cell in nbformat.read(release, as_version=4).cells:
            meta = _nbgrader(cell)
            if meta.get("locked") and meta.get("grade_id"):
                locked[meta["grade_id"]] = cell.source
    return NotebookSpec(name, tuple(graded), locked)


def assignment_specs(root: Path, assignment: str) -> list[NotebookSpec]:
    """The specs of every notebook of an assignment, in file order."""
    sources = sorted((root / "source" / assignment).glob("*.ipynb"))
    if not sources:
        raise SpecError(f"no notebooks in {root / 'source' / assignment}")
    return [read_spec(path, root / "release" / assignment / path.name) for path in sources]
