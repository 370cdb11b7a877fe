"""The application heartbeat on the `control` channel.

aiortc keeps reporting `connected` through short network cuts and only ends in `closed` long
after a long one, so each side pings every `interval` seconds and declares the link dead when
nothing at all has arrived on `control` for `timeout` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..core.errors import ChannelClosed
from . import control
from .datachannel import DataChannelChannel

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)


class Heartbeat:
    """Sends pings, answers them, and sets `dead` when the other side goes quiet."""

    def __init__(self, channel: DataChannelChannel, interval: float, timeout: float) -> None:
        self.channel = channel
        self.interval = interval
        self.timeout = timeout
        self.dead = asyncio.Event()
        self.last_seen = time.monotonic()
        self.rtt: float | None = None
        self._next_id = 0
        self._sent_at: dict[int, float] = {}

    def seen(self) -> None:
        """Anything valid arrived from the other side."""
        self.last_seen = time.monotonic()

    async def on_message(self, message: dict[str, object]) -> None:
        """Handle a ping or pong (other control messages only count as a sign of life)."""
        self.seen()
        if message["t"] == "ping":
            try:
                await self.channel.send(control.encode("pong", id=message["id"]))
            except ChannelClosed:
                self.dead.set()
        elif message["t"] == "pong":
            sent = self._sent_at.pop(int(str(message["id"])), None)
            if sent is not None:
                self.rtt = time.monotonic() - sent

    async def run(self) -> None:
        """Ping until the link is dead; returns when it is."""
        while not self.dead.is_set():
            if time.monotonic() - self.last_seen > self.timeout:
                log.warning("no heartbeat for %.1f s: the link is dead", self.timeout)
                self.dead.set()
                return
            self._next_id += 1
            self._sent_at = {k: v for k, v in self._sent_at.items() if k > self._next_id - 16}
            self._sent_at[self._next_id] = time.monotonic()
            try:
                await self.channel.send(
                    control.encode("ping", id=self._next_id, at=round(time.time(), 3))
                )
            except ChannelClosed:
                self.dead.set()
                return
            await asyncio.sleep(self.interval)
