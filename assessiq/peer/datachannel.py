"""An aiortc `RTCDataChannel` adapted to the core's `DirectChannel` (whole binary messages, in
order).

With `fragment=True` (the sync channels) messages of any size up to `max_message` go through:
each is sent as frames of at most 64 KiB (`assessiq.core.fragments`; a small message costs one
header byte) and reassembled here. A message's frames leave in order and never interleave with
another's: the frames that do not fit under the send buffer's high-water mark wait in this
object and are handed to aiortc as the buffer drains (so the control channel's heartbeat is
never stuck behind a 10 MB paste), and `send_nowait` says "full" until they are all out. Each
incoming message is first offered to `admit(size)` (the session's byte-rate cap) before any of
it is kept; a refused message and a frame that breaks the framing go to `on_refused(label,
reason, raw)` and are dropped.

Text messages are turned into UTF-8 bytes (the consumer validates them); messages above
`max_bytes` (and any past `MAX_QUEUED` unread) are refused rather than queued — to
`on_refused` when there is one (the session records them), else logged — so a hostile peer
cannot make this side buffer without bound through one huge message. (A single message larger
than SCTP's receive window, aiortc's 1 MiB, never completes: the association stalls and the
heartbeat ends the link.) With a listener (`listen`), a message is
handed over inside aiortc's receive handler, before the SCTP acknowledgement goes out; an
exception from the listener is logged and counted as a dropped message, never raised into
aiortc.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from aiortc import RTCDataChannel

from ..core.channel import ChannelIteration
from ..core.errors import ChannelClosed
from ..core.fragments import MAX_MESSAGE, Fragmenter, FramingError, Reassembler

__all__ = ["Admit", "DataChannelChannel", "RefusalHandler"]

log = logging.getLogger(__name__)

HIGH_WATER = 1 << 20
MAX_QUEUED = 10_000

Admit = Callable[[int], str | None]
"""Asked with an incoming message's size before any of it is kept: None admits it, else the
reason it is refused."""
RefusalHandler = Callable[[str, str, bytes], None]
"""Called with (channel label, reason, raw frame) for what the peer sent that is refused."""


class DataChannelChannel(ChannelIteration):
    """One data channel as a `Channel`. `closed` is set when either side closes it."""

    def __init__(
        self,
        dc: RTCDataChannel,
        *,
        max_bytes: int = 256 * 1024,
        fragment: bool = False,
        max_message: int = MAX_MESSAGE,
        admit: Admit | None = None,
        on_refused: RefusalHandler | None = None,
    ) -> None:
        self.dc = dc
        self.max_bytes = max_bytes
        self.dropped = 0
        self.admit = admit
        self.on_refused = on_refused
        self._fragmenter = Fragmenter() if fragment else None
        self._reassembler = (
            Reassembler(max_message, admit=self._admit) if fragment else None
        )
        self._frames: Iterator[bytes] | None = None
        """The rest of a fragmented message's frames, not yet handed to aiortc."""
        self.closed = asyncio.Event()
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._listener: Callable[[bytes], None] | None = None
        self._low = asyncio.Event()
        self._low.set()
        dc.bufferedAmountLowThreshold = HIGH_WATER // 4
        dc.on("message", self._on_message)
        dc.on("close", self._on_close)
        dc.on("bufferedamountlow", self._on_low)
        if dc.readyState == "closed":
            self._on_close()

    @property
    def path(self) -> str:
        return f"datachannel/{self.dc.label}"

    @property
    def partial(self) -> int:
        """Bytes received of a message still incomplete (0 when none is)."""
        return self._reassembler.pending if self._reassembler is not None else 0

    def _on_message(self, message: bytes | str) -> None:
        data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        if len(data) > self.max_bytes or self._inbox.qsize() >= MAX_QUEUED:
            self._refuse(f"a message of {len(data)} bytes is over the limit of {self.max_bytes}"
                         if len(data) > self.max_bytes else
                         f"more than {MAX_QUEUED} messages are waiting to be read", data)
            return
        if self._reassembler is not None:
            try:
                whole = self._reassembler.feed(data)
            except FramingError as exc:
                self._refuse(str(exc), data)
                return
            if whole is None:
                return
            data = whole
        if self._listener is not None:
            self._deliver(self._listener, data)
        else:
            self._inbox.put_nowait(data)

    def _admit(self, size: int) -> str | None:
        return self.admit(size) if self.admit is not None else None

    def _refuse(self, reason: str, raw: bytes) -> None:
        self.dropped += 1
        if self.on_refused is None:
            log.warning("%s: refused from the peer: %s", self.path, reason)
            return
        try:
            self.on_refused(self.dc.label, reason, raw)
        except Exception:  # recording must never reach aiortc's receive loop
            log.exception("%s: recording a refusal failed", self.path)

    def _deliver(self, listener: Callable[[bytes], None], data: bytes) -> None:
        try:
            listener(data)
        except Exception:  # a bug in the consumer must not reach aiortc's receive loop
            self.dropped += 1
            log.exception("%s: the listener failed on a message of %d bytes", self.path,
                          len(data))

    def listen(self, callback: Callable[[bytes], None] | None) -> None:
        self._listener = callback
        while callback is not None and not self._inbox.empty():
            item = self._inbox.get_nowait()
            if item is None:  # closed: keep the marker for `recv`
                self._inbox.put_nowait(None)
                return
            self._deliver(callback, item)

    async def wait_closed(self) -> None:
        await self.closed.wait()

    def _on_close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self._frames = None
            self._inbox.put_nowait(None)
            self._low.set()

    def _on_low(self) -> None:
        """aiortc's buffer drained below the low mark: hand it more of a message's frames;
        once none wait, let `send` go on."""
        if self._frames is not None:
            try:
                self._drain()
            except ChannelClosed as exc:
                log.info("%s: closed while sending: %s", self.path, exc)
                self._on_close()
                return
        if self._frames is None:
            self._low.set()

    async def send(self, message: bytes) -> None:
        while not self.send_nowait(message):
            self._low.clear()
            await self._low.wait()

    def send_nowait(self, message: bytes) -> bool:
        if self.closed.is_set() or self.dc.readyState != "open":
            raise ChannelClosed(f"{self.path} is closed")
        if self._frames is not None or self.dc.bufferedAmount > HIGH_WATER:
            return False
        if self._fragmenter is None:
            self._send_frame(bytes(message))
            return True
        if 0 < len(message) < self._fragmenter.frame_size:  # the keystroke's path
            self._send_frame(b"\x00" + message)
            return True
        frames = self._fragmenter.iter_frames(bytes(message))
        self._send_frame(next(frames))
        self._frames = frames
        self._drain()
        return True

    def _drain(self) -> None:
        """Send the waiting frames while aiortc's buffer is under the high-water mark."""
        frames = self._frames
        while frames is not None and self.dc.bufferedAmount <= HIGH_WATER:
            frame = next(frames, None)
            if frame is None:
                self._frames = None
                return
            self._send_frame(frame)

    def _send_frame(self, frame: bytes) -> None:
        try:
            self.dc.send(frame)
        except Exception as exc:  # aiortc raises InvalidStateError once the transport is gone
            raise ChannelClosed(f"{self.path} is closed: {exc}") from exc

    async def recv(self) -> bytes:
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)
            raise ChannelClosed(f"{self.path} was closed")
        return item

    def close(self) -> None:
        self.dc.close()
        self._on_close()
