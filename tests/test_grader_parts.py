"""The hardened grader's parts, one at a time: the wire format, reading replies, the grading
spec, finding submissions, judging what came back, and refusing to run without a sandbox."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import nbformat
import numpy as np
import pytest

from autograder import cli
from autograder.hardened import judge_exercise
from autograder.hidden import checks_for
from autograder.notebook_spec import RUN_HIDDEN, assignment_specs
from autograder.probe import Case, Outcome, wire
from autograder.probe.session import encode_request, probe_reply, read_reply, run_cases
from notebooks import ASSIGNMENT, ROOT, SOURCE

NB = "01_tensors_and_shapes"


# ----------------------------------------------------------------------------------------------
# wire


@pytest.mark.parametrize("value", [
    None, True, 0, -7, 2**70, 1.5, float("inf"), float("-inf"), "text ✓", (), (1, (2, 3)), [1, [2.0]],
    {"a": 1, "b": (2,)}, np.arange(6.0).reshape(2, 3), np.zeros((0, 4)), np.array(3, dtype=np.int32),
    np.array([True, False]), np.array([1e300, -1e-300], dtype=np.float64), np.arange(4, dtype=np.uint8),
])
def test_plain_data_crosses_the_wire_unchanged(value):
    back = wire.loads(wire.dumps(value))
    if isinstance(value, np.ndarray):
        assert type(back) is np.ndarray and back.dtype == value.dtype and back.shape == value.shape
        assert np.array_equal(back, value)
    else:
        assert back == value and type(back) is type(value)


def test_nan_crosses_the_wire():
    assert np.isnan(wire.loads(wire.dumps(float("nan"))))
    a = wire.loads(wire.dumps(np.array([np.nan, 1.0])))
    assert np.isnan(a[0]) and a[1] == 1.0


@pytest.mark.parametrize("value", [object(), np.array(["a"]), np.array([1 + 2j]), {1: 2}, b"bytes", {1.5}])
def test_what_is_not_plain_data_is_refused_when_sent(value):
    with pytest.raises(wire.WireError):
        wire.dumps(value)


@pytest.mark.parametrize("text", [
    "not json", "NaN", '{"float": "1e5"}', '{"array": "AAAA", "dtype": "object", "shape": [1]}',
    '{"array": "AAAA", "dtype": "float64", "shape": [5]}', '{"array": "!!!!", "dtype": "uint8", "shape": [3]}',
    '{"array": "AAAA", "dtype": "uint8", "shape": [-3]}', '{"tuple": 5}', '{"dict": [[1, 2]]}',
    '{"__reduce__": "os.system"}', '{"pickle": "gASV"}', "[" * 100 + "]" * 100,
    "[" + "[]," * 300_000 + "[]]",  # too many values: the grader's memory is not the student's to spend
])
def test_malformed_data_is_refused_when_read(text):
    with pytest.raises(wire.WireError):
        wire.loads(text)


@pytest.mark.parametrize("data", [
    {"kind": "returned"}, {"kind": "lied", "value": 1, "error": "", "message": ""},
    {"kind": ["returned"], "value": 1, "error": "", "message": ""},
    {"kind": "raised", "value": None, "error": 3, "message": ""}, "returned",
])
def test_malformed_outcomes_are_refused(data):
    with pytest.raises(wire.WireError):
        wire.outcome_from_plain(data)


# ----------------------------------------------------------------------------------------------
# the probe's session and its reply


def test_a_probe_reply_round_trip():
    case = Case("label", (np.arange(3.0),), {})
    request = {"object": "f", "probe": "call", "cases": [wire.case_to_plain(case)]}
    text = repr(probe_reply({"f": lambda x: x * 2}, encode_request(request)))
    reply = read_reply(text)
    assert reply["found"] is True
    [outcome] = reply["outcomes"]
    assert outcome.kind == "returned" and np.array_equal(outcome.value, [0.0, 2.0, 4.0])


def test_the_probe_reports_a_missing_object_and_student_exceptions_as_data():
    case = wire.case_to_plain(Case("c", (1,), {}))
    assert run_cases({}, {"object": "f", "probe": "call", "cases": [case]}) == {"found": False, "outcomes": []}

    def leaves(x):
        raise SystemExit("bye")

    reply = run_cases({"f": leaves}, {"object": "f", "probe": "call", "cases": [case]})
    assert reply["outcomes"][0]["kind"] == "raised" and reply["outcomes"][0]["error"] == "SystemExit"


@pytest.mark.parametrize("text", [
    "{'found': True}", "'not base64 ✓'", '"eyJ4Ijox"', "'eyJ4Ijox' + 'x'",
    repr(base64.b64encode(json.dumps({"found": True}).encode()).decode()),
    repr(base64.b64encode(json.dumps({"found": "yes", "outcomes": []}).encode()).decode()), 42,
])
def test_malformed_replies_are_refused(text):
    with pytest.raises(wire.WireError):
        read_reply(text)


# ----------------------------------------------------------------------------------------------
# judging what came back


@pytest.fixture(scope="module")
def sse_check():
    return checks_for(NB)["sse"]


def test_judging_each_way_a_reply_can_go_wrong(sse_check):
    cases = sse_check.cases()
    assert judge_exercise(sse_check, cases, "sse", "timeout", "")[0] == "timeout"
    assert judge_exercise(sse_check, cases, "sse", "died", "")[0] == "error"
    assert judge_exercise(sse_check, cases, "sse", "error", "NameError: x")[0] == "error"
    status, _, lines = judge_exercise(sse_check, cases, "sse", "ok", "'garbage'")
    assert status == "error" and "malformed" in lines[0]
    missing = repr(base64.b64encode(wire.dumps({"found": False, "outcomes": []}).encode()).decode())
    status, _, lines = judge_exercise(sse_check, cases, "sse", "ok", missing)
    assert status == "missing" and "not defined" in lines[0]
    short = {"found": True, "outcomes": [wire.outcome_to_plain(Outcome("returned", 1.0))]}
    status, _, lines = judge_exercise(sse_check, cases, "sse", "ok",
                                   repr(base64.b64encode(wire.dumps(short).encode()).decode()))
    assert status == "error" and f"1 answers for {len(cases)} inputs" in lines[0]


def _reply(outcomes):
    data = {"found": True, "outcomes": [wire.outcome_to_plain(o) for o in outcomes]}
    return repr(base64.b64encode(wire.dumps(data).encode()).decode())


def test_judging_right_wrong_and_unfinished_answers(sse_check, ref_sse):
    cases = sse_check.cases()
    right = [sse_check.call(ref_sse, c) for c in cases]
    assert judge_exercise(sse_check, cases, "sse", "ok", _reply(right))[0] == "passed"
    wrong = [Outcome("returned", -1.0)] * len(cases)
    status, _, lines = judge_exercise(sse_check, cases, "sse", "ok", _reply(wrong))
    assert status == "failed" and lines[0].startswith("hidden checks of sse:")
    todo = [Outcome("raised", error="NotImplementedError", message="sse: replace this line")] * len(cases)
    status, _, lines = judge_exercise(sse_check, cases, "sse", "ok", _reply(todo))
    assert status == "error" and lines == ["✗ sse: not implemented yet (sse raises NotImplementedError)"]
    odd = [Outcome("returned", {"weird": [1, (2,)]})] * len(cases)
    assert judge_exercise(sse_check, cases, "sse", "ok", _reply(odd))[0] == "failed"


@pytest.fixture(scope="module")
def ref_sse():
    from solutions import solution_namespace

    return solution_namespace(SOURCE / f"{NB}.ipynb")["sse"]


# ----------------------------------------------------------------------------------------------
# the grading spec comes from the course, and matches the hidden checks


def test_every_graded_cell_names_hidden_checks_that_exist():
    specs = assignment_specs(ROOT, ASSIGNMENT)
    assert [s.name for s in specs] == [p.stem for p in sorted(SOURCE.glob("*.ipynb"))]
    for spec in specs:
        checks = checks_for(spec.name)
        assert spec.graded and spec.max_score > 0
        named = {exercise for cell in spec.graded for exercise, _ in cell.exercises}
        assert named == set(checks), f"{spec.name}: test cells check {sorted(named)}, hidden has {sorted(checks)}"
        for cell in spec.graded:
            assert cell.grade_id in spec.locked, f"{spec.name}: {cell.grade_id} is not a locked cell of the release"
            assert "run_hidden" not in spec.locked[cell.grade_id]


def test_the_hidden_block_pattern_reads_only_bare_names():
    assert RUN_HIDDEN.findall('run_hidden("01", "sse", sse, points=2)') == [("01", "sse", "sse", "2")]
    assert RUN_HIDDEN.findall('run_hidden("01", "sse", sse)') == [("01", "sse", "sse", "")]
    assert RUN_HIDDEN.findall('run_hidden("01", "sse", make(), points=2)') == []


def test_a_cell_whose_points_disagree_with_its_hidden_call_is_refused(tmp_path):
    from autograder.notebook_spec import SpecError, read_spec

    nb = nbformat.read(SOURCE / f"{NB}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "test_sse":
            cell.source = cell.source.replace("sse, points=1)", "sse, points=3)")
    nbformat.write(nb, tmp_path / f"{NB}.ipynb")
    with pytest.raises(SpecError, match="points=3"):
        read_spec(tmp_path / f"{NB}.ipynb", tmp_path / "missing.ipynb")


# ----------------------------------------------------------------------------------------------
# finding submissions, never following links


def test_both_layouts_are_found_and_links_are_not_followed(tmp_path):
    subs = tmp_path / "subs"
    (subs / "ann").mkdir(parents=True)
    (subs / "ann" / f"{NB}.ipynb").write_text("{}")
    (subs / "ben" / ASSIGNMENT).mkdir(parents=True)
    (subs / "ben" / ASSIGNMENT / f"{NB}.ipynb").write_text("{}")
    (subs / "cat").mkdir()
    (subs / "cat" / f"{NB}.ipynb").symlink_to(SOURCE / f"{NB}.ipynb")
    (subs / "dan").symlink_to(subs / "ann", target_is_directory=True)
    (subs / ".hidden").mkdir()
    found = dict(cli.find_submissions(subs, ASSIGNMENT, [NB, "02_autograd"]))
    assert sorted(found) == ["ann", "ben", "cat"]
    assert found["ann"][NB] == subs / "ann" / f"{NB}.ipynb" and found["ann"]["02_autograd"] is None
    assert found["ben"][NB] == subs / "ben" / ASSIGNMENT / f"{NB}.ipynb"
    assert cli.read_regular_file(found["ann"][NB]) == b"{}"
    assert cli.read_regular_file(found["cat"][NB]) is None  # a link to the solutions
    os.mkfifo(tmp_path / "fifo")
    assert cli.read_regular_file(tmp_path / "fifo") is None


def test_the_output_may_not_be_inside_the_submissions(tmp_path):
    (tmp_path / "subs").mkdir()
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "subs"), "--out",
                           str(tmp_path / "subs" / "out")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "inside SUBMISSIONS" in proc.stderr
    assert not (tmp_path / "subs" / "out").exists()


def test_without_a_sandbox_the_grader_refuses_unless_told(monkeypatch, capsys):
    monkeypatch.setattr(cli, "check_available", lambda: "bubblewrap (bwrap) is not installed")
    args = cli.build_parser().parse_args(["check", "x.ipynb"])
    with pytest.raises(cli.GraderError, match="--unsafe-no-sandbox"):
        cli._options(args)
    args = cli.build_parser().parse_args(["check", "x.ipynb", "--unsafe-no-sandbox"])
    assert cli._options(args).unsafe
    assert "WITHOUT a sandbox" in capsys.readouterr().err


def test_the_unsafe_path_still_judges_outside(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autograder", "check", str(SOURCE / f"{NB}.ipynb"),
                           "--unsafe-no-sandbox"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    total = next(s for s in assignment_specs(ROOT, ASSIGNMENT) if s.name == NB).max_score
    assert "WITHOUT a sandbox" in proc.stderr and f"total: {total:g} / {total:g}" in proc.stdout


def test_the_sandbox_refuses_to_mount_a_python_that_holds_the_hidden_checks(monkeypatch):
    from autograder import sandbox

    assert sandbox._hidden_checks_exposed() is None  # the editable install of make setup
    monkeypatch.setattr(sandbox, "_python_roots", lambda: [str(ROOT)])
    assert "hidden checks" in sandbox._hidden_checks_exposed()


# ----------------------------------------------------------------------------------------------
# whatever a submission holds, the outputs are written, and escaped for where they go


def _result(student: str, message: str = "", html: str = "<p>page</p>") -> dict:
    return {"student_id": student, "notebook": NB, "events": [message],
            "cells": [("test_sse", 0.0, 1.0, "failed", message)], "html": html, "grader_failed": False}


def test_lone_surrogates_never_stop_the_outputs(tmp_path):
    """A folder name that is not UTF-8, an exception message or a markdown cell with a lone surrogate."""
    bad_folder = os.fsdecode(b"st\xffudent")  # how os.listdir hands it over
    results = [_result(bad_folder, "raised ValueError: \ud800"), _result("bob", "ok", html="<p>\udfff</p>")]
    cli.write_outputs(tmp_path, results)
    grades = (tmp_path / "grades.csv").read_text(encoding="utf-8")
    details = (tmp_path / "details.csv").read_text(encoding="utf-8")
    assert "st\\xffudent" in grades and "bob" in grades
    assert "raised ValueError: \\ud800" in details
    assert (tmp_path / "feedback" / "bob" / f"{NB}.html").read_text(encoding="utf-8") == "<p>\\udfff</p>"
    assert (tmp_path / "feedback" / "st\\xffudent" / f"{NB}.html").is_file()


@pytest.mark.parametrize("student", ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tx"])
def test_student_ids_are_never_spreadsheet_formulas(tmp_path, student):
    cli.write_outputs(tmp_path, [_result(student, "=1+1")])
    import csv as _csv

    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as f:
        row = list(_csv.DictReader(f))[0]
    assert row["student_id"] == "'" + student
    with open(tmp_path / "details.csv", newline="", encoding="utf-8") as f:
        assert list(_csv.DictReader(f))[0]["message"] == "'=1+1"


def test_the_terminal_summary_cannot_be_forged():
    forged = "mallory\x1b[2K\ralice    39/39\nchuck"
    table = cli.summary_table([_result(forged)], [NB])
    assert "\x1b" not in table and "\r" not in table and len(table.splitlines()) == 2
    assert "\\x1b[2K\\ralice" in table and "\\nchuck" in table


# ----------------------------------------------------------------------------------------------
# what the grader keeps of a kernel's messages is bounded


def _client():
    import nbformat as _nbf

    from autograder.kernel import NOTEBOOK_OUTPUT_BYTES, _LimitedClient

    client = _LimitedClient(_nbf.v4.new_notebook(), max_output_bytes=2_000_000,
                            notebook_budget=[NOTEBOOK_OUTPUT_BYTES])
    client.clear_before_next_output = False  # what nbclient sets when a cell starts
    return client, NOTEBOOK_OUTPUT_BYTES


def _stream(text: str) -> dict:
    return {"msg_type": "stream", "header": {"msg_type": "stream"}, "parent_header": {},
            "content": {"name": "stdout", "text": text}}


def test_widget_state_is_not_kept():
    """nbclient keeps every comm_open's state for the kernel's life (300 x 10 MiB took 3.3 GB)."""
    client, _ = _client()
    for i in range(50):
        msg = {"msg_type": "comm_open", "header": {"msg_type": "comm_open"}, "parent_header": {},
               "content": {"comm_id": f"c{i}", "target_name": "jupyter.widget",
                           "data": {"state": {"_model_module": "x", "_model_name": "y", "blob": "z" * 100_000},
                                    "buffer_paths": []}}}
        client.handle_comm_msg([], msg, 0)
    assert client.widget_state == {} and client.widget_buffers == {} and client.comm_objects == {}


def test_the_notebook_keeps_a_bounded_amount_of_output_over_all_its_cells():
    """Many cells, each just under the per-cell cap, can no longer make a 571 MB page."""
    client, cap = _client()
    kept = 0
    for _ in range(12):  # twelve cells of 1.9 MB each
        client.reset_output_budget()
        outs: list = []
        for _ in range(19):
            client.output(outs, _stream("x" * 100_000), None, 0)
        kept += sum(len(o.get("text", "")) for o in outs)
    assert kept <= cap + 200_000
    assert kept >= cap - 200_000  # the budget is used, not refused early


def test_stream_outputs_are_merged_as_a_notebook_shows_them():
    from autograder.hardened import merged_streams

    def stream(text, name="stdout"):
        return {"output_type": "stream", "name": name, "text": text}

    outs = [stream("a"), stream("b\n"), stream("err", "stderr"), stream("10%\r50%\r100%\n"), stream("x" * 300_000)]
    merged = merged_streams(outs)
    assert [(o["name"], o["text"][:12]) for o in merged] == [("stdout", "ab\n"), ("stderr", "err"),
                                                             ("stdout", "100%\n" + "x" * 7)]
    assert len(merged[2]["text"]) == 5 + 300_000
    assert outs[0]["text"] == "a"  # the originals are left as they were
