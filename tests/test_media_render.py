"""JPEG frames for the UI: correct, and safe when several threads touch the same frames.

A frame's own PyAV scaler is shared by whoever converts it; the UI encoding a self-view frame
while aiortc's encoder thread converts the same frame crashed the process (libswscale). The
stress runs in a child process so a crash is a failed test, not a dead test run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import cv2
import numpy as np
from av import VideoFrame

from assessiq.media.render import JpegSlot, frame_to_jpeg


def test_jpeg_decodes_and_scales() -> None:
    bgr = np.zeros((480, 640, 3), np.uint8)
    bgr[:, :320] = (0, 0, 255)
    frame = VideoFrame.from_ndarray(bgr, format="bgr24")
    full = cv2.imdecode(np.frombuffer(frame_to_jpeg(frame), np.uint8), cv2.IMREAD_COLOR)
    assert full.shape == (480, 640, 3) and full[240, 100, 2] > 200 and full[240, 500, 2] < 50
    small = cv2.imdecode(np.frombuffer(frame_to_jpeg(frame, max_width=320), np.uint8),
                         cv2.IMREAD_COLOR)
    assert small.shape == (240, 320, 3)


def test_slot_caches_per_frame() -> None:
    slot = JpegSlot(max_width=320)
    assert slot.jpeg() is None
    frame = VideoFrame.from_ndarray(np.full((480, 640, 3), 90, np.uint8), format="bgr24")
    slot.put(frame)
    first = slot.jpeg()
    assert first is not None and slot.jpeg() is first  # encoded once per frame


def test_concurrent_encodes_and_conversions_do_not_crash() -> None:
    # One encoder thread converting every sent frame (as aiortc's VP8 encoder does), and
    # several UI readers (FastAPI's thread pool serving the frame endpoint) asking for the
    # JPEG as new frames arrive. Before the fix this crashed or hung every time.
    script = textwrap.dedent("""
        import threading, time, numpy as np
        from av import VideoFrame
        from assessiq.media.render import JpegSlot
        slot = JpegSlot(quality=70, max_width=320)
        frames = [VideoFrame.from_ndarray(
            np.random.default_rng(i).integers(0, 255, (480, 640, 3), np.uint8), format="bgr24")
            for i in range(4)]
        stop = threading.Event()
        def encoder_like():
            i = 0
            while not stop.is_set():
                frames[i % 4].reformat(format="yuv420p"); i += 1
        def ui_reader():
            while not stop.is_set():
                slot.jpeg()
        threads = [threading.Thread(target=encoder_like)]
        threads += [threading.Thread(target=ui_reader) for _ in range(6)]
        for t in threads: t.start()
        n, end = 0, time.monotonic() + 3
        while time.monotonic() < end:
            slot.put(frames[n % 4]); n += 1; time.sleep(0.001)
        stop.set()
        for t in threads: t.join()
        print("ok", slot.seq == n)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"child died ({result.returncode}): {result.stderr[-800:]}"
    assert result.stdout.split() == ["ok", "True"]
