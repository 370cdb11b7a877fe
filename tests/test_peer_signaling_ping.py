"""The peers' signaling client keeps a quiet room open: the server closes rooms with no client
frame for `idle_room_seconds` (15 min by default), and WebSocket keepalive pings do not count,
so the client sends an application `{"type": "ping"}` now and then (every 60 s by default).
Here the server's idle limit is 1 s and the client pings every 0.25 s."""

from __future__ import annotations

import asyncio

from assessiq.peer.signaling_client import APP_PING_INTERVAL, SignalingClient
from signaling import ServerConfig, SignalingServer
from signaling.config import Limits


async def test_app_pings_keep_a_quiet_room_open():
    assert APP_PING_INTERVAL <= 60.0
    limits = Limits(idle_room_seconds=1.0)
    async with SignalingServer(ServerConfig(host="127.0.0.1", port=0, limits=limits)) as server:
        url = f"ws://127.0.0.1:{server.port}"
        pinging = [SignalingClient(url, "room-pinging-0000000", role, app_ping_interval=0.25)
                   for role in ("host", "candidate")]
        quiet = [SignalingClient(url, "room-quiet-0000000000", role, app_ping_interval=3600.0)
                 for role in ("host", "candidate")]
        clients = pinging + quiet
        try:
            for client in clients:
                await client.start()
            await asyncio.sleep(3.0)  # three idle limits, no relays at all
            # The pinging room was never closed: no reconnect, still the first join.
            assert all(c.app_pings >= 4 for c in pinging)
            assert all(c.reconnects == 0 and c.generation == 1 for c in pinging)
            # The control: the quiet room was closed by the server (the client rejoined).
            assert all(c.reconnects >= 1 for c in quiet)
            # And the pinging pair still relays to each other.
            assert await pinging[0].send("hello")
            assert await asyncio.wait_for(pinging[1].recv(), 5) == "hello"
        finally:
            for client in clients:
                await client.close()
