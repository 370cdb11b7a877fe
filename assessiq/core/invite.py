"""Invites (the root of trust) and candidates' join requests.

An invite is made by the host and sent to the candidate out of band. It carries the room id,
a random secret (from which the handshake key is derived), the host's public key, an expiry,
an optional candidate label and how to reach the host; the host signs it.

What the signature proves: the invite was made by the holder of `host_key` and not altered
since. It cannot prove that `host_key` is your interviewer's — compare the fingerprint the
app shows with the one the interviewer tells you, or pass `expected_host`.

Wire form: `aiq1.<base64url(body JSON)>.<base64url(signature)>`. It also travels as a link:
`https://<signaling server>/join#<that>` (a page any mail client opens; the invite is in the
fragment, which browsers never send to the server) or `assessiq://join/<that>`. `decode`
accepts all three.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .encoding import b64d, b64e, canonical_json, pack_signed, sha256_hex, unpack_signed
from .errors import InviteError
from .identity import PUBLIC_KEY_LEN, Identity, fingerprint, verify_signature
from .jsonlimits import loads_bounded

__all__ = [
    "INVITE_PREFIX",
    "JOIN_PAGE_PATH",
    "LINK_PREFIX",
    "Invite",
    "JoinGate",
    "JoinRequest",
    "make_invite",
]

INVITE_PREFIX = "aiq1."
LINK_PREFIX = "assessiq://join/"
JOIN_PAGE_PATH = "/join"  # the signaling server's static page (signaling/joinpage.py)
INVITE_DOMAIN = "invite/v1"
JOIN_DOMAIN = "join/v1"
MAX_INVITE_CHARS = 4096
MAX_JOIN_BYTES = 4096
DEFAULT_TTL_S = 24 * 3600
JOIN_CLOCK_SKEW_S = 300.0
SECRET_LEN = 32


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _field(body: dict[str, Any], name: str, kind: type, what: str) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InviteError(f"the {what} is damaged: field {name!r} is missing or not valid")
    return value


@dataclass(frozen=True)
class Invite:
    """A verified invite. Build one with `make_invite`; read one with `Invite.decode`."""

    room: str
    secret: bytes
    host_key: bytes
    expires: int
    label: str | None = None
    signaling: str | None = None
    lan: bool = False
    body: bytes = field(default=b"", repr=False)
    signature: bytes = field(default=b"", repr=False)

    @property
    def id(self) -> str:
        """A stable id of this exact invite (the hash of its signed body)."""
        return sha256_hex(self.body)

    @property
    def host_fingerprint(self) -> str:
        return fingerprint(self.host_key)

    def encode(self) -> str:
        return f"{INVITE_PREFIX}{b64e(self.body)}.{b64e(self.signature)}"

    def link(self) -> str:
        return LINK_PREFIX + self.encode()

    def web_link(self, base: str | None = None) -> str | None:
        """`https://<server>/join#<invite>`: the join page of `base` (an http(s) URL) or of the
        invite's signaling server (wss → https, ws → http), beside its websocket path (a
        server a proxy serves under `/prefix/ws` has its page at `/prefix/join`); None when
        there is neither."""
        base = base or self.signaling
        if base is None:
            return None
        parts = urlsplit(base)
        scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
        if scheme not in ("https", "http") or not parts.netloc:
            return None
        prefix = parts.path.rstrip("/")
        prefix = prefix[:-len("/ws")] if prefix.endswith("/ws") else prefix
        return f"{scheme}://{parts.netloc}{prefix}{JOIN_PAGE_PATH}#{self.encode()}"

    def is_expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires

    @classmethod
    def decode(
        cls, text: str, *, now: float | None = None, expected_host: str | None = None
    ) -> Invite:
        """Parse and verify an invite string or link; `InviteError` with a one-line reason."""
        if not isinstance(text, str) or not text.strip():
            raise InviteError("no invite given")
        text = "".join(text.split())  # tolerate line breaks from copy and paste
        if len(text) > MAX_INVITE_CHARS:
            raise InviteError("that is too long to be an AssessIQ invite")
        text = _strip_link(text)
        if not text.startswith(INVITE_PREFIX):
            raise InviteError("that is not an AssessIQ invite (it should start with 'aiq1.')")
        parts = text[len(INVITE_PREFIX) :].split(".")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise InviteError("the invite is truncated or damaged; copy it again in full")
        try:
            body, signature = b64d(parts[0]), b64d(parts[1])
            if b64e(body) != parts[0] or b64e(signature) != parts[1]:
                raise ValueError("not the one canonical base64 encoding")  # no malleable copies
            data = loads_bounded(body, max_bytes=MAX_INVITE_CHARS, max_depth=2)
        except ValueError as exc:
            raise InviteError("the invite is truncated or damaged; copy it again in full") from exc
        if not isinstance(data, dict):
            raise InviteError("the invite is damaged: its body is not an object")
        if data.get("v") != 1:
            raise InviteError("this invite was made by a newer AssessIQ; please upgrade")
        try:
            host_key = b64d(_field(data, "host", str, "invite"))
            secret = b64d(_field(data, "secret", str, "invite"))
        except ValueError as exc:
            raise InviteError("the invite is damaged: a key field is not base64") from exc
        if len(host_key) != PUBLIC_KEY_LEN or len(secret) != SECRET_LEN:
            raise InviteError("the invite is damaged: wrong key or secret length")
        if not verify_signature(host_key, signature, INVITE_DOMAIN, body):
            raise InviteError(
                "the invite's signature does not match its host key: it was altered or forged"
            )
        invite = cls(
            room=_field(data, "room", str, "invite"),
            secret=secret,
            host_key=host_key,
            expires=_field(data, "exp", int, "invite"),
            label=data.get("label") if isinstance(data.get("label"), str) else None,
            signaling=data.get("sig_url") if isinstance(data.get("sig_url"), str) else None,
            lan=data.get("lan") is True,
            body=body,
            signature=signature,
        )
        if expected_host is not None and invite.host_fingerprint != expected_host.upper():
            raise InviteError(
                f"the invite was made by host key {invite.host_fingerprint}, "
                f"not {expected_host.upper()} as expected"
            )
        if invite.is_expired(now):
            raise InviteError(
                f"the invite expired at {_when(invite.expires)}; ask the interviewer for a new one"
            )
        return invite


def _strip_link(text: str) -> str:
    """The invite inside `assessiq://join/<invite>` or `http(s)://<host>/…#<invite>`; any
    other text as it is (the caller says why it is not an invite)."""
    if text.startswith(LINK_PREFIX):
        return text[len(LINK_PREFIX) :]
    if text.lower().startswith(("https://", "http://")):
        _, sep, fragment = text.partition("#")
        if not sep or not fragment.startswith(INVITE_PREFIX):
            raise InviteError(
                "that link carries no invite: copy the whole link, with the part after '#' "
                "(it starts with 'aiq1.')"
            )
        return fragment
    return text


def make_invite(
    host: Identity,
    *,
    signaling: str | None = None,
    lan: bool = False,
    label: str | None = None,
    ttl_s: float = DEFAULT_TTL_S,
    now: float | None = None,
) -> Invite:
    """A fresh invite for a new session, signed by `host`."""
    if signaling is None and not lan:
        raise InviteError("an invite needs a signaling URL, LAN mode, or both")
    if signaling is not None and not signaling.startswith(("ws://", "wss://")):
        raise InviteError(f"the signaling URL must start with ws:// or wss://: {signaling!r}")
    now = time.time() if now is None else now
    data: dict[str, Any] = {
        "v": 1,
        "room": b64e(os.urandom(16)),
        "secret": b64e(os.urandom(SECRET_LEN)),
        "host": b64e(host.public_key),
        "exp": int(now + ttl_s),
        "lan": lan,
    }
    if label:
        data["label"] = label
    if signaling:
        data["sig_url"] = signaling
    body = canonical_json(data)
    return Invite.decode(
        f"{INVITE_PREFIX}{b64e(body)}.{b64e(host.sign(INVITE_DOMAIN, body))}", now=now
    )


@dataclass(frozen=True)
class JoinRequest:
    """A candidate's request to join, signed by its fresh per-session device key."""

    room: str
    invite_id: str
    device_key: bytes
    nonce: str
    time: float
    name: str | None
    body: bytes = field(default=b"", repr=False)
    signature: bytes = field(default=b"", repr=False)

    @property
    def device_fingerprint(self) -> str:
        return fingerprint(self.device_key)

    @classmethod
    def create(
        cls, invite: Invite, device: Identity, *, name: str | None = None, now: float | None = None
    ) -> JoinRequest:
        data: dict[str, Any] = {
            "v": 1,
            "room": invite.room,
            "invite": invite.id,
            "device": b64e(device.public_key),
            "nonce": secrets.token_urlsafe(16),
            "time": time.time() if now is None else now,
        }
        if name:
            data["name"] = name
        body = canonical_json(data)
        return cls.decode(pack_signed(body, device.sign(JOIN_DOMAIN, body)))

    def encode(self) -> bytes:
        return pack_signed(self.body, self.signature)

    @classmethod
    def decode(cls, raw: bytes) -> JoinRequest:
        """Parse a join request and check its own signature (not yet against an invite)."""
        if not isinstance(raw, bytes) or len(raw) > MAX_JOIN_BYTES:
            raise InviteError("the join request is missing or too large")
        try:
            body, signature = unpack_signed(raw)
            data = loads_bounded(body, max_bytes=MAX_JOIN_BYTES, max_depth=2)
        except ValueError as exc:
            raise InviteError("the join request is damaged") from exc
        if not isinstance(data, dict) or data.get("v") != 1:
            raise InviteError("the join request is damaged")
        try:
            device_key = b64d(_field(data, "device", str, "join request"))
        except ValueError as exc:
            raise InviteError("the join request is damaged: bad device key") from exc
        t = data.get("time")
        if not isinstance(t, int | float) or isinstance(t, bool):
            raise InviteError("the join request is damaged: bad time")
        if not verify_signature(device_key, signature, JOIN_DOMAIN, body):
            raise InviteError("the join request's signature does not match its device key")
        name = data.get("name")
        return cls(
            room=_field(data, "room", str, "join request"),
            invite_id=_field(data, "invite", str, "join request"),
            device_key=device_key,
            nonce=_field(data, "nonce", str, "join request"),
            time=float(t),
            name=name if isinstance(name, str) else None,
            body=body,
            signature=signature,
        )


class JoinGate:
    """The host's door: admits one candidate device per session, and that device again on
    reconnect; refuses forged, stale, replayed and second-candidate joins with a reason."""

    def __init__(self, invite: Invite, pinned_device: bytes | None = None) -> None:
        self.invite = invite
        self.pinned_device = pinned_device
        self._seen_nonces: set[str] = set()

    def admit(self, raw: bytes | JoinRequest, *, now: float | None = None) -> JoinRequest:
        now = time.time() if now is None else now
        request = raw if isinstance(raw, JoinRequest) else JoinRequest.decode(raw)
        if request.room != self.invite.room or request.invite_id != self.invite.id:
            raise InviteError("the join request is for a different invite")
        if self.invite.is_expired(now) and self.pinned_device is None:
            raise InviteError(f"the invite expired at {_when(self.invite.expires)}")
        if abs(now - request.time) > JOIN_CLOCK_SKEW_S:
            raise InviteError(
                "the join request is stale or from the future (check both computers' clocks)"
            )
        if request.nonce in self._seen_nonces:
            raise InviteError("the join request was replayed")
        if self.pinned_device is not None and request.device_key != self.pinned_device:
            raise InviteError(
                "another candidate device has already joined this session; a second is refused"
            )
        self._seen_nonces.add(request.nonce)
        self.pinned_device = request.device_key
        return request
