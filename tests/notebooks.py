"""Helpers for tests that read and run the course's notebooks."""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.kernel_client import notebook_client

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "week1"
SOURCE = ROOT / "source" / ASSIGNMENT
RELEASE = ROOT / "release" / ASSIGNMENT

_DEFINITION = re.compile(r"^\s*(?:def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)


def source_notebooks() -> list[Path]:
    return sorted(SOURCE.glob("*.ipynb"))


def release_notebooks() -> list[Path]:
    return sorted(RELEASE.glob("*.ipynb"))


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_graded(cell) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def exercise_names(nb) -> set[str]:
    """Functions and classes defined in a notebook's solution cells."""
    return {name for cell in nb.cells if is_solution(cell) for name in _DEFINITION.findall(cell.source)}


@dataclass
class CellRun:
    index: int
    cell: dict
    errors: list[dict]
    stderr: str


def execute(path: Path, *, allow_errors: bool, timeout: int = 120) -> list[CellRun]:
    """Run a notebook top to bottom in its own folder; report errors and stderr per code cell."""
    nb = nbformat.read(path, as_version=4)
    client = notebook_client(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    runs = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        stderr = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")
        runs.append(CellRun(i, cell, errors, stderr))
    return runs


def describe(run: CellRun) -> str:
    first_line = run.cell.source.strip().splitlines()[0] if run.cell.source.strip() else ""
    errs = "; ".join(f"{e.ename}: {e.evalue}" for e in run.errors)
    return f"cell {run.index} ({first_line!r}): {errs or ''}{' stderr: ' + run.stderr if run.stderr else ''}"


def run_nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` in a scratch course folder (no user-level nbgrader config); fails the test on error."""
    from autograder.release import nbgrader_command

    cmd, env = nbgrader_command(*args)
    env["JUPYTER_CONFIG_DIR"] = str(course / ".jupyter-config")
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc
