"""Grade one notebook the hardened way: probe inside the sandbox, judge outside.

1. The submission's bytes are read once (never written, never mounted) and a
   copy goes into a scratch folder, shown read-only in the sandbox's home.
2. Its code cells run in a sandboxed kernel, one by one, each with a time
   limit; test cells run as the release wrote them, whatever the student
   did to them. A cell that cannot be interrupted, or a kernel that dies,
   costs a restart: the cells that ran before are run again, the bad one
   is skipped.
3. For each exercise the kernel evaluates the probe (``autograder.probe``) on
   the hidden cases and hands back plain data as JSON text.
4. This process, which never runs student code, judges that data with the
   hidden checks (``autograder.hidden``) and awards each graded cell the
   share of its points that its groups of cases earn (``framework.score``,
   the same rule as the stock path).
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import nbformat

from course.checks import Comparison

from .hidden import checks_for
from .hidden.framework import MESSAGE_CASES, points_of, score
from .kernel import KernelRun, KernelStartError
from .notebook_spec import NotebookSpec, grade_id_of
from .probe import wire
from .probe.core import Case
from .probe.session import encode_request, read_reply
from .sandbox import Limits, SandboxSpec

ROOT = Path(__file__).resolve().parent.parent
STATUSES = ("passed", "partial", "failed", "error", "timeout", "missing")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")


@dataclass(frozen=True)
class Options:
    cell_timeout: float = 60.0  # one cell of the student's notebook
    notebook_timeout: float = 300.0  # everything for one notebook: its cells, replays after restarts, probes
    probe_timeout: float = 30.0  # one exercise on all its hidden cases
    max_restarts: int = 5
    limits: Limits = field(default_factory=Limits)
    unsafe: bool = False
    root: Path = ROOT  # the course: source/, release/, course/, autograder/probe


@dataclass(frozen=True)
class CellResult:
    grade_id: str
    score: float
    max_score: float
    status: str
    message: str


@dataclass
class NotebookResult:
    student_id: str
    notebook: str
    cells: list
    feedback: Optional[Any] = None  # the notebook (nbformat) to render as feedback, if any
    events: list = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(c.score for c in self.cells)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cells)


def _clean(text: str) -> str:
    """A message that is the same on every run (no memory addresses)."""
    return _ADDRESS.sub("0x…", text)


def unsubmitted(student_id: str, spec: NotebookSpec, status: str, message: str) -> NotebookResult:
    """Every graded cell of a notebook scored zero for one reason (missing, unreadable)."""
    cells = [CellResult(c.grade_id, 0.0, c.points, status, message) for c in spec.graded]
    return NotebookResult(student_id, spec.name, cells)


def read_submission(data: bytes) -> tuple[Optional[Any], str]:
    """(notebook, "") or (None, why it cannot be read)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"the notebook is not UTF-8 text ({exc.reason} at byte {exc.start})"
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # json errors, or JSON that is not a notebook
        return None, f"the notebook is not valid notebook JSON: {_clean(str(exc).splitlines()[0])[:300]}"
    if not isinstance(nb.get("cells"), list):
        return None, "the notebook has no list of cells"
    return nb, ""


def _source_of(cell: Any) -> Optional[str]:
    source = cell.get("source", "") if isinstance(cell, dict) else None
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    return source if isinstance(source, str) else None


def cells_to_run(nb: Any, spec: NotebookSpec) -> list[tuple[int, str]]:
    """(index in the notebook, source) of each code cell to execute, test cells as released."""
    out = []
    for index, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        grade_id = grade_id_of(cell)
        if grade_id in spec.locked:
            source = spec.locked[grade_id]
        else:
            source = _source_of(cell)
        if source is not None and source.strip():
            out.append((index, source))
    return out


class _Session:
    """The student's kernel across restarts: which cells ran, what happened."""

    def __init__(self, kernel: KernelRun, options: Options, deadline: Optional[float] = None):
        self.kernel = kernel
        self.options = options
        #: when the notebook's one budget (--timeout) runs out: cells, replays and probes all count
        self.deadline = deadline if deadline is not None else time.monotonic() + options.notebook_timeout
        self.good: list[str] = []  # sources that ran to the end (fine or with an error)
        self.restarts = 0
        self.events: list[str] = []
        self.alive = True  # False once the kernel could not be restarted

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def out_of_time(self) -> str:
        return f"the notebook's time limit ({self.options.notebook_timeout:g} s) was used up"

    def lost(self, exc: Exception) -> None:
        self.alive = False
        self.events.append(f"the kernel could not be restarted ({exc}); nothing more was run")

    def replay(self) -> bool:
        """After a restart, run the good cells again (without keeping their output).

        False (and the session is over) after too many restarts or when a replayed
        cell does not finish."""
        self.restarts += 1
        if self.restarts > self.options.max_restarts:
            self.alive = False
            self.events.append("too many restarts: nothing more was run")
            return False
        for source in self.good:
            remaining = self.remaining()
            if remaining <= 1:
                self.alive = False
                self.events.append(f"{self.out_of_time()} while the cells were run again after a restart: "
                                   "nothing more was run")
                return False
            result = self.kernel.run(source, min(self.options.cell_timeout, remaining))
            if result.status in ("timeout", "died"):
                self.alive = False
                self.events.append("a cell that had run before did not finish when run again: nothing more was run")
                return False
        self.kernel.restarted_since_last_check()
        return True


def run_student_cells(session: _Session, cells: list[tuple[int, str]]) -> dict:
    """Execute the student's cells; return {notebook index: CellRun}."""
    runs = {}
    opts = session.options
    for position, (index, source) in enumerate(cells):
        if not session.alive:
            break
        remaining = session.remaining()
        if remaining <= 1:
            session.events.append(
                f"the notebook ran over its time limit ({opts.notebook_timeout:g} s): "
                f"{len(cells) - position} cell(s) were not run")
            break
        try:
            result = session.kernel.run(source, min(opts.cell_timeout, remaining))
        except KernelStartError as exc:
            session.lost(exc)
            break
        runs[index] = result
        if result.status in ("ok", "error"):
            session.good.append(source)
            continue
        label = f"cell {index + 1}"
        if result.status == "timeout":
            limit = (f"its time limit ({opts.cell_timeout:g} s)" if opts.cell_timeout < remaining
                     else f"the notebook's time limit ({opts.notebook_timeout:g} s)")  # same words every run
            session.events.append(f"{label} ran over {limit} and was stopped")
        else:
            session.events.append(f"the kernel died in {label} (killed: out of memory, a crash or an exit); "
                                  "it was restarted and the cells before it were run again")
        if session.kernel.restarted_since_last_check():
            try:
                if not session.replay():
                    break
            except KernelStartError as exc:
                session.lost(exc)
                break
    return runs


def probe_request(check: Any, object_name: str, cases: list[Case]) -> str:
    request = {"object": object_name, "probe": check.probe, "cases": [wire.case_to_plain(c) for c in cases]}
    return f'__import__("autograder_probe.session").session.probe_reply(globals(), "{encode_request(request)}")'


def judge_exercise(check: Any, cases: list[Case], object_name: str, status: str,
                   text: str) -> tuple[str, float, list[str]]:
    """(status, fraction of the points, message lines) of one exercise from what the kernel sent back."""
    name = check.exercise
    if status == "budget":
        return "timeout", 0.0, [f"✗ {object_name} was not checked: the notebook's time limit was used up before "
                                "this exercise (see the notes)"]
    if status == "timeout":
        return "timeout", 0.0, [f"✗ {object_name} gave no answer within the time limit on the hidden inputs "
                                "(an infinite loop, far too slow, or an answer too large to read) and was stopped"]
    if status == "died":
        return "error", 0.0, [f"✗ the kernel died while running {object_name} on the hidden inputs "
                              "(killed: out of memory, a crash or an exit)"]
    if status == "error":
        return "error", 0.0, [f"✗ {object_name} could not be run on the hidden inputs: {_clean(text)[:300]}"]
    try:
        reply = read_reply(text)
    except wire.WireError as exc:
        return "error", 0.0, [f"✗ the result for {object_name} came back malformed ({exc}); "
                              "did the notebook change how Python or IPython works?"]
    if not reply["found"]:
        return "missing", 0.0, [f"✗ {object_name} is not defined when the notebook has run "
                                "(was its cell run without errors? was it renamed?)"]
    outcomes = reply["outcomes"]
    if len(outcomes) != len(cases):
        return "error", 0.0, [f"✗ the result for {object_name} came back malformed "
                              f"({len(outcomes)} answers for {len(cases)} inputs)"]
    not_implemented = [f"✗ {name}: not implemented yet ({object_name} raises NotImplementedError)"]
    if outcomes and all(o.kind == "raised" and o.error == "NotImplementedError" for o in outcomes):
        return "error", 0.0, not_implemented
    results = []
    for case, outcome in zip(cases, outcomes):
        try:
            result = check.judge(case, outcome)
            ok, message = result.ok is True, _clean(str(result.message))
        except Exception as exc:  # a malformed value the check did not foresee
            ok, message = False, f"✗ {name} [{case.label}]: the result is malformed ({type(exc).__name__})"
        results.append(Comparison(name, ok, message))
    verdict = score(check, cases, results)
    if verdict.passed:
        return "passed", 1.0, verdict.lines(MESSAGE_CASES)
    failed = [o for o, r in zip(outcomes, results) if not r.ok]
    if len(failed) == len(cases) and all("not implemented yet" in r.message for r in results):
        return "error", 0.0, not_implemented
    if verdict.fraction > 0:
        return "partial", verdict.fraction, verdict.lines(MESSAGE_CASES)
    return ("error" if all(o.kind == "raised" for o in failed) else "failed"), 0.0, verdict.lines(MESSAGE_CASES)


_WORST = {"passed": 0, "partial": 1, "failed": 2, "error": 3, "missing": 4, "timeout": 5}


def grade_cells(session: _Session, spec: NotebookSpec, notes: list[str]) -> list[CellResult]:
    checks = checks_for(spec.name)
    results = []
    for cell in spec.graded:
        statuses, fractions, lines = [], [], []
        for exercise, object_name in cell.exercises:
            check = checks[exercise]
            cases = check.cases()
            if not session.alive:
                status, text = "error", "the notebook's kernel was lost before this exercise"
            elif session.remaining() <= 1:
                status, text = "budget", ""
                note = f"{session.out_of_time()}: the exercises from {exercise} on were not checked"
                if not any(e.startswith(session.out_of_time() + ": the exercises") for e in session.events):
                    session.events.append(note)
            else:
                try:
                    status, text = session.kernel.evaluate(probe_request(check, object_name, cases),
                                                           min(session.options.probe_timeout, session.remaining()))
                    if session.kernel.restarted_since_last_check():
                        session.replay()
                except KernelStartError as exc:
                    status, text = "died", ""
                    session.lost(exc)
            verdict, fraction, message = judge_exercise(check, cases, object_name, status, text)
            statuses.append(verdict)
            fractions.append(fraction)
            lines += message
        status = max(statuses, key=_WORST.__getitem__)
        if status != "passed":
            lines += [f"note: {n}" for n in notes]
        earned = points_of(sum(fractions) / len(fractions), cell.points)
        results.append(CellResult(cell.grade_id, earned, cell.points, status, "\n".join(lines)))
    return results


def grade_notebook(student_id: str, spec: NotebookSpec, data: Optional[bytes], options: Options,
                   slot: int = 0) -> NotebookResult:
    """Grade one submitted notebook (``data`` is its bytes, None when it was not handed in)."""
    if data is None:
        return unsubmitted(student_id, spec, "missing", f"{spec.name}.ipynb was not submitted")
    nb, why = read_submission(data)
    if nb is None:
        return unsubmitted(student_id, spec, "error", why)
    started = time.monotonic()
    cells = cells_to_run(nb, spec)
    work = Path(tempfile.mkdtemp(prefix="grade-"))
    try:
        sandbox = SandboxSpec(
            scratch=work / "home", runtime=work / "run",
            course_package=options.root / "course", probe_package=options.root / "autograder" / "probe",
            limits=options.limits, slot=slot, unsafe=options.unsafe,
        )
        sandbox.scratch.mkdir(parents=True)
        (sandbox.scratch / f"{spec.name}.ipynb").write_bytes(data)
        _seed_matplotlib_cache(sandbox.scratch)
        sandbox.prepare()
        kernel = KernelRun(sandbox)
        try:
            kernel.start()
        except Exception as exc:
            kernel.stop()
            result = unsubmitted(student_id, spec, "error", f"the notebook's kernel could not be started: {exc}")
            return result
        session = _Session(kernel, options, started + options.notebook_timeout)
        try:
            runs = run_student_cells(session, cells)
            feedback = feedback_notebook(nb, runs)  # before any probe: nothing hidden can reach it
            results = grade_cells(session, spec, session.events)
        finally:
            kernel.stop()
        return NotebookResult(student_id, spec.name, results, feedback, list(session.events))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def feedback_notebook(nb: Any, runs: dict) -> Any:
    """The student's notebook with the outputs of this run (cells not run have none).

    Memory addresses in text outputs are masked, so that the same code gives the
    same page on every run.
    """
    out = copy.deepcopy(nb)
    for index, cell in enumerate(out.cells):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            run = runs.get(index)
            cell["outputs"] = [_stable_output(o) for o in merged_streams(run.outputs)] if run is not None else []
            cell["execution_count"] = None
    return out


def merged_streams(outputs: list) -> list:
    """Consecutive stream outputs of one stream as one output, as a notebook shows them (how the kernel
    cut them into messages depends on timing). A carriage return keeps what follows it on its line.
    Linear in the text's length: nbclient's own merging is quadratic in a line's length."""
    merged: list = []
    for output in outputs:
        if (merged and output.get("output_type") == "stream" and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == output.get("name") and isinstance(output.get("text"), str)
                and isinstance(merged[-1].get("text"), str)):
            merged[-1]["text"] += output["text"]
        else:
            merged.append(copy.copy(output))
    for output in merged:
        if output.get("output_type") == "stream" and isinstance(output.get("text"), str) and "\r" in output["text"]:
            output["text"] = "\n".join(_after_carriage_return(line) for line in output["text"].split("\n"))
    return merged


def _after_carriage_return(line: str) -> str:
    head, _, tail = line.rpartition("\r")
    return tail if tail else _after_carriage_return(head) if "\r" in head else head


def _stable_output(output: Any) -> Any:
    if "text" in output and isinstance(output["text"], str):
        output["text"] = _clean(output["text"])
    data = output.get("data")
    if isinstance(data, dict) and isinstance(data.get("text/plain"), str):
        data["text/plain"] = _clean(data["text/plain"])
    if isinstance(output.get("evalue"), str):
        output["evalue"] = _clean(output["evalue"])
    if isinstance(output.get("traceback"), list):
        output["traceback"] = [_clean(line) if isinstance(line, str) else line for line in output["traceback"]]
    return output


def _seed_matplotlib_cache(home: Path) -> None:
    """Copy matplotlib's font cache into the sandbox's home, so a plot does not rebuild it."""
    configured = os.environ.get("MPLCONFIGDIR")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    source = Path(configured) if configured else Path(cache) / "matplotlib"
    target = home / ".config" / "matplotlib"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("fontlist-*.json"):
        shutil.copy(path, target / path.name)
