"""The student release is generated, fresh, and gives nothing away."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from autograder.release import stale_files
from notebooks import RELEASE, ROOT, SOURCE, exercise_names, is_solution, source_notebooks

SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.DOTALL)
HIDDEN_REGION = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.DOTALL)


def test_release_is_fresh():
    stale = stale_files(ROOT)
    assert not stale, "release/ is stale; run `make release` and commit:\n" + "\n".join(stale)


def _solution_lines(nb) -> set[str]:
    """Distinctive lines of the solutions: long enough to mean something, and found
    nowhere else in the source notebook."""
    inside = set()
    for cell in nb.cells:
        for region in SOLUTION_REGION.findall(cell.source):
            inside |= {line.strip() for line in region.splitlines() if len(line.strip()) >= 12}
    outside = set()
    for cell in nb.cells:
        rest = SOLUTION_REGION.sub("", cell.source)
        outside |= {line.strip() for line in rest.splitlines()}
    return inside - outside


@pytest.mark.parametrize("source", source_notebooks(), ids=lambda p: p.stem)
def test_release_contains_no_solution_or_hidden_check(source):
    src = nbformat.read(source, as_version=4)
    released_path = RELEASE / source.name
    text = released_path.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "run_hidden", "autograder"):
        assert marker not in text, f"{released_path.name} contains {marker!r}"
    leaked = sorted(line for line in _solution_lines(src) if line in text)
    assert not leaked, f"{released_path.name} contains solution lines: {leaked}"


@pytest.mark.parametrize("source", source_notebooks(), ids=lambda p: p.stem)
def test_every_stub_names_its_exercise(source):
    released = nbformat.read(RELEASE / source.name, as_version=4)
    stubs = re.findall(r'raise NotImplementedError\("([A-Za-z_][\w.]*): ', "\n".join(
        c.source for c in released.cells if is_solution(c)))
    src = nbformat.read(source, as_version=4)
    regions = sum(len(SOLUTION_REGION.findall(c.source)) for c in src.cells)
    assert len(stubs) == regions, f"{source.name}: {regions} solution regions but {len(stubs)} named stubs"
    assert {stub.split(".")[0] for stub in stubs} <= exercise_names(src)  # Linear.forward: a method of Linear


def test_course_bundle_matches_course_package():
    bundled = {p.relative_to(RELEASE / "course") for p in (RELEASE / "course").rglob("*.py")}
    package = {p.relative_to(ROOT / "course") for p in (ROOT / "course").rglob("*.py")}
    assert bundled == package
    for rel in package:
        assert (RELEASE / "course" / rel).read_bytes() == (ROOT / "course" / rel).read_bytes(), rel


def test_release_requirements_list_the_student_packages():
    reqs = (RELEASE / "requirements.txt").read_text()
    for name in ("numpy", "torch", "matplotlib", "ipywidgets", "tqdm", "jupyterlab"):
        assert re.search(rf"^{name}\b", reqs, re.MULTILINE), f"requirements.txt lacks {name}"
    assert "nbgrader" not in reqs


def test_source_holds_only_notebooks_and_data():
    """Nothing generated or private lands in source/ (it is copied into the release)."""
    unexpected = [p.name for p in SOURCE.iterdir() if p.suffix not in {".ipynb", ".csv", ".npz", ".md"}]
    assert not unexpected, f"unexpected files in {SOURCE}: {unexpected}"


def test_release_folder_works_on_its_own(tmp_path):
    """A student who downloads only release/week1 imports the bundled course package."""
    folder = tmp_path / "week1"
    shutil.copytree(RELEASE, folder)
    code = ("import course, course.checks, course.gradcheck, course.data, course.plots, course.widgets; "
            "print(course.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(folder / "course" / "__init__.py"), out.stdout
