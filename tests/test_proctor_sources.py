"""Frame sources: video files, image sequences, a missing camera, the synthetic camera."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("skimage", reason="the synthetic camera composes scikit-image photos")
pytest.importorskip("matplotlib", reason="grace_hopper.jpg comes from matplotlib")

from assessiq.proctor.errors import FrameSourceError, NoCameraError
from assessiq.proctor.frames import (
    CameraSource,
    ImageSequenceSource,
    VideoFileSource,
    read_image,
)
from assessiq.proctor.synthetic import Scene, SyntheticCamera, parse_timeline


def write_video(path, cam: SyntheticCamera) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), cam.fps, (640, 480))
    assert writer.isOpened()
    for _, frame in cam:
        writer.write(frame)
    writer.release()


def test_synthetic_camera_is_deterministic_and_timed():
    cam = SyntheticCamera([(1, Scene.PRESENT), (0.5, Scene.ABSENT)], fps=10, start=100.0)
    a, b = list(cam), list(SyntheticCamera(cam.timeline, fps=10, start=100.0))
    assert len(a) == 15 and [t for t, _ in a] == pytest.approx([100 + i / 10 for i in range(15)])
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))
    assert [(p.scene, p.start, p.end) for p in cam.plants()] == [
        (Scene.PRESENT, 100.0, 101.0), (Scene.ABSENT, 101.0, 101.5)]
    assert cam.scene_at(101.2) is Scene.ABSENT
    assert a[0][1].shape == (480, 640, 3) and a[0][1].dtype == np.uint8


def test_only_the_frozen_scene_repeats_frames():
    cam = SyntheticCamera([(1, Scene.PRESENT), (1, Scene.FROZEN)], fps=10)
    frames = [f for _, f in cam]
    assert not any(np.array_equal(frames[i], frames[i + 1]) for i in range(9))
    assert all(np.array_equal(frames[9], f) for f in frames[10:])


def test_timeline_parsing():
    assert parse_timeline("present:5, absent:2.5") == [(5.0, Scene.PRESENT), (2.5, Scene.ABSENT)]
    for bad in ["present", "present:0", "nobody:3", "present:x"]:
        with pytest.raises(ValueError, match="timeline entry"):
            parse_timeline(bad)
    with pytest.raises(ValueError):
        SyntheticCamera([])


def test_video_file_and_image_sequence(tmp_path):
    cam = SyntheticCamera([(1, Scene.PRESENT)], fps=10)
    video = tmp_path / "clip.avi"
    write_video(video, cam)
    src = VideoFileSource(video, start=5.0)
    frames = list(src)
    assert src.fps == pytest.approx(10.0) and len(frames) == 10
    assert frames[3][0] == pytest.approx(5.3) and frames[0][1].shape == (480, 640, 3)
    paths = []
    for i, (_, frame) in enumerate(list(cam)[:3]):
        paths.append(tmp_path / f"f{i}.png")
        cv2.imwrite(str(paths[-1]), frame)
    seq = list(ImageSequenceSource(paths, fps=2))
    assert [t for t, _ in seq] == [0.0, 0.5, 1.0]


def test_unreadable_inputs_give_one_line_errors(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "text.avi").write_text("not a video")
    cases = [
        (lambda: read_image(tmp_path / "missing.png"), "no such file"),
        (lambda: read_image(tmp_path / "text.png"), "not an image"),
        (lambda: read_image(tmp_path), "directory"),
        (lambda: VideoFileSource(tmp_path / "text.avi"), "not a video"),
        (lambda: VideoFileSource(tmp_path / "missing.avi"), "no such file"),
    ]
    for call, message in cases:
        with pytest.raises(FrameSourceError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


def test_missing_camera_is_a_clear_error():
    with pytest.raises(NoCameraError, match="no camera at index 7"):
        CameraSource(7)
