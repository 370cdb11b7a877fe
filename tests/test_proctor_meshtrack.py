"""MeshTracker (FaceMesh split into an acquiring graph and a lean tracking graph) gives the
very landmarks the bundled FaceMesh video graph gives, frame by frame, through a face coming
and going, turning, a second face and a covered lens."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("skimage", reason="the synthetic camera composes scikit-image photos")
pytest.importorskip("matplotlib", reason="grace_hopper.jpg comes from matplotlib")

from assessiq.proctor.analyzer import load_mediapipe
from assessiq.proctor.meshtrack import MeshTracker
from assessiq.proctor.mpgraph import landmarks_from_bytes
from assessiq.proctor.synthetic import Scene, SyntheticCamera


def rgb(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), dtype=np.uint8)


TIMELINE = [(1.5, Scene.SMALL_MOVES), (0.8, Scene.ABSENT), (1.0, Scene.TURNED_LEFT),
            (1.0, Scene.TWO_FACES), (0.6, Scene.COVERED), (1.0, Scene.GLANCE_RIGHT),
            (0.5, Scene.BLINK), (1.0, Scene.TURNED_RIGHT)]


def test_tracker_gives_the_video_graphs_landmarks_frame_by_frame() -> None:
    solutions = load_mediapipe()
    frames = [rgb(f) for _, f in SyntheticCamera(TIMELINE, fps=10)]
    tracker = MeshTracker()
    assert tracker.lean  # mediapipe 0.10.21's graph has the expected layout
    counts = {0: 0, 1: 0}
    with solutions.face_mesh.FaceMesh(refine_landmarks=True, max_num_faces=1) as mesh:
        for i, image in enumerate(frames):
            want = mesh.process(image).multi_face_landmarks or []
            got = tracker.run(image)
            assert len(got) == len(want), f"frame {i}"
            counts[len(got)] += 1
            if want:
                ref = np.array([[p.x, p.y, p.z] for p in want[0].landmark]).T
                lm = landmarks_from_bytes(got[0])
                assert lm.shape == (3, 478)
                np.testing.assert_allclose(lm, ref, rtol=0, atol=1e-6, err_msg=f"frame {i}")
    tracker.close()
    # the sequence really lost and re-acquired the face (absent, covered) and tracked it
    assert counts[0] >= 10 and counts[1] >= 50


def test_reset_acquires_afresh_and_a_lost_face_is_found_again() -> None:
    frames = [f for _, f in SyntheticCamera([(0.5, Scene.PRESENT), (0.5, Scene.ABSENT),
                                             (0.5, Scene.PRESENT)], fps=10)]
    tracker = MeshTracker()
    seen = [len(tracker.run(rgb(f))) for f in frames]
    assert seen[:5] == [1] * 5 and seen[5:10] == [0] * 5 and seen[10:] == [1] * 5
    tracker.reset()
    assert len(tracker.run(rgb(frames[0]))) == 1
    tracker.close()
    tracker.close()  # twice is harmless
