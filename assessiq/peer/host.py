"""The interviewer's side of a session: make the invite, admit the candidate, keep the link.

    host = await Host.start(signaling="ws://127.0.0.1:8765")   # or lan=True
    print(host.invite.link())
    await host.connected()
    host.doc.insert_code(0, "print(1)")
    path = await host.end()                                      # sealed session file
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.admission import ADMITTED, admissions, key_schedule, record_admission
from ..core.document import SharedDoc
from ..core.encoding import b64d, b64e
from ..core.errors import InviteError
from ..core.handshake import HandshakeError, Head, HostHandshake, Ignored, Pending
from ..core.identity import Identity, load_or_create_host_identity
from ..core.integrity import (
    CLOCK_SLACK_S,
    ClockRule,
    Envelope,
    IntegrityError,
    LogVerifier,
    Receipt,
    clock_rule,
    make_receipt,
)
from ..core.invite import Invite, JoinGate, make_invite
from ..core.paths import sessions_dir
from ..core.policy import Policy
from ..core.seal import seal
from ..core.store import SessionStore
from .candidate import _held, _lock_session, _unlock_session
from .config import PeerConfig, for_candidate, servers_to_json
from .connection import PeerConnection
from .datachannel import DataChannelChannel
from .errors import ConnectError, SignalingUnavailable
from .link import Link
from .runrequests import handle_run_request
from .session import KEEP_RECENT, PeerSession
from .signaling_client import SignalingClient

if TYPE_CHECKING:
    from sandbox import Backend
    from sandbox.testcases import TestCase

    from ..media import MediaConfig
    from ..runs import RunLimits, RunService

__all__ = ["Host", "SessionSummary", "check_resumable", "unsealed_sessions"]

log = logging.getLogger(__name__)

WAIT_REASON = ("this computer is not the device that joined this interview: the interviewer "
               "is asked whether to admit it")
REFUSE_REASON = ("the interviewer did not admit this computer: it is not the device that "
                 "joined this interview")
EXPIRED_REASON = ("the interviewer did not decide in time whether to admit this computer; "
                  "join again to ask again")
BACK_REASON = ("the computer that joined this interview is connected again, so this one was "
               "not admitted; join again to ask the interviewer")


class Host(PeerSession):
    """A hosted session. Build it with `await Host.start(...)`."""

    role = "host"

    def __init__(
        self,
        identity: Identity,
        invite: Invite,
        config: PeerConfig,
        store: SessionStore,
        *,
        doc: SharedDoc | None = None,
        pinned_device: bytes | None = None,
    ) -> None:
        super().__init__(config, doc)
        self.identity = identity
        self.invite = invite
        self.store: SessionStore = store
        self.handshake = HostHandshake(invite, identity,
                                       JoinGate(invite, pinned_device=pinned_device))
        self.verifier: LogVerifier | None = None
        self.events: list[Envelope] = []
        self.receipts: dict[int, Receipt] = {}
        # The latest reasons only: a hostile relay or peer can cause them without end.
        self.refusals: deque[str] = deque(maxlen=KEEP_RECENT)
        self.integrity_errors: deque[str] = deque(maxlen=KEEP_RECENT)
        self.signaling: SignalingClient | None = None
        self.server: Any = None  # the embedded signaling server in LAN mode
        self.advertiser: Any = None
        self._answers: dict[str, asyncio.Future[str]] = {}
        self._attempt_task: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None  # drops a request no one decided on
        self.runs: RunService | None = None  # executes run requests (None: runs off)
        self.received_at: dict[int, float] = {}  # event seq -> when it was verified here
        self._hello_at: float | None = None  # when the current attempt's hello arrived
        self._lock: int | None = None  # this app's hold on the session file
        self.resumed: dict[str, Any] | None = None
        """This app's restart as recorded (`core.resume.record_host_resume`): None for a
        session this app started; after `Host.resume`, `{at, away_s, last_seen, why, ...}`."""
        store.attach(self.doc, local_origin="host", remote_origin="candidate")

    @property
    def device_key(self) -> bytes | None:
        return self.handshake.device_key

    @property
    def clock_offset(self) -> float:
        """The candidate's clock minus the host's, measured at join (0 before)."""
        clock = self.verifier.clock if self.verifier is not None else None
        return clock.offset if clock is not None else 0.0

    def arrivals(self) -> list[float]:
        """When each of `events` was received here (the record's clock), in their order."""
        return [self.received_at[e.seq] for e in self.events]

    @classmethod
    async def start(
        cls,
        *,
        identity: Identity | None = None,
        signaling: str | None = None,
        lan: bool = False,
        lan_address: str = "127.0.0.1",
        config: PeerConfig | None = None,
        session_path: Path | str | None = None,
        label: str | None = None,
        advertise_interfaces: list[str] | None = None,
        policy: Policy | None = None,
        media: MediaConfig | None = None,
        runs: bool = True,
        run_backend: Backend | None = None,
        hidden_tests: Sequence[TestCase] = (),
        run_limits: RunLimits | None = None,
        embedded_signaling: tuple[str, int] | None = None,
    ) -> Host:
        """Open a session: start signaling (embedded in LAN mode), write the session file,
        and wait for the candidate in the background. `host.invite` is what to send them.

        `embedded_signaling` is the (address, port) of a signaling server the caller started
        for this session on this machine (`signaling` names it): kept in the file, so that
        `Host.resume` listens there again after the app died.

        `policy` (default: the built-in one) is stored in the session file, so verification
        uses exactly it, and in the shared document, so the candidate's app uses it too.
        `media` adds the call (None: no audio/video). With `runs`, a `RunService` (on
        `run_backend`, default the local sandbox, with `hidden_tests` and `run_limits`)
        executes the candidate's run requests and the host's own."""
        identity = identity or load_or_create_host_identity()
        config = config or PeerConfig()
        policy = policy or Policy.default()
        server = None
        if signaling is None:
            if not lan:
                raise ConnectError("give a signaling server URL, or use LAN mode")
            from signaling import ServerConfig, SignalingServer

            server = SignalingServer(ServerConfig(host=lan_address, port=0))
            await server.start()
            signaling = f"ws://{_url_host(lan_address)}:{server.port}"
        if lan and server is None:  # only the embedded server is advertised on the LAN
            log.info("host: LAN mode needs the embedded signaling server; using %s only",
                     signaling)
            lan = False
        invite = make_invite(identity, signaling=signaling, lan=lan, label=label)
        path = Path(session_path) if session_path else sessions_dir() / f"{invite.room}.aiq"
        try:
            store = SessionStore.create(
                path,
                {
                    "session": invite.room,
                    "host_key": b64e(identity.public_key),
                    "invite": invite.id,
                    "created": time.time(),
                    "label": label or "",
                    "role": "host",
                    "policy": policy.text,
                },
            )
        except BaseException:
            if server is not None:
                await server.stop()
            raise
        host = cls(identity, invite, config, store)
        host.server = server
        host._lock = _lock_session(store.path)  # a resume elsewhere waits for this app to end
        # What a restarted app needs to go on with the same room and invite (`Host.resume`);
        # the invite's secret stays out of the record (the seal empties `live`).
        store.set_live("invite", invite.encode())
        if server is not None:
            embedded_signaling = (lan_address, server.port)
        if embedded_signaling is not None:
            store.set_live("signaling_server", {"address": embedded_signaling[0],
                                                "port": int(embedded_signaling[1])})
        if hidden_tests:
            store.add_private("hidden_tests", [_test_json(t) for t in hidden_tests])
        # The candidate's app debounces its browser signals and warns by the same policy.
        host.doc.set_policy(policy.text, origin="host")
        try:
            if runs:
                from ..runs import RunService

                host.runs = RunService(host.doc, store, backend=run_backend,
                                       hidden_tests=hidden_tests, limits=run_limits,
                                       origin="host")
                await host.runs.start()
            host._setup_call(media)
            host.signaling = SignalingClient.for_peer(signaling, invite.room, "host", config)
            await host.signaling.start()
            # The server's relay credentials come once the candidate is in the room; its
            # joined frame says whether it has a relay to issue them for.
            if config.relay_only and not host.signaling.relay_offered and not any(
                    s.is_turn for s in config.ice_servers):
                raise ConnectError("relay-only needs a TURN server: configure one, or use a "
                                   "signaling server that issues TURN credentials")
            if lan and server is not None:
                from ..discovery import Advertiser

                host.advertiser = Advertiser(
                    invite.room, lan_address, server.port, interfaces=advertise_interfaces
                )
                await host.advertiser.start()
        except BaseException:
            await host.close()
            store.discard()  # the session never started: the same path can be used again
            raise
        host._start_awareness()
        host._spawn(host._signal_loop(), "host-signaling")
        log.info("host: session %s open; invite made for host key %s", invite.room[:6],
                 identity.fingerprint)
        return host

    @classmethod
    async def resume(
        cls,
        path: Path | str,
        *,
        identity: Identity | None = None,
        config: PeerConfig | None = None,
        media: MediaConfig | None = None,
        runs: bool = True,
        run_backend: Backend | None = None,
        run_limits: RunLimits | None = None,
        advertise_interfaces: list[str] | None = None,
        why: str = "the interviewer's app was restarted and reopened the unsealed session",
    ) -> Host:
        """Go on with an unsealed session after this app died (crash, kill, reboot): reopen
        its file, restore the document, the verified integrity log, the receipts, the pinned
        candidate device, the run history and the hidden tests, record the restart
        (`session.resumed`, with how long the host was away), and wait for the candidate in
        the same room with the same invite: its app, still running, reconnects by itself.

        A run that was in flight at the kill is marked interrupted (never run again); a
        finished run is never run or graded again. `AssessIQError` (one line) for a file
        that is sealed, of another host key, or damaged."""
        from ..core.errors import AssessIQError, StoreError

        identity = identity or load_or_create_host_identity()
        config = config or PeerConfig()
        path = Path(path)
        lock = _lock_session(path) if path.is_file() else None  # one app at a time
        try:
            store = SessionStore.open(path)
        except StoreError as exc:
            _unlock_session(path, lock)
            raise AssessIQError(f"cannot resume: {exc}") from None
        except BaseException:
            _unlock_session(path, lock)
            raise
        server = None
        try:
            state = _read_resumable(store, identity, path)
            doc = SharedDoc()
            try:
                store.load_into(doc)
            except (ValueError, StoreError) as exc:
                raise AssessIQError(f"cannot resume {path.name}: its document history does "
                                    f"not replay ({exc})") from None
            invite = state.invite
            signaling = invite.signaling
            embedded = state.server
            if embedded is not None:
                from signaling import ServerConfig, SignalingServer

                server = SignalingServer(ServerConfig(host=embedded[0], port=embedded[1]))
                try:
                    await server.start()
                except OSError as exc:
                    server = None
                    raise AssessIQError(
                        f"cannot resume: the session's signaling server cannot listen again "
                        f"on {embedded[0]}:{embedded[1]} ({exc.strerror or exc})") from None
            if signaling is None:
                raise AssessIQError("cannot resume: the invite names no signaling server")
            host = cls(identity, invite, config, store, doc=doc, pinned_device=state.device)
        except BaseException:
            if server is not None:
                await server.stop()
            store.close()
            _unlock_session(path, lock)
            raise
        host.server = server
        host._lock = lock
        host.verifier, host.events, host.received_at, host.receipts = (
            state.verifier, state.events, state.received_at, state.receipts)
        try:
            await host._resume_record(why)
            if runs:
                from ..runs import RunService

                host.runs = RunService(host.doc, store, backend=run_backend,
                                       hidden_tests=state.hidden_tests, limits=run_limits,
                                       origin="host")
                host.runs.restore()
                await host.runs.start()
            host._setup_call(media)
            host.signaling = SignalingClient.for_peer(signaling, invite.room, "host", config)
            await host.signaling.start()
            if invite.lan and server is not None:
                from ..discovery import Advertiser

                host.advertiser = Advertiser(invite.room, server.config.host, server.port,
                                             interfaces=advertise_interfaces)
                await host.advertiser.start()
        except BaseException:
            await host.close()  # the file stays as it is: unsealed, resumable again
            raise
        host._start_awareness()
        host._spawn(host._signal_loop(), "host-signaling")
        log.info("host: session %s resumed after %.1f s away; %d events, device %s",
                 invite.room[:6], host.resumed["away_s"] if host.resumed else 0.0,
                 len(host.events), "pinned" if state.device else "not joined yet")
        return host

    async def _resume_record(self, why: str) -> None:
        """Receipt what was stored without one (a file from before events and receipts were
        written together), then record this restart."""
        from ..core.resume import last_alive, record_host_resume

        for env in self.events:
            if env.seq not in self.receipts:
                receipt = make_receipt(self.identity, env)
                self.store.append_receipt(receipt.raw)
                self.receipts[env.seq] = receipt
        seen = last_alive(self.store)
        now = time.time()
        self.resumed = record_host_resume(self.store, self.identity,
                                          away_s=max(0.0, now - seen), last_seen=min(seen, now),
                                          why=why, now=now)

    # ---- handshake -----------------------------------------------------------------------

    async def _signal_loop(self) -> None:
        assert self.signaling is not None
        try:
            await self._serve_signaling(self.signaling)
        except SignalingUnavailable as exc:
            # A live link does not need signaling; a new or returning candidate does.
            log.error("host: signaling is gone for good (%s): the current link goes on, "
                      "but the candidate cannot join or reconnect", exc)
            if self.link is None:
                self.failure = ConnectError(f"signaling is gone for good: {exc}")

    async def _serve_signaling(self, signaling: SignalingClient) -> None:
        while True:
            data = await signaling.recv()
            arrived = time.time()  # a hello's arrival: the candidate's clock offset is from it
            try:
                opened = self.handshake.receive(data, now=arrived)
            except HandshakeError as exc:
                self.refusals.append(str(exc))
                log.warning("host: refused a handshake message: %s", exc)
                if exc.attempt is not None:
                    if exc.attempt == self.handshake.attempt and self._attempt_task is not None:
                        self._attempt_task.cancel()  # never connect on a forged answer
                    await signaling.send(self.handshake.refuse(exc.attempt, str(exc)))
                continue
            if isinstance(opened, Ignored):
                log.info("host: %s", opened.reason)
                continue
            if isinstance(opened, Pending):  # another device: the interviewer decides
                log.warning("host: another device (%s) asks to join; waiting for the "
                            "interviewer's decision", opened.fingerprint)
                await signaling.send(self.handshake.wait(opened.attempt, WAIT_REASON))
                if self._expiry is not None:
                    self._expiry.cancel()  # (one timer: for the newest request)
                self._expiry = self._spawn(self._expire_pending(), "host-pending-expiry")
                self.changed("pending_device")
                continue
            if opened.kind == "hello":
                dropped, self.handshake.dropped = self.handshake.dropped, None
                if dropped is not None:  # the pinned device is back: the request is moot
                    await signaling.send(self.handshake.refuse(dropped.attempt, BACK_REASON))
                    self.changed("pending_device")
                self._hello_at = arrived
                if self._attempt_task is not None:
                    self._attempt_task.cancel()
                self._attempt_task = self._spawn(self._attempt(opened.attempt), "host-attempt")
            elif opened.kind == "answer":
                future = self._answers.get(opened.attempt)
                if future is not None and not future.done():
                    future.set_result(str(opened.body["sdp"]))

    async def _attempt(self, attempt: str) -> None:
        assert self.signaling is not None
        if self.link is not None:
            await self.link.close()  # the candidate started over: its old link is gone
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._answers = {attempt: answer}
        try:
            # Our servers and the signaling server's fresh relay credentials. The candidate
            # gets, inside the encrypted offer, the issued ones and those of ours it may
            # hold (no credential, or marked share): never our own TURN password otherwise.
            conn = PeerConnection(self.config, media=self.media_hook,
                                  ice_servers=self.signaling.ice_servers)
        except ConnectError as exc:
            log.warning("host: connection attempt failed: %s", exc)
            self.refusals.append(str(exc))
            # Tell the candidate, so it stops at once with the reason instead of retrying.
            await self.signaling.send(self.handshake.refuse(attempt, str(exc)))
            return
        try:
            sdp = await conn.offer()
            given = for_candidate(self.config.ice_servers, self.signaling.ice_servers)
            ice = servers_to_json(given) if given else None
            await self.signaling.send(self.handshake.offer(sdp, ice, self._head()))
            answer_sdp = await asyncio.wait_for(answer, self.config.handshake_timeout)
            await conn.accept(answer_sdp)
            await conn.wait_open(self.config.connect_timeout)
        except (TimeoutError, ConnectError, HandshakeError) as exc:
            log.warning("host: connection attempt failed: %s", exc)
            self.refusals.append(str(exc) or "the candidate did not answer in time")
            await conn.close()
            return
        except asyncio.CancelledError:
            await conn.close()
            raise
        self._pin_device()
        link = Link(conn, {"sync": self._sync_service, "integrity": self._integrity_service},
                    self._on_control, on_refused=self.refuse)
        try:
            await self._serve_link(link)
        finally:  # cancelled (a new attempt, an admitted device): the link ends with it
            await link.close()

    def _head(self) -> Head | None:
        """The verified log's head, for the offer (an admitted new device goes on from it)."""
        v = self.verifier
        if v is None:
            return None
        last = self.received_at.get(len(v.accepted) - 1)
        return Head(len(v.accepted), v.head, 0.0 if last is None else last + self.clock_offset)

    @property
    def pending_device(self) -> Pending | None:
        """A device other than the pinned one asking to join — the candidate's computer
        died, or its session file was lost — until the interviewer decides with
        `admit_device` (its `fingerprint`, `request.name`, and `at`, when it asked). Told to
        listeners as "pending_device"."""
        return self.handshake.pending

    async def admit_device(self, accept: bool, reason: str | None = None, *,
                           fingerprint: str | None = None) -> None:
        """The interviewer's decision on `pending_device`. Admitted: it is pinned in place of
        the previous device, its connection goes on, and the admission is recorded (a signed
        host entry, `core.admission`): its events continue the same chain from the next
        sequence number, held to its own clock. Refused: it is told `reason` and the refusal
        is recorded. `fingerprint` is the device the interviewer was shown: `HandshakeError`
        (one line) when another one is waiting now, when none is (decided, expired, or the
        pinned device came back), or the request expired. The record is written first: when
        that fails, nothing changes."""
        assert self.signaling is not None
        try:
            pending = self.handshake.waiting_device(fingerprint)
        except HandshakeError:
            self.changed("pending_device")  # (it may have expired just now)
            raise
        request = pending.request
        if not accept:
            name = f" ({request.name[:80]})" if request.name else ""
            self.store.append_refusal("device", f"the interviewer refused another device "
                                      f"{pending.fingerprint}{name}")
            _, refusal = self.handshake.refuse_pending(reason or REFUSE_REASON,
                                                       pending.fingerprint)
            await self.signaling.send(refusal)
            self.changed("pending_device")
            return
        old = self.handshake.device_key
        offset = request.time - pending.at  # as at a first join: see `_clock_rule`
        from_seq = len(self.verifier.accepted) if self.verifier is not None else 0
        record_admission(self.store, self.identity, from_seq=from_seq,
                         old_key=old or request.device_key, new_key=request.device_key,
                         name=request.name, clock_offset=offset, asked_at=pending.at)
        self.handshake.admit_pending(pending.fingerprint)  # recorded: now pin and rotate
        if self.verifier is not None:
            self.verifier.rotate(request.device_key, offset)
        log.warning("host: the interviewer admitted device %s from event %d",
                    pending.fingerprint, from_seq)
        self._hello_at = pending.at
        if self._attempt_task is not None:
            self._attempt_task.cancel()  # (the old device's link is closed with it)
        self._attempt_task = self._spawn(self._attempt(pending.attempt), "host-attempt")
        self.changed("pending_device")

    async def _expire_pending(self) -> None:
        """Drop another device's request no one decided on in `ADMISSION_WAIT_S` (its app
        gives up waiting too): it is told, and the interviewer's page."""
        from ..core import handshake

        while (pending := self.handshake.pending) is not None:
            await asyncio.sleep(max(0.05, pending.at + handshake.ADMISSION_WAIT_S
                                    - time.time()))
            gone = self.handshake.expire()
            if gone is not None:
                log.warning("host: the request of device %s expired", gone.fingerprint)
                if self.signaling is not None:
                    await self.signaling.send(self.handshake.refuse(gone.attempt,
                                                                    EXPIRED_REASON))
                self.changed("pending_device")

    def _pin_device(self) -> None:
        key = self.handshake.device_key
        assert key is not None
        if self.verifier is None:
            join = self.handshake.join
            clock = self._clock_rule()
            self.verifier = LogVerifier(self.invite.room, key, clock)
            self.store.set_meta("device_key", b64e(key))
            self.store.set_meta("joined", time.time())  # heartbeats are due from here
            self.store.set_meta("clock_offset", clock.offset)
            self.store.set_meta("clock_bound", clock.bound)
            if join is not None and join.name:
                self.store.set_meta("candidate_name", join.name)
            log.info("host: candidate device pinned: %s; its clock is %+.2f s from ours",
                     join.device_fingerprint if join else "", clock.offset)

    def _clock_rule(self) -> ClockRule:
        """The record's clock: the candidate's offset is the signed time of the join request
        that pinned it minus when its hello reached us. That hello belongs to the attempt that
        connected, so it reached us within the handshake timeout of being made (the candidate
        starts over after that), which bounds the error; `CLOCK_SLACK_S` covers the rest."""
        join = self.handshake.join
        offset = join.time - self._hello_at if join is not None and self._hello_at else 0.0
        created = self.store.meta().get("created")
        start = float(created) if isinstance(created, int | float) else time.time()
        return ClockRule(offset=offset, bound=self.config.handshake_timeout + CLOCK_SLACK_S,
                         start=start)

    # ---- integrity ----------------------------------------------------------------------

    async def _integrity_service(self, channel: DataChannelChannel) -> None:
        assert self.verifier is not None
        if self.verifier.link_opened(time.time()):  # the outbox's resends may be late from here
            self.store.set_meta("links_opened", self.verifier.links)
        async for raw in channel:
            now = time.time()
            try:
                env, new = self.verifier.accept(raw, now)
            except IntegrityError as exc:
                self.integrity_errors.append(str(exc))
                self.refuse("integrity", f"integrity event refused: {exc}", raw)
                continue
            if new:
                receipt = make_receipt(self.identity, env)
                # both durable (one fsync) before the receipt can tell the candidate so
                self.store.append_event(env.raw, receipt.raw, received_at=now)
                self.received_at[env.seq] = now
                self.receipts[env.seq] = receipt
                self.events.append(env)
                self.changed("events")
            await channel.send(self.receipts[env.seq].raw)

    # ---- runs --------------------------------------------------------------------------

    async def _on_control(self, message: dict[str, Any]) -> None:
        await super()._on_control(message)
        if message["t"] in ("run.request", "run.stdin"):
            # answered in its own task: it may wait for the candidate's last edits
            self._spawn(handle_run_request(self, self.runs, message), "host-run-request")

    def run_code(self, *, by: str = "host", language: str | None = None,
                 source: str | None = None, stdin: str = "") -> str:
        """The interviewer presses Run: the current shared code (or `source`) goes through
        the same `RunService` as the candidate's requests. Returns the run id; raises
        `RunRefused` with the reason, or `PeerError` when runs are off."""
        if self.runs is None:
            from .errors import PeerError

            raise PeerError("this session does not run code (started with runs=False)")
        return self.runs.submit(by=by, language=language or self.doc.language or "python",
                                source=self.doc.code_text if source is None else source,
                                stdin=stdin)

    # ---- ending ------------------------------------------------------------------------

    async def end(self, reason: str = "the interviewer ended the session") -> Path:
        """Tell the candidate, seal the session file and close everything. Returns its path."""
        await self.record_call_stats()  # the last figures of the call
        if self.link is not None:
            await self.link.send_control("bye", reason=reason)
            await asyncio.sleep(0.1)  # let the bye leave before the transport closes
        self.ended.set()
        await self._stop_networking()
        self.flush_refusals()
        self.store.flush()
        seal(self.store, self.identity)
        path = self.store.path
        self.store.close()
        self._release()
        return Path(path)

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        _unlock_session(self.store.path, lock)

    async def close(self) -> None:
        """Stop networking and close the session file without sealing it (everything
        written so far is kept; `end()` is the way to finish a session)."""
        await self._stop_networking()
        self.flush_refusals()
        with contextlib.suppress(Exception):
            self.store.close()
        self._release()

    async def _stop_networking(self) -> None:
        await self._close_tasks()
        if self.runs is not None:
            with contextlib.suppress(Exception):
                await self.runs.stop()
        if self.call is not None:
            self.call.close()
        if self.signaling is not None:
            await self.signaling.close()
        if self.advertiser is not None:
            await self.advertiser.close()
            self.advertiser = None
        if self.server is not None:
            await self.server.stop()
            self.server = None


@dataclass(frozen=True)
class SessionSummary:
    """An unsealed host session file, as a list of sessions to resume shows it."""

    path: Path
    room: str
    label: str
    created: float
    candidate: str | None  # the name the candidate gave (None: not given, or nobody joined)
    last_alive: float  # the newest moment its file shows the host's app was alive
    joined: bool  # whether a candidate device is pinned
    host_key: str  # the host key (base64) that made it
    in_use: bool = False  # a running app holds it (it cannot be resumed until that one ends)


def unsealed_sessions(folder: Path | str, *,
                      identity: Identity | None = None) -> list[SessionSummary]:
    """The unsealed interviewer's session files in `folder` (`*.aiq`), most recently alive
    first; with `identity`, only that host key's. Files are opened read-only (listing never
    changes one); unreadable, sealed and candidate files are left out."""
    from ..core.resume import last_alive

    key = b64e(identity.public_key) if identity is not None else None
    found: list[SessionSummary] = []
    folder = Path(folder)
    if not folder.is_dir():
        return []
    for path in sorted(folder.glob("*.aiq")):
        try:
            conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        except sqlite3.Error:
            continue
        try:
            store = SessionStore(path, conn, read_only=True)
            meta = store.meta()
            if meta.get("role") != "host" or store.seal_raw() is not None:
                continue
            if key is not None and meta.get("host_key") != key:
                continue
            created = meta.get("created")
            name = meta.get("candidate_name")
            label = meta.get("label")
            found.append(SessionSummary(
                path=path, room=str(meta.get("session", "")),
                label=label if isinstance(label, str) else "",
                created=float(created) if isinstance(created, int | float) else 0.0,
                candidate=name if isinstance(name, str) else None,
                last_alive=last_alive(store), joined="device_key" in meta,
                host_key=str(meta.get("host_key", "")), in_use=_held(path)))
        except Exception:  # not a session file, or a damaged one: not listed
            log.debug("not listing %s", path, exc_info=True)
            continue
        finally:
            conn.close()
    found.sort(key=lambda s: s.last_alive, reverse=True)
    return found


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _test_json(test: Any) -> dict[str, str]:
    """A hidden test as the session file keeps it (`{"name", "stdin", "expected"}`)."""
    expected = getattr(test, "expected_stdout", None)
    if expected is None:
        expected = getattr(test, "expected", "")
    return {"name": str(test.name), "stdin": str(test.stdin), "expected": str(expected)}


@dataclass
class _Resumable:
    """What a session file gives back to a restarted host (`_read_resumable`)."""

    invite: Invite
    server: tuple[str, int] | None
    device: bytes | None
    verifier: LogVerifier | None
    events: list[Envelope]
    received_at: dict[int, float]
    receipts: dict[int, Receipt]
    hidden_tests: list[TestCase]


def check_resumable(store: SessionStore, identity: Identity) -> None:
    """Raise `AssessIQError` (one line) unless `Host.resume` can go on with `store`'s
    session with `identity`: what the command line checks before it starts the app."""
    _read_resumable(store, identity, Path(store.path))


def _read_resumable(store: SessionStore, identity: Identity, path: Path) -> _Resumable:
    """Read and check everything a resume restores; `AssessIQError` with one line when the
    file cannot be resumed (sealed, another host's, not a host's, edited or damaged)."""
    from ..core.errors import AssessIQError

    name = path.name
    try:
        meta = store.meta()
        live = store.live()
    except (ValueError, TypeError, sqlite3.DatabaseError) as exc:
        raise AssessIQError(f"cannot resume {name}: its metadata is damaged ({exc})") from None
    if store.seal_raw() is not None:
        raise AssessIQError(f"cannot resume {name}: the session is sealed (it ended); "
                            "open it with `assessiq replay` or `assessiq verify`")
    try:
        for run in store.runs():
            if not isinstance(run["request"], dict) or not isinstance(run["result"],
                                                                      dict | None):
                raise ValueError(f"run {str(run['id'])[:16]} is not a request and a result")
        store.private()
    except (ValueError, TypeError, sqlite3.DatabaseError) as exc:
        raise AssessIQError(f"cannot resume {name}: its runs or host-only entries are "
                            f"damaged ({exc})") from None
    if meta.get("role") != "host":
        raise AssessIQError(f"cannot resume {name}: it is not an interviewer's session file")
    if meta.get("host_key") != b64e(identity.public_key):
        raise AssessIQError(f"cannot resume {name}: it belongs to another host key, not "
                            f"this one ({identity.fingerprint})")
    session = meta.get("session")
    text = live.get("invite")
    if not isinstance(text, str):
        raise AssessIQError(f"cannot resume {name}: it does not keep its invite (a session "
                            "started by an older AssessIQ, or its invite was removed)")
    try:
        # expired or not: the pinned candidate may always come back (see `JoinGate`)
        invite = Invite.decode(text, now=0.0, expected_host=identity.fingerprint)
    except InviteError as exc:
        raise AssessIQError(f"cannot resume {name}: its stored invite is damaged "
                            f"({exc})") from None
    if invite.room != session or invite.id != meta.get("invite"):
        raise AssessIQError(f"cannot resume {name}: its stored invite is not the session's")
    server = live.get("signaling_server")
    address: tuple[str, int] | None = None
    if server is not None:
        if not (isinstance(server, dict) and isinstance(server.get("address"), str)
                and isinstance(server.get("port"), int) and 0 < server["port"] < 65536):
            raise AssessIQError(f"cannot resume {name}: its signaling server's address is "
                                "damaged")
        address = (server["address"], server["port"])
    device: bytes | None = None
    key_text = meta.get("device_key")
    if key_text is not None:
        try:
            device = b64d(key_text) if isinstance(key_text, str) else None
        except ValueError:
            device = None
        if device is None or len(device) != 32:
            raise AssessIQError(f"cannot resume {name}: the pinned device key is damaged")
    rows = store.envelope_rows()
    verifier: LogVerifier | None = None
    events: list[Envelope] = []
    received_at: dict[int, float] = {}
    if device is None:
        if rows:
            raise AssessIQError(f"cannot resume {name}: it holds integrity events but no "
                                "pinned device")
    else:
        clock, links = clock_rule(meta)
        if clock is None:
            raise AssessIQError(f"cannot resume {name}: its clock rule (clock_offset, "
                                "clock_bound, created) is missing or damaged")
        verifier = LogVerifier(str(session), device, clock)
        verifier.links = list(links)
        # devices the interviewer admitted in place of the first (`core.admission`)
        schedule, problems = key_schedule(device, admissions(
            store.private(ADMITTED), str(session), identity.public_key))
        if problems:
            raise AssessIQError(f"cannot resume {name}: {problems[0]}")
        for i, (at, raw) in enumerate(rows):
            _rotate_due(verifier, schedule)
            try:
                env, new = verifier.accept(raw, at)
            except IntegrityError as exc:
                raise AssessIQError(f"cannot resume {name}: stored event #{i} does not "
                                    f"verify ({exc}): the file was altered") from None
            if not new:
                raise AssessIQError(f"cannot resume {name}: stored event #{i} is a "
                                    "duplicate: the file was altered")
            events.append(env)
            received_at[env.seq] = at
        _rotate_due(verifier, schedule)
        device = verifier.device_key  # the device pinned now
    receipts: dict[int, Receipt] = {}
    for i, raw in enumerate(store.receipts()):
        try:
            receipt = Receipt.decode(raw)
        except IntegrityError as exc:
            raise AssessIQError(f"cannot resume {name}: stored receipt #{i} is damaged "
                                f"({exc})") from None
        if (not receipt.verify(identity.public_key) or receipt.seq >= len(events)
                or receipt.hash != events[receipt.seq].hash or receipt.seq in receipts):
            raise AssessIQError(f"cannot resume {name}: stored receipt #{i} is not this "
                                "host's receipt for a stored event: the file was altered")
        receipts[receipt.seq] = receipt
    return _Resumable(invite=invite, server=address, device=device, verifier=verifier,
                      events=events, received_at=received_at, receipts=receipts,
                      hidden_tests=_hidden_tests(store))


def _rotate_due(verifier: LogVerifier, schedule: list[tuple[int, bytes, float]]) -> None:
    """Switch `verifier` to each admitted device whose first event is the next one."""
    while schedule and schedule[0][0] <= len(verifier.accepted):
        _, key, offset = schedule.pop(0)
        verifier.rotate(key, offset)


def _hidden_tests(store: SessionStore) -> list[TestCase]:
    """The hidden tests the session set, from its newest `hidden_tests` host-only entry."""
    from sandbox.testcases import TestCase

    from ..core.errors import AssessIQError

    entries = store.private("hidden_tests")
    if not entries:
        return []
    value = entries[-1]["value"]
    try:
        return [TestCase(name=t["name"], stdin=t["stdin"],
                         expected_stdout=t.get("expected", t.get("expected_stdout")),
                         hidden=True) for t in value]
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise AssessIQError(f"cannot resume {store.path.name}: its hidden tests are "
                            f"damaged ({exc})") from None
