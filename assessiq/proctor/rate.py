"""How often the live proctor analyses a frame: the rate that keeps analysis within its CPU
budget. Pure (no clock, no threads): feed it what each analysis cost, read the rate."""

from __future__ import annotations

import math

__all__ = ["RateController"]


class RateController:
    """Keeps an exponential average of the CPU seconds one analysis costs and sets the rate to
    `budget / cost` frames per second (CPU share = rate × cost = budget), clamped to
    [min_fps, max_fps]. It starts at max_fps; `smoothing` is the weight of the newest cost
    (0.1: a change of cost shows fully after ~20 analysed frames, so one slow frame does not
    halve the rate)."""

    def __init__(self, min_fps: float, max_fps: float, budget: float,
                 smoothing: float = 0.1) -> None:
        if not 0 < min_fps <= max_fps:
            raise ValueError("need 0 < min_fps <= max_fps")
        if not 0 < budget <= 1:
            raise ValueError("budget must be a share of one core in (0, 1]")
        if not 0 < smoothing <= 1:
            raise ValueError("smoothing must be in (0, 1]")
        self.min_fps = min_fps
        self.max_fps = max_fps
        self.budget = budget
        self.smoothing = smoothing
        self.cost: float | None = None  # smoothed CPU seconds per analysed frame
        self.rate = max_fps

    def update(self, cpu_seconds: float) -> float:
        """Take one analysis' cost (CPU seconds) and return the new rate. A cost that is not a
        finite number >= 0 is ignored."""
        if not (math.isfinite(cpu_seconds) and cpu_seconds >= 0):
            return self.rate
        a = self.smoothing
        self.cost = cpu_seconds if self.cost is None else (1 - a) * self.cost + a * cpu_seconds
        wanted = self.budget / self.cost if self.cost > 0 else self.max_fps
        self.rate = min(self.max_fps, max(self.min_fps, wanted))
        return self.rate

    @property
    def share(self) -> float | None:
        """The CPU share of one core analysis takes at the current rate (None before any)."""
        return None if self.cost is None else self.rate * self.cost
