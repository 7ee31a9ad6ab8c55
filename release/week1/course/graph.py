"""Drawing a small computation graph, e.g. d = b*c, e = a + d, f = d*a, g = e**f.

A graph is described as plain data, one ``(name, op, inputs)`` triple per node, in
an order where every node comes after its inputs (the order you would write the
forward pass in)::

    nodes = [("a", "", ()), ("b", "", ()), ("c", "", ()),
             ("d", "*", ("b", "c")), ("e", "+", ("a", "d")),
             ("f", "*", ("d", "a")), ("g", "**", ("e", "f"))]

:func:`layout`, :func:`boxes`, :func:`edges` and :func:`edge_paths` compute (no
plotting); :func:`draw_graph` draws exactly that geometry, with the values and
gradients you pass in. This module computes no values or gradients itself.
matplotlib is imported inside :func:`draw_graph` only, so importing this module
stays light.

Geometry, in data units: node k of a column sits at x = its depth, y spread by 1
within the column; its box is ``BOX_WIDTH`` × ``BOX_HEIGHT`` around that centre.
An edge leaves its source's box on the right and enters its target's box on the
left. An edge that skips columns (a → f above skips the column of d) runs through
a free horizontal *lane* in every column it crosses, above, below or between that
column's boxes, so it never passes through a box it does not connect.
"""
from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["BOX_WIDTH", "BOX_HEIGHT", "edges", "layout", "boxes", "edge_paths", "draw_graph"]

Node = tuple  # (name: str, op: str, inputs: tuple[str, ...])
Point = tuple  # (x: float, y: float)

#: size of a node's box in data units (columns are 1 apart, and so are the nodes of a column)
BOX_WIDTH = 0.6
BOX_HEIGHT = 0.44
_CLEARANCE = 0.08  # the least distance between an edge's lane and a box it passes
_PORT_SPREAD = 0.5  # several edges at one side of a box use the middle half of that side


def _check(nodes: Sequence[Node]) -> None:
    seen: set[str] = set()
    for node in nodes:
        if len(node) != 3:
            raise ValueError(f"a node is (name, op, inputs), got {node!r}")
        name, _, inputs = node
        if name in seen:
            raise ValueError(f"node {name!r} appears twice")
        missing = [i for i in inputs if i not in seen]
        if missing:
            raise ValueError(f"node {name!r} uses {missing} before they are defined; "
                             "list every node after its inputs")
        seen.add(name)


def edges(nodes: Sequence[Node]) -> list[tuple[str, str]]:
    """Every (input, node) pair, once per use: ("a", "a", ...) for a node that uses a twice."""
    _check(nodes)
    return [(src, name) for name, _, inputs in nodes for src in inputs]


def layout(nodes: Sequence[Node]) -> dict[str, tuple[float, float]]:
    """Centre (x, y) of each node's box: x = its depth (longest path from an input node), y spreads each column.

    Input nodes (no inputs) are at x = 0; a node is one column right of its deepest input.
    Within a column, nodes keep the order in which they are listed, 1 apart, centred around y = 0.
    """
    _check(nodes)
    depth: dict[str, int] = {}
    for name, _, inputs in nodes:
        depth[name] = 1 + max((depth[i] for i in inputs), default=-1)
    columns: dict[int, list[str]] = {}
    for name, _, _ in nodes:
        columns.setdefault(depth[name], []).append(name)
    pos: dict[str, tuple[float, float]] = {}
    for x, names in columns.items():
        for k, name in enumerate(names):
            pos[name] = (float(x), (len(names) - 1) / 2 - k)
    return pos


def boxes(nodes: Sequence[Node]) -> dict[str, tuple[float, float, float, float]]:
    """The box of each node as (x_min, y_min, x_max, y_max), BOX_WIDTH × BOX_HEIGHT around its centre."""
    return {name: (x - BOX_WIDTH / 2, y - BOX_HEIGHT / 2, x + BOX_WIDTH / 2, y + BOX_HEIGHT / 2)
            for name, (x, y) in layout(nodes).items()}


def _ports(count: int) -> list[float]:
    """y offsets of `count` edges sharing one side of a box, top first."""
    if count == 1:
        return [0.0]
    half = _PORT_SPREAD * BOX_HEIGHT / 2
    return [half - 2 * half * k / (count - 1) for k in range(count)]


def _lane(column: list[float], y_wanted: float) -> float:
    """The free y closest to y_wanted in a column whose boxes are centred at the given ys."""
    reach = BOX_HEIGHT / 2 + _CLEARANCE
    blocked = sorted((y - reach, y + reach) for y in column)
    if all(not (lo < y_wanted < hi) for lo, hi in blocked):
        return y_wanted
    # free spots next to each blocked interval; an ending that lands inside another interval is not free
    candidates = [v for lo, hi in blocked for v in (lo, hi)
                  if all(not (l2 < v < h2) for l2, h2 in blocked)]
    return min(candidates, key=lambda v: (abs(v - y_wanted), -v))


def edge_paths(nodes: Sequence[Node]) -> list[tuple[str, str, list[tuple[float, float]]]]:
    """(input, node, points) for every edge, in the order of :func:`edges`.

    points: the (x, y) corners the edge passes through, left to right. The first is on the
    right side of the input's box, the last on the left side of the node's box; an edge that
    skips columns adds two points per skipped column, the ends of a horizontal lane past that
    column's boxes (at least a clearance away from them). :func:`draw_graph` draws each piece
    between consecutive points as a curve with horizontal ends, which stays inside the rectangle
    spanned by the two points; no such rectangle overlaps a box the edge does not connect.
    """
    pos = layout(nodes)
    pairs = edges(nodes)
    half_w = BOX_WIDTH / 2
    columns: dict[float, list[float]] = {}
    for x, y in pos.values():
        columns.setdefault(x, []).append(y)

    # where each edge leaves its input: outgoing edges ordered by the height of their target
    outgoing: dict[str, list[int]] = {}
    for k, (src, dst) in enumerate(pairs):
        outgoing.setdefault(src, []).append(k)
    start: dict[int, Point] = {}
    for src, ks in outgoing.items():
        x, y = pos[src]
        ordered = sorted(ks, key=lambda k: (-pos[pairs[k][1]][1], k))
        for k, dy in zip(ordered, _ports(len(ordered))):
            start[k] = (x + half_w, y + dy)

    # lanes through the skipped columns, aimed along the straight line between the two centres
    middle: dict[int, list[Point]] = {}
    for k, (src, dst) in enumerate(pairs):
        (x0, y0), (x1, y1) = start[k], pos[dst]
        points: list[Point] = []
        for column in range(int(pos[src][0]) + 1, int(x1)):
            y_line = y0 + (y1 - y0) * (column - x0) / (x1 - half_w - x0)
            y_lane = _lane(columns[float(column)], y_line)
            points += [(column - half_w - _CLEARANCE, y_lane), (column + half_w + _CLEARANCE, y_lane)]
        middle[k] = points

    # where each edge enters its node: incoming edges ordered by the height they arrive from
    incoming: dict[str, list[int]] = {}
    for k, (_, dst) in enumerate(pairs):
        incoming.setdefault(dst, []).append(k)
    end: dict[int, Point] = {}
    for dst, ks in incoming.items():
        x, y = pos[dst]
        ordered = sorted(ks, key=lambda k: (-(middle[k] or [start[k]])[-1][1], k))
        for k, dy in zip(ordered, _ports(len(ordered))):
            end[k] = (x - half_w, y + dy)

    return [(src, dst, [start[k], *middle[k], end[k]]) for k, (src, dst) in enumerate(pairs)]


def _number(v: float) -> str:
    return f"{v:.4g}"


def _curve(points: list[Point]):
    """A matplotlib Path through the points: each piece a cubic with horizontal ends."""
    from matplotlib.path import Path

    verts, codes = [points[0]], [Path.MOVETO]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        mid = (x0 + x1) / 2
        verts += [(mid, y0), (mid, y1), (x1, y1)]
        codes += [Path.CURVE4] * 3
    return Path(verts, codes)


def draw_graph(
    nodes: Sequence[Node],
    values: Mapping[str, float] | None = None,
    grads: Mapping[str, float] | None = None,
    *,
    title: str = "",
    ax=None,
):
    """Draw the graph left to right: one box per node (name, op, value, grad), one arrow per use.

    values, grads: optional numbers per node name (e.g. from a forward and a backward pass);
    a node missing from them is drawn without that line. The boxes and arrows are those of
    :func:`boxes` and :func:`edge_paths`. Returns (fig, ax).
    """
    import matplotlib.pyplot as plt  # lazily: `import course.graph` stays light
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    pos = layout(nodes)
    paths = edge_paths(nodes)
    values = values or {}
    grads = grads or {}
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()] + [y for _, _, points in paths for _, y in points]
    x_lim = (min(xs) - BOX_WIDTH / 2 - 0.15, max(xs) + BOX_WIDTH / 2 + 0.15)
    y_lim = (min(ys) - BOX_HEIGHT / 2 - 0.1, max(ys) + BOX_HEIGHT / 2 + 0.1)
    if ax is None:  # a fixed scale, so that three lines of text fit in every box
        fig, ax = plt.subplots(figsize=(2.2 * (x_lim[1] - x_lim[0]), 1.6 * (y_lim[1] - y_lim[0]) + 0.5))
    else:
        fig = ax.figure
    for _, _, points in paths:
        ax.add_patch(FancyArrowPatch(path=_curve(points), arrowstyle="-|>", mutation_scale=11, color="0.4",
                                     lw=1.2, shrinkA=0, shrinkB=0))
    box = boxes(nodes)
    for name, op, inputs in nodes:
        x0, y0, x1, y1 = box[name]
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0,rounding_size=0.05",
                                    fc="#dbe9f6" if inputs else "#fdebd0", ec="0.3", lw=1.0, zorder=2))
        head = f"{name} = {op.join(inputs)}" if inputs and op in {"+", "-", "*", "/", "**"} else (
            f"{name} = {op}({', '.join(inputs)})" if inputs else name)
        lines = [head]
        if name in values:
            lines.append(f"value {_number(values[name])}")
        if name in grads:
            lines.append(f"grad {_number(grads[name])}")
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, "\n".join(lines), ha="center", va="center", fontsize=9, zorder=3)
    ax.set_xlim(*x_lim)
    ax.set_ylim(*y_lim)
    ax.axis("off")
    ax.set_title(title or "computation graph (inputs left, output right)")
    fig.tight_layout()
    return fig, ax
