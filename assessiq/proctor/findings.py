"""What the analysis found in one frame."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FaceBox", "FrameFindings", "Gaze", "HeadPose"]


@dataclass(frozen=True)
class FaceBox:
    """One face: its box as fractions of the frame (x, y, w, h), a score, and who found it."""

    x: float
    y: float
    w: float
    h: float
    score: float
    source: str  # "mesh" or "detection"


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees, relative to the line from the camera to the face.

    yaw > 0: the face turns towards the image's right (the candidate's own left in an
    unmirrored camera); pitch > 0: the face tilts up; roll > 0: the top of the head leans
    towards the image's right.
    """

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class Gaze:
    """Where the irises sit inside the eyes.

    horizontal: 0 = at the eye corner on the image's left, 1 = on the image's right, ~0.5 centred.
    vertical: 0 = at the upper lid, 1 = at the lower lid.
    direction: "center", "left", "right", "up" or "down" (image directions), judged against an
    uncalibrated centre; the detectors use the candidate's calibrated centre instead.
    eyes_open: False during a blink (then the ratios mean nothing).
    """

    horizontal: float
    vertical: float
    direction: str
    eyes_open: bool


@dataclass(frozen=True)
class FrameFindings:
    """Everything the per-frame analysis measured. `faces` combines FaceMesh and full-range
    face detection; `pose` and `gaze` describe the main (largest) face, None without one."""

    t: float
    faces: int
    boxes: tuple[FaceBox, ...]
    pose: HeadPose | None
    gaze: Gaze | None
    brightness: float
    texture: float
    dark: bool
    covered: bool
    frozen: bool
    motion: float
    cpu_ms: float = 0.0

    def labels(self) -> list[str]:
        """Short names of what is notable in this frame, for people and logs."""
        out: list[str] = []
        if self.faces == 0:
            out.append("no_face")
        elif self.faces == 1:
            out.append("one_face")
        else:
            out.append("multiple_faces")
        if self.covered:
            out.append("covered")
        if self.dark:
            out.append("dark")
        if self.frozen:
            out.append("frozen")
        if self.gaze is not None:
            out.append("eyes_open" if self.gaze.eyes_open else "eyes_closed")
            if self.gaze.eyes_open and self.gaze.direction != "center":
                out.append(f"gaze_{self.gaze.direction}")
        return out
