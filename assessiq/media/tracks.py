"""The tracks this side sends: a camera (or synthetic) source behind a switch.

`OutgoingVideoTrack` forwards every source frame to the encoder, hands it to the proctor's
`FrameTap` and the self-view, and sends black instead while the camera is off or after the
camera failed. On a poor link it sends smaller frames, fewer a second (`set_quality`, from
`adapt.py`); the tap still gets every frame at full size. `OutgoingAudioTrack` sends
silence while muted or after the microphone failed. A failed source never ends the call:
the track keeps its pace on its own.
"""

from __future__ import annotations

import fractions
import logging
import time
from collections.abc import Callable

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame
from av.video.reformatter import VideoReformatter

from .adapt import Quality
from .rate import Pacer, RateCounter
from .render import JpegSlot
from .synthetic import VIDEO_CLOCK
from .tap import FrameTap

__all__ = ["OutgoingAudioTrack", "OutgoingVideoTrack"]

log = logging.getLogger(__name__)


def black_frame(width: int, height: int) -> VideoFrame:
    """A black I420 frame."""
    yuv = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
    yuv[:height] = 16
    return VideoFrame.from_ndarray(yuv, format="yuv420p")


class OutgoingVideoTrack(MediaStreamTrack):
    """The local camera as sent: the source's frames, or black while off or after a failure."""

    kind = "video"

    def __init__(
        self,
        source: MediaStreamTrack,
        *,
        tap: FrameTap | None = None,
        fps: float = 30.0,
        self_view: JpegSlot | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.source, self.tap, self.self_view = source, tap, self_view
        self.enabled = True
        self.lost: str | None = None  # why the source stopped, once it has
        self.sent = RateCounter()
        self._on_lost = on_lost
        self._pacer = Pacer(fps)
        self._fps = fps
        self._black: VideoFrame | None = None
        self._size = (640, 480)
        self.quality: Quality | None = None  # what the link allows (adapt.py); None: all
        self._next_due = 0.0
        self._scaler = VideoReformatter()

    def _blank(self) -> VideoFrame:
        size = self._size if self.quality is None else (self.quality.width, self.quality.height)
        if self._black is None or (self._black.width, self._black.height) != size:
            self._black = black_frame(*size)
        return self._black

    def set_quality(self, quality: Quality | None) -> None:
        """Send at this size and at most this rate from now on (None: as the source gives).
        The proctor's tap still gets every source frame at full size."""
        self.quality = quality
        self._next_due = 0.0

    async def recv(self) -> VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            frame: VideoFrame | None = None
            if self.lost is None:
                try:
                    got = await self.source.recv()
                    frame = got if isinstance(got, VideoFrame) else None
                except MediaStreamError:
                    self._lose("the camera stopped sending frames")
            if frame is None:  # no source any more: keep the pace on our own
                n = await self._pacer.next()
                out = self._blank()
                out.pts = round(n * VIDEO_CLOCK / self._fps)
                out.time_base = fractions.Fraction(1, VIDEO_CLOCK)
                break
            self._size = (frame.width, frame.height)
            if self.enabled and self.tap is not None:
                self.tap.offer(frame)
            if self._skip():  # a lower rate while the link is poor
                continue
            if self.enabled:
                out = self._scaled(frame)
            else:
                out = self._blank()
                out.pts, out.time_base = frame.pts, frame.time_base
            break
        if self.self_view is not None:
            self.self_view.put(out)
        self.sent.tick()
        return out

    def _skip(self) -> bool:
        if self.quality is None or self.quality.fps >= self._fps:
            return False
        now = time.monotonic()
        period = 1.0 / self.quality.fps
        if now < self._next_due - period / 4:
            return True
        self._next_due = max(self._next_due + period, now + period / 2)
        return False

    def _scaled(self, frame: VideoFrame) -> VideoFrame:
        q = self.quality
        if q is None or (frame.width, frame.height) == (q.width, q.height):
            return frame
        # our own scaler: the frame's own may be in use by the tap or the self-view
        out = self._scaler.reformat(frame, width=q.width, height=q.height, format="yuv420p")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def _lose(self, why: str) -> None:
        self.lost = why
        log.warning("video source lost: %s", why)
        if self._on_lost is not None:
            self._on_lost(why)

    def stop(self) -> None:
        super().stop()
        self.source.stop()


class OutgoingAudioTrack(MediaStreamTrack):
    """The local microphone as sent: its frames, or silence while muted or after a failure."""

    kind = "audio"

    def __init__(
        self, source: MediaStreamTrack, *, on_lost: Callable[[str], None] | None = None
    ) -> None:
        super().__init__()
        self.source = source
        self.enabled = True
        self.lost: str | None = None
        self.sent = RateCounter()
        self._on_lost = on_lost
        self._pacer = Pacer(50.0)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame: AudioFrame | None = None
        if self.lost is None:
            try:
                got = await self.source.recv()
                frame = got if isinstance(got, AudioFrame) else None
            except MediaStreamError:
                self.lost = "the microphone stopped sending audio"
                log.warning("audio source lost")
                if self._on_lost is not None:
                    self._on_lost(self.lost)
        if frame is None:
            n = await self._pacer.next()
            out = silence("s16", "mono", 960, 48000)
            out.pts = n * 960
            out.time_base = fractions.Fraction(1, 48000)
        elif self.enabled:
            out = frame
        else:
            out = silence(frame.format.name, frame.layout.name, frame.samples, frame.sample_rate)
            out.pts, out.time_base = frame.pts, frame.time_base
        self.sent.tick()
        return out

    def stop(self) -> None:
        super().stop()
        self.source.stop()


def silence(fmt: str, layout: str, samples: int, sample_rate: int) -> AudioFrame:
    """An all-zero audio frame of the given shape."""
    frame = AudioFrame(format=fmt, layout=layout, samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = sample_rate
    return frame
