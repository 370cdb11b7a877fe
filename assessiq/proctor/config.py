"""When a proctoring condition starts and ends: thresholds and hysteresis, with their defaults.

The escalation policy (warnings, flags, score) lives elsewhere and refers to these by name;
this file only decides *when a condition holds*. Every default leans towards fairness: a
condition must hold for seconds before it counts, so blinks, glances under a second, small
head movements, lighting changes and partial occlusion never start an event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["AnalyzerConfig", "Hysteresis", "ProctorConfig"]


@dataclass(frozen=True)
class Hysteresis:
    """A condition starts after holding `on` seconds and ends after being clear `off` seconds.

    `grace` seconds of contrary evidence do not interrupt a condition that is building up
    (one missed detection inside ten seconds of absence does not restart the clock).
    """

    on: float
    off: float
    grace: float = 0.5

    def __post_init__(self) -> None:
        if self.on < 0 or self.off < 0 or self.grace < 0:
            raise ValueError("hysteresis times must be >= 0 seconds")


@dataclass(frozen=True)
class AnalyzerConfig:
    """Per-frame analysis settings.

    min_face_confidence   score a face detection needs to count (0..1)
    detect_interval       seconds between full-range face detections (which count small or
                          extra faces) while the mesh has no face or the last detection found
                          a face the mesh does not follow; also right after the mesh loses
                          its face
    stable_interval       seconds between detections while the picture outside the
                          candidate's face stays as it was at the last one
    change_level          grey levels a cell of the 40×30 scene grid must move beyond its
                          3×3 neighbourhood at the last detection to count as changed
    change_share          share of grid cells outside the face that must change to run the
                          detector early (at most every detect_interval / 2 seconds)
    detection_memory      seconds a face count from full-range detection stays valid
    dark_level            mean grey level (0..255) below which a frame is dark
    covered_level         mean grey level below which a nearly featureless frame is a covered lens
    covered_texture       grey-level standard deviation below which a frame is featureless
    frozen_diff           mean absolute difference (grey levels, on an 80×60 sampled thumbnail)
                          at or below which a frame repeats the previous one; live sensors
                          never get this low
    eyes_closed_ratio     eyelid gap / eye width below which the eyes count as closed (a blink:
                          gaze is not measured)
    pose_still_px         in a video, the head pose is solved again only when one of its 9
                          landmarks moved more than this many pixels since the frame it was
                          last solved on (0: solve every frame)
    max_width             frames wider than this are scaled down before analysis
    min_still_side        photos whose shorter side is smaller are enlarged to it (bilinear)
                          and given a border 0.6 times that wide before analysis
    """

    min_face_confidence: float = 0.5
    detect_interval: float = 0.4
    stable_interval: float = 1.0
    change_level: float = 12.0
    change_share: float = 0.02
    detection_memory: float = 0.6
    dark_level: float = 40.0
    covered_level: float = 60.0
    covered_texture: float = 9.0
    frozen_diff: float = 0.02
    eyes_closed_ratio: float = 0.12
    pose_still_px: float = 0.5
    max_width: int = 960
    min_still_side: int = 160

    def __post_init__(self) -> None:
        if not 0 < self.min_face_confidence <= 1:
            raise ValueError("min_face_confidence must be in (0, 1]")
        if not 0 <= self.detect_interval <= self.stable_interval:
            raise ValueError("need 0 <= detect_interval <= stable_interval (seconds)")
        if self.detection_memory < self.detect_interval:
            raise ValueError("detection_memory must be >= detect_interval")
        if not 0 < self.change_share <= 1 or self.change_level < 0:
            raise ValueError("change_share must be in (0, 1] and change_level >= 0")
        if not 16 <= self.min_still_side <= self.max_width:
            raise ValueError("min_still_side must be in [16, max_width]")
        if self.pose_still_px < 0:
            raise ValueError("pose_still_px must be >= 0")
        if self.max_width < 160:
            raise ValueError("max_width must be >= 160")


def _h(on: float, off: float, grace: float = 0.5) -> Hysteresis:
    return Hysteresis(on=on, off=off, grace=grace)


@dataclass(frozen=True)
class ProctorConfig:
    """Detector thresholds, hysteresis per event kind, and the analysis rate.

    yaw_limit, pitch_limit    degrees away from the candidate's calibrated pose that count as
                              "head turned" (looking down at a keyboard stays inside 30°)
    gaze_limit                iris offset from the calibrated position, as a fraction of the eye
                              width, that counts as "looking away" sideways
    gaze_vertical             also count looking up/down as away (off: reading notes or the
                              keyboard is normal)
    gaze_vertical_limit       the same for up/down, as a fraction of the eyelid gap
    calibration_seconds       seconds of frontal frames, at the start, that set the natural pose
    hysteresis                per kind: how long a condition must hold to start and stay clear
                              to end
    min_fps, max_fps          bounds of the adaptive analysis rate
    cpu_budget                target share of one core for analysis; the rate adapts to it
    heartbeat_every           seconds between proctor.heartbeat events
    """

    yaw_limit: float = 25.0
    pitch_limit: float = 30.0
    gaze_limit: float = 0.12
    gaze_vertical: bool = False
    gaze_vertical_limit: float = 0.25
    calibration_seconds: float = 3.0
    hysteresis: dict[str, Hysteresis] = field(
        default_factory=lambda: {
            "face.absent": _h(3.0, 1.0),
            "face.multiple": _h(2.0, 1.5),
            "gaze.away": _h(2.5, 1.0),
            "head.turned": _h(3.0, 1.5),
            "camera.blocked": _h(2.0, 1.0),
            "camera.frozen": _h(3.0, 1.0),
        }
    )
    min_fps: float = 5.0
    max_fps: float = 15.0
    cpu_budget: float = 0.06
    heartbeat_every: float = 5.0
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)

    def __post_init__(self) -> None:
        if not 0 < self.min_fps <= self.max_fps:
            raise ValueError("need 0 < min_fps <= max_fps")
        if not 0 < self.cpu_budget <= 1:
            raise ValueError("cpu_budget must be in (0, 1]")
        if self.heartbeat_every <= 0 or self.calibration_seconds < 0:
            raise ValueError("heartbeat_every must be > 0 and calibration_seconds >= 0")
        for limit in ("yaw_limit", "pitch_limit", "gaze_limit", "gaze_vertical_limit"):
            if getattr(self, limit) <= 0:
                raise ValueError(f"{limit} must be > 0")

    def hysteresis_for(self, kind: str) -> Hysteresis:
        """The hysteresis of `kind`; a missing entry falls back to the face.absent one."""
        return self.hysteresis.get(kind) or self.hysteresis["face.absent"]

    def replace(self, **changes: object) -> ProctorConfig:
        """A copy with some fields changed (a shallow `dataclasses.replace`)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return ProctorConfig(**values)
