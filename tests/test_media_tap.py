"""The proctor's tap: its own rate, newest frame only, never waits, ends on close."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from av import VideoFrame

from assessiq.media import FrameTap, read_stamp
from assessiq.media.stamp import stamp_bgr


def frame(n: int) -> VideoFrame:
    img = np.zeros((480, 640, 3), dtype=np.uint8)
    stamp_bgr(img, n, 1000 + n)
    return VideoFrame.from_ndarray(img, format="bgr24")


def test_rate_limit_and_latest_only():
    tap = FrameTap(rate=10)
    assert tap.latest() is None
    for n in range(30):  # one second of 30 fps camera
        tap.offer(frame(n), t=100.0 + n / 30)
    assert tap.offered == 30 and tap.taken == 10
    assert tap.skipped == 9  # nobody read: every taken frame but the last was replaced
    got = tap.latest()
    assert got is not None
    t, bgr = got
    s = read_stamp(bgr)
    assert s is not None and s.counter == 27 and t == pytest.approx(100.9)
    assert tap.wait(timeout=0) is None  # nothing newer than what was read


def test_reader_thread_gets_frames_and_ends_on_close():
    tap = FrameTap(rate=1000)
    seen: list[int] = []

    def reader() -> None:
        for _, bgr in tap.frames():
            s = read_stamp(bgr)
            assert s is not None
            seen.append(s.counter)

    th = threading.Thread(target=reader)
    th.start()
    for n in range(5):
        tap.offer(frame(n), t=float(n))
        while th.is_alive() and len(seen) <= n and tap.skipped == 0:
            th.join(0.01)
    tap.close()
    th.join(5)
    assert not th.is_alive()
    assert seen == sorted(seen) and seen[-1] == 4 and len(seen) + tap.skipped == 5
    tap.offer(frame(9), t=99.0)  # after close: ignored
    assert tap.taken == 5


def test_bad_rate():
    with pytest.raises(ValueError):
        FrameTap(rate=0)
