"""Cameras and microphones that are missing or busy: a clear one-line error from the
opener, and a call that goes on without them."""

from __future__ import annotations

import asyncio
import errno
import time

import pytest

from assessiq.media import (
    SYNTHETIC,
    DeviceBusyError,
    MediaConfig,
    NoDeviceError,
    dominant_frequency,
    open_camera,
    open_microphone,
    read_stamp,
)
from assessiq.media.devices import (
    _device_error,
    _linux_cameras,
    _linux_microphones,
    parse_device_list,
)
from assessiq.media.loopback import connect_pair
from assessiq.media.playback import AudioPlayer, PlaybackError

MISSING_CAMERA = "/dev/video99"
MISSING_MIC = "hw:99,0"


def test_missing_camera_and_microphone_say_so():
    with pytest.raises(NoDeviceError, match=r"^no camera found at /dev/video99$"):
        open_camera(MISSING_CAMERA)
    with pytest.raises(NoDeviceError, match=r"^no microphone found at hw:99,0"):
        open_microphone(MISSING_MIC)


def test_busy_and_forbidden_devices_map_to_actionable_messages():
    busy = _device_error("camera", "/dev/video0", OSError(errno.EBUSY, "Device busy"))
    assert isinstance(busy, DeviceBusyError)
    assert str(busy).startswith("camera busy: /dev/video0 is in use by another app")
    denied = _device_error("microphone", "0", OSError(errno.EACCES, "Permission denied"))
    assert "permission denied" in str(denied) and "\n" not in str(denied)


def test_linux_listing_reads_sysfs_and_alsa(tmp_path):
    for n, (name, index) in enumerate([("HD Webcam", "0"), ("HD Webcam", "1"),
                                       ("IR Camera", "0")]):
        d = tmp_path / f"video{n}"
        d.mkdir()
        (d / "name").write_text(name + "\n")
        (d / "index").write_text(index + "\n")
    cams = _linux_cameras(tmp_path)
    assert [(c.id, c.name) for c in cams] == [("/dev/video0", "HD Webcam"),
                                              ("/dev/video2", "IR Camera")]
    pcm = tmp_path / "pcm"
    pcm.write_text("00-00: ALC257 Analog : ALC257 Analog : playback 1 : capture 1\n"
                   "00-03: HDMI 0 : HDMI 0 : playback 1\n"
                   "01-00: USB Audio : USB Audio : capture 1\n")
    mics = _linux_microphones(pcm)
    assert [(m.id, m.name) for m in mics] == [("hw:0,0", "ALC257 Analog"),
                                              ("hw:1,0", "USB Audio")]
    assert _linux_cameras(tmp_path / "absent") == []
    assert _linux_microphones(tmp_path / "absent") == []


def test_avfoundation_and_dshow_device_lists_parse():
    mac = ["AVFoundation video devices:", "[0] FaceTime HD Camera", "[1] Capture screen 0",
           "AVFoundation audio devices:", "[0] MacBook Pro Microphone"]
    assert [(d.kind, d.id, d.name) for d in parse_device_list("avfoundation", mac)] == [
        ("camera", "0", "FaceTime HD Camera"), ("microphone", "0", "MacBook Pro Microphone")]
    win = ['"Integrated Camera" (video)', '  Alternative name "@device_pnp_\\\\?\\usb"',
           '"Microphone Array (Realtek(R) Audio)" (audio)']
    assert [(d.kind, d.id) for d in parse_device_list("dshow", win)] == [
        ("camera", "Integrated Camera"), ("microphone", "Microphone Array (Realtek(R) Audio)")]


def test_no_audio_output_is_a_clear_error():
    with pytest.raises(PlaybackError) as info:
        AudioPlayer()
    assert "\n" not in str(info.value) and "audio output" in str(info.value)


async def test_call_goes_on_without_the_candidates_devices():
    events: list[bool] = []
    cand_cfg = MediaConfig(camera=MISSING_CAMERA, microphone=MISSING_MIC, speaker="auto",
                           keep_audio_seconds=0.5)
    host_cfg = MediaConfig(camera=SYNTHETIC, microphone=SYNTHETIC, speaker=None, tone_hz=550)
    (pa, host), (pb, cand) = await connect_pair(
        host_cfg, cand_cfg, on_camera_off=(None, events.append))
    try:
        assert events == [True]  # the camera the candidate asked for is not there
        assert not cand.has_camera and not cand.has_microphone
        text = " | ".join(cand.problems)
        assert "no camera found at /dev/video99" in text
        assert "no microphone found at hw:99,0" in text
        assert "audio output" in text  # this machine has no speakers either
        # the candidate still sees and hears the interviewer
        deadline = time.monotonic() + 20
        while cand.remote_video.received.count < 10 or len(cand.remote_audio.recent()) < 24000:
            assert time.monotonic() < deadline, "no media from the host"
            await asyncio.sleep(0.05)
        frame = cand.remote_video.slot.frame()
        assert frame is not None
        assert read_stamp(frame.to_ndarray(format="yuv420p")[:480]) is not None
        assert abs(dominant_frequency(cand.remote_audio.recent()) - 550) < 3
        # and the host gets nothing from the candidate, without any error
        stats = await host.stats()
        assert stats["video"]["frames_received"] == 0 and stats["video"]["frames_sent"] > 0
        assert cand.self_jpeg() is None
        cstats = await cand.stats()
        assert cstats["has_camera"] is False and len(cstats["problems"]) == 3
    finally:
        await host.close()
        await cand.close()
        await pa.close()
        await pb.close()
