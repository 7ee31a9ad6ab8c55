"""Plain data to JSON text and back, with nothing that can run code when read.

The hardened grader sends hidden inputs (:class:`Case`) into the student's
process and brings :class:`Outcome` objects back as JSON. Reading is strict:
only the shapes of data written here are accepted, arrays only with numeric
dtypes and sizes that match their bytes, nesting and size bounded. Anything
else raises :class:`WireError`, which the judge scores as a malformed result.
"""
from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np

from .core import Case, Outcome

#: dtypes an array may have on the wire (numbers only: no objects, no strings)
DTYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float16", "float32", "float64"]
)
MAX_DEPTH = 32
MAX_ARRAY_BYTES = 64 * 2**20
#: the most JSON text and the most values (list items, dict entries) one reading accepts
MAX_TEXT = 96 * 2**20
MAX_ITEMS = 200_000
OUTCOME_KINDS = frozenset(["returned", "raised", "unsupported"])


class WireError(ValueError):
    """Data on the wire is not in the expected form."""


def to_wire(x: Any) -> Any:
    """Plain data (as produced by ``plain``) to a JSON-compatible structure."""
    t = type(x)
    if x is None or t is bool or t is int or t is str:
        return x
    if t is float:
        return x if math.isfinite(x) else {"float": repr(x)}
    if t is list:
        return [to_wire(v) for v in x]
    if t is tuple:
        return {"tuple": [to_wire(v) for v in x]}
    if t is dict:
        if any(type(k) is not str for k in x):
            raise WireError("dict keys must be strings")
        return {"dict": [[k, to_wire(v)] for k, v in x.items()]}
    if t is np.ndarray:
        a = np.array(x, order="C", copy=True)  # (ascontiguousarray would turn 0-d into 1-d)
        if a.dtype.name not in DTYPES:
            raise WireError(f"arrays of dtype {a.dtype} cannot be sent")
        return {"array": base64.b64encode(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).decode(),
                "dtype": a.dtype.name, "shape": list(a.shape)}
    raise WireError(f"{t.__name__} is not plain data")


def from_wire(x: Any, depth: int = 0, budget: list | None = None) -> Any:
    """The inverse of :func:`to_wire`, refusing anything it would not write."""
    if budget is None:
        budget = [MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0:
        raise WireError(f"more than {MAX_ITEMS} values")
    if depth > MAX_DEPTH:
        raise WireError("data nested too deeply")
    t = type(x)
    if x is None or t is bool or t is int or t is str:
        return x
    if t is float:
        return x
    if t is list:
        return [from_wire(v, depth + 1, budget) for v in x]
    if t is not dict or len(x) not in (1, 3):
        raise WireError(f"unexpected {t.__name__} on the wire")
    if set(x) == {"float"}:
        if x["float"] not in ("nan", "inf", "-inf"):
            raise WireError(f"unexpected float {x['float']!r}")
        return float(x["float"])
    if set(x) == {"tuple"} and type(x["tuple"]) is list:
        return tuple(from_wire(v, depth + 1, budget) for v in x["tuple"])
    if set(x) == {"dict"} and type(x["dict"]) is list:
        out = {}
        for item in x["dict"]:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not str:
                raise WireError("malformed dict entry")
            out[item[0]] = from_wire(item[1], depth + 1, budget)
        return out
    if set(x) == {"array", "dtype", "shape"}:
        return _array(x)
    raise WireError(f"unexpected keys {sorted(map(str, x))}")


def _array(x: dict) -> np.ndarray:
    dtype, shape, data = x["dtype"], x["shape"], x["array"]
    if type(dtype) is not str or dtype not in DTYPES:
        raise WireError(f"arrays of dtype {dtype!r} are not accepted")
    if type(shape) is not list or len(shape) > MAX_DEPTH or any(type(s) is not int or s < 0 for s in shape):
        raise WireError(f"malformed shape {shape!r}")
    if type(data) is not str or len(data) > MAX_ARRAY_BYTES * 4 // 3 + 4:
        raise WireError("malformed or oversized array data")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise WireError(f"array data is not base64: {exc}") from None
    dt = np.dtype(dtype).newbyteorder("<")
    if len(raw) != math.prod(shape) * dt.itemsize:
        raise WireError(f"array of shape {tuple(shape)} and dtype {dtype} cannot hold {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dt).astype(np.dtype(dtype)).reshape(shape)


def dumps(x: Any) -> str:
    """Plain data to JSON text."""
    return json.dumps(to_wire(x), allow_nan=False, separators=(",", ":"))


def loads(text: str) -> Any:
    """JSON text to plain data; raises WireError on anything unexpected."""
    if type(text) is not str:
        raise WireError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise WireError(f"more than {MAX_TEXT} characters")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"not valid JSON: {str(exc)[:200]}") from None
    return from_wire(data)


def _refuse_constant(name: str) -> Any:
    raise WireError(f"bare {name} is not accepted on the wire")


def case_to_plain(case: Case) -> dict:
    return {"label": case.label, "args": tuple(case.args), "kwargs": dict(case.kwargs)}


def case_from_plain(x: Any) -> Case:
    if type(x) is not dict or set(x) != {"label", "args", "kwargs"}:
        raise WireError("malformed case")
    if type(x["label"]) is not str or type(x["args"]) is not tuple or type(x["kwargs"]) is not dict:
        raise WireError("malformed case")
    return Case(x["label"], x["args"], x["kwargs"])


def outcome_to_plain(outcome: Outcome) -> dict:
    return {"kind": outcome.kind, "value": outcome.value, "error": outcome.error, "message": outcome.message}


def outcome_from_plain(x: Any) -> Outcome:
    """An Outcome from plain data, refusing anything malformed."""
    if type(x) is not dict or set(x) != {"kind", "value", "error", "message"}:
        raise WireError("malformed outcome")
    if type(x["kind"]) is not str or x["kind"] not in OUTCOME_KINDS or type(x["error"]) is not str or type(x["message"]) is not str:
        raise WireError("malformed outcome")
    return Outcome(x["kind"], x["value"], x["error"], x["message"])
