"""The proctor's tap on the candidate's own camera, before encoding, at its own lower rate.

The outgoing video track hands every frame to `FrameTap.offer()` (on the event loop; it only
keeps a reference, never converts or waits). The proctor reads in its own worker thread:

    tap = FrameTap(rate=15)
    for t, bgr in tap.frames():     # blocks this (worker) thread only; ends on tap.close()
        analyser.analyse(bgr, t)

Only the newest frame is kept: a slow reader skips frames (counted in `skipped`), the call
never waits for it. Conversion to BGR happens in the reader's thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from av import VideoFrame

__all__ = ["FrameTap"]

Image = npt.NDArray[np.uint8]


class FrameTap:
    """Latest-frame hand-off from the call to the proctor, at most `rate` frames a second."""

    def __init__(self, rate: float = 15.0) -> None:
        if not rate > 0:
            raise ValueError("rate must be > 0")
        self.period = 1.0 / rate
        self._cond = threading.Condition()
        self._frame: VideoFrame | None = None
        self._t = 0.0
        self._seq = 0  # frames taken into the slot
        self._read = 0  # the last seq a reader got
        self._last_offer = -1e18
        self._closed = False
        self.offered = 0
        self.taken = 0
        self.skipped = 0  # taken but replaced before anyone read them

    def offer(self, frame: VideoFrame, t: float | None = None) -> None:
        """Called for every outgoing camera frame; keeps it if the proctor is due one."""
        self.offered += 1
        now = time.time() if t is None else t
        if now - self._last_offer < self.period * 0.95 or self._closed:
            return
        self._last_offer = now
        with self._cond:
            if self._frame is not None and self._read < self._seq:
                self.skipped += 1
            self._frame, self._t = frame, now
            self._seq += 1
            self.taken += 1
            self._cond.notify_all()

    def latest(self) -> tuple[float, Image] | None:
        """The newest frame as (capture time, BGR image), without waiting; None before any."""
        with self._cond:
            frame, t = self._frame, self._t
            self._read = self._seq
        return None if frame is None else (t, _bgr(frame))

    def wait(self, timeout: float | None = None) -> tuple[float, Image] | None:
        """Wait (this thread only) for a frame newer than the last one read; None on timeout
        or when the tap is closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > self._read or self._closed, timeout):
                return None
            if self._closed or self._frame is None:
                return None
            frame, t = self._frame, self._t
            self._read = self._seq
        return t, _bgr(frame)

    def frames(self, idle_timeout: float | None = None) -> Iterator[tuple[float, Image]]:
        """Frames as the proctor's sources give them, (t, BGR); ends when the tap closes (or
        after `idle_timeout` seconds without a frame)."""
        while True:
            got = self.wait(idle_timeout)
            if got is None:
                return
            yield got

    def close(self) -> None:
        """Wake and end every reader."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


def _bgr(frame: VideoFrame) -> Image:
    return np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
