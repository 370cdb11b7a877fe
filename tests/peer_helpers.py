"""Shared pieces of the peer tests: a real signaling server on 127.0.0.1, a hostile signaling
server (a test double that speaks the protocol but tampers with what it relays), and small
waiting helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from assessiq.core.identity import Identity
from assessiq.peer import Candidate, Host
from assessiq.peer.config import PeerConfig
from assessiq.peer.connection import restrict_host_addresses
from signaling import ServerConfig, SignalingServer

restrict_host_addresses(["127.0.0.1"])  # every peer test meets on loopback only

FAST = PeerConfig(
    heartbeat_interval=0.5,
    heartbeat_timeout=3.0,
    handshake_timeout=3.0,
    connect_timeout=10.0,
    signaling_ping_interval=2.0,
    signaling_ping_timeout=2.0,
)


@contextlib.asynccontextmanager
async def signaling_server() -> AsyncIterator[str]:
    """The real signaling server, in process, on 127.0.0.1; yields its ws:// URL."""
    async with SignalingServer(ServerConfig(host="127.0.0.1", port=0)) as server:
        yield f"ws://127.0.0.1:{server.port}"


@contextlib.asynccontextmanager
async def joined_pair(tmp_path: Path, *, config: PeerConfig = FAST, connect: bool = True,
                      candidate: dict[str, Any] | None = None, **host_options: Any
                      ) -> AsyncIterator[tuple[str, Host, Candidate]]:
    """A real signaling server, a host (`Host.start(**host_options)`, its file in `tmp_path`)
    and a candidate that joined it: (url, host, candidate). With `connect`, both sides are
    connected first. Both are closed (not sealed) on the way out."""
    async with signaling_server() as url:
        host_options.setdefault("identity", Identity.generate())
        host_options.setdefault("session_path", tmp_path / "s.aiq")
        host = await Host.start(signaling=url, config=config, **host_options)
        try:
            cand = await Candidate.join(host.invite.encode(), config=config, **(candidate or {}))
            try:
                if connect:
                    await host.connected(10)
                    await cand.connected(10)
                yield url, host, cand
            finally:
                await cand.close()
        finally:
            await host.close()


async def eventually(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Wait until `check()` is true (polling); fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


# Tamper(data, sender_role, index) -> the list of strings to deliver instead (maybe empty).
Tamper = Callable[[str, str, int], list[str] | Awaitable[list[str]]]


class HostileSignaling:
    """A signaling server that speaks the protocol but lets a test rewrite every relay.

    `tamper(data, sender_role, n)` sees the n-th relay from that role and returns what to
    deliver to the other side (nothing = drop, twice = duplicate, other strings = replace or
    inject). `seen` keeps every original relay for replays.
    """

    def __init__(self, tamper: Tamper | None = None) -> None:
        self.tamper = tamper
        self.members: dict[str, ServerConnection] = {}
        self.seen: dict[str, list[str]] = {"host": [], "candidate": []}
        self._server: Any = None
        self.port = 0

    async def __aenter__(self) -> HostileSignaling:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def deliver(self, to_role: str, data: str) -> None:
        ws = self.members.get(to_role)
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"type": "relay", "data": data}))

    async def _handle(self, ws: ServerConnection) -> None:
        role = None
        try:
            async for message in ws:
                frame = json.loads(message)
                if frame["type"] == "join":
                    role = frame["role"]
                    if role == "candidate" and "host" not in self.members:
                        await ws.send(json.dumps({"type": "error", "code": "unknown-room",
                                                  "message": "no host"}))
                        continue
                    self.members[role] = ws
                    other = "candidate" if role == "host" else "host"
                    await ws.send(json.dumps({"type": "joined", "room": frame["room"],
                                              "role": role, "resume": "t-" + role,
                                              "peer": other in self.members}))
                elif frame["type"] == "relay" and role is not None:
                    other = "candidate" if role == "host" else "host"
                    data = frame["data"]
                    self.seen[role].append(data)
                    out: Any = [data]
                    if self.tamper is not None:
                        out = self.tamper(data, role, len(self.seen[role]) - 1)
                        if asyncio.iscoroutine(out):
                            out = await out
                    for item in out:
                        await self.deliver(other, item)
                elif frame["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
        except ConnectionClosed:
            pass
        finally:
            if role is not None and self.members.get(role) is ws:
                del self.members[role]


TURN_USER = "assessiq"
TURN_PASSWORD = "relay-test-pw"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def coturn(tmp_path: Any) -> AsyncIterator[int]:
    """A real coturn (`turnserver`) on 127.0.0.1 with a temporary config; yields its port."""
    import shutil
    import socket

    binary = shutil.which("turnserver")
    if binary is None:
        import pytest

        pytest.skip("coturn's turnserver is not installed (apt-get install coturn)")
    port = free_port()
    relay_min = 40000 + (port % 1000) * 10
    conf = tmp_path / "turnserver.conf"
    conf.write_text("\n".join([
        "listening-ip=127.0.0.1", "relay-ip=127.0.0.1", f"listening-port={port}",
        f"min-port={relay_min}", f"max-port={relay_min + 9}", "lt-cred-mech",
        f"user={TURN_USER}:{TURN_PASSWORD}", "realm=assessiq.test", "fingerprint",
        "no-tls", "no-dtls", "no-cli", "allow-loopback-peers", "no-multicast-peers",
        "simple-log", f"log-file={tmp_path / 'turn.log'}", f"pidfile={tmp_path / 'turn.pid'}",
        f"userdb={tmp_path / 'turndb'}",
    ]) + "\n")
    proc = await asyncio.create_subprocess_exec(
        binary, "-c", str(conf), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise RuntimeError("turnserver did not start") from None
                await asyncio.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
