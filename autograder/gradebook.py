"""Record the hardened grader's scores in nbgrader's gradebook, so ``nbgrader export`` and formgrader see them.

Only the main grader process calls this, after every job is done: one writer.
The assignment must already be in the gradebook, which ``nbgrader
generate_assignment`` (``make release``) does.
"""
from __future__ import annotations

from typing import Any




class GradebookError(RuntimeError):
    pass


def write_gradebook(db_url: str, assignment: str, results: list[dict]) -> None:
    """Set each graded cell's automatic score for every student in ``results``."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise GradebookError(
                f"assignment {assignment!r} is not in the gradebook {db_url}; run "
                f"`nbgrader generate_assignment {assignment}` (make release) in the course folder first") from None
        for student in sorted({r["student_id"] for r in results}):
            gb.update_or_create_student(student)
            try:
                gb.find_submission(assignment, student)
            except MissingEntry:
                gb.add_submission(assignment, student)
        for r in results:
            for grade_id, score, _max_score, _status, _message in r["cells"]:
                grade: Any = gb.find_grade(grade_id, r["notebook"], assignment, r["student_id"])
                grade.auto_score = float(score)
                grade.needs_manual_grade = False
        gb.db.commit()
