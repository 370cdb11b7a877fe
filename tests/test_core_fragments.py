"""The framing under the sync channels (`assessiq.core.fragments`): any message goes through
whole, a small one costs one byte, and every frame stream an honest sender never produces is
refused without holding more than what actually arrived."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assessiq.core.fragments import (
    FIRST,
    FRAME_SIZE,
    MIN_PART,
    MORE,
    Fragmenter,
    FramingError,
    Reassembler,
    TokenBucket,
)
from assessiq.core.varints import write_varint

SMALL_FRAME = 2048  # small frames keep the property tests fast; the rules are the same


def first(total: int, part: bytes) -> bytes:
    head = bytearray((FIRST,))
    write_varint(total, head)
    return bytes(head) + part


def messages() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(min_size=1, max_size=64),
        st.integers(SMALL_FRAME - 8, 5 * SMALL_FRAME).map(lambda n: bytes([n % 251]) * n),
        st.binary(min_size=SMALL_FRAME - 2, max_size=3 * SMALL_FRAME),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(messages(), min_size=1, max_size=8))
def test_any_sequence_of_messages_comes_back_whole_and_in_order(batch: list[bytes]) -> None:
    frag = Fragmenter(SMALL_FRAME)
    re = Reassembler(1 << 20, single_max=SMALL_FRAME)
    out: list[bytes] = []
    for message in batch:
        for frame in frag.frames(message):
            assert 1 < len(frame) <= SMALL_FRAME
            got = re.feed(frame)
            if got is not None:
                out.append(got)
    assert out == batch
    assert re.pending == 0


def test_a_small_message_costs_one_byte_and_the_largest_frame_is_64_kib() -> None:
    frag = Fragmenter()
    assert frag.frames(b"\x00\x02\x05hello") == [b"\x00\x00\x02\x05hello"]
    assert frag.frames(b"x" * (FRAME_SIZE - 1)) == [b"\x00" + b"x" * (FRAME_SIZE - 1)]
    big = bytes(range(256)) * (10 * 1024 * 1024 // 256)  # 10 MiB
    frames = frag.frames(big)
    assert max(len(f) for f in frames) == FRAME_SIZE
    # a tag each, one length, a part number on each part after the first (161 parts: 1-2 B)
    numbers = sum(1 if n < 128 else 2 for n in range(1, len(frames)))
    assert sum(map(len, frames)) == len(big) + len(frames) + 4 + numbers
    re = Reassembler()
    assert [re.feed(f) for f in frames][-1] == big
    with pytest.raises(ValueError):
        frag.frames(b"")


@settings(max_examples=300, deadline=None)
@given(st.lists(messages(), min_size=1, max_size=4), st.data())
def test_a_broken_frame_stream_is_refused_and_the_next_message_still_arrives(
    batch: list[bytes], data: st.DataObject
) -> None:
    """Drop, duplicate or swap one frame of an honest stream: the reassembler refuses (or
    yields nothing wrong), never returns a message that was not sent, and recovers at the
    next message."""
    frag = Fragmenter(SMALL_FRAME)
    frames = [f for m in batch for f in frag.frames(m)]
    i = data.draw(st.integers(0, len(frames) - 1))
    how = data.draw(st.sampled_from(["drop", "dup", "swap", "truncate", "retag"]))
    if how == "drop":
        del frames[i]
    elif how == "dup":
        frames.insert(i, frames[i])
    elif how == "swap" and i + 1 < len(frames):
        frames[i], frames[i + 1] = frames[i + 1], frames[i]
    elif how == "truncate":
        frames[i] = frames[i][: data.draw(st.integers(0, len(frames[i]) - 1))]
    elif how == "retag":
        frames[i] = bytes([data.draw(st.integers(0, 255))]) + frames[i][1:]
    re = Reassembler(1 << 20, single_max=SMALL_FRAME)
    got = deliver(re, frames)
    # Whatever came out was sent (a corrupted frame can only corrupt its own message's
    # content when it was retagged or truncated into another valid frame).
    if how in ("drop", "dup", "swap"):
        assert all(m in batch for m in got)
    # A fresh message after the damage arrives whole; at worst (a message was left
    # incomplete) its first copy is refused with the remains, and the next one arrives.
    tail = b"after" * 1000
    first_try = deliver(re, frag.frames(tail))
    if first_try != [tail]:
        assert first_try == []
        assert deliver(re, frag.frames(tail)) == [tail]


def deliver(re: Reassembler, frames: list[bytes]) -> list[bytes]:
    got = []
    for frame in frames:
        try:
            message = re.feed(frame)
        except FramingError:
            continue
        if message is not None:
            got.append(message)
    return got


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b""], "empty frame"),
        ([b"\x00"], "empty message"),
        ([b"\x07abc"], "unknown frame tag"),
        ([b"\x02" + b"x" * MIN_PART], "no message begun"),
        ([b"\x01\xff"], "truncated"),
        ([first(1 << 30, b"x" * MIN_PART)], "over the"),
        ([first(100, b"x" * 50)], "split into frames"),
        ([first(FRAME_SIZE * 2, b"x" * 10)], "first part"),
        ([first(FRAME_SIZE * 2, b"x" * MIN_PART), b"\x02\x01" + b"y" * 10], "a part of 10"),
        ([first(FRAME_SIZE * 2, b"x" * MIN_PART), b"\x02\x01"], "a part of 0"),
        ([first(FRAME_SIZE, b"x" * 2000), b"\x02\x01" + b"y" * FRAME_SIZE], "a part of"),
        ([first(FRAME_SIZE * 2, b"x" * MIN_PART), b"\x02\x02" + b"y" * MIN_PART],
         "part 2 where part 1 was due"),
        ([first(FRAME_SIZE * 2, b"x" * MIN_PART), b"\x02"], "part -1 where part 1"),
        ([first(FRAME_SIZE, b"x" * 2000), b"\x00hi"], "inside an incomplete"),
        ([first(FRAME_SIZE, b"x" * 2000), first(FRAME_SIZE, b"x" * 2000)], "inside an incomp"),
    ],
)
def test_frames_an_honest_sender_never_sends_are_refused(frames: list[bytes], reason: str) -> None:
    re = Reassembler(1 << 20)
    with pytest.raises(FramingError, match=reason):
        for frame in frames:
            re.feed(frame)
    assert re.pending == 0
    assert re.feed(b"\x00ok") == b"ok"  # and the next honest message arrives


def test_memory_follows_the_bytes_received_not_the_length_announced() -> None:
    re = Reassembler(64 << 20)
    assert re.feed(first(64 << 20, b"x" * MIN_PART)) is None
    assert re.pending == MIN_PART


def test_a_message_refused_by_admit_is_skipped_frame_by_frame() -> None:
    asked: list[int] = []
    answers = iter(["over the rate cap", None, None])

    def admit(size: int) -> str | None:
        asked.append(size)
        return next(answers)

    frag = Fragmenter()
    re = Reassembler(admit=admit)
    big = b"b" * (3 * FRAME_SIZE)
    frames = frag.frames(big)
    with pytest.raises(FramingError, match="rate cap"):
        re.feed(frames[0])
    assert [re.feed(f) for f in frames[1:]] == [None] * (len(frames) - 1)
    assert re.pending == 0
    assert re.feed(b"\x00next") == b"next"
    assert [re.feed(f) for f in frames][-1] == big
    assert asked == [len(big), 4, len(big)]


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=100, burst=1000, clock=lambda: now[0])
    assert bucket.take(1000)
    assert not bucket.take(1)
    now[0] = 2.0
    assert not bucket.take(201)
    assert bucket.take(200)
    now[0] = 1000.0
    assert not bucket.take(1001)  # never more than the burst
    assert bucket.take(1000)
    assert MORE == 2
