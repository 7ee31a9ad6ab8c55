"""The release works in Colab: a generated setup cell, an "Open in Colab" link when configured,
and a `course` package pip can install alone. Colab itself is simulated: a Python where a
stand-in `google.colab` is importable runs the setup cell against a wheel built here."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.colab import LINK_TAG, SETUP_TAG, ColabSettings, add_colab_cells, read_settings, setup_cell_source
from notebooks import ASSIGNMENT, RELEASE, ROOT, release_notebooks

PACKAGE = "dl-foundations-course-notebooks"


def _first_code_cell(path: Path):
    return next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def test_every_release_notebook_starts_with_the_same_generated_setup_cell():
    expected = setup_cell_source(read_settings(ROOT).package_source(ASSIGNMENT))
    for path in release_notebooks():
        cell = _first_code_cell(path)
        assert cell.source == expected, path.name
        assert SETUP_TAG in cell.metadata.get("tags", []), path.name


def test_links_follow_the_configuration(tmp_path):
    configured = read_settings(ROOT)
    for path in release_notebooks():
        text = path.read_text(encoding="utf-8")
        assert ("colab.research.google.com/github/" in text) == bool(configured.github), path.name
    # with a repository set: the first cell is the link, to this notebook at the configured ref
    path = tmp_path / "01_tensors_and_shapes.ipynb"
    path.write_bytes((RELEASE / path.name).read_bytes())
    settings = ColabSettings(github="my-school/dl-week1", ref="v1.0")
    add_colab_cells(path, settings, ASSIGNMENT)
    add_colab_cells(path, settings, ASSIGNMENT)  # regenerating does not add a second copy
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0].cell_type == "markdown" and LINK_TAG in cells[0].metadata["tags"]
    assert ("https://colab.research.google.com/github/my-school/dl-week1/blob/v1.0/release/week1/"
            "01_tensors_and_shapes.ipynb") in cells[0].source
    assert sum(SETUP_TAG in c.metadata.get("tags", []) for c in cells) == 1
    assert "git+https://github.com/my-school/dl-week1@v1.0#subdirectory=release/week1" in _first_code_cell(path).source


def test_requirements_do_not_pin_torch():
    reqs = (RELEASE / "requirements.txt").read_text()
    torch_line = next(line for line in reqs.splitlines() if re.match(r"torch\b", line))
    assert "==" not in torch_line, torch_line


def test_colab_ini_is_refused_when_malformed(tmp_path):
    (tmp_path / "colab.ini").write_text("[colab]\ngithub = not-a-repository-name\n")
    with pytest.raises(ValueError, match="owner/name"):
        read_settings(tmp_path)


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A fresh Python environment (pip only) and a wheel of the release's course package."""
    base = tmp_path_factory.mktemp("colab")
    source = base / "release"  # a copy: building writes build/ and *.egg-info next to pyproject.toml
    shutil.copytree(RELEASE, source, ignore=shutil.ignore_patterns("*.ipynb"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    str(source), "-w", str(base / "wheels")], check=True, capture_output=True, text=True)
    wheel = next((base / "wheels").glob("*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(base / "env")], check=True)
    stand_in = base / "stand-in" / "google" / "colab"
    stand_in.mkdir(parents=True)
    (stand_in.parent / "__init__.py").write_text("")
    (stand_in / "__init__.py").write_text("")
    (stand_in / "output.py").write_text(
        "import pathlib\n"
        "def enable_custom_widget_manager():\n"
        f"    pathlib.Path({str(base / 'widget-manager-on')!r}).write_text('called')\n")
    return {"base": base, "wheel": wheel, "python": base / "env" / "bin" / "python", "stand_in": base / "stand-in"}


def _pip_freeze(python: Path) -> set[str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                         check=True, capture_output=True, text=True).stdout
    return {f"{p['name']}=={p['version']}" for p in json.loads(out)}


def _run_cell(colab, *, on_colab: bool) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(colab["base"])}
    if on_colab:
        env["PYTHONPATH"] = str(colab["stand_in"])
    code = setup_cell_source(str(colab["wheel"]))
    return subprocess.run([str(colab["python"]), "-c", code], cwd=colab["base"], env=env,
                          capture_output=True, text=True, timeout=300)


def test_outside_colab_the_setup_cell_does_nothing(colab):
    before = _pip_freeze(colab["python"])
    proc = _run_cell(colab, on_colab=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert _pip_freeze(colab["python"]) == before
    assert not (colab["base"] / "widget-manager-on").exists()


def test_on_colab_the_setup_cell_installs_course_alone_and_turns_on_widgets(colab):
    before = _pip_freeze(colab["python"])
    proc = _run_cell(colab, on_colab=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    added = _pip_freeze(colab["python"]) - before
    assert {a.split("==")[0] for a in added} == {PACKAGE}, added  # numpy, torch, ... untouched
    assert (colab["base"] / "widget-manager-on").read_text() == "called"
    where = subprocess.run([str(colab["python"]), "-c", "import course, course.checks; print(course.__file__)"],
                           cwd="/", capture_output=True, text=True, check=True).stdout.strip()
    assert "site-packages" in where and str(colab["base"]) in where, where
    leaked = subprocess.run([str(colab["python"]), "-c", "import autograder"], cwd="/", capture_output=True)
    assert leaked.returncode != 0, "the hidden checks must not be installed with the course package"
