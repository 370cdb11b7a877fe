"""attach_media on two real peer connections in one process (loopback, host candidates only):
media both ways, mute, camera off, the proctor tap, JPEG frames, statistics."""

from __future__ import annotations

import asyncio
import threading

import cv2
import numpy as np
import pytest

from assessiq.media import SYNTHETIC, MediaConfig, MediaError, dominant_frequency, read_stamp
from assessiq.media.loopback import connect_pair
from tests.peer_helpers import eventually


def synthetic(**kw) -> MediaConfig:
    base = dict(camera=SYNTHETIC, microphone=SYNTHETIC, speaker=None, keep_audio_seconds=0.5)
    base.update(kw)
    return MediaConfig(**base)


def luma(frame) -> np.ndarray:
    return frame.to_ndarray(format="yuv420p")[: frame.height]


async def test_call_toggles_tap_jpeg_and_stats():
    events: list[bool] = []
    (pa, host), (pb, cand) = await connect_pair(
        synthetic(tone_hz=500), synthetic(tone_hz=700, tap_rate=5),
        on_camera_off=(None, events.append),
    )
    try:
        # media flows both ways; each side's frames carry the other's stamps
        await eventually(lambda: host.remote_video.received.count > 10
                    and cand.remote_video.received.count > 10, what="video both ways")
        for media in (host, cand):
            frame = media.remote_video.slot.frame()
            assert frame is not None and read_stamp(luma(frame)) is not None
        await eventually(lambda: len(host.remote_audio.recent()) >= 24000
                    and len(cand.remote_audio.recent()) >= 24000, what="audio both ways")
        assert abs(dominant_frequency(host.remote_audio.recent()) - 700) < 3
        assert abs(dominant_frequency(cand.remote_audio.recent()) - 500) < 3

        # JPEG for the UI: decodable, the right size, cached until the next frame
        for data in (host.remote_jpeg(), host.self_jpeg(), cand.remote_jpeg()):
            assert data is not None and data[:2] == b"\xff\xd8"
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert img.shape == (480, 640, 3)

        # the proctor's tap: BGR frames at its own lower rate, read in a worker thread
        tap = cand.tap
        assert tap is not None and host.tap is None
        got: list[tuple[float, np.ndarray]] = []

        def reader() -> None:
            for t, bgr in tap.frames(idle_timeout=10):
                got.append((t, bgr))
                if len(got) == 5:
                    return

        th = threading.Thread(target=reader)
        th.start()
        await eventually(lambda: not th.is_alive(), what="five tapped frames")
        assert len(got) == 5 and got[0][1].shape == (480, 640, 3)
        assert all(read_stamp(bgr) is not None for _, bgr in got)  # before encoding: exact
        assert tap.taken < tap.offered / 3  # 5 of every 30 frames, not all of them

        # mute: the other side hears silence; unmute: the tone again
        def rms() -> float:
            samples = host.remote_audio.recent()
            return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0

        cand.set_muted(True)
        assert cand.muted
        # wait for the kept window (0.5 s) to hold only audio sent after the mute
        await eventually(lambda: rms() < 0.01, what="silence after muting")
        cand.set_muted(False)
        await eventually(lambda: rms() > 0.05, what="the tone after unmuting")

        # camera off: black, no stamps, the tap stops, the callback hears it; then back on
        cand.set_camera(False)
        cand.set_camera(False)  # no change, no second event
        assert events == [True] and not cand.camera_on
        taken = tap.taken
        await asyncio.sleep(0.8)
        frame = host.remote_video.slot.frame()
        assert frame is not None and read_stamp(luma(frame)) is None
        assert float(luma(frame).mean()) < 30
        assert tap.taken == taken
        cand.set_camera(True)
        assert events == [True, False]
        n = host.remote_video.received.count
        await eventually(lambda: host.remote_video.received.count > n + 5, what="video back")
        frame = host.remote_video.slot.frame()
        assert frame is not None and read_stamp(luma(frame)) is not None

        stats = await cand.stats()
        v, a = stats["video"], stats["audio"]
        assert v["frames_sent"] > 30 and v["frames_received"] > 30
        assert v["packets_sent"] > 0 and v["bytes_sent"] > 0 and v["fps_sent"] > 0
        assert a["packets_received"] > 0 and a["frames_received"] > 0
        assert stats["camera_on"] and not stats["muted"] and stats["problems"] == []
        assert stats["tap"]["taken"] >= 5
        assert v["target_kbps"] is None or 250 <= v["target_kbps"] <= 1000
    finally:
        await host.close()
        await cand.close()
        await pa.close()
        await pb.close()


async def test_camera_that_stops_mid_call_turns_black_and_is_reported():
    events: list[bool] = []
    (pa, host), (pb, cand) = await connect_pair(
        synthetic(), synthetic(), on_camera_off=(None, events.append))
    try:
        await eventually(lambda: host.remote_video.received.count > 5, what="video")
        assert cand.video_out is not None
        cand.video_out.source.stop()  # what a camera unplugged mid-call looks like
        await eventually(lambda: bool(events), what="camera loss reported")
        assert events == [True] and not cand.has_camera
        assert any("camera stopped" in p for p in cand.problems)
        n = host.remote_video.received.count
        await eventually(lambda: host.remote_video.received.count > n + 5, what="black frames")
        frame = host.remote_video.slot.frame()
        assert frame is not None and float(luma(frame).mean()) < 30
        with pytest.raises(MediaError, match="no camera"):
            cand.set_camera(True)
    finally:
        for x in (host, cand):
            await x.close()
        await pa.close()
        await pb.close()


def test_config_rejects_bad_values():
    for bad in (dict(fps=0), dict(width=100), dict(max_video_bitrate=10),
                dict(tap_rate=60), dict(jpeg_quality=0)):
        with pytest.raises(ValueError):
            MediaConfig(**bad)
