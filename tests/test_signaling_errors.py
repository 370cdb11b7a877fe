"""Every error frame the server sends, on a real server over 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from signaling.frames import ERROR_CODES
from signaling.testing import WsClient, eventually, running_server

ROOM = "room-errors-0123456789"

BAD_FRAMES = [
    ("{not json", "bad-json"),
    ("", "bad-json"),
    ("[" * 100_000 + "]" * 100_000, "too-large"),
    ("[" * 30_000 + "]" * 30_000, "bad-json"),  # nesting too deep for the parser
    ('{"type": "ping", "x": NaN}', "bad-json"),
    ("1" * 5000, "bad-json"),  # an integer longer than Python will parse
    ("[]", "bad-frame"),
    ('"join"', "bad-frame"),
    ("null", "bad-frame"),
    ("{}", "bad-frame"),
    ('{"type": 7}', "bad-frame"),
    ('{"type": "shout"}', "bad-frame"),
    ('{"type": "join", "room": "short", "role": "host"}', "bad-frame"),
    ('{"type": "join", "room": "' + "a" * 65 + '", "role": "host"}', "bad-frame"),
    ('{"type": "join", "room": "has space in it 0123", "role": "host"}', "bad-frame"),
    ('{"type": "join", "room": "room-ü-0123456789", "role": "host"}', "bad-frame"),
    ('{"type": "join", "room": 1234567890123456, "role": "host"}', "bad-frame"),
    ('{"type": "join", "room": "' + ROOM + '", "role": "admin"}', "bad-frame"),
    ('{"type": "join", "room": "' + ROOM + '"}', "bad-frame"),
    ('{"type": "join", "room": "' + ROOM + '", "role": "host", "resume": 5}', "bad-frame"),
    ('{"type": "relay", "data": 5}', "bad-frame"),
    ('{"type": "relay"}', "bad-frame"),
    ('{"type": "relay", "data": null}', "bad-frame"),
    (b"\x00\x01binary", "bad-frame"),
    ('{"type": "relay", "data": "x"}', "not-joined"),
    ('{"type": "ping"}', "not-joined"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES, ids=[c + str(i) for i, (_, c) in
                                                              enumerate(BAD_FRAMES)])
async def test_bad_frames_get_an_error_and_the_connection_survives(frame, code):
    async with running_server() as server:
        client = await WsClient.connect(server.port, max_size=None)
        await client.send(frame)
        error = await client.expect("error", code)
        assert isinstance(error["message"], str) and error["message"]
        assert error["code"] in ERROR_CODES
        # One error does not close the connection.
        assert (await client.join(ROOM, "host"))["type"] == "joined"


async def test_join_twice_is_a_bad_frame():
    async with running_server() as server:
        client = await WsClient.connect(server.port)
        await client.join(ROOM, "host")
        assert (await client.join(ROOM + "x", "host"))["code"] == "bad-frame"


async def test_state_errors():
    async with running_server() as server:
        candidate = await WsClient.connect(server.port)
        assert (await candidate.join(ROOM, "candidate"))["code"] == "unknown-room"
        host = await WsClient.connect(server.port)
        await host.join(ROOM, "host")
        await host.send({"type": "relay", "data": "x"})
        await host.expect("error", "no-peer")
        second = await WsClient.connect(server.port)
        assert (await second.join(ROOM, "host"))["code"] == "room-full"


async def test_too_large_then_hard_limit_closes():
    async with running_server(max_message_bytes=1000, hard_max_message_bytes=4000) as server:
        client = await WsClient.connect(server.port)
        await client.join(ROOM, "host")
        big = json.dumps({"type": "relay", "data": "x" * 2000})
        await client.send(big)
        await client.expect("error", "too-large")
        # Multi-byte characters are counted as UTF-8 bytes.
        await client.send(json.dumps({"type": "relay", "data": "€" * 400}, ensure_ascii=False))
        await client.expect("error", "too-large")
        await client.send({"type": "ping"})
        await client.expect("pong")
        await client.send("x" * 5000)
        code, _ = await client.closed()
        assert code == 1009  # message too big: the server would not even read it


async def test_rate_limited_then_closed_when_it_keeps_flooding():
    async with running_server(messages_per_second=1, message_burst=5, error_burst=3,
                              errors_per_second=0.01) as server:
        client = await WsClient.connect(server.port)
        await client.join(ROOM, "host")
        for _ in range(4):
            await client.send({"type": "ping"})
        for _ in range(4):
            await client.expect("pong")
        for _ in range(4):
            await client.send({"type": "ping"})
        await client.expect("error", "rate-limited")
        await client.expect("error", "rate-limited")
        await client.expect("error", "rate-limited")
        await client.expect("error", "rate-limited")
        code, reason = await client.closed()
        assert code == 4004 and "errors" in reason


async def test_errors_close_the_connection_after_the_allowance():
    async with running_server(error_burst=5, errors_per_second=0.01) as server:
        client = await WsClient.connect(server.port)
        for _ in range(5):
            await client.send("nope")
            await client.expect("error", "bad-json")
        await client.send("nope")
        await client.expect("error", "bad-json")
        code, reason = await client.closed()
        assert code == 4004 and reason == "too many protocol errors"


async def test_state_errors_do_not_spend_the_allowance():
    async with running_server(error_burst=2, errors_per_second=0.01) as server:
        client = await WsClient.connect(server.port)
        for _ in range(10):  # a candidate retrying before its host arrives
            assert (await client.join(ROOM, "candidate"))["code"] == "unknown-room"
        host = await WsClient.connect(server.port)
        await host.join(ROOM, "host")
        assert (await client.join(ROOM, "candidate"))["type"] == "joined"


async def test_too_many_connections_per_ip_and_in_total():
    async with running_server(max_connections_per_ip=3, max_connections=5) as server:
        clients = [await WsClient.connect(server.port) for _ in range(3)]
        fourth = await WsClient.connect(server.port)
        await fourth.expect("error", "too-many-connections")
        assert (await fourth.closed())[0] == 4005
        # Another address still gets in, up to the server-wide limit.
        others = [await WsClient.connect(server.port, source="127.0.0.2") for _ in range(2)]
        assert (await others[0].join(ROOM, "host"))["type"] == "joined"
        sixth = await WsClient.connect(server.port, source="127.0.0.3")
        error = await sixth.expect("error", "too-many-connections")
        assert "connection limit" in error["message"]
        assert (await sixth.closed())[0] == 4005
        # Closing one frees a place for that address.
        await clients[0].close()
        await eventually(lambda: server.stats()["connections"] == 4)
        again = await WsClient.connect(server.port)
        assert (await again.join(ROOM + "b", "host"))["type"] == "joined"


async def test_too_many_rooms_per_ip_and_in_total():
    async with running_server(max_rooms_per_ip=2, max_rooms=3) as server:
        hosts = [await WsClient.connect(server.port) for _ in range(3)]
        assert (await hosts[0].join(ROOM + "1", "host"))["type"] == "joined"
        assert (await hosts[1].join(ROOM + "2", "host"))["type"] == "joined"
        assert (await hosts[2].join(ROOM + "3", "host"))["code"] == "too-many-rooms"
        elsewhere = [await WsClient.connect(server.port, source="127.0.0.2") for _ in range(2)]
        assert (await elsewhere[0].join(ROOM + "4", "host"))["type"] == "joined"
        refused = await elsewhere[1].join(ROOM + "5", "host")
        assert refused["code"] == "too-many-rooms" and "server" in refused["message"]
        # A room closing frees the place for its address.
        await hosts[0].close()
        await hosts[1].close()
        await hosts[2].close()
        await eventually(lambda: server.stats()["rooms"] == 1)
        retry = await WsClient.connect(server.port)
        assert (await retry.join(ROOM + "6", "host"))["type"] == "joined"
