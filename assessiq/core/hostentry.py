"""Host-signed entries in a session file's host-only table — a restart of the host's app
(`core.resume`), a device the interviewer admitted (`core.admission`): each row's value is
`{"signed": <body>.<signature>}`, the body a canonical JSON object `{"v": 1, "kind",
"session", "at", ...}` signed with the host's key under the entry's own domain (a signature
valid for nothing else). Writing and opening them is here, once; each module checks its own
fields."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .encoding import b64e, canonical_json, pack_signed, unpack_signed
from .errors import AssessIQError
from .identity import verify_signature

if TYPE_CHECKING:
    from .identity import Identity
    from .store import SessionStore

__all__ = ["Opened", "finite", "open_entry", "sign_entry"]


def finite(value: Any) -> float | None:
    """`value` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def sign_entry(store: SessionStore, identity: Identity, *, domain: str, kind: str, at: float,
               fields: dict[str, Any], what: str) -> tuple[dict[str, Any], str]:
    """The body `{"v": 1, "kind", "session", "at", **fields}` and its signed form, made with
    `identity` — which must be the session's host key (`AssessIQError` "only the session's
    own host key can `what`" otherwise). Nothing is written."""
    meta = store.meta()
    if meta.get("host_key") != b64e(identity.public_key):
        raise AssessIQError(f"only the session's own host key can {what}")
    body = {"v": 1, "kind": kind, "session": str(meta.get("session", "")), "at": at, **fields}
    raw = canonical_json(body)
    return body, pack_signed(raw, identity.sign(domain, raw)).decode("utf-8")


@dataclass(frozen=True)
class Opened:
    """A host-only row opened as a signed entry: `t` the row's time, `data` the signed body
    (None: the row is not a signed entry at all), `signed` whether the host's signature
    checks, `problem` the first of: the signature, the kind, the session, the time (None:
    all check; the entry's own fields are for its module to check)."""

    t: float
    data: dict[str, Any] | None
    signed: bool
    problem: str | None


def open_entry(entry: dict[str, Any], *, domain: str, kind: str, session: str,
               host_key: bytes | None, what: str) -> Opened:
    """Open a host-only row (`{"kind", "t", "value"}`, as `SessionStore.private` lists it)
    as a signed entry of `kind` under `domain`; `what` names it in problems ("not a
    signed restart", "not a restart entry")."""
    t = finite(entry.get("t")) or 0.0
    value = entry.get("value")
    signed = value.get("signed") if isinstance(value, dict) else None
    try:
        if not isinstance(signed, str):
            raise ValueError
        body, signature = unpack_signed(signed.encode("utf-8"))
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError
    except (ValueError, UnicodeError, RecursionError):
        return Opened(t, None, False, f"the entry is not a signed {what}")
    ok = host_key is not None and verify_signature(host_key, signature, domain, body)
    at = finite(data.get("at"))
    problem = None
    if not ok:
        problem = "its signature is not the host's"
    elif data.get("v") != 1 or data.get("kind") != kind:
        problem = f"not {'an' if what[:1] in 'aeiou' else 'a'} {what} entry"
    elif data.get("session") != session:
        problem = "it belongs to another session"
    elif at is None or at != t:
        problem = "its time differs from the signed one"
    return Opened(t, data, ok, problem)
