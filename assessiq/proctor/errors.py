"""The proctor's errors. Every message is one line a user can act on.

    ProctorError
    ├── FrameSourceError   a camera, video or image that cannot be opened or read
    │   └── NoCameraError  no camera at the requested index
    └── SampleDataError    a sample photo is missing (the tests' extras need scikit-image)
"""

from __future__ import annotations

__all__ = ["FrameSourceError", "NoCameraError", "ProctorError", "SampleDataError"]


class ProctorError(Exception):
    """Base class of every error the proctor raises on purpose."""


class FrameSourceError(ProctorError):
    """A frame source (camera, video file, image) could not be opened or read."""


class NoCameraError(FrameSourceError):
    """No camera could be opened."""


class SampleDataError(ProctorError):
    """The sample photos the synthetic camera composes scenes from are not available."""
