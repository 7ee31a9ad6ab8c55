"""course.graph: the layout of a small computation graph (compute) and its drawing (display)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from course.graph import draw_graph, edges, layout

SEED_GRAPH = [("a", "", ()), ("b", "", ()), ("c", "", ()),
              ("d", "*", ("b", "c")), ("e", "+", ("a", "d")),
              ("f", "*", ("d", "a")), ("g", "**", ("e", "f"))]


def test_layout_puts_each_node_right_of_its_inputs():
    pos = layout(SEED_GRAPH)
    assert {name: x for name, (x, _) in pos.items()} == {"a": 0, "b": 0, "c": 0, "d": 1, "e": 2, "f": 2, "g": 3}
    assert pos["a"][1] > pos["b"][1] > pos["c"][1]          # listed order, top to bottom
    assert pos["b"][1] == 0.0 and pos["e"][1] == -pos["f"][1]  # columns centred on y = 0


def test_edges_list_every_use():
    assert edges(SEED_GRAPH) == [("b", "d"), ("c", "d"), ("a", "e"), ("d", "e"), ("d", "f"), ("a", "f"),
                                 ("e", "g"), ("f", "g")]
    assert edges([("x", "", ()), ("y", "*", ("x", "x"))]) == [("x", "y"), ("x", "y")]


@pytest.mark.parametrize("nodes, words", [
    ([("a", "", ()), ("b", "+", ("a", "c"))], "before they are defined"),
    ([("a", "", ()), ("a", "", ())], "appears twice"),
    ([("a", "")], "(name, op, inputs)"),
])
def test_malformed_graphs_are_refused(nodes, words):
    with pytest.raises(ValueError, match=r".*" + words.replace("(", r"\(").replace(")", r"\)")):
        layout(nodes)


def test_draw_graph_draws_every_node_and_arrow():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = draw_graph(SEED_GRAPH, {"a": 1.5, "g": 3.953}, {"a": 5.994}, title="t")
    try:
        texts = [t.get_text() for t in ax.texts]
        assert len(texts) == 7 + 8  # one box per node, one (empty) annotation per edge
        assert any("g = e**f" in t and "value 3.953" in t for t in texts)
        assert any(t.startswith("a\n") and "grad 5.994" in t for t in texts)
        assert ax.get_title() == "t"
    finally:
        plt.close(fig)


def test_importing_course_graph_stays_light():
    code = "import sys, course.graph; print('matplotlib' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
