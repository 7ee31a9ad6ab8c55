"""Every notebook runs: the source version passes everything, the release fails only at stubs."""
from __future__ import annotations

import re

import nbformat
import pytest

from notebooks import (
    describe,
    execute,
    exercise_names,
    is_graded,
    release_notebooks,
    source_notebooks,
)

SOURCES = source_notebooks()
RELEASES = release_notebooks()


def test_there_are_notebooks():
    assert SOURCES, "no source notebooks found"
    assert [p.name for p in RELEASES] == [p.name for p in SOURCES]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_source_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_source_notebook_passes_every_cell(path):
    runs = execute(path, allow_errors=True)
    broken = [describe(r) for r in runs if r.errors or r.stderr]
    assert not broken, f"{path.name}:\n" + "\n".join(broken)
    graded = [r for r in runs if is_graded(r.cell)]
    assert graded, f"{path.name} has no graded test cells"
    without_hidden = [r.index for r in graded if "### BEGIN HIDDEN TESTS" not in r.cell.source]
    assert not without_hidden, f"{path.name}: test cells {without_hidden} have no hidden tests"


@pytest.mark.parametrize("path", RELEASES, ids=lambda p: p.stem)
def test_release_notebook_fails_only_at_stubs(path):
    nb = nbformat.read(path, as_version=4)
    exercises = exercise_names(nb)
    assert exercises, f"{path.name}: no exercises found"
    uses_exercise = re.compile(r"\b(" + "|".join(map(re.escape, sorted(exercises))) + r")\b")
    runs = execute(path, allow_errors=True)
    unexpected = [
        describe(r)
        for r in runs
        if r.stderr
        or (r.errors and not (
            all(e.ename == "NotImplementedError" for e in r.errors) and uses_exercise.search(r.cell.source)
        ))
    ]
    assert not unexpected, f"{path.name}: cells that fail for a reason other than a stub:\n" + "\n".join(unexpected)
    passing_tests = [r.index for r in runs if is_graded(r.cell) and not r.errors]
    assert not passing_tests, f"{path.name}: test cells {passing_tests} pass without any work done"


_HEADING = re.compile(r"^### Exercise (\d+) \(([\d +]+) points?\)", re.MULTILINE)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_exercise_headings_and_intro_match_the_graded_cells(path):
    """Exercises are numbered 1, 2, ... in order; each heading's points are those of the test cells
    under it, and the introduction states the number of exercises and the total."""
    nb = nbformat.read(path, as_version=4)
    numbers, stated, graded = [], [], []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for number, points in _HEADING.findall(cell.source):
                numbers.append(int(number))
                stated.append(sum(int(p) for p in points.split("+")))
                graded.append(0.0)
        elif is_graded(cell):
            assert graded, f"{path.name}: a test cell before the first exercise heading"
            graded[-1] += float(cell.metadata["nbgrader"]["points"])
    assert numbers == list(range(1, len(numbers) + 1)), f"{path.name}: exercises numbered {numbers}"
    assert stated == graded, f"{path.name}: headings state {stated} points, the test cells hold {graded}"
    intro = re.search(r"There are (\d+) graded exercises \(([^)]*)\)", nb.cells[1].source)
    assert intro, f"{path.name}: the introduction does not say how many graded exercises there are"
    assert int(intro.group(1)) == len(numbers)
    total = re.search(r"(\d+) points", intro.group(2))
    assert total and int(total.group(1)) == sum(graded), (intro.group(0), sum(graded))
