"""A video jitter buffer in which one lost packet cannot freeze the picture for long.

aiortc's receiver reassembles video frames in a `JitterBuffer` of 512 packets and hands
over frames strictly in order: when a packet is lost and its retransmission is lost too,
every later frame waits until 512 newer packets have arrived. At 250 kbit/s (aiortc's
floor, ~25 packets/s) that is a 20-second freeze, and the lower the bitrate a poor link
asks for, the longer it gets (measured here: capture→decoded p50 0.6–1.1 s at 10 % loss
once the sender had stepped down).

`BoundedJitterBuffer` also hands a frame over as soon as its last packet (RTP marker bit)
is in, where aiortc waits for the next frame to begin (one frame interval of delay: 33 ms
at 30 fps, 100 ms at 10 fps). It waits for a missing packet at most `max_wait` seconds (NACK and a
retransmission take a round trip or two), then gives up on the frame it belonged to, goes
on with the next one, and asks for a keyframe (PLI) — what browsers do. `install()` puts
it into a receiver (aiortc keeps the buffer private: if that ever changes, nothing happens
and the call works as before).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

__all__ = ["BoundedJitterBuffer", "install"]

log = logging.getLogger(__name__)

_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"


class BoundedJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, with a lost packet holding frames back for at most
    `max_wait` seconds."""

    def __init__(self, capacity: int = 512, max_wait: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(capacity, is_video=True)
        self.max_wait = max_wait
        self.skipped = 0  # frames given up on
        self._clock = clock
        self._blocked_since: float | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if frame is None:
            frame = self._marked_head()
        if frame is not None or not self._blocked():
            self._blocked_since = None
            return pli, frame
        now = self._clock()
        if self._blocked_since is None:
            self._blocked_since = now
            return pli, None
        if now - self._blocked_since < self.max_wait:
            return pli, None
        self._blocked_since = None
        if not self._skip_broken_frame():
            return pli, None
        self.skipped += 1
        return True, self._remove_frame(packet.sequence_number)

    def _marked_head(self) -> JitterFrame | None:
        """The first frame, when all its packets are here up to the one with the RTP marker
        bit (its last): aiortc waits for the next frame's first packet instead, which
        delays every frame by one frame interval (100 ms at 10 fps)."""
        if self._origin is None:
            return None
        packets: list[RtpPacket] = []
        for i in range(self._capacity):
            p = self._slot(i)
            if p is None or (packets and p.timestamp != packets[0].timestamp):
                return None
            packets.append(p)
            if p.marker:
                self.remove(i + 1)
                return JitterFrame(data=b"".join(x._data for x in packets),  # type: ignore[attr-defined]
                                   timestamp=p.timestamp)
        return None

    def _slot(self, offset: int) -> RtpPacket | None:
        assert self._origin is not None
        packet: RtpPacket | None = self._packets[(self._origin + offset) % self._capacity]
        return packet

    def _blocked(self) -> bool:
        """A gap holds back packets behind it."""
        if self._origin is None:
            return False
        seen_gap = False
        for i in range(self._capacity):
            if self._slot(i) is None:
                seen_gap = True
            elif seen_gap:
                return True
        return False

    def _skip_broken_frame(self) -> bool:
        """Drop everything up to the first frame that starts after the first gap, past the
        frame the gap may have been in. False when there is no such frame yet."""
        gap = next(i for i in range(self._capacity) if self._slot(i) is None)
        after = next((i for i in range(gap, self._capacity) if self._slot(i) is not None),
                     None)
        if after is None:
            return False
        first = self._slot(after)
        assert first is not None
        for i in range(after + 1, self._capacity):
            p = self._slot(i)
            if p is not None and p.timestamp != first.timestamp:
                self.remove(i)
                return True
            if p is None:  # another gap before the next frame starts: wait for more
                return False
        return False


def install(receiver: Any, max_wait: float = 0.25) -> bool:
    """Swap a video receiver's jitter buffer for a `BoundedJitterBuffer` (before packets
    arrive). False when aiortc's private buffer is not where it used to be."""
    current = getattr(receiver, _ATTRIBUTE, None)
    if not isinstance(current, JitterBuffer) or isinstance(current, BoundedJitterBuffer):
        return isinstance(current, BoundedJitterBuffer)
    setattr(receiver, _ATTRIBUTE, BoundedJitterBuffer(current.capacity, max_wait))
    return True
