"""What the host's and the candidate's sessions share: the document, the current link, the
connected/ended state, the document sync service run on each new link, and the call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pycrdt import Awareness

from ..core.aio import first_completed
from ..core.document import SharedDoc
from ..core.errors import ChannelClosed
from ..core.fragments import RATE_BURST, RATE_BYTES_PER_SECOND, TokenBucket
from . import control
from .config import PeerConfig
from .datachannel import DataChannelChannel
from .errors import ConnectError
from .link import Link

if TYPE_CHECKING:
    from ..core.store import SessionStore
    from ..media import MediaConfig, MediaSession
    from .call import CallState, Emit
    from .connection import MediaHook

__all__ = ["PeerSession"]

log = logging.getLogger(__name__)

control.register("refused", {"channel": str, "reason": str})

REFUSAL_NOTICE_INTERVAL = 1.0
"""At most one `refused` notice a second goes to the other side."""
REFUSALS_ITEMISED_PER_SECOND = 20
"""Refusals logged and written one row each per second; past it, a flood is counted and
written as one row per channel (a flood of junk must not become a flood of writes)."""

KEEP_RECENT = 256
"""How many of the peer's latest control messages (and the host's latest refusals and
integrity errors) are kept for inspection."""


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
        self.control_messages: deque[dict[str, Any]] = deque(maxlen=KEEP_RECENT)
        """The latest control messages from the peer (a flood cannot grow it)."""
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.awareness = Awareness(self.doc.doc)  # one for the session: its clock must grow
        self.call: CallState | None = None  # the call across links (None: no media)
        self.store: SessionStore | None = None
        self.refused: deque[dict[str, Any]] = deque(maxlen=KEEP_RECENT)
        """The latest things refused from the peer (all are in the session file)."""
        self.refused_total = 0
        self._told_refused = 0.0
        self._refusal_second = 0
        self._itemised_this_second = 0
        self._unitemised: dict[str, int] = {}
        self.refused_by_peer: deque[dict[str, Any]] = deque(maxlen=KEEP_RECENT)
        """What the other side said it refused from us (its `refused` notices)."""
        self.listeners: list[Callable[[str], None]] = []
        """Told what changed: "connection", "events", "refusals", "refused_by_peer" (the
        pages' controllers in `assessiq.room` listen; each returns at once)."""
        self.inbound = TokenBucket(RATE_BYTES_PER_SECOND, RATE_BURST)
        """The byte-rate cap on what the peer sends on the sync channels, across links."""

    def changed(self, what: str) -> None:
        """Tell the `listeners` that `what` changed (a listener that fails is logged)."""
        for listener in list(self.listeners):
            try:
                listener(what)
            except Exception:
                log.exception("%s: a change listener failed", self.role)

    # ---- refusals ----------------------------------------------------------------------

    def _refuse_sync(self, reason: str, raw: bytes) -> None:
        self.refuse("sync", reason, raw)

    def refuse(self, channel: str, reason: str, raw: bytes = b"") -> None:
        """Something from the peer on `channel` was refused for `reason`: log it, keep it
        for the page, and write it to the session file (sealed with the record on the
        host's side). `raw` is what was refused; only its digest and size are kept."""
        self.refused_total += 1
        now = time.time()
        self.refused.append({"t": now, "channel": channel, "reason": reason, "size": len(raw)})
        self.changed("refusals")
        if int(now) != self._refusal_second:
            self._refusal_second, self._itemised_this_second = int(now), 0
            self.flush_refusals()
        self._itemised_this_second += 1
        if self._itemised_this_second > REFUSALS_ITEMISED_PER_SECOND:
            self._unitemised[channel] = self._unitemised.get(channel, 0) + 1
            return
        if self.link is not None and now - self._told_refused >= REFUSAL_NOTICE_INTERVAL:
            # the other side's page says so too (at most once a second: a flood stays local)
            self._told_refused = now
            self._spawn(self.link.send_control("refused", channel=channel, reason=reason[:200]),
                        f"{self.role}-refusal-notice")
        log.warning("%s: refused from the peer on %s: %s", self.role, channel, reason)
        if self.store is not None:
            try:
                self.store.append_refusal(channel, reason, raw, t=now)
            except Exception:  # a closed store (the session is ending) loses nothing honest
                log.exception("%s: could not record a refusal", self.role)

    def flush_refusals(self) -> None:
        """Write what a flood of refusals left counted but not itemised (one row per
        channel). Called on the next second's first refusal and before the file is sealed."""
        pending, self._unitemised = self._unitemised, {}
        for channel, n in pending.items():
            log.warning("%s: %d more refusals from the peer on %s (not itemised)", self.role,
                        n, channel)
            if self.store is not None:
                try:
                    self.store.append_refusal(
                        channel, f"{n} more refusals within a second (not itemised)", count=n)
                except Exception:
                    log.exception("%s: could not record refusals", self.role)

    # ---- the call ----------------------------------------------------------------------

    def _setup_call(self, media: MediaConfig | None, emit: Emit | None = None) -> None:
        if media is not None:
            from .call import CallState

            self.call = CallState(media, emit=emit, on_change=lambda: self.changed("call"))
            self._spawn(self._call_stats_loop(), f"{self.role}-call-stats")

    @property
    def media_hook(self) -> MediaHook | None:
        return self.call.attach if self.call is not None else None

    @property
    def media(self) -> MediaSession | None:
        """The call on the live link: `remote_jpeg()`, `set_muted()`, `await stats()`...
        None without media, and between links."""
        link = self.link
        if link is None or self.call is None:
            return None
        media: MediaSession | None = link.conn.media
        return media

    def set_camera(self, on: bool) -> None:
        """Turn this side's camera on or off, now and on every later link (the candidate's
        `camera.off` events follow)."""
        if self.call is None:
            from .errors import PeerError

            raise PeerError("this session has no call (start it with media=...)")
        self.call.set_camera(on)

    async def record_call_stats(self) -> dict[str, Any] | None:
        """Sample the call statistics of the live link into the session file (private
        "call_stats"); returns them, or None between links or without media. Within a
        second of the last sample, that one is returned and nothing new is stored."""
        if self.call is None or self.media is None:
            return None
        try:
            stats, new = await self.call.stats()
        except Exception:  # statistics are a nicety; never let them end the session
            log.exception("%s: could not sample the call statistics", self.role)
            return None
        if stats is not None and new and self.store is not None:
            try:
                self.store.add_private("call_stats", stats)
            except Exception:
                log.exception("%s: could not store the call statistics", self.role)
        return stats

    async def _call_stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.call_stats_interval)
            await self.record_call_stats()

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
        async with DocSync(self.doc, channel, awareness=self.awareness, origin=other,
                           role="owner" if self.role == "host" else "reader", peer_role=other,
                           on_refused=self._refuse_sync,
                           max_doc_bytes=self.config.max_doc_bytes) as sync:
            await first_completed(sync.synced.wait(), sync.closed.wait(), channel.closed.wait())
            if sync.synced.is_set() and not sync.closed.is_set():
                log.info("%s: document synced over the new link", self.role)
                self._connected.set()
                self.changed("connection")
                await first_completed(channel.closed.wait(), sync.closed.wait())
        # However the sync stopped (the channel closed, or DocSync gave up on it), the link
        # ends here and the session builds a new one: "connected" means "syncing".
        raise ChannelClosed(f"{channel.path}: the document sync stopped")

    def _start_awareness(self) -> None:
        self._spawn(self.awareness.start(), f"{self.role}-awareness")

    async def _on_control(self, message: dict[str, Any]) -> None:
        self.control_messages.append(message)
        if message["t"] == "refused":
            log.warning("%s: the other side refused what this side sent on %s: %s", self.role,
                        message["channel"][:20], message["reason"][:200])
            self.refused_by_peer.append({"t": time.time(), "channel": message["channel"][:20],
                                         "reason": message["reason"][:200]})
            self.changed("refused_by_peer")
        if message["t"] == "bye":
            log.info("%s: the other side ended the session: %s", self.role, message["reason"])
            self.ended.set()

    async def _serve_link(self, link: Link) -> str:
        link.conn.guard_inbound(self.refuse, self.inbound)
        self.link = link
        self.links_made += 1
        try:
            reason = await link.run()
        finally:
            self._connected.clear()
            if self.link is link:
                self.link = None
            self.changed("connection")
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

