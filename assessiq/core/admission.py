"""Another device for the same candidate: the interviewer's decision, in the record.

The candidate's device key is pinned when they first join. When that computer is gone (it
died, or its session file was lost) and the candidate joins from another one, the host does
not refuse at once: the handshake holds the request (`HostHandshake.pending`) and the
interviewer decides. A refusal is recorded as a refusal (`SessionStore.append_refusal`,
channel `device`). An admission is a host-only entry of kind `device.admitted` holding a body
signed with the host's key under `ADMISSION_DOMAIN` (never valid as any other signature):

    {v, kind, session, at, from_seq, old_key, new_key, name, clock_offset, asked_at}

From `from_seq` on, the integrity chain is the new device's: it continues the same chain
(the host's offer gives it the head: `handshake.Head`), signed by `new_key`, its signed times
held to its own clock offset (measured, as at a first join, from its join request's time and
when its hello arrived). The metadata's `device_key` stays the first device's, where the chain
begins; `key_schedule` gives the key (and clock offset) for every position, and
`current_device` the one pinned now (what a resumed host pins).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .encoding import b64d, b64e
from .hostentry import finite, open_entry, sign_entry
from .identity import fingerprint

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .identity import Identity
    from .store import SessionStore

__all__ = [
    "ADMISSION_DOMAIN",
    "ADMITTED",
    "Admission",
    "admissions",
    "current_device",
    "key_schedule",
    "record_admission",
]

ADMITTED = "device.admitted"
"""The host-only entry kind of an admitted device."""
ADMISSION_DOMAIN = "admission/v1"
MAX_NAME_CHARS = 200


def record_admission(store: SessionStore, identity: Identity, *, from_seq: int,
                     old_key: bytes, new_key: bytes, name: str | None, clock_offset: float,
                     asked_at: float, now: float | None = None) -> dict[str, Any]:
    """Record in the host's session file that the interviewer admitted `new_key` in place
    of `old_key` from event `from_seq` on: a signed host-only entry, committed with fsync.
    Returns the signed body's fields. `AssessIQError` unless `identity` is the session's
    host key."""
    at = time.time() if now is None else float(now)
    fields, signed = sign_entry(
        store, identity, domain=ADMISSION_DOMAIN, kind=ADMITTED, at=at, what="admit a device",
        fields={"from_seq": int(from_seq), "old_key": b64e(old_key),
                "new_key": b64e(new_key), "name": (name or "")[:MAX_NAME_CHARS],
                "clock_offset": float(clock_offset), "asked_at": float(asked_at)})
    store.add_private(ADMITTED, {"signed": signed}, t=at)
    return fields


@dataclass(frozen=True)
class Admission:
    """One admitted device as the record shows it. `problem` says why the entry cannot be
    trusted (None when it is signed by the host key, for this session, and well formed)."""

    at: float
    from_seq: int
    old_key: bytes
    new_key: bytes
    name: str
    clock_offset: float
    asked_at: float
    problem: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.new_key) if len(self.new_key) == 32 else ""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["old_key"], out["new_key"] = b64e(self.old_key), b64e(self.new_key)
        out["fingerprint"] = self.fingerprint
        return out


def _key(value: Any) -> bytes:
    try:
        key = b64d(value) if isinstance(value, str) else b""
    except ValueError:
        return b""
    return key if len(key) == 32 else b""


def _entry(entry: dict[str, Any], session: str, host_key: bytes | None) -> Admission:
    opened = open_entry(entry, domain=ADMISSION_DOMAIN, kind=ADMITTED, session=session,
                        host_key=host_key, what="admission")
    t, data = opened.t, opened.data
    if data is None:
        return Admission(t, -1, b"", b"", "", 0.0, t, opened.problem)
    seq, at = data.get("from_seq"), finite(data.get("at"))
    offset, asked = finite(data.get("clock_offset")), finite(data.get("asked_at"))
    name = data.get("name")
    found = Admission(
        at if at is not None else t,
        seq if isinstance(seq, int) and not isinstance(seq, bool) else -1,
        _key(data.get("old_key")), _key(data.get("new_key")),
        name[:MAX_NAME_CHARS] if isinstance(name, str) else "",
        offset if offset is not None else 0.0, asked if asked is not None else t)
    problem = opened.problem
    if problem is None and (found.from_seq < 0 or not found.old_key or not found.new_key):
        problem = "its sequence number or a device key is malformed"
    elif problem is None and (offset is None or asked is None):
        problem = "its clock offset or request time is malformed"
    return Admission(found.at, found.from_seq, found.old_key, found.new_key, found.name,
                     found.clock_offset, found.asked_at, problem)


def admissions(private: Iterable[dict[str, Any]], session: str,
               host_key: bytes | None) -> list[Admission]:
    """Every admitted device among the host-only entries `private` (as `SessionStore.private`
    or a record lists them), in the order they were written, each checked."""
    return [_entry(p, session, host_key) for p in private if p.get("kind") == ADMITTED]


def key_schedule(first_key: bytes, found: Iterable[Admission]
                 ) -> tuple[list[tuple[int, bytes, float]], list[str]]:
    """`(from_seq, key, clock_offset)` for each admitted device, in chain order, and the
    errors: an entry that does not check, one that does not replace the device pinned before
    it, or one that starts before the previous one. An admission before any event (from_seq
    0, the previous device signed nothing) replaces the first key."""
    schedule: list[tuple[int, bytes, float]] = []
    errors: list[str] = []
    current, last_seq = first_key, 0
    for a in found:
        where = f"the device admission at {a.at:.3f}"
        if a.problem:
            errors.append(f"{where}: {a.problem}")
            continue
        if not schedule and a.from_seq == 0 and a.new_key == current:
            continue  # admitted before any event: it is the chain's first key already
        if a.old_key != current:
            errors.append(f"{where}: it does not replace the device pinned before it")
            continue
        if a.from_seq < last_seq:
            errors.append(f"{where}: it starts at event {a.from_seq}, before the previous "
                          f"device's events ({last_seq})")
            continue
        schedule.append((a.from_seq, a.new_key, a.clock_offset))
        current, last_seq = a.new_key, a.from_seq
    return schedule, errors


def current_device(store: SessionStore) -> bytes | None:
    """The device pinned now in a host's session file: the last admitted one that checks,
    else the first (`meta['device_key']`); None before any join."""
    meta = store.meta()
    first = _key(meta.get("device_key"))
    host_key = _key(meta.get("host_key")) or None
    schedule, _ = key_schedule(first, admissions(store.private(ADMITTED),
                                                 str(meta.get("session", "")), host_key))
    if schedule:
        return schedule[-1][1]
    return first or None
