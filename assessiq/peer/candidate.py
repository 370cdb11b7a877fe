"""The candidate's side of a session: join with an invite, keep the link, sign events.

    cand = await Candidate.join(invite_text)
    cand.doc.insert_code(0, "def solve():")
    await cand.send_event("browser.tab_hidden", {"phase": "instant"})

The candidate drives reconnection: when its link dies it starts a new signed handshake with
a fresh peer connection, then the document resyncs and every integrity event the host has
not receipted is sent again, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..core.handshake import CandidateHandshake, HandshakeError, Ignored
from ..core.identity import Identity
from ..core.integrity import Envelope, EventSigner, IntegrityError, Receipt
from ..core.invite import Invite
from .config import PeerConfig
from .connection import PeerConnection
from .datachannel import DataChannelChannel
from .errors import ConnectError, SignalingUnavailable
from .link import Link
from .session import PeerSession
from .signaling_client import SignalingClient

__all__ = ["Candidate"]

log = logging.getLogger(__name__)

RETRY_DELAY = 0.5


class Candidate(PeerSession):
    """A joined session. Build it with `await Candidate.join(...)`."""

    role = "candidate"

    def __init__(
        self, invite: Invite, device: Identity, config: PeerConfig, name: str | None
    ) -> None:
        super().__init__(config)
        self.invite = invite
        self.device = device
        self.name = name
        self.signer = EventSigner(invite.room, device)
        self.log: list[Envelope] = []  # every event this side signed (what is sent about me)
        self.outbox: dict[int, Envelope] = {}  # signed, not yet receipted by the host
        self.receipts: list[Receipt] = []
        self.signaling: SignalingClient | None = None
        self.attempts = 0
        self.found_by = ""  # how the signaling endpoint was found: given, zeroconf, invite
        self._integrity: DataChannelChannel | None = None
        self._sent_upto = -1
        self._flush_lock = asyncio.Lock()

    @classmethod
    async def join(
        cls,
        invite_text: str | Invite,
        *,
        device: Identity | None = None,
        name: str | None = None,
        config: PeerConfig | None = None,
        signaling: str | None = None,
        expected_host: str | None = None,
        discover_timeout: float = 5.0,
        discover_interfaces: list[str] | None = None,
        timeout: float = 30.0,
    ) -> Candidate:
        """Verify the invite, find the signaling endpoint (the invite's, or the host's own
        found with zeroconf in LAN mode), and connect. Raises `AssessIQError` subclasses
        with a one-line reason (bad invite, refused, unreachable)."""
        invite = (
            invite_text
            if isinstance(invite_text, Invite)
            else Invite.decode(invite_text, expected_host=expected_host)
        )
        config = config or PeerConfig()
        url, found_by = signaling, "given"
        if url is None and invite.lan:
            from ..discovery import discover

            url = await discover(
                invite.room, timeout=discover_timeout, interfaces=discover_interfaces
            )
            found_by = "zeroconf"
        if url is None:
            url, found_by = invite.signaling, "invite"
        if url is None:
            raise ConnectError(
                "the host offers LAN mode only and was not found on this network"
            )
        cand = cls(invite, device or Identity.generate(), config, name)
        cand.found_by = found_by
        cand.signaling = SignalingClient(
            url,
            invite.room,
            "candidate",
            ping_interval=config.signaling_ping_interval,
            ping_timeout=config.signaling_ping_timeout,
        )
        try:
            await cand.signaling.start(timeout=min(timeout, 15.0))
            cand._start_awareness()
            cand._spawn(cand._run(), "candidate-run")
            await cand.connected(timeout)
        except BaseException:
            await cand.close()
            raise
        return cand

    # ---- connection loop ---------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self.ended.is_set():
                conn = await self._handshake()
                if conn is None:
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                link = Link(
                    conn,
                    {"sync": self._sync_service, "integrity": self._integrity_service},
                    self._on_control,
                )
                await self._serve_link(link)
                if not self.ended.is_set():
                    log.info("candidate: reconnecting")
        except (HandshakeError, SignalingUnavailable) as exc:
            log.warning("candidate: %s", exc)
            self.failure = ConnectError(str(exc))
            self.ended.set()

    async def _handshake(self) -> PeerConnection | None:
        """One connection attempt; None to retry, `HandshakeError` to give up."""
        assert self.signaling is not None
        self.attempts += 1
        hs = CandidateHandshake(self.invite, self.device, name=self.name)
        if not self.signaling.joined.is_set():
            await self.signaling.joined.wait()
        generation = self.signaling.generation
        if not await self.signaling.send(hs.hello()):
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.handshake_timeout
        while hs.offer_sdp is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.info("candidate: no offer within %.0f s; retrying",
                         self.config.handshake_timeout)
                return None
            if self.signaling.generation != generation:
                log.info("candidate: the signaling connection was re-made; new attempt")
                return None
            try:
                data = await asyncio.wait_for(self.signaling.recv(), min(remaining, 0.5))
            except TimeoutError:
                continue
            result = hs.receive(data)  # HandshakeError propagates: a refusal
            if isinstance(result, Ignored):
                log.info("candidate: %s", result.reason)
        conn = PeerConnection(self.config)
        try:
            answer = await conn.answer(hs.offer_sdp)
            if not await self.signaling.send(hs.answer(answer)):
                await conn.close()
                return None
            await self._open_unless_refused(conn, hs)
        except ConnectError as exc:
            log.warning("candidate: connection attempt failed: %s", exc)
            await conn.close()
            if "in the middle" in str(exc):
                raise HandshakeError(str(exc)) from exc
            return None
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _open_unless_refused(self, conn: PeerConnection, hs: CandidateHandshake) -> None:
        """Wait for the channels to open while still listening to the host: a signed
        refusal (e.g. it found our answer altered) ends the attempt at once."""
        assert self.signaling is not None
        signaling = self.signaling

        async def watch() -> None:
            while True:
                result = hs.receive(await signaling.recv())
                if isinstance(result, Ignored):
                    log.info("candidate: %s", result.reason)

        watcher = asyncio.create_task(watch())
        opener = asyncio.create_task(conn.wait_open(self.config.connect_timeout))
        try:
            await asyncio.wait({watcher, opener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not opener.done():
                opener.cancel()
        if watcher.done() and not watcher.cancelled():
            error = watcher.exception()
            if error is not None:
                with contextlib.suppress(asyncio.CancelledError, ConnectError):
                    await opener
                raise error
        await opener

    # ---- integrity ---------------------------------------------------------------------

    async def send_event(
        self, kind: str, data: dict[str, Any] | None = None, *, severity: str = "info"
    ) -> Envelope:
        """Sign an integrity event, keep it, and send it (now, or after a reconnect)."""
        env = self.signer.sign(kind, data, severity=severity)
        self.log.append(env)
        self.outbox[env.seq] = env
        await self._flush()
        return env

    async def _flush(self) -> None:
        async with self._flush_lock:
            channel = self._integrity
            if channel is None:
                return
            for seq in sorted(self.outbox):
                if seq <= self._sent_upto:
                    continue
                try:
                    await channel.send(self.outbox[seq].raw)
                except Exception:  # the link went away; the next link resends
                    return
                self._sent_upto = seq

    async def _integrity_service(self, channel: DataChannelChannel) -> None:
        async with self._flush_lock:
            self._integrity = channel
            self._sent_upto = -1
        await self._flush()
        try:
            async for raw in channel:
                try:
                    receipt = Receipt.decode(raw)
                except IntegrityError as exc:
                    log.warning("candidate: dropped a malformed receipt: %s", exc)
                    continue
                env = self.outbox.get(receipt.seq)
                if env is None:
                    continue
                if not receipt.verify(self.invite.host_key) or receipt.hash != env.hash:
                    log.warning("candidate: a receipt for event %d does not check out",
                                receipt.seq)
                    continue
                del self.outbox[receipt.seq]
                self.receipts.append(receipt)
        finally:
            if self._integrity is channel:
                self._integrity = None

    async def close(self) -> None:
        """Leave the session (no message is sent; the host sees the link drop)."""
        self.ended.set()
        await self._close_tasks()
        if self.signaling is not None:
            await self.signaling.close()
