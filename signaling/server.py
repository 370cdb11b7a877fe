"""The signaling server: rooms of one host and one candidate relaying opaque frames.

The server never looks inside relayed data (the peers encrypt it end to end) and never logs
it; logs name rooms only by a short hash prefix. See docs/protocol.md for the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from signaling import frames
from signaling.buckets import TokenBucket
from signaling.client import Client
from signaling.config import ServerConfig
from signaling.frames import FrameError, Join, Ping, Relay
from signaling.joinpage import join_response
from signaling.rooms import Room, RoomTable, new_token
from signaling.turn import TurnCredentials, turn_credentials

log = logging.getLogger("signaling")


class _NoFrameLogs(logging.Filter):
    """websockets logs frame contents at DEBUG; relayed data must never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO


ws_log = logging.getLogger("signaling.websockets")
ws_log.addFilter(_NoFrameLogs())

WS_PATH = "/ws"
HEALTH_PATH = "/healthz"


def _size(message: str) -> int:
    return len(message) if message.isascii() else len(message.encode("utf-8", "replace"))


class SignalingServer:
    """Start with `async with SignalingServer(config) as server:` or `start()` / `stop()`."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.limits = self.config.limits
        self.rooms = RoomTable()
        self.clients: set[Client] = set()
        self.connections_per_ip: Counter[str] = Counter()
        self.turn_issues: dict[str, TokenBucket] = {}
        """Per IP address: the TURN credential pairs it may still be issued."""
        self._server: Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        limits = self.limits
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            compression=None,
            max_size=limits.hard_max_message_bytes,
            max_queue=8,
            open_timeout=limits.handshake_timeout_seconds,
            ping_interval=limits.ping_interval_seconds,
            ping_timeout=limits.ping_timeout_seconds,
            close_timeout=limits.close_timeout_seconds,
            logger=ws_log,
        )
        self._sweeper = asyncio.create_task(self._sweep_idle_rooms())
        log.info("listening on %s:%s (WebSocket path %s)", self.config.host, self.port, WS_PATH)
        if self.config.turn is not None:
            log.info("issuing TURN credentials valid for %g s to rooms with both members "
                     "for %s",
                     self.config.turn.ttl_seconds, " ".join(self.config.turn.urls))

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.wait_closed()

    async def __aenter__(self) -> SignalingServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound port (useful when configured with port 0)."""
        if self._server is None:
            raise RuntimeError("server not started")
        for sock in self._server.sockets:
            return int(sock.getsockname()[1])
        raise RuntimeError("server has no listening socket")

    def stats(self) -> dict[str, object]:
        return {"status": "ok", "rooms": len(self.rooms), "connections": len(self.clients)}

    # ---- HTTP ------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if (page := join_response(connection, request)) is not None:  # GET /join: invite links
            return page
        if path == HEALTH_PATH:
            return _json_response(connection, 200, self.stats())
        if path != WS_PATH:
            return connection.respond(404, f"not found; the WebSocket endpoint is {WS_PATH}\n")
        return None

    # ---- connections -----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        ip = _ip_of(ws)
        limits = self.limits
        if len(self.clients) >= limits.max_connections:
            log.warning("refused a connection: server at %d connections", len(self.clients))
            await _refuse(ws, "the server is at its connection limit; try again later")
            return
        if self.connections_per_ip[ip] >= limits.max_connections_per_ip:
            log.warning("refused a connection from %s: %d connections open", ip,
                        self.connections_per_ip[ip])
            await _refuse(ws, f"too many connections from your address "
                              f"(limit {limits.max_connections_per_ip})")
            return
        client = Client(
            ws, ip,
            TokenBucket(limits.messages_per_second, limits.message_burst),
            TokenBucket(limits.errors_per_second, limits.error_burst),
        )
        self.clients.add(client)
        self.connections_per_ip[ip] += 1
        try:
            deadline = asyncio.get_running_loop().time() + limits.join_timeout_seconds
            while client.room is None and not client.closing:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await ws.recv()
                except TimeoutError:
                    log.info("closing a connection from %s: no join within %g s", ip,
                             limits.join_timeout_seconds)
                    await ws.close(frames.CLOSE_JOIN_TIMEOUT,
                                   f"no join within {limits.join_timeout_seconds:g} s")
                    return
                await self._on_message(client, message)
            async for message in ws:
                await self._on_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            self._forget(client)

    def _forget(self, client: Client) -> None:
        self.clients.discard(client)
        self.connections_per_ip[client.ip] -= 1
        if self.connections_per_ip[client.ip] <= 0:
            del self.connections_per_ip[client.ip]
        room, role = client.room, client.role
        client.room = None
        if room is None or role is None or room.members.get(role) is not client:
            return
        del room.members[role]
        other = room.members.get(frames.other_role(role))
        if other is not None:
            self._spawn(self._send(other, frames.peer_left_frame(role)))
        if not room.members:
            self.rooms.remove(room)
            log.info("room %s closed: empty", room.tag)
        else:
            log.info("room %s: %s left", room.tag, role)

    # ---- frames ----------------------------------------------------------------------------

    async def _on_message(self, client: Client, message: str | bytes) -> None:
        if client.closing:
            return
        if not client.messages.take():
            await self._error(client, frames.RATE_LIMITED,
                              f"more than {self.limits.messages_per_second:g} frames per second;"
                              " frame dropped")
            return
        if isinstance(message, bytes):
            await self._error(client, frames.BAD_FRAME, "binary frames are not accepted; "
                                                        "send JSON text")
            return
        if _size(message) > self.limits.max_message_bytes:
            await self._error(client, frames.TOO_LARGE,
                              f"frame larger than {self.limits.max_message_bytes} bytes; dropped")
            return
        try:
            frame = frames.parse_client_frame(message, max_bytes=self.limits.max_message_bytes)
        except FrameError as exc:
            await self._error(client, exc.code, exc.message)
            return
        if isinstance(frame, Join):
            if client.room is not None:
                await self._error(client, frames.BAD_FRAME, "already joined a room")
            else:
                await self._join(client, frame)
            return
        room, role = client.room, client.role
        if room is None or role is None:
            await self._error(client, frames.NOT_JOINED, "send a join frame first")
            return
        room.touch()
        if isinstance(frame, Relay):
            other = room.members.get(frames.other_role(role))
            if other is None or other.closing:
                await self._error(client, frames.NO_PEER,
                                  "the other member is not connected; frame dropped",
                                  counts=False)
                return
            if not await self._send(other, frames.relay_frame(frame.data)):
                await self._error(client, frames.NO_PEER,
                                  "the other member went away; frame dropped", counts=False)
        elif isinstance(frame, Ping):
            await self._send(client, frames.PONG)

    async def _join(self, client: Client, join: Join) -> None:
        room = self.rooms.get(join.room)
        resumed = False
        if room is None:
            if join.role == "candidate":
                await self._error(client, frames.UNKNOWN_ROOM,
                                  "no host has opened this room (yet); retry later",
                                  counts=False)
                return
            if len(self.rooms) >= self.limits.max_rooms:
                await self._error(client, frames.TOO_MANY_ROOMS,
                                  "the server is at its room limit; try again later",
                                  counts=False)
                return
            if self.rooms.per_ip[client.ip] >= self.limits.max_rooms_per_ip:
                await self._error(client, frames.TOO_MANY_ROOMS,
                                  f"too many rooms opened from your address "
                                  f"(limit {self.limits.max_rooms_per_ip})", counts=False)
                return
            room = self.rooms.create(join.room, client.ip)
            log.info("room %s opened by a host from %s", room.tag, client.ip)
        else:
            holder = room.members.get(join.role)
            can_resume = holder is not None and room.token_matches(join.role, join.resume)
            if join.role == "candidate" and "host" not in room.members and not can_resume:
                await self._error(client, frames.UNKNOWN_ROOM,
                                  "this room has no host right now; retry later", counts=False)
                return
            if holder is not None:
                if not can_resume:
                    await self._error(client, frames.ROOM_FULL,
                                      f"this room already has a {join.role}", counts=False)
                    return
                holder.closing = True
                holder.room = None
                self._spawn(_close(holder.ws, frames.CLOSE_REPLACED,
                                   "replaced by a resumed connection"))
                resumed = True
                log.info("room %s: %s resumed from %s", room.tag, join.role, client.ip)
        token = new_token()
        room.tokens[join.role] = token
        room.members[join.role] = client
        client.room, client.role = room, join.role
        room.touch()
        other = room.members.get(frames.other_role(join.role))
        if not resumed:
            log.info("room %s: %s joined from %s", room.tag, join.role, client.ip)
        # Relay credentials only once the room has both its members: the one arriving gets
        # them with `joined`, the one waiting with `peer-joined`.
        urls = self.config.turn.urls if self.config.turn is not None else ()
        await self._send(client, frames.joined_frame(
            room.id, join.role, token, other is not None,
            self._turn_for(room, client) if other is not None else None, urls))
        if other is not None:
            await self._send(other, frames.peer_joined_frame(join.role, resumed,
                                                             self._turn_for(room, other)))

    def _turn_for(self, room: Room, client: Client) -> TurnCredentials | None:
        """Relay credentials for `client`, a member of `room` whose other member is
        present, valid for the configured ttl; None without a relay or past the per-address
        issue rate (signaling/turn.py)."""
        turn = self.config.turn
        if turn is None:
            return None
        bucket = self.turn_issues.get(client.ip)
        if bucket is None:
            per_hour = self.limits.turn_credentials_per_ip_per_hour
            bucket = self.turn_issues[client.ip] = TokenBucket(per_hour / 3600.0, per_hour)
        if not bucket.take():
            log.warning("room %s: no TURN credentials for %s: more than %d issued to it in "
                        "the last hour", room.tag, client.ip,
                        self.limits.turn_credentials_per_ip_per_hour)
            return None
        return turn_credentials(turn.secret, room.tag, turn.ttl_seconds, turn.urls)

    async def _error(self, client: Client, code: str, message: str, counts: bool = True) -> None:
        """Send an error frame; misbehaviour (`counts`) spends the client's error allowance."""
        await self._send(client, frames.error_frame(code, message))
        if counts and not client.errors.take():
            log.info("closing a connection from %s: too many protocol errors", client.ip)
            client.closing = True
            await client.ws.close(frames.CLOSE_TOO_MANY_ERRORS, "too many protocol errors")

    async def _send(self, client: Client, text: str) -> bool:
        try:
            await client.ws.send(text)
        except ConnectionClosed:
            return False
        return True

    # ---- housekeeping ----------------------------------------------------------------------

    async def _sweep_idle_rooms(self) -> None:
        idle = self.limits.idle_room_seconds
        interval = min(max(idle / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            try:
                self._close_idle_rooms(time.monotonic() - idle)
                for ip in [ip for ip, b in self.turn_issues.items() if b.full()]:
                    del self.turn_issues[ip]  # refilled: as good as a new one
            except Exception:  # the sweeper must outlive any bug in one pass
                log.exception("idle-room sweep failed")

    def _close_idle_rooms(self, older_than: float) -> None:
        idle = self.limits.idle_room_seconds
        for room in self.rooms.idle(older_than):
            log.info("room %s closed: idle for %g s", room.tag, idle)
            for member in list(room.members.values()):
                member.closing = True
                member.room = None
                self._spawn(_close(member.ws, frames.CLOSE_IDLE_ROOM,
                                   f"room idle for {idle:g} s"))
            room.members.clear()
            self.rooms.remove(room)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _ip_of(ws: ServerConnection) -> str:
    address = ws.remote_address
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "unknown"


async def _close(ws: ServerConnection, code: int, reason: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.close(code, reason)


async def _refuse(ws: ServerConnection, message: str) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(frames.error_frame(frames.TOO_MANY_CONNECTIONS, message))
    await _close(ws, frames.CLOSE_TOO_MANY_CONNECTIONS, "too many connections")


def _json_response(connection: ServerConnection, status: int, body: dict[str, object]) -> Response:
    response = connection.respond(status, json.dumps(body) + "\n")
    headers = Headers(response.headers)
    del headers["Content-Type"]
    headers["Content-Type"] = "application/json"
    response.headers = headers
    return response
