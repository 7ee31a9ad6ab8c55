"""The course where a person sees it: JupyterLab and the feedback page, in Chromium.

A student's JupyterLab is started the way ``make lab`` starts it (``autograder.workspace``, then
``autograder.lab.student_lab_command``), isolated from the user's Jupyter files. Every release
notebook, and every source (solution) notebook copied into the workspace, is opened in headless
Chromium and run with Run > Run All Cells; then the test checks what is on the screen:

* no "Error displaying widget", no widget shown as a line of text (``VBox(children=...)``);
* every plot an image that loaded (no ``<Figure size 640x480 with 1 Axes>`` in its place);
* every cell that draws (a drawing function of the course, or pyplot) shows an image, unless
  it failed;
* no traceback in a solution notebook, and in a release notebook only the exercises'
  NotImplementedError;
* no console error from the course or the widgets (other console errors are printed);
* no nbgrader instructor tool (menu, Create Assignment, Validate) in the student's JupyterLab,
  while an instructor's JupyterLab started from the repository root does show the Nbgrader menu;
* every dashboard answers: each control in an output is moved once (text boxes get the text of
  DASHBOARD_INPUTS, the other controls their next value) and the widget's output must change;
  in a solution notebook it must show real results. A notebook with one control of every kind
  checks that the test can move each kind a later dashboard may use.

The hardened grader's feedback page is opened from a file, the way a student opens it: no
literal tags, a real summary table, a diagnosis whose numbers stay whole, no console error.

Screenshots go to .artifacts/browser/ (printed at the end). Chromium is Debian's
(/usr/bin/chromium): no browser is downloaded.
"""
from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from autograder.kernel_client import notebook_client
from autograder.lab import student_lab_command
from browser import (ARTIFACTS, CHROMIUM, CONTROL_KINDS, OUTPUT_TIMEOUT, Console, ControlError, Lab, NotebookPage,
                     find_controls, free_port, isolated_env, move_control)

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "release" / "week1"
SOURCE = ROOT / "source" / "week1"

#: What a person types into a dashboard's text box (or picks in a dropdown), by the control's
#: description. The other controls need no entry: a slider moves one step, a dropdown picks its
#: next option, a checkbox or button is clicked. A later notebook's dashboard is covered by
#: adding the entries for its text boxes here.
DASHBOARD_INPUTS = {
    # course.widgets.broadcast_explorer: two shapes; (7, 1, 5) against the default (128,) fails
    # on the last axis, then against (6, 1) it broadcasts to (7, 6, 5)
    "shape a": "(7, 1, 5)",
    "shape b": "(6, 1)",
}
#: What a dashboard must not show once the exercises are solved (the solution notebooks).
UNSOLVED = ("not written yet", "NotImplementedError", "Traceback", "differs from NumPy")

#: a widget that JupyterLab could not draw shows its repr: "VBox(children=(...", "IntSlider(value=3, ..."
WIDGET_AS_TEXT = re.compile(r"^\s*[A-Z]\w*\((?:children|value|description|layout|outputs|options|index|min|max|"
                            r"style|model_id)=")
FIGURE_AS_TEXT = re.compile(r"<Figure size [\d.]+x[\d.]+ with \d+ Axes>")
TRACEBACK = re.compile(r"^-{20,}\s*\n\s*(\w+(?:\.\w+)*)\s+Traceback \(most recent call last\)", re.M)
LITERAL_TAG = re.compile(r"</?[a-zA-Z][^>]*>")

NOTEBOOKS = [("release", p.name) for p in sorted(RELEASE.glob("*.ipynb"))] + \
            [("solution", p.name) for p in sorted(SOURCE.glob("*.ipynb"))]
SUMMARY: list[str] = []


def workspace_name(kind: str, name: str) -> str:
    return name if kind == "release" else f"solution_{name}"


# ----------------------------------------------------------------------------------------------
# a notebook with one control of every kind, to check that the test can move each kind: a later
# notebook's dashboard may use any of them

CONTROLS_NOTEBOOK = "every_kind_of_control.ipynb"
CONTROLS_INPUTS = {"title": "another title", "notes": "a second line"}
CONTROLS_CELLS = [
    """\
import ipywidgets as widgets
import matplotlib.pyplot as plt


@widgets.interact(n=(1, 9), kind=["line", "bar"], grid=False, title="a plot")
def draw(n=3, kind="line", grid=False, title="a plot"):
    fig, ax = plt.subplots(figsize=(3, 2))
    (ax.plot if kind == "line" else ax.bar)(range(n), range(n))
    ax.grid(grid)
    ax.set_title(title)
    plt.show()""",
    """\
controls = [widgets.Button(description="resample"), widgets.ToggleButton(description="log scale"),
            widgets.ToggleButtons(options=["SGD", "Adam"], description="optimizer"),
            widgets.RadioButtons(options=["mse", "mae"], description="loss"),
            widgets.IntText(value=3, description="epochs"), widgets.Select(options=["a", "b"], description="data"),
            widgets.IntRangeSlider(value=[2, 5], min=0, max=10, description="range"),
            widgets.Textarea(value="notes", description="notes")]
shown, clicks = widgets.HTML(), []


def show(_=None):
    shown.value = "<br>".join(f"{c.description}: {getattr(c, 'value', len(clicks))}" for c in controls)


for control in controls[1:]:
    control.observe(show, names="value")
controls[0].on_click(lambda button: (clicks.append(1), show()))
show()
widgets.VBox(controls + [shown])""",
]


def controls_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CONTROLS_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


# ----------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module", autouse=True)
def summary():
    """Print what was exercised, where the screenshots are and how long it took."""
    started = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    yield
    print("\n\nbrowser tests:")
    for line in SUMMARY:
        print("  " + line)
    print(f"  screenshots: {ARTIFACTS}")
    print(f"  total time: {time.monotonic() - started:.0f} s")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("run 'sudo apt-get install chromium'", pytrace=False)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A student's workspace made as `make lab` makes it, plus the solution notebooks beside
    the release ones (solution_<name>.ipynb), so that both run against the same bundled course.

    JupyterLab's Run All stops at the first cell that fails (it asks the kernel to stop on
    error), and in a release notebook the exercises fail on purpose until a student writes them.
    A student runs on past them cell by cell; here every code cell of these scratch copies gets
    the tag "raises-exception", with which JupyterLab sends stop_on_error=False, so Run All runs
    every cell and shows every output a student would see.
    """
    folder = tmp_path_factory.mktemp("lab") / "week1"
    made = subprocess.run([sys.executable, "-m", "autograder.workspace", str(RELEASE), str(folder)], cwd=ROOT,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stdout + made.stderr
    for source in sorted(SOURCE.glob("*.ipynb")):
        shutil.copy(source, folder / workspace_name("solution", source.name))
    for kind, name in NOTEBOOKS:
        path = folder / workspace_name(kind, name)
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                tags = cell["metadata"].setdefault("tags", [])
                if "raises-exception" not in tags:
                    tags.append("raises-exception")
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    nbformat.write(controls_notebook(), folder / CONTROLS_NOTEBOOK)
    return folder


@pytest.fixture(scope="module")
def student_lab(browser, workspace, tmp_path_factory):
    home = tmp_path_factory.mktemp("student-home")
    port, token = free_port(), secrets.token_hex(16)
    cmd, env = student_lab_command(workspace, "--no-browser", "--port", str(port), f"--ServerApp.token={token}",
                                   "--ServerApp.ip=127.0.0.1")
    lab = Lab.start(cmd, isolated_env(env, home), workspace, home / "jupyterlab.log", port, token)
    try:
        setting = lab.api("GET", "lab/api/settings/@jupyterlab/notebook-extension:tracker")["settings"]
        assert setting.get("windowingMode") == "none", (
            f"JupyterLab did not take the test's settings (tests/browser.py, LAB_SETTINGS): windowingMode is "
            f"{setting.get('windowingMode')!r}, so cells outside the viewport may be left out or not drawn")
        yield lab
    finally:
        lab.stop()


# ----------------------------------------------------------------------------------------------
# reading a notebook


def first_line(cell) -> str:
    lines = cell.source.strip().splitlines()
    return lines[0][:70] if lines else ""


def course_functions_using(*names: str) -> set[str]:
    """The public functions of the course package whose code uses one of ``names`` (a module alias
    such as ``widgets`` or ``plt``)."""
    found = set()
    for module in sorted((ROOT / "course").glob("*.py")):
        try:
            tree = ast.parse(module.read_text())
        except SyntaxError:  # the notebooks that import it fail, and show it
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and any(
                    isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in names
                    for n in ast.walk(node)):
                found.add(node.name)
    return found


def _called(node: ast.Call) -> str | None:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)


def cells_calling(nb, functions: set[str], last_only: bool = False, modules: tuple[str, ...] = ()) -> list[int]:
    """Code cells that call one of ``functions`` (``last_only``: as their last statement, so that
    its result is the cell's output) or anything of ``modules`` (e.g. plt.plot)."""
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics: not ours to read
            continue
        last = tree.body[-1] if tree.body else None
        if last_only:
            calls = [last.value] if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) else []
        else:
            calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        if any(_called(c) in functions or (isinstance(c.func, ast.Attribute) and isinstance(c.func.value, ast.Name)
                                           and c.func.value.id in modules) for c in calls):
            cells.append(index)
    return cells


def dashboard_cells(nb) -> list[int]:
    """Code cells whose output is one of the course's dashboards (a function that builds ipywidgets)."""
    return cells_calling(nb, course_functions_using("widgets", "ipywidgets"), last_only=True)


def plot_cells(nb) -> list[int]:
    """Code cells that draw: they call a drawing function of the course, or pyplot."""
    return cells_calling(nb, course_functions_using("plt"), modules=("plt",))


# ----------------------------------------------------------------------------------------------
# what is on the screen

INSTRUCTOR_TOOLS_JS = """
() => ({
  menus: [...document.querySelectorAll('.lm-MenuBar-itemLabel')].map(e => e.innerText.trim()),
  createAssignment: !!document.getElementById('nbgrader-create_assignemnt')
      || [...document.querySelectorAll('.lm-TabBar-tab')].some(t => /create assignment/i.test(t.title + ' ' + t.innerText)),
  validate: [...document.querySelectorAll('.validate-button, .jp-Toolbar button, .jp-Toolbar jp-button')]
      .some(b => /validate/i.test(b.innerText + ' ' + (b.title || ''))),
})
"""


def instructor_tools(page) -> list[str]:
    shown = page.evaluate(INSTRUCTOR_TOOLS_JS)
    problems = []
    if "Nbgrader" in shown["menus"]:
        problems.append(f"the menu bar has nbgrader's instructor menu: {shown['menus']}")
    if shown["createAssignment"]:
        problems.append("nbgrader's Create Assignment panel is there")
    if shown["validate"]:
        problems.append("nbgrader's Validate button is in the notebook's toolbar")
    return problems


def screen_problems(where, nb, cells: list[dict], solution: bool, plots: list[int]) -> tuple[list[str], dict]:
    """What is wrong in the outputs as shown; and counts (images, widgets, errors by name).
    ``plots``: the cells that draw, each of which must show an image unless it failed."""
    problems, counts = [], {"plots": 0, "widgets": 0, "errors": {}}
    for shown in cells:
        if shown["kind"] != "code":
            continue
        i = shown["index"]
        at = f"{where}, cell {i} ({first_line(nb.cells[i])!r})"
        images = [img for out in shown["outputs"] for img in out["images"]]
        counts["plots"] += len(images)
        failed = any(TRACEBACK.search(out["text"]) for out in shown["outputs"])
        if i in plots and not failed and not any(img["loaded"] for img in images):
            problems.append(f"{at}: draws a plot, but shows no image")
        for out in shown["outputs"]:
            text = out["text"]
            counts["widgets"] += out["widget"]
            if "Error displaying widget" in text:
                problems.append(f"{at}: shows {text.strip()[:120]!r}")
            if WIDGET_AS_TEXT.match(text):
                problems.append(f"{at}: a widget is shown as text: {text.strip()[:120]!r}")
            if FIGURE_AS_TEXT.search(text) and not any(img["loaded"] for img in images):
                problems.append(f"{at}: a plot is shown as text, not an image: {text.strip()[:120]!r}")
            if not text.strip() and not out["images"] and not out["widget"]:
                problems.append(f"{at}: an output shows nothing")
            for img in out["images"]:
                if not img["loaded"]:
                    problems.append(f"{at}: an image did not load")
            for error in TRACEBACK.findall(text):
                counts["errors"][error] = counts["errors"].get(error, 0) + 1
                if solution or error != "NotImplementedError":
                    problems.append(f"{at}: shows a traceback of {error}: {text.strip()[:300]!r}")
    return problems, counts


def exercise_dashboards(page: NotebookPage, where, nb, cells: list[dict], expected: list[int], solution: bool,
                        screenshot: Path) -> tuple[list[str], dict, list[str]]:
    """Move every control of every widget output once, as a person would, and check that the
    widget's output answers; (problems, controls moved by cell, what was done). ``expected``: the
    dashboard cells, each of which must show a widget with at least one control that answers."""
    problems, moved, done, shot = [], {}, [], False
    with_widgets = [c["index"] for c in cells if any(o["widget"] for o in c["outputs"])]
    for i in with_widgets:
        at = f"{where}, cell {i} ({first_line(nb.cells[i])!r})"
        controls = find_controls(page.cell(i))
        if not controls:
            if i in expected:
                problems.append(f"{at}: the dashboard shows no control to move")
            continue
        for control in controls:
            before = page.output_of(i)
            try:
                action = move_control(control, DASHBOARD_INPUTS)
            except ControlError as exc:
                problems.append(f"{at}: {exc}")
                continue
            after = page.wait_for_change(i, before)
            if after is None:
                problems.append(f"{at}: {action}, but the widget's output did not change within {OUTPUT_TIMEOUT:.0f} s")
                continue
            moved[i] = moved.get(i, 0) + 1
            done.append(action)
            shown = " ".join(after.split())
            if "Error displaying widget" in after or "Traceback" in after:
                problems.append(f"{at}: after {action} the output shows an error: {shown[:300]!r}")
            if solution:
                unsolved = [word for word in UNSOLVED if word in after]
                if unsolved:
                    problems.append(f"{at}: after {action} the solution's dashboard shows {unsolved}: {shown[:300]!r}")
        if not shot:
            page.cell(i).locator(".jp-Cell-outputArea").screenshot(path=str(screenshot))
            shot = True
    for i in expected:
        at = f"{where}, cell {i} ({first_line(nb.cells[i])!r})"
        if i not in with_widgets:
            problems.append(f"{at}: shows no widget where a dashboard should be")
        elif not moved.get(i):
            problems.append(f"{at}: no control of the dashboard could be moved with an effect")
    return problems, moved, done


def console_problems(where, console: Console) -> list[str]:
    if console.ignored:
        print(f"\n{where}: console errors ignored as unrelated to the course (for review):")
        for text in console.ignored:
            print("    " + text.replace("\n", "\n    ")[:600])
    return [f"{where}: {text[:600]}" for text in console.errors]


# ----------------------------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("kind,name", NOTEBOOKS, ids=[f"{k}-{n.split('_')[0]}" for k, n in NOTEBOOKS])
def test_a_notebook_in_the_students_jupyterlab(kind, name, browser, student_lab, workspace):
    started = time.monotonic()
    path = workspace_name(kind, name)
    where = f"{kind} notebook {name}"
    nb = nbformat.read(workspace / path, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    expected = dashboard_cells(nb)
    console = Console()
    page = NotebookPage(browser, student_lab, path, console)
    try:
        shown = page.cells()
        skipped = page.page.evaluate("() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
                                     ".filter(c => getComputedStyle(c).contentVisibility !== 'visible').length")
        assert len(shown) == len(nb.cells) and not skipped, (
            f"{where}: JupyterLab has {len(shown)} of the {len(nb.cells)} cells in the page, {skipped} of them not "
            f"drawn until scrolled to: the settings override windowingMode='none' (tests/browser.py, LAB_SETTINGS) "
            f"did not apply")
        problems = instructor_tools(page.page)
        page.run_all(code)
        for i in expected:  # a widget is drawn once its model reaches the page (else: see screen_problems)
            drawn = page.cell(i).locator(".jupyter-widgets, .jp-OutputArea-output:has-text('Error displaying widget')")
            try:
                drawn.first.wait_for(timeout=OUTPUT_TIMEOUT * 1000)
            except PlaywrightTimeout:
                pass
        cells = page.wait_until_settled(page.cells)
        found, counts = screen_problems(where, nb, cells, kind == "solution", plot_cells(nb))
        problems += found
        screenshot = ARTIFACTS / f"{kind}-{Path(name).stem}-dashboard.png"
        found, moved, done = exercise_dashboards(page, where, nb, cells, expected, kind == "solution", screenshot)
        problems += found
        problems += console_problems(where, console)
    finally:
        page.close()
        student_lab.shut_down_kernels()
    errors = ", ".join(f"{n} x {e}" for e, n in sorted(counts["errors"].items())) or "none"
    SUMMARY.append(f"{kind:8} {name:32} {time.monotonic() - started:5.1f} s  {len(code)} code cells run, "
                   f"{counts['plots']} images, {counts['widgets']} widgets, {len(expected)} dashboard(s), "
                   f"{sum(moved.values())} controls moved; tracebacks: {errors}")
    for action in done:
        print(f"  {where}: {action}")
    assert not problems, "\n".join(problems)


def test_every_kind_of_control_can_be_moved(browser, student_lab, workspace):
    """The test's own tools on a notebook with one control of each kind (interact's slider,
    dropdown, checkbox and text box over a plot; a button, toggle button, toggle buttons, radio
    buttons, number box, list, range slider and text area over an HTML readout)."""
    started = time.monotonic()
    console, moved, problems = Console(), {}, []
    page = NotebookPage(browser, student_lab, CONTROLS_NOTEBOOK, console)
    try:
        page.run_all([0, 1])
        for index in (0, 1):
            page.cell(index).locator(".jupyter-widgets").first.wait_for(timeout=OUTPUT_TIMEOUT * 1000)
        page.wait_until_settled(page.cells)
        for index in (0, 1):
            for control in find_controls(page.cell(index)):
                before = page.output_of(index)
                action = move_control(control, CONTROLS_INPUTS)
                if page.wait_for_change(index, before) is None:
                    problems.append(f"cell {index}: {action}, but the output did not change")
                else:
                    moved[control.kind] = moved.get(control.kind, 0) + 1
        problems += console_problems("the controls notebook", console)
    finally:
        page.close()
        student_lab.shut_down_kernels()
    SUMMARY.append(f"{'controls':8} {CONTROLS_NOTEBOOK:32} {time.monotonic() - started:5.1f} s  "
                   f"{sum(moved.values())} controls moved: {moved}")
    assert not problems, "\n".join(problems)
    assert set(moved) == set(CONTROL_KINDS), f"kinds moved {moved}, expected every one of {list(CONTROL_KINDS)}"


def test_the_students_jupyterlab_has_no_instructor_tools(browser, student_lab):
    """The lab page without a notebook, and the server's log (after every notebook ran)."""
    console = Console()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        console.attach(page)
        page.goto(student_lab.url("lab/workspaces/bare/tree"))
        page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").wait_for()
        page.locator(".lm-TabBar-tab[title^='File Browser']").wait_for()
        problems = instructor_tools(page)
    finally:
        context.close()
    log = student_lab.log()
    if "No nbgrader_config.py file found" in log:
        problems.append("the server's log says 'No nbgrader_config.py file found'")
    problems += [f"the server loaded {line.strip()!r}" for line in log.splitlines()
                 if re.search(r"nbgrader\S* \| extension was successfully loaded", line)]
    problems += console_problems("the student's JupyterLab", console)
    assert not problems, "\n".join(problems)


def test_an_instructors_jupyterlab_does_show_nbgrader(browser, tmp_path_factory):
    """The contrast: JupyterLab started from the repository root, without the student's config."""
    home = tmp_path_factory.mktemp("instructor-home")
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--port", str(port), f"--ServerApp.token={token}",
           "--ServerApp.ip=127.0.0.1"]
    if os.getuid() == 0:
        cmd.append("--allow-root")
    lab = Lab.start(cmd, isolated_env(dict(os.environ), home), ROOT, home / "jupyterlab.log", port, token)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(lab.url("lab/workspaces/instructor/tree"))
        page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").wait_for()
        try:  # nbgrader's menu comes with its extension, possibly after the core menus
            page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").wait_for(timeout=OUTPUT_TIMEOUT * 1000)
        except PlaywrightTimeout:
            pass
        shown = page.evaluate(INSTRUCTOR_TOOLS_JS)
    finally:
        context.close()
        lab.stop()
    assert "Nbgrader" in shown["menus"] and shown["createAssignment"], (
        f"an instructor's JupyterLab (started in {ROOT}) shows no nbgrader tools, so the student's check above "
        f"proves nothing: menus {shown['menus']}, Create Assignment panel: {shown['createAssignment']}; "
        f"its log:\n{lab.log()[-3000:]}")


# ----------------------------------------------------------------------------------------------
# the feedback page

MESSAGE = ("linear_forward(x, W, b) gives wrong values\n  at [0, 1]: expected -0.2 / 0.14, got 0.35\n"
           "  max abs error 0.55 > tolerance 1e-06")

#: the client rectangles of a substring of the text in a <pre>, as distinct line tops
LINES_OF_JS = """
([text]) => {
  const pres = [...document.querySelectorAll('pre.autograder-message')].filter(p => p.textContent.includes(text));
  return pres.map(pre => {
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    let node;
    while ((node = walker.nextNode())) {
      const at = node.data.indexOf(text);
      if (at < 0) continue;
      const range = document.createRange();
      range.setStart(node, at);
      range.setEnd(node, at + text.length);
      const tops = [...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top));
      const style = getComputedStyle(pre);
      return {lines: new Set(tops).size, whiteSpace: style.whiteSpace, wordBreak: style.wordBreak,
              overflowWrap: style.overflowWrap};
    }
    return {lines: -1};
  });
}
"""

SUMMARY_TABLE_JS = """
() => {
  const table = [...document.querySelectorAll('table')].find(t =>
    [...t.querySelectorAll('th')].map(th => th.innerText.trim()).join('|') === 'graded cell|status|points');
  if (!table) return null;
  const rows = [...table.querySelectorAll('tbody tr')];
  return {
    display: getComputedStyle(table).display,
    rows: rows.map(r => ({display: getComputedStyle(r).display,
                          cells: [...r.cells].map(c => c.innerText.trim()),
                          lefts: [...r.cells].map(c => Math.round(c.getBoundingClientRect().left))})),
  };
}
"""


@pytest.fixture(scope="module")
def feedback_page(browser, workspace, tmp_path_factory) -> dict:
    """A feedback page as a student opens it (from a file), and what it shows: notebook 01 with
    its outputs (plots and the broadcast explorer's) and three verdicts, one of them partial with
    a diagnosis of several lines."""
    from autograder.feedback import ICONS, render_html
    from autograder.hardened import CellResult, NotebookResult

    nb = nbformat.read(workspace / workspace_name("solution", "01_tensors_and_shapes.ipynb"), as_version=4)
    notebook_client(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workspace)}}).execute()
    verdicts = [
        CellResult("test_broadcast_shape", 3.0, 3.0, "passed", ""),
        CellResult("test_standardize", 0.0, 2.0, "failed", "standardize(X): column 1 has mean 0.5, expected 0"),
        CellResult("test_linear_forward", 1.6, 2.0, "partial", MESSAGE),
    ]
    page_file = tmp_path_factory.mktemp("feedback") / "feedback.html"
    page_file.write_text(render_html(NotebookResult("student", "01_tensors_and_shapes", verdicts, nb)))

    seen = {"rows": [[v.grade_id, f"{ICONS[v.status]} {v.status}", f"{v.score:g} / {v.max_score:g}"]
                     for v in verdicts]}
    console = Console(relevant=lambda text: True)  # a page of our own: every console error counts
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        console.attach(page)
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        seen["text"] = page.evaluate("() => document.body.innerText")
        seen["images"] = page.evaluate("() => [...document.images].map(i => i.complete && i.naturalWidth > 0)")
        seen["table"] = page.evaluate(SUMMARY_TABLE_JS)
        seen["wide"] = page.evaluate(LINES_OF_JS, ["-0.2 / 0.14"])
        verdict = page.locator(".autograder-verdict", has_text="-0.2 / 0.14")
        page.screenshot(path=str(ARTIFACTS / "feedback-summary.png"))
        verdict.screenshot(path=str(ARTIFACTS / "feedback-partial-verdict.png"))
        widget = page.locator(".output_area", has_text="VBox(children=")
        if widget.count():
            widget.first.screenshot(path=str(ARTIFACTS / "feedback-widget-as-text.png"))
        page.set_viewport_size({"width": 360, "height": 800})  # a phone: lines wrap, numbers stay whole
        seen["narrow"] = {number: page.evaluate(LINES_OF_JS, [number]) for number in ("-0.2", "0.14", "1e-06", "0.55")}
        verdict.screenshot(path=str(ARTIFACTS / "feedback-partial-verdict-360px.png"))
    finally:
        context.close()
    seen["console"] = console_problems("the feedback page", console)
    SUMMARY.append(f"feedback page: {len(seen['text'])} characters shown, {len(seen['images'])} images, "
                   f"{len(seen['table']['rows']) if seen['table'] else 0} summary rows")
    return seen


def test_the_feedback_page_reads_right(feedback_page):
    seen, problems = feedback_page, []
    tags = LITERAL_TAG.findall(seen["text"])
    if tags:
        problems.append(f"the page shows literal HTML tags: {tags[:10]}")
    if not seen["images"] or not all(seen["images"]):
        problems.append(f"the plots are not all images that loaded: {seen['images']}")
    table = seen["table"]
    if table is None:
        problems.append("no summary table with the columns graded cell | status | points")
    else:
        cells = [row["cells"] for row in table["rows"]]
        if cells != seen["rows"]:
            problems.append(f"the summary table's rows are {cells}, expected {seen['rows']}")
        if table["display"] != "table" or any(row["display"] != "table-row" for row in table["rows"]):
            problems.append(f"the summary is not laid out as a table: {table}")
        if len({tuple(row["lefts"]) for row in table["rows"]}) != 1:
            problems.append(f"the summary table's columns do not line up: {[r['lefts'] for r in table['rows']]}")
    if [shown["lines"] for shown in seen["wide"]] != [1]:
        problems.append(f"'-0.2 / 0.14' is not shown once on one line: {seen['wide']}")
    for shown in seen["wide"]:
        if shown.get("whiteSpace") != "pre-wrap" or shown.get("wordBreak") == "break-all" \
                or shown.get("overflowWrap") == "anywhere":
            problems.append(f"the diagnosis may break inside a number: {shown}")
    for number, shown in seen["narrow"].items():
        if [s["lines"] for s in shown] != [1]:
            problems.append(f"at 360 px wide, {number} is not on one line: {shown}")
    assert not problems, "\n".join(problems)


def test_the_feedback_page_shows_no_widget_as_text(feedback_page):
    shown = [line for line in feedback_page["text"].splitlines() if WIDGET_AS_TEXT.match(line)]
    assert not shown, f"the page shows a widget as text: {shown[0][:160]!r}"


def test_the_feedback_page_has_no_console_errors(feedback_page):
    assert not feedback_page["console"], "\n".join(feedback_page["console"])
