"""Interactive widgets for the notebooks (ipywidgets 8).

Each widget is three small pieces kept apart:

* a compute function that returns plain numbers and strings (tests call it),
* a formatting function that turns that result into text or HTML,
* the widget itself, which wires the controls to the two.

The broadcasting explorer does not implement the broadcasting rule: the
result it shows is NumPy's (``numpy.broadcast_shapes``, looked up when it is
called), next to the answer of the student's own ``broadcast_shape``.
"""
from __future__ import annotations

import html
import re
from typing import Any, Callable, Optional

import ipywidgets as widgets
import numpy as np

__all__ = [
    "parse_shape",
    "broadcast_report",
    "format_report",
    "report_html",
    "broadcast_explorer",
]

_SHAPE_TEXT = re.compile(r"^[\s(\[]*([0-9\s,]*?)[\s,]*[)\]\s]*$")


def parse_shape(text: str) -> tuple[int, ...]:
    """Read a shape typed by a person: "32, 128", "(32, 128)", "[3, 1]", "7" or "()".

    Returns a tuple of non-negative ints; raises ValueError for anything else.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected text such as '32, 128', got {type(text).__name__}")
    m = _SHAPE_TEXT.match(text)
    if m is None:
        raise ValueError(f"cannot read {text!r} as a shape: write sizes separated by commas, e.g. '32, 128'")
    body = m.group(1).strip()
    if not body:
        return ()
    parts = [p.strip() for p in body.split(",")]
    if any(not p.isdigit() for p in parts):
        raise ValueError(f"cannot read {text!r} as a shape: every size must be a whole number >= 0")
    return tuple(int(p) for p in parts)


def _numpy_broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[Optional[tuple[int, ...]], Optional[str]]:
    """NumPy's answer (looked up at call time), as (shape, None) or (None, error text)."""
    try:
        return tuple(int(s) for s in np.broadcast_shapes(a, b)), None
    except ValueError as exc:
        return None, str(exc)


def broadcast_report(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    student_fn: Optional[Callable[[tuple, tuple], Any]] = None,
) -> dict:
    """Line up two shapes on the right and say, axis by axis, what broadcasting does.

    Returns a dict of plain data:
      a, b:        the two shapes (tuples of ints)
      columns:     one dict per aligned axis, left to right, with keys
                   axis (negative index), a, b (size, or None where that shape has no
                   such axis and counts as 1) and note (what happens on that axis)
      numpy:       NumPy's result shape, or None when NumPy refuses
      numpy_error: NumPy's error message, or None
      student:     the student's answer (repr text) or None when no function was given
      agree:       whether the student's answer matches NumPy's (a returned tuple equal to
                   NumPy's shape, or a ValueError where NumPy raises), or None when there is
                   nothing to compare (no function given, or it is not written yet)
    """
    a = tuple(int(s) for s in shape_a)
    b = tuple(int(s) for s in shape_b)
    result, error = _numpy_broadcast(a, b)
    ndim = max(len(a), len(b))
    columns = []
    for k in range(ndim, 0, -1):
        sa = a[-k] if k <= len(a) else None
        sb = b[-k] if k <= len(b) else None
        pa = 1 if sa is None else sa
        pb = 1 if sb is None else sb
        axis_result, axis_error = _numpy_broadcast((pa,), (pb,))
        if axis_error is not None:
            note = f"✗ {pa} vs {pb}: different, and neither is 1"
        elif pa == pb:
            note = f"equal: {axis_result[0]}"
        elif pa == 1:
            note = f"a is 1 here, so it is repeated along this axis: {axis_result[0]}"
        else:
            note = f"b is 1 here, so it is repeated along this axis: {axis_result[0]}"
        columns.append({"axis": -k, "a": sa, "b": sb, "note": note})
    report = {
        "a": a,
        "b": b,
        "columns": columns,
        "numpy": result,
        "numpy_error": error,
        "student": None,
        "agree": None,
    }
    if student_fn is not None:
        try:
            answer = student_fn(a, b)
        except NotImplementedError:  # the exercise is not done yet: nothing to compare
            report["student"] = "not written yet (do the exercise above, then run this cell again)"
        except Exception as exc:  # the student's error is something to show, not a crash
            report["student"] = f"raised {type(exc).__name__}: {exc}"
            report["agree"] = result is None and type(exc) is ValueError
        else:
            report["student"] = repr(answer)
            report["agree"] = result is not None and type(answer) is tuple and answer == result
    return report


def _verdict(agree: Optional[bool]) -> str:
    """How the student's answer compares with NumPy's ('' when there is nothing to compare)."""
    return "" if agree is None else ("✓ agrees with NumPy" if agree else "✗ differs from NumPy")


def _cell(size: Optional[int]) -> str:
    return "(1)" if size is None else str(size)


def format_report(report: dict) -> str:
    """The report as a plain-text table (right-aligned, one column per axis)."""
    cols = report["columns"]
    head = ["axis"] + [str(c["axis"]) for c in cols]
    row_a = ["a"] + [_cell(c["a"]) for c in cols]
    row_b = ["b"] + [_cell(c["b"]) for c in cols]
    if report["numpy"] is not None:
        row_r = ["result"] + [str(s) for s in report["numpy"]]
    else:
        row_r = ["result"] + ["✗" if c["note"].startswith("✗") else "" for c in cols]
    width = max([len(x) for x in head + row_a + row_b + row_r] + [1])
    lines = ["  ".join(x.rjust(width) if i else x.ljust(7) for i, x in enumerate(r))
             for r in (head, row_a, row_b, row_r)]
    lines.append("")
    if not cols:
        lines.append("both shapes are 0-d (scalars): no axes to line up")
    for c in cols:
        lines.append(f"axis {c['axis']}: {c['note']}")
    lines.append(f"a {report['a']} with b {report['b']} -> "
                 + (str(report["numpy"]) if report["numpy"] is not None
                    else f"error: {report['numpy_error']}"))
    if report["student"] is not None:
        lines.append(f"your broadcast_shape: {report['student']}   {_verdict(report['agree'])}".rstrip())
    return "\n".join(lines)


def report_html(report: dict) -> str:
    """The report as a small HTML table for the explorer widget."""
    e = html.escape
    cols = report["columns"]

    def cells(values, tag="td"):
        return "".join(f"<{tag} style='text-align:right;padding:2px 10px'>{e(v)}</{tag}>" for v in values)

    rows = [
        "<tr>" + cells(["axis"] + [str(c["axis"]) for c in cols], "th") + "</tr>",
        "<tr>" + cells(["a"] + [_cell(c["a"]) for c in cols]) + "</tr>",
        "<tr>" + cells(["b"] + [_cell(c["b"]) for c in cols]) + "</tr>",
    ]
    if report["numpy"] is not None:
        rows.append("<tr>" + cells(["result"] + [str(s) for s in report["numpy"]]) + "</tr>")
        verdict = f"NumPy: <b>{e(str(report['numpy']))}</b>"
    else:
        verdict = f"NumPy: <b style='color:#b00'>error</b> <code>{e(report['numpy_error'])}</code>"
    notes = "<br>".join(f"axis {c['axis']}: {e(c['note'])}" for c in cols) or "both shapes are 0-d (scalars)"
    parts = [f"<table style='font-family:monospace'>{''.join(rows)}</table>",
             f"<div style='font-family:monospace'>{notes}</div>",
             f"<div>{verdict}</div>"]
    if report["student"] is not None:
        color = "#070" if report["agree"] else "#b00"
        mark = _verdict(report["agree"])
        parts.append(f"<div>your <code>broadcast_shape</code>: <code>{e(report['student'])}</code> "
                     f"<span style='color:{color}'>{mark}</span></div>")
    parts.append("<div style='color:#666;font-size:90%'>(1) marks an axis the shorter shape does not have: "
                 "it counts as size 1.</div>")
    return "".join(parts)


def broadcast_explorer(
    student_fn: Optional[Callable[[tuple, tuple], Any]] = None,
    a: str = "32, 128",
    b: str = "128",
) -> widgets.VBox:
    """Two shape boxes -> the right-aligned table, NumPy's result or error, and the
    answer of ``student_fn`` (your ``broadcast_shape``) beside it."""
    box_a = widgets.Text(value=a, description="shape a", continuous_update=False)
    box_b = widgets.Text(value=b, description="shape b", continuous_update=False)
    out = widgets.HTML()

    def update(_change=None) -> None:
        try:
            sa, sb = parse_shape(box_a.value), parse_shape(box_b.value)
        except ValueError as exc:
            out.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
            return
        out.value = report_html(broadcast_report(sa, sb, student_fn))

    box_a.observe(update, names="value")
    box_b.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([box_a, box_b]), out])
