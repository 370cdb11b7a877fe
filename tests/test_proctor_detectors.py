"""Hysteresis, calibration and the detectors' rules, on hand-made findings (no model)."""

from __future__ import annotations

from typing import Any

import pytest

from assessiq.core.kinds import KINDS
from assessiq.proctor.config import Hysteresis, ProctorConfig
from assessiq.proctor.detectors import CONDITION_KINDS, DetectorBank
from assessiq.proctor.findings import FaceBox, FrameFindings, Gaze, HeadPose
from assessiq.proctor.hysteresis import ConditionTracker

BOX = FaceBox(0.4, 0.3, 0.2, 0.3, 1.0, "mesh")


def frame(t: float, faces: int = 1, yaw: float = 0.0, pitch: float = 0.0, gaze_h: float = 0.5,
          eyes_open: bool = True, covered: bool = False, dark: bool = False,
          frozen: bool = False) -> FrameFindings:
    has_face = faces >= 1
    return FrameFindings(
        t=t, faces=faces, boxes=(BOX,) * faces,
        pose=HeadPose(yaw, pitch, 0.0) if has_face else None,
        gaze=Gaze(gaze_h, 0.5, "center", eyes_open) if has_face else None,
        brightness=10.0 if dark or covered else 120.0, texture=2.0 if covered else 40.0,
        dark=dark or covered, covered=covered, frozen=frozen, motion=0.0 if frozen else 1.0,
    )


def run(frames: list[FrameFindings], config: ProctorConfig | None = None
        ) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    bank = DetectorBank(lambda k, d: events.append((k, d)), config)
    for f in frames:
        bank.update(f)
    bank.flush(frames[-1].t)
    return events


def timeline(spec: list[tuple[float, dict[str, Any]]], fps: float = 10.0) -> list[FrameFindings]:
    """[(seconds, frame kwargs)] → findings every 1/fps seconds."""
    out, t = [], 0.0
    for secs, kwargs in spec:
        for _ in range(round(secs * fps)):
            out.append(frame(round(t, 4), **kwargs))
            t += 1 / fps
    return out


def test_tracker_starts_after_on_and_ends_after_off():
    tr = ConditionTracker(Hysteresis(on=2.0, off=1.0, grace=0.3))
    seen = []
    for i in range(100):
        t = i / 10
        holds = 2.0 <= t < 6.0
        r = tr.update(t, holds)
        if r:
            seen.append((round(t, 1), r.phase, r.start, r.end))
    assert seen == [(4.0, "start", 2.0, None), (7.0, "end", 2.0, 6.0)]


def test_tracker_short_condition_and_unknown_evidence():
    tr = ConditionTracker(Hysteresis(on=2.0, off=1.0))
    assert all(tr.update(i / 10, i < 19) is None for i in range(40))  # 1.9 s < 2 s: nothing
    tr = ConditionTracker(Hysteresis(on=1.0, off=1.0))
    assert tr.update(0.0, True) is None
    assert all(tr.update(0.1 * i, None) is None for i in range(1, 30))  # no evidence: no change
    started = tr.update(3.0, True)
    assert started is not None and started.start == 0.0


def test_tracker_grace_bridges_a_single_miss_and_confidence_counts_it():
    tr = ConditionTracker(Hysteresis(on=3.0, off=1.0, grace=0.5))
    out = [tr.update(i / 10, i != 15) for i in range(0, 35)]
    starts = [r for r in out if r is not None]
    assert len(starts) == 1 and starts[0].start == 0.0
    assert starts[0].confidence == pytest.approx(30 / 31, abs=1e-3)


def test_tracker_flush_ends_an_active_condition():
    tr = ConditionTracker(Hysteresis(on=0.5, off=1.0))
    for i in range(10):
        tr.update(i / 10, True)
    end = tr.flush(0.9)
    assert end is not None and end.phase == "end" and end.end == 0.9 and end.duration == 0.9
    assert tr.flush(1.0) is None


def test_events_follow_the_documented_kinds_and_fields():
    events = run(timeline([(5, {}), (10, {"faces": 0}), (5, {})]))
    assert [(k, d["phase"]) for k, d in events] == [("face.absent", "start"),
                                                    ("face.absent", "end")]
    start, end = events[0][1], events[1][1]
    assert start["start"] == pytest.approx(5.0) and "end" not in start
    assert end["start"] == pytest.approx(5.0) and end["end"] == pytest.approx(15.0)
    assert end["duration"] == pytest.approx(10.0) and 0 < end["confidence"] <= 1
    assert all(k in KINDS for k in CONDITION_KINDS)


def test_calibration_makes_a_natural_side_pose_normal():
    """A candidate whose camera sits off to the side (natural yaw 20°) is not 'turned' at 20°,
    but is when they turn a further 30°."""
    events = run(timeline([(10, {"yaw": 20.0}), (5, {"yaw": 50.0}), (3, {"yaw": 20.0})]))
    assert [(k, d["phase"]) for k, d in events] == [("head.turned", "start"),
                                                    ("head.turned", "end")]
    assert events[0][1]["start"] == pytest.approx(10.0)
    assert events[1][1]["yaw"] == pytest.approx(30.0)
    assert run(timeline([(30, {"yaw": 20.0, "pitch": -15})])) == []


def test_gaze_needs_open_eyes_and_a_frontal_head():
    # eyes shut for 5 s with the iris measurement drifting: no gaze event (blinks/closed eyes)
    assert run(timeline([(4, {}), (5, {"gaze_h": 0.8, "eyes_open": False}), (2, {})])) == []
    # eyes to the side for 4 s: gaze.away with a direction
    events = run(timeline([(4, {}), (4, {"gaze_h": 0.75}), (2, {})]))
    assert [k for k, _ in events] == ["gaze.away", "gaze.away"]
    assert events[0][1]["direction"] == "right"
    # head turned far with the eyes off-centre: head.turned only, never both for one cause
    events = run(timeline([(4, {}), (5, {"yaw": 45.0, "gaze_h": 0.2}), (2, {})]))
    assert {k for k, _ in events} == {"head.turned"}


def test_camera_conditions_take_precedence_over_face_absent():
    events = run(timeline([(4, {}), (5, {"faces": 0, "covered": True}), (2, {})]))
    assert {k for k, _ in events} == {"camera.blocked"}
    events = run(timeline([(4, {}), (5, {"faces": 0, "dark": True}), (2, {})]))
    assert {k for k, _ in events} == {"camera.blocked"}
    events = run(timeline([(4, {}), (5, {"dark": True}), (2, {})]))  # dark but visible
    assert events == []
    events = run(timeline([(4, {}), (5, {"frozen": True}), (2, {})]))
    assert {k for k, _ in events} == {"camera.frozen"}


def test_multiple_faces_reports_the_count_and_brief_passers_by_do_not_count():
    events = run(timeline([(4, {}), (5, {"faces": 2}), (2, {})]))
    assert [k for k, _ in events] == ["face.multiple", "face.multiple"]
    assert events[1][1]["faces"] == 2
    assert run(timeline([(4, {}), (1.5, {"faces": 2}), (4, {})])) == []


def test_config_validates():
    with pytest.raises(ValueError):
        ProctorConfig(min_fps=10, max_fps=5)
    with pytest.raises(ValueError):
        Hysteresis(on=-1, off=1)
    cfg = ProctorConfig().replace(yaw_limit=40.0)
    assert cfg.yaw_limit == 40.0
    assert run(timeline([(4, {}), (5, {"yaw": 35.0}), (2, {})]), cfg) == []
