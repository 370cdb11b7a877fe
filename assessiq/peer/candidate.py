"""The candidate's side of a session: join with an invite, keep the link, sign events.

    cand = await Candidate.join(invite_text)
    cand.doc.insert_code(0, "def solve():")
    await cand.send_event("browser.tab_hidden", {"phase": "instant"})

The candidate drives reconnection: when its link dies it starts a new signed handshake with
a fresh peer connection, then the document resyncs and every integrity event the host has
not receipted is sent again, in order.

The candidate keeps its own session file too (local-first on both sides): the document's
updates, every envelope it signed and every receipt it got, with `role: candidate` in its
metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.encoding import b64e
from ..core.errors import InviteError, StoreError
from ..core.handshake import (
    ADMISSION_WAIT_S,
    CandidateHandshake,
    HandshakeError,
    Head,
    Ignored,
    Waiting,
    open_device_key,
    seal_device_key,
)
from ..core.identity import Identity
from ..core.integrity import Envelope, EventSigner, IntegrityError, Receipt, check_log
from ..core.invite import Invite
from ..core.paths import sessions_dir
from ..core.resume import RESUMED, last_alive, resumed_data
from ..core.store import SessionStore
from .config import PeerConfig, merge_servers, servers_from_json
from .connection import PeerConnection
from .datachannel import DataChannelChannel
from .errors import ConnectError, PeerError, SignalingUnavailable
from .link import Link
from .runrequests import MAX_CONSOLE_STDIN, RunTicket, code_sha, console_input_size
from .session import PeerSession
from .signaling_client import SignalingClient

if TYPE_CHECKING:
    from ..media import MediaConfig
    from ..media.tap import FrameTap
    from ..proctor import Proctor, ProctorConfig
    from ..proctor.frames import Frame

__all__ = [
    "RESUME_WHY",
    "Candidate",
    "Resumable",
    "ResumeError",
    "decode_for_resume",
    "find_resumable",
]

log = logging.getLogger(__name__)

RETRY_DELAY = 0.5
RESUME_WHY = "the candidate's app started again and reopened its session file"
"""The `why` of a `session.resumed` event a plain restart signs."""
ADMITTED_WHY = ("another device of the candidate's, admitted by the interviewer, goes on from "
                "the last event the host verified (last_seen: when the host received it, on "
                "this device's clock)")
"""The `why` of the `session.resumed` event an admitted new device signs first."""
WAITING = "the interviewer is asked whether to admit this computer"
# ADMISSION_WAIT_S (core.handshake): how long a device waits for the interviewer's decision


class Candidate(PeerSession):
    """A joined session. Build it with `await Candidate.join(...)`."""

    role = "candidate"

    def __init__(
        self, invite: Invite, device: Identity, config: PeerConfig, name: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config)
        self.invite = invite
        self.device = device
        self.name = name
        self.clock = clock  # this device's wall clock: the join request and events are signed on it
        self.signer = EventSigner(invite.room, device, clock=clock)
        self.log: list[Envelope] = []  # every event this side signed (what is sent about me)
        self.outbox: dict[int, Envelope] = {}  # signed, not yet receipted by the host
        self.receipts: list[Receipt] = []
        self.signaling: SignalingClient | None = None
        self._host_arrivals = 0  # the host's new connections to the room seen so far
        self.attempts = 0
        self.found_by = ""  # how the signaling endpoint was found: given, zeroconf, invite
        self._integrity: DataChannelChannel | None = None
        self._sent_upto = -1
        self._flush_lock = asyncio.Lock()
        self.runs: dict[str, RunTicket] = {}  # run requests by request id
        self.run_refusals: list[str] = []  # every refusal's reason, in order (for the UI)
        self.proctor: Proctor | None = None
        # detectors the interviewer turned off for this candidate (the session policy's
        # [accommodations]): their findings are dropped here, never signed or sent
        self.silenced: frozenset[str] = frozenset()
        self._proctor_task: asyncio.Task[Any] | None = None
        self._events: asyncio.Queue[tuple[str, dict[str, Any], str]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._lock: int | None = None  # this process holds the session file (see resume)
        self.resumed_from: Path | None = None  # the session file a resume reopened
        self.resumed_at: float | None = None  # when (this device's clock), on a resume
        self.away_s: float | None = None  # how long this side was gone, on a resume
        self.awaiting_admission: str | None = None
        """Why this device waits: the session pinned another one and the interviewer is
        asked whether to admit this one (told to listeners as "admission")."""
        self.admitted_from: int | None = None
        """The first event this device signed after the interviewer admitted it in place of
        the device that joined (None: it is that device)."""
        self._restart: dict[str, Any] | None = None
        """This app run's `session.resumed` data, signed once the host's offer arrives."""
        self._positioned = asyncio.Event()
        """Set once the first offer placed the chain (`_continue_chain`): queued events are
        signed only from then on, after this run's `session.resumed`."""

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
        media: MediaConfig | None = None,
        session_path: Path | str | None = None,
        clock: Callable[[], float] = time.time,
        resume: bool = True,
        listeners: Sequence[Callable[[str], None]] = (),
    ) -> Candidate:
        """Verify the invite, find the signaling endpoint (the invite's, or the host's own
        found with zeroconf in LAN mode), and connect. Raises `AssessIQError` subclasses
        with a one-line reason (bad invite, refused, unreachable).

        `media` adds the call (None: no audio/video); with `media.tap_rate` set, the
        proctor can read the camera (`start_proctor()`). The candidate's own session file
        is written at `session_path` (default: the data dir's
        `sessions/<room>.candidate[-n].aiq`). `clock` is the device's wall clock (a hook:
        the host measures its offset at join and holds every event to it).

        With `resume` (the default) and no `device` given, an unfinished session of this
        invite on this computer — at `session_path`, or the one `find_resumable` finds — that
        no other running app holds is continued instead (`Candidate.resume`; `resumed_from`
        is then set), even after the invite expired. `resume=False` always joins afresh.
        `listeners` are told what changes from the start (`PeerSession.listeners`), e.g.
        "admission" while the interviewer decides on this computer."""
        if isinstance(invite_text, Invite):
            invite = invite_text
        else:
            try:
                invite = Invite.decode(invite_text, expected_host=expected_host)
            except InviteError:
                # an invite that expired after this computer joined still continues it
                if not resume or device is not None:
                    raise
                lenient = decode_for_resume(invite_text, expected_host=expected_host)
                if _resumable(lenient, session_path) is None:
                    raise
                invite = lenient
        found = _resumable(invite, session_path) if resume and device is None else None
        if found is not None:
            return await cls.resume(
                invite, session_path=found.path, name=name, config=config,
                signaling=signaling, discover_timeout=discover_timeout,
                discover_interfaces=discover_interfaces, timeout=timeout, media=media,
                clock=clock, listeners=listeners)
        config = config or PeerConfig()
        url, found_by = await _signaling_url(invite, signaling, discover_timeout,
                                             discover_interfaces)
        cand = cls(invite, device or Identity.generate(), config, name, clock)
        cand.listeners.extend(listeners)
        cand.found_by = found_by
        cand.store = _create_store(cand, session_path, url)
        try:
            await cand._start(url, media, timeout)
        except BaseException:
            if cand.store is not None:  # never joined: leave no half-made session file
                cand.store.discard()
            raise
        return cand

    @classmethod
    async def resume(
        cls,
        invite_text: str | Invite,
        *,
        session_path: Path | str | None = None,
        why: str = RESUME_WHY,
        name: str | None = None,
        config: PeerConfig | None = None,
        signaling: str | None = None,
        expected_host: str | None = None,
        discover_timeout: float = 5.0,
        discover_interfaces: list[str] | None = None,
        timeout: float = 30.0,
        media: MediaConfig | None = None,
        clock: Callable[[], float] = time.time,
        listeners: Sequence[Callable[[str], None]] = (),
    ) -> Candidate:
        """Continue an interview this computer joined before and did not finish (the app
        died, the computer restarted): its session file (`session_path`, default the one
        `find_resumable` finds for this invite) is reopened, the document loaded from it,
        the same device key taken from it, and the integrity chain continued after the last
        event it holds — events the host never receipted are sent again — then a signed
        `session.resumed` event (how long this side was away, and `why`), signed once the
        host's offer arrives: an attempt that never reaches the host signs none, and neither
        does a run while an earlier run's restart still waits for its receipt. The document
        syncs the difference both ways when the link is up.

        `ResumeError` when there is nothing to resume, the session is open in another
        window, or the file does not belong to this invite; other `AssessIQError`s as for
        `join`. The session file is kept whatever happens."""
        invite = invite_text if isinstance(invite_text, Invite) else decode_for_resume(
            invite_text, expected_host=expected_host)
        found = (Resumable.read(Path(session_path)) if session_path is not None
                 else find_resumable(invite))
        if found is None:
            raise ResumeError(
                "there is no unfinished session for this invite on this computer"
                if session_path is None else
                f"{Path(session_path).name} is not an unfinished candidate session")
        found.check(invite)
        config = config or PeerConfig()
        lock = _lock_session(found.path)
        try:
            store = SessionStore.open(found.path)
        except BaseException:
            _unlock_session(found.path, lock)
            raise
        try:
            _private_file(found.path)
            device = open_device_key(invite, str(found.meta.get("device_secret", "")))
            stored = found.meta.get("candidate_name")
            stored_name = stored if isinstance(stored, str) and stored else None
            cand = cls(invite, device, config, name if name is not None else stored_name,
                       clock)
            cand.listeners.extend(listeners)
            cand._lock = lock
            cand.store = store
            cand._restore(store)
            url, found_by = await _signaling_url(invite, signaling, discover_timeout,
                                                 discover_interfaces)
            cand.found_by = found_by
            last = last_alive(store)
            now = clock()
            cand.resumed_from, cand.resumed_at = found.path, now
            cand.away_s = max(0.0, now - last)
            # signed when the host's offer arrives (`_place_chain`): an attempt that never
            # reaches the host signs nothing, so failed attempts add no restarts
            cand._restart = resumed_data(side="candidate", away_s=cand.away_s,
                                         last_seen=last, why=why)
        except BaseException:
            with contextlib.suppress(Exception):
                store.close()
            _unlock_session(found.path, lock)
            raise
        await cand._start(url, media, timeout)  # (on failure it closes, keeping the file)
        return cand

    def _restore(self, store: SessionStore) -> None:
        """The document and the integrity log from a reopened session file: every event it
        signed (checked: its own key, one unbroken chain), the host's receipts for them, the
        ones never receipted back in the outbox, and the signer after the last one."""
        try:
            n = store.load_into(self.doc)
        except (ValueError, StoreError) as exc:
            raise ResumeError(f"the document history in {store.path.name} does not replay "
                              f"({exc}); it cannot be continued") from None
        store.attach(self.doc, local_origin="candidate", remote_origin="host")
        start, skip = _chain_from(store.meta().get("chain_from"))
        check = check_log(self.invite.room, self.device.public_key, store.envelopes()[skip:],
                          start=start)
        if check.errors:
            raise ResumeError(f"the integrity log in {store.path.name} is damaged "
                              f"({check.errors[0]}); it cannot be continued")
        receipted: dict[int, Receipt] = {}
        for raw in store.receipts():
            try:
                receipt = Receipt.decode(raw)
            except IntegrityError:
                continue
            if receipt.session == self.invite.room and receipt.verify(self.invite.host_key):
                receipted[receipt.seq] = receipt
        self.log = list(check.events)
        for env in self.log:
            got = receipted.get(env.seq)
            if got is not None and got.hash == env.hash:
                self.receipts.append(got)
            else:
                self.outbox[env.seq] = env
        if start is not None:  # a device the interviewer admitted mid-session
            self.admitted_from = start[0]
            self.signer = EventSigner(self.invite.room, self.device, next_seq=start[0],
                                      prev=start[1], clock=self.clock)
        if self.log:
            last = self.log[-1]
            self.signer = EventSigner(self.invite.room, self.device, next_seq=last.seq + 1,
                                      prev=last.hash, last_t=last.t, clock=self.clock)
        log.info("candidate: resumed %s: %d document updates, %d events (%d to send again)",
                 store.path.name, n, len(self.log), len(self.outbox))

    async def _start(self, url: str, media: MediaConfig | None, timeout: float) -> None:
        """Signaling, the call and the connection loop; wait for the first link."""
        self._setup_call(media, emit=self.emit)
        self.signaling = SignalingClient.for_peer(url, self.invite.room, "candidate",
                                                  self.config)
        self.signaling.on_peer = self._on_peer
        try:
            await self.signaling.start(timeout=min(timeout, 15.0))
            self._start_awareness()
            self._spawn(self._run(), "candidate-run")
            await self._until_connected(timeout)
        except BaseException:
            await self.close()
            raise

    def _unlock(self) -> None:
        lock, self._lock = self._lock, None
        if self.store is not None and lock is not None:
            _unlock_session(self.store.path, lock)

    # ---- connection loop ---------------------------------------------------------------

    def _on_peer(self, kind: str, role: str) -> None:
        """The host came into the room as a new connection — its app was restarted — while
        a link still looks up: that link is dead, so drop it now (not at the heartbeat
        timeout) and start a new attempt."""
        if kind == "peer-joined" and role == "host" and self.signaling is not None \
                and self.signaling.peer_arrivals != self._host_arrivals:
            self._host_arrivals = self.signaling.peer_arrivals
            link = self.link
            if link is not None:
                log.info("candidate: the host's app came back as a new connection; "
                         "reconnecting")
                self._spawn(link.close(), "candidate-drop-dead-link")

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
                    on_refused=self.refuse,
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
        arrivals = self.signaling.peer_arrivals
        if not await self.signaling.send(hs.hello(now=self.clock())):
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
            if self.signaling.peer_arrivals != arrivals:  # our hello may have gone unheard
                log.info("candidate: the host came into the room again; new attempt")
                return None
            try:
                data = await asyncio.wait_for(self.signaling.recv(), min(remaining, 0.5))
            except TimeoutError:
                continue
            result = hs.receive(data)  # HandshakeError propagates: a refusal
            if isinstance(result, Ignored):
                log.info("candidate: %s", result.reason)
            elif isinstance(result, Waiting):  # another device: the interviewer decides
                if self.awaiting_admission is None:
                    log.warning("candidate: %s", result.reason)
                    self.awaiting_admission = result.reason or WAITING
                    self.changed("admission")
                deadline = loop.time() + ADMISSION_WAIT_S
        if self.awaiting_admission is not None:
            self.awaiting_admission = None
            self.changed("admission")
        await self._place_chain(hs.offer_head)
        try:
            # Ours (in the config), the signaling server's relay for us, then the host's list
            # from its encrypted offer: a candidate with no configuration gets a relay.
            host_servers = servers_from_json(hs.offer_ice) if hs.offer_ice else ()
        except ValueError as exc:
            raise HandshakeError(f"the host's offer carries a bad ICE server list: {exc}") from exc
        try:
            conn = PeerConnection(self.config, media=self.media_hook,
                                  ice_servers=merge_servers(self.signaling.ice_servers,
                                                            host_servers))
        except ConnectError as exc:  # relay-only, and nobody gave a TURN server
            raise HandshakeError(str(exc)) from exc
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

    async def _place_chain(self, head: Head | None) -> None:
        """The host's offer came: the chain goes on where the host's head says (an admitted
        device's, `_continue_chain`), then this app run's restart is signed — once per run,
        never on a reconnect within it — and the events queued meanwhile after it."""
        if self.ended.is_set():
            return
        admitted = await self._continue_chain(head)
        restart, self._restart = self._restart, None
        if restart is not None and not admitted:
            waiting = [e.seq for e in self.outbox.values() if e.kind == RESUMED
                       and e.data.get("side") == "candidate"]
            if waiting:  # an earlier run's restart the host never receipted: that one stands
                log.info("candidate: the restart at event %d is still to be sent; no new one",
                         waiting[0])
            else:
                await self.send_event(RESUMED, restart)
        self._positioned.set()

    def _agrees(self, head: Head) -> bool:
        """Whether this device's log is the chain the host's head ends: the head is its
        event before `head.seq`, or where its own log begins."""
        mine = {e.seq: e.hash for e in self.log}
        if mine.get(head.seq - 1) == head.hash:
            return True
        first = (self.log[0].seq, self.log[0].prev) if self.log else \
            (self.signer.next_seq, self.signer.prev)
        return first == (head.seq, head.hash)

    async def _continue_chain(self, head: Head | None) -> bool:
        """A device the interviewer admitted in place of the one that joined: its chain goes
        on from the host's head, and its first event says so. True when that happened now.

        This device's log must then hold nothing the host ever receipted: what it holds was
        signed before the admission (in an earlier run, while it waited) at positions the
        host has filled with the other device's events. Those events are set aside in its
        file (`chain_from.skip`) and signed again, in order, after the admission's
        `session.resumed` (an earlier restart of its own is not: that one replaces it)."""
        if head is None or head.seq == 0 or self._agrees(head):
            return False
        if self.receipts or self.admitted_from is not None:
            log.warning("candidate: the host's log head (event %d) is not this device's "
                        "chain; going on with ours", head.seq)
            return False
        stale = [e for e in self.log if e.kind != RESUMED]
        self.log, self.outbox = [], {}
        self.signer = EventSigner(self.invite.room, self.device, next_seq=head.seq,
                                  prev=head.hash, clock=self.clock)
        self.admitted_from = head.seq
        if self.store is not None:  # where its own log begins (a resume checks it from there)
            self.store.set_meta("chain_from", {"seq": head.seq, "prev": head.hash,
                                               "skip": len(self.store.envelopes())})
        self.away_s = max(0.0, self.clock() - head.t)
        log.warning("candidate: admitted as a new device; the chain goes on from event %d%s",
                    head.seq, f" ({len(stale)} earlier events signed again)" if stale else "")
        await self.send_event(RESUMED, resumed_data(side="candidate", away_s=self.away_s,
                                                    last_seen=head.t, why=ADMITTED_WHY))
        for env in stale:
            await self.send_event(env.kind, env.data, severity=env.severity)
        return True

    async def _until_connected(self, timeout: float) -> None:
        """`connected(timeout)`, waiting on (at most `ADMISSION_WAIT_S`) while the
        interviewer decides whether to admit this device."""
        end = asyncio.get_running_loop().time() + ADMISSION_WAIT_S
        while True:
            try:
                await self.connected(timeout)
                return
            except ConnectError:
                if (self.awaiting_admission is None or self.failure is not None
                        or asyncio.get_running_loop().time() > end):
                    raise

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
        """Sign an integrity event, keep it, and send it (now, or after a reconnect).
        `PeerError` once the session has ended: nothing is signed after the seal."""
        if self.ended.is_set():
            raise PeerError("the session has ended; no more events are signed")
        env = self.signer.sign(kind, data, severity=severity)
        self.log.append(env)
        self.changed("events")
        self.outbox[env.seq] = env
        if self.store is not None:
            self.store.append_envelope(env.raw)
        await self._flush()
        return env

    def emit(self, kind: str, data: dict[str, Any], severity: str = "info") -> None:
        """Queue an event to be signed and sent; one consumer signs them in the order they
        were queued, none is dropped. Call it on the event loop's thread (the proctor's
        sink and the call's camera callback are)."""
        self._events.put_nowait((kind, data, severity))
        if self._pump is None or self._pump.done():
            self._pump = self._spawn(self._pump_events(), "candidate-events")

    async def events_sent(self) -> None:
        """Wait until every queued event has been signed (and handed to the link)."""
        await self._events.join()

    async def _pump_events(self) -> None:
        await self._positioned.wait()  # nothing is signed before the chain is placed
        while True:
            kind, data, severity = await self._events.get()
            try:
                if not self.ended.is_set():  # after the end, queued events are dropped
                    await self.send_event(kind, data, severity=severity)
            except Exception:  # a bad event must not stop the ones after it
                log.exception("candidate: could not sign a %s event", kind)
            finally:
                self._events.task_done()

    # ---- the proctor -------------------------------------------------------------------

    def start_proctor(
        self,
        frames: Iterable[Frame] | AsyncIterable[Frame] | None = None,
        *,
        config: ProctorConfig | None = None,
    ) -> Proctor:
        """Run the proctor on `frames` (default: the call's camera tap, which survives
        reconnects) in the background. Its events — conditions and heartbeats — are signed
        and sent in the order it produces them. Analysis runs in a worker thread."""
        from ..proctor import Proctor

        if self.proctor is not None:
            raise PeerError("the proctor is already running")
        if frames is None:
            tap = self.call.tap if self.call is not None else None
            if tap is None:
                raise PeerError("no camera to watch: join with media=MediaConfig(camera=..., "
                                "tap_rate=...) or give the proctor its frames")
            frames = _tap_frames(tap, lambda: self.proctor is None or self._closed)

        proctor = Proctor(self.proctor_sink, config)
        self.proctor = proctor
        self._proctor_task = self._spawn(proctor.run(frames), "candidate-proctor")
        return proctor

    def proctor_sink(self, kind: str, data: dict[str, Any]) -> None:
        """Where the proctor's findings go: signed and sent in order, except those of a
        detector the interviewer turned off (`silenced`), which are dropped unsigned."""
        if kind in self.silenced:
            return
        self.emit(kind, data, "warn" if data.get("phase") == "start" else "info")

    async def stop_proctor(self, timeout: float = 5.0) -> None:
        """Stop the proctor (its last events are queued) and wait for it to end."""
        proctor, task = self.proctor, self._proctor_task
        self.proctor, self._proctor_task = None, None
        if proctor is None or task is None:
            return
        proctor.stop()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    # ---- runs --------------------------------------------------------------------------

    async def request_run(self, language: str | None = None, stdin: str = "") -> RunTicket:
        """Ask the host to run the current shared code (with `stdin`: a console run, its
        input at most `MAX_CONSOLE_STDIN` bytes). The ticket's `state` becomes
        "accepted" (the result appears in `doc.runs()` under `run_id`) or "refused" (with
        the `reason` to show). Not connected: refused at once."""
        ticket = RunTicket(id=secrets.token_hex(6), language=language or self.doc.language)
        self.runs[ticket.id] = ticket
        size = console_input_size(stdin)
        if size is None or size > MAX_CONSOLE_STDIN:
            self._refused(ticket, "the input is not valid text" if size is None else
                          f"a console run's input is limited to {MAX_CONSOLE_STDIN} bytes "
                          "(quotes, backslashes and line breaks count two)")
            return ticket
        fields = {"stdin": stdin} if stdin else {}
        sent = await self.send_control("run.stdin" if stdin else "run.request", id=ticket.id,
                                       language=ticket.language,
                                       sha=code_sha(self.doc.code_text), **fields)
        if not sent:
            self._refused(ticket, "not connected to the host; try again in a moment")
        return ticket

    def _refused(self, ticket: RunTicket, reason: str) -> None:
        ticket.state, ticket.reason = "refused", reason
        self.run_refusals.append(reason)
        self.changed("run_refusals")
        log.info("candidate: run refused: %s", reason)

    async def _on_control(self, message: dict[str, Any]) -> None:
        await super()._on_control(message)
        kind = message["t"]
        if kind == "bye" and self.store is not None:
            # the host ended the interview: this file is finished, never resumed
            with contextlib.suppress(Exception):
                self.store.set_meta("ended", time.time())
        if kind in ("run.accepted", "run.refused"):
            ticket = self.runs.get(message["id"])
            if ticket is None:
                return
            if kind == "run.accepted":
                ticket.state, ticket.run_id = "accepted", message["run"]
            else:
                self._refused(ticket, message["reason"])

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
                    self.refuse("integrity", f"malformed receipt: {exc}", raw)
                    continue
                env = self.outbox.get(receipt.seq)
                if env is None:
                    continue
                if not receipt.verify(self.invite.host_key) or receipt.hash != env.hash:
                    self.refuse("integrity", f"the receipt for event {receipt.seq} does not "
                                "check out", raw)
                    continue
                del self.outbox[receipt.seq]
                self.receipts.append(receipt)
                self.changed("events")
                if self.store is not None:
                    self.store.append_receipt(receipt.raw)
        finally:
            if self._integrity is channel:
                self._integrity = None

    async def close(self) -> None:
        """Leave the session (no message is sent; the host sees the link drop)."""
        self.ended.set()
        await self.stop_proctor()
        await self.record_call_stats()
        if self.call is not None:
            self.call.close()
        await self._close_tasks()
        if self.signaling is not None:
            await self.signaling.close()
        self.flush_refusals()
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
        self._unlock()


def _tap_frames(tap: FrameTap, stopping: Any) -> Iterator[Frame]:
    """The tap's frames until the tap closes or `stopping()`; waits in short steps so a
    stop is noticed while the camera sends nothing (off, or between links)."""
    while not tap.closed and not stopping():
        got = tap.wait(0.5)
        if got is not None:
            yield got


def _create_store(cand: Candidate, path: Path | str | None, url: str) -> SessionStore:
    """The candidate's own session file (a fresh one; never overwrites), held by this
    process (see `_lock_session`). It keeps the device key, sealed under the invite
    (`seal_device_key`), for a resume; the file is 0600."""
    meta = {
        "session": cand.invite.room,
        "role": "candidate",
        "host_key": b64e(cand.invite.host_key),
        "device_key": b64e(cand.device.public_key),
        "device_secret": seal_device_key(cand.invite, cand.device),
        "invite": cand.invite.id,
        "candidate_name": cand.name or "",
        "signaling": url,
        "created": time.time(),
    }
    if path is None:
        folder = sessions_dir()
        n = 0
        while True:
            suffix = "" if n == 0 else f"-{n}"
            path = folder / f"{cand.invite.room}.candidate{suffix}.aiq"
            if not path.exists():
                break
            n += 1
    store = SessionStore.create(path, meta)
    try:
        cand._lock = _lock_session(store.path)
    except BaseException:
        store.discard()
        raise
    store.attach(cand.doc, local_origin="candidate", remote_origin="host")
    return store


# ---- resuming ----------------------------------------------------------------------------

class ResumeError(PeerError):
    """A session cannot be resumed; the message says why."""


async def _signaling_url(invite: Invite, signaling: str | None, discover_timeout: float,
                         discover_interfaces: list[str] | None) -> tuple[str, str]:
    """Where to meet the host, and how it was found: given, zeroconf (LAN mode), invite."""
    url, found_by = signaling, "given"
    if url is None and invite.lan:
        from ..discovery import discover

        url = await discover(invite.room, timeout=discover_timeout,
                             interfaces=discover_interfaces)
        found_by = "zeroconf"
    if url is None:
        url, found_by = invite.signaling, "invite"
    if url is None:
        raise ConnectError("the host offers LAN mode only and was not found on this network")
    return url, found_by


def decode_for_resume(text: str, *, expected_host: str | None = None) -> Invite:
    """An invite checked as `Invite.decode` does, except its expiry: an invite that expired
    after this computer joined with it still continues that session (the host lets the
    device it pinned back in)."""
    return Invite.decode(text, now=0.0, expected_host=expected_host)


@dataclass(frozen=True)
class Resumable:
    """An unfinished candidate session file on this computer."""

    path: Path
    meta: dict[str, Any]
    last_active: float
    """When this side was last alive in it (its newest record), seconds since the epoch."""
    in_use: bool
    """Whether another running app holds it now."""

    @classmethod
    def read(cls, path: Path) -> Resumable | None:
        """The session file at `path` if it is an unfinished candidate session (not ended
        by the host, holding its device key); None otherwise. Read only."""
        if not path.is_file():
            return None
        try:
            conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        except sqlite3.Error:
            return None
        try:
            store = SessionStore(path, conn, read_only=True)
            meta = store.meta()
            if (meta.get("role") != "candidate" or "ended" in meta or "left" in meta
                    or not meta.get("device_secret") or store.seal_raw() is not None):
                return None
            last = last_alive(store)
        except (sqlite3.Error, StoreError, ValueError, TypeError, KeyError):
            return None
        finally:
            conn.close()
        return cls(path=path, meta=meta, last_active=last, in_use=_held(path))

    def matches(self, invite: Invite) -> bool:
        return (self.meta.get("session") == invite.room
                and self.meta.get("invite") == invite.id
                and self.meta.get("host_key") == b64e(invite.host_key))

    def check(self, invite: Invite) -> None:
        """`ResumeError` unless this session can be continued with `invite` now."""
        if not self.matches(invite):
            raise ResumeError(f"{self.path.name} is not a session of this invite")
        if self.in_use:
            raise ResumeError("this interview is already open in another AssessIQ window on "
                              "this computer; use that one")

    def leave(self, why: str = "the candidate started a new session instead") -> None:
        """Never offer this session again (`assessiq join --new-session`): the file is kept,
        with `left` in its metadata. `ResumeError` while another running app holds it."""
        lock = _lock_session(self.path)
        try:
            with SessionStore.open(self.path) as store:
                store.set_meta("left", {"at": time.time(), "why": why})
        finally:
            _unlock_session(self.path, lock)


def _resumable(invite: Invite, session_path: Path | str | None) -> Resumable | None:
    """What `join` continues: the unfinished session of `invite` at `session_path` or found
    on this computer, when no other running app holds it."""
    found = (Resumable.read(Path(session_path)) if session_path is not None
             else find_resumable(invite))
    if found is None or found.in_use or not found.matches(invite):
        return None
    return found


def find_resumable(invite: Invite, folder: Path | None = None) -> Resumable | None:
    """The unfinished session this computer joined with `invite` (the newest, if several),
    in `folder` (default: the data dir's sessions); None when there is none."""
    folder = folder or sessions_dir()
    found = [r for p in sorted(folder.glob(f"{invite.room}.candidate*.aiq"))
             if (r := Resumable.read(p)) is not None and r.matches(invite)]
    return max(found, key=lambda r: r.last_active, default=None)


def _chain_from(value: Any) -> tuple[tuple[int, str] | None, int]:
    """Where an admitted device's own log begins (`chain_from` in its file: the next sequence
    number and the previous hash), or None; and how many stored events come before it
    (`skip`: signed before the interviewer admitted it, never received by the host)."""
    if not isinstance(value, dict):
        return None, 0
    seq, prev, skip = value.get("seq"), value.get("prev"), value.get("skip", 0)
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        skip = 0
    if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 \
            and isinstance(prev, str) and len(prev) == 64:
        return (seq, prev), skip
    return None, 0


def _private_file(path: Path) -> None:
    """The session file holds the (sealed) device key: only its owner may read it."""
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)


def _lock_path(path: Path) -> str:
    return f"{path}.lock"


def _lock_session(path: Path) -> int | None:
    """Hold `path` for this process (an advisory lock on `<path>.lock`, released by the
    system when the process dies): a second app cannot continue the same session at once.
    None where there are no such locks (Windows)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    lock = _lock_path(path)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise ResumeError("this interview is already open in another AssessIQ window on "
                              "this computer; use that one") from exc
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # its holder removed it as we locked it: lock the new one


def _unlock_session(path: Path, fd: int | None) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.unlink(_lock_path(path))
    os.close(fd)


def _held(path: Path) -> bool:
    """Whether a running app holds the session at `path` (see `_lock_session`)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return False
    try:
        fd = os.open(_lock_path(path), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
