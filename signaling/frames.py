"""The wire format: parsing client frames and building server frames.

Every frame is a JSON text object with a "type". The full protocol is in docs/protocol.md.
Parsing never raises anything but `FrameError`, whatever the input.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final, Literal

from .jsonlimits import loads_bounded
from .turn import TurnCredentials

Role = Literal["host", "candidate"]
ROLES: Final = ("host", "candidate")
ROOM_RE: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_RESUME_CHARS: Final = 128
MAX_DEPTH: Final = 2  # every client frame is one flat object

# Error codes, exactly as they appear on the wire.
BAD_JSON: Final = "bad-json"
BAD_FRAME: Final = "bad-frame"
NOT_JOINED: Final = "not-joined"
UNKNOWN_ROOM: Final = "unknown-room"
ROOM_FULL: Final = "room-full"
RATE_LIMITED: Final = "rate-limited"
TOO_LARGE: Final = "too-large"
NO_PEER: Final = "no-peer"
TOO_MANY_CONNECTIONS: Final = "too-many-connections"
TOO_MANY_ROOMS: Final = "too-many-rooms"
ERROR_CODES: Final = (BAD_JSON, BAD_FRAME, NOT_JOINED, UNKNOWN_ROOM, ROOM_FULL, RATE_LIMITED,
                      TOO_LARGE, NO_PEER, TOO_MANY_CONNECTIONS, TOO_MANY_ROOMS)

# Close codes the server uses (4000-4999 are for applications).
CLOSE_REPLACED: Final = 4001
CLOSE_IDLE_ROOM: Final = 4002
CLOSE_JOIN_TIMEOUT: Final = 4003
CLOSE_TOO_MANY_ERRORS: Final = 4004
CLOSE_TOO_MANY_CONNECTIONS: Final = 4005
CLOSE_SHUTDOWN: Final = 1001


class FrameError(Exception):
    """A client frame that cannot be accepted; `code` is the wire error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Join:
    room: str
    role: Role
    resume: str | None


@dataclass(frozen=True)
class Relay:
    data: str


@dataclass(frozen=True)
class Ping:
    pass


ClientFrame = Join | Relay | Ping


def parse_client_frame(text: str, *, max_bytes: int = 256 * 1024) -> ClientFrame:
    """Parse one text frame from a client (at most `max_bytes` long, nested at most
    `MAX_DEPTH` deep, both checked before parsing). Raises FrameError (bad-json or
    bad-frame)."""
    try:
        obj = loads_bounded(text, max_bytes=max_bytes, max_depth=MAX_DEPTH)
    except ValueError as exc:
        raise FrameError(BAD_JSON, f"frame is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise FrameError(BAD_FRAME, "frame must be a JSON object")
    kind = obj.get("type")
    if kind == "join":
        return _parse_join(obj)
    if kind == "relay":
        data = obj.get("data")
        if not isinstance(data, str):
            raise FrameError(BAD_FRAME, "relay needs a string field 'data'")
        return Relay(data)
    if kind == "ping":
        return Ping()
    if not isinstance(kind, str):
        raise FrameError(BAD_FRAME, "frame needs a string field 'type'")
    raise FrameError(BAD_FRAME, "unknown frame type (expected join, relay or ping)")


def _parse_join(obj: dict[str, object]) -> Join:
    room = obj.get("room")
    if not isinstance(room, str) or ROOM_RE.fullmatch(room) is None:
        raise FrameError(BAD_FRAME, "room must be 16-64 characters of A-Z a-z 0-9 _ -")
    role = obj.get("role")
    if role == "host":
        checked: Role = "host"
    elif role == "candidate":
        checked = "candidate"
    else:
        raise FrameError(BAD_FRAME, "role must be 'host' or 'candidate'")
    resume = obj.get("resume")
    if resume is not None and (not isinstance(resume, str) or len(resume) > MAX_RESUME_CHARS):
        raise FrameError(BAD_FRAME, "resume must be a string token or absent")
    return Join(room, checked, resume)


def encode(frame: dict[str, object]) -> str:
    return json.dumps(frame, separators=(",", ":"))


def error_frame(code: str, message: str) -> str:
    return encode({"type": "error", "code": code, "message": message})


def _with_ice(frame: dict[str, object], ice: TurnCredentials | None,
              urls: tuple[str, ...]) -> str:
    if ice is not None:
        frame.update(ice_urls=list(ice.urls), ice_username=ice.username,
                     ice_credential=ice.credential, ice_expires=ice.expires)
    elif urls:
        frame.update(ice_urls=list(urls))
    return encode(frame)


def joined_frame(room: str, role: Role, resume: str, peer: bool,
                 ice: TurnCredentials | None = None, ice_urls: tuple[str, ...] = ()) -> str:
    """With `ice`, the frame also carries the room's relay: `ice_urls` (a list of strings),
    `ice_username`, `ice_credential` and `ice_expires` (unix time), one flat level deep;
    without, `ice_urls` alone when given (the server has a relay, not yet for this client)."""
    return _with_ice({"type": "joined", "room": room, "role": role, "resume": resume,
                      "peer": peer}, ice, ice_urls)


def peer_joined_frame(role: Role, resumed: bool, ice: TurnCredentials | None = None) -> str:
    """With `ice`, the relay credentials for the member told, as in `joined_frame`."""
    return _with_ice({"type": "peer-joined", "role": role, "resumed": resumed}, ice, ())


def peer_left_frame(role: Role) -> str:
    return encode({"type": "peer-left", "role": role})


def relay_frame(data: str) -> str:
    return encode({"type": "relay", "data": data})


PONG: Final = encode({"type": "pong"})


def other_role(role: Role) -> Role:
    return "candidate" if role == "host" else "host"
