"""Small data sets for the notebooks (NumPy only).

Every function returns fresh arrays, so a notebook that edits them in place
cannot spoil the next call. Nothing here touches global random state: the
random helpers take an ``np.random.Generator``.

Shapes use the course alphabet: N samples, D features, H outputs.
Weights follow PyTorch's layout, W of shape (out, in).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PerceptronBatch", "perceptron_batch", "make_regression", "make_sine"]


@dataclass(frozen=True)
class PerceptronBatch:
    """The 7-sample batch of the batched-perceptron example.

    X:      (N, D) = (7, 3)  inputs, one sample per row
    W:      (1, D + 1) = (1, 4)  weights of one output neuron; W[0, 0] is the bias,
            W[0, 1:] are the weights of the three features
    y_true: (N, 1) = (7, 1)  binary targets
    """

    X: np.ndarray
    W: np.ndarray
    y_true: np.ndarray


def perceptron_batch() -> PerceptronBatch:
    """The batched-perceptron example: 7 samples with 3 features, one ReLU neuron.

    The numbers are chosen so that every product is exact in binary floating
    point (halves and quarters) and so that the ReLU matters: two of the seven
    pre-activations are negative.

    Returns a PerceptronBatch with X (7, 3), W (1, 4) and y_true (7, 1), all float64.
    """
    X = np.array(
        [
            [1.0, 2.0, 0.5],
            [0.0, 1.0, 1.5],
            [2.0, -1.0, 0.0],
            [-1.0, 0.5, 2.0],
            [0.5, 0.5, 0.5],
            [3.0, 0.0, -1.0],
            [-2.0, -1.5, 1.0],
        ]
    )
    # bias, then one weight per feature
    W = np.array([[0.5, 1.0, -0.5, 0.25]])
    y_true = np.array([[1.0], [0.0], [1.0], [0.0], [1.0], [1.0], [0.0]])
    return PerceptronBatch(X=X, W=W, y_true=y_true)


def make_regression(
    n: int,
    d: int,
    rng: np.random.Generator,
    *,
    h: int = 1,
    noise: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random linear-regression data set y = X W^T + b + noise.

    Args:
        n: number of samples N.
        d: number of features D.
        rng: the random generator to draw from (e.g. ``np.random.default_rng(0)``).
        h: number of outputs H.
        noise: standard deviation of the Gaussian noise added to y.

    Returns:
        X: (N, D) standard-normal inputs,
        y: (N, H) targets,
        W: (H, D) the true weights (PyTorch layout: out, in),
        b: (H,) the true bias.
    """
    if n < 0 or d < 0 or h < 0:
        raise ValueError(f"sizes must be non-negative, got n={n}, d={d}, h={h}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((h, d))
    b = rng.standard_normal(h)
    y = X @ W.T + b + noise * rng.standard_normal((n, h))
    return X, y, W, b


def make_sine(
    n: int,
    rng: np.random.Generator,
    *,
    noise: float = 0.1,
    low: float = -3.0,
    high: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A small non-linear regression problem: y = sin(x) + noise, one feature, one output.

    A straight line cannot fit it; a network with one hidden ReLU layer can.

    Args:
        n: number of samples N.
        rng: the random generator to draw from (e.g. ``np.random.default_rng(0)``).
        noise: standard deviation of the Gaussian noise added to y.
        low, high: x is drawn uniformly from [low, high).

    Returns:
        X: (N, 1) inputs, sorted along the x axis (handy for plotting),
        y: (N, 1) targets.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    X = np.sort(rng.uniform(low, high, size=(n, 1)), axis=0)
    y = np.sin(X) + noise * rng.standard_normal((n, 1))
    return X, y
