"""How a peer connects: ICE servers, relay policy and the timings of the link.

A connection's ICE servers are the peer's own (`PeerConfig.ice_servers`) followed by those it
was given for this attempt: the ones the signaling server issued with its join (short-lived
TURN credentials), and on the candidate also the host's list from the signed, encrypted
offer (`assessiq/core/handshake.py`). `merge_servers` makes that list; `servers_to_json` and
`servers_from_json` are its form inside the handshake. The host forwards only what the candidate
may hold (`for_candidate`): the signaling server's short-lived credentials, servers that carry
no credential (STUN), and those its configuration marks `share = true` — never its own TURN
password otherwise, since the candidate is the party the interview does not trust.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcicetransport import parse_stun_turn_uri

from ..core.jsonlimits import loads_bounded

__all__ = ["IceServer", "PeerConfig", "for_candidate", "merge_servers", "servers_from_json",
           "servers_to_json"]

MAX_SERVERS = 8
MAX_FIELD_CHARS = 512


@dataclass(frozen=True)
class IceServer:
    """One STUN or TURN server, e.g. `IceServer("turn:127.0.0.1:3478", "user", "pass")`.
    `share`: the host may pass this server, credential included, to the candidate."""

    url: str
    username: str | None = None
    credential: str | None = None
    share: bool = False

    def __post_init__(self) -> None:
        if not self.url.startswith(("stun:", "turn:", "turns:")):
            raise ValueError(f"an ICE server URL starts with stun:, turn: or turns:: {self.url!r}")
        if self.url.startswith("turn") and (not self.username or not self.credential):
            raise ValueError(f"the TURN server {self.url} needs a username and a credential")
        for value in (self.url, self.username or "", self.credential or ""):
            if not isinstance(value, str) or len(value) > MAX_FIELD_CHARS:
                raise ValueError("an ICE server's URL, username and credential are strings of "
                                 f"at most {MAX_FIELD_CHARS} characters")
        try:
            port = parse_stun_turn_uri(self.url).get("port")
        except ValueError as exc:
            raise ValueError(f"not a usable STUN/TURN URL: {self.url!r} ({exc})") from None
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"the port of an ICE server URL is 1 to 65535: {self.url!r}")

    @property
    def is_turn(self) -> bool:
        return self.url.startswith("turn")


@dataclass(frozen=True)
class PeerConfig:
    """Everything tunable about a connection. The defaults suit a LAN or loopback.

    `ice_servers` is empty by default: no STUN/TURN server is contacted unless configured
    (never aiortc's built-in Google STUN). `relay_only` forces traffic through TURN.
    """

    ice_servers: tuple[IceServer, ...] = field(default_factory=tuple)
    relay_only: bool = False
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 5.0
    handshake_timeout: float = 10.0
    connect_timeout: float = 20.0
    max_message_bytes: int = 256 * 1024
    signaling_ping_interval: float = 5.0
    signaling_ping_timeout: float = 5.0
    signaling_app_ping_interval: float = 60.0  # keeps a quiet room open on the server
    call_stats_interval: float = 5.0  # how often call statistics go into the session file
    max_doc_bytes: int = 64 * 1024 * 1024
    """Update bytes the document takes from the peer in a session (past it, refused)."""

    def __post_init__(self) -> None:
        # relay_only without a TURN server of one's own is allowed: the signaling server or
        # the host may give one; a connection without any is refused (`PeerConnection`).
        if not 0 < self.heartbeat_interval < self.heartbeat_timeout:
            raise ValueError("the heartbeat interval must be positive and below its timeout")
        if self.signaling_app_ping_interval <= 0 or self.call_stats_interval <= 0:
            raise ValueError("the signaling ping and call-stats intervals must be positive")

    def rtc_configuration(self, extra: Sequence[IceServer] = ()) -> RTCConfiguration:
        """aiortc's configuration: our servers, then `extra` (merged with `merge_servers`).
        aiortc uses only the first STUN and the first TURN URL of that list."""
        servers = [
            RTCIceServer(urls=s.url, username=s.username, credential=s.credential)
            for s in merge_servers(self.ice_servers, extra)
        ]
        policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
        return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


def merge_servers(*lists: Iterable[IceServer]) -> tuple[IceServer, ...]:
    """The lists in order, each server once (the first of equal URL and username wins)."""
    seen: set[tuple[str, str | None]] = set()
    merged: list[IceServer] = []
    for servers in lists:
        for server in servers:
            key = (server.url, server.username)
            if key not in seen:
                seen.add(key)
                merged.append(server)
    return tuple(merged)


def for_candidate(own: Iterable[IceServer], issued: Iterable[IceServer]) -> tuple[IceServer, ...]:
    """What the host may send the candidate: the servers the signaling server `issued` (its
    short-lived credentials), then those of the host's `own` that carry no credential or are
    marked `share`."""
    return merge_servers(issued, (s for s in own if s.credential is None or s.share))


def servers_to_json(servers: Sequence[IceServer]) -> str:
    """A server list as the JSON text the host's offer carries (`[{url, username?,
    credential?}]`, at most `MAX_SERVERS`)."""
    items: list[dict[str, str]] = []
    for s in servers[:MAX_SERVERS]:
        item = {"url": s.url}
        if s.username is not None and s.credential is not None:
            item.update(username=s.username, credential=s.credential)
        items.append(item)
    return json.dumps(items, separators=(",", ":"), sort_keys=True)


def servers_from_json(text: str) -> tuple[IceServer, ...]:
    """Parse `servers_to_json`'s text; `ValueError` with a reason for anything else."""
    items: Any = loads_bounded(text, max_bytes=MAX_SERVERS * 4 * MAX_FIELD_CHARS, max_depth=2)
    if not isinstance(items, list) or len(items) > MAX_SERVERS:
        raise ValueError(f"an ICE server list is a JSON list of at most {MAX_SERVERS} servers")
    servers: list[IceServer] = []
    for item in items:
        if not isinstance(item, dict) or set(item) - {"url", "username", "credential"} \
                or not isinstance(item.get("url"), str):
            raise ValueError("an ICE server is an object with url, username and credential")
        servers.append(IceServer(item["url"], item.get("username"), item.get("credential")))
    return tuple(servers)
