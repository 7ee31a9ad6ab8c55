"""The 8 × 8 handwritten digits, split and standardized once for the whole course (NumPy only).

The data ship with this package (``course/datasets/digits.csv.gz``, 1,797 images; its source and
licence are in ``course/datasets/README.md``): nothing is downloaded. Each row holds the 64 pixel
intensities of one image, row by row, as integers from 0 (white) to 16 (black), then the label 0 to 9.

:func:`load_digits` gives a fixed split, the same on every machine and every call:

* **stratified**: each class is shuffled on its own by ``np.random.default_rng(SPLIT_SEED)`` and cut
  70 / 15 / 15 % into training, validation and test sets, so every set holds each digit in the same
  proportion as the whole (1,258 / 269 / 270 images);
* **standardized with the training statistics only**: every pixel has the training set's mean
  subtracted and is divided by the training set's standard deviation. The validation and test sets
  never contribute to those numbers (they stand for images the model has never seen). A pixel
  that is (almost) always blank in training — the corners are 0 in every image — has a standard
  deviation of (almost) 0; dividing by it would blow a rare ink dot in a test image up to tens or
  hundreds of standard deviations, so the deviation is floored at ``STD_FLOOR`` = 1 intensity level.

Every call returns fresh arrays (a notebook that edits them cannot spoil the next call); nothing
here touches global random state. Shapes: X (N, D) with D = 64, y (N,) integer labels.
"""
from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DIGITS_FILE", "SPLIT", "SPLIT_SEED", "STD_FLOOR", "Digits", "read_digits", "split_indices",
           "load_digits"]

DIGITS_FILE = Path(__file__).resolve().parent / "datasets" / "digits.csv.gz"
#: shares of every class in the training, validation and test sets
SPLIT = (0.70, 0.15, 0.15)
SPLIT_SEED = 0
#: the smallest standard deviation a pixel is divided by, in intensity levels (0 to 16)
STD_FLOOR = 1.0
N_IMAGES, N_PIXELS, N_CLASSES = 1797, 64, 10


@dataclass(frozen=True)
class Digits:
    """The split digits. X_* are standardized (N, 64) float64 arrays, y_* (N,) int64 labels 0 to 9;
    pixels_* the same images as raw intensities 0 to 16 (for drawing: reshape a row to (8, 8));
    mean, std: (64,) the training statistics used (std after the floor)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    pixels_train: np.ndarray
    pixels_val: np.ndarray
    pixels_test: np.ndarray
    mean: np.ndarray
    std: np.ndarray


@functools.lru_cache(maxsize=1)
def _read() -> tuple:
    if not DIGITS_FILE.is_file():
        raise FileNotFoundError(f"the digits data set is missing: {DIGITS_FILE} should ship with the course "
                                f"package (see course/datasets/README.md)")
    with gzip.open(DIGITS_FILE, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (N_IMAGES, N_PIXELS + 1):
        raise ValueError(f"{DIGITS_FILE.name} holds a table of shape {table.shape}, expected "
                         f"({N_IMAGES}, {N_PIXELS + 1})")
    pixels, labels = table[:, :N_PIXELS].astype(np.float64), table[:, N_PIXELS]
    for a in (pixels, labels):
        a.setflags(write=False)
    return pixels, labels


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images: (pixels (1797, 64) float64 intensities 0 to 16, labels (1797,) int64 0 to 9), new arrays."""
    pixels, labels = _read()
    return pixels.copy(), labels.copy()


def split_indices(labels: np.ndarray, shares: tuple = SPLIT, seed: int = SPLIT_SEED) -> tuple:
    """Stratified split: (train, val, test) index arrays, sorted, that cut every class by ``shares``.

    Each class's indices are permuted by one generator ``np.random.default_rng(seed)`` (classes in
    order 0, 1, ...), then the first round(share_train · n) go to training, the next
    round(share_val · n) to validation and the rest to the test set."""
    labels = np.asarray(labels)
    if len(shares) != 3 or min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-9:
        raise ValueError(f"shares must be three non-negative numbers that sum to 1, got {shares}")
    rng = np.random.default_rng(seed)
    parts: list = [[], [], []]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_train, n_val = round(shares[0] * len(members)), round(shares[1] * len(members))
        parts[0].append(members[:n_train])
        parts[1].append(members[n_train:n_train + n_val])
        parts[2].append(members[n_train + n_val:])
    return tuple(np.sort(np.concatenate(p)) for p in parts)


@functools.lru_cache(maxsize=4)
def _split(shares: tuple, seed: int, floor: float) -> Digits:
    pixels, labels = _read()
    train, val, test = split_indices(labels, shares, seed)
    mean = pixels[train].mean(axis=0)
    std = np.maximum(pixels[train].std(axis=0), floor)
    std[std == 0] = 1.0  # floor = 0 keeps the raw deviations: a constant pixel is then only centred
    parts = {}
    for name, index in (("train", train), ("val", val), ("test", test)):
        parts[f"X_{name}"] = (pixels[index] - mean) / std
        parts[f"y_{name}"] = labels[index]
        parts[f"pixels_{name}"] = pixels[index]
    digits = Digits(**parts, mean=mean, std=std)
    for value in vars(digits).values():
        value.setflags(write=False)
    return digits


def load_digits(*, std_floor: float = STD_FLOOR, shares: tuple = SPLIT, seed: int = SPLIT_SEED) -> Digits:
    """The course's split of the digits (fresh, writable arrays; see the module's docstring).

    Args:
        std_floor: the smallest standard deviation a pixel is divided by (0: none, only pixels of
            zero training variance are left unscaled).
        shares, seed: the split (keep the defaults: the course's numbers are measured on them).
    """
    if std_floor < 0:
        raise ValueError(f"std_floor must be >= 0, got {std_floor}")
    digits = _split(tuple(float(s) for s in shares), int(seed), float(std_floor))
    return Digits(**{name: np.array(value, copy=True) for name, value in vars(digits).items()})
