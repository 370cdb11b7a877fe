"""Detectors: per-frame findings → debounced integrity events delivered to a sink.

Each event kind has a ConditionTracker (hysteresis from ProctorConfig). Events follow
`assessiq.core.kinds`: condition kinds carry phase "start"/"end", start, end, duration and
confidence, plus their own fields (faces, direction, yaw/pitch relative to the calibration).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..core.kinds import KINDS
from .calibration import Baseline, Calibration
from .config import ProctorConfig
from .findings import FrameFindings
from .geometry import direction_of
from .hysteresis import ConditionTracker, Transition

__all__ = ["CONDITION_KINDS", "DetectorBank", "EventSink"]

log = logging.getLogger(__name__)

EventSink = Callable[[str, dict[str, Any]], None]

CONDITION_KINDS = (
    "face.absent", "face.multiple", "gaze.away", "head.turned", "camera.blocked", "camera.frozen",
)
assert all(k in KINDS for k in CONDITION_KINDS)

Observation = tuple[bool | None, dict[str, Any] | None]


class DetectorBank:
    """All the proctor's detectors. Call `update(findings)` for each analysed frame in time
    order and `flush(t)` when the stream ends (active conditions end at `t`)."""

    def __init__(self, sink: EventSink, config: ProctorConfig | None = None) -> None:
        self.sink = sink
        self.config = config or ProctorConfig()
        self.calibration = Calibration(self.config.calibration_seconds)
        self.trackers = {k: ConditionTracker(self.config.hysteresis_for(k))
                         for k in CONDITION_KINDS}
        self.events = 0

    @property
    def active(self) -> list[str]:
        """Kinds whose condition is currently on."""
        return [k for k, tr in self.trackers.items() if tr.active]

    def update(self, f: FrameFindings) -> None:
        if self.calibration.add(f) is not None:
            log.info("calibrated: %s", self.calibration.baseline)
        observations: dict[str, Observation] = {
            "camera.blocked": self._blocked(f),
            "camera.frozen": (None if f.motion < 0 else f.frozen, None),
            "face.absent": self._absent(f),
            "face.multiple": (f.faces >= 2, {"faces": f.faces}),
            "head.turned": self._head(f),
            "gaze.away": self._gaze(f),
        }
        for kind, (holds, details) in observations.items():
            tr = self.trackers[kind].update(f.t, holds, details)
            if tr is not None:
                self._emit(kind, tr)

    def flush(self, t: float) -> None:
        for kind, tracker in self.trackers.items():
            tr = tracker.flush(t)
            if tr is not None:
                self._emit(kind, tr)

    def _emit(self, kind: str, tr: Transition) -> None:
        data: dict[str, Any] = {"phase": tr.phase, "start": round(tr.start, 3)}
        if tr.end is not None:
            data["end"] = round(tr.end, 3)
            data["duration"] = round(tr.end - tr.start, 3)
        data["confidence"] = tr.confidence
        data.update(tr.details)
        self.events += 1
        log.debug("event %s %s", kind, data)
        self.sink(kind, data)

    # -- what each condition means, frame by frame ------------------------------------------

    @staticmethod
    def _blocked(f: FrameFindings) -> Observation:
        return f.covered or (f.dark and f.faces == 0), None

    @staticmethod
    def _absent(f: FrameFindings) -> Observation:
        if f.covered or (f.dark and f.faces == 0):
            return None, None  # camera.blocked speaks for this frame
        return f.faces == 0, None

    def _baseline(self, f: FrameFindings) -> Baseline | None:
        return self.calibration.baseline if f.pose is not None else None

    def _head(self, f: FrameFindings) -> Observation:
        base = self._baseline(f)
        if base is None or f.pose is None:
            return None, None
        dyaw = f.pose.yaw - base.yaw
        dpitch = f.pose.pitch - base.pitch
        turned = abs(dyaw) > self.config.yaw_limit or abs(dpitch) > self.config.pitch_limit
        return turned, {"yaw": round(dyaw, 1), "pitch": round(dpitch, 1)}

    def _gaze(self, f: FrameFindings) -> Observation:
        base = self._baseline(f)
        if base is None or f.pose is None or f.gaze is None or not f.gaze.eyes_open:
            return None, None
        cfg = self.config
        if (abs(f.pose.yaw - base.yaw) > cfg.yaw_limit
                or abs(f.pose.pitch - base.pitch) > cfg.pitch_limit):
            return None, None  # the head is turned: head.turned speaks for this frame
        dh = f.gaze.horizontal - base.gaze_h
        dv = f.gaze.vertical - base.gaze_v
        away = abs(dh) > cfg.gaze_limit or (cfg.gaze_vertical and abs(dv) > cfg.gaze_vertical_limit)
        if not cfg.gaze_vertical:
            dv = 0.0
        return away, {"direction": direction_of(dh, dv, cfg.gaze_limit, cfg.gaze_vertical_limit)}
