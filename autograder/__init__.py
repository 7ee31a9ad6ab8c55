"""Grading tools of the course: release generation, hidden checks and (later) the hardened grader.

Nothing in this package is shipped to students.
"""
