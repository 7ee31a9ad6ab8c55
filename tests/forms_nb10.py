"""Borderline returns of notebook 10's exercises, for tests/test_contracts.py: (convert, must it pass?).

Each form turns the solution's return value into another one the docstring may or may not allow;
the visible cell and the hidden check must agree on every form, and on the expected verdict.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

F64 = torch.float64

#: mlp_forward returns (logits, cache): a tuple or a list; logits float64 (an array or a tensor)
FORWARD_FORMS: dict[str, tuple[Callable, bool]] = {
    "tuple": (tuple, True),
    "list": (list, True),
    "float64 tensor logits": (lambda p: (torch.from_numpy(np.asarray(p[0])), p[1]), True),
    "float32 logits": (lambda p: (np.asarray(p[0], dtype=np.float32), p[1]), False),
    "logits alone": (lambda p: p[0], False),
    "(cache, logits) swapped": (lambda p: (p[1], p[0]), False),
}

#: softmax_cross_entropy returns (loss, dlogits): the loss one float64 number, dlogits a float64 (N, C) array
LOSS_PAIR_FORMS: dict[str, tuple[Callable, bool]] = {
    "tuple": (tuple, True),
    "list": (list, True),
    "np.float64 loss": (lambda p: (np.float64(p[0]), p[1]), True),
    "0-d array loss": (lambda p: (np.array(p[0], dtype=np.float64), p[1]), True),
    "float64 tensors": (lambda p: (torch.tensor(float(p[0]), dtype=F64), torch.from_numpy(np.asarray(p[1]))), True),
    "np.float32 loss": (lambda p: (np.float32(p[0]), p[1]), False),
    "float32 dlogits": (lambda p: (p[0], np.asarray(p[1], dtype=np.float32)), False),
    "loss of shape (1,)": (lambda p: (np.array([p[0]]), p[1]), False),
    "dlogits transposed": (lambda p: (p[0], np.asarray(p[1]).T.copy()), False),
    "(dlogits, loss) swapped": (lambda p: (p[1], p[0]), False),
}

#: predict returns integer labels (N,)
LABEL_FORMS: dict[str, tuple[Callable, bool]] = {
    "int64 array": (lambda a: a, True),
    "int32 array": (lambda a: np.asarray(a, dtype=np.int32), True),
    "uint8 array": (lambda a: np.asarray(a, dtype=np.uint8), True),
    "int64 tensor": (lambda a: torch.from_numpy(np.asarray(a, dtype=np.int64)), True),
    "float64 array": (lambda a: np.asarray(a, dtype=np.float64), False),
    "list": (lambda a: np.asarray(a).tolist(), False),
    "column (N, 1)": (lambda a: np.asarray(a).reshape(-1, 1), False),
    "bool array": (lambda a: np.asarray(a) != 0, False),
}
