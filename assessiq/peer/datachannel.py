"""An aiortc `RTCDataChannel` adapted to the core's `DirectChannel` (whole binary messages, in
order).

Text messages are turned into UTF-8 bytes (the consumer validates them); messages above
`max_bytes` are dropped and logged rather than queued, so a hostile peer cannot make this
side buffer without bound through one huge message. With a listener (`listen`), a message is
handed over inside aiortc's receive handler, before the SCTP acknowledgement goes out; an
exception from the listener is logged and counted as a dropped message, never raised into
aiortc.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc import RTCDataChannel

from ..core.channel import ChannelIteration
from ..core.errors import ChannelClosed

__all__ = ["DataChannelChannel"]

log = logging.getLogger(__name__)

HIGH_WATER = 1 << 20
MAX_QUEUED = 10_000


class DataChannelChannel(ChannelIteration):
    """One data channel as a `Channel`. `closed` is set when either side closes it."""

    def __init__(self, dc: RTCDataChannel, *, max_bytes: int = 256 * 1024) -> None:
        self.dc = dc
        self.max_bytes = max_bytes
        self.dropped = 0
        self.closed = asyncio.Event()
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._listener: Callable[[bytes], None] | None = None
        self._low = asyncio.Event()
        self._low.set()
        dc.bufferedAmountLowThreshold = HIGH_WATER // 4
        dc.on("message", self._on_message)
        dc.on("close", self._on_close)
        dc.on("bufferedamountlow", self._low.set)
        if dc.readyState == "closed":
            self._on_close()

    @property
    def path(self) -> str:
        return f"datachannel/{self.dc.label}"

    def _on_message(self, message: bytes | str) -> None:
        data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        if len(data) > self.max_bytes or self._inbox.qsize() >= MAX_QUEUED:
            self.dropped += 1
            log.warning("%s: dropped an incoming message of %d bytes (over the limit)",
                        self.path, len(data))
            return
        if self._listener is not None:
            self._deliver(self._listener, data)
        else:
            self._inbox.put_nowait(data)

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
            self._inbox.put_nowait(None)
            self._low.set()

    async def send(self, message: bytes) -> None:
        while not self.send_nowait(message):
            self._low.clear()
            await self._low.wait()

    def send_nowait(self, message: bytes) -> bool:
        if self.closed.is_set() or self.dc.readyState != "open":
            raise ChannelClosed(f"{self.path} is closed")
        if self.dc.bufferedAmount > HIGH_WATER:
            return False
        try:
            self.dc.send(bytes(message))
        except Exception as exc:  # aiortc raises InvalidStateError once the transport is gone
            raise ChannelClosed(f"{self.path} is closed: {exc}") from exc
        return True

    async def recv(self) -> bytes:
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)
            raise ChannelClosed(f"{self.path} was closed")
        return item

    def close(self) -> None:
        self.dc.close()
        self._on_close()
