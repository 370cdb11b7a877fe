"""`assessiq proctor analyze|synth` end to end, in process."""

from __future__ import annotations

import json

import cv2
import pytest

pytest.importorskip("skimage", reason="the sample photos come from scikit-image")
pytest.importorskip("matplotlib", reason="grace_hopper.jpg comes from matplotlib")

from assessiq.cli import main
from assessiq.proctor.photos import lfw_faces, photo


def test_analyze_images_and_a_video(tmp_path, capsys):
    face, cat = tmp_path / "face.png", tmp_path / "cat.jpg"
    cv2.imwrite(str(face), photo("grace_hopper"))
    cv2.imwrite(str(cat), photo("chelsea"))
    video = tmp_path / "clip.avi"
    assert main(["proctor", "synth", str(video), "--fps", "10",
                 "--timeline", "present:4,absent:5,present:2"]) == 0
    capsys.readouterr()
    assert main(["proctor", "analyze", str(face), str(cat), str(video), "--json"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert "loading face models" in err
    assert rows[0]["file"] == str(face) and rows[0]["faces"] == 1
    assert set(rows[0]) >= {"file", "faces", "yaw", "pitch", "roll", "gaze", "findings"}
    assert rows[0]["gaze"]["direction"] == "center" and abs(rows[0]["yaw"]) < 10
    assert rows[1]["faces"] == 0 and rows[1]["yaw"] is None and rows[1]["gaze"] is None
    assert rows[1]["findings"] == ["no_face"]
    events = rows[2]["events"]
    assert [(e["kind"], e["phase"]) for e in events] == [("face.absent", "start"),
                                                          ("face.absent", "end")]
    assert events[1]["start"] == pytest.approx(4.0, abs=0.3)
    assert events[1]["end"] == pytest.approx(9.0, abs=0.3)


def test_analyze_text_output(tmp_path, capsys):
    face = tmp_path / "face.jpg"
    cv2.imwrite(str(face), photo("astronaut"))
    assert main(["proctor", "analyze", str(face)]) == 0
    out = capsys.readouterr().out
    assert "1 face(s)" in out and "yaw" in out


def test_analyze_a_tiny_photo(tmp_path, capsys):
    """A 25×25 face crop (lfw_subset) as a file: the analyser enlarges it and finds the face."""
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), lfw_faces(1)[0])
    assert main(["proctor", "analyze", str(tiny), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["faces"] == 1 and row["yaw"] is not None


@pytest.mark.parametrize("make", ["missing", "text", "directory", "unreadable"])
def test_bad_files_exit_2_with_one_line(tmp_path, capsys, make):
    path = tmp_path / "x.png"
    if make == "text":
        path.write_text("hello")
    elif make == "directory":
        path.mkdir()
    elif make == "unreadable":  # reading it fails with an OSError (EIO), even as root
        path.symlink_to("/proc/self/mem")
    assert main(["proctor", "analyze", str(path)]) == 2
    err_lines = [ln for ln in capsys.readouterr().err.splitlines()
                 if ln.startswith("assessiq proctor:")]
    assert len(err_lines) == 1 and "Traceback" not in err_lines[0]


def test_bad_timeline_exits_2(tmp_path, capsys):
    assert main(["proctor", "synth", str(tmp_path / "a.avi"), "--timeline", "nobody:3"]) == 2
    assert "bad timeline entry" in capsys.readouterr().err


def test_watch_without_a_camera_exits_2(capsys):
    assert main(["proctor", "watch", "--camera", "9"]) == 2
    assert "no camera at index 9" in capsys.readouterr().err
