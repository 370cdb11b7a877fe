"""Messages on the `control` channel: small JSON objects checked against a schema.

Every message is a JSON object with a `t` (type) and only the fields its type allows, each
of the right type, at most `MAX_CONTROL_BYTES` long and nested at most `MAX_CONTROL_DEPTH`
deep (both checked before the JSON is parsed). Anything else is refused with
`ControlError` (the receiver drops and logs it; it never crashes the peer). Other parts
of the app add their own message types with `register`.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import AssessIQError
from ..core.jsonlimits import loads_bounded

__all__ = ["MAX_CONTROL_BYTES", "SCHEMA", "ControlError", "decode", "encode", "register"]

MAX_CONTROL_BYTES = 4096
MAX_CONTROL_DEPTH = 2
"""A message is one object (depth 1); one more level is room for a registered field
that holds a list. Deeper is refused before the JSON is parsed."""

# type -> {field: python type}; every listed field is required, no others are allowed.
SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "ping": {"id": int, "at": (int, float)},
    "pong": {"id": int},
    "bye": {"reason": str},
    "phase": {"phase": str},
}


class ControlError(AssessIQError):
    """A control message that does not fit the schema."""


def register(kind: str, fields: dict[str, type | tuple[type, ...]]) -> None:
    """Allow a new control message type (e.g. by the code-run or call layers)."""
    if kind in SCHEMA and SCHEMA[kind] != fields:
        raise ValueError(f"control message type {kind!r} is already registered differently")
    SCHEMA[kind] = dict(fields)


def _check(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ControlError("a control message is not a JSON object")
    kind = obj.get("t")
    if not isinstance(kind, str) or kind not in SCHEMA:
        raise ControlError(f"unknown control message type {str(kind)[:40]!r}")
    fields = SCHEMA[kind]
    extra = set(obj) - set(fields) - {"t"}
    if extra:
        raise ControlError(f"control message {kind!r} has unexpected fields {sorted(extra)[:5]}")
    for name, typ in fields.items():
        value = obj.get(name)
        if value is None or isinstance(value, bool) or not isinstance(value, typ):
            raise ControlError(f"control message {kind!r}: field {name!r} missing or wrong type")
    return obj


def decode(raw: bytes) -> dict[str, Any]:
    """Parse and check one control message; `ControlError` with the reason otherwise."""
    try:
        obj = loads_bounded(raw, max_bytes=MAX_CONTROL_BYTES, max_depth=MAX_CONTROL_DEPTH)
    except ValueError as exc:
        raise ControlError(f"a control message is unreadable: {exc}") from None
    return _check(obj)


def encode(kind: str, **fields: Any) -> bytes:
    """Build a control message, checked against the same schema."""
    raw = json.dumps(_check({"t": kind, **fields}), separators=(",", ":"),
                     ensure_ascii=False).encode("utf-8")  # (its size: the text's UTF-8)
    if len(raw) > MAX_CONTROL_BYTES:
        raise ControlError(f"control message {kind!r} is too large to send")
    return raw
