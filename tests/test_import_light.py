"""`import course` stays light: no torch, matplotlib or ipywidgets until asked for."""
import subprocess
import sys

HEAVY = ("torch", "matplotlib", "ipywidgets")


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_import_course_loads_no_heavy_package():
    out = _run("import sys, course; print(sorted(m for m in %r if m in sys.modules))" % (HEAVY,))
    assert out.strip() == "[]", f"import course loaded {out.strip()}"


def test_plots_and_widgets_load_on_first_use():
    out = _run("import sys, course; course.plots; course.widgets; print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules)")
    assert out.split() == ["True", "True"]
