"""Students with known mistakes, handed in to both grading paths, with the points each must get.

carol's notebook 01 has two mistakes that break the main behaviour of three exercises (the ones
column last, which also breaks perceptron_forward, and an sse that averages) and one that breaks
only an edge case (a linear_forward that returns zeros whenever x has no entries, which is wrong
for D = 0, where the output is b). Both paths must give her the same points per test cell:
nothing for a broken main behaviour, the main group's share for an edge-case slip.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from notebooks import SOURCE, is_graded

CAROL_NOTEBOOK = "01_tensors_and_shapes.ipynb"  # the only notebook carol hands in

CAROL_EDITS = {
    "add_bias_column": ("np.concatenate([ones, X], axis=1)", "np.concatenate([X, ones], axis=1)"),
    "sse_mse": ("return float(np.sum((y_true - y_pred) ** 2))", "return float(np.mean((y_true - y_pred) ** 2))"),
    "linear_forward": ("return x @ W.T + b",
                       "if x.size == 0:\n        return np.zeros(x.shape[:-1] + (W.shape[0],))\n"
                       "    return x @ W.T + b"),
}

#: grade_id -> the share of its points carol earns (1 for the cells her mistakes leave alone)
CAROL_SHARE = {
    "test_add_bias_column": 0.0,
    "test_perceptron_forward": 0.0,
    "test_sse": 0.0,
    "test_linear_forward": 0.8,  # the edge cases (20 %) fail, the main behaviour passes
}


def graded_points(notebook: str) -> dict[str, float]:
    """grade_id -> points of each test cell of a source notebook."""
    return {cell.metadata["nbgrader"]["grade_id"]: float(cell.metadata["nbgrader"]["points"])
            for cell in nbformat.read(SOURCE / notebook, as_version=4).cells if is_graded(cell)}


def carol_points() -> dict[str, float]:
    """grade_id -> the points carol must get in each test cell of her notebook."""
    return {gid: round(pts * CAROL_SHARE.get(gid, 1.0), 2) for gid, pts in graded_points(CAROL_NOTEBOOK).items()}


def write_carol(folder: Path) -> None:
    folder.mkdir(parents=True)
    nb = nbformat.read(SOURCE / CAROL_NOTEBOOK, as_version=4)
    for cell in nb.cells:
        edit = CAROL_EDITS.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        if edit:
            assert cell.source.count(edit[0]) == 1, f"the solution changed; update CAROL_EDITS: {edit[0]!r}"
            cell.source = cell.source.replace(*edit)
    nbformat.write(nb, folder / CAROL_NOTEBOOK)
