"""JupyterLab and Chromium for tests/test_browser.py.

* :class:`Lab`: a JupyterLab server in a process group of its own, with every Jupyter and
  matplotlib file of the user replaced by folders under a scratch home (:func:`isolated_env`),
  stopped with its kernels at the end.
* :class:`Console`: what the browser's console says, split into what concerns the course (an
  error there fails a test) and unrelated Jupyter noise (printed for review, never failing).
* :class:`NotebookPage`: one notebook opened in JupyterLab the way a person opens it, run with
  Run > Run All Cells, read back cell by cell; and :func:`find_controls` / :func:`move_control`,
  which find every ipywidgets control in a cell's outputs and move it once.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / ".artifacts" / "browser"

LAB_START_TIMEOUT = 90.0  # s: the server answers
PAGE_TIMEOUT = 90.0  # s: JupyterLab has loaded a notebook and its kernel is idle
RUN_ALL_TIMEOUT = 300.0  # s: every code cell of a notebook has run
OUTPUT_TIMEOUT = 10.0  # s: a widget's output reacts to a moved control
SETTLE = 0.5  # s: outputs unchanged this long count as settled
QUIET = 2.0  # s: a kernel idle this long has answered what it was sent

#: JupyterLab settings for the tests (JUPYTERLAB_SETTINGS_DIR): every cell of a notebook in the
#: DOM (JupyterLab 4 otherwise attaches only the cells near the viewport), and no news or update
#: notifications, which ask the user a question and reach out to the internet.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(env: dict[str, str], home: Path) -> dict[str, str]:
    """``env`` with the user's home, Jupyter runtime, JupyterLab settings and workspaces, and
    matplotlib's folder moved under ``home`` (created, with the test's JupyterLab settings and
    matplotlib's font cache copied in, so that no plot rebuilds it)."""
    home = Path(home)
    env = dict(env)
    mpl = home / ".config" / "matplotlib"
    mpl.mkdir(parents=True, exist_ok=True)
    user_cache = Path(os.environ.get("MPLCONFIGDIR") or Path.home() / ".cache" / "matplotlib")
    for font_cache in user_cache.glob("fontlist-*.json"):
        shutil.copy(font_cache, mpl / font_cache.name)
    settings = home / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values, indent=2) + "\n")
    env.update(
        HOME=str(home),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
        MPLCONFIGDIR=str(mpl),
    )
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_TOKEN", "IPYTHONDIR"):
        env.pop(name, None)
    return env


def _cmdline(pid: int) -> Optional[bytes]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None


def _children(pid: int) -> dict[int, bytes]:
    """The processes whose parent is ``pid``, with their command lines (Linux /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            cmdline = _cmdline(int(stat.parent.name))
            if cmdline:
                found[int(stat.parent.name)] = cmdline
    return found


class Lab:
    """A JupyterLab server: ``cmd`` started in ``cwd`` with ``env``, its log in ``log_path``."""

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path, port: int, token: str):
        self.cmd, self.env, self.cwd, self.log_path = cmd, env, Path(cwd), Path(log_path)
        self.port, self.token = port, token
        self.kernels: dict[int, bytes] = {}  # pid: command line (it names a connection file of ours)
        with open(self.log_path, "wb") as log:
            # a session of its own: the whole group is stopped at the end
            self.process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    @classmethod
    def start(cls, cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path, port: int,
              token: str) -> "Lab":
        lab = cls(cmd, env, cwd, log_path, port, token)
        try:
            lab.wait_until_ready()
        except BaseException:
            lab.stop()
            raise
        return lab

    def url(self, path: str, query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}?{query + '&' if query else ''}token={self.token}"

    def api(self, method: str, path: str, timeout: float = 10.0):
        request = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_ready(self, timeout: float = LAB_START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode} before it answered; "
                                   f"its log ({self.log_path}):\n{self.log()[-4000:]}")
            try:
                self.api("GET", "api/status", timeout=2.0)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"JupyterLab did not answer on port {self.port} within {timeout:.0f} s; "
                                   f"its log ({self.log_path}):\n{self.log()[-4000:]}")
            time.sleep(0.2)

    def remember_kernels(self) -> None:
        """Note the server's kernel processes (they run in sessions of their own), to stop any
        that outlives the server."""
        self.kernels.update(_children(self.process.pid))

    def kernel_state(self, path: str) -> Optional[str]:
        """The execution state of the kernel of the notebook at ``path`` (None: no session)."""
        for session in self.api("GET", "api/sessions"):
            if session.get("path") == path and session.get("kernel"):
                return session["kernel"].get("execution_state")
        return None

    def shut_down_kernels(self) -> None:
        self.remember_kernels()
        for session in self.api("GET", "api/sessions"):
            self.api("DELETE", f"api/sessions/{session['id']}", timeout=30.0)

    def stop(self) -> None:
        """Stop the server's process group (the server shuts its kernels down on SIGTERM), then any
        kernel it started that is still there."""
        if self.process.poll() is None:
            self.remember_kernels()
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        for pid, cmdline in self.kernels.items():
            if _cmdline(pid) == cmdline:  # still that kernel, not a new process with its number
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# ----------------------------------------------------------------------------------------------
# the browser's console

#: console messages that concern the course: an error that mentions one of these fails the test
RELEVANT = re.compile(r"widget|ipywidgets|jupyter-widgets|course|output ?area|rendermime|matplotlib", re.I)


@dataclass
class Console:
    """Errors a page reported: console messages of type error and uncaught exceptions."""

    relevant: Callable[[str], bool] = lambda text: bool(RELEVANT.search(text))
    errors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url") or ""
        self._add(f"console error: {message.text}" + (f" ({url})" if url else ""))

    def _on_page_error(self, error) -> None:
        self._add(f"uncaught exception: {error}\n{error.stack or ''}".rstrip())

    def _add(self, text: str) -> None:
        (self.errors if self.relevant(text) else self.ignored).append(text)


# ----------------------------------------------------------------------------------------------
# a notebook in JupyterLab

#: per cell, in notebook order: its kind, its prompt and its outputs as shown (top-level outputs;
#: a widget's own output areas belong to the widget's output)
CELLS_JS = """
() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')]
  .map((cell, index) => ({
    index,
    kind: cell.classList.contains('jp-CodeCell') ? 'code'
        : cell.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw',
    prompt: (cell.querySelector('.jp-InputPrompt')?.innerText || '').trim(),
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output')]
      .filter(o => !o.parentElement.closest('.jp-OutputArea-output'))
      .map(o => ({
        mime: o.getAttribute('data-mime-type') || '',
        text: o.innerText.slice(0, 5000),
        widget: !!o.querySelector('.jupyter-widgets'),
        images: [...o.querySelectorAll('img')].map(i => ({loaded: i.complete && i.naturalWidth > 0,
                                                         width: i.naturalWidth})),
      })),
  }))
"""

#: what surrounds a control; removed when reading a widget's output (see OUTPUT_JS)
CONTROL_BOXES = (".widget-text, .widget-textarea, .widget-slider, .widget-dropdown, .widget-select, "
                 ".widget-checkbox, .widget-toggle-button, .widget-toggle-buttons, .widget-radio, "
                 ".widget-button, .widget-colorpicker, .widget-datepicker")

#: what a cell's outputs show outside its controls: text and images
OUTPUT_JS = """
(cell) => {
  const area = cell.querySelector('.jp-Cell-outputArea');
  if (!area) return '';
  const clone = area.cloneNode(true);
  clone.querySelectorAll(%s).forEach(e => e.remove());
  return clone.textContent + '\\n' + [...clone.querySelectorAll('img')].map(i => i.getAttribute('src')).join('\\n');
}
""" % json.dumps(CONTROL_BOXES)

#: the controls a person can move, by kind: the element to act on (ToggleButtons and
#: RadioButtons are one control each: a person picks another of their options)
CONTROL_KINDS = {
    "text box": ".widget-text input, .widget-textarea textarea",
    "slider": ".widget-slider .noUi-handle",
    "dropdown": ".widget-dropdown select, .widget-select select",
    "checkbox": ".widget-checkbox input[type=checkbox]",
    "toggle button": ".widget-toggle-button:not(.widget-toggle-buttons *)",
    "choice": ".widget-toggle-buttons, .widget-radio-box",
    "button": "button.widget-button",
}

#: marks each control of a cell with data-browser-control="<n>" (DOM order) and returns
#: [kind, description] for each; a control's description is its label (a button's: its text)
FIND_CONTROLS_JS = """
([cell, kinds]) => {
  const found = [];
  for (const [kind, selector] of Object.entries(kinds))
    for (const el of cell.querySelectorAll(selector)) found.push([kind, el]);
  found.sort((a, b) => a[1].compareDocumentPosition(b[1]) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1);
  return found.map(([kind, el], n) => {
    el.setAttribute('data-browser-control', String(n));
    const box = el.closest('.widget-inline-hbox');
    const label = box && box.querySelector(':scope > .widget-label');
    const text = (label && label.innerText.trim()) || el.innerText?.trim() || el.getAttribute('title') || '';
    return [kind, text];
  });
}
"""


#: where a slider's handle stands: its value for assistive technology and the readout shown
SLIDER_POSITION_JS = """
(handle) => [handle.getAttribute('aria-valuenow'), handle.getAttribute('aria-valuetext'),
             handle.closest('.widget-slider')?.querySelector('.widget-readout')?.innerText].join(' | ')
"""


@dataclass
class Control:
    kind: str
    description: str
    locator: object  # playwright Locator

    def __str__(self) -> str:
        return f"{self.kind} {self.description!r}"


class ControlError(AssertionError):
    """A control could not be moved the way a person would move it."""


def find_controls(cell) -> list[Control]:
    """Every control in a cell's outputs (``cell``: the cell's Locator), in the order shown."""
    found = cell.evaluate(f"(cell) => ({FIND_CONTROLS_JS})([cell, {json.dumps(CONTROL_KINDS)}])")
    return [Control(kind, description, cell.locator(f'[data-browser-control="{n}"]'))
            for n, (kind, description) in enumerate(found)]


def move_control(control: Control, inputs: dict[str, str]) -> str:
    """Move a control once, as a person would; returns what was done.

    ``inputs``: what to type into a text box (or which option to pick), by the control's
    description. A text box needs an entry (any text is not a meaningful value); a number box
    goes up by one step; the other controls pick their next value.
    """
    loc, wanted = control.locator, inputs.get(control.description)
    if control.kind == "text box":
        if wanted is None:
            if loc.get_attribute("type") != "number":
                raise ControlError(f"no entry for the text box {control.description!r} in the table of "
                                   f"dashboard inputs: add the text a person would type there")
            loc.focus()
            loc.press("ArrowUp")
            loc.press("Enter")
            return f"{control}: one step up"
        loc.fill(wanted)
        loc.press("Enter")
        return f"{control}: typed {wanted!r} and Enter"
    if control.kind == "slider":
        def position() -> str:
            return loc.evaluate(SLIDER_POSITION_JS)

        before = position()
        loc.focus()
        loc.press("ArrowRight")
        deadline = time.monotonic() + 1.0
        while position() == before:
            if time.monotonic() > deadline:  # already at its maximum
                loc.press("ArrowLeft")
                return f"{control}: ArrowLeft from {before}"
            time.sleep(0.05)
        return f"{control}: ArrowRight from {before}"
    if control.kind == "dropdown":
        options = loc.evaluate("s => [[...s.options].map(o => o.label), s.selectedIndex]")
        labels, selected = options
        if len(labels) < 2:
            raise ControlError(f"{control} has fewer than two options")
        index = labels.index(wanted) if wanted in labels else (selected + 1) % len(labels)
        loc.select_option(index=index)
        return f"{control}: picked {labels[index]!r}"
    if control.kind == "choice":
        options = loc.locator("button:not(.mod-active), input:not(:checked)")
        if options.count() == 0:
            raise ControlError(f"{control} has no other option to pick")
        option = loc.get_by_text(wanted, exact=True).first if wanted else options.first
        label = option.evaluate("e => (e.tagName === 'INPUT' ? e.parentElement.innerText : e.innerText) || e.value")
        option.click()
        return f"{control}: picked {label.strip()!r}"
    loc.click()  # checkbox, toggle button, button
    return f"{control}: clicked"


class NotebookPage:
    """A notebook opened in a fresh browser context, in a JupyterLab workspace of its own (so
    no other notebook is restored with it)."""

    def __init__(self, browser, lab: Lab, path: str, console: Console, viewport=(1400, 900)):
        self.lab, self.path, self.console = lab, path, console
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        self.context.set_default_timeout(PAGE_TIMEOUT * 1000)
        self.page = self.context.new_page()
        console.attach(self.page)
        workspace = "t" + re.sub(r"\W", "", path) + secrets.token_hex(3)
        self.page.goto(lab.url(f"lab/workspaces/{workspace}/tree/{path}"))
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell")
        self.wait_for_kernel("idle", PAGE_TIMEOUT)

    def close(self) -> None:
        self.context.close()

    def wait_for_kernel(self, state: str, timeout: float) -> None:
        """Until JupyterLab shows the kernel in ``state`` and the server agrees."""
        self.page.wait_for_selector(f".jp-Notebook-ExecutionIndicator[data-status='{state}']",
                                    timeout=timeout * 1000)
        deadline = time.monotonic() + timeout
        while self.lab.kernel_state(self.path) != state:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path}: the kernel is {self.lab.kernel_state(self.path)!r}, "
                                   f"not {state!r}, after {timeout:.0f} s")
            time.sleep(0.2)

    def menu(self, menu: str, command: str) -> None:
        """Click a menu of the menu bar, then one of its items (by its command id)."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{re.escape(menu)}$")).click()
        self.page.locator(f".lm-Menu-item[data-command='{command}']").click()

    def cells(self) -> list[dict]:
        return self.page.evaluate(CELLS_JS)

    def cell(self, index: int):
        return self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(index)

    def run_all(self, code_cells: list[int], timeout: float = RUN_ALL_TIMEOUT) -> None:
        """Run > Run All Cells, then wait until each of ``code_cells`` shows an execution count
        and the kernel is idle."""
        self.menu("Run", "runmenu:run-all")
        try:
            self.page.wait_for_function(
                """(wanted) => {
                     const cells = document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell');
                     return wanted.every(i => /^\\[\\d+\\]:$/.test(
                       (cells[i]?.querySelector('.jp-InputPrompt')?.innerText || '').trim()));
                   }""", arg=code_cells, timeout=timeout * 1000, polling=250)
        except Exception as exc:
            prompts = {c["index"]: c["prompt"] for c in self.cells()}
            waiting = {i: prompts.get(i) for i in code_cells if not re.fullmatch(r"\[\d+\]:", prompts.get(i) or "")}
            raise TimeoutError(f"{self.path}: after {timeout:.0f} s these code cells have not run "
                               f"(cell index: prompt): {waiting}") from exc
        self.wait_for_kernel("idle", timeout)

    def output_of(self, index: int) -> str:
        return self.cell(index).evaluate(OUTPUT_JS)

    def wait_until_settled(self, read: Callable[[], object], timeout: float = OUTPUT_TIMEOUT):
        """Poll ``read`` until it returns the same value for SETTLE seconds; returns that value."""
        deadline = time.monotonic() + timeout
        value, since = read(), time.monotonic()
        while time.monotonic() - since < SETTLE and time.monotonic() < deadline:
            time.sleep(0.1)
            new = read()
            if new != value:
                value, since = new, time.monotonic()
        return value

    def wait_for_change(self, index: int, before: str, timeout: float = OUTPUT_TIMEOUT,
                        limit: float = RUN_ALL_TIMEOUT) -> Optional[str]:
        """The cell's output once it differs from ``before``, the kernel is idle again and the
        output has settled; None if it stays as it was for ``timeout`` s, the last QUIET s of them
        with the kernel idle (a busy kernel may still be answering: it is waited for, up to
        ``limit`` s)."""
        start = busy = time.monotonic()
        while True:
            if self.output_of(index) != before:
                self.wait_for_kernel("idle", limit)
                return self.wait_until_settled(lambda: self.output_of(index))
            now = time.monotonic()
            if self.lab.kernel_state(self.path) != "idle":
                busy = now
            if now - start > limit or (now - start > timeout and now - busy > QUIET):
                return None
            time.sleep(0.1)
