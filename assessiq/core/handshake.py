"""The end-to-end authenticated handshake, without any networking.

The signaling server is untrusted: it relays opaque strings. Every handshake message is

    seal(key, direction, canonical_json({"body": b64(body), "sig": b64(signature)}))

where `body` is canonical JSON signed by the sender's Ed25519 key under the domain
`handshake/v1`, and `seal` is ChaCha20-Poly1305 under a key derived from the invite secret
(HKDF-SHA256, salt = room id, info = `assessiq/handshake/v1`), a random 96-bit nonce, and
associated data binding the room and the direction (`c2h` or `h2c`). A server that does not
hold the invite secret can neither read nor alter a message; one that holds it still cannot
sign as the host (its key is in the invite) or as the pinned candidate device.

The exchange, per connection attempt (a random attempt id chosen by the candidate):

    candidate → host   hello   n=0  {join: <JoinRequest>}            signed by the device key
    host → candidate   offer   n=0  {sdp, device: <pinned key>, ice?} signed by the host key
    candidate → host   answer  n=1  {sdp}                            signed by the device key
    host → candidate   refuse  any  {reason}                         signed by the host key
    host → candidate   wait    any  {reason}                         signed by the host key

A hello from a device other than the one the session pinned (the candidate's computer died,
or they lost its session file) is neither admitted nor refused by the handshake: it is kept
as `pending` and answered with `wait`, and the interviewer decides (`admit_pending` or
`refuse_pending`, naming the device they were shown). The request is dropped when the pinned
device's own hello is admitted again (it came back) and after `ADMISSION_WAIT_S` (`expire`).
The offer carries the verified log's head (`head_seq`, `head_hash`, `head_t`) when it has
one, so that an admitted new device continues the same chain.

Each side accepts only the next counter of the current attempt in each direction: duplicates
and replays of older attempts are dropped (`Ignored`), anything that fails authentication or
comes from the wrong key raises `HandshakeError` with a reason a user can act on.

The offer's optional `ice` is the host's STUN/TURN server list (JSON text, credentials
included, parsed by `assessiq.peer.config.servers_from_json`): a candidate with no relay of
its own gets one this way, and the signaling server sees it only encrypted.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .encoding import b64d, b64e, canonical_json
from .errors import AssessIQError, InviteError
from .identity import Identity, verify_signature
from .invite import JOIN_CLOCK_SKEW_S, Invite, JoinGate, JoinRequest
from .jsonlimits import loads_bounded

__all__ = [
    "ADMISSION_WAIT_S",
    "C2H",
    "H2C",
    "CandidateHandshake",
    "HandshakeError",
    "Head",
    "HostHandshake",
    "Ignored",
    "Opened",
    "Pending",
    "Waiting",
    "derive_key",
    "open_device_key",
    "open_message",
    "sdp_fingerprints",
    "seal_device_key",
    "seal_message",
]

ADMISSION_WAIT_S = 600.0
"""How long another device's request is held for the interviewer's decision (and how long
that device waits for it): after this the request expires and the device must ask again."""

HANDSHAKE_INFO = b"assessiq/handshake/v1"
DEVICE_KEY_INFO = b"assessiq/device-key/v1"
DEVICE_KEY_FORMAT = "dk1"
SIGN_DOMAIN = "handshake/v1"
C2H = "c2h"
H2C = "h2c"
NONCE_LEN = 12
MAX_SEALED_CHARS = 64 * 1024
MAX_SDP_CHARS = 32 * 1024
MAX_ICE_CHARS = 8 * 1024
MAX_JSON_DEPTH = 2
"""Every handshake body is one flat object; deeper is refused before the JSON is parsed."""
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_FINGERPRINT_RE = re.compile(r"^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$", re.MULTILINE)


class HandshakeError(AssessIQError):
    """A handshake message was refused; the connection attempt must not go on.

    `attempt` is the attempt id when it is known and authentic (so the host can send the
    candidate a signed refusal for it)."""

    def __init__(self, message: str, attempt: str | None = None) -> None:
        super().__init__(message)
        self.attempt = attempt


@dataclass(frozen=True)
class Ignored:
    """A message that is harmless to drop (a duplicate, or from an older attempt)."""

    reason: str


@dataclass(frozen=True)
class Waiting:
    """The host holds this attempt until the interviewer admits or refuses this device."""

    reason: str


@dataclass(frozen=True)
class Pending:
    """A hello from a device other than the pinned one, held for the interviewer: the
    request (its device key, name and time), the attempt, and when the hello arrived."""

    request: JoinRequest
    attempt: str
    at: float

    @property
    def fingerprint(self) -> str:
        return self.request.device_fingerprint


@dataclass(frozen=True)
class Head:
    """The verified log's head as the host's offer states it: the next sequence number, the
    hash of the last event (the genesis hash before any), and when the host received that
    event, on the clock of the device it offers to (as the host measured its offset; 0.0
    before any event)."""

    seq: int
    hash: str
    t: float


@dataclass(frozen=True)
class Opened:
    """A message that passed decryption and signature checks."""

    kind: str
    attempt: str
    n: int
    signer: bytes
    body: dict[str, Any]


def derive_key(invite: Invite) -> bytes:
    """The 32-byte handshake key for this invite."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=invite.room.encode("utf-8"), info=HANDSHAKE_INFO
    ).derive(invite.secret)


def _device_wrap_key(invite: Invite) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=invite.room.encode("utf-8"),
        info=DEVICE_KEY_INFO,
    ).derive(invite.secret)


def _device_aad(invite: Invite, public_key: bytes) -> bytes:
    return DEVICE_KEY_INFO + b"|" + invite.room.encode("utf-8") + b"|" + \
        invite.id.encode("ascii") + b"|" + public_key


def seal_device_key(invite: Invite, device: Identity) -> str:
    """The candidate's device key for keeping in its own session file: the private key
    encrypted (ChaCha20-Poly1305) under a key derived from this invite's secret, bound to the
    room, the invite and the device's public key. Text: `dk1.<public>.<nonce+ciphertext>`.

    The session file is the candidate's record, which they may copy or hand over: without the
    invite it holds no usable key, and with it the key signs only in this session (the chain
    is bound to the room). The file is 0600 as well."""
    nonce = os.urandom(NONCE_LEN)
    sealed = ChaCha20Poly1305(_device_wrap_key(invite)).encrypt(
        nonce, device.to_pem(), _device_aad(invite, device.public_key))
    return f"{DEVICE_KEY_FORMAT}.{b64e(device.public_key)}.{b64e(nonce + sealed)}"


def open_device_key(invite: Invite, text: str) -> Identity:
    """The device key `seal_device_key` kept; `AssessIQError` when it was not sealed for this
    invite or was altered."""
    parts = text.split(".") if isinstance(text, str) else []
    try:
        if len(parts) != 3 or parts[0] != DEVICE_KEY_FORMAT:
            raise ValueError("unknown format")
        public_key, blob = b64d(parts[1]), b64d(parts[2])
        if len(blob) < NONCE_LEN + 16:
            raise ValueError("truncated")
        pem = ChaCha20Poly1305(_device_wrap_key(invite)).decrypt(
            blob[:NONCE_LEN], blob[NONCE_LEN:], _device_aad(invite, public_key))
    except (ValueError, InvalidTag) as exc:
        raise AssessIQError("the device key kept in this session file does not open with "
                            "this invite (another invite's, or the file was altered)") from exc
    device = Identity.from_pem(pem)
    if device.public_key != public_key:
        raise AssessIQError("the device key kept in this session file is damaged")
    return device


def _aad(room: str, direction: str) -> bytes:
    return HANDSHAKE_INFO + b"|" + room.encode("utf-8") + b"|" + direction.encode("ascii")


def seal_message(
    key: bytes, room: str, direction: str, signer: Identity, body: dict[str, Any]
) -> str:
    """Sign `body` with `signer`, encrypt it for `direction`, and return the relay string."""
    raw = canonical_json(body)
    inner = canonical_json({"body": b64e(raw), "sig": b64e(signer.sign(SIGN_DOMAIN, raw))})
    nonce = os.urandom(NONCE_LEN)
    return b64e(nonce + ChaCha20Poly1305(key).encrypt(nonce, inner, _aad(room, direction)))


def open_message(
    key: bytes, room: str, direction: str, data: str
) -> tuple[dict[str, Any], bytes, bytes]:
    """Decrypt a relay string; return (body, body bytes, signature). `HandshakeError` if
    it was not made with this invite's key for this room and direction."""
    if not isinstance(data, str) or len(data) > MAX_SEALED_CHARS:
        raise HandshakeError("a handshake message is missing or too large")
    try:
        blob = b64d(data)
    except ValueError as exc:
        raise HandshakeError("a handshake message is not base64: the relay altered it") from exc
    if len(blob) < NONCE_LEN + 16:
        raise HandshakeError("a handshake message is truncated: the relay altered it")
    try:
        inner = ChaCha20Poly1305(key).decrypt(
            blob[:NONCE_LEN], blob[NONCE_LEN:], _aad(room, direction)
        )
    except InvalidTag as exc:
        raise HandshakeError(
            "a handshake message failed authentication: it was altered, redirected, or made "
            "without this invite's secret (the signaling server or someone on the path)"
        ) from exc
    try:
        outer = loads_bounded(inner, max_bytes=MAX_SEALED_CHARS, max_depth=MAX_JSON_DEPTH)
        raw = b64d(outer["body"])
        signature = b64d(outer["sig"])
        body = loads_bounded(raw, max_bytes=MAX_SEALED_CHARS, max_depth=MAX_JSON_DEPTH)
    except (ValueError, KeyError, TypeError) as exc:
        raise HandshakeError("a handshake message is malformed inside its encryption") from exc
    if not isinstance(body, dict):
        raise HandshakeError("a handshake message is malformed inside its encryption")
    return body, raw, signature


def _check_common(body: dict[str, Any], room: str, direction: str) -> tuple[str, str, int]:
    kind, attempt, n = body.get("kind"), body.get("attempt"), body.get("n")
    if (
        body.get("v") != 1
        or not isinstance(kind, str)
        or not isinstance(attempt, str)
        or not isinstance(n, int)
        or isinstance(n, bool)
        or n < 0
    ):
        raise HandshakeError("a handshake message has a malformed header")
    if body.get("room") != room:
        raise HandshakeError("a handshake message is for a different room")
    if body.get("dir") != direction:
        raise HandshakeError("a handshake message was reflected back in the wrong direction")
    return kind, attempt, n


def _sdp(body: dict[str, Any]) -> str:
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP_CHARS:
        raise HandshakeError("a handshake message carries no valid session description")
    if not sdp_fingerprints(sdp):
        raise HandshakeError("the session description carries no DTLS fingerprint")
    return sdp


def _head(body: dict[str, Any]) -> Head | None:
    seq, digest, t = body.get("head_seq"), body.get("head_hash"), body.get("head_t")
    if seq is None and digest is None and t is None:
        return None
    if (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0
            or not isinstance(digest, str) or not _HASH_RE.match(digest)
            or not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t)):
        raise HandshakeError("the host's offer carries a malformed log head")
    return Head(seq, digest, float(t))


def sdp_fingerprints(sdp: str) -> list[tuple[str, str]]:
    """The `(algorithm, HEX:DIGEST)` DTLS fingerprints in an SDP, upper-cased digests."""
    return [(m.group(1).lower(), m.group(2).upper()) for m in _FINGERPRINT_RE.finditer(sdp)]


class CandidateHandshake:
    """The candidate's side of one connection attempt. Make a new one per attempt."""

    def __init__(self, invite: Invite, device: Identity, *, name: str | None = None) -> None:
        self.invite = invite
        self.device = device
        self.name = name
        self.key = derive_key(invite)
        self.attempt = secrets.token_urlsafe(12)
        self.offer_sdp: str | None = None
        self.offer_ice: str | None = None
        """The host's ICE server list from its offer (JSON text), if it sent one."""
        self.offer_head: Head | None = None
        """The host's verified log head from its offer, if it sent one."""
        self._sent = 0
        self._received = 0

    def _seal(self, kind: str, extra: dict[str, Any]) -> str:
        body = {
            "v": 1,
            "kind": kind,
            "room": self.invite.room,
            "dir": C2H,
            "attempt": self.attempt,
            "n": self._sent,
            **extra,
        }
        self._sent += 1
        return seal_message(self.key, self.invite.room, C2H, self.device, body)

    def hello(self, now: float | None = None) -> str:
        """The first message: the signed join request, made at `now` (default: the clock)."""
        if self._sent:
            raise HandshakeError("hello was already sent for this attempt")
        join = JoinRequest.create(self.invite, self.device, name=self.name, now=now)
        return self._seal("hello", {"join": join.encode().decode("ascii")})

    def receive(self, data: str) -> Opened | Ignored | Waiting:
        """Open a message from the host. Returns the offer (once), `Waiting` while the
        interviewer decides on this device, or a refusal raises."""
        body, raw, signature = open_message(self.key, self.invite.room, H2C, data)
        kind, attempt, n = _check_common(body, self.invite.room, H2C)
        if not verify_signature(self.invite.host_key, signature, SIGN_DOMAIN, raw):
            raise HandshakeError(
                "a handshake message was not signed by the host key in the invite: "
                "someone is impersonating the interviewer"
            )
        if attempt != self.attempt:
            return Ignored(f"a message from an older connection attempt ({kind}) was dropped")
        if kind == "wait":
            reason = body.get("reason")
            return Waiting(reason[:300] if isinstance(reason, str) else "")
        if kind == "refuse":
            reason = body.get("reason")
            raise HandshakeError(
                f"the interviewer's app refused the connection: "
                f"{reason if isinstance(reason, str) else 'no reason given'}"
            )
        if n < self._received:
            return Ignored(f"a duplicate {kind} was dropped")
        if kind != "offer" or n != 0:
            raise HandshakeError(f"unexpected handshake message {kind!r} #{n} from the host")
        if body.get("device") != b64e(self.device.public_key):
            raise HandshakeError("the host's offer is addressed to a different candidate device")
        ice = body.get("ice")
        if ice is not None and (not isinstance(ice, str) or len(ice) > MAX_ICE_CHARS):
            raise HandshakeError("the host's offer carries a malformed ICE server list")
        self.offer_sdp = _sdp(body)
        self.offer_ice = ice
        self.offer_head = _head(body)
        self._received = n + 1
        return Opened(kind, attempt, n, self.invite.host_key, body)

    def answer(self, sdp: str) -> str:
        """The answer to the offer, signed by the device key."""
        if self.offer_sdp is None or self._sent != 1:
            raise HandshakeError("cannot answer before a valid offer")
        return self._seal("answer", {"sdp": sdp})


class HostHandshake:
    """The host's side: admits the candidate through a `JoinGate` and tracks attempts.

    One object lives for the whole session; each hello starts a new attempt, which replaces
    the previous one. Attempt ids that were seen once are never accepted again."""

    def __init__(self, invite: Invite, host: Identity, gate: JoinGate | None = None) -> None:
        if host.public_key != invite.host_key:
            raise HandshakeError("this host key did not make the invite")
        self.invite = invite
        self.host = host
        self.gate = gate or JoinGate(invite)
        self.key = derive_key(invite)
        self.attempt: str | None = None
        self.join: JoinRequest | None = None
        self.answer_sdp: str | None = None
        self._seen_attempts: set[str] = set()
        self._sent = 0
        self._received = 0
        self.pending: Pending | None = None
        """The newest hello from a device other than the pinned one, until decided (or the
        pinned device came back, or it expired)."""
        self.dropped: Pending | None = None
        """The request the last admitted hello of the pinned device dropped (None: none was
        pending): the host tells that device and the interviewer's page."""

    @property
    def device_key(self) -> bytes | None:
        return self.gate.pinned_device

    def _seal(self, kind: str, attempt: str, extra: dict[str, Any]) -> str:
        body = {
            "v": 1,
            "kind": kind,
            "room": self.invite.room,
            "dir": H2C,
            "attempt": attempt,
            "n": self._sent,
            **extra,
        }
        self._sent += 1
        return seal_message(self.key, self.invite.room, H2C, self.host, body)

    def receive(self, data: str, *, now: float | None = None) -> Opened | Ignored | Pending:
        """Open a message from the candidate: a hello (new attempt) or the answer. A hello
        from a device other than the pinned one returns `Pending` (see `admit_pending`);
        `now` is when it arrived (default: the clock)."""
        body, raw, signature = open_message(self.key, self.invite.room, C2H, data)
        kind, attempt, n = _check_common(body, self.invite.room, C2H)
        if kind == "hello":
            return self._hello(body, raw, signature, attempt, n,
                               time.time() if now is None else now)
        if attempt != self.attempt:
            return Ignored(f"a {kind} from an older or unknown attempt was dropped")
        pinned = self.gate.pinned_device
        assert pinned is not None  # an attempt exists only after a hello was admitted
        if not verify_signature(pinned, signature, SIGN_DOMAIN, raw):
            raise HandshakeError(
                "a handshake message was not signed by the candidate's pinned device key",
                attempt=attempt,
            )
        if n < self._received:
            return Ignored(f"a duplicate {kind} was dropped")
        if kind != "answer" or n != 1 or self.answer_sdp is not None:
            raise HandshakeError(f"unexpected handshake message {kind!r} #{n} from the candidate")
        self.answer_sdp = _sdp(body)
        self._received = n + 1
        return Opened(kind, attempt, n, pinned, body)

    def _hello(
        self, body: dict[str, Any], raw: bytes, signature: bytes, attempt: str, n: int,
        now: float,
    ) -> Opened | Ignored | Pending:
        if attempt in self._seen_attempts:
            return Ignored("a repeated hello (duplicate or replay) was dropped")
        if n != 0:
            raise HandshakeError("a hello with a wrong counter was refused")
        join_text = body.get("join")
        if not isinstance(join_text, str):
            raise HandshakeError("a hello carries no join request")
        try:
            request = JoinRequest.decode(join_text.encode("utf-8"))
        except InviteError as exc:
            raise HandshakeError(f"a join was refused: {exc}") from exc
        if not verify_signature(request.device_key, signature, SIGN_DOMAIN, raw):
            raise HandshakeError("a hello was not signed by the device key it presents")
        self._seen_attempts.add(attempt)
        pinned = self.gate.pinned_device
        if pinned is not None and request.device_key != pinned:
            return self._other_device(request, attempt, now)
        try:
            self.gate.admit(request, now=now)
        except InviteError as exc:
            raise HandshakeError(f"a join was refused: {exc}", attempt=attempt) from exc
        # the pinned device is back: another device's request is no longer the question
        self.dropped = self.pending
        self.pending = None
        self._start_attempt(attempt, request)
        return Opened("hello", attempt, n, request.device_key, body)

    def _start_attempt(self, attempt: str, request: JoinRequest) -> None:
        self.attempt = attempt
        self.join = request
        self.answer_sdp = None
        self._sent = 0
        self._received = 1

    def _other_device(self, request: JoinRequest, attempt: str, now: float) -> Pending:
        """A device other than the pinned one asks to join: checked like any join (this
        invite, a fresh request; the attempt id is new, so not a replay), then held."""
        if request.room != self.invite.room or request.invite_id != self.invite.id:
            raise HandshakeError("a join was refused: the join request is for a different "
                                 "invite", attempt=attempt)
        if abs(now - request.time) > JOIN_CLOCK_SKEW_S:
            raise HandshakeError("a join was refused: the join request is stale or from the "
                                 "future (check both computers' clocks)", attempt=attempt)
        self.pending = Pending(request, attempt, now)
        return self.pending

    def wait(self, attempt: str, reason: str) -> str:
        """A signed `wait` for `attempt`: the interviewer has not decided yet."""
        return self._sealed_notice("wait", attempt, reason)

    def expire(self, now: float | None = None) -> Pending | None:
        """Drop the pending request once it is `ADMISSION_WAIT_S` old (its device gave up
        waiting); returns it then, else None."""
        pending = self.pending
        now = time.time() if now is None else now
        if pending is None or now - pending.at < ADMISSION_WAIT_S:
            return None
        self.pending = None
        return pending

    def waiting_device(self, fingerprint: str | None = None,
                       now: float | None = None) -> Pending:
        """The pending request the interviewer decides on; `HandshakeError` when there is
        none, it expired, or it is not the device `fingerprint` they were shown."""
        if self.expire(now) is not None:
            raise HandshakeError("the other device's request expired (it waited "
                                 f"{ADMISSION_WAIT_S / 60:.0f} min): it must ask again")
        pending = self.pending
        if pending is None:
            raise HandshakeError("no other device is waiting to be admitted")
        if fingerprint is not None and fingerprint != pending.fingerprint:
            raise HandshakeError(f"the device waiting now is {pending.fingerprint}, not "
                                 f"{fingerprint}: decide on the one shown now")
        return pending

    def admit_pending(self, fingerprint: str | None = None, *,
                      now: float | None = None) -> Pending:
        """The interviewer admits the pending device: it is pinned instead of the previous
        one and its held attempt goes on (send it the `offer`). `HandshakeError` when
        nothing is pending, the request expired, or `fingerprint` (the device the
        interviewer was shown) is not the pending one's."""
        pending = self.waiting_device(fingerprint, now)
        self.pending = None
        self.gate.pinned_device = pending.request.device_key
        self._start_attempt(pending.attempt, pending.request)
        return pending

    def refuse_pending(self, reason: str, fingerprint: str | None = None, *,
                       now: float | None = None) -> tuple[Pending, str]:
        """The interviewer refuses the pending device: it and the signed refusal to relay.
        `HandshakeError` as for `admit_pending`."""
        pending = self.waiting_device(fingerprint, now)
        self.pending = None
        return pending, self.refuse(pending.attempt, reason)

    def offer(self, sdp: str, ice: str | None = None, head: Head | None = None) -> str:
        """The offer for the current attempt, signed by the host key; `ice` is the host's
        ICE server list (JSON text) for the candidate, sent only inside the encryption;
        `head` the verified log's head (where an admitted new device continues the chain)."""
        if self.attempt is None or self.gate.pinned_device is None or self._sent != 0:
            raise HandshakeError("no admitted attempt to offer to")
        if ice is not None and len(ice) > MAX_ICE_CHARS:
            raise HandshakeError(f"the ICE server list is over {MAX_ICE_CHARS} characters")
        extra: dict[str, Any] = {"sdp": sdp, "device": b64e(self.gate.pinned_device)}
        if ice is not None:
            extra["ice"] = ice
        if head is not None:
            extra.update(head_seq=head.seq, head_hash=head.hash, head_t=head.t)
        return self._seal("offer", self.attempt, extra)

    def refuse(self, attempt: str, reason: str) -> str:
        """A signed refusal the candidate can show (for an attempt we will not serve)."""
        return self._sealed_notice("refuse", attempt, reason)

    def _sealed_notice(self, kind: str, attempt: str, reason: str) -> str:
        return seal_message(
            self.key,
            self.invite.room,
            H2C,
            self.host,
            {
                "v": 1,
                "kind": kind,
                "room": self.invite.room,
                "dir": H2C,
                "attempt": attempt,
                "n": 0,
                "reason": reason[:300],
            },
        )
