"""The signaling package's own errors (it imports nothing from `assessiq`)."""

from __future__ import annotations


class SignalingError(Exception):
    """Base class for errors a user of the signaling server can act on."""


class ConfigError(SignalingError):
    """A configuration value or file is wrong; the message says which and why."""
