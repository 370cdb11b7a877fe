"""One condition's hysteresis: it starts after holding `on` seconds, ends after `off` clear."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import Hysteresis

__all__ = ["ConditionTracker", "Transition"]


@dataclass(frozen=True)
class Transition:
    """A condition started (phase "start") or ended (phase "end"), with the times it really
    began and cleared, not the later moments the hysteresis confirmed them."""

    phase: str
    start: float
    end: float | None
    confidence: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


class ConditionTracker:
    """Feed it one observation per analysed frame: True (the condition holds), False (it does
    not), or None (no evidence either way: e.g. no face, so no gaze). It reports transitions.

    Confidence is the share of frames with evidence, between the start and the confirmation
    (for "start") or the end (for "end"), on which the condition held.
    """

    def __init__(self, hysteresis: Hysteresis) -> None:
        self.h = hysteresis
        self.active = False
        self._since: float | None = None  # when the pending state change began
        self._contrary: float | None = None  # when evidence against the pending change began
        self._yes = 0
        self._seen = 0
        self._details: list[dict[str, Any]] = []
        self._start = 0.0
        self._counts_at_clear: tuple[int, int] | None = None

    def update(self, t: float, holds: bool | None, details: dict[str, Any] | None = None
               ) -> Transition | None:
        if holds is None:
            return None
        self._seen += 1
        if holds:
            self._yes += 1
            if details:
                self._details.append(details)
        if not self.active:
            return self._while_idle(t, holds)
        return self._while_active(t, holds)

    def _while_idle(self, t: float, holds: bool) -> Transition | None:
        if holds:
            self._contrary = None
            if self._since is None:
                self._since = t
                self._yes, self._seen = 1, 1
                self._details = self._details[-1:]
            if t - self._since >= self.h.on:
                self.active = True
                self._start = self._since
                self._since = None
                return Transition("start", self._start, None, self._confidence(),
                                  self._summary())
            return None
        if self._since is not None:
            if self._contrary is None:
                self._contrary = t
            if t - self._contrary >= self.h.grace:
                self._since = self._contrary = None
        return None

    def _while_active(self, t: float, holds: bool) -> Transition | None:
        if holds:
            self._since = None
            self._counts_at_clear = None
            return None
        if self._since is None:
            self._since = t
            self._counts_at_clear = (self._yes, self._seen - 1)
        if t - self._since >= self.h.off:
            return self._finish(self._since)
        return None

    def flush(self, t: float) -> Transition | None:
        """End an active condition now (the stream stopped); nothing if idle."""
        if not self.active:
            self._since = self._contrary = None
            return None
        return self._finish(self._since if self._since is not None else t)

    def _finish(self, end: float) -> Transition:
        if self._counts_at_clear is not None:  # judge [start, end], not the clear tail
            self._yes, self._seen = self._counts_at_clear
        tr = Transition("end", self._start, end, self._confidence(), self._summary())
        self._counts_at_clear = None
        self.active = False
        self._since = self._contrary = None
        self._yes = self._seen = 0
        self._details = []
        return tr

    def _confidence(self) -> float:
        return round(self._yes / self._seen, 3) if self._seen else 0.0

    def _summary(self) -> dict[str, Any]:
        """Numeric details averaged over the frames where the condition held; others: the
        most common value."""
        if not self._details:
            return {}
        out: dict[str, Any] = {}
        for key in self._details[-1]:
            values = [d[key] for d in self._details if key in d]
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                if all(isinstance(v, int) for v in values):
                    out[key] = max(values)
                else:
                    out[key] = round(sum(values) / len(values), 2)
            else:
                out[key] = max(set(values), key=values.count)
        return out
