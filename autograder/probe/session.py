"""The probe as the hardened grader runs it: one request per exercise, in the student's kernel.

After the student's cells have run, the grader asks the kernel to evaluate,
for each exercise, the user expression (not a cell: input transformers and
cell hooks the student installed do not apply to it)::

    __import__("autograder_probe.session").session.probe_reply(globals(), REQUEST)

where REQUEST is base64 of JSON text (see ``wire``) naming the student's
object, the probe and the hidden cases. The value is base64 of the JSON reply,
which comes back in the kernel's execute reply. What the student's code did to
this process can change or suppress the reply, never the judging: a missing
or malformed reply scores zero.
"""
from __future__ import annotations

import base64
import re
from typing import Any

from . import wire
from .core import Outcome, raised
from . import run_probe

def run_cases(namespace: dict, request: dict) -> dict:
    """Run one exercise's probe on every case; return the reply as plain data."""
    name = request["object"]
    if name not in namespace:
        return {"found": False, "outcomes": []}
    obj = namespace[name]
    outcomes = []
    for item in request["cases"]:
        case = wire.case_from_plain(item)
        try:
            outcome = run_probe(request["probe"], obj, case)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit or anything else the student's code raises
            outcome = raised(exc)
        try:
            wire.to_wire(outcome.value)
        except wire.WireError as exc:
            outcome = Outcome("unsupported", message=f"returned {exc}")
        outcomes.append(wire.outcome_to_plain(outcome))
    return {"found": True, "outcomes": outcomes}


def encode_request(request: dict) -> str:
    return base64.b64encode(wire.dumps(request).encode()).decode()


def probe_reply(namespace: dict, request_b64: str) -> str:
    """Run one exercise's probe; the reply as base64 of JSON (its repr is exactly quoted base64)."""
    reply = run_cases(namespace, wire.loads(base64.b64decode(request_b64).decode()))
    return base64.b64encode(wire.dumps(reply).encode()).decode()


_QUOTED_BASE64 = re.compile(r"'([A-Za-z0-9+/=]*)'")


def read_reply(text: Any) -> dict:
    """The judge's reading of a reply (the repr of :func:`probe_reply`'s value):
    ``{"found": bool, "outcomes": [Outcome, ...]}``. Raises WireError when malformed.
    """
    if type(text) is str and len(text) > wire.MAX_TEXT * 4 // 3 + 8:
        raise wire.WireError("the reply is too large")
    match = _QUOTED_BASE64.fullmatch(text) if type(text) is str else None
    if match is None:
        raise wire.WireError("the reply is not the quoted base64 text the probe writes")
    try:
        data = wire.loads(base64.b64decode(match.group(1), validate=True).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise wire.WireError(f"the reply does not decode: {str(exc)[:200]}") from None
    if type(data) is not dict or set(data) != {"found", "outcomes"} or type(data["found"]) is not bool \
            or type(data["outcomes"]) is not list:
        raise wire.WireError("malformed probe reply")
    return {"found": data["found"], "outcomes": [wire.outcome_from_plain(o) for o in data["outcomes"]]}
