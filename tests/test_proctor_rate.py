"""The adaptive analysis rate follows the CPU budget: down when analysis is expensive, back up
when it is cheap, always within [min_fps, max_fps]; and the live proctor really analyses
frames at that rate."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assessiq.proctor.config import ProctorConfig
from assessiq.proctor.findings import FaceBox, FrameFindings
from assessiq.proctor.frames import Frame, Image
from assessiq.proctor.rate import RateController
from assessiq.proctor.runner import Proctor

MIN, MAX, BUDGET = 5.0, 15.0, 0.06


def fed(rc: RateController, cost: float, n: int) -> list[float]:
    return [rc.update(cost) for _ in range(n)]


def test_rate_falls_under_high_cost_and_recovers_under_low_cost():
    rc = RateController(MIN, MAX, BUDGET)
    assert rc.rate == MAX and rc.share is None
    high = fed(rc, 0.020, 60)  # 20 ms a frame: the budget allows 3 fps, below the floor
    assert all(b <= a for a, b in zip([MAX, *high], high, strict=False))  # never rises
    assert high[-1] == MIN
    low = fed(rc, 0.002, 80)  # 2 ms a frame: the budget allows 30 fps, above the ceiling
    assert all(b >= a for a, b in zip(high[-1:] + low, low, strict=False))  # never falls
    assert low[-1] == MAX and any(MIN < r < MAX for r in low)  # climbs, not jumps


def test_rate_settles_where_the_cpu_share_meets_the_budget():
    rc = RateController(MIN, MAX, BUDGET)
    fed(rc, 0.006, 100)  # 6 ms a frame: 6 % of a core is 10 frames a second
    assert rc.rate == pytest.approx(10.0, rel=0.01)
    assert rc.share == pytest.approx(BUDGET, rel=0.01)
    fed(rc, 0.008, 100)
    assert rc.rate == pytest.approx(7.5, rel=0.01)


def test_one_slow_frame_moves_the_rate_a_little_not_a_lot():
    rc = RateController(MIN, MAX, BUDGET)
    fed(rc, 0.006, 100)
    before = rc.rate
    rc.update(0.015)  # a frame with full-range detection costs ~2.5 times as much
    assert 0.85 * before < rc.rate < before
    fed(rc, 0.006, 40)
    assert rc.rate == pytest.approx(before, rel=0.02)


def test_meaningless_costs_are_ignored():
    rc = RateController(MIN, MAX, BUDGET)
    fed(rc, 0.006, 100)
    before = rc.rate
    for bad in (math.nan, math.inf, -0.01):
        assert rc.update(bad) == before
    assert rc.update(0.0) == pytest.approx(before / 0.9, rel=0.02)  # a free frame lowers the mean


@pytest.mark.parametrize("args", [(0, 15, 0.06), (10, 5, 0.06), (5, 15, 0), (5, 15, 1.5)])
def test_bad_settings_are_refused(args):
    with pytest.raises(ValueError):
        RateController(*args)


@given(st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=200))
def test_rate_stays_within_bounds(costs):
    rc = RateController(MIN, MAX, BUDGET)
    for c in costs:
        assert MIN <= rc.update(c) <= MAX


class DeclaredCost:
    """An analyser stand-in whose frames cost what the test declares (by frame time): the
    proctor's rate control sees exactly these costs. The runner, detectors and meter are
    the real ones."""

    def __init__(self, cost_at: Any) -> None:
        self.cost_at = cost_at
        self.times: list[float] = []

    def analyse(self, frame: Image, t: float = 0.0) -> FrameFindings:
        self.times.append(t)
        box = FaceBox(0.4, 0.2, 0.2, 0.3, 1.0, "mesh")
        return FrameFindings(t=t, faces=1, boxes=(box,), pose=None, gaze=None,
                             brightness=120.0, texture=30.0, dark=False, covered=False,
                             frozen=False, motion=1.0, cpu_ms=self.cost_at(t) * 1000)

    def close(self) -> None:
        pass


async def camera(seconds: float, fps: float = 30.0) -> AsyncIterator[Frame]:
    """A 30 fps camera on a simulated clock, handed over quickly (3 ms real per frame)."""
    image = np.full((48, 64, 3), 120, np.uint8)
    for i in range(round(seconds * fps)):
        yield i / fps, image
        await asyncio.sleep(0.003)


def analysed_in(times: list[float], start: float, end: float) -> int:
    return sum(start <= t < end for t in times)


async def test_the_proctor_analyses_at_the_rate_its_budget_allows():
    # 0–8 s: 20 ms a frame (the budget allows 3 fps: the floor, 5); 8–16 s: 2 ms (30 fps:
    # the ceiling, 15); 16–24 s: 6 ms (10 fps)
    def cost(t: float) -> float:
        return 0.020 if t < 8 else 0.002 if t < 16 else 0.006

    stand_in = DeclaredCost(cost)
    cfg = ProctorConfig(min_fps=MIN, max_fps=MAX, cpu_budget=BUDGET, heartbeat_every=2.0)
    beats: list[dict[str, Any]] = []
    proctor = Proctor(lambda k, d: beats.append(d) if k == "proctor.heartbeat" else None, cfg,
                      analyzer=stand_in)
    rates: list[tuple[float, float]] = []
    analyse = stand_in.analyse

    def recording(frame: Image, t: float = 0.0) -> FrameFindings:
        rates.append((t, proctor.rate))  # the rate the runner scheduled this frame with
        return analyse(frame, t)

    stand_in.analyse = recording  # type: ignore[method-assign]
    stats = await proctor.run(camera(24.0))
    times = stand_in.times
    assert stats.analysed == len(times) > 0
    # the runner never analyses sooner than its rate allows
    gaps = [(t0, t1 - t0) for (t0, _), (t1, _) in itertools.pairwise(rates)]
    assert all(gap >= 1 / MAX - 1e-6 for _, gap in gaps)
    assert all(gap >= 1 / MIN - 1e-6 for t, gap in gaps if 4 <= t < 8)
    # expensive frames: the rate falls to the floor and the proctor analyses ~5 a second
    assert all(r == MIN for t, r in rates if 4 <= t < 8)
    assert analysed_in(times, 4, 8) <= 4 * MIN + 1
    # cheap frames: back up to the ceiling, ~15 a second (fewer only if frames were dropped)
    assert all(r == MAX for t, r in rates if 12 <= t < 16)
    assert analysed_in(times, 12, 16) >= 0.6 * 4 * MAX
    # 6 ms frames: 10 a second, where the CPU share meets the 6 % budget
    assert all(9.0 <= r <= 11.0 for t, r in rates if 20 <= t < 24)
    assert analysed_in(times, 20, 24) <= 4 * 11 + 1
    assert analysed_in(times, 20, 24) >= 0.6 * 4 * 9
    # heartbeats report the rate and the CPU share the analyses declared
    late = beats[-2:]
    assert len(beats) >= 10
    assert all(b["rate"] == pytest.approx(10.0, abs=1.0) for b in late)
    assert all(0.5 * BUDGET <= b["cpu"] <= 1.1 * BUDGET for b in late)
    assert proctor.rate == pytest.approx(10.0, abs=1.0)
