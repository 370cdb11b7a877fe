"""The peer layer: aiortc connections, data channels as `Channel`s, signaling and sessions."""

from .candidate import Candidate
from .config import IceServer, PeerConfig
from .errors import ConnectError, PeerError, SignalingUnavailable
from .host import Host

__all__ = [
    "Candidate",
    "ConnectError",
    "Host",
    "IceServer",
    "PeerConfig",
    "PeerError",
    "SignalingUnavailable",
]
