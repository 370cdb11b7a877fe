"""Playing the other side's audio on this machine's output device (sounddevice/PortAudio).

    player = AudioPlayer()        # PlaybackError when there is no output device
    player.feed(pcm_bytes)        # interleaved s16 stereo at 48 kHz, from the event loop
    player.close()

PortAudio pulls audio from a small buffer in its own thread; the call never waits on it.
When the buffer would hold more than `max_delay` seconds the oldest audio is dropped, so
the delay stays low after a hiccup.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .errors import PlaybackError

__all__ = ["AudioPlayer", "list_speakers"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 48000
CHANNELS = 2
_BYTES_PER_FRAME = 2 * CHANNELS


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the module imports, but libportaudio is not on the system
        raise PlaybackError(
            "no audio output: the PortAudio library is missing (install libportaudio2)"
        ) from exc
    return sounddevice


def list_speakers() -> list[tuple[int, str]]:
    """(index, name) of every output device PortAudio sees; empty when none or no PortAudio."""
    try:
        sd = _sounddevice()
        devices = sd.query_devices()
    except Exception:
        return []
    return [(i, str(d["name"])) for i, d in enumerate(devices) if d["max_output_channels"] > 0]


class AudioPlayer:
    """An output stream fed from the event loop. `device` is an index or a name (None: the
    system default)."""

    def __init__(self, device: int | str | None = None, max_delay: float = 0.2) -> None:
        sd = _sounddevice()
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._max = int(max_delay * SAMPLE_RATE) * _BYTES_PER_FRAME
        self.dropped = 0
        try:
            if not any(d["max_output_channels"] > 0 for d in sd.query_devices()):
                raise PlaybackError("no audio output device found; the other side is not played")
            self._stream = sd.RawOutputStream(
                samplerate=SAMPLE_RATE, channels=CHANNELS, dtype="int16", device=device,
                callback=self._callback, latency="low",
            )
            self._stream.start()
        except PlaybackError:
            raise
        except Exception as exc:  # sd.PortAudioError, ValueError for a bad device name
            raise PlaybackError(f"audio output {device or 'default'} cannot be opened: {exc}") \
                from exc
        log.info("audio output opened (%s)", device or "default")

    def feed(self, pcm: bytes) -> None:
        """Queue interleaved s16 stereo 48 kHz samples."""
        with self._lock:
            self._buf += pcm
            extra = len(self._buf) - self._max
            if extra > 0:
                extra -= extra % _BYTES_PER_FRAME
                del self._buf[:extra]
                self.dropped += extra // _BYTES_PER_FRAME

    def _callback(self, out: Any, frames: int, _time: Any, _status: Any) -> None:
        want = frames * _BYTES_PER_FRAME
        with self._lock:
            chunk = bytes(self._buf[:want])
            del self._buf[:want]
        out[: len(chunk)] = chunk
        if len(chunk) < want:
            out[len(chunk) :] = bytes(want - len(chunk))

    def close(self) -> None:
        try:
            self._stream.stop()
            self._stream.close()
        except Exception as exc:
            log.debug("closing the audio output: %s", exc)
