"""Time limits on a real server over 127.0.0.1: idle rooms, join timeout, half-open clients."""

from __future__ import annotations

import asyncio

from signaling.testing import WsClient, eventually, running_server

ROOM = "room-limits-0123456789"


async def test_idle_room_is_closed_and_traffic_keeps_a_room_alive():
    async with running_server(idle_room_seconds=0.4) as server:
        idle_host = await WsClient.connect(server.port)
        idle_candidate = await WsClient.connect(server.port)
        await idle_host.join(ROOM, "host")
        await idle_candidate.join(ROOM, "candidate")
        busy = await WsClient.connect(server.port)
        await busy.join(ROOM + "busy", "host")
        for _ in range(12):  # 1.2 s of pings, three idle lifetimes
            await busy.send({"type": "ping"})
            await busy.expect("pong")
            await asyncio.sleep(0.1)
        assert (await idle_candidate.closed(timeout=5))[0] == 4002
        code, reason = await idle_host.closed(timeout=5)
        assert code == 4002 and "idle" in reason
        await eventually(lambda: server.stats()["rooms"] == 1)
        # The busy room is still open and usable; the idle room's id is free again.
        await busy.send({"type": "ping"})
        await busy.expect("pong")
        fresh = await WsClient.connect(server.port)
        assert (await fresh.join(ROOM, "host"))["type"] == "joined"


async def test_a_connection_that_never_joins_is_closed():
    async with running_server(join_timeout_seconds=0.3) as server:
        silent = await WsClient.connect(server.port)
        code, reason = await silent.closed(timeout=5)
        assert code == 4003 and "no join" in reason
        # Sending frames other than a successful join does not extend the deadline.
        chatty = await WsClient.connect(server.port)
        for _ in range(5):
            await chatty.send({"type": "ping"})
            await chatty.expect("error", "not-joined")
            await asyncio.sleep(0.05)
        assert (await chatty.closed(timeout=5))[0] == 4003
        # A client that joins in time is not affected by the deadline later.
        joined = await WsClient.connect(server.port)
        await joined.join(ROOM, "host")
        await asyncio.sleep(0.5)
        await joined.send({"type": "ping"})
        await joined.expect("pong")
        await eventually(lambda: server.stats()["connections"] == 1)


async def read_until_eof(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while chunk := await reader.read(4096):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_half_open_tcp_clients_are_dropped():
    async with running_server(handshake_timeout_seconds=0.3) as server:
        # One says nothing; one sends half a request; both are dropped by the server.
        silent = await asyncio.open_connection("127.0.0.1", server.port)
        partial = await asyncio.open_connection("127.0.0.1", server.port)
        partial[1].write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: web")
        await partial[1].drain()
        async with asyncio.timeout(5):
            assert await read_until_eof(silent[0]) == b""
            assert await read_until_eof(partial[0]) == b""
        # Garbage instead of HTTP gets an error response, then the connection ends.
        garbage = await asyncio.open_connection("127.0.0.1", server.port)
        garbage[1].write(b"\x16\x03\x01 not http at all\r\n\r\n")
        await garbage[1].drain()
        async with asyncio.timeout(5):
            reply = await read_until_eof(garbage[0])
        assert reply == b"" or reply.startswith(b"HTTP/1.1 400")
        for _, writer in (silent, partial, garbage):
            writer.close()
        assert server.stats()["connections"] == 0
        ok = await WsClient.connect(server.port)
        assert (await ok.join(ROOM, "host"))["type"] == "joined"


async def test_keepalive_closes_a_client_that_stops_answering():
    async with running_server(ping_interval_seconds=0.2, ping_timeout_seconds=0.3,
                              close_timeout_seconds=0.3) as server:
        host = await WsClient.connect(server.port, ping_interval=None)
        candidate = await WsClient.connect(server.port)
        await host.join(ROOM, "host")
        await candidate.join(ROOM, "candidate")
        await host.expect("peer-joined")
        host.ws.transport.pause_reading()  # the host's machine goes quiet
        assert await candidate.expect("peer-left", timeout=5) == {
            "type": "peer-left", "role": "host"}
        await eventually(lambda: server.stats()["connections"] == 1)
