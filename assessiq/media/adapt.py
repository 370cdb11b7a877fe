"""Graceful degradation on a slow or lossy link: step the sent picture down and back up.

aiortc's VP8 encoder follows the receiver's bandwidth estimate (REMB) only in part, and
sends the same 640×480 at the same rate however many packets are lost. `QualityController`
watches what the other side reports about our video (RTCP receiver reports, surfaced by
`pc.getStats()` as `remote-inbound-rtp`: the fraction of packets lost and the round-trip
time) and picks a rung of a ladder of picture sizes and frame rates:

    rung 0  the configured size, rate and bitrate cap (640×480, up to 30 fps, 1 Mbit/s)
    rung 1  3/4 of the size, same rate, at most 600 kbit/s     (480×360)
    rung 2  1/2 of the size, same rate, at most 350 kbit/s     (320×240)
    rung 3  1/2 of the size, half the rate (not below 10 fps), 250 kbit/s

The bitrate cap is what relieves a congested link (VP8 in aiortc is constant-bitrate, so a
smaller picture alone sends as many bits; 250 kbit/s is aiortc's floor); the smaller
picture keeps each of those bits worth more. The rate stays at 10 fps or more: aiortc's
receiver waits for a lost packet until 128 newer ones arrived, so a trickle of packets
would turn one unrecovered loss into a long freeze (measured: ~25 s at 160×120, 5 fps).

It steps down one rung after `down_after` bad samples in a row (loss ≥ `loss_bad` or RTT
≥ `rtt_bad`; the count restarts after each step, so a further step needs fresh reports),
and back up one rung after `up_after` good ones in a row (loss ≤ `loss_good` and RTT below
`rtt_good`), never sooner than `hold` seconds after its last step, so one burst or one
good second does not make it flap.

Why 300 ms and 40 %: stepping down is for a slow link — a full queue makes the round trip
grow — or one that is all but broken. Random loss, even heavy, is better left to NACK
retransmission and the bounded jitter buffer (jitter.py). Measured on 127.0.0.1, 640×480
at 30 fps through a relay dropping 30 % of the sender's packets (two runs each): bounded
jitter buffer alone, capture→decoded p50 74–105 ms, p95 206–306 ms, 28–29 fps; the same
plus stepping down on that loss, p50 668–806 ms, p95 876–1138 ms, 15–17 fps. Fewer
packets a second make every unrecovered loss cost more (NACKs go out when a new gap is
seen), and every skipped frame's keyframe request weighs more at 250 kbit/s.

The controller is pure (numbers in, a rung out); the media
session samples the stats about once a second and applies the rung to the outgoing track.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Quality", "QualityController", "ladder"]


@dataclass(frozen=True)
class Quality:
    """What the outgoing video is sent as."""

    width: int
    height: int
    fps: float
    max_bitrate: int  # bits/s

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even and at least 16")
        if self.fps <= 0:
            raise ValueError("fps must be > 0")
        if self.max_bitrate <= 0:
            raise ValueError("max_bitrate must be > 0")


def _even(x: float) -> int:
    return max(16, round(x / 2) * 2)


def ladder(width: int, height: int, fps: float, max_bitrate: int) -> tuple[Quality, ...]:
    """The rungs for a source of `width`×`height` at `fps` capped at `max_bitrate`, best
    first."""
    def cap(bits: int) -> int:
        return min(max_bitrate, bits)

    half = _even(width / 2), _even(height / 2)
    return (
        Quality(width, height, fps, max_bitrate),
        Quality(_even(width * 3 / 4), _even(height * 3 / 4), fps, cap(600_000)),
        Quality(*half, fps, cap(350_000)),
        Quality(*half, max(min(fps, 10.0), fps / 2), cap(250_000)),
    )


class QualityController:
    """Picks a rung of `rungs` from successive loss/RTT samples. `update()` returns the rung
    to use now (0: best)."""

    def __init__(
        self,
        rungs: tuple[Quality, ...],
        *,
        loss_bad: float = 0.4,
        loss_good: float = 0.05,
        rtt_bad: float = 0.3,
        rtt_good: float = 0.15,
        down_after: int = 2,
        up_after: int = 5,
        hold: float = 4.0,
    ) -> None:
        if not rungs:
            raise ValueError("need at least one rung")
        if not 0 <= loss_good < loss_bad <= 1:
            raise ValueError("need 0 <= loss_good < loss_bad <= 1")
        if not 0 < rtt_good < rtt_bad:
            raise ValueError("need 0 < rtt_good < rtt_bad")
        if down_after < 1 or up_after < 1 or hold < 0:
            raise ValueError("down_after and up_after must be >= 1, hold >= 0")
        self.rungs = rungs
        self.loss_bad, self.loss_good = loss_bad, loss_good
        self.rtt_bad, self.rtt_good = rtt_bad, rtt_good
        self.down_after, self.up_after, self.hold = down_after, up_after, hold
        self.rung = 0
        self.steps_down = 0
        self.steps_up = 0
        self._bad = 0
        self._good = 0
        self._last_step: float | None = None

    @property
    def quality(self) -> Quality:
        return self.rungs[self.rung]

    def update(self, loss: float | None, rtt: float | None, now: float) -> int:
        """One sample: `loss` is the fraction of our packets the other side lost since its
        last report (0..1; None: no report yet), `rtt` the round-trip time in seconds
        (None: unknown). Returns the rung to send at."""
        if loss is None:
            return self.rung
        if not 0 <= loss <= 1:
            raise ValueError("loss must be a fraction 0..1")
        bad = loss >= self.loss_bad or (rtt is not None and rtt >= self.rtt_bad)
        good = loss <= self.loss_good and (rtt is None or rtt < self.rtt_good)
        self._bad = self._bad + 1 if bad else 0
        self._good = self._good + 1 if good else 0
        if self._bad >= self.down_after and self.rung < len(self.rungs) - 1:
            self._step(+1, now)  # the counts restart: the next step down needs new reports
        elif (self._good >= self.up_after and self.rung > 0
              and (self._last_step is None or now - self._last_step >= self.hold)):
            self._step(-1, now)
        return self.rung

    def _step(self, direction: int, now: float) -> None:
        self.rung += direction
        if direction > 0:
            self.steps_down += 1
        else:
            self.steps_up += 1
        self._last_step = now
        self._bad = self._good = 0
