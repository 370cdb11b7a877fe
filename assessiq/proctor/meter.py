"""Counts what the proctor did and turns it into proctor.heartbeat events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Meter", "ProctorStats"]


@dataclass
class ProctorStats:
    """Totals over a whole run."""

    frames: int = 0  # frames the source delivered
    analysed: int = 0  # frames analysed
    dropped: int = 0  # frames due for analysis but skipped because the analyser was busy
    cpu_seconds: float = 0.0  # CPU spent analysing
    first_t: float | None = None
    last_t: float | None = None
    heartbeats: int = 0


class Meter:
    """Accumulates per-window counts; `heartbeat(t)` returns the heartbeat data when one is due."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.stats = ProctorStats()
        self._window_start: float | None = None
        self._analysed = 0
        self._dropped = 0
        self._cpu = 0.0

    def frame(self, t: float) -> None:
        s = self.stats
        s.frames += 1
        s.first_t = t if s.first_t is None else s.first_t
        s.last_t = t
        if self._window_start is None:
            self._window_start = t

    def analysed(self, cpu_seconds: float) -> None:
        self.stats.analysed += 1
        self.stats.cpu_seconds += cpu_seconds
        self._analysed += 1
        self._cpu += cpu_seconds

    def dropped(self) -> None:
        self.stats.dropped += 1
        self._dropped += 1

    def heartbeat(self, t: float, rate: float, calibrated: bool) -> dict[str, Any] | None:
        if self._window_start is None or t - self._window_start < self.every:
            return None
        span = t - self._window_start
        data: dict[str, Any] = {
            "phase": "heartbeat",
            "fps": round(self._analysed / span, 2),
            "analysed": self._analysed,
            "dropped": self._dropped,
            "cpu": round(self._cpu / span, 4),
            "rate": round(rate, 2),
            "calibrated": calibrated,
        }
        self._window_start = t
        self._analysed = self._dropped = 0
        self._cpu = 0.0
        self.stats.heartbeats += 1
        return data
