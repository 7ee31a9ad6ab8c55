"""What every hidden check's cases must be, in every notebook: the same on every call (fixed seeds),
plain data that crosses the wire to the sandbox, and labelled uniquely (a student reads the labels)."""
from __future__ import annotations

import pytest

from autograder.hidden import NOTEBOOK_MODULES, checks_for
from autograder.probe import wire

ALL = [(notebook, exercise) for notebook in sorted(NOTEBOOK_MODULES) for exercise in sorted(checks_for(notebook))]


@pytest.mark.parametrize("notebook, exercise", ALL)
def test_cases_are_deterministic_plain_and_labelled(notebook, exercise):
    check = checks_for(notebook)[exercise]
    first, second = check.cases(), check.cases()
    assert first, "a check needs cases"
    labels = [c.label for c in first]
    assert len(set(labels)) == len(labels), "labels must be unique"
    # wire.dumps refuses anything that is not plain data; equal texts mean equal cases
    sent = [wire.dumps(wire.case_to_plain(c)) for c in first]
    assert sent == [wire.dumps(wire.case_to_plain(c)) for c in second]
    assert [c.group for c in first] == [c.group for c in second]
