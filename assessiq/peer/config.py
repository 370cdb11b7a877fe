"""How a peer connects: ICE servers, relay policy and the timings of the link."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

__all__ = ["IceServer", "PeerConfig"]


@dataclass(frozen=True)
class IceServer:
    """One STUN or TURN server, e.g. `IceServer("turn:127.0.0.1:3478", "user", "pass")`."""

    url: str
    username: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("stun:", "turn:", "turns:")):
            raise ValueError(f"an ICE server URL starts with stun:, turn: or turns:: {self.url!r}")
        if self.url.startswith("turn") and (not self.username or not self.credential):
            raise ValueError(f"the TURN server {self.url} needs a username and a credential")


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
        if self.relay_only and not any(s.url.startswith("turn") for s in self.ice_servers):
            raise ValueError("relay-only needs at least one TURN server")
        if not 0 < self.heartbeat_interval < self.heartbeat_timeout:
            raise ValueError("the heartbeat interval must be positive and below its timeout")
        if self.signaling_app_ping_interval <= 0 or self.call_stats_interval <= 0:
            raise ValueError("the signaling ping and call-stats intervals must be positive")

    def rtc_configuration(self) -> RTCConfiguration:
        servers = [
            RTCIceServer(urls=s.url, username=s.username, credential=s.credential)
            for s in self.ice_servers
        ]
        policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
        return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)
