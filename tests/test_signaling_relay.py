"""Rooms on a real server over 127.0.0.1: joining, relaying, refusing a third joiner, resuming."""

from __future__ import annotations

import asyncio
import http.client
import json

from signaling.testing import WsClient, eventually, running_server

ROOM = "room-relay-0123456789"
OTHER_ROOM = "room-other-0123456789"


async def pair(port: int, room: str = ROOM) -> tuple[WsClient, WsClient, dict, dict]:
    host = await WsClient.connect(port)
    candidate = await WsClient.connect(port)
    h = await host.join(room, "host")
    c = await candidate.join(room, "candidate")
    assert (await host.expect("peer-joined"))["role"] == "candidate"
    return host, candidate, h, c


async def test_join_relay_both_ways_and_ping():
    async with running_server() as server:
        host, candidate, h, c = await pair(server.port)
        assert h["type"] == "joined" and h["room"] == ROOM and h["role"] == "host"
        assert h["peer"] is False and isinstance(h["resume"], str) and len(h["resume"]) >= 20
        assert c["type"] == "joined" and c["role"] == "candidate" and c["peer"] is True
        assert c["resume"] != h["resume"]
        # Opaque data goes through verbatim, whatever it holds.
        for data in ["", "aGVsbG8", "ü€😀\u0000\"{}", "x" * 60_000]:
            await host.send({"type": "relay", "data": data})
            assert await candidate.expect("relay") == {"type": "relay", "data": data}
            await candidate.send({"type": "relay", "data": data[::-1]})
            assert await host.expect("relay") == {"type": "relay", "data": data[::-1]}
        # Extra fields on a relay are not forwarded: the server re-frames only `data`.
        await host.send({"type": "relay", "data": "d", "extra": 1})
        assert await candidate.expect("relay") == {"type": "relay", "data": "d"}
        await candidate.send({"type": "ping"})
        assert await candidate.recv() == {"type": "pong"}
        assert server.stats() == {"status": "ok", "rooms": 1, "connections": 2}


async def test_third_joiner_refused_and_may_join_elsewhere():
    async with running_server() as server:
        host, candidate, _, _ = await pair(server.port)
        for role in ("host", "candidate"):
            third = await WsClient.connect(server.port)
            refused = await third.join(ROOM, role)
            assert refused["type"] == "error" and refused["code"] == "room-full"
            # A wrong resume token is refused the same way.
            await third.send({"type": "join", "room": ROOM, "role": role, "resume": "guess"})
            await third.expect("error", "room-full")
            # The refused connection stays usable.
            assert (await third.join(OTHER_ROOM + role, "host"))["type"] == "joined"
            await third.close()
        # The room's members were not disturbed.
        await host.send({"type": "relay", "data": "still here"})
        assert (await candidate.expect("relay"))["data"] == "still here"


async def test_candidate_before_host_gets_unknown_room_then_retries():
    async with running_server() as server:
        candidate = await WsClient.connect(server.port)
        await candidate.send({"type": "join", "room": ROOM, "role": "candidate"})
        await candidate.expect("error", "unknown-room")
        host = await WsClient.connect(server.port)
        assert (await host.join(ROOM, "host"))["peer"] is False
        joined = await candidate.join(ROOM, "candidate")
        assert joined["type"] == "joined" and joined["peer"] is True
        assert await host.expect("peer-joined") == {
            "type": "peer-joined", "role": "candidate", "resumed": False}


async def test_resume_replaces_a_dead_socket():
    async with running_server() as server:
        host, candidate, h, _ = await pair(server.port)
        # The old host socket goes dead: it stops reading, the server still holds it.
        host.ws.transport.pause_reading()
        new_host = await WsClient.connect(server.port)
        joined = await new_host.join(ROOM, "host", resume=h["resume"])
        assert joined["type"] == "joined" and joined["peer"] is True
        assert joined["resume"] != h["resume"]  # tokens rotate on every join
        assert await candidate.expect("peer-joined") == {
            "type": "peer-joined", "role": "host", "resumed": True}
        await candidate.send({"type": "relay", "data": "to the new host"})
        assert (await new_host.expect("relay"))["data"] == "to the new host"
        await new_host.send({"type": "relay", "data": "from the new host"})
        assert (await candidate.expect("relay"))["data"] == "from the new host"
        # The old token is spent: presenting it again is refused.
        replay = await WsClient.connect(server.port)
        assert (await replay.join(ROOM, "host", resume=h["resume"]))["code"] == "room-full"
        # The old socket, once it reads again, finds itself closed with 4001 and got no relay.
        host.ws.transport.resume_reading()
        code, reason = await host.closed(timeout=10)
        assert code == 4001 and "resumed" in reason
        await eventually(lambda: server.stats()["connections"] == 3)  # new, candidate, replay


async def test_candidate_resumes_while_host_away():
    async with running_server() as server:
        host, candidate, _, c = await pair(server.port)
        await host.close()
        assert await candidate.expect("peer-left") == {"type": "peer-left", "role": "host"}
        # The room lives on with its candidate; a stranger cannot take the candidate slot.
        stranger = await WsClient.connect(server.port)
        assert (await stranger.join(ROOM, "candidate"))["code"] == "unknown-room"
        again = await WsClient.connect(server.port)
        joined = await again.join(ROOM, "candidate", resume=c["resume"])
        assert joined["type"] == "joined" and joined["peer"] is False
        assert (await candidate.closed())[0] == 4001


async def test_peer_left_no_peer_and_slot_freed():
    async with running_server() as server:
        host, candidate, _, _ = await pair(server.port)
        await candidate.close()
        assert await host.expect("peer-left") == {"type": "peer-left", "role": "candidate"}
        await host.send({"type": "relay", "data": "anyone?"})
        await host.expect("error", "no-peer")
        newcomer = await WsClient.connect(server.port)
        assert (await newcomer.join(ROOM, "candidate"))["type"] == "joined"
        await host.expect("peer-joined")
        await host.close()
        await newcomer.expect("peer-left")
        await newcomer.close()
        await eventually(lambda: server.stats() == {"status": "ok", "rooms": 0, "connections": 0})


def http_get(port: int, path: str) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode()
    finally:
        conn.close()


async def test_healthz_counts_and_unknown_paths():
    async with running_server() as server:
        await pair(server.port)
        status, ctype, body = await asyncio.to_thread(http_get, server.port, "/healthz")
        assert status == 200 and ctype == "application/json"
        assert json.loads(body) == {"status": "ok", "rooms": 1, "connections": 2}
        status, _, body = await asyncio.to_thread(http_get, server.port, "/nope")
        assert status == 404 and "/ws" in body
        status, _, _ = await asyncio.to_thread(http_get, server.port, "/ws")
        assert status == 426  # a plain GET on the WebSocket path: upgrade required
