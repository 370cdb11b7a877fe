"""The pose-reuse rule: a pose is solved again whenever a pose landmark moved more than
`still_px` since the frame it was last solved on — a real head turn is never hidden, a slow
drift is caught, and a still head costs no solvePnP."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("skimage", reason="the synthetic camera composes scikit-image photos")
pytest.importorskip("matplotlib", reason="grace_hopper.jpg comes from matplotlib")

from assessiq.proctor.analyzer import FrameAnalyzer
from assessiq.proctor.config import AnalyzerConfig
from assessiq.proctor.geometry import _IDS, PoseSolver, head_pose
from assessiq.proctor.synthetic import Scene, SyntheticCamera

Points = npt.NDArray[np.float64]


@pytest.fixture(scope="module")
def faces() -> dict[Scene, Points]:
    out = {}
    with FrameAnalyzer(still_images=True) as an:
        for scene in (Scene.PRESENT, Scene.TURNED_LEFT, Scene.TURNED_RIGHT):
            _, frame = next(iter(SyntheticCamera([(0.1, scene)], fps=10)))
            out[scene] = an.landmarks(frame)[0]
    return out


def test_a_still_head_reuses_the_pose_and_a_turn_is_solved(faces: dict[Scene, Points]) -> None:
    solver = PoseSolver(still_px=0.5)
    front = solver.solve(faces[Scene.PRESENT], 640, 480)
    assert front is not None and solver.solves == 1
    rng = np.random.default_rng(1)
    for _ in range(5):  # sensor-noise-sized jitter: the same pose, no solve
        jitter = faces[Scene.PRESENT] + rng.uniform(-0.45, 0.45, faces[Scene.PRESENT].shape)
        assert solver.solve(jitter, 640, 480) == front
    assert solver.solves == 1
    for scene in (Scene.TURNED_LEFT, Scene.TURNED_RIGHT, Scene.PRESENT):
        pose = solver.solve(faces[scene], 640, 480)
        want = head_pose(faces[scene], 640, 480)
        assert pose is not None and want is not None
        assert abs(pose.yaw - want.yaw) < 0.1 and abs(pose.pitch - want.pitch) < 0.1
    assert solver.solves == 4
    left = head_pose(faces[Scene.TURNED_LEFT], 640, 480)
    assert left is not None and abs(left.yaw - front.yaw) > 20  # the turn really is a turn


def test_a_slow_drift_is_measured_against_the_last_solved_frame(
        faces: dict[Scene, Points]) -> None:
    solver = PoseSolver(still_px=0.5)
    base = faces[Scene.PRESENT].copy()
    solver.solve(base, 640, 480)
    moved = base.copy()
    solves = []
    for _ in range(6):  # the nose tip creeps 0.3 px a frame: under the limit each time
        moved[_IDS[0], 0] += 0.3
        solver.solve(moved, 640, 480)
        solves.append(solver.solves)
    # reused once (0.3 px), solved at 0.6 px, reused, solved again... never two reuses running
    assert solves == [1, 2, 2, 3, 3, 4]


def test_zero_still_px_solves_every_frame_and_a_reset_forgets(
        faces: dict[Scene, Points]) -> None:
    always = PoseSolver()
    for _ in range(3):
        always.solve(faces[Scene.PRESENT], 640, 480)
    assert always.solves == 3
    reuse = PoseSolver(still_px=0.5)
    reuse.solve(faces[Scene.PRESENT], 640, 480)
    reuse.reset()
    reuse.solve(faces[Scene.PRESENT], 640, 480)
    assert reuse.solves == 2
    with pytest.raises(ValueError, match="pose_still_px"):
        AnalyzerConfig(pose_still_px=-1)


def test_video_pose_follows_a_head_turn_with_reuse_on() -> None:
    """In a video the analyzer's yaw (reuse on) tracks every-frame solving within 1.5°."""
    cam = SyntheticCamera([(1, Scene.SMALL_MOVES), (0.6, Scene.TURNED_LEFT),
                           (0.6, Scene.PRESENT), (0.6, Scene.TURNED_RIGHT)], fps=10)
    exact = AnalyzerConfig(pose_still_px=0.0)
    with FrameAnalyzer() as reuse, FrameAnalyzer(exact) as every:
        got = [reuse.analyse(f, t).pose for t, f in cam]
        want = [every.analyse(f, t).pose for t, f in cam]
    yaws = []
    for a, b in zip(got, want, strict=True):
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert abs(a.yaw - b.yaw) <= 1.5 and abs(a.pitch - b.pitch) <= 1.5
            yaws.append(a.yaw)
    assert max(yaws) - min(yaws) > 40  # the turns left and right were seen
