"""What one hostile notebook can cost the hardened grader: its peak memory and its wall time.

Usage:
    python bench/worst_case.py [--timeout 60] [--cell-timeout 15] [--only pager,commer]

Grades each attack of the issue "one student must never stop, stall or starve a class" alone
(one worker, at the full size the issue measured), next to an honest notebook, and prints for each:
the wall time of the whole run (start-up included), the peak resident memory of the grader's own
processes (the main process and its worker; the sandboxed kernel, whose memory --memory-mb bounds,
is not counted), and the statuses the notebook got. The last lines give the worst figures: peak
grader memory per notebook, and the wall time beyond --timeout.
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import adversarial  # noqa: E402  (tests/adversarial.py: the builders of the attack submissions)


def _honest(folder: Path) -> None:
    adversarial.write(adversarial.honest(), folder)


def _replayer(cell_timeout: float) -> Callable[[Path], None]:
    return lambda folder: adversarial.build_replayer(folder, sleep=cell_timeout - 1, cells=6, kills=5)


def _long_line(folder: Path) -> None:
    nb = adversarial.honest()
    adversarial.after(nb, "sse_mse", 'print("x" * 1_990_000)')
    adversarial.write(nb, folder)


def attacks(cell_timeout: float) -> dict[str, Callable[[Path], None]]:
    """name -> builder of one submission folder, at the sizes the issue measured."""
    return {
        "honest": _honest,
        "surrogate": adversarial.build_surrogate,
        "pager": adversarial.build_pager,
        "long-line": _long_line,
        "widener": lambda f: adversarial.build_widener(f, cells=300),
        "commer": lambda f: adversarial.build_commer(f, messages=300),
        "replayer": _replayer(cell_timeout),
    }


def grader_rss(root: psutil.Process) -> tuple[int, int, str]:
    """(largest single process, all together, what the largest is) resident bytes of the grader's processes:
    ``root`` and its descendants, without the sandboxes (bwrap and whatever runs inside it)."""
    sizes, todo = [], [root]
    while todo:
        proc = todo.pop()
        try:
            if proc.name() == "bwrap":
                continue
            sizes.append((proc.memory_info().rss, " ".join(proc.cmdline())[:120]))
            todo.extend(proc.children())
        except psutil.Error:
            continue
    if not sizes:
        return 0, 0, ""
    largest = max(sizes)
    return largest[0], sum(size for size, _ in sizes), largest[1]


class Sampled:
    """A finished command with its wall time and the peak memory of its processes (see grader_rss)."""

    def __init__(self, returncode: int, output: str, wall: float, process: int, total: int, largest: str):
        self.returncode, self.output, self.wall, self.process, self.total = returncode, output, wall, process, total
        self.largest = largest  # the command line of the process that held ``process`` bytes


def run_sampled(cmd: list[str], every: float = 0.02) -> Sampled:
    """Run ``cmd`` from the repository, sampling grader_rss every ``every`` seconds until it ends."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak: list = [0, 0, ""]
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            one, total, what = grader_rss(root)
            if one > peak[0]:
                peak[0], peak[2] = one, what
            peak[1] = max(peak[1], total)
            time.sleep(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    wall = time.monotonic() - start
    done.set()
    sampler.join()
    return Sampled(proc.returncode, output, wall, *peak)


def grade_alone(build: Callable[[Path], None], args: argparse.Namespace) -> dict:
    """Grade one submission alone; wall time, peak grader memory, feedback size and the statuses it got."""
    with tempfile.TemporaryDirectory() as tmp:
        submissions, out = Path(tmp) / "submissions", Path(tmp) / "out"
        build(submissions / "student")
        run = run_sampled([sys.executable, "-m", "autograder", "grade", str(submissions), "--out", str(out),
                           "--workers", "1", "--timeout", str(args.timeout), "--cell-timeout", str(args.cell_timeout),
                           "--quiet"])
        if run.returncode != 0:
            raise SystemExit(f"the grader failed (exit {run.returncode}):\n{run.output}")
        with open(out / "details.csv", newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["notebook"] == adversarial.NB]
        page = sum(p.stat().st_size for p in (out / "feedback").rglob(f"{adversarial.NB}.html"))
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {"wall": run.wall, "process": run.process, "total": run.total, "statuses": statuses, "page": page}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="the grader's --timeout (seconds per notebook)")
    parser.add_argument("--cell-timeout", type=float, default=15.0)
    parser.add_argument("--only", default="", help="comma-separated attack names")
    args = parser.parse_args()
    table = attacks(args.cell_timeout)
    names = [n for n in args.only.split(",") if n] or list(table)
    mib = 2 ** 20
    print(f"--timeout {args.timeout:g} --cell-timeout {args.cell_timeout:g}, one worker, one notebook at a time")
    print(f"{'attack':12} {'wall s':>7} {'largest MiB':>12} {'grader MiB':>11} {'page MiB':>9}  statuses")
    worst = {"process": 0, "total": 0, "over": 0.0}
    for name in names:
        r = grade_alone(table[name], args)
        print(f"{name:12} {r['wall']:7.1f} {r['process'] / mib:12.0f} {r['total'] / mib:11.0f} {r['page'] / mib:9.1f}  "
              + ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items())), flush=True)
        worst["process"] = max(worst["process"], r["process"])
        worst["total"] = max(worst["total"], r["total"])
        worst["over"] = max(worst["over"], r["wall"] - args.timeout)
    print(f"peak grader memory per notebook: {worst['process'] / mib:.0f} MiB in one process, "
          f"{worst['total'] / mib:.0f} MiB for the grader's processes together")
    print(f"worst wall time: --timeout + {max(worst['over'], 0):.1f} s (start-up of the grader included)")


if __name__ == "__main__":
    main()
