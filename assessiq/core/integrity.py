"""The integrity log: signed, numbered, hash-chained event envelopes and the host's receipts.

Each envelope carries the session id, a sequence number, the time, the kind, a severity hint,
the data and the hash of the previous envelope; the candidate's device key signs it. The host
checks each one on arrival (`LogVerifier`), stores it, and answers with a signed `Receipt`.

What a signature proves: which key produced an event and that the log was not altered after.
It cannot prove the candidate's app was unmodified — tampering is designed to show up as gaps
(sequence, chain, heartbeats) and contradictions, not to be impossible.

The record's clock is the host's: a `ClockRule` (the candidate's clock offset measured at join,
a bound, the session's start, and when each link opened) refuses an event whose signed time is
too far from when the host received it, and `check_log` applies the same rule offline.
"""

from __future__ import annotations

import math
import re
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .encoding import canonical_json, pack_signed, sha256_hex, unpack_signed
from .errors import AssessIQError
from .identity import Identity, verify_signature
from .jsonlimits import loads_bounded

__all__ = [
    "CLOCK_SLACK_S",
    "SEVERITIES",
    "ClockRule",
    "Envelope",
    "EventSigner",
    "IntegrityError",
    "LogCheck",
    "LogVerifier",
    "Receipt",
    "check_log",
    "clock_rule",
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
        last_t: float = 0.0, clock: Callable[[], float] = time.time,
    ) -> None:
        self.session = session
        self.device = device
        self.next_seq = next_seq
        self.prev = prev or genesis_hash(session)
        self.last_t = last_t
        self.clock = clock  # the device's wall clock (a hook for tests of a skewed clock)

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
        t = max(self.last_t, self.clock() if now is None else now)
        body = canonical_json({
            "v": 1, "session": self.session, "seq": self.next_seq, "t": t, "kind": kind,
            "severity": severity, "data": data or {}, "prev": self.prev,
        })
        env = Envelope.decode(pack_signed(body, self.device.sign(EVENT_DOMAIN, body)))
        self.next_seq, self.prev, self.last_t = env.seq + 1, env.hash, t
        return env


CLOCK_SLACK_S = 20.0
"""What an honest event's signed time may differ from its arrival by, beyond the error of the
offset measured at join (which is at most the handshake timeout: see `ClockRule`): a live
link's delivery lag (a link silent for the heartbeat timeout is rebuilt, but data can queue
behind a large sync transfer in the same association), the host's own processing delay, and
clock drift over a long interview (100 ppm over three hours is about a second)."""


@dataclass(frozen=True)
class ClockRule:
    """How far an event's signed time may be from the host's clock when it arrives.

    `offset` is the candidate's clock minus the host's, measured once at join (the signed time
    of the join request against when the hello reached the host): an event signed at `t` was
    signed at host time `t - offset`. `bound` (seconds) covers that measurement's error and the
    honest delays (`CLOCK_SLACK_S`). `start` is when the session began on the host's clock.
    An event is refused when its host time is

    - after its arrival by more than `bound` (dated in the future);
    - before `start` by more than `bound` (dated before the session);
    - before its arrival by more than `bound`, unless it was signed before the link it came on
      opened (plus `bound`): an honest app's outbox resends, on the next link, every event the
      host has not receipted, however old — those are late, not forged.

    `links` are the host times the integrity channel opened, ascending (recorded as they open).
    """

    offset: float
    bound: float
    start: float

    def host_time(self, t: float) -> float:
        """A signed time on the host's clock."""
        return t - self.offset

    def error(self, env: Envelope, received_at: float, links: Sequence[float]) -> str | None:
        """Why `env`, received at `received_at` (host clock), breaks the rule, or None."""
        h = self.host_time(env.t)
        why = (f"(candidate clock offset {self.offset:+.1f} s measured at join, bound "
               f"{self.bound:g} s)")
        if h > received_at + self.bound:
            return (f"event {env.seq}: dated {h - received_at:.1f} s after it arrived, in the "
                    f"future of the host's clock {why}")
        if h < self.start - self.bound:
            return (f"event {env.seq}: dated {self.start - h:.1f} s before the session began "
                    f"{why}")
        if h < received_at - self.bound:
            i = bisect_right(links, received_at)
            opened = links[i - 1] if i else None
            if opened is None or h > opened + self.bound:
                on = ("before any link had opened" if opened is None else
                      f"on a link open since {received_at - opened:.1f} s")
                return (f"event {env.seq}: signed {received_at - h:.1f} s before it arrived "
                        f"{on}: back-dated {why}")
        return None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def clock_rule(meta: dict[str, Any]) -> tuple[ClockRule | None, list[float]]:
    """The host's clock rule and link openings as its session metadata records them
    (`clock_offset`, `clock_bound`, `created`, `links_opened`); (None, []) for a record made
    before the rule existed, or without them."""
    offset, bound = _finite(meta.get("clock_offset")), _finite(meta.get("clock_bound"))
    start = _finite(meta.get("created"))
    links_value = meta.get("links_opened")
    links = [float(x) for x in links_value if _finite(x) is not None] \
        if isinstance(links_value, list) else []
    if offset is None or bound is None or start is None or bound < 0:
        return None, links
    return ClockRule(offset=offset, bound=bound, start=start), links


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


MAX_LINKS = 1000
"""How many link openings a session records (an honest session reconnects a few times); past
this, the last recorded one stands for the later ones, which only makes the rule stricter."""


class LogVerifier:
    """The host's side: accepts envelopes one at a time, in order, and remembers the head.

    With a `clock` rule, an event too far from the host's clock is refused (`ClockRule`); the
    head does not move, so a hostile app that goes on from a refused event has its next events
    refused as a sequence gap — every one of them recorded as a refusal — while the link, and
    the session, go on. Call `link_opened` when a link's integrity channel opens."""

    def __init__(self, session: str, device_key: bytes, clock: ClockRule | None = None) -> None:
        self.session = session
        self.device_key = device_key
        self.clock = clock
        self.links: list[float] = []
        self.accepted: list[Envelope] = []
        self.head = genesis_hash(session)
        self._device_from = 0

    def rotate(self, device_key: bytes, offset: float | None = None) -> int:
        """From the next event on, the chain is signed by `device_key` (a device the
        interviewer admitted in place of the pinned one), its times held to its own clock
        `offset` (when given, with a clock rule). Returns the first sequence number it
        signs."""
        self.device_key = device_key
        if self.clock is not None and offset is not None:
            self.clock = replace(self.clock, offset=offset)
        self._device_from = len(self.accepted)  # its times are on its own clock from here
        return len(self.accepted)

    def link_opened(self, at: float) -> bool:
        """Note when a link's integrity channel opened (host clock); False when not noted
        (more than `MAX_LINKS`, or earlier than the last one)."""
        if len(self.links) >= MAX_LINKS or (self.links and at < self.links[-1]):
            return False
        self.links.append(at)
        return True

    def accept(self, raw: bytes, received_at: float | None = None) -> tuple[Envelope, bool]:
        """Verify the next envelope, received at `received_at` (default: now). A re-sent one
        already accepted returns (env, False)."""
        env = Envelope.decode(raw)
        if env.seq < len(self.accepted) and self.accepted[env.seq].raw == env.raw:
            return self.accepted[env.seq], False
        # times never go backwards within one device's events (another's are on its clock)
        last_t = self.accepted[-1].t if len(self.accepted) > self._device_from else 0.0
        error = _next_error(self.session, self.device_key, len(self.accepted), self.head, last_t,
                            env)
        if error is None and self.clock is not None:
            error = self.clock.error(env, time.time() if received_at is None else received_at,
                                     self.links)
        if error:
            raise IntegrityError(error)
        self.accepted.append(env)
        self.head = env.hash
        return env, True


@dataclass
class LogCheck:
    """The result of checking a whole stored log offline. `arrivals[i]` is when the host
    received `events[i]` (its clock), when the arrivals were given."""

    events: list[Envelope]
    errors: list[str]
    head: str
    arrivals: list[float] = field(default_factory=list)


def check_log(
    session: str, device_key: bytes, raws: Iterable[bytes], *,
    arrivals: Sequence[float] | None = None, clock: ClockRule | None = None,
    links: Sequence[float] = (), rotations: Sequence[tuple[int, bytes, float]] = (),
    start: tuple[int, str] | None = None,
) -> LogCheck:
    """Check a whole log in stored order, collecting every problem instead of stopping.

    `arrivals` (one per raw: when the host received it) with a `clock` rule and the `links`
    the host recorded re-apply the host's clock check to every event, as it was on arrival.
    `rotations` are the devices the interviewer admitted after the first (see
    `core.admission.key_schedule`): from event `from_seq` on, events are signed by `key`
    and held to that device's clock `offset` (its times never go backwards from its own
    first event, which may be dated before the previous device's last). `start` is the
    `(seq, prev)` a log that does not begin at the genesis goes on from (the own log of a
    device admitted mid-session)."""
    events: list[Envelope] = []
    kept: list[float] = []
    errors: list[str] = []
    head, expected, last_t = genesis_hash(session), 0, 0.0
    if start is not None:
        expected, head = start
    schedule = sorted(rotations, key=lambda r: r[0])
    raw_list = list(raws)
    if arrivals is not None and len(arrivals) != len(raw_list):
        raise ValueError("one arrival time per stored event is needed")
    for i, raw in enumerate(raw_list):
        try:
            env = Envelope.decode(raw)
        except IntegrityError as exc:
            errors.append(f"stored event #{i}: {exc}")
            continue
        key, rule, device_from = device_key, clock, 0
        for from_seq, rotated, offset in schedule:  # the device that signs this position
            if from_seq <= expected:
                key, device_from = rotated, from_seq
                rule = replace(clock, offset=offset) if clock is not None else None
        if expected == device_from:
            last_t = 0.0  # a device's first event: its times are on its own clock
        error = _next_error(session, key, expected, head, last_t, env)
        if error:
            errors.append(error)
            if env.seq < expected or not env.signed_by(key) or env.session != session:
                continue  # do not let a forged, foreign or duplicate event move the head
        if rule is not None and arrivals is not None:
            late = rule.error(env, arrivals[i], links)
            if late:
                errors.append(f"{late}, yet the host accepted it")
        events.append(env)
        if arrivals is not None:
            kept.append(arrivals[i])
        head, expected, last_t = env.hash, env.seq + 1, max(last_t, env.t)
    return LogCheck(events=events, errors=errors, head=head, arrivals=kept)


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
