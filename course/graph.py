"""Drawing a small computation graph, e.g. d = b*c, e = a + d, f = d*a, g = e**f.

A graph is described as plain data, one ``(name, op, inputs)`` triple per node, in
an order where every node comes after its inputs (the order you would write the
forward pass in)::

    nodes = [("a", "", ()), ("b", "", ()), ("c", "", ()),
             ("d", "*", ("b", "c")), ("e", "+", ("a", "d")),
             ("f", "*", ("d", "a")), ("g", "**", ("e", "f"))]

:func:`layout` and :func:`edges` compute (no plotting); :func:`draw_graph` draws,
with the values and gradients you pass in. This module computes no values or
gradients itself. matplotlib is imported inside :func:`draw_graph` only, so
importing this module stays light.
"""
from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["edges", "layout", "draw_graph"]

Node = tuple  # (name: str, op: str, inputs: tuple[str, ...])


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
    """Position of each node: x = its depth (longest path from an input node), y spreads each column.

    Input nodes (no inputs) are at x = 0; a node is one column right of its deepest input.
    Within a column, nodes keep the order in which they are listed, centred around y = 0.
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


def _number(v: float) -> str:
    return f"{v:.4g}"


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
    a node missing from them is drawn without that line. Returns (fig, ax).
    """
    import matplotlib.pyplot as plt  # lazily: `import course.graph` stays light

    pos = layout(nodes)
    values = values or {}
    grads = grads or {}
    if ax is None:
        width = 2.2 * (max(x for x, _ in pos.values()) + 1) + 1.0
        height = 1.6 * (max(abs(y) for _, y in pos.values()) * 2 + 1) + 1.0
        fig, ax = plt.subplots(figsize=(width, height))
    else:
        fig = ax.figure
    for src, dst in edges(nodes):
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        ax.annotate("", xy=(x1 - 0.28, y1), xytext=(x0 + 0.28, y0),
                    arrowprops=dict(arrowstyle="->", color="0.45", lw=1.2, shrinkA=0, shrinkB=0))
    for name, op, inputs in nodes:
        x, y = pos[name]
        head = f"{name} = {op.join(inputs)}" if inputs and op in {"+", "-", "*", "/", "**"} else (
            f"{name} = {op}({', '.join(inputs)})" if inputs else name)
        lines = [head]
        if name in values:
            lines.append(f"value {_number(values[name])}")
        if name in grads:
            lines.append(f"grad {_number(grads[name])}")
        ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.4", fc="#dbe9f6" if inputs else "#fdebd0", ec="0.3"))
    xs = [x for x, _ in pos.values()]
    ys = [y for _, y in pos.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.axis("off")
    ax.set_title(title or "computation graph (inputs left, output right)")
    fig.tight_layout()
    return fig, ax
