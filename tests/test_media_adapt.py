"""Graceful degradation: the step controller driven with loss and RTT figures, the outgoing
track sending smaller and fewer frames, and a real call over a slow, lossy UDP relay on
127.0.0.1 that steps down, goes on, and steps back up once the link heals."""

from __future__ import annotations

import asyncio
import time

import pytest

from assessiq.media import SYNTHETIC, MediaConfig
from assessiq.media.adapt import Quality, QualityController, ladder
from assessiq.media.loopback import connect_pair
from assessiq.media.lossy_link import LossyRelay
from assessiq.media.synthetic import SyntheticVideoTrack
from assessiq.media.tap import FrameTap
from assessiq.media.tracks import OutgoingVideoTrack

RUNGS = ladder(640, 480, 30, 1_000_000)


def feed(ctl: QualityController, samples: list[tuple[float | None, float | None]],
         t0: float = 0.0) -> list[int]:
    return [ctl.update(loss, rtt, t0 + i) for i, (loss, rtt) in enumerate(samples)]


def test_ladder_for_a_laptop_camera():
    assert [(q.width, q.height, q.fps, q.max_bitrate) for q in RUNGS] == [
        (640, 480, 30, 1_000_000), (480, 360, 30, 600_000), (320, 240, 30, 350_000),
        (320, 240, 15, 250_000)]
    low = ladder(640, 480, 10, 300_000)
    assert [q.fps for q in low] == [10, 10, 10, 10]  # never below 10 fps
    assert [q.max_bitrate for q in low] == [300_000, 300_000, 300_000, 250_000]


def test_clean_link_stays_at_the_top():
    ctl = QualityController(RUNGS)
    assert feed(ctl, [(0.0, 0.01)] * 20) == [0] * 20
    assert ctl.steps_down == ctl.steps_up == 0


def test_steps_down_after_two_bad_reports_and_on_to_the_bottom():
    ctl = QualityController(RUNGS)
    # one bad report is a blip; two in a row step down; each further step needs two more;
    # random loss up to 30 % is left to retransmission and the jitter buffer (not "bad")
    assert feed(ctl, [(0.3, 0.01)] * 10) == [0] * 10
    assert feed(ctl, [(0.5, 0.01), (0.0, 0.01), (0.5, 0.01), (0.5, 0.01), (0.6, 0.01),
                      (0.6, 0.01), (0.6, 0.01), (0.6, 0.01), (0.6, 0.01), (0.6, 0.01)]) == [
        0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert ctl.quality == RUNGS[3] and ctl.steps_down == 3


def test_a_long_round_trip_is_a_poor_link_too():
    ctl = QualityController(RUNGS)
    assert feed(ctl, [(0.0, 0.6), (0.0, 0.6)]) == [0, 1]


def test_steps_back_up_one_rung_after_five_good_reports_and_the_hold():
    ctl = QualityController(RUNGS, hold=4.0)
    feed(ctl, [(0.5, None)] * 6)  # to the bottom at t=1, 3, 5
    assert ctl.rung == 3
    ups = feed(ctl, [(0.0, 0.01)] * 12, t0=6)
    # five good reports (t=6..10, the hold since t=5 has passed): up; five more: up again
    assert ups == [3, 3, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1]
    assert ctl.steps_up == 2
    # an in-between report (3 % loss) is neither good nor bad: no step either way
    ctl2 = QualityController(RUNGS)
    feed(ctl2, [(0.5, None)] * 2)
    assert feed(ctl2, [(0.1, None)] * 10, t0=10) == [1] * 10


def test_hold_stops_a_quick_step_back_up():
    ctl = QualityController(RUNGS, hold=20.0, up_after=2)
    feed(ctl, [(0.5, None)] * 2)  # down at t=1
    assert feed(ctl, [(0.0, None)] * 5, t0=2) == [1] * 5  # good, but within the hold
    assert ctl.update(0.0, None, 21.0) == 0


def test_no_report_changes_nothing_and_bad_values_are_refused():
    ctl = QualityController(RUNGS)
    assert feed(ctl, [(None, None)] * 5) == [0] * 5
    with pytest.raises(ValueError):
        ctl.update(1.5, None, 0)
    with pytest.raises(ValueError):
        QualityController(RUNGS, loss_good=0.2, loss_bad=0.1)
    with pytest.raises(ValueError):
        QualityController(())
    with pytest.raises(ValueError):
        Quality(641, 480, 30, 1)


async def test_track_sends_smaller_fewer_frames_and_the_tap_keeps_them_all():
    tap = FrameTap(30.0)
    track = OutgoingVideoTrack(SyntheticVideoTrack(fps=30), tap=tap, fps=30)
    try:
        for _ in range(5):
            frame = await track.recv()
        assert (frame.width, frame.height) == (640, 480)
        track.set_quality(Quality(320, 240, 10, 250_000))
        offered0 = tap.offered
        frames = [await track.recv() for _ in range(15)]
        assert {(f.width, f.height) for f in frames} == {(320, 240)}
        taken = tap.offered - offered0  # every source frame reached the proctor's tap ...
        assert 2.2 * len(frames) <= taken <= 3.8 * len(frames)  # ... about 3 per frame sent
        pts = [f.pts for f in frames]
        assert pts == sorted(pts) and len(set(pts)) == len(pts)
        track.set_quality(None)
        frame = await track.recv()
        assert (frame.width, frame.height) == (640, 480)
    finally:
        track.stop()
        tap.close()


async def test_call_over_a_slow_lossy_link_steps_down_goes_on_and_steps_back_up():
    relay = LossyRelay(loss_ab=0.0, seed=7)
    sender = MediaConfig(camera=SYNTHETIC, microphone=None, speaker=None, fps=15)
    receiver = MediaConfig(camera=None, microphone=None, speaker=None, fps=15)
    (pa, a), (pb, b) = await connect_pair(sender, receiver, relay=relay)
    try:
        async def until(check, what: str, timeout: float = 40.0) -> None:
            deadline = time.monotonic() + timeout
            while not check():
                assert time.monotonic() < deadline, f"timed out waiting: {what}"
                await asyncio.sleep(0.1)

        await until(lambda: b.remote_video.received.count >= 10, "first frames")
        assert a.adapter is not None and a.adapter.rung == 0
        # a slow, lossy link from now on: 400 ms more each way a→b, 10 % of packets lost
        relay.delay_ab, relay.loss_ab = 0.4, 0.1
        await until(lambda: a.adapter.steps_down >= 1, "a step down")
        stats = await a.stats()
        assert stats["video"]["rtt_ms"] >= 300, stats["video"]
        assert stats["video"]["quality"]["rung"] >= 1
        assert stats["video"]["quality"]["width"] < 640
        # the call goes on at the smaller size
        got = b.remote_video.received.count
        await until(lambda: b.remote_video.received.count >= got + 15, "frames after the step")
        await until(lambda: (f := b.remote_video.slot.frame()) is not None and f.width < 640,
                    "a smaller frame at the receiver")
        assert relay.dropped["ab"] > 0 and relay.dropped["ba"] == 0
        relay.delay_ab, relay.loss_ab = 0.0, 0.0  # the link heals: back up
        # aiortc smooths the RTT (85 % old), so it takes ~10 reports to fall back under 150 ms
        await until(lambda: a.adapter.steps_up >= 1, "a step back up", timeout=90.0)
        got = b.remote_video.received.count
        await until(lambda: b.remote_video.received.count >= got + 15, "frames after healing")
    finally:
        for closing in (a.close(), b.close(), pa.close(), pb.close()):
            await closing
        relay.close()
