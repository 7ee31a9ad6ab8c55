"""Speed of the hardened grader.

Usage:
    python bench/grading.py overhead [--repeat 3]
        For each source notebook: plain nbclient execution (kernel start included) against
        grading the same notebook the hardened way (sandboxed kernel, probes, judging, feedback
        page), in one process where the judge's imports are already loaded, as in a grading
        worker. Prints both medians and their ratio (target: at most 1.5).

    python bench/grading.py parallel [--students 30]
        Grades a class of STUDENTS submissions (every notebook of the assignment; a third hand
        in the solutions, a third the release, a third solutions with two mistakes) with
        --workers 1 and with --workers 2, checks that both give the same results, and prints
        the times and the speed-up (target: at least 1.6).
"""
from __future__ import annotations

import argparse
import filecmp
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.kernel_client import notebook_client  # noqa: E402
SOURCE = ROOT / "source" / "week1"
RELEASE = ROOT / "release" / "week1"


def plain_run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = notebook_client(nb, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def overhead(repeat: int) -> None:
    from autograder import cli
    from autograder.feedback import render_html
    from autograder.hardened import Options, grade_notebook
    from autograder.notebook_spec import assignment_specs

    cli._init_worker()  # what a grading worker loads once: torch for the judge, a sandbox slot
    specs = {s.name: s for s in assignment_specs(ROOT, "week1")}
    options = Options()
    print(f"{'notebook':28} {'nbclient':>9} {'hardened':>9} {'ratio':>6}")
    for path in sorted(SOURCE.glob("*.ipynb")):
        data = path.read_bytes()
        plain, hard = [], []
        for _ in range(repeat):
            plain.append(plain_run(path))
            start = time.perf_counter()
            result = grade_notebook("bench", specs[path.stem], data, options, cli._SLOT)
            render_html(result)
            hard.append(time.perf_counter() - start)
            assert result.score == result.max_score, [c for c in result.cells if c.status != "passed"]
        p, h = statistics.median(plain), statistics.median(hard)
        print(f"{path.stem:28} {p:8.2f}s {h:8.2f}s {h / p:6.2f}")


def make_class(folder: Path, students: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_nbgrader_roundtrip import CAROL_NOTEBOOK, write_carol

    for i in range(students):
        student = folder / f"student{i:02d}"
        kind = i % 3
        if kind == 0:
            shutil.copytree(SOURCE, student)
        elif kind == 1:
            shutil.copytree(RELEASE, student, ignore=shutil.ignore_patterns("course", "*.txt"))
        else:
            shutil.copytree(SOURCE, student)
            (student / CAROL_NOTEBOOK).unlink()
            carol = folder / f"_carol{i}"
            write_carol(carol)
            shutil.move(carol / CAROL_NOTEBOOK, student / CAROL_NOTEBOOK)
            carol.rmdir()


def parallel(students: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        make_class(base / "submissions", students)
        times = {}
        for workers in (1, 2):
            out = base / f"out{workers}"
            cmd = [sys.executable, "-m", "autograder", "grade", str(base / "submissions"), "--out", str(out),
                   "--workers", str(workers), "--quiet"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            times[workers] = time.perf_counter() - start
            if proc.returncode != 0:
                sys.exit(f"grading failed:\n{proc.stdout}\n{proc.stderr}")
            print(f"--workers {workers}: {times[workers]:.1f} s")
        same = all(filecmp.cmp(base / "out1" / n, base / "out2" / n, shallow=False)
                   for n in ("grades.csv", "details.csv"))
        print(f"{students} submissions x {len(list(SOURCE.glob('*.ipynb')))} notebooks: "
              f"speed-up {times[1] / times[2]:.2f}x; grades.csv and details.csv identical: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("overhead").add_argument("--repeat", type=int, default=3)
    sub.add_parser("parallel").add_argument("--students", type=int, default=30)
    args = parser.parse_args()
    if args.what == "overhead":
        overhead(args.repeat)
    else:
        parallel(args.students)


if __name__ == "__main__":
    main()
