"""What a side's call uses: devices, picture size and rate, bitrate cap, the proctor tap."""

from __future__ import annotations

from dataclasses import dataclass

from .synthetic import FrameSource

__all__ = ["AUTO", "SYNTHETIC", "MediaConfig"]

AUTO = "auto"  # the first device found
SYNTHETIC = "synthetic"  # the stamped test card / the tone


@dataclass
class MediaConfig:
    """A side's media settings. Device fields take AUTO, SYNTHETIC, a device id (see
    `devices.py`), or None for none at all."""

    camera: str | None = AUTO
    microphone: str | None = AUTO
    speaker: str | int | None = AUTO  # where the other side is played; None: nowhere
    width: int = 640
    height: int = 480
    fps: int = 30
    max_video_bitrate: int = 1_000_000  # bits/s; aiortc's own range is 250 k .. 1.5 M
    tone_hz: float = 440.0  # the synthetic microphone's pitch
    synthetic_source: FrameSource | None = None  # the synthetic camera's picture (i -> BGR)
    stamp: bool = True  # stamp counter and capture time into synthetic frames
    tap_rate: float | None = None  # frames/s for the proctor's tap; None: no tap
    jpeg_quality: int = 70
    jpeg_max_width: int | None = None
    keep_audio_seconds: float = 0.0  # keep the last seconds of received audio (analysis)
    adapt: bool = True  # step the sent picture down/up with reported loss and RTT (adapt.py)
    bounded_jitter: float | None = 0.25  # s a lost packet may hold video back (jitter.py)

    def __post_init__(self) -> None:
        if not 1 <= self.fps <= 60:
            raise ValueError("fps must be 1..60")
        if self.width < 160 or self.height < 120 or self.width % 16 or self.height % 16:
            raise ValueError("width and height must be multiples of 16, at least 160×120")
        if not 100_000 <= self.max_video_bitrate <= 10_000_000:
            raise ValueError("max_video_bitrate must be 100 kbit/s .. 10 Mbit/s")
        if self.tap_rate is not None and not 0 < self.tap_rate <= self.fps:
            raise ValueError("tap_rate must be > 0 and at most fps")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be 1..100")
        if self.keep_audio_seconds < 0:
            raise ValueError("keep_audio_seconds must be >= 0")
