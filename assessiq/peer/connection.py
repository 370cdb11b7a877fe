"""One aiortc `RTCPeerConnection` with the three data channels, and its DTLS binding check.

The host creates the channels `sync`, `integrity` and `control` and makes the offer; the
candidate answers and receives them. After connecting, each side checks that the certificate
the live DTLS session presents is the one whose fingerprint was in the SDP that the other
side signed — a signaling server that swapped SDPs or fingerprints is caught here even if
it somehow got past the signatures.

The sync channels (`FRAGMENTED`) carry messages of any size up to `fragments.MAX_MESSAGE` in
frames (`DataChannelChannel(fragment=True)`), under one inbound byte-rate cap for the
connection (`inbound`, a `TokenBucket`; a session passes its own with `guard_inbound` so a
reconnect does not refill it). What they refuse goes to the session's refusal handler; what is
refused before one is attached is kept (the last `EARLY_REFUSALS`) and handed over then.

Importing this module makes aioice prefer a direct path to the relay, process-wide
(`_prefer_direct_paths`, `RELAY_GRACE_S`, `RELAY_PROBE_S`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdtlstransport import certificate_digest

from ..core.fragments import RATE_BURST, RATE_BYTES_PER_SECOND, TokenBucket
from ..core.handshake import sdp_fingerprints
from .config import IceServer, PeerConfig, merge_servers
from .datachannel import DataChannelChannel, RefusalHandler
from .errors import ConnectError

__all__ = [
    "CHANNELS", "FRAGMENTED", "PeerConnection", "check_dtls_binding", "restrict_host_addresses",
]

log = logging.getLogger(__name__)

CHANNELS = ("sync", "integrity", "control")
FRAGMENTED = ("sync", "state")
"""The channels whose messages may be of any size (split into frames under the limit)."""
EARLY_REFUSALS = 64

# Called with the RTCPeerConnection at the moment media must be added (the offerer: before
# createOffer; the answerer: after setRemoteDescription, before createAnswer). Returns the
# media session (anything with `async close()`), kept as `PeerConnection.media`.
MediaHook = Callable[[RTCPeerConnection], Any]


RELAY_GRACE_S = 0.6
"""How long the controlling side (the host) may check direct pairs alone before relayed ones."""
RELAY_PROBE_S = 0.25
"""...but only this long if no check from the peer has reached it on a direct path by then."""
RETRIGGER = True
"""Check a pair again at once when the peer's check arrives while ours is in progress."""


def _retransmit_now(protocol: Any, addr: tuple[str, int]) -> bool:
    """Send the pending STUN request to `addr` on `protocol` again now (aioice's
    `Transaction.__retry`, which also re-arms its timer); False if there is none."""
    for transaction in list(getattr(protocol, "transactions", {}).values()):
        if getattr(transaction, "_Transaction__addr", None) != addr:
            continue
        retry = getattr(transaction, "_Transaction__retry", None)
        if retry is None:
            return False
        handle = getattr(transaction, "_Transaction__timeout_handle", None)
        if handle is not None:
            handle.cancel()
        retry()
        return True
    return False


def _prefer_direct_paths() -> None:
    """Make aioice prefer a direct path to the relay, process-wide (once).

    aioice nominates aggressively: the controlling agent marks every check for nomination,
    so the first pair that answers wins. Between two NATs that filter by address and port a
    direct pair answers only at its first retransmission (500 ms: the first check punched the
    hole and was dropped), while a relayed pair may answer at once, so the relay would win a
    race a direct path could have won. Here, on the controlling side, a check of a relayed
    pair waits until `RELAY_GRACE_S` after the connection's first check, unless every pair is
    relayed (relay-only) — or until `RELAY_PROBE_S` when by then no check from the peer has
    arrived on one of our own (non-relay) sockets: behind a symmetric NAT facing a filtering
    one none ever does, and waiting longer would only delay the relay. The answering side is
    unchanged: its relayed checks open the TURN permissions early.
    """
    import aioice.ice

    connection = aioice.ice.Connection
    if getattr(connection.check_start, "_prefers_direct", False):
        return
    original_start = connection.check_start
    original_incoming = connection.check_incoming
    in_progress = aioice.ice.CandidatePair.State.IN_PROGRESS

    def relayed(pair: Any) -> bool:
        return "relay" in (pair.local_candidate.type, pair.remote_candidate.type)

    def check_incoming(self: Any, message: Any, addr: Any, protocol: Any) -> None:
        if protocol.local_candidate.type != "relay":
            self.__dict__["_assessiq_heard_direct"] = True
        original_incoming(self, message, addr, protocol)
        # RFC 8445 7.3.1.4: a check arriving on a pair whose own check is in progress
        # triggers a new check of it at once (aioice leaves it to its retransmission, 500 ms
        # later: the peer's check shows the path is open now). Done as an immediate
        # retransmission of the check's own transaction, once per pair: cancelling the check
        # instead can leave aioice's TURN client waiting for ever on a channel binding it
        # was in the middle of (measured: a relay-only connection that took 20 s).
        if not RETRIGGER or self._check_list_done:
            return
        retriggered: set[int] = self.__dict__.setdefault("_assessiq_retriggered", set())
        for pair in self._check_list:
            if (pair.protocol is protocol and pair.remote_addr == addr
                    and pair.state == in_progress and id(pair) not in retriggered):
                # Only a retransmission that happened counts: with no transaction pending
                # yet, a later check from the peer may still trigger one.
                if _retransmit_now(protocol, addr):
                    retriggered.add(id(pair))
                break

    async def check_start(self: Any, pair: Any) -> None:
        loop = asyncio.get_running_loop()
        first = self.__dict__.setdefault("_assessiq_first_check", loop.time())
        if (self.ice_controlling and relayed(pair)
                and not all(relayed(p) for p in self._check_list)):
            self.check_state(pair, in_progress)  # so the pacing moves on to other pairs
            while not self._check_list_done:
                waited = loop.time() - first
                heard = self.__dict__.get("_assessiq_heard_direct", False)
                if waited >= RELAY_GRACE_S or (waited >= RELAY_PROBE_S and not heard):
                    break
                await asyncio.sleep(0.02)
            if self._check_list_done:
                return
        await original_start(self, pair)

    check_start._prefers_direct = True  # type: ignore[attr-defined]
    connection.check_start = check_start  # type: ignore[method-assign]
    connection.check_incoming = check_incoming  # type: ignore[method-assign]


_prefer_direct_paths()


def restrict_host_addresses(addresses: list[str]) -> None:
    """Offer only these local addresses as ICE host candidates, process-wide.

    aioice offers every interface address except 127.0.0.1; on one machine (the demo, tests)
    pass `["127.0.0.1"]` so the peers meet on loopback only. aioice has no per-connection
    option for this, so its address lookup is replaced for the whole process.
    """
    import aioice.ice

    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


def check_dtls_binding(pc: RTCPeerConnection, remote_sdp: str, local_sdp: str) -> None:
    """Raise `ConnectError` unless the live DTLS certificates match the signed SDPs."""
    sctp = pc.sctp
    if sctp is None:
        raise ConnectError("the connection has no data transport to check")
    dtls = sctp.transport
    ssl = getattr(dtls, "_ssl", None)
    if ssl is None or dtls.state != "connected":
        raise ConnectError("the DTLS session is not established; cannot check its identity")
    remote_cert = ssl.get_peer_certificate(as_cryptography=True)
    if remote_cert is None:
        raise ConnectError("the other side presented no DTLS certificate")
    signed = sdp_fingerprints(remote_sdp)
    if not signed or any(
        certificate_digest(remote_cert, alg) != value
        for alg, value in signed
        if alg in ("sha-256", "sha-384", "sha-512")
    ):
        raise ConnectError(
            "the other side's DTLS certificate is not the one in its signed session "
            "description: someone is in the middle of this connection"
        )
    local = {(f.algorithm.lower(), f.value.upper()) for f in dtls.getLocalParameters().fingerprints}
    if not set(sdp_fingerprints(local_sdp)) & local:
        raise ConnectError("our own DTLS certificate does not match the SDP we signed")


class PeerConnection:
    """A peer connection and its channels. Use `offer()` (host) or `answer()` (candidate),
    then `accept()` (host), then `wait_open()`. With `media`, the hook adds the call's
    tracks at the right moment of the offer/answer and its result is `self.media`, closed
    before the peer connection itself."""

    def __init__(self, config: PeerConfig, media: MediaHook | None = None,
                 ice_servers: Sequence[IceServer] = ()) -> None:
        self.config = config
        self.ice_servers = merge_servers(config.ice_servers, ice_servers)
        """Every STUN/TURN server of this connection: the config's, then those given."""
        if config.relay_only and not any(s.is_turn for s in self.ice_servers):
            raise ConnectError("relay-only needs a TURN server, and neither this side's "
                               "configuration nor the signaling server nor the host gave one")
        self.pc = RTCPeerConnection(config.rtc_configuration(ice_servers))
        self._media_hook = media
        self.media: Any = None
        self.channels: dict[str, DataChannelChannel] = {}
        self.inbound = TokenBucket(RATE_BYTES_PER_SECOND, RATE_BURST)
        """The byte-rate cap on what the peer sends on the `FRAGMENTED` channels."""
        self.on_refused: RefusalHandler | None = None
        self._early: deque[tuple[str, str, bytes]] = deque(maxlen=EARLY_REFUSALS)
        self.failed = asyncio.Event()
        self._opened = asyncio.Event()
        self.local_sdp = ""
        self.remote_sdp = ""
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("datachannel", self._on_datachannel)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        log.info("peer connection state: %s", state)
        if state in ("failed", "closed"):
            self.failed.set()

    def _add(self, dc: RTCDataChannel) -> None:
        if dc.label not in CHANNELS or dc.label in self.channels:
            log.warning("ignored an unexpected data channel %r", dc.label[:40])
            return
        if dc.label in FRAGMENTED:
            channel = DataChannelChannel(
                dc, max_bytes=self.config.max_message_bytes, fragment=True,
                admit=self._admit, on_refused=self._refused,
            )
        else:
            channel = DataChannelChannel(dc, max_bytes=self.config.max_message_bytes,
                                         on_refused=self._refused)
        self.channels[dc.label] = channel

        def opened() -> None:
            if all(
                name in self.channels and self.channels[name].dc.readyState == "open"
                for name in CHANNELS
            ):
                self._opened.set()

        if dc.readyState == "open":
            opened()
        dc.on("open", opened)
        opened()

    def _admit(self, size: int) -> str | None:
        if self.inbound.take(size):
            return None
        rate, burst = self.inbound.rate / 2**20, self.inbound.burst / 2**20
        return (f"a message of {size} bytes is over the inbound rate cap "
                f"({rate:g} MiB/s, bursts of {burst:g} MiB)")

    def _refused(self, label: str, reason: str, raw: bytes) -> None:
        if self.on_refused is not None:
            self.on_refused(label, reason, raw)
        else:
            log.warning("refused from the peer on %s: %s", label, reason)
            self._early.append((label, reason, bytes(raw[:4096])))

    def guard_inbound(self, on_refused: RefusalHandler, inbound: TokenBucket | None = None) -> None:
        """Send refusals to `on_refused` (those already made first) and, with `inbound`,
        count the peer's bytes in that bucket (the session's) from now on."""
        if inbound is not None:
            self.inbound = inbound
        self.on_refused = on_refused
        while self._early:
            on_refused(*self._early.popleft())

    def _on_datachannel(self, dc: RTCDataChannel) -> None:
        self._add(dc)

    async def offer(self) -> str:
        """Host: create the channels and the offer (ICE gathering included)."""
        for name in CHANNELS:
            self._add(self.pc.createDataChannel(name, ordered=True))
        self._attach_media()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.local_sdp = self.pc.localDescription.sdp
        return self.local_sdp

    async def accept(self, answer_sdp: str) -> None:
        """Host: apply the candidate's (verified) answer."""
        self.remote_sdp = answer_sdp
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        except (ValueError, AssertionError) as exc:
            raise ConnectError(f"the candidate's answer is not usable: {exc}") from exc

    async def answer(self, offer_sdp: str) -> str:
        """Candidate: apply the host's (verified) offer and produce the answer."""
        self.remote_sdp = offer_sdp
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            if any(t.kind in ("audio", "video") for t in self.pc.getTransceivers()):
                self._attach_media()
            elif self._media_hook is not None:  # an answer cannot add media to an offer
                log.info("the host offers no call: joining without audio and video")
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except (ValueError, AssertionError) as exc:
            raise ConnectError(f"the host's offer is not usable: {exc}") from exc
        self.local_sdp = self.pc.localDescription.sdp
        return self.local_sdp

    def _attach_media(self) -> None:
        if self._media_hook is not None and self.media is None:
            self.media = self._media_hook(self.pc)

    async def wait_open(self, timeout: float) -> None:
        """Wait until all channels are open, then check the DTLS binding."""
        opened = asyncio.create_task(self._opened.wait())
        failed = asyncio.create_task(self.failed.wait())
        try:
            await asyncio.wait({opened, failed}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            failed.cancel()
        if not self._opened.is_set():
            state = self.pc.connectionState
            raise ConnectError(
                f"the peer connection did not open within {timeout:g} s (state: {state}); "
                "check the network, or configure a TURN server"
            )
        check_dtls_binding(self.pc, self.remote_sdp, self.local_sdp)
        pair = self.selected_pair()
        if pair is not None:
            log.info("peer connection open: %s candidate here, %s candidate there (%s)",
                     pair[0], pair[1], "relayed" if "relay" in pair else "direct")

    def selected_pair(self) -> tuple[str, str] | None:
        """The nominated ICE pair's candidate types (local, remote): "host", "srflx", "prflx"
        or "relay"; None before ICE has nominated one."""
        try:
            ice = self.pc.sctp.transport.transport._connection  # type: ignore[union-attr]
            pair = ice._nominated.get(1)
        except AttributeError:
            return None
        if pair is None:
            return None
        return str(pair.local_candidate.type), str(pair.remote_candidate.type)

    async def close(self) -> None:
        for channel in self.channels.values():
            channel._on_close()
        media, self.media = self.media, None
        if media is not None:
            try:
                await media.close()
            except Exception:  # closing the call must never keep the connection open
                log.exception("closing the media session failed")
        with contextlib.suppress(Exception):
            await self.pc.close()
