"""The media layer's errors. Every message is one line a user can act on.

    MediaError            (an AssessIQError)
    ├── DeviceError       a camera or microphone that cannot be used
    │   ├── NoDeviceError     no such device (none connected, or a wrong name)
    │   └── DeviceBusyError   the device exists but another app holds it
    └── PlaybackError     no audio output device to play the other side on
"""

from __future__ import annotations

from ..core.errors import AssessIQError

__all__ = ["DeviceBusyError", "DeviceError", "MediaError", "NoDeviceError", "PlaybackError"]


class MediaError(AssessIQError):
    """Base class of every error the media layer raises on purpose."""


class DeviceError(MediaError):
    """A camera or microphone could not be opened; the message says which and why."""


class NoDeviceError(DeviceError):
    """No camera or microphone was found where one was asked for."""


class DeviceBusyError(DeviceError):
    """The camera or microphone is in use by another application."""


class PlaybackError(MediaError):
    """Audio cannot be played: no output device, or PortAudio is missing."""
