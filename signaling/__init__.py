"""AssessIQ's signaling server: a small, untrusted relay for the peers' encrypted handshake.

It needs only `websockets` and the standard library and imports nothing from `assessiq`.
"""

from signaling.config import Limits, ServerConfig, load_config
from signaling.errors import ConfigError, SignalingError
from signaling.server import SignalingServer

__all__ = ["ConfigError", "Limits", "ServerConfig", "SignalingError", "SignalingServer",
           "load_config"]
