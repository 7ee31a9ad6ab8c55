"""Stock nbgrader, end to end, in a scratch copy of the course.

The source notebooks submitted as one student earn full marks; the untouched
release submitted as another earns zero; carol's mistakes (``students.py``)
lose exactly the points they break, partial credit included.
"""
from __future__ import annotations

import csv
import shutil

import nbformat
import pytest

from notebooks import ASSIGNMENT, RELEASE, ROOT, SOURCE, is_graded, run_nbgrader, source_notebooks
from students import CAROL_NOTEBOOK, carol_points, write_carol


def points_of(notebook: str, grade_ids=None) -> float:
    """Points of one source notebook's test cells (all of them, or those named)."""
    return sum(
        float(cell.metadata["nbgrader"]["points"])
        for cell in nbformat.read(SOURCE / notebook, as_version=4).cells
        if is_graded(cell) and (grade_ids is None or cell.metadata["nbgrader"]["grade_id"] in grade_ids)
    )


def write_mallory(folder) -> None:
    """The machinist of tests/adversarial.py: garbage from linear_forward, and an input transformer
    plus a custom exception handler that blank out and silence the test cells that follow."""
    import tempfile
    from pathlib import Path

    import adversarial

    with tempfile.TemporaryDirectory() as tmp:
        adversarial.build(Path(tmp) / "subs", Path(tmp) / "out")
        folder.mkdir(parents=True)
        shutil.copy(Path(tmp) / "subs" / "machinist" / CAROL_NOTEBOOK, folder / CAROL_NOTEBOOK)


def total_points() -> float:
    return sum(
        float(cell.metadata["nbgrader"]["points"])
        for path in source_notebooks()
        for cell in nbformat.read(path, as_version=4).cells
        if is_graded(cell)
    )


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    shutil.copy2(ROOT / "nbgrader_config.py", course)
    shutil.copytree(SOURCE, course / "source" / ASSIGNMENT)
    run_nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    for student in ("alice", "bob", "carol", "mallory"):
        run_nbgrader(course, "db", "student", "add", student)
    submitted = course / "submitted"
    shutil.copytree(SOURCE, submitted / "alice" / ASSIGNMENT)
    shutil.copytree(RELEASE, submitted / "bob" / ASSIGNMENT)
    write_carol(submitted / "carol" / ASSIGNMENT)
    write_mallory(submitted / "mallory" / ASSIGNMENT)
    run_nbgrader(course, "autograde", ASSIGNMENT)
    run_nbgrader(course, "generate_feedback", ASSIGNMENT)
    run_nbgrader(course, "export", "--to", str(course / "grades.csv"))
    with open(course / "grades.csv", newline="") as f:
        grades = {row["student_id"]: row for row in csv.DictReader(f)}
    return course, grades


@pytest.fixture(scope="module")
def grades(graded_course):
    return graded_course[1]


def test_solutions_get_full_marks(grades):
    alice = grades["alice"]
    assert float(alice["max_score"]) == total_points() > 0
    assert float(alice["score"]) == float(alice["max_score"]), alice


def test_untouched_release_gets_zero(grades):
    bob = grades["bob"]
    assert float(bob["max_score"]) == total_points()
    assert float(bob["score"]) == 0, bob


def test_mistakes_lose_exactly_the_points_they_break(grades):
    """Broken main behaviours cost the whole cell; an edge-case slip costs its group's share."""
    carol = grades["carol"]
    expected = carol_points()
    assert 0 < sum(expected.values()) < points_of(CAROL_NOTEBOOK)
    assert float(carol["score"]) == pytest.approx(sum(expected.values())), carol


def test_partial_credit_reaches_the_gradebook_cell_by_cell(graded_course):
    """nbgrader reads the hidden run's value (the points earned) as the cell's partial credit."""
    from nbgrader.api import Gradebook

    course, _ = graded_course
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(CAROL_NOTEBOOK[:-len(".ipynb")], ASSIGNMENT, "carol")
        got = {grade.name: grade.score for grade in sub.grades if grade.name in carol_points()}
    assert got == pytest.approx(carol_points())


def test_feedback_is_written_and_names_the_missing_work(graded_course):
    course, _ = graded_course
    for path in source_notebooks():
        for student in ("alice", "bob"):
            html = course / "feedback" / student / ASSIGNMENT / f"{path.stem}.html"
            assert html.is_file(), f"no feedback at {html}"
        bob = (course / "feedback" / "bob" / ASSIGNMENT / f"{path.stem}.html").read_text()
        assert "NotImplementedError" in bob


def test_stock_nbgrader_can_be_fooled_which_is_why_the_hardened_grader_exists(grades):
    """mallory's linear_forward returns zeros, yet stock nbgrader gives her every point of the notebook:
    her kernel hooks blank out the test cells. tests/test_hardened.py shows the hardened grader giving
    that exercise 0. If this test fails, nbgrader has closed the hole: update the README."""
    mallory = grades["mallory"]
    assert float(mallory["score"]) == points_of(CAROL_NOTEBOOK), mallory
