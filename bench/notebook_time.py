"""Execution time of each notebook, as a student would run it (kernel start included).

Usage: python bench/notebook_time.py [source|release] [--repeat 3]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.kernel_client import notebook_client  # noqa: E402


def run_once(path: Path, allow_errors: bool) -> float:
    nb = nbformat.read(path, as_version=4)
    client = notebook_client(
        nb, timeout=600, kernel_name="python3", allow_errors=allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("version", nargs="?", default="source", choices=["source", "release"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = ROOT / args.version / "week1"
    for path in sorted(folder.glob("*.ipynb")):
        times = [run_once(path, allow_errors=args.version == "release") for _ in range(args.repeat)]
        print(f"{args.version}/week1/{path.name}: median {statistics.median(times):.2f} s, "
              f"best {min(times):.2f} s over {args.repeat} runs")


if __name__ == "__main__":
    main()
