"""Fairness: honest behaviour never starts an event; planted conditions always do, with the
right start and end times. The synthetic camera runs on a simulated clock (no sleeping)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("skimage", reason="the synthetic camera composes scikit-image photos")
pytest.importorskip("matplotlib", reason="grace_hopper.jpg comes from matplotlib")

from assessiq.core.identity import Identity
from assessiq.core.integrity import EventSigner
from assessiq.core.policy import Policy
from assessiq.core.score import evaluate
from assessiq.proctor.analyzer import FrameAnalyzer
from assessiq.proctor.pipeline import analyse_stream
from assessiq.proctor.synthetic import Scene, SyntheticCamera

TOLERANCE = 0.5  # seconds between a planted condition's edge and the event's time

HONEST = [
    (4, Scene.PRESENT), (6, Scene.SMALL_MOVES), (0.3, Scene.BLINK), (3, Scene.PRESENT),
    (0.2, Scene.BLINK), (2, Scene.PRESENT), (0.8, Scene.GLANCE_LEFT), (2, Scene.PRESENT),
    (0.8, Scene.GLANCE_RIGHT), (2, Scene.PRESENT), (0.6, Scene.TURNED_LEFT), (2, Scene.PRESENT),
    (6, Scene.DIM), (3, Scene.PRESENT), (5, Scene.OCCLUDED), (3, Scene.PRESENT),
    (1.2, Scene.ABSENT), (3, Scene.PRESENT),  # reaching for something out of view
]

# scene planted → the event kind it must produce
PLANTS = {
    Scene.ABSENT: "face.absent",
    Scene.TWO_FACES: "face.multiple",
    Scene.GLANCE_LEFT: "gaze.away",
    Scene.GLANCE_RIGHT: "gaze.away",
    Scene.TURNED_RIGHT: "head.turned",
    Scene.TURNED_LEFT: "head.turned",
    Scene.COVERED: "camera.blocked",
    Scene.FROZEN: "camera.frozen",
}


@pytest.fixture(scope="module")
def analyzer():
    with FrameAnalyzer() as a:
        yield a


def run(analyzer: FrameAnalyzer, cam: SyntheticCamera) -> list[tuple[str, dict[str, Any]]]:
    analyzer.reset()
    events: list[tuple[str, dict[str, Any]]] = []
    analyse_stream(cam, lambda k, d: events.append((k, d)), analyzer=analyzer, rate=10)
    return events


def conditions(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, d) for k, d in events if k != "proctor.heartbeat"]


@pytest.mark.parametrize("face", ["astronaut", "grace_hopper"])
def test_honest_sequence_produces_no_event(analyzer, face):
    cam = SyntheticCamera(HONEST, fps=15, face=face)
    events = run(analyzer, cam)
    assert conditions(events) == []
    assert flagged(events) == set()
    beats = [d for k, d in events if k == "proctor.heartbeat"]
    assert len(beats) >= 8 and all(b["calibrated"] for b in beats[1:])


def check_plants(cam: SyntheticCamera, events: list[tuple[str, dict[str, Any]]]) -> None:
    found = conditions(events)
    planted = [p for p in cam.plants() if p.scene in PLANTS]
    assert len(found) == 2 * len(planted), found
    for plant in planted:
        kind = PLANTS[plant.scene]
        starts = [d for k, d in found if k == kind and d["phase"] == "start"
                  and abs(d["start"] - plant.start) <= TOLERANCE]
        ends = [d for k, d in found if k == kind and d["phase"] == "end"
                and abs(d["start"] - plant.start) <= TOLERANCE]
        assert len(starts) == 1 and len(ends) == 1, (plant, found)
        assert abs(ends[0]["end"] - plant.end) <= TOLERANCE, (plant, ends)
        assert ends[0]["duration"] == pytest.approx(ends[0]["end"] - ends[0]["start"], abs=1e-3)
        assert ends[0]["confidence"] >= 0.3


def flagged(events: list[tuple[str, dict]]) -> set[str]:
    """The kinds the default policy flags, given the detectors' events signed into a log."""
    signer = EventSigner("fairness", Identity.generate())
    log = [signer.sign(kind, data, now=data.get("end", data.get("start", 0.0)))
           for kind, data in events]
    return {o.kind for o in evaluate(log, Policy.default()).flags}


@pytest.mark.parametrize("face", ["astronaut", "grace_hopper"])
def test_planted_conditions_always_flag_with_their_times(analyzer, face):
    cam = SyntheticCamera(
        [(5, Scene.PRESENT), (10, Scene.ABSENT), (4, Scene.PRESENT), (5, Scene.TWO_FACES),
         (4, Scene.PRESENT), (8, Scene.GLANCE_LEFT), (4, Scene.PRESENT),
         (8, Scene.TURNED_RIGHT), (4, Scene.PRESENT), (5, Scene.COVERED), (3, Scene.PRESENT),
         (5, Scene.FROZEN), (3, Scene.PRESENT)],
        fps=15, face=face,
    )
    events = run(analyzer, cam)
    check_plants(cam, events)
    assert {"face.absent", "face.multiple", "gaze.away"} <= flagged(events)
    multiple = [d for k, d in events if k == "face.multiple"]
    assert all(d["faces"] == 2 for d in multiple)


@pytest.mark.parametrize("seed", [11, 12])
def test_plants_at_random_times_are_found(analyzer, seed):
    """The three headline plants (absent 10 s, a second face 5 s, looking away 8 s) at random
    offsets, in random order, with honest behaviour between them."""
    rng = np.random.default_rng(seed)
    timeline: list[tuple[float, Scene]] = [(round(float(rng.uniform(4, 6)), 2), Scene.PRESENT)]
    order = [(10.0, Scene.ABSENT), (5.0, Scene.TWO_FACES), (8.0, Scene.GLANCE_RIGHT)]
    for i in rng.permutation(3):
        timeline.append(order[i])
        timeline.append((round(float(rng.uniform(3, 5)), 2), Scene.SMALL_MOVES))
    cam = SyntheticCamera(timeline, fps=15, seed=seed)
    events = run(analyzer, cam)
    check_plants(cam, events)
    # under the default policy, each headline plant is a flag for the interviewer
    assert {"face.absent", "face.multiple", "gaze.away"} <= flagged(events)
