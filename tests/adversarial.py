"""Submissions that attack the grader, built from the release notebook of notebook 01.

Each attacker starts as an honest student (the release with every solution
cell filled in from the source) and then tampers, one attack class of
``../shared/GRADING.md`` each. ``EXPECTED`` says, for each attacker, which
graded cells must score zero and what their status and message must say;
every other graded cell of the notebook must pass.
"""
from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.colab import SETUP_TAG
from autograder.notebook_spec import read_spec
from notebooks import RELEASE, ROOT, SOURCE

NB = "01_tensors_and_shapes"
#: markers in the argv of processes an attacker leaves behind
LINGER_MARKS = ("987654", "987653")


@dataclass
class Expect:
    """Graded cells that must score zero: grade_id -> (status, a substring of the message)."""

    zero: dict = field(default_factory=dict)
    feedback_has: tuple = ()  # text the feedback page must contain
    feedback_lacks: tuple = ()  # text it must not contain


def honest() -> nbformat.NotebookNode:
    """The release notebook with every solution cell taken from the source."""
    source = nbformat.read(SOURCE / f"{NB}.ipynb", as_version=4)
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(RELEASE / f"{NB}.ipynb", as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):  # as a student would write it: no markers
            cell.source = "\n".join(line for line in solutions[grade_id].split("\n")
                                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    return nb


def _index(nb, grade_id: str) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    raise KeyError(grade_id)


def after(nb, grade_id: str, code: str) -> None:
    """Insert a new (ungraded) code cell right after the cell ``grade_id``."""
    nb.cells.insert(_index(nb, grade_id) + 1, nbformat.v4.new_code_cell(textwrap.dedent(code).strip()))


def first_code(nb, code: str) -> None:
    """Insert a new code cell after the notebook's imports (its first code cell after Colab's setup cell)."""
    i = next(i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and SETUP_TAG not in c.get("metadata", {}).get("tags", []))
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(textwrap.dedent(code).strip()))


def build(submissions: Path, out: Path) -> dict[str, Expect]:
    """Write every attacker's folder under ``submissions``; return what each must score."""
    expect: dict[str, Expect] = {}

    def save(student: str, nb, ex: Expect) -> None:
        folder = submissions / student
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{NB}.ipynb")
        expect[student] = ex

    paths = {
        "source": ROOT / "source" / "week1" / f"{NB}.ipynb",
        "hidden": ROOT / "autograder" / "hidden" / "nb01_tensors_and_shapes.py",
        "other": submissions / "honest" / f"{NB}.ipynb",
        "gradebook": ROOT / "gradebook.db",
        "course": ROOT / "course" / "checks.py",
        "output": out / "grades.csv",
    }

    # an honest student graded in the same run: every attack must leave them alone
    save("honest", honest(), Expect())

    # 1. results that lie
    nb = honest()
    after(nb, "sse_mse", """
        class Liar:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __bool__(self): return True
            def __float__(self): return 9.359375
            def __array__(self, *args, **kwargs):
                import numpy
                return numpy.asarray(9.359375)
            def __sub__(self, other): return 0.0
            __rsub__ = __sub__
            def __abs__(self): return 0.0
            def __lt__(self, other): return True
            __le__ = __lt__

        class LyingFloat(float):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = float.__hash__

        def sse(y_true, y_pred):
            return Liar()

        def mse(y_true, y_pred):
            return LyingFloat(123.0)
    """)
    save("liar", nb, Expect({"test_sse": ("failed", "Liar"), "test_mse": ("failed", "LyingFloat")}))

    # 2. rebinding what checks call: numpy, torch, math, builtins, the course's helpers
    nb = honest()
    after(nb, "pairwise_sq_distances", """
        import builtins, math
        import numpy as np
        import torch
        import course.checks
        np.allclose = lambda *a, **k: True
        np.array_equal = lambda *a, **k: True
        np.testing.assert_allclose = lambda *a, **k: None
        torch.allclose = lambda *a, **k: True
        torch.testing.assert_close = lambda *a, **k: None
        math.isclose = lambda *a, **k: True
        builtins.all = lambda *a, **k: True
        builtins.any = lambda *a, **k: False
        builtins.abs = lambda x: 0.0
        course.checks.assert_close = lambda *a, **k: None
        course.checks.compare = lambda name, *a, **k: course.checks.Comparison(name, True, "ok")
        assert_close = course.checks.assert_close

        def pairwise_sq_distances(A, B):
            return np.zeros((A.shape[0], B.shape[0]))
    """)
    save("rebinder", nb, Expect({"test_pairwise_sq_distances": ("failed", "pairwise_sq_distances")}))

    # 3. changing the kernel's machinery: later cells (the tests) do not run as written
    nb = honest()
    first_code(nb, """
        import sys
        _ip = get_ipython()
        def _blank_the_tests(lines):
            text = "".join(lines)
            return [] if ("assert_" in text or "check" in text) else lines
        _ip.input_transformers_post.append(_blank_the_tests)
        _ip.set_custom_exc((BaseException,), lambda *args, **kwargs: None)
        sys.excepthook = lambda *args: None
        _ip.events.register("post_run_cell", lambda result: setattr(result, "error_in_exec", None))
    """)
    after(nb, "linear_forward", """
        def linear_forward(x, W, b):
            return np.zeros(x.shape[:-1] + (W.shape[0],))
    """)
    save("machinist", nb, Expect({"test_linear_forward": ("failed", "linear_forward")}))

    # 4. reading what must stay hidden
    nb = honest()
    first_code(nb, f"""
        import glob, os
        _leaks = []
        for _path in {[str(paths[k]) for k in ("source", "hidden", "other", "gradebook")]!r}:
            try:
                with open(_path, "rb") as _f:
                    _leaks.append(_f.read(100))
            except OSError as _e:
                print("blocked:", type(_e).__name__)
        for _folder in {[str(ROOT / "source"), str(ROOT / "autograder"), str(submissions)]!r}:
            try:
                _leaks += os.listdir(_folder)
            except OSError as _e:
                print("blocked:", type(_e).__name__)
        _leaks += glob.glob("/*/*/source") + glob.glob("/*/*/autograder") + glob.glob("/tmp/*/*.ipynb")
        try:
            import autograder.hidden
            _leaks.append("the hidden checks import")
        except ImportError as _e:
            print("blocked:", type(_e).__name__)
        print("LEAK" + "ED" if _leaks else "nothing" + " leaked", _leaks[:3])
    """)
    after(nb, "sse_mse", """
        def mse(y_true, y_pred):
            if _leaks:
                raise RuntimeError("LEAK" + "ED")
            return -1.0
    """)
    save("reader", nb, Expect({"test_mse": ("failed", "mse")}, feedback_has=("nothing leaked",),
                              feedback_lacks=("LEAKED", "BEGIN SOLUTION", "BEGIN HIDDEN")))

    # 5. writing what must not change
    nb = honest()
    first_code(nb, f"""
        import os
        _targets = {[str(paths[k]) for k in ("gradebook", "course", "other", "output")]!r}
        _targets += ["/home/student/course/checks.py"]
        for _path in _targets:
            try:
                with open(_path, "ab") as _f:
                    _f.write(b"tampered")
                print("WRO" + "TE", _path)
            except OSError as _e:
                print("blocked:", type(_e).__name__)
    """)
    after(nb, "sse_mse", """
        def sse(y_true, y_pred):
            return 0.0
    """)
    save("writer", nb, Expect({"test_sse": ("failed", "sse")}, feedback_lacks=("WROTE",)))

    # 6a. an infinite loop in an exercise
    nb = honest()
    after(nb, "broadcast_shape", """
        def broadcast_shape(a, b):
            while True:
                pass
    """)
    save("looper", nb, Expect({"test_broadcast_shape": ("timeout", "time limit")}))

    # 6b. a cell that cannot be interrupted (the kernel must be killed and the notebook replayed)
    nb = honest()
    after(nb, "sse_mse", """
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            pass
    """)
    save("stubborn", nb, Expect(feedback_has=("ran over its time limit",)))

    # 6c. memory bombs: at the top level and in an exercise
    nb = honest()
    first_code(nb, """
        try:
            _hog = [0.0] * (2**31)
        except MemoryError:
            print("the top-level memory bomb", "was stopped")
    """)
    after(nb, "sse_mse", """
        def mse(y_true, y_pred):
            _bomb = bytearray(16 * 2**30)
            return 0.0
    """)
    save("hog", nb, Expect({"test_mse": ("error", "MemoryError")},
                           feedback_has=("the top-level memory bomb was stopped",)))

    # 6d. a flood of output
    nb = honest()
    first_code(nb, """
        for _ in range(40):
            print("spam " * 200_000)
    """)
    first_code(nb, """
        print("one huge line " * 4_000_000)
    """)
    after(nb, "add_bias_column", """
        def add_bias_column(X):
            print("spam " * 1_000_000)
            return X
    """)
    save("flooder", nb, Expect({"test_add_bias_column": ("failed", "add_bias_column"),
                                "test_perceptron_forward": ("error", "perceptron_forward")},
                               feedback_has=("output truncated by the grader", "a single output was too large")))

    # 6e. filling the disk (or, through in-memory folders, the host's memory)
    nb = honest()
    first_code(nb, """
        import os, sys
        _sockets = os.path.dirname(sys.argv[sys.argv.index("-f") + 1])
        _chunk = b"x" * (32 * 2**20)
        for _name, _folder in (("tmp", "/tmp"), ("home", os.path.expanduser("~")), ("sockets", _sockets)):
            _written = 0
            try:
                for _i in range(48):
                    with open(os.path.join(_folder, f"fill{_i}"), "wb") as _f:
                        _f.write(_chunk)
                    _written += len(_chunk)
            except OSError as _e:
                print(_name, "stopped", "after", _written // 2**20, "MiB:", type(_e).__name__)
            else:
                print(_name, "filled", _written // 2**20, "MiB")
    """)
    save("filler", nb, Expect(feedback_has=("tmp stopped after", "home stopped after",
                                            "sockets stopped after 0 MiB: PermissionError")))

    # 6f. processes left running, and a fork bomb
    nb = honest()
    first_code(nb, f"""
        import subprocess
        subprocess.Popen(["sleep", "{LINGER_MARKS[0]}"], start_new_session=True)
        subprocess.Popen(["bash", "-c", "nohup sleep {LINGER_MARKS[1]} >/dev/null 2>&1 &"])
        print("left two sleepers", "behind")
    """)
    save("lingerer", nb, Expect(feedback_has=("left two sleepers behind",)))

    nb = honest()
    first_code(nb, """
        import os, time
        _children = 0
        while True:
            try:
                _pid = os.fork()
            except OSError:
                break
            if _pid == 0:
                time.sleep(600)
                os._exit(0)
            _children += 1
        print("the fork bomb hit", "the process limit")
    """)
    after(nb, "broadcast_shape", """
        def broadcast_shape(a, b):
            return (1,)
    """)
    save("forker", nb, Expect({"test_broadcast_shape": ("failed", "broadcast_shape")},
                              feedback_has=("the fork bomb hit the process limit",)))

    # 7a. deleted and edited test cells, changed metadata
    nb = honest()
    del nb.cells[_index(nb, "test_sse")]
    mse_test = nb.cells[_index(nb, "test_mse")]
    mse_test.source = "pass  # nothing to see here"
    mse_test.metadata["nbgrader"]["points"] = 100
    bs_test = nb.cells[_index(nb, "test_broadcast_shape")]
    bs_test.metadata["nbgrader"]["grade"] = False
    after(nb, "sse_mse", """
        def sse(y_true, y_pred):
            return 1.0
    """)
    save("editor", nb, Expect({"test_sse": ("failed", "sse")}))

    # 3b. replacing the probe's reply in the kernel with one too large for the grader's memory
    nb = honest()
    after(nb, "pairwise_sq_distances", """
        import base64
        import autograder_probe.session as _session
        _real_reply = _session.probe_reply
        def _huge_reply(namespace, request):
            if b"pairwise_sq_distances" in base64.b64decode(request):
                return "A" * (400 * 2**20)
            return _real_reply(namespace, request)
        _session.probe_reply = _huge_reply
    """)
    save("bloater", nb, Expect({"test_pairwise_sq_distances": ("timeout", "too large")}))

    # 7b. HTML and scripts in a notebook: shown as text, never run in the reader's browser
    nb = honest()
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(
        "<script>alert('from markdown')</script>\n\n**Grader — test_sse: ✓ passed, 1 / 1 points**"))
    first_code(nb, """
        from IPython.display import HTML, display
        display(HTML("<script>document.title = 'pwned'</script><img src=x onerror=\\"alert('x')\\">"))
    """)
    save("scripter", nb, Expect(feedback_lacks=("<script>alert", "<script>document.title", "<img src=x onerror")))

    # 7c. a notebook that nbformat reads but that is not a valid notebook (a cell's source is a number)
    nb = honest()
    folder = submissions / "malformed"
    folder.mkdir(parents=True)
    data = json.loads(nbformat.writes(nb))
    data["cells"].insert(1, {"cell_type": "markdown", "metadata": {}, "source": 123, "id": "bad1"})
    (folder / f"{NB}.ipynb").write_text(json.dumps(data))
    expect["malformed"] = Expect(feedback_has=("could not be shown here",))

    # 7d. a notebook that is not valid JSON
    folder = submissions / "broken"
    folder.mkdir(parents=True)
    text = nbformat.writes(honest())
    (folder / f"{NB}.ipynb").write_text(text[: len(text) // 2])
    expect["broken"] = Expect({g: ("error", "not valid notebook JSON") for g in ALL_CELLS})

    # 7e. a kernel that dies: at the top level, and inside an exercise
    nb = honest()
    after(nb, "linear_forward", """
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    after(nb, "sse_mse", """
        def sse(y_true, y_pred):
            import os
            os._exit(3)
    """)
    save("killer", nb, Expect({"test_sse": ("error", "kernel died")}, feedback_has=("the kernel died in cell",)))

    # 8. the network
    nb = honest()
    after(nb, "sse_mse", """
        import socket, urllib.request
        def mse(y_true, y_pred):
            try:
                urllib.request.urlopen("https://pypi.org/simple/", timeout=3)
                socket.create_connection(("1.1.1.1", 53), timeout=3)
                return 1.0
            except OSError as e:
                raise ConnectionError(f"network blocked: {e}")
    """)
    save("networker", nb, Expect({"test_mse": ("error", "network blocked")}))

    # a folder that ships its own `course` and `autograder` packages, and a linked notebook
    nb = nbformat.read(RELEASE / f"{NB}.ipynb", as_version=4)
    save("shadow", nb, Expect({g: ("error", "not implemented") for g in ALL_CELLS}))
    for package in ("course", "autograder", "autograder/hidden"):
        (submissions / "shadow" / package).mkdir(parents=True, exist_ok=True)
        (submissions / "shadow" / package / "__init__.py").write_text(
            "def run_hidden(*a, **k):\n    pass\ndef assert_close(*a, **k):\n    pass\n")
    (submissions / "linker").mkdir()
    (submissions / "linker" / f"{NB}.ipynb").symlink_to(paths["source"])
    expect["linker"] = Expect({g: ("missing", "not a regular file") for g in ALL_CELLS})
    return expect


#: every student build() writes, attackers and the honest one
ATTACKERS = ("honest", "liar", "rebinder", "machinist", "bloater", "reader", "writer", "looper", "stubborn",
             "hog", "flooder", "filler", "lingerer", "forker", "editor", "scripter", "malformed", "broken", "killer",
             "networker", "shadow", "linker")

#: every graded cell of the notebook, from the course's own files
ALL_CELLS = tuple(cell.grade_id for cell in read_spec(SOURCE / f"{NB}.ipynb", RELEASE / f"{NB}.ipynb").graded)


#: a cell of the replayer: instant the first time, slow whenever it runs again after a restart
_SLOW_WHEN_REPLAYED = """
    import glob, os, sys, time
    _kernel_dir = os.path.dirname(sys.argv[sys.argv.index("-f") + 1])
    if len(glob.glob(os.path.join(os.path.dirname(_kernel_dir), "k*"))) > 1:  # a restarted kernel
        time.sleep(REPLAY_SLEEP)
"""


def build_replayer(folder: Path, sleep: float, cells: int = 6, kills: int = 5) -> Path:
    """4. of the issue "one student must never stop a class": cells that run at once, then sleep just under
    the cell limit whenever they are replayed after a restart; several cells that kill the kernel make the
    grader replay them again and again. Without one budget per notebook this costs kills x cells x sleep."""
    nb = honest()
    slow = textwrap.dedent(_SLOW_WHEN_REPLAYED).strip().replace("REPLAY_SLEEP", repr(sleep))
    for _ in range(kills):
        after(nb, "pairwise_sq_distances", "import os\nos._exit(3)")
    for _ in range(cells):
        first_code(nb, slow)
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{NB}.ipynb")
    return folder / f"{NB}.ipynb"


def build_spinner(folder: Path, processes: int = 24, seconds: int = 40) -> None:
    """5. of the issue "one student must never stop a class": processes that spin in their own sessions,
    to take the CPU from whoever is graded at the same time."""
    nb = honest()
    setup = next(i for i, c in enumerate(nb.cells) if SETUP_TAG in c.get("metadata", {}).get("tags", []))
    nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(textwrap.dedent(f"""
        import os
        for _ in range({processes}):
            if os.fork() == 0:
                os.setsid()
                import time
                _end = time.time() + {seconds}
                while time.time() < _end:
                    pass
                os._exit(0)
        print(f"the spinners may use {{len(os.sched_getaffinity(0))}} of the machine's {{os.cpu_count()}} cores")
    """).strip()))  # before the imports: the neighbour starts its own at the same moment
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{NB}.ipynb")


def build_hoarder(folder: Path, children: int = 6, mib: int = 512) -> None:
    """8.: children that each hold 512 MiB, to add up to more than the sandbox's memory limit (a limit per
    process lets each of them through). The cell prints how much the children held at once."""
    nb = honest()
    after(nb, "sse_mse", f"""
        import os, select, time
        _pipes = []
        for _ in range({children}):
            _r, _w = os.pipe()
            if os.fork() == 0:
                try:
                    _block = bytearray({mib} * 2**20)
                    _block[::4096] = b"x" * len(_block[::4096])  # touch every page: resident
                    os.write(_w, b"1")
                    time.sleep(20)
                finally:
                    os._exit(0)
            os.close(_w)
            _pipes.append(_r)
        time.sleep(5)
        _alive = 0
        for _r in _pipes:
            if select.select([_r], [], [], 0)[0] and os.read(_r, 1) == b"1":
                _alive += 1
        print(f"the children held {{_alive * {mib}}} MiB at once")
    """)
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{NB}.ipynb")


# ----------------------------------------------------------------------------------------------
# what a student controls that costs the grader memory, time after the cell, or a whole class's outputs


def write(nb, folder: Path) -> Path:
    """Save ``nb`` as the student's notebook 01 in ``folder``, every non-ASCII character as a JSON escape
    (so that a lone surrogate, which UTF-8 cannot hold, reaches the grader the way a JSON file carries it)."""
    folder.mkdir(parents=True)
    path = folder / f"{NB}.ipynb"
    path.write_text(json.dumps(nb, ensure_ascii=True, indent=1), encoding="ascii")
    return path


def build_pager(folder: Path, brackets: int = 48_000) -> Path:
    """2.: a markdown cell of "![" * 48k, on which nbconvert's link-stripping regex takes 103 s, after grading."""
    nb = honest()
    nb.cells.append(nbformat.v4.new_markdown_cell("![" * brackets))
    return write(nb, folder)


def build_widener(folder: Path, cells: int = 40, bytes_per_cell: int = 1_900_000) -> Path:
    """7.: many cells, each printing just under the 2 MB a cell may keep (300 of them made a 571 MB page)."""
    nb = honest()
    for _ in range(cells):
        nb.cells.append(nbformat.v4.new_code_cell(f'print("w" * {bytes_per_cell})'))
    return write(nb, folder)


def build_commer(folder: Path, messages: int = 100, mib: int = 10) -> Path:
    """6.: widget comm_open messages whose state nbclient would keep for the kernel's life (300 x 10 MiB
    took a worker to 3.3 GB), and output printed during the probes, which piles up in the grader's queue."""
    nb = honest()
    after(nb, "sse_mse", f"""
        from comm import create_comm
        _blob = "c" * ({mib} * 2**20)
        for _i in range({messages}):
            create_comm(target_name="jupyter.widget", data={{"state": {{"_model_name": "x", "blob": _blob}},
                                                             "buffer_paths": []}})
        _sse = sse

        def sse(y_true, y_pred):  # still right: printing during a probe costs the student nothing
            print("p" * ({mib} * 2**20))
            return _sse(y_true, y_pred)
    """)
    return write(nb, folder)


def build_surrogate(folder: Path) -> Path:
    """1.: a lone surrogate in a markdown cell and in the message of an exception an exercise raises."""
    nb = honest()
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("a lone surrogate: \ud800"))
    after(nb, "sse_mse", """
        def sse(y_true, y_pred):
            raise ValueError("lone " + chr(0xD800) + " surrogate")
    """)
    return write(nb, folder)


#: 10.: student ids a spreadsheet would run, or a terminal would draw as another student's row;
#: 1.: a folder name that is not UTF-8 (os.listdir hands its bad byte over as a surrogate)
HOSTILE_IDS = ('=HYPERLINK("http:x","full marks")', "mallory\x1b[2K\ralice    39 of 39\nchuck",
               os.fsdecode(b"bad-\xff-name"))
