"""The hardened grader (``python -m autograder grade``) against submissions that attack it.

One attacker per attack class of ``../shared/GRADING.md`` (see ``adversarial.py``),
graded in one run alongside an honest student. For each: the tampered
exercises score zero with a status and message that say what happened, the
honest exercises in the same notebook still pass, the honest student is
unaffected, and no submission's bytes change. Then: solutions score full
marks, the release scores zero, a second run with ``--workers 2`` gives the same
files as the first with ``--workers 1``, and the gradebook is
written so that ``nbgrader export`` sees the scores.
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import adversarial
from adversarial import ALL_CELLS, ATTACKERS, LINGER_MARKS, NB
from autograder.notebook_spec import assignment_specs
from autograder.sandbox import BASE_UID, check_available
from notebooks import ASSIGNMENT, RELEASE, ROOT, SOURCE, run_nbgrader
from students import CAROL_NOTEBOOK, carol_points, write_carol

#: short limits so that the attacks that loop cost seconds, not minutes
LIMITS = ["--cell-timeout", "10", "--probe-timeout", "10", "--timeout", "120", "--quiet"]
SPECS = {s.name: s for s in assignment_specs(ROOT, ASSIGNMENT)}


def grade(submissions: Path, out: Path, *extra: str, workers: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "autograder", "grade", str(submissions), "--out", str(out),
           "--workers", str(workers), *LIMITS, *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)


def digest(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (links not followed): its content hash, link target or 'dir'."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                out[rel] = "link -> " + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def all_files(folder: Path) -> dict[str, bytes]:
    """Every output file; in feedback pages, what the students' own code measured is masked (see below)."""
    return {str(p.relative_to(folder)): (stable(p.read_text(encoding="utf-8")).encode() if p.suffix == ".html"
                                         else p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


_IMAGE = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")
_OUTPUT = re.compile(r'(<div class="output_subarea[^"]*">)(.*?)(</div>)', re.S)


def stable(html: str) -> str:
    """A feedback page without what no grader can make repeatable: the numbers and figures that the
    notebooks' own timing cells and progress bars print (milliseconds, it/s). Everything the grader
    writes (verdicts, diagnoses, scores) and the text of every output stay as they are."""
    html = _IMAGE.sub("IMAGE", html)
    return _OUTPUT.sub(lambda m: m.group(1) + re.sub(r" *[0-9]+(?:[.,][0-9]+)* *", "#", m.group(2)) + m.group(3), html)


def course_digest() -> dict:
    return {name: digest(ROOT / name) for name in ("course", "source", "autograder", "release")}


def test_the_sandbox_is_available():
    why = check_available()
    assert why is None, f"the hardened grader needs bubblewrap here (.ci/run installs it): {why}"


# ----------------------------------------------------------------------------------------------
# the attackers


@pytest.fixture(scope="module")
def attack(tmp_path_factory):
    base = tmp_path_factory.mktemp("attack")
    submissions, out = base / "submissions", base / "out"
    expect = adversarial.build(submissions, out)
    before = digest(submissions)
    course_before = course_digest()
    gradebook_before = (ROOT / "gradebook.db").read_bytes() if (ROOT / "gradebook.db").exists() else None
    proc = grade(submissions, out)
    _, details = read_csv(out / "details.csv") if (out / "details.csv").exists() else ([], [])
    return {
        "proc": proc, "out": out, "submissions": submissions, "expect": expect, "before": before,
        "course_before": course_before, "gradebook_before": gradebook_before, "details": details,
    }


def test_grading_the_attackers_succeeds(attack):
    proc = attack["proc"]
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr


def test_outputs_have_the_promised_form(attack):
    out = attack["out"]
    header, grades = read_csv(out / "grades.csv")
    assert header == ["student_id", "notebook", "score", "max_score"]
    students = sorted(attack["expect"])
    assert [(r["student_id"], r["notebook"]) for r in grades] == [(s, n) for s in students for n in SPECS]
    header, details = read_csv(out / "details.csv")
    assert header == ["student_id", "notebook", "grade_id", "score", "max_score", "status", "message"]
    assert {r["status"] for r in details} <= {"passed", "failed", "error", "timeout", "missing"}
    for s in students:
        for name, spec in SPECS.items():
            rows = [r for r in details if r["student_id"] == s and r["notebook"] == name]
            assert [r["grade_id"] for r in rows] == [c.grade_id for c in spec.graded]
            assert (out / "feedback" / s / f"{name}.html").is_file()
            if name != NB:  # handed in nb01 only: the others are missing and score 0
                assert all(r["status"] == "missing" and float(r["score"]) == 0 for r in rows)


def test_every_attacker_was_graded(attack):
    assert sorted(attack["expect"]) == sorted(ATTACKERS)


@pytest.mark.parametrize("student", ATTACKERS)
def test_each_attack_scores_only_what_is_deserved(attack, student):
    expect = attack["expect"][student]
    rows = {r["grade_id"]: r for r in attack["details"] if r["student_id"] == student and r["notebook"] == NB}
    assert set(rows) == set(ALL_CELLS)
    problems = []
    for grade_id, row in rows.items():
        score, top = float(row["score"]), float(row["max_score"])
        if grade_id in expect.zero:
            status, words = expect.zero[grade_id]
            if score != 0 or row["status"] != status or words not in row["message"]:
                problems.append(f"{grade_id}: expected 0 / {status} / '{words}', got {score:g} / "
                                f"{row['status']} / {row['message'][:300]!r}")
        elif row["status"] != "passed" or score != top or top <= 0:
            problems.append(f"{grade_id} is honest and should pass: {score:g}/{top:g} {row['status']} "
                            f"{row['message'][:300]!r}")
    html = (attack["out"] / "feedback" / student / f"{NB}.html").read_text(encoding="utf-8")
    problems += [f"feedback lacks {text!r}" for text in expect.feedback_has if text not in html]
    problems += [f"feedback shows {text!r}" for text in expect.feedback_lacks if text in html]
    assert not problems, f"{student}:\n" + "\n".join(problems)


def test_the_honest_student_gets_full_marks_beside_the_attackers(attack):
    rows = [r for r in attack["details"] if r["student_id"] == "honest" and r["notebook"] == NB]
    assert rows and all(r["status"] == "passed" and r["score"] == r["max_score"] for r in rows), rows


def test_no_submission_changed(attack):
    assert digest(attack["submissions"]) == attack["before"]


def test_the_course_and_gradebook_did_not_change(attack):
    assert course_digest() == attack["course_before"]
    now = (ROOT / "gradebook.db").read_bytes() if (ROOT / "gradebook.db").exists() else None
    assert now == attack["gradebook_before"]


def test_the_grader_output_was_not_written_by_a_student(attack):
    _, grades = read_csv(attack["out"] / "grades.csv")
    assert not any("tampered" in path.read_text(encoding="utf-8", errors="replace")
                   for path in attack["out"].rglob("*.csv"))
    assert {r["student_id"] for r in grades} == set(attack["expect"])


def test_no_process_is_left_running(attack):
    survivors = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            uid = entry.stat().st_uid
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if BASE_UID <= uid < BASE_UID + 1000 or any(mark in cmdline for mark in LINGER_MARKS):
            survivors.append(f"{entry.name} uid={uid} {cmdline[:100]}")
    assert not survivors, survivors


def test_feedback_never_shows_the_hidden_checks(attack):
    hidden_markers = ("run_hidden", "BEGIN HIDDEN", '__import__("autograder_probe', "HiddenCheck",
                      "def cases(", "def judge(")  # (a student's own code may name the probe module)
    for path in (attack["out"] / "feedback").rglob("*.html"):
        html = path.read_text(encoding="utf-8")
        shown = [m for m in hidden_markers if m in html]
        assert not shown, f"{path}: shows {shown}"


# ----------------------------------------------------------------------------------------------
# solutions, release, workers, determinism, gradebook

SMALL = ("alice", "bob", "liar", "looper", "killer")


@pytest.fixture(scope="module")
def small(tmp_path_factory, attack):
    """alice hands in the source notebooks, bob the release (in nbgrader's layout), plus three attackers."""
    base = tmp_path_factory.mktemp("small")
    submissions = base / "submissions"
    shutil.copytree(SOURCE, submissions / "alice")
    shutil.copytree(RELEASE, submissions / "bob" / ASSIGNMENT, ignore=shutil.ignore_patterns("course", "*.txt"))
    write_carol(submissions / "carol")
    for student in SMALL[2:]:
        shutil.copytree(attack["submissions"] / student, submissions / student)
    course = base / "course"  # a scratch nbgrader course, for the gradebook
    course.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(SOURCE, course / "source" / ASSIGNMENT)
    run_nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    db = f"sqlite:///{course / 'gradebook.db'}"
    runs = {}
    # two runs, one worker and two: the same files prove both that the worker count does not matter
    # and that a second run repeats the first (grading the class a third time would add nothing)
    for name, workers, extra in (("one", 1, ()), ("two", 2, ("--gradebook", db))):
        out = base / name
        proc = grade(submissions, out, *extra, workers=workers)
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        runs[name] = out
    run_nbgrader(course, "export", "--to", str(base / "export.csv"))
    return {"runs": runs, "export": base / "export.csv", "base": base}


def test_solutions_score_full_marks_and_the_release_zero(small):
    _, grades = read_csv(small["runs"]["one"] / "grades.csv")
    by = {(r["student_id"], r["notebook"]): r for r in grades}
    for name, spec in SPECS.items():
        alice, bob = by[("alice", name)], by[("bob", name)]
        assert float(alice["score"]) == float(alice["max_score"]) == spec.max_score > 0, alice
        assert float(bob["score"]) == 0 and float(bob["max_score"]) == spec.max_score, bob
    _, details = read_csv(small["runs"]["one"] / "details.csv")
    bob = [r for r in details if r["student_id"] == "bob"]
    assert all(r["status"] == "error" and "not implemented" in r["message"] for r in bob), bob[:3]


def test_partial_credit_by_groups_same_as_the_stock_path(small):
    """carol gets, cell by cell, the points tests/test_nbgrader_roundtrip.py sees stock nbgrader give her."""
    _, details = read_csv(small["runs"]["one"] / "details.csv")
    carol = {r["grade_id"]: r for r in details if r["student_id"] == "carol"
             and r["notebook"] == CAROL_NOTEBOOK[:-len(".ipynb")]}
    assert {g: float(r["score"]) for g, r in carol.items()} == pytest.approx(carol_points())
    edge = carol["test_linear_forward"]
    assert edge["status"] == "partial", edge
    assert "✓ main behaviour" in edge["message"] and "✗ edge cases" in edge["message"], edge["message"]
    assert "no input features D = 0" in edge["message"], edge["message"]
    assert carol["test_sse"]["status"] == "failed" and "this is the mean" in carol["test_sse"]["message"]


def test_two_workers_and_a_second_run_give_the_same_files(small):
    for name in ("grades.csv", "details.csv"):  # the results: byte for byte
        assert (small["runs"]["one"] / name).read_bytes() == (small["runs"]["two"] / name).read_bytes()
    one, two = all_files(small["runs"]["one"]), all_files(small["runs"]["two"])
    assert sorted(one) == sorted(two)
    assert [k for k in one if one[k] != two[k]] == []


def test_results_do_not_depend_on_who_else_is_graded(small, attack):
    """The attackers' rows and feedback are the same here as in the run with every attacker."""
    _, here = read_csv(small["runs"]["one"] / "details.csv")
    for student in SMALL[2:]:
        mine = [r for r in here if r["student_id"] == student]
        there = [r for r in attack["details"] if r["student_id"] == student]
        assert mine == there, student
        a = (small["runs"]["one"] / "feedback" / student / f"{NB}.html").read_text(encoding="utf-8")
        b = (attack["out"] / "feedback" / student / f"{NB}.html").read_text(encoding="utf-8")
        assert stable(a) == stable(b), student


def test_scores_reach_the_nbgrader_gradebook(small):
    _, grades = read_csv(small["runs"]["two"] / "grades.csv")
    expected: dict[str, float] = {}
    for r in grades:
        expected[r["student_id"]] = expected.get(r["student_id"], 0.0) + float(r["score"])
    _, exported = read_csv(small["export"])
    got = {r["student_id"]: float(r["score"]) for r in exported if r["assignment"] == ASSIGNMENT}
    assert got == pytest.approx(expected), (got, expected)
    assert got["alice"] == sum(s.max_score for s in SPECS.values())


# ----------------------------------------------------------------------------------------------
# the self-check


def _check(path: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "autograder", "check", str(path), "--cell-timeout", "10", "--probe-timeout", "10"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_check_passes_a_finished_notebook_and_fails_an_unfinished_one(tmp_path):
    done = _check(SOURCE / f"{NB}.ipynb")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"total: {SPECS[NB].max_score:g} / {SPECS[NB].max_score:g}" in done.stdout
    todo = _check(RELEASE / f"{NB}.ipynb")
    assert todo.returncode == 1, todo.stdout + todo.stderr
    assert "not implemented yet" in todo.stdout and f"total: 0 / {SPECS[NB].max_score:g}" in todo.stdout


def test_check_names_the_notebooks_it_knows(tmp_path):
    stray = tmp_path / "my_homework.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), stray)
    proc = _check(stray)
    assert proc.returncode == 2 and "01_tensors_and_shapes.ipynb" in proc.stderr, proc.stderr


# ----------------------------------------------------------------------------------------------
# one budget per notebook


def test_replays_after_restarts_stay_within_the_notebook_time_limit(tmp_path):
    """The replayer's four cells sleep 8 s (under the 10 s cell limit) each time they are replayed, and
    three cells kill the kernel: without one budget for the whole notebook that is 3 x 4 x 8 = 96 s of
    replays alone. With --timeout 40 the notebook is graded in about that, with a clear note."""
    import time

    submissions, out = tmp_path / "submissions", tmp_path / "out"
    adversarial.build_replayer(submissions / "replayer", sleep=8.0, cells=4, kills=3)
    start = time.monotonic()
    cmd = [sys.executable, "-m", "autograder", "grade", str(submissions), "--out", str(out), "--workers", "1",
           "--cell-timeout", "10", "--probe-timeout", "10", "--timeout", "40", "--quiet"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert elapsed < 40 + 30, f"grading one notebook took {elapsed:.0f} s with --timeout 40"  # + start-up, rendering
    _, details = read_csv(out / "details.csv")
    text = " ".join(r["message"] for r in details if r["notebook"] == NB)
    assert "time limit (40 s) was used up" in text, text[:3000]


def test_one_long_output_line_costs_nothing_after_the_cell(tmp_path):
    """print("x" * 300_000): nbclient's stream merging (a regular expression quadratic in the line's length)
    would take over a minute after the cell, outside every limit; the grader does not merge streams."""
    import time

    nb = adversarial.honest()
    adversarial.after(nb, "sse_mse", 'print("x" * 300_000)')
    (tmp_path / "submissions" / "longliner").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "submissions" / "longliner" / f"{NB}.ipynb")
    start = time.monotonic()
    proc = grade(tmp_path / "submissions", tmp_path / "out", workers=1)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, details = read_csv(tmp_path / "out" / "details.csv")
    assert all(r["status"] == "passed" for r in details if r["notebook"] == NB), details
    assert elapsed < 45, f"grading took {elapsed:.0f} s"


# ----------------------------------------------------------------------------------------------
# one sandbox, one share of the machine


@pytest.fixture(scope="module")
def neighbours(tmp_path_factory):
    """An honest student graded beside a spinner (24 processes spinning) and a hoarder (children that
    together hold more memory than the sandbox may), two at a time."""
    base = tmp_path_factory.mktemp("neighbours")
    submissions, out = base / "submissions", base / "out"
    folder = submissions / "a-honest"
    folder.mkdir(parents=True)
    nbformat.write(adversarial.honest(), folder / f"{NB}.ipynb")
    adversarial.build_spinner(submissions / "b-spinner")
    adversarial.build_hoarder(submissions / "c-hoarder")
    cmd = [sys.executable, "-m", "autograder", "grade", str(submissions), "--out", str(out), "--workers", "2",
           "--cell-timeout", "10", "--probe-timeout", "10", "--timeout", "45", "--memory-mb", "3072", "--quiet"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, details = read_csv(out / "details.csv")
    return {"out": out, "details": details}


@pytest.mark.skipif(os.geteuid() != 0, reason="control groups need the grader to run as root")
def test_a_spinning_neighbour_does_not_change_an_honest_grade(neighbours):
    rows = [r for r in neighbours["details"] if r["student_id"] == "a-honest" and r["notebook"] == NB]
    assert rows and all(r["status"] == "passed" for r in rows), [(r["grade_id"], r["status"]) for r in rows]
    # the spinners were held to one core (and one CPU's time) whatever the machine has
    page = (neighbours["out"] / "feedback" / "b-spinner" / f"{NB}.html").read_text(encoding="utf-8")
    cores = re.findall(r"the spinners may use (\d+) of the machine", page)
    assert cores == ["1"], cores


@pytest.mark.skipif(os.geteuid() != 0, reason="control groups need the grader to run as root")
def test_the_memory_limit_holds_for_the_sandbox_as_a_whole(neighbours):
    page = (neighbours["out"] / "feedback" / "c-hoarder" / f"{NB}.html").read_text(encoding="utf-8")
    held = [int(h) for h in re.findall(r"the children held (\d+) MiB at once", page)]
    # 3 GiB for the kernel (about 400 MiB) and its children together: never all six children of 512 MiB
    assert held and all(h <= 2560 for h in held), held
