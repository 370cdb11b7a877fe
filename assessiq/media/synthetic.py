"""Synthetic media: a camera that stamps a frame counter and capture time into its pixels,
and a microphone that plays a steady tone. For tests, benchmarks and the headless demo.

    video = SyntheticVideoTrack(fps=30)                        # a moving test card
    video = SyntheticVideoTrack(source=cam.render_index)       # any (i) -> BGR image
    audio = ToneAudioTrack(frequency=440)

`source` lets the proctor's synthetic camera (real photos, scripted scenes) be the picture:
`lambda i: cam.render(cam.scene_at(i / cam.fps), i)`.
"""

from __future__ import annotations

import fractions
import math
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from .rate import Pacer
from .stamp import STRIP_HEIGHT, stamp_bgr, stamp_luma

__all__ = ["FrameSource", "SyntheticVideoTrack", "ToneAudioTrack"]

Image = npt.NDArray[np.uint8]
FrameSource = Callable[[int], Image]  # frame number -> BGR (h, w, 3) uint8
VIDEO_CLOCK = 90000


class SyntheticVideoTrack(MediaStreamTrack):
    """A video track of width×height at `fps`, each frame stamped (see `stamp.py`)."""

    kind = "video"

    def __init__(
        self,
        *,
        fps: float = 30.0,
        width: int = 640,
        height: int = 480,
        source: FrameSource | None = None,
        stamp: bool = True,
    ) -> None:
        super().__init__()
        if not 0 < fps <= 60:
            raise ValueError("fps must be in (0, 60]")
        if width % 16 or height % 16 or width < 640 or height < 64:
            raise ValueError("width and height must be multiples of 16, at least 640×64")
        self.fps, self.width, self.height = fps, width, height
        self.source, self.stamp = source, stamp
        self._pacer = Pacer(fps)
        self._card = _test_card(width, height) if source is None else None

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = await self._pacer.next()
        if self.source is None:
            assert self._card is not None
            frame = self._card_frame(n)
        else:
            image = self.source(n)
            if image.shape[:2] != (self.height, self.width):
                import cv2

                image = np.asarray(cv2.resize(image, (self.width, self.height)), dtype=np.uint8)
            elif self.stamp:
                image = image.copy()
            if self.stamp:
                stamp_bgr(image, n, int(time.time() * 1000))
            frame = VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = round(n * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame

    def _card_frame(self, n: int) -> VideoFrame:
        """The test card as I420 (no colour conversion anywhere): a bar sweeping across."""
        assert self._card is not None
        yuv = self._card.copy()
        w, h = self.width, self.height
        x = int((n * 8) % (w - 64))
        yuv[STRIP_HEIGHT + 40 : h - 40, x : x + 64] = 200
        if self.stamp:
            stamp_luma(yuv[:h], n, int(time.time() * 1000))
        return VideoFrame.from_ndarray(yuv, format="yuv420p")


def _test_card(width: int, height: int) -> Image:
    """A still I420 picture (luma gradient, tinted chroma), shape (h * 3 / 2, w)."""
    yy, xx = np.mgrid[0:height, 0:width]
    luma = (60 + 100 * xx / width + 40 * yy / height).astype(np.uint8)
    chroma = np.full((height // 2, width), 128, dtype=np.uint8)
    chroma[: height // 4] = 150  # U plane (two half-rows per row of the array)
    chroma[height // 4 :] = 110  # V plane
    return np.vstack([luma, chroma])


class ToneAudioTrack(MediaStreamTrack):
    """A mono sine tone at `frequency` Hz, 48 kHz, in 20 ms frames of s16."""

    kind = "audio"

    def __init__(
        self, *, frequency: float = 440.0, sample_rate: int = 48000, amplitude: float = 0.25
    ) -> None:
        super().__init__()
        if not 20 <= frequency <= sample_rate / 2:
            raise ValueError(f"frequency must be between 20 Hz and {sample_rate // 2} Hz")
        if not 0 <= amplitude <= 1:
            raise ValueError("amplitude must be between 0 and 1")
        self.frequency, self.sample_rate, self.amplitude = frequency, sample_rate, amplitude
        self.samples = sample_rate // 50
        self._pacer = Pacer(sample_rate / self.samples)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = await self._pacer.next()
        start = n * self.samples
        t = (start + np.arange(self.samples)) / self.sample_rate
        wave = self.amplitude * 32767 * np.sin(2 * math.pi * self.frequency * t)
        frame = AudioFrame.from_ndarray(
            wave.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.sample_rate
        frame.pts = start
        frame.time_base = fractions.Fraction(1, self.sample_rate)
        return frame
