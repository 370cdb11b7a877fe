"""The bounded video jitter buffer: a lost packet holds frames back for at most `max_wait`,
then its frame is given up on, the next whole frame goes out and a keyframe is asked for;
without loss it hands over exactly what aiortc's own buffer does."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from assessiq.media.jitter import BoundedJitterBuffer, install


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def packet(seq: int, ts: int, marker: int = 0) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=marker)
    p._data = bytes([seq % 256])  # type: ignore[attr-defined]  # what depayloading sets
    return p


def stream(frames: int, per_frame: int, start: int = 1000) -> list[RtpPacket]:
    return [packet(start + f * per_frame + i, 3000 * f) for f in range(frames)
            for i in range(per_frame)]


def run(buffer: JitterBuffer, packets: list[RtpPacket], clock: Clock | None = None,
        step: float = 0.01) -> tuple[list[int], int]:
    out, plis = [], 0
    for p in packets:
        if clock is not None:
            clock.t += step
        pli, frame = buffer.add(p)
        plis += pli
        if frame is not None:
            out.append(frame.timestamp)
    return out, plis


def test_without_loss_it_matches_aiortc():
    packets = stream(40, 3)
    theirs = run(JitterBuffer(512, is_video=True), packets)
    ours = run(BoundedJitterBuffer(512, 0.25, Clock()), packets, Clock())
    assert ours == theirs and len(ours[0]) == 39  # each frame once the next one starts


def test_a_frame_goes_out_with_its_last_packet_not_with_the_next_frame():
    packets = [packet(500 + f * 3 + i, 3000 * f, marker=int(i == 2))
               for f in range(10) for i in range(3)]
    ours = BoundedJitterBuffer(512, 0.25, Clock())
    theirs = JitterBuffer(512, is_video=True)
    for n, p in enumerate(packets):
        _, mine = ours.add(p)
        _, aiortcs = theirs.add(p)
        f, i = divmod(n, 3)
        # ours: frame f on its last packet; aiortc's: frame f-1 on frame f's first packet
        assert (mine.timestamp if mine else None) == (3000 * f if i == 2 else None)
        assert (aiortcs.timestamp if aiortcs else None) == (3000 * (f - 1) if i == 0 and f
                                                            else None)
        if mine is not None:
            assert mine.data == bytes((500 + f * 3 + k) % 256 for k in range(3))


def test_a_lost_packet_costs_one_frame_not_512_packets():
    packets = stream(60, 3)
    lost = packets[3 * 10 + 1]  # the middle packet of frame 10, never retransmitted
    packets.remove(lost)
    aiortc_out, _ = run(JitterBuffer(512, is_video=True), packets)
    assert aiortc_out == [3000 * f for f in range(10)]  # everything after it waits
    clock = Clock()
    buffer = BoundedJitterBuffer(512, max_wait=0.25, clock=clock)
    out, plis = run(buffer, packets, clock, step=0.01)  # 100 packets a second
    assert 3000 * 10 not in out  # the broken frame is never handed to the decoder
    assert out[:10] == [3000 * f for f in range(10)]
    # after ~0.25 s (25 packets, 8 frames) it goes on, in order, and asks for a keyframe
    assert out[10:] == [3000 * f for f in range(11, 59)]
    assert buffer.skipped == 1 and plis == 1


def test_a_late_retransmission_within_the_wait_is_used():
    packets = stream(30, 3)
    lost = packets.pop(3 * 5)  # the first packet of frame 5 ...
    packets.insert(3 * 5 + 6, lost)  # ... arrives 6 packets later (60 ms: a NACK round trip)
    clock = Clock()
    buffer = BoundedJitterBuffer(512, max_wait=0.25, clock=clock)
    out, plis = run(buffer, packets, clock)
    assert out == [3000 * f for f in range(29)] and buffer.skipped == 0 and plis == 0


def test_install_swaps_a_receivers_buffer_once():
    class Receiver:
        def __init__(self) -> None:
            self._RTCRtpReceiver__jitter_buffer = JitterBuffer(512, is_video=True)

    receiver = Receiver()
    assert install(receiver, 0.3)
    swapped = receiver._RTCRtpReceiver__jitter_buffer
    assert isinstance(swapped, BoundedJitterBuffer) and swapped.max_wait == 0.3
    assert swapped.capacity == 512
    assert install(receiver) and receiver._RTCRtpReceiver__jitter_buffer is swapped
    assert not install(object())  # aiortc moved it: nothing happens
