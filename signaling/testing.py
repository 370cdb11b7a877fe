"""Helpers for exercising a real server on loopback: start one, talk to it as a client.

Used by the tests and the benchmark; nothing in the server imports this module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from signaling.config import Limits, ServerConfig
from signaling.server import SignalingServer


@asynccontextmanager
async def running_server(**limits: Any) -> AsyncIterator[SignalingServer]:
    """A server on 127.0.0.1 with a free port and the given limit overrides."""
    config = ServerConfig(host="127.0.0.1", port=0, limits=Limits(**limits))
    async with SignalingServer(config) as server:
        yield server


class WsClient:
    """A thin JSON client over a websockets connection, for tests and benchmarks."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, port: int, source: str | None = None, **kwargs: Any) -> WsClient:
        """Connect to ws://127.0.0.1:port/ws, optionally from another loopback `source`."""
        if source is not None:
            kwargs["local_addr"] = (source, 0)
        kwargs.setdefault("compression", None)
        kwargs.setdefault("open_timeout", 10)
        ws = await connect(f"ws://127.0.0.1:{port}/ws", **kwargs)
        return cls(ws)

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            message = await self.ws.recv()
        frame = json.loads(message)
        if not isinstance(frame, dict):
            raise AssertionError(f"server sent a non-object frame: {message!r}")
        return frame

    async def expect(self, kind: str, code: str | None = None,
                     timeout: float = 5.0) -> dict[str, Any]:
        """The next frame, which must have this type (and error code, if given)."""
        frame = await self.recv(timeout)
        if frame.get("type") != kind or (code is not None and frame.get("code") != code):
            raise AssertionError(f"expected {kind} {code or ''}, got {frame!r}")
        return frame

    async def join(self, room: str, role: str, resume: str | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "join", "room": room, "role": role}
        if resume is not None:
            frame["resume"] = resume
        await self.send(frame)
        return await self.recv()

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Wait until the server closes the connection; (close code, reason)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")

    async def close(self) -> None:
        await self.ws.close()


async def eventually(condition: Any, timeout: float = 5.0) -> None:
    """Wait until `condition()` is true (the server updates its books asynchronously)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
