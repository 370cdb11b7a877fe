"""A live link: one open `PeerConnection` plus the tasks that serve its channels.

The link runs the heartbeat, reads `control` (schema-checked; malformed messages are dropped
and counted), and runs the `sync` and `integrity` services the session hands it. It is dead
when the heartbeat stops, the peer connection fails or closes, a channel closes, or a service
ends; the session then builds a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.errors import ChannelClosed
from . import control
from .connection import PeerConnection
from .datachannel import DataChannelChannel
from .heartbeat import Heartbeat

__all__ = ["Link", "Service"]

log = logging.getLogger(__name__)

Service = Callable[[DataChannelChannel], Awaitable[None]]
ControlHandler = Callable[[dict[str, Any]], Awaitable[None] | None]
RefusalHandler = Callable[[str, str, bytes], None]
"""Called with (channel, reason, raw) for every message from the peer that is refused."""


class Link:
    """Serve an open connection until it dies. `await link.run()` returns when it does."""

    def __init__(
        self,
        conn: PeerConnection,
        services: dict[str, Service],
        on_control: ControlHandler | None = None,
        *,
        on_refused: RefusalHandler | None = None,
    ) -> None:
        self.conn = conn
        self.on_refused = on_refused
        cfg = conn.config
        self.heartbeat = Heartbeat(
            conn.channels["control"], cfg.heartbeat_interval, cfg.heartbeat_timeout
        )
        self.services = services
        self.on_control = on_control
        self.dead = self.heartbeat.dead
        self.malformed = 0
        self.reason = ""
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def control(self) -> DataChannelChannel:
        return self.conn.channels["control"]

    async def send_control(self, kind: str, **fields: Any) -> bool:
        """Send a control message; False if the link is gone."""
        try:
            await self.control.send(control.encode(kind, **fields))
        except ChannelClosed:
            return False
        return True

    async def _read_control(self) -> None:
        async for raw in self.control:
            try:
                message = control.decode(raw)
            except control.ControlError as exc:
                self.malformed += 1
                if self.on_refused is not None:
                    self.on_refused("control", f"control message refused: {exc}", raw)
                else:
                    log.warning("dropped a control message: %s", exc)
                continue
            if message["t"] in ("ping", "pong"):
                await self.heartbeat.on_message(message)
                continue
            self.heartbeat.seen()
            if self.on_control is not None:
                try:
                    result = self.on_control(message)
                    if result is not None:
                        await result
                except Exception:  # a handler bug must not take the link down
                    log.exception("a control handler failed on %r", message["t"])

    async def _watch(self, what: str, waiter: Callable[[], Awaitable[Any]]) -> None:
        await waiter()
        if not self.dead.is_set():
            self.reason = what
            log.info("link ended: %s", what)
            self.dead.set()

    async def _serve(self, name: str, service: Service) -> None:
        try:
            await service(self.conn.channels[name])
        except ChannelClosed:
            pass
        except Exception:
            log.exception("the %s service failed", name)
        if not self.dead.is_set():
            self.reason = f"{name} channel ended"
            self.dead.set()

    async def run(self) -> str:
        """Serve until the link is dead; returns why."""
        spawn = asyncio.create_task
        self._tasks = [
            spawn(self._watch("heartbeat lost", self.heartbeat.run)),
            spawn(self._watch("control channel closed", self._read_control)),
            spawn(self._watch("peer connection failed or closed", self.conn.failed.wait)),
        ]
        for name, channel in self.conn.channels.items():
            self._tasks.append(spawn(self._watch(f"{name} channel closed", channel.closed.wait)))
        for name, service in self.services.items():
            self._tasks.append(spawn(self._serve(name, service)))
        await self.dead.wait()
        if not self.reason:
            self.reason = "heartbeat lost"
        await self.close()
        return self.reason

    async def close(self) -> None:
        self.dead.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.conn.close()
