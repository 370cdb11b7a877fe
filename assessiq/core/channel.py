"""The one transport boundary: a `Channel` moves whole binary messages in order.

It matches `pycrdt.Channel`, so a pycrdt `Provider` can run over it directly. The same sync
and integrity code runs over an in-memory pair in tests and over a WebRTC data channel in
the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, Self, runtime_checkable

from .errors import ChannelClosed

__all__ = ["Channel", "ChannelIteration", "DirectChannel", "MemoryChannel", "memory_pair"]


@runtime_checkable
class Channel(Protocol):
    """Send and receive whole messages. `recv` raises `ChannelClosed` once closed."""

    @property
    def path(self) -> str:
        """A name for logs (pycrdt's `Provider` reads it)."""
        ...

    async def send(self, message: bytes) -> None:
        """Send one message."""
        ...

    async def recv(self) -> bytes:
        """Receive the next message."""
        ...

    def __aiter__(self) -> Channel: ...

    async def __anext__(self) -> bytes: ...


@runtime_checkable
class DirectChannel(Channel, Protocol):
    """A `Channel` that can also move a message without a task switch on either side.

    Each hop through the event loop costs a keystroke a tenth of a millisecond or more on a
    busy laptop; `DocSync` uses these methods when a channel has them.
    """

    def send_nowait(self, message: bytes) -> bool:
        """Send one message now; False (nothing sent) when the channel's buffer is full and
        the caller should `await send(...)` instead. Raises `ChannelClosed` once closed."""
        ...

    def listen(self, callback: Callable[[bytes], None] | None) -> None:
        """Hand every message to `callback` as it arrives (those already queued first, in
        order) instead of queueing it for `recv`; None goes back to queueing."""
        ...

    async def wait_closed(self) -> None:
        """Return once the channel is closed."""
        ...


_CLOSED = object()


class ChannelIteration:
    """`async for message in channel` until it closes: what every concrete channel shares."""

    async def recv(self) -> bytes:
        raise NotImplementedError

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ChannelClosed:
            raise StopAsyncIteration from None


class MemoryChannel(ChannelIteration):
    """One end of an in-memory channel pair. Messages keep their order and are never lost."""

    def __init__(
        self, name: str, inbox: asyncio.Queue[object], outbox: asyncio.Queue[object]
    ) -> None:
        self._name = name
        self._inbox = inbox
        self._outbox = outbox
        self.closed = False

    @property
    def path(self) -> str:
        return self._name

    async def send(self, message: bytes) -> None:
        if self.closed:
            raise ChannelClosed(f"channel {self._name} is closed")
        await self._outbox.put(bytes(message))

    async def recv(self) -> bytes:
        if self.closed:
            raise ChannelClosed(f"channel {self._name} is closed")
        item = await self._inbox.get()
        if item is _CLOSED:
            self.closed = True
            raise ChannelClosed(f"channel {self._name} was closed by the other end")
        assert isinstance(item, bytes)
        return item

    def close(self) -> None:
        """Close both directions; the other end's `recv` raises `ChannelClosed`."""
        if not self.closed:
            self.closed = True
            self._outbox.put_nowait(_CLOSED)


def memory_pair(name: str = "memory") -> tuple[MemoryChannel, MemoryChannel]:
    """Two connected in-memory channel ends."""
    a_to_b: asyncio.Queue[object] = asyncio.Queue()
    b_to_a: asyncio.Queue[object] = asyncio.Queue()
    return (
        MemoryChannel(f"{name}/a", inbox=b_to_a, outbox=a_to_b),
        MemoryChannel(f"{name}/b", inbox=a_to_b, outbox=b_to_a),
    )
