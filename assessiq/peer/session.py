"""What the host's and the candidate's sessions share: the document, the current link, the
connected/ended state and the document sync service run on each new link."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pycrdt import Awareness

from ..core.document import SharedDoc
from .config import PeerConfig
from .datachannel import DataChannelChannel
from .errors import ConnectError
from .link import Link

__all__ = ["PeerSession"]

log = logging.getLogger(__name__)


class PeerSession:
    """Base of `Host` and `Candidate`."""

    role = "peer"

    def __init__(self, config: PeerConfig, doc: SharedDoc | None = None) -> None:
        self.config = config
        self.doc: SharedDoc = doc if doc is not None else SharedDoc()
        self.link: Link | None = None
        self.links_made = 0
        self.ended = asyncio.Event()
        self.failure: Exception | None = None
        self.control_messages: list[dict[str, Any]] = []
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.awareness = Awareness(self.doc.doc)  # one for the session: its clock must grow

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    async def connected(self, timeout: float | None = None) -> None:
        """Wait until a link is up (and its document sync has run its first exchange)."""
        waiters = {
            asyncio.create_task(self._connected.wait()),
            asyncio.create_task(self.ended.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if self._connected.is_set():
            return
        if self.failure is not None:
            raise self.failure
        if self.ended.is_set():
            raise ConnectError("the session has ended")
        raise ConnectError(f"not connected within {timeout:g} s")

    async def disconnected(self) -> None:
        """Wait until the current link (if any) is down."""
        link = self.link
        if link is not None:
            await link.dead.wait()

    async def send_control(self, kind: str, **fields: Any) -> bool:
        link = self.link
        return link is not None and await link.send_control(kind, **fields)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _sync_service(self, channel: DataChannelChannel) -> None:
        from ..core.sync import DocSync

        other = "candidate" if self.role == "host" else "host"
        async with DocSync(self.doc, channel, awareness=self.awareness, origin=other) as sync:
            await sync.synced.wait()
            log.info("%s: document synced over the new link", self.role)
            self._connected.set()
            await channel.closed.wait()

    def _start_awareness(self) -> None:
        self._spawn(self.awareness.start(), f"{self.role}-awareness")

    async def _on_control(self, message: dict[str, Any]) -> None:
        self.control_messages.append(message)
        if message["t"] == "bye":
            log.info("%s: the other side ended the session: %s", self.role, message["reason"])
            self.ended.set()

    async def _serve_link(self, link: Link) -> str:
        self.link = link
        self.links_made += 1
        try:
            reason = await link.run()
        finally:
            self._connected.clear()
            if self.link is link:
                self.link = None
        log.info("%s: link %d down: %s", self.role, self.links_made, reason)
        return reason

    async def _close_tasks(self) -> None:
        self._closed = True
        if self.link is not None:
            await self.link.close()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
