"""Message fragmentation under a transport's message-size limit, sans-IO.

A data channel carries messages of bounded size (aiortc advertises 256 KiB; RFC 8841 lets a
peer that says nothing assume 64 KiB), while one document update can be megabytes (a 10 MB
paste). `Fragmenter` splits a message into frames of at most `FRAME_SIZE` bytes and
`Reassembler` puts them back together on the other side, so the sync protocol above never
sees a size limit other than `MAX_MESSAGE`.

The framing (one tag byte, then):

- `WHOLE` (0x00): the rest of the frame is one whole message. Every message that fits in a
  frame goes this way: a keystroke costs one byte more and nothing else.
- `FIRST` (0x01): a varint with the message's total length, then its first part.
- `MORE`  (0x02): a varint with the part's number (the `FIRST` is part 0, so 1, 2, …), then the
  next part of the message begun by the last `FIRST`; the message is complete when its parts
  add up to the announced length. The number makes a lost, repeated or swapped part a refusal,
  never a different message of the right length.

The transport keeps frames in order and never interleaves two messages' frames (the sender's
job: `DataChannelChannel` queues a message's frames together). The receiver refuses, with a
`FramingError`, anything an honest sender never produces: an unknown tag, an empty frame or
part, a `MORE` with no message begun or out of its turn, a `FIRST` while one is incomplete, a
message announced over `max_message` or as small as a whole frame, parts that overflow the
announced length, or a part other than the last smaller than `MIN_PART` (which bounds the
frames of a message).
The partial message is dropped; memory grows only with bytes actually received, never with
an announced length.

`TokenBucket` is the inbound byte-rate cap the channel checks for each message, before any
of it is buffered (a refused message's remaining frames are skipped).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Final

from .varints import read_varint, write_varint

__all__ = [
    "FIRST",
    "FRAME_SIZE",
    "MAX_MESSAGE",
    "MIN_PART",
    "MORE",
    "RATE_BURST",
    "RATE_BYTES_PER_SECOND",
    "WHOLE",
    "Fragmenter",
    "FramingError",
    "Reassembler",
    "TokenBucket",
]

WHOLE: Final = 0x00
FIRST: Final = 0x01
MORE: Final = 0x02

FRAME_SIZE: Final = 64 * 1024
"""The largest frame sent: the message size every WebRTC peer accepts (RFC 8841, 6)."""

MAX_MESSAGE: Final = 64 * 1024 * 1024
"""The largest message reassembled (per message, per session): the sync protocol's own cap."""

MIN_PART: Final = 1024
"""Every part but a message's last carries at least this much (so at most 64 Ki + 1 frames
for the largest message)."""

RATE_BYTES_PER_SECOND: Final = 2 * 1024 * 1024
"""The sustained inbound rate on the sync channels, bytes per second."""

RATE_BURST: Final = 64 * 1024 * 1024
"""What the peer may send at once on the sync channels (one largest message): an honest
10 MB paste, or a reconnect's whole document, passes untouched."""


_MORE_HEAD: Final = 4
"""Room kept in a `MORE` frame for its tag and part number (at most 3 varint bytes: a message
has at most 64 Ki + 1 parts)."""


class FramingError(ValueError):
    """A frame that an honest sender never produces; the partial message is dropped."""


class Fragmenter:
    """Split messages into frames of at most `frame_size` bytes."""

    def __init__(self, frame_size: int = FRAME_SIZE) -> None:
        if frame_size < MIN_PART + 16:
            raise ValueError(f"a frame of {frame_size} bytes is too small")
        self.frame_size = frame_size

    def frames(self, message: bytes) -> list[bytes]:
        """The frames that carry `message`, in the order they must be sent."""
        return list(self.iter_frames(message))

    def iter_frames(self, message: bytes) -> Iterator[bytes]:
        """`frames(message)`, made one at a time (a large message is not copied at once)."""
        if not message:
            raise ValueError("an empty message cannot be framed")
        size = len(message)
        if size < self.frame_size:
            yield b"\x00" + message
            return
        head = bytearray((FIRST,))
        write_varint(size, head)
        first = self.frame_size - len(head)
        view = memoryview(message)
        head += view[:first]
        yield bytes(head)
        step = self.frame_size - _MORE_HEAD
        for number, pos in enumerate(range(first, size, step), 1):
            head = bytearray((MORE,))
            write_varint(number, head)
            yield bytes(head) + view[pos : pos + step]


class Reassembler:
    """Turn received frames back into messages, with bounds.

    `feed(frame)` returns the completed message, or None while one is incomplete (or its
    frames are being skipped), and raises `FramingError` for a frame that breaks the framing.
    `admit(size)`, if given, is asked once per message (at `WHOLE` or `FIRST`, before anything
    is kept) and returns None to accept it or the reason to refuse it: a refused message
    raises `FramingError` and its remaining frames are skipped silently.
    """

    def __init__(
        self,
        max_message: int = MAX_MESSAGE,
        *,
        admit: Callable[[int], str | None] | None = None,
        single_max: int = FRAME_SIZE,
    ) -> None:
        self.max_message = max_message
        self.admit = admit
        self.single_max = single_max
        """A message announced at no more than this fits in a `WHOLE` frame: refused in a
        `FIRST` (an honest sender never splits it)."""
        self._parts: list[bytes] = []
        self._have = 0
        self._total = 0
        self._next = 1
        self._skipping = False

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message held (0 when none is)."""
        return 0 if self._skipping else self._have

    def _drop(self) -> None:
        self._parts = []
        self._have = self._total = 0
        self._next = 1
        self._skipping = False

    def _refuse_admit(self, size: int) -> None:
        if self.admit is not None:
            reason = self.admit(size)
            if reason is not None:
                raise FramingError(reason)

    def feed(self, frame: bytes) -> bytes | None:
        if not frame:
            self._drop()
            raise FramingError("an empty frame")
        tag = frame[0]
        if tag == WHOLE:
            if self._total:
                self._drop()
                raise FramingError("a whole message inside an incomplete one")
            if len(frame) < 2:
                raise FramingError("an empty message")
            self._refuse_admit(len(frame) - 1)
            return frame[1:]
        if tag == FIRST:
            if self._total:
                self._drop()
                raise FramingError("a new message begun inside an incomplete one")
            try:
                total, start = read_varint(frame, 1)
            except ValueError:
                raise FramingError("a truncated message length") from None
            if total > self.max_message:
                raise FramingError(
                    f"a message of {total} bytes is over the {self.max_message}-byte limit")
            if total < self.single_max:
                raise FramingError(f"a message of {total} bytes split into frames")
            part = frame[start:]
            if len(part) < MIN_PART or len(part) >= total:
                raise FramingError(f"a first part of {len(part)} bytes of {total}")
            self._total = total
            try:
                self._refuse_admit(total)
            except FramingError:
                self._skipping = True
                self._have = len(part)
                raise
            self._parts = [part]
            self._have = len(part)
            return None
        if tag == MORE:
            if not self._total:
                raise FramingError("a message part with no message begun")
            try:
                number, start = read_varint(frame, 1)
            except ValueError:
                number, start = -1, len(frame)
            if number != self._next:
                skipping = self._skipping
                expected = self._next
                self._drop()
                if skipping:
                    return None
                raise FramingError(f"part {number} where part {expected} was due")
            self._next += 1
            size = len(frame) - start
            have = self._have + size
            if size == 0 or have > self._total or (have < self._total and size < MIN_PART):
                skipping = self._skipping
                self._drop()
                if skipping:  # the message was refused already: say nothing twice
                    return None
                raise FramingError(
                    f"a part of {size} bytes at {self._have} of a {self._total}-byte message")
            self._have = have
            if self._skipping:
                if have == self._total:
                    self._drop()
                return None
            self._parts.append(frame[start:])
            if have < self._total:
                return None
            message = b"".join(self._parts)
            self._drop()
            return message
        self._drop()
        raise FramingError(f"an unknown frame tag {tag}")


class TokenBucket:
    """A byte-rate cap: `rate` bytes per second on average, `burst` at once."""

    def __init__(
        self,
        rate: float = RATE_BYTES_PER_SECOND,
        burst: float = RATE_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("the rate and the burst must be positive")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def take(self, amount: int) -> bool:
        """Take `amount` bytes' worth if there is that much; False (nothing taken) if not."""
        now = self._clock()
        tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if amount > tokens:
            self._tokens = tokens
            return False
        self._tokens = tokens - amount
        return True
