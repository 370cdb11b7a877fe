"""The peer layer's errors (all `AssessIQError`, so the CLI prints them as one line)."""

from __future__ import annotations

from ..core.errors import AssessIQError

__all__ = ["ConnectError", "PeerError", "SignalingUnavailable"]


class PeerError(AssessIQError):
    """Something in the peer connection failed; the message says what to do."""


class SignalingUnavailable(PeerError):
    """The signaling server refused us for good (room full, replaced, wrong URL)."""


class ConnectError(PeerError):
    """The session could not be (re)established; the message says why."""
