"""Stock nbgrader, end to end, in a scratch copy of the course.

The source notebooks submitted as one student earn full marks; the untouched
release submitted as another earns zero.
"""
from __future__ import annotations

import csv
import shutil
import subprocess

import nbformat
import pytest

from autograder.release import nbgrader_command
from notebooks import ASSIGNMENT, RELEASE, ROOT, SOURCE, is_graded, source_notebooks


def nbgrader(course, *args):
    cmd, env = nbgrader_command(*args)
    env["JUPYTER_CONFIG_DIR"] = str(course / ".jupyter-config")  # no user-level nbgrader config
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


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
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    for student in ("alice", "bob"):
        nbgrader(course, "db", "student", "add", student)
    submitted = course / "submitted"
    shutil.copytree(SOURCE, submitted / "alice" / ASSIGNMENT)
    shutil.copytree(RELEASE, submitted / "bob" / ASSIGNMENT)
    nbgrader(course, "autograde", ASSIGNMENT)
    nbgrader(course, "generate_feedback", ASSIGNMENT)
    nbgrader(course, "export", "--to", str(course / "grades.csv"))
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


def test_feedback_is_written_and_names_the_missing_work(graded_course):
    course, _ = graded_course
    for path in source_notebooks():
        for student in ("alice", "bob"):
            html = course / "feedback" / student / ASSIGNMENT / f"{path.stem}.html"
            assert html.is_file(), f"no feedback at {html}"
        bob = (course / "feedback" / "bob" / ASSIGNMENT / f"{path.stem}.html").read_text()
        assert "NotImplementedError" in bob
