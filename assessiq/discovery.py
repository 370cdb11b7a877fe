"""LAN mode: the host advertises its own signaling endpoint with zeroconf (mDNS/DNS-SD), and
a candidate on the same network finds it with no server configured.

The service type is `_assessiq._tcp.local.`. The instance is named after a hash of the room
id (`room_tag`), and its TXT properties carry that tag and the protocol version — never the
invite secret. Finding the endpoint only tells the candidate where to relay the sealed
handshake; the handshake itself still proves the host holds the invite's key.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from .core.encoding import sha256_hex

__all__ = ["SERVICE_TYPE", "Advertiser", "discover", "room_tag"]

log = logging.getLogger(__name__)

SERVICE_TYPE = "_assessiq._tcp.local."


def room_tag(room: str) -> str:
    """A public tag for a room: lets the candidate pick the right host, reveals nothing."""
    return sha256_hex(b"assessiq/room\n", room.encode("utf-8"))[:20]


def _instance(room: str) -> str:
    return f"assessiq-{room_tag(room)}.{SERVICE_TYPE}"


class Advertiser:
    """`async with Advertiser(room, address, port):` advertises the host's endpoint."""

    def __init__(
        self, room: str, address: str, port: int, *, interfaces: list[str] | None = None
    ) -> None:
        self.room = room
        self.address = address
        self.port = port
        self.interfaces = interfaces or [address]
        self._zc: AsyncZeroconf | None = None
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            _instance(room),
            addresses=[socket.inet_aton(address)],
            port=port,
            properties={"room": room_tag(room), "v": "1", "path": "/ws"},
            server=f"assessiq-{room_tag(room)}.local.",
        )

    async def start(self) -> None:
        self._zc = AsyncZeroconf(interfaces=self.interfaces, ip_version=IPVersion.V4Only)
        await self._zc.async_register_service(self._info)
        log.info("advertising %s on %s:%d", SERVICE_TYPE, self.address, self.port)

    async def close(self) -> None:
        if self._zc is not None:
            await self._zc.async_unregister_service(self._info)
            await self._zc.async_close()
            self._zc = None

    async def __aenter__(self) -> Advertiser:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def discover(
    room: str, *, timeout: float = 5.0, interfaces: list[str] | None = None
) -> str | None:
    """Browse `_assessiq._tcp.local.` for this room's host; its ws:// URL, or None."""
    tag = room_tag(room)
    found: asyncio.Queue[str] = asyncio.Queue()
    azc = AsyncZeroconf(interfaces=interfaces or ["0.0.0.0"], ip_version=IPVersion.V4Only)

    def on_change(zeroconf: object, service_type: str, name: str, state_change: object) -> None:
        if name.startswith(f"assessiq-{tag}."):
            found.put_nowait(name)

    browser = AsyncServiceBrowser(azc.zeroconf, SERVICE_TYPE, handlers=[on_change])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while (remaining := deadline - loop.time()) > 0:
            try:
                name = await asyncio.wait_for(found.get(), remaining)
            except TimeoutError:
                break
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(azc.zeroconf, int(max(remaining, 0.5) * 1000)):
                continue
            props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
            addresses = info.parsed_addresses(IPVersion.V4Only)
            if props.get("room") != tag or not addresses or not info.port:
                continue
            url = f"ws://{addresses[0]}:{info.port}{props.get('path', '/ws')}"
            log.info("found the host's endpoint %s with zeroconf", url)
            return url
        return None
    finally:
        await browser.async_cancel()
        await azc.async_close()
