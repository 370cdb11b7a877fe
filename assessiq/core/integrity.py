"""The integrity log: signed, numbered, hash-chained event envelopes and the host's receipts.

Each envelope carries the session id, a sequence number, the time, the kind, a severity hint,
the data and the hash of the previous envelope; the candidate's device key signs it. The host
checks each one on arrival (`LogVerifier`), stores it, and answers with a signed `Receipt`.

What a signature proves: which key produced an event and that the log was not altered after.
It cannot prove the candidate's app was unmodified — tampering is designed to show up as gaps
(sequence, chain, heartbeats) and contradictions, not to be impossible.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .encoding import canonical_json, pack_signed, sha256_hex, unpack_signed
from .errors import AssessIQError
from .identity import Identity, verify_signature
from .jsonlimits import loads_bounded

__all__ = [
    "SEVERITIES",
    "Envelope",
    "EventSigner",
    "IntegrityError",
    "LogCheck",
    "LogVerifier",
    "Receipt",
    "check_log",
    "genesis_hash",
    "make_receipt",
]

EVENT_DOMAIN = "event/v1"
RECEIPT_DOMAIN = "receipt/v1"
MAX_ENVELOPE_BYTES = 16 * 1024
MAX_ENVELOPE_DEPTH = 8
"""How deeply an envelope's JSON may nest (the envelope is 1, its `data` 2); deeper is
refused before it is parsed."""
MAX_RECEIPT_BYTES = 2048
SEVERITIES = ("info", "warn", "alert")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class IntegrityError(AssessIQError):
    """An envelope or receipt that cannot be accepted; the message says why."""


def genesis_hash(session: str) -> str:
    """The `prev` of a session's first envelope: binds the chain to the session."""
    return sha256_hex(b"assessiq/genesis\n", session.encode("utf-8"))


@dataclass(frozen=True)
class Envelope:
    """One signed integrity event. `raw` is exactly what was signed and sent."""

    session: str
    seq: int
    t: float
    kind: str
    severity: str
    data: dict[str, Any]
    prev: str
    raw: bytes = field(repr=False)
    body: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    @property
    def hash(self) -> str:
        return sha256_hex(self.raw)

    def encode(self) -> bytes:
        return self.raw

    def signed_by(self, key: bytes) -> bool:
        return verify_signature(key, self.signature, EVENT_DOMAIN, self.body)

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        """Parse (not verify) an envelope; `IntegrityError` when malformed."""
        if not isinstance(raw, bytes | bytearray) or len(raw) > MAX_ENVELOPE_BYTES:
            raise IntegrityError("envelope missing or larger than 16 KiB")
        raw = bytes(raw)
        try:
            body, signature = unpack_signed(raw)
            d = loads_bounded(body, max_bytes=MAX_ENVELOPE_BYTES, max_depth=MAX_ENVELOPE_DEPTH)
        except ValueError as exc:
            raise IntegrityError(f"malformed envelope: {exc}") from exc
        if not isinstance(d, dict) or d.get("v") != 1:
            raise IntegrityError("malformed envelope")
        seq: Any = d.get("seq")
        t: Any = d.get("t")
        ok = (
            isinstance(d.get("session"), str)
            and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0
            and isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
            and isinstance(d.get("kind"), str) and _KIND_RE.match(d["kind"]) is not None
            and d.get("severity") in SEVERITIES
            and isinstance(d.get("data"), dict)
            and isinstance(d.get("prev"), str) and len(d["prev"]) == 64
        )
        if not ok:
            raise IntegrityError("malformed envelope: a field is missing or of the wrong type")
        return cls(
            session=d["session"], seq=seq, t=float(t), kind=d["kind"], severity=d["severity"],
            data=d["data"], prev=d["prev"], raw=raw, body=body, signature=signature,
        )


class EventSigner:
    """The candidate's side: numbers, chains and signs events with the device key."""

    def __init__(
        self, session: str, device: Identity, *, next_seq: int = 0, prev: str | None = None,
        last_t: float = 0.0,
    ) -> None:
        self.session = session
        self.device = device
        self.next_seq = next_seq
        self.prev = prev or genesis_hash(session)
        self.last_t = last_t

    @classmethod
    def resume(cls, session: str, device: Identity, envelopes: Iterable[Envelope]) -> EventSigner:
        """Continue a log after a restart from the envelopes already written."""
        signer = cls(session, device)
        for env in envelopes:
            signer.next_seq, signer.prev, signer.last_t = env.seq + 1, env.hash, env.t
        return signer

    def sign(
        self, kind: str, data: dict[str, Any] | None = None, *, severity: str = "info",
        now: float | None = None,
    ) -> Envelope:
        # Times never go backwards within a log, even if the wall clock does.
        t = max(self.last_t, time.time() if now is None else now)
        body = canonical_json({
            "v": 1, "session": self.session, "seq": self.next_seq, "t": t, "kind": kind,
            "severity": severity, "data": data or {}, "prev": self.prev,
        })
        env = Envelope.decode(pack_signed(body, self.device.sign(EVENT_DOMAIN, body)))
        self.next_seq, self.prev, self.last_t = env.seq + 1, env.hash, t
        return env


def _next_error(
    session: str, device_key: bytes, expected_seq: int, prev: str, last_t: float, env: Envelope
) -> str | None:
    """Why `env` cannot follow a log whose head is (expected_seq, prev, last_t), or None."""
    if not env.signed_by(device_key):
        return f"event {env.seq}: signature is not the candidate's device key"
    if env.session != session:
        return f"event {env.seq}: belongs to another session ({env.session[:12]}…)"
    if env.seq < expected_seq:
        return f"event {env.seq}: duplicate or replayed (expected {expected_seq})"
    if env.seq > expected_seq:
        return f"event {env.seq}: sequence gap, events {expected_seq}..{env.seq - 1} are missing"
    if env.prev != prev:
        return f"event {env.seq}: hash chain broken (does not follow event {env.seq - 1})"
    if env.t < last_t:
        return f"event {env.seq}: time goes backwards"
    return None


class LogVerifier:
    """The host's side: accepts envelopes one at a time, in order, and remembers the head."""

    def __init__(self, session: str, device_key: bytes) -> None:
        self.session = session
        self.device_key = device_key
        self.accepted: list[Envelope] = []
        self.head = genesis_hash(session)

    def accept(self, raw: bytes) -> tuple[Envelope, bool]:
        """Verify the next envelope. A re-sent one already accepted returns (env, False)."""
        env = Envelope.decode(raw)
        if env.seq < len(self.accepted) and self.accepted[env.seq].raw == env.raw:
            return self.accepted[env.seq], False
        last_t = self.accepted[-1].t if self.accepted else 0.0
        error = _next_error(self.session, self.device_key, len(self.accepted), self.head, last_t,
                            env)
        if error:
            raise IntegrityError(error)
        self.accepted.append(env)
        self.head = env.hash
        return env, True


@dataclass
class LogCheck:
    """The result of checking a whole stored log offline."""

    events: list[Envelope]
    errors: list[str]
    head: str


def check_log(session: str, device_key: bytes, raws: Iterable[bytes]) -> LogCheck:
    """Check a whole log in stored order, collecting every problem instead of stopping."""
    events: list[Envelope] = []
    errors: list[str] = []
    head, expected, last_t = genesis_hash(session), 0, 0.0
    for i, raw in enumerate(raws):
        try:
            env = Envelope.decode(raw)
        except IntegrityError as exc:
            errors.append(f"stored event #{i}: {exc}")
            continue
        error = _next_error(session, device_key, expected, head, last_t, env)
        if error:
            errors.append(error)
            if env.seq < expected or not env.signed_by(device_key) or env.session != session:
                continue  # do not let a forged, foreign or duplicate event move the head
        events.append(env)
        head, expected, last_t = env.hash, env.seq + 1, max(last_t, env.t)
    return LogCheck(events=events, errors=errors, head=head)


@dataclass(frozen=True)
class Receipt:
    """The host's signed acknowledgement that it verified and stored an envelope."""

    session: str
    seq: int
    hash: str
    at: float
    raw: bytes = field(repr=False)
    body: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    def encode(self) -> bytes:
        return self.raw

    def verify(self, host_key: bytes) -> bool:
        return verify_signature(host_key, self.signature, RECEIPT_DOMAIN, self.body)

    @classmethod
    def decode(cls, raw: bytes) -> Receipt:
        if not isinstance(raw, bytes | bytearray) or len(raw) > MAX_RECEIPT_BYTES:
            raise IntegrityError("receipt missing or too large")
        raw = bytes(raw)
        try:
            body, signature = unpack_signed(raw)
            d = loads_bounded(body, max_bytes=MAX_RECEIPT_BYTES, max_depth=1)
        except ValueError as exc:
            raise IntegrityError(f"malformed receipt: {exc}") from exc
        ok = (
            isinstance(d, dict) and d.get("v") == 1 and isinstance(d.get("session"), str)
            and isinstance(d.get("seq"), int) and not isinstance(d.get("seq"), bool)
            and isinstance(d.get("hash"), str) and isinstance(d.get("at"), int | float)
            and math.isfinite(d["at"])
        )
        if not ok:
            raise IntegrityError("malformed receipt")
        return cls(session=d["session"], seq=d["seq"], hash=d["hash"], at=float(d["at"]),
                   raw=raw, body=body, signature=signature)


def make_receipt(host: Identity, env: Envelope, now: float | None = None) -> Receipt:
    body = canonical_json({
        "v": 1, "session": env.session, "seq": env.seq, "hash": env.hash,
        "at": time.time() if now is None else now,
    })
    return Receipt.decode(pack_signed(body, host.sign(RECEIPT_DOMAIN, body)))
