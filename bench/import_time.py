"""How long `import course` takes in a fresh interpreter (target: under 0.3 s).

Usage: python bench/import_time.py [--repeat 7]
Prints the median and the best of several cold starts, and the heavy packages loaded (none expected).
"""
import argparse
import json
import statistics
import subprocess
import sys

CODE = (
    "import json, time, sys; t = time.perf_counter(); import course; dt = time.perf_counter() - t; "
    "print(json.dumps([dt, [m for m in ('torch', 'matplotlib', 'ipywidgets') if m in sys.modules]]))"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    times, heavy = [], set()
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout
        seconds, loaded = json.loads(out)
        times.append(seconds)
        heavy |= set(loaded)
    print(f"import course: median {statistics.median(times):.3f} s, best {min(times):.3f} s over {args.repeat} runs")
    print(f"heavy packages loaded: {sorted(heavy) or 'none'}")
    if statistics.median(times) > 0.3 or heavy:
        sys.exit("over budget: `import course` must take under 0.3 s and load no heavy package")


if __name__ == "__main__":
    main()
