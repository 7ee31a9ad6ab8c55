"""course.graph: the layout of a small computation graph (compute) and its drawing (display)."""
from __future__ import annotations

import random
import subprocess
import sys

import pytest

from course.graph import BOX_HEIGHT, BOX_WIDTH, boxes, draw_graph, edge_paths, edges, layout

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
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = draw_graph(SEED_GRAPH, {"a": 1.5, "g": 3.953}, {"a": 5.994}, title="t")
    try:
        texts = [t.get_text() for t in ax.texts]
        assert len(texts) == 7  # one label per node
        assert any("g = e**f" in t and "value 3.953" in t for t in texts)
        assert any(t.startswith("a\n") and "grad 5.994" in t for t in texts)
        assert sum(isinstance(p, FancyBboxPatch) for p in ax.patches) == 7  # one box per node
        arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
        assert len(arrows) == 8  # one arrow per use
        assert ax.get_title() == "t"
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------------------------
# edges never pass through a box they do not connect


def _segment_hits_box(p, q, box) -> bool:
    """Whether the segment p-q passes through the inside of box = (x_min, y_min, x_max, y_max)
    (Liang-Barsky clipping; touching the border does not count)."""
    (x0, y0), (x1, y1) = p, q
    lo, hi = 0.0, 1.0
    for delta, start, low, high in ((x1 - x0, x0, box[0], box[2]), (y1 - y0, y0, box[1], box[3])):
        if delta == 0:
            if not low < start < high:
                return False
            continue
        t0, t1 = (low - start) / delta, (high - start) / delta
        lo, hi = max(lo, min(t0, t1)), min(hi, max(t0, t1))
    return lo < hi


def _spans_box(p, q, box) -> bool:
    """Whether the rectangle spanned by p and q overlaps the inside of box (a curve with horizontal
    ends from p to q stays inside that rectangle)."""
    return (min(p[0], q[0]) < box[2] and max(p[0], q[0]) > box[0]
            and min(p[1], q[1]) < box[3] and max(p[1], q[1]) > box[1])


def _foreign_boxes_crossed(nodes) -> list[str]:
    box = boxes(nodes)
    crossed = []
    for src, dst, points in edge_paths(nodes):
        for p, q in zip(points, points[1:]):
            for name, b in box.items():
                if name not in (src, dst) and (_segment_hits_box(p, q, b) or _spans_box(p, q, b)):
                    crossed.append(f"{src} -> {dst} passes through the box of {name} between {p} and {q}")
    return crossed


def test_the_check_sees_the_old_drawing_of_a_to_f_through_d():
    """A straight arrow from a's box to f's box, as the first version drew it, crosses d's box."""
    box, pos = boxes(SEED_GRAPH), layout(SEED_GRAPH)
    straight = ((pos["a"][0] + BOX_WIDTH / 2, pos["a"][1]), (pos["f"][0] - BOX_WIDTH / 2, pos["f"][1]))
    assert _segment_hits_box(*straight, box["d"])
    assert not _segment_hits_box((0.0, 2.0), (3.0, 2.0), box["d"])  # far above
    assert not _segment_hits_box(box["d"][:2], (box["d"][2], box["d"][1]), box["d"])  # along its border


def test_no_edge_of_the_seed_graph_passes_through_a_box_it_does_not_connect():
    assert _foreign_boxes_crossed(SEED_GRAPH) == []
    paths = {(src, dst): points for src, dst, points in edge_paths(SEED_GRAPH)}
    assert len(paths[("a", "f")]) == 4  # a -> f skips d's column, through a lane above d's box
    assert min(y for _, y in paths[("a", "f")][1:3]) >= boxes(SEED_GRAPH)["d"][3]


def _random_graph(rng: random.Random) -> list:
    nodes = [(f"x{k}", "", ()) for k in range(rng.randint(1, 4))]
    for k in range(rng.randint(1, 8)):
        inputs = tuple(rng.choice(nodes)[0] for _ in range(rng.randint(1, 3)))
        nodes.append((f"v{k}", rng.choice(["+", "*", "**", "tanh"]), inputs))
    return nodes


@pytest.mark.parametrize("seed", range(40))
def test_edges_of_random_graphs_avoid_foreign_boxes_and_run_left_to_right(seed):
    nodes = _random_graph(random.Random(seed))
    assert _foreign_boxes_crossed(nodes) == []
    box = boxes(nodes)
    for src, dst, points in edge_paths(nodes):
        assert points[0][0] == pytest.approx(box[src][2]) and box[src][1] < points[0][1] < box[src][3]
        assert points[-1][0] == pytest.approx(box[dst][0]) and box[dst][1] < points[-1][1] < box[dst][3]
        assert all(p[0] < q[0] for p, q in zip(points, points[1:])), (src, dst, points)


def test_each_drawn_piece_stays_in_the_rectangle_of_its_two_points():
    """draw_graph draws a path as cubic pieces whose control points lie in the rectangle spanned by
    the piece's two points, so the curve (inside the hull of its control points) stays there too."""
    from course.graph import _curve

    for _, _, points in edge_paths(SEED_GRAPH):
        vertices = [tuple(v) for v in _curve(points).vertices]
        assert vertices[0::3] == [tuple(p) for p in points]
        for k, (p, q) in enumerate(zip(points, points[1:])):
            for x, y in vertices[3 * k:3 * k + 4]:
                assert min(p[0], q[0]) <= x <= max(p[0], q[0]) and min(p[1], q[1]) <= y <= max(p[1], q[1])


def test_boxes_are_the_fixed_size_around_the_layout():
    box, pos = boxes(SEED_GRAPH), layout(SEED_GRAPH)
    for name, (x, y) in pos.items():
        assert box[name] == pytest.approx((x - BOX_WIDTH / 2, y - BOX_HEIGHT / 2, x + BOX_WIDTH / 2, y + BOX_HEIGHT / 2))
    assert BOX_WIDTH < 1 and BOX_HEIGHT < 1  # columns and rows are 1 apart: boxes never touch


def test_importing_course_graph_stays_light():
    code = "import sys, course.graph; print('matplotlib' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
