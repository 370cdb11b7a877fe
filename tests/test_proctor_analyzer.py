"""The per-frame analysis' shortcuts give the same answers as the long way: the lean graph
call, the landmark parser, the cached pose solver; and the full-range detector runs rarely on
a still picture yet at once when someone steps into it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("skimage", reason="the synthetic camera composes scikit-image photos")
pytest.importorskip("matplotlib", reason="grace_hopper.jpg comes from matplotlib")

from mediapipe.framework.formats import landmark_pb2

from assessiq.proctor.analyzer import FrameAnalyzer, load_mediapipe
from assessiq.proctor.config import AnalyzerConfig
from assessiq.proctor.geometry import PoseSolver, head_pose
from assessiq.proctor.mpgraph import LeanSolution, landmarks_from_bytes
from assessiq.proctor.photos import photo
from assessiq.proctor.synthetic import Scene, SyntheticCamera


@pytest.fixture(scope="module")
def video():
    with FrameAnalyzer() as a:
        yield a


def test_lean_graph_call_gives_the_landmarks_process_gives():
    solutions = load_mediapipe()
    cam = SyntheticCamera([(1, Scene.SMALL_MOVES)], fps=10)
    with solutions.face_mesh.FaceMesh(refine_landmarks=True) as public, \
            solutions.face_mesh.FaceMesh(refine_landmarks=True) as lean_mesh:
        lean = LeanSolution(lean_mesh, "image", "multi_face_landmarks")
        assert lean.lean  # mediapipe 0.10.21's internals are as expected
        for _, frame in cam:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            want = public.process(rgb).multi_face_landmarks
            got = lean.run(rgb)
            assert want is not None and len(got) == len(want) == 1
            ref = np.array([[p.x for p in want[0].landmark], [p.y for p in want[0].landmark],
                            [p.z for p in want[0].landmark]])
            rows = landmarks_from_bytes(got[0])
            assert rows.shape == (3, 478)
            np.testing.assert_array_equal(rows, ref)
        assert lean.run(np.zeros((480, 640, 3), np.uint8)) == []  # no face: nothing


def test_the_fallback_through_process_gives_the_same_landmarks():
    """When mediapipe's internals differ, LeanSolution goes through the public `process`."""
    solutions = load_mediapipe()
    rgb = cv2.cvtColor(photo("astronaut"), cv2.COLOR_BGR2RGB)
    with solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as a, \
            solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as b:
        lean = LeanSolution(a, "image", "multi_face_landmarks")
        public = LeanSolution(b, "image", "multi_face_landmarks")
        public.lean = False
        got, want = lean.run(rgb), public.run(rgb)
        assert len(got) == len(want) == 1
        np.testing.assert_array_equal(landmarks_from_bytes(got[0]), landmarks_from_bytes(want[0]))
        assert public.run(np.zeros((480, 640, 3), np.uint8)) == []


def test_landmark_parser_handles_the_layouts_the_fast_path_does_not():
    msg = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in [(0.25, 0.5, -0.01), (0.0, 0.75, 0.02), (0.5, 0.5, 0.0)]:  # zeros are omitted
        msg.landmark.add(x=x, y=y, z=z)
    rows = landmarks_from_bytes(msg.SerializeToString())
    np.testing.assert_allclose(rows.T, [(0.25, 0.5, -0.01), (0.0, 0.75, 0.02), (0.5, 0.5, 0.0)],
                               rtol=1e-6)
    msg = landmark_pb2.NormalizedLandmarkList()
    msg.landmark.add(x=0.1, y=0.2, z=0.3, visibility=0.9)  # an extra field: 22 bytes a point
    np.testing.assert_allclose(landmarks_from_bytes(msg.SerializeToString()).T,
                               [(0.1, 0.2, 0.3)], rtol=1e-6)
    assert landmarks_from_bytes(b"").shape == (3, 0)


def test_cached_pose_solver_agrees_with_a_fresh_solve(video):
    cam = SyntheticCamera([(1, Scene.SMALL_MOVES), (0.5, Scene.TURNED_LEFT), (0.5, Scene.PRESENT),
                           (0.5, Scene.TURNED_RIGHT), (1, Scene.SMALL_MOVES)], fps=10)
    video.reset()
    solver = PoseSolver()
    compared = 0
    for _, frame in cam:
        for pts in video.landmarks(frame):
            a, b = solver.solve(pts, 640, 480), head_pose(pts, 640, 480)
            assert a is not None and b is not None
            assert abs(a.yaw - b.yaw) < 0.1 and abs(a.pitch - b.pitch) < 0.1
            assert abs(a.roll - b.roll) < 0.1
            compared += 1
    assert compared >= 30


def _step_in(frame: np.ndarray, x: int = 100, scale: float = 0.3) -> np.ndarray:
    """Grace Hopper, small, at the bottom left of the frame: someone stepping in behind."""
    out = frame.copy()
    small = cv2.resize(photo("grace_hopper"), None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    out[480 - h :, x - w // 2 : x - w // 2 + w] = small
    return out


def test_detector_runs_rarely_on_a_still_picture_and_at_once_on_a_change():
    cfg = AnalyzerConfig()
    cam = SyntheticCamera([(4, Scene.PRESENT)], fps=10)
    frames = list(cam)
    with FrameAnalyzer(cfg) as an:
        counts, runs = [], []
        for i, (t, frame) in enumerate(frames):
            if 20 <= i < 30:
                frame = _step_in(frame)
            before = an.detections
            counts.append(an.analyse(frame, t).faces)
            runs.append(an.detections - before)
    # 0–2 s, the candidate alone and swaying: the detector ran on the first frame and then
    # only every stable_interval
    assert counts[:20] == [1] * 20
    assert 1 <= sum(runs[:20]) <= 1 + 2.0 / cfg.stable_interval
    # someone steps in at 2.0 s: counted within 0.2 s (the picture is compared with the last
    # detection at most that often), long before the next routine run at 3.0 s, and on every
    # frame while they stay
    first = counts.index(2)
    assert 20 <= first <= 22 and counts[first:30] == [2] * (30 - first)
    # they leave at 3.0 s: one face again within 0.3 s
    assert counts[33:] == [1] * (len(counts) - 33)


def test_a_detection_running_on_every_frame_finds_the_same_faces():
    """The schedule only skips work: with the detector on every frame the counts agree."""
    cam = SyntheticCamera([(1, Scene.PRESENT), (1, Scene.TWO_FACES), (1, Scene.PRESENT),
                           (0.6, Scene.ABSENT), (1, Scene.PRESENT)], fps=10)
    always = AnalyzerConfig(detect_interval=0.0, stable_interval=0.0)
    with FrameAnalyzer() as scheduled, FrameAnalyzer(always) as every:
        a = [scheduled.analyse(f, t).faces for t, f in cam]
        b = [every.analyse(f, t).faces for t, f in cam]
        assert every.detections == len(cam) > 2 * scheduled.detections
    assert a == b
