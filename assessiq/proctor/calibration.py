"""The candidate's natural pose and gaze, measured over the first seconds they are in view."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .findings import FrameFindings

__all__ = ["Baseline", "Calibration"]


@dataclass(frozen=True)
class Baseline:
    """Median head pose (degrees) and iris position of the candidate looking at the screen."""

    yaw: float
    pitch: float
    roll: float
    gaze_h: float
    gaze_v: float
    frames: int


class Calibration:
    """Collects frames showing exactly one face with open eyes until `seconds` have passed
    since the first such frame (and at least `min_frames` were seen), then fixes a Baseline.
    A candidate with a camera off to one side simply gets a baseline yaw of, say, 20°."""

    def __init__(self, seconds: float, min_frames: int = 5) -> None:
        self.seconds = seconds
        self.min_frames = min_frames
        self.baseline: Baseline | None = None
        self._first: float | None = None
        self._rows: list[tuple[float, float, float, float, float]] = []

    @property
    def done(self) -> bool:
        return self.baseline is not None

    def add(self, f: FrameFindings) -> Baseline | None:
        """Feed a frame; returns the Baseline on the frame that completes it."""
        if self.baseline is not None:
            return None
        if f.faces != 1 or f.pose is None or f.gaze is None or not f.gaze.eyes_open:
            return None
        if self._first is None:
            self._first = f.t
        self._rows.append((f.pose.yaw, f.pose.pitch, f.pose.roll, f.gaze.horizontal,
                           f.gaze.vertical))
        if f.t - self._first >= self.seconds and len(self._rows) >= self.min_frames:
            cols = list(zip(*self._rows, strict=True))
            med = [round(statistics.median(c), 4) for c in cols]
            self.baseline = Baseline(med[0], med[1], med[2], med[3], med[4], len(self._rows))
            return self.baseline
        return None

    def set(self, baseline: Baseline) -> None:
        """Use a known baseline (e.g. from an earlier session) instead of measuring one."""
        self.baseline = baseline
