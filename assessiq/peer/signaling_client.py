"""The peers' client for the untrusted signaling server (protocol: docs/protocol.md).

It joins a room in one role, relays opaque strings to the other member, and keeps itself
connected: after a drop it reconnects with the `resume` token the server gave it, which
replaces the half-dead socket the server may still hold. Everything it relays is already
sealed by `assessiq.core.handshake`; it never sees a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..core.jsonlimits import loads_bounded
from .config import IceServer
from .errors import SignalingUnavailable

__all__ = ["SignalingClient", "affinity_url", "ws_endpoint"]

log = logging.getLogger(__name__)

REPLACED_CLOSE_CODE = 4001
APP_PING_INTERVAL = 60.0  # the server closes rooms with no client frame for 15 min
BACKOFF = (0.1, 0.25, 0.5, 1.0)
FATAL_CODES = {"room-full", "too-many-rooms", "bad-frame"}
MAX_FRAME_BYTES = 1 << 20  # the largest server frame read (a relay of a sealed handshake is ~90 KB)


def affinity_url(url: str, room: str) -> str:
    """The URL a member of `room` connects to: the endpoint with `r=<room tag>` in its query
    (the first 8 hex digits of the room id's SHA-256, as the server's logs show it). The
    server ignores it; a load balancer in front of several signaling servers hashes on it, so
    both members of a room reach the same instance (docs/scaling.md)."""
    parts = urlsplit(url)
    tag = hashlib.sha256(room.encode("utf-8")).hexdigest()[:8]
    query = f"{parts.query}&r={tag}" if parts.query else f"r={tag}"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def ws_endpoint(url: str) -> str:
    """The WebSocket endpoint for a signaling URL: `/ws` is added when no path is given."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise SignalingUnavailable(f"the signaling URL must look like ws://host:port: {url!r}")
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class SignalingClient:
    """`async with SignalingClient(url, room, role) as sig:` then `send` / `recv` relays.

    `recv` raises `SignalingUnavailable` once the server has refused us for good.
    `on_peer(event, role)` is called for "peer-joined" / "peer-left" frames.
    """

    def __init__(
        self,
        url: str,
        room: str,
        role: str,
        *,
        ping_interval: float = 5.0,
        ping_timeout: float = 5.0,
        on_peer: Callable[[str, str], None] | None = None,
        app_ping_interval: float = APP_PING_INTERVAL,
    ) -> None:
        self.url = ws_endpoint(url)
        self.room = room
        self.role = role
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.on_peer = on_peer
        # An application {"type": "ping"} frame this often: WebSocket keepalive pings do not
        # count as room activity, so a quiet room (no handshake for 15 min) would be closed.
        self.app_ping_interval = app_ping_interval
        self.app_pings = 0
        self.resume: str | None = None
        self.peer_present = False
        self.joined = asyncio.Event()
        self.failure: SignalingUnavailable | None = None
        self.reconnects = 0
        self.generation = 0  # +1 on every successful (re)join
        self.ice_servers: tuple[IceServer, ...] = ()
        """The STUN/TURN servers the signaling server issued with the latest join or
        peer-joined (short-lived TURN credentials come only once both members are in the
        room; empty when it issues none)."""
        self.peer_arrivals = 0
        """+1 each time the other member comes into the room as a new connection (not a
        resumed one): after its app was restarted, say. A candidate whose hello went unheard,
        or whose link still looks up, starts a new attempt at once (`Candidate`)."""
        self.relay_offered = False
        """The server named a TURN URL at the latest join: it issues credentials once the
        other member is there."""
        self._relays: asyncio.Queue[str | None] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closers: set[asyncio.Task[None]] = set()


    @classmethod
    def for_peer(cls, url: str, room: str, role: str, config: Any) -> SignalingClient:
        """A client with the keepalive timings of a `PeerConfig`."""
        return cls(url, room, role, ping_interval=config.signaling_ping_interval,
                   ping_timeout=config.signaling_ping_timeout,
                   app_ping_interval=config.signaling_app_ping_interval)

    async def __aenter__(self) -> SignalingClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, timeout: float = 10.0) -> None:
        """Connect and join; raises `SignalingUnavailable` if that cannot happen in time."""
        self._task = asyncio.create_task(self._run(), name=f"signaling-{self.role}")
        waiter = asyncio.create_task(self.joined.wait())
        try:
            await asyncio.wait(
                {waiter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        if self.failure is not None:
            raise self.failure
        if not self.joined.is_set():
            await self.close()
            raise SignalingUnavailable(
                f"could not join the room on the signaling server {self.url} within {timeout:g} s"
            )

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._relays.put_nowait(None)

    async def send(self, data: str) -> bool:
        """Relay `data` to the other member; False if it could not be sent right now."""
        ws = self._ws
        if ws is None or not self.joined.is_set():
            return False
        try:
            await ws.send(json.dumps({"type": "relay", "data": data}))
        except ConnectionClosed:
            return False
        return True

    async def recv(self) -> str:
        """The next relayed string from the other member."""
        item = await self._relays.get()
        if item is None:
            self._relays.put_nowait(None)
            raise self.failure or SignalingUnavailable("the signaling connection was closed")
        return item

    def _fail(self, message: str) -> None:
        log.warning("signaling: %s", message)
        self.failure = SignalingUnavailable(message)
        self._relays.put_nowait(None)

    async def _run(self) -> None:
        attempt = 0
        while not self._closing and self.failure is None:
            try:
                async with connect(
                    affinity_url(self.url, self.room),
                    ping_interval=self.ping_interval,
                    ping_timeout=self.ping_timeout,
                    open_timeout=max(self.ping_timeout, 3.0),
                    max_size=MAX_FRAME_BYTES,
                    compression=None,
                ) as ws:
                    self._ws = ws
                    join: dict[str, Any] = {"type": "join", "room": self.room, "role": self.role}
                    if self.resume:
                        join["resume"] = self.resume
                    await ws.send(json.dumps(join))
                    pinger = asyncio.create_task(self._app_pings(ws))
                    try:
                        async for message in ws:
                            if self._on_frame(message):
                                attempt = 0
                    finally:
                        pinger.cancel()
                    if ws.close_code == REPLACED_CLOSE_CODE:
                        self._fail("another connection took over this session's place")
            except (InvalidURI, ValueError) as exc:
                self._fail(f"bad signaling URL {self.url}: {exc}")
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                log.info("signaling connection to %s lost: %s", self.url, exc)
            finally:
                self._ws = None
                self.joined.clear()
            if self._closing or self.failure is not None:
                break
            self.reconnects += 1
            await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
            attempt += 1

    async def _app_pings(self, ws: ClientConnection) -> None:
        """Keep the room alive on the server while nothing else is being said."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.app_ping_interval)
                if self.joined.is_set():
                    await ws.send(json.dumps({"type": "ping"}))
                    self.app_pings += 1

    def _on_frame(self, message: str | bytes) -> bool:
        """Handle one server frame; True when it shows the connection is healthy."""
        try:
            frame = loads_bounded(message, max_bytes=MAX_FRAME_BYTES, max_depth=2)
        except ValueError as exc:
            log.warning("signaling: ignored a server frame that is not flat JSON: %s", exc)
            return False
        if not isinstance(frame, dict):
            return False
        kind = frame.get("type")
        if kind == "joined":
            token = frame.get("resume")
            self.resume = token if isinstance(token, str) else None
            self.ice_servers = _issued_servers(frame)
            urls = frame.get("ice_urls")
            self.relay_offered = isinstance(urls, list) and any(
                isinstance(u, str) and u.startswith("turn") for u in urls)
            self.peer_present = frame.get("peer") is True
            self.generation += 1
            self.joined.set()
            log.info("signaling: joined as %s (peer present: %s)", self.role, self.peer_present)
            return True
        if kind == "relay":
            data = frame.get("data")
            if isinstance(data, str):
                self._relays.put_nowait(data)
            return True
        if kind == "pong":
            return True
        if kind in ("peer-joined", "peer-left"):
            self.peer_present = kind == "peer-joined"
            if kind == "peer-joined" and frame.get("resumed") is not True:
                self.peer_arrivals += 1
            if kind == "peer-joined" and "ice_username" in frame:
                self.ice_servers = _issued_servers(frame)  # the room's relay, now both are in
            if self.on_peer is not None:
                self.on_peer(kind, str(frame.get("role")))
            return True
        if kind == "error":
            code, text = frame.get("code"), frame.get("message")
            if code == "unknown-room":
                log.info("signaling: the host is not in the room yet; retrying")
                asyncio.get_running_loop().call_soon(self._drop)
            elif code in FATAL_CODES:
                self._fail(f"the signaling server refused us ({code}): {text}")
                asyncio.get_running_loop().call_soon(self._drop)
            elif code != "no-peer":
                log.info("signaling: server error %s: %s", code, text)
        return False

    def _drop(self) -> None:
        ws = self._ws
        if ws is not None:
            task = asyncio.create_task(ws.close())
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)


def _issued_servers(frame: dict[str, Any]) -> tuple[IceServer, ...]:
    """The relay a `joined` or `peer-joined` frame carries (`ice_urls`, `ice_username`,
    `ice_credential`), as `IceServer`s; a malformed part is skipped with a log line (the
    server is untrusted, and a bad relay costs only the relay). TURN URLs without any
    credentials (a join before the other member is there) are left out quietly."""
    urls, user, password = (frame.get(k) for k in ("ice_urls", "ice_username", "ice_credential"))
    if not isinstance(urls, list):
        return ()
    servers: list[IceServer] = []
    for url in urls[:8]:
        try:
            if not isinstance(url, str):
                raise ValueError("not a string")
            if url.startswith("turn") and user is None and password is None:
                continue
            if url.startswith("turn"):
                if not isinstance(user, str) or not isinstance(password, str):
                    raise ValueError("no credentials")
                servers.append(IceServer(url, user, password))
            else:
                servers.append(IceServer(url))
        except ValueError as exc:
            log.warning("signaling: ignored an ICE server the server issued: %s", exc)
    return tuple(servers)
