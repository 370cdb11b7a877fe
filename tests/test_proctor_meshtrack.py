"""MeshTracker (FaceMesh split into an acquiring graph and a lean tracking graph) gives the
very landmarks the bundled FaceMesh video graph gives, frame by frame, through a face coming
and going, turning, a second face and a covered lens; given only the face's region (its
default), the same to a twentieth of a pixel a step."""

from __future__ import annotations

from functools import partial

import cv2
import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("skimage", reason="the synthetic camera composes scikit-image photos")
pytest.importorskip("matplotlib", reason="grace_hopper.jpg comes from matplotlib")

from assessiq.proctor.analyzer import load_mediapipe
from assessiq.proctor.meshtrack import MeshTracker
from assessiq.proctor.synthetic import Scene, SyntheticCamera

Frame = npt.NDArray[np.uint8]
Rows = npt.NDArray[np.float64]


def rgb(frame: Frame) -> Frame:
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), dtype=np.uint8)


TIMELINE = [(1.5, Scene.SMALL_MOVES), (0.8, Scene.ABSENT), (1.0, Scene.TURNED_LEFT),
            (1.0, Scene.TWO_FACES), (0.6, Scene.COVERED), (1.0, Scene.GLANCE_RIGHT),
            (0.5, Scene.BLINK), (1.0, Scene.TURNED_RIGHT)]


def video_graph(frames: list[Frame]) -> list[Rows | None]:
    """The bundled FaceMesh video graph's landmarks of each BGR frame in turn, as rows
    (3, 478) of x, y, z; None where it found no face."""
    with load_mediapipe().face_mesh.FaceMesh(refine_landmarks=True, max_num_faces=1) as mesh:
        found = [mesh.process(rgb(f)).multi_face_landmarks for f in frames]
    return [np.array([[p.x, p.y, p.z] for p in m[0].landmark]).T if m else None for m in found]


@pytest.fixture(scope="module")
def timeline() -> tuple[list[Frame], list[Rows | None]]:
    """TIMELINE's BGR frames and the video graph's landmarks of them (run once)."""
    frames = [f for _, f in SyntheticCamera(TIMELINE, fps=10)]
    return frames, video_graph(frames)


def test_tracker_gives_the_video_graphs_landmarks_frame_by_frame(
        timeline: tuple[list[Frame], list[Rows | None]]) -> None:
    frames, wanted = timeline
    tracker = MeshTracker(crop=False)
    assert tracker.lean  # mediapipe 0.10.21's graph has the expected layout
    counts = {0: 0, 1: 0}
    for i, (frame, want) in enumerate(zip(frames, wanted, strict=True)):
        got = tracker.run(rgb(frame))
        assert len(got) == (want is not None), f"frame {i}"
        counts[len(got)] += 1
        if want is not None:
            assert got[0].shape == (3, 478)
            # bit for bit: float32 arithmetic as in the calculators, libm's atan2f/cosf/sinf
            np.testing.assert_array_equal(got[0], want, err_msg=f"frame {i}")
    tracker.close()
    # the sequence really lost and re-acquired the face (absent, covered) and tracked it
    assert counts[0] >= 10 and counts[1] >= 50


def _region_vs_whole(frames: list[Frame]) -> tuple[list[float], list[int]]:
    """Each BGR frame through a tracker given the whole frame, and through one given only the
    face's region but following the same ROI: (the largest landmark difference, in px, of
    each frame both follow; how many faces each frame gave, when both agree)."""
    whole, region = MeshTracker(crop=False), MeshTracker()
    diffs, faces = [], []
    for f in frames:
        roi = whole._roi
        region._roi = roi
        want = whole.follow(f, partial(rgb, f))
        got = region.follow(f, partial(rgb, f))
        assert len(got) == len(want)
        faces.append(len(got))
        if got and roi is not None:
            diffs.append(float(np.abs((got[0] - want[0])[:2]).max() * 640))
    whole.close()
    region.close()
    return diffs, faces


def test_the_faces_region_gives_the_whole_frames_landmarks_to_a_twentieth_of_a_pixel(
        timeline: tuple[list[Frame], list[Rows | None]]) -> None:
    diffs, faces = _region_vs_whole(timeline[0])
    assert len(diffs) >= 50 and max(diffs) < 0.05  # one step: rounding of the crop's ROI only
    assert max(diffs) > 0  # really two paths (their ROI arithmetic differs in the last bits)
    assert faces.count(0) >= 10


def test_a_face_cut_by_the_frames_edge_is_followed_as_in_the_whole_frame() -> None:
    """The crop is cut at the frame's edge, where both paths replicate the same edge pixels."""
    shift = np.array([[1, 0, -300], [0, 1, 60]], np.float32)  # the face half out, left, low
    frames = [np.asarray(cv2.warpAffine(f, shift, (640, 480), borderMode=cv2.BORDER_REPLICATE),
                         dtype=np.uint8)
              for _, f in SyntheticCamera([(1.0, Scene.SMALL_MOVES)], fps=10)]
    whole = MeshTracker(crop=False)
    whole.follow(frames[0], lambda: rgb(frames[0]))
    assert whole._roi is not None and whole._roi.x_center - whole._roi.width / 2 < 0
    whole.close()
    diffs, faces = _region_vs_whole(frames)
    assert faces == [1] * len(frames) and max(diffs) < 0.05


def test_the_region_tracker_finds_the_face_in_the_frames_the_video_graph_does(
        timeline: tuple[list[Frame], list[Rows | None]]) -> None:
    frames, wanted = timeline
    tracker = MeshTracker()
    for i, (frame, want) in enumerate(zip(frames, wanted, strict=True)):
        got = tracker.follow(frame, partial(rgb, frame))
        assert len(got) == (want is not None), f"frame {i}"
    tracker.close()


def test_reset_acquires_afresh_and_a_lost_face_is_found_again() -> None:
    frames = [f for _, f in SyntheticCamera([(0.5, Scene.PRESENT), (0.5, Scene.ABSENT),
                                             (0.5, Scene.PRESENT)], fps=10)]
    tracker = MeshTracker()
    seen = []
    for f in frames:
        before = tracker.acquisitions
        seen.append(len(tracker.run(rgb(f))))
    assert seen[:5] == [1] * 5 and seen[5:10] == [0] * 5 and seen[10:] == [1] * 5
    assert tracker.acquisitions == before  # the last frame followed the face, no detection
    tracker.reset()
    assert len(tracker.run(rgb(frames[0]))) == 1
    assert tracker.acquisitions == before + 1  # after a reset the face is detected afresh
    tracker.close()
    tracker.close()  # twice is harmless


def test_embedding_reader_reads_packed_floats_and_refuses_a_broken_message() -> None:
    from mediapipe.tasks.cc.components.containers.proto import embeddings_pb2

    from assessiq.proctor.meshpost import floats_of_embeddings

    msg = embeddings_pb2.EmbeddingResult()
    for i, values in enumerate(([0.5, -1.25, 3.0], [7.0], [float(v) for v in range(300)])):
        e = msg.embeddings.add(head_index=i, head_name=f"h{i}")
        e.float_embedding.values.extend(values)
    msg.timestamp_ms = 123
    blob = msg.SerializeToString()
    got = floats_of_embeddings(blob)
    assert [g.tolist() for g in got] == [[0.5, -1.25, 3.0], [7.0], list(range(300))]
    for cut in (1, 3, 10, len(blob) - 5):
        with pytest.raises(ValueError, match="truncated"):
            floats_of_embeddings(blob[:-cut])


def test_without_the_lean_graph_the_whole_video_graph_gives_the_same() -> None:
    """The fallback (mediapipe laid out otherwise, tensors not as expected) is FaceMesh's own
    video graph: the same landmarks, only slower."""
    frames = [f for _, f in SyntheticCamera(TIMELINE[:4], fps=10)]
    tracker = MeshTracker()
    tracker._use_whole("a test")
    assert not tracker.lean
    for i, (frame, want) in enumerate(zip(frames, video_graph(frames), strict=True)):
        got = tracker.run(rgb(frame))
        assert len(got) == (want is not None), f"frame {i}"
        if want is not None:
            np.testing.assert_array_equal(got[0], want, err_msg=f"frame {i}")
    tracker.close()


def test_closing_a_tracker_ends_its_graph_threads() -> None:
    import os

    if not os.path.isdir("/proc/self/task"):
        pytest.skip("counts native threads through /proc (Linux)")
    image = np.zeros((480, 640, 3), np.uint8)
    MeshTracker().close()  # anything loaded once per process is loaded now
    before = len(os.listdir("/proc/self/task"))
    for _ in range(3):
        tracker = MeshTracker()
        tracker.run(image)
        tracker.close()
    assert len(os.listdir("/proc/self/task")) <= before
