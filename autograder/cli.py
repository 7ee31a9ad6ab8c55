"""``python -m autograder grade`` and ``python -m autograder check``: the hardened grader's commands.

grade SUBMISSIONS --out OUT [--assignment week1] [--workers N] [--timeout SECONDS]
    Grades every student's folder (``SUBMISSIONS/<student>/<notebook>.ipynb`` or
    nbgrader's ``SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb``) and writes
    OUT/grades.csv, OUT/details.csv and OUT/feedback/<student>/<notebook>.html.
    Nothing under SUBMISSIONS is ever written.

check NOTEBOOK
    The self-check: grades one notebook the same way and prints each graded
    cell's verdict; exit status 0 only when everything passes.
"""
from __future__ import annotations

import argparse
import csv
import io
import multiprocessing
import os
import re
import stat
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Optional

from .gradebook import GradebookError, write_gradebook
from .hardened import ROOT, STATUSES, CellResult, NotebookResult, Options, grade_notebook, unsubmitted
from .notebook_spec import NotebookSpec, SpecError, assignment_specs
from .sandbox import UNSAFE_WARNING, Limits, check_available, claim_slot

GRADES_HEADER = ["student_id", "notebook", "score", "max_score"]
DETAILS_HEADER = ["student_id", "notebook", "grade_id", "score", "max_score", "status", "message"]


class GraderError(RuntimeError):
    """The grader itself cannot go on (bad arguments, no sandbox, a broken course)."""


# ----------------------------------------------------------------------------------------------
# finding submissions without following links


def _is_plain_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def read_regular_file(path: Path) -> Optional[bytes]:
    """The bytes of ``path`` if it is a regular file reached without a symbolic link, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def find_submissions(submissions: Path, assignment: str, names: list[str]) -> list[tuple[str, dict]]:
    """[(student_id, {notebook name: Path or None})], students sorted by id.

    A student's folder holds the notebooks directly or in an ``<assignment>/``
    folder (nbgrader's layout). Links are not followed: a linked folder or
    notebook counts as not submitted.
    """
    if not _is_plain_dir(submissions):
        raise GraderError(f"{submissions} is not a folder")
    students = []
    for entry in sorted(os.listdir(submissions)):
        folder = submissions / entry
        if entry.startswith(".") or not _is_plain_dir(folder):
            continue
        inner = folder / assignment
        base = inner if _is_plain_dir(inner) else folder
        found = {}
        for name in names:
            path = base / f"{name}.ipynb"
            found[name] = path if os.path.lexists(path) else None
        students.append((entry, found))
    return students


# ----------------------------------------------------------------------------------------------
# running jobs, in this process or in worker processes

_SLOT = 0


def _init_worker() -> None:
    global _SLOT
    _SLOT = claim_slot()
    try:
        import torch  # the judge's oracle: load once per worker, one thread (same sums every run)

        torch.set_num_threads(1)
    except ImportError:
        pass


def _job(student_id: str, spec: NotebookSpec, path: Optional[Path], options: Options,
         render: bool) -> dict:
    """Grade one notebook of one student; plain data back (this process never runs student code)."""
    failed = False
    started = time.monotonic()
    try:
        if path is None:
            result = grade_notebook(student_id, spec, None, options, _SLOT)
        else:
            data = read_regular_file(path)
            if data is None:
                result = unsubmitted(student_id, spec, "missing",
                                     f"{spec.name}.ipynb is not a regular file (a link or a folder?); not graded")
            else:
                result = grade_notebook(student_id, spec, data, options, _SLOT)
    except Exception as exc:  # a fault of the grader, not of the student: reported, and the run goes on
        failed = True
        result = unsubmitted(student_id, spec, "error", _grader_failure(exc))
    html = None
    if render:
        from .feedback import render_within

        try:  # rendering counts against the notebook's one budget, with a few seconds for the bare page
            html = render_within(result, max(5.0, options.notebook_timeout - (time.monotonic() - started)))
        except Exception as exc:
            failed = True
            html = None
            result.events.append(_grader_failure(exc))
    return _as_data(result, html, failed)


def _as_data(result: NotebookResult, html: Optional[str], grader_failed: bool) -> dict:
    """What a job hands back to the main process."""
    return {
        "student_id": result.student_id, "notebook": result.notebook,
        "cells": [tuple(c.__dict__.values()) for c in result.cells],
        "events": list(result.events), "html": html, "grader_failed": grader_failed,
    }


def _grader_failure(exc: BaseException) -> str:
    return (f"the grader failed on this notebook ({type(exc).__name__}: {str(exc)[:300]}); "
            "ask your instructor to grade it again")


def run_jobs(jobs: list[tuple], options: Options, workers: int, render: bool, progress: bool,
             on_result: Optional[Callable[[dict], dict]] = None) -> list[dict]:
    """Grade every job; ``on_result`` sees each result as it arrives (and may slim it down)."""
    from tqdm.auto import tqdm

    keep = on_result or (lambda r: r)

    results: list[tuple[int, dict]] = []  # (the job's place in ``jobs``, its result): the order of ``jobs``
    bar = tqdm(total=len(jobs), desc="grading", unit="notebook", disable=not progress, file=sys.stderr)
    try:
        if workers <= 1:
            _init_worker()
            for i, (student_id, spec, path) in enumerate(jobs):
                results.append((i, keep(_job(student_id, spec, path, options, render))))
                bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
                futures = {pool.submit(_job, s, spec, p, options, render): i for i, (s, spec, p) in enumerate(jobs)}
                for future in as_completed(futures):
                    i = futures[future]
                    try:
                        results.append((i, keep(future.result())))
                    except Exception as exc:  # a worker that died: its job is reported, the others go on
                        student_id, spec, _ = jobs[i]
                        lost = unsubmitted(student_id, spec, "error", _grader_failure(exc))
                        results.append((i, keep(_as_data(lost, None, True))))
                    bar.update()
    finally:
        bar.close()
    # by place, not by (student, notebook): ``keep`` may rewrite a student id (one that is not UTF-8)
    return [r for _, r in sorted(results, key=lambda pair: pair[0])]


# ----------------------------------------------------------------------------------------------
# outputs


_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: a spreadsheet reads a cell starting with one of these as a formula
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def encodable(text: str) -> str:
    """``text`` with every lone surrogate written as an escape, so that it can be written as UTF-8.

    A folder name that is not valid UTF-8 reaches Python with its bad bytes as surrogates
    (\\xff becomes U+DCFF): they come back as ``\\xff``; any other lone surrogate as ``\\ud800``.
    """
    def escape(match: re.Match) -> str:
        code = ord(match.group())
        return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"

    return _SURROGATE.sub(escape, text)


def _safe_result(r: dict) -> dict:
    """A job's result with every string encodable (one choke point before anything is written)."""
    def clean(value):
        if isinstance(value, str):
            return encodable(value)
        if isinstance(value, (list, tuple)):
            return type(value)(clean(v) for v in value)
        return value

    return {k: clean(v) for k, v in r.items()}


def spreadsheet_cell(value: str) -> str:
    """A CSV field a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def printable(text: str) -> str:
    """One line for the terminal: control characters (escape sequences, newlines, bidi marks) escaped."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[spreadsheet_cell(v) if isinstance(v, str) else v for v in row] for row in rows])
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _num(x: float) -> str:
    return f"{x:g}"


def write_page(out: Path, r: dict) -> dict:
    """Write a result's feedback page now and return the result without it (so that the main process
    never holds every page of a class at once)."""
    r = _safe_result(r)
    if r["html"] is not None:
        folder = out / "feedback" / r["student_id"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{r['notebook']}.html").write_text(r["html"], encoding="utf-8")
    return {**r, "html": None}


def write_outputs(out: Path, results: list[dict]) -> None:
    """grades.csv, details.csv and the feedback pages still held by ``results``."""
    out.mkdir(parents=True, exist_ok=True)
    grades, details = [], []
    results = [write_page(out, r) for r in results]
    for r in results:
        cells = [CellResult(*c) for c in r["cells"]]
        grades.append([r["student_id"], r["notebook"], _num(sum(c.score for c in cells)),
                       _num(sum(c.max_score for c in cells))])
        details += [[r["student_id"], r["notebook"], c.grade_id, _num(c.score), _num(c.max_score), c.status,
                     c.message] for c in cells]
    _write_csv(out / "grades.csv", GRADES_HEADER, grades)
    _write_csv(out / "details.csv", DETAILS_HEADER, details)


def summary_table(results: list[dict], names: list[str]) -> str:
    """One row per student: the score of each notebook and the total."""
    short = [n.split("_")[0] for n in names]
    rows: dict[str, dict] = {}
    for r in results:
        cells = [CellResult(*c) for c in r["cells"]]
        rows.setdefault(r["student_id"], {})[r["notebook"]] = (sum(c.score for c in cells),
                                                             sum(c.max_score for c in cells))
    rows = {printable(s): v for s, v in rows.items()}
    width = max([len("student")] + [len(s) for s in rows])
    lines = ["  ".join(["student".ljust(width)] + [s.rjust(7) for s in short] + ["total".rjust(9)])]
    for student, scores in rows.items():
        got = sum(v[0] for v in scores.values())
        top = sum(v[1] for v in scores.values())
        cols = [f"{scores[n][0]:g}/{scores[n][1]:g}".rjust(7) if n in scores else "-".rjust(7) for n in names]
        lines.append("  ".join([student.ljust(width)] + cols + [f"{got:g}/{top:g}".rjust(9)]))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# commands


def _options(args: argparse.Namespace) -> Options:
    limits = Limits(memory_bytes=int(args.memory_mb) * 2**20)
    options = Options(notebook_timeout=args.timeout, cell_timeout=args.cell_timeout,
                      probe_timeout=args.probe_timeout, limits=limits, unsafe=args.unsafe_no_sandbox)
    if args.unsafe_no_sandbox:
        print(UNSAFE_WARNING, file=sys.stderr)
    else:
        why = check_available()
        if why is not None:
            raise GraderError(f"no sandbox: {why}. The grader will not run students' code without one; "
                              "to grade anyway, pass --unsafe-no-sandbox (read what it gives up first).")
    return options


def cmd_grade(args: argparse.Namespace) -> int:
    submissions = Path(args.submissions).resolve()
    out = Path(args.out).resolve()
    if out == submissions or submissions in out.parents:
        raise GraderError(f"--out {out} is inside SUBMISSIONS; the grader never writes there")
    specs = assignment_specs(ROOT, args.assignment)
    names = [s.name for s in specs]
    options = _options(args)
    students = find_submissions(submissions, args.assignment, names)
    jobs = [(student, spec, found[spec.name]) for student, found in students for spec in specs]
    out.mkdir(parents=True, exist_ok=True)
    results = run_jobs(jobs, options, args.workers, render=True, progress=not args.quiet,
                       on_result=lambda r: write_page(out, r))
    write_outputs(out, results)
    if args.gradebook:
        write_gradebook(args.gradebook, args.assignment, results)
    print(summary_table(results, names))
    counts: dict[str, int] = {}
    for r in results:
        for c in r["cells"]:
            counts[c[3]] = counts.get(c[3], 0) + 1
    print(f"{len(students)} students, {len(results)} notebooks graded; graded cells: "
          + ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES))
    print(f"results in {out}")
    failures = [printable(f"{r['student_id']}/{r['notebook']}") for r in results if r["grader_failed"]]
    if failures:
        print(f"error: the grader failed on {len(failures)} notebook(s): {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    path = Path(args.notebook)
    specs = {s.name: s for s in assignment_specs(ROOT, args.assignment)}
    if path.stem not in specs:
        raise GraderError(f"{path.name} is not a notebook of {args.assignment}; expected one of "
                          + ", ".join(f"{n}.ipynb" for n in specs))
    data = read_regular_file(path)
    if data is None:
        raise GraderError(f"cannot read {path} (missing, a folder or a link)")
    options = _options(args)
    _init_worker()
    result = grade_notebook("you", specs[path.stem], data, options, _SLOT)
    for cell in result.cells:
        mark = {"passed": "✓", "partial": "◐"}.get(cell.status, "✗")
        print(f"{mark} {cell.grade_id}: {cell.status}, {cell.score:g} / {cell.max_score:g} points")
        if cell.status != "passed":
            print("\n".join("    " + printable(encodable(line)) for line in cell.message.split("\n")))
    for event in result.events:
        print(f"note: {printable(encodable(event))}")
    print(f"total: {result.score:g} / {result.max_score:g}")
    return 0 if all(c.status == "passed" for c in result.cells) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--assignment", default="week1")
        p.add_argument("--timeout", type=float, default=300,
                       help="seconds for all of a notebook's cells (default 300)")
        p.add_argument("--cell-timeout", type=float, default=60, help="seconds for one cell (default 60)")
        p.add_argument("--probe-timeout", type=float, default=30,
                       help="seconds for one exercise on all its hidden inputs (default 30)")
        p.add_argument("--memory-mb", type=int, default=4096, help="address-space limit of a kernel (MiB)")
        p.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="run students' code without bubblewrap (see the warning it prints)")

    grade = sub.add_parser("grade", help="grade a folder of submissions")
    grade.add_argument("submissions")
    grade.add_argument("--out", required=True)
    grade.add_argument("--workers", type=int, default=1)
    grade.add_argument("--gradebook", metavar="DB_URL", nargs="?", const=f"sqlite:///{ROOT / 'gradebook.db'}",
                       help="also record the scores in nbgrader's gradebook (default: the course's gradebook.db)")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    common(grade)
    grade.set_defaults(run=cmd_grade)

    check = sub.add_parser("check", help="self-check one notebook")
    check.add_argument("notebook")
    common(check)
    check.set_defaults(run=cmd_check)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (GraderError, SpecError, GradebookError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
