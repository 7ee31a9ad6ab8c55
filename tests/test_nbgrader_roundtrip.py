"""Stock nbgrader, end to end, in a scratch copy of the course.

The source notebooks submitted as one student earn full marks; the untouched
release submitted as another earns zero; a submission with two mistakes loses
exactly the points of the exercises those mistakes break.
"""
from __future__ import annotations

import csv
import shutil

import nbformat
import pytest

from notebooks import ASSIGNMENT, RELEASE, ROOT, SOURCE, is_graded, run_nbgrader, source_notebooks


#: carol's two mistakes in notebook 01: the ones column last, and an sse that averages.
#: They break add_bias_column, perceptron_forward (which calls it) and sse.
CAROL_EDITS = {
    "add_bias_column": ("np.concatenate([ones, X], axis=1)", "np.concatenate([X, ones], axis=1)"),
    "sse_mse": ("return float(np.sum((y_true - y_pred) ** 2))", "return float(np.mean((y_true - y_pred) ** 2))"),
}
CAROL_LOSES = ("test_add_bias_column", "test_perceptron_forward", "test_sse")


CAROL_NOTEBOOK = "01_tensors_and_shapes.ipynb"  # the only notebook carol hands in


def points_of(notebook: str, grade_ids=None) -> float:
    """Points of one source notebook's test cells (all of them, or those named)."""
    return sum(
        float(cell.metadata["nbgrader"]["points"])
        for cell in nbformat.read(SOURCE / notebook, as_version=4).cells
        if is_graded(cell) and (grade_ids is None or cell.metadata["nbgrader"]["grade_id"] in grade_ids)
    )


def write_carol(folder) -> None:
    folder.mkdir(parents=True)
    nb = nbformat.read(SOURCE / CAROL_NOTEBOOK, as_version=4)
    for cell in nb.cells:
        edit = CAROL_EDITS.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        if edit:
            assert cell.source.count(edit[0]) == 1, f"the solution changed; update CAROL_EDITS: {edit[0]!r}"
            cell.source = cell.source.replace(*edit)
    nbformat.write(nb, folder / CAROL_NOTEBOOK)


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


def test_two_mistakes_lose_exactly_the_points_they_break(grades):
    carol = grades["carol"]
    lost = points_of(CAROL_NOTEBOOK, CAROL_LOSES)
    assert lost > 0
    assert float(carol["score"]) == points_of(CAROL_NOTEBOOK) - lost, carol


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
