"""The replay's player: what moves the replay's clock — play and pause, speeds (1×, 2×, 5×,
10×, and skipping idle stretches), the previous and next event, and the timeline's markers.

Pure: the page (replay_page.py) ticks it and shows `t`; tests drive it without a browser.
Times are seconds from the session's start.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["IDLE_S", "SPEEDS", "Player"]

SPEEDS: dict[str, float] = {"1×": 1.0, "2×": 2.0, "5×": 5.0, "10×": 10.0, "skip idle": 10.0}
IDLE_S = 3.0
"""With "skip idle", a stretch longer than this with nothing happening (no edit, event, run
or note) is jumped over, up to the moment before the next thing happens."""


@dataclass
class Player:
    """`span`: the session's length; `moments`: when anything happened (edits, events, runs,
    notes); `marks`: what "previous/next event" steps between (events, runs, notes)."""

    span: float
    moments: Sequence[float]
    marks: Sequence[float]
    t: float = 0.0
    playing: bool = False
    speed: str = "1×"
    _moments: list[float] = field(init=False, repr=False)
    _marks: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._moments = sorted(m for m in self.moments if 0 <= m <= self.span)
        self._marks = sorted(m for m in self.marks if 0 <= m <= self.span)

    def seek(self, t: float) -> None:
        self.t = min(max(0.0, t), self.span)

    def play(self) -> None:
        if self.t >= self.span:  # played to the end: from the start again
            self.t = 0.0
        self.playing = True

    def pause(self) -> None:
        self.playing = False

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def set_speed(self, speed: str) -> None:
        if speed not in SPEEDS:
            raise ValueError(f"unknown speed {speed!r} (one of {', '.join(SPEEDS)})")
        self.speed = speed

    def advance(self, wall_s: float) -> None:
        """`wall_s` seconds of real time passed while playing."""
        if not self.playing:
            return
        t = self.t + wall_s * SPEEDS[self.speed]
        if self.speed == "skip idle":
            i = bisect.bisect_right(self._moments, self.t)
            nxt = self._moments[i] if i < len(self._moments) else self.span
            if nxt - self.t > IDLE_S:  # nothing happens for a while: to just before it
                t = max(t, nxt - 0.5)
        self.seek(t)
        if self.t >= self.span:
            self.playing = False

    def next_mark(self) -> None:
        i = bisect.bisect_right(self._marks, self.t + 1e-6)
        self.seek(self._marks[i] if i < len(self._marks) else self.span)

    def previous_mark(self) -> None:
        i = bisect.bisect_left(self._marks, self.t - 1e-6)
        self.seek(self._marks[i - 1] if i > 0 else 0.0)
