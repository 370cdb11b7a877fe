"""Counting and pacing frames: a sliding-window rate, and a real-time pacer."""

from __future__ import annotations

import asyncio
import time
from collections import deque

__all__ = ["Pacer", "RateCounter"]


class RateCounter:
    """Counts events and reports how many happened per second over the last `window` s."""

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self.count = 0
        self._times: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.count += 1
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0


class Pacer:
    """Real-time pacing for frame n of a stream at `rate` per second; drops when behind."""

    def __init__(self, rate: float) -> None:
        self.period = 1.0 / rate
        self.start: float | None = None
        self.n = 0

    async def next(self) -> int:
        now = time.monotonic()
        if self.start is None:
            self.start = now
        due = self.start + self.n * self.period
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 2 * self.period:  # fell behind (a stalled loop): skip, do not burst
            self.n = int((now - self.start) / self.period)
        n = self.n
        self.n += 1
        return n
