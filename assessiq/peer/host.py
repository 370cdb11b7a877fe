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
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.encoding import b64e
from ..core.handshake import HandshakeError, HostHandshake, Ignored
from ..core.identity import Identity, load_or_create_host_identity
from ..core.integrity import (
    CLOCK_SLACK_S,
    ClockRule,
    Envelope,
    IntegrityError,
    LogVerifier,
    Receipt,
    make_receipt,
)
from ..core.invite import Invite, make_invite
from ..core.paths import sessions_dir
from ..core.policy import Policy
from ..core.seal import seal
from ..core.store import SessionStore
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

__all__ = ["Host"]

log = logging.getLogger(__name__)


class Host(PeerSession):
    """A hosted session. Build it with `await Host.start(...)`."""

    role = "host"

    def __init__(
        self,
        identity: Identity,
        invite: Invite,
        config: PeerConfig,
        store: SessionStore,
    ) -> None:
        super().__init__(config)
        self.identity = identity
        self.invite = invite
        self.store: SessionStore = store
        self.handshake = HostHandshake(invite, identity)
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
        self.runs: RunService | None = None  # executes run requests (None: runs off)
        self.received_at: dict[int, float] = {}  # event seq -> when it was verified here
        self._hello_at: float | None = None  # when the current attempt's hello arrived
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
    ) -> Host:
        """Open a session: start signaling (embedded in LAN mode), write the session file,
        and wait for the candidate in the background. `host.invite` is what to send them.

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
                opened = self.handshake.receive(data)
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
            if opened.kind == "hello":
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
            await self.signaling.send(self.handshake.offer(sdp, ice))
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
        await self._serve_link(link)

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
                self.received_at[env.seq] = now
                self.store.append_envelope(env.raw, received_at=now)
                receipt = make_receipt(self.identity, env)
                self.store.append_receipt(receipt.raw)
                self.receipts[env.seq] = receipt
                self.events.append(env)
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
        return Path(path)

    async def close(self) -> None:
        """Stop networking and close the session file without sealing it (everything
        written so far is kept; `end()` is the way to finish a session)."""
        await self._stop_networking()
        self.flush_refusals()
        with contextlib.suppress(Exception):
            self.store.close()

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


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
