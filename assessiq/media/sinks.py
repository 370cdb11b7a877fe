"""What this side does with the other side's tracks.

`RemoteVideoSink` keeps the newest decoded frame (as JPEG on demand, for the UI) and counts
the frame rate; `RemoteAudioSink` plays audio on the output device when there is one (else
drops it) and can keep the last seconds for analysis. Both consume their track in a task and
stop quietly when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler, VideoFrame

from .playback import AudioPlayer
from .rate import RateCounter
from .render import JpegSlot

__all__ = ["RemoteAudioSink", "RemoteVideoSink", "dominant_frequency"]

log = logging.getLogger(__name__)


class _Sink:
    def __init__(self) -> None:
        self.received = RateCounter()
        self.track: MediaStreamTrack | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, track: MediaStreamTrack) -> None:
        """Consume `track` (once; later calls for the same track do nothing)."""
        if self.track is track:
            return
        self.track = track
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.get_running_loop().create_task(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                log.info("remote %s track ended", track.kind)
                return
            if not isinstance(frame, AudioFrame | VideoFrame):
                continue
            self.received.tick()
            try:
                self._handle(frame)
            except Exception:  # a bad frame or a failing consumer must not end the call
                log.exception("remote %s frame dropped", track.kind)

    def _handle(self, frame: AudioFrame | VideoFrame) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class RemoteVideoSink(_Sink):
    """The other side's video: newest frame, JPEG on demand, frame rate, frame callbacks."""

    def __init__(self, quality: int = 70, max_width: int | None = None) -> None:
        super().__init__()
        self.slot = JpegSlot(quality, max_width)
        self.on_frame: list[Callable[[VideoFrame], None]] = []

    def _handle(self, frame: AudioFrame | VideoFrame) -> None:
        assert isinstance(frame, VideoFrame)
        self.slot.put(frame)
        for callback in self.on_frame:
            callback(frame)

    def jpeg(self) -> bytes | None:
        """The newest remote frame as JPEG (None before the first)."""
        return self.slot.jpeg()


class RemoteAudioSink(_Sink):
    """The other side's audio: played through `player` if given, else dropped; the last
    `keep_seconds` kept as mono float samples at 48 kHz when asked."""

    sample_rate = 48000

    def __init__(self, player: AudioPlayer | None = None, keep_seconds: float = 0.0) -> None:
        super().__init__()
        self.player = player
        self._resampler = AudioResampler(format="s16", layout="stereo", rate=self.sample_rate)
        self._keep: deque[npt.NDArray[np.float32]] = deque()
        self._keep_samples = int(keep_seconds * self.sample_rate)
        self._kept = 0

    def _handle(self, frame: AudioFrame | VideoFrame) -> None:
        assert isinstance(frame, AudioFrame)
        if self.player is None and not self._keep_samples:
            return
        for out in self._resampler.resample(frame):
            pcm = out.to_ndarray().reshape(-1)  # packed s16 stereo: L R L R ...
            if self.player is not None:
                self.player.feed(pcm.tobytes())
            if self._keep_samples:
                mono = pcm.reshape(-1, 2).astype(np.float32).mean(axis=1) / 32768.0
                self._keep.append(mono)
                self._kept += len(mono)
                while self._kept - len(self._keep[0]) >= self._keep_samples:
                    self._kept -= len(self._keep.popleft())

    def recent(self) -> npt.NDArray[np.float32]:
        """The kept samples, oldest first (mono, 48 kHz, -1..1)."""
        if not self._keep:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(list(self._keep))[-self._keep_samples :]

    async def stop(self) -> None:
        await super().stop()
        if self.player is not None:
            self.player.close()
            self.player = None


def dominant_frequency(samples: npt.NDArray[np.float32], sample_rate: int = 48000) -> float:
    """The strongest frequency in `samples` (Hz), by FFT with a Hann window."""
    if len(samples) < 64:
        raise ValueError("need at least 64 samples")
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    spectrum[0] = 0.0
    k = int(np.argmax(spectrum))
    if 0 < k < len(spectrum) - 1:  # parabolic interpolation between bins
        a, b, c = spectrum[k - 1], spectrum[k], spectrum[k + 1]
        denom = a - 2 * b + c
        k_f = k + (0.5 * (a - c) / denom if denom else 0.0)
    else:
        k_f = float(k)
    return float(k_f * sample_rate / len(samples))
