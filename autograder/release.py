"""Generate the student release from the instructor notebooks.

``python -m autograder.release`` (what ``make release`` runs):

1. ``nbgrader generate_assignment week1 --force``: source/week1 -> release/week1
   (solutions replaced by named stubs, hidden tests removed, outputs cleared);
2. bundle a copy of the ``course`` package into release/week1/course, and a
   requirements.txt, so that a student who downloads only that folder can run
   every notebook;
3. make the notebooks ready for Colab (``autograder.colab``, settings in
   ``colab.ini``): a setup cell, an "Open in Colab" link, and a pyproject.toml
   that lets pip install ``course`` alone from the release folder.

Everything under release/ is generated: never edit it by hand.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from .colab import add_colab_cells, package_pyproject, read_settings

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "week1"
BUNDLE_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
DISTRIBUTION = "dl-foundations-course"
#: Needed to grade, not to work through the notebooks.
GRADER_ONLY = {"nbgrader", "nbclient", "nbformat", "bleach", "tinycss2", "beautifulsoup4"}
#: Requirements a student's own environment may satisfy with any recent version: Colab's torch
#: must stay as it is (and elsewhere pip picks the build that suits the machine).
UNPINNED = {"torch": "torch>=2.0"}


class ReleaseError(RuntimeError):
    """nbgrader could not generate the release."""


def student_requirements() -> list[str]:
    """The project's runtime requirements a student needs, in pyproject.toml's order."""
    reqs = []
    for req in metadata.requires(DISTRIBUTION) or []:
        if "extra ==" in req:
            continue
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        if name.lower() not in GRADER_ONLY:
            reqs.append(UNPINNED.get(name.lower(), req))
    return reqs


def bundle_course(root: Path, assignment: str = ASSIGNMENT) -> Path:
    """Copy ``root/course`` into ``root/release/<assignment>/course``, replacing any old copy."""
    target = root / "release" / assignment / "course"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(root / "course", target, ignore=BUNDLE_IGNORE)
    return target


def write_requirements(root: Path, assignment: str = ASSIGNMENT) -> Path:
    """Write ``root/release/<assignment>/requirements.txt``: what a student must install."""
    target = root / "release" / assignment / "requirements.txt"
    target.write_text(
        "# What the notebooks of this folder need (generated from pyproject.toml).\n"
        + "".join(f"{req}\n" for req in student_requirements())
    )
    return target


def nbgrader_command(*args: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment to run nbgrader with this interpreter.

    nbgrader runs helper programs (alembic) by name, so this interpreter's
    scripts folder goes first on PATH even when the venv is not activated.
    """
    scripts = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=scripts + os.pathsep + os.environ.get("PATH", ""))
    return [sys.executable, "-m", "nbgrader", *args], env


def generate_release(root: Path = ROOT, assignment: str = ASSIGNMENT) -> Path:
    """Regenerate ``root/release/<assignment>`` from ``root/source/<assignment>``.

    ``root`` must be a course directory holding nbgrader_config.py, source/ and course/.
    Returns the release folder.
    """
    root = Path(root).resolve()
    cmd, env = nbgrader_command("generate_assignment", assignment, "--force", "--log-level=WARN")
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ReleaseError(
            f"nbgrader generate_assignment {assignment} failed (exit {proc.returncode}) in {root}:\n"
            f"{proc.stdout}{proc.stderr}"
        )
    bundle_course(root, assignment)
    write_requirements(root, assignment)
    release = root / "release" / assignment
    settings = read_settings(root)
    for notebook in sorted(release.glob("*.ipynb")):
        add_colab_cells(notebook, settings, assignment)
    (release / "pyproject.toml").write_text(package_pyproject(metadata.version(DISTRIBUTION)))
    return release


#: What a release is generated from (relative to the course root).
RELEASE_INPUTS = ("nbgrader_config.py", "colab.ini", "source", "course")


def tree_differences(expected: Path, actual: Path) -> list[str]:
    """Relative paths that are missing, extra or different between two folders."""
    def files(folder: Path) -> set[str]:
        return {
            str(p.relative_to(folder))
            for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        } if folder.is_dir() else set()

    want, have = files(expected), files(actual)
    diffs = [f"missing: {p}" for p in sorted(want - have)]
    diffs += [f"extra: {p}" for p in sorted(have - want)]
    diffs += [
        f"differs: {p}"
        for p in sorted(want & have)
        if not filecmp.cmp(expected / p, actual / p, shallow=False)
    ]
    return diffs


def stale_files(root: Path = ROOT, assignment: str = ASSIGNMENT) -> list[str]:
    """Regenerate the release in a scratch copy of the course and list what differs
    from the committed ``root/release/<assignment>`` (empty when it is fresh)."""
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="release-check-") as tmp:
        scratch = Path(tmp)
        for name in RELEASE_INPUTS:
            src = root / name
            if src.is_dir():
                shutil.copytree(src, scratch / name, ignore=BUNDLE_IGNORE)
            else:
                shutil.copy2(src, scratch / name)
        fresh = generate_release(scratch, assignment)
        return tree_differences(fresh, root / "release" / assignment)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="course directory (default: this repository)")
    parser.add_argument("--assignment", default=ASSIGNMENT)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only report whether release/ is stale (exit 1 if so)")
    mode.add_argument("--if-stale", action="store_true", help="regenerate only when release/ is stale")
    args = parser.parse_args(argv)
    try:
        if args.check or args.if_stale:
            stale = stale_files(args.root, args.assignment)
            if not stale:
                print(f"release/{args.assignment} is up to date")
                return 0
            print(f"release/{args.assignment} is stale:\n  " + "\n  ".join(stale))
            if args.check:
                return 1
        out = generate_release(args.root, args.assignment)
    except ReleaseError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"release written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
