"""A bounded, seeded fuzzer against a real server on 127.0.0.1.

More than 10,000 hostile inputs (malformed JSON, wrong types, huge strings, binary and oversized
frames, floods, connection and room floods, half-open TCP and WebSocket clients) while a canary
room on another loopback address relays host <-> candidate the whole time. Asserts: every reply is
a well-formed frame with the reply the protocol promises, limits hold, nothing in the server
fails, and the canary never misses or garbles a message and keeps making progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import string
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed

from signaling.frames import ERROR_CODES
from signaling.testing import WsClient, eventually, running_server

SEED = 20_240_611
TARGET_INPUTS = 10_500
WORKERS = 8
CANARY_ROOM = "canary-room-not-for-fuzzing"
LIMITS: dict[str, Any] = dict(
    max_message_bytes=4096, hard_max_message_bytes=16384, messages_per_second=100,
    message_burst=60, error_burst=60, errors_per_second=40, max_connections_per_ip=40,
    max_rooms_per_ip=16, join_timeout_seconds=1.0, handshake_timeout_seconds=0.5,
    idle_room_seconds=3.0, close_timeout_seconds=0.5,
)
SERVER_TYPES = {"joined", "peer-joined", "peer-left", "relay", "pong", "error"}
ANY_REPLY = {"joined", "pong", *ERROR_CODES}


@dataclass
class Tally:
    inputs: int = 0
    failures: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    def fail(self, what: str) -> None:
        if len(self.failures) < 50:
            self.failures.append(what)

    def saw(self, what: str) -> None:
        self.seen[what] = self.seen.get(what, 0) + 1


def check_frame(raw: str | bytes, tally: Tally) -> dict[str, Any] | None:
    """Every server frame must be a JSON text object of a known type."""
    if not isinstance(raw, str):
        tally.fail(f"server sent a binary frame {raw[:40]!r}")
        return None
    try:
        frame = json.loads(raw)
    except ValueError:
        tally.fail(f"server sent bad JSON {raw[:80]!r}")
        return None
    if not isinstance(frame, dict) or frame.get("type") not in SERVER_TYPES:
        tally.fail(f"server sent an unknown frame {raw[:80]!r}")
        return None
    if frame["type"] == "error" and (frame.get("code") not in ERROR_CODES
                                     or not isinstance(frame.get("message"), str)):
        tally.fail(f"malformed error frame {raw[:120]!r}")
        return None
    return frame


def reply_key(frame: dict[str, Any]) -> str:
    return frame["code"] if frame["type"] == "error" else frame["type"]


# ---- generators -------------------------------------------------------------------------

def rand_text(rng: random.Random, n: int) -> str:
    alphabet = string.printable + "ü€😀\u0000\u2028{}[]\":,"
    return "".join(rng.choice(alphabet) for _ in range(n))


def rand_json_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 3 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.randint(-(2**70), 2**70)
    if pick == 3:
        return rng.uniform(-1e300, 1e300)
    if pick == 4:
        return rand_text(rng, rng.randrange(0, 80))
    if pick == 5:
        return rng.choice(["host", "candidate", "join", "relay", "ping", "a" * 16, "r" * 64])
    if pick == 6:
        return [rand_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rand_text(rng, 5): rand_json_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def malformed_json(rng: random.Random) -> str:
    valid = json.dumps({"type": "join", "room": "x" * 20, "role": "host"})
    choices = [
        lambda: rand_text(rng, rng.randrange(1, 200)),
        lambda: valid[: rng.randrange(1, len(valid))],
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 100))).decode("latin-1"),
        lambda: "[" * rng.randrange(1500, 2000),
        lambda: '{"type": "ping", "n": ' + rng.choice(["NaN", "Infinity", "-Infinity"]) + "}",
        lambda: "{" + rand_text(rng, 30),
        lambda: '{"type": "ping",}',
        lambda: "'single quotes'",
        lambda: '{"type": "relay", "data": "\\x"}',
        lambda: "",
    ]
    return rng.choice(choices)()


@dataclass
class Probe:
    """One frame to send and the replies the protocol allows for it."""

    payload: str | bytes
    allowed: set[str]
    kind: str


def make_probe(rng: random.Random, joined: bool, room_for: str) -> Probe:
    r = rng.random()
    if r < 0.20:
        return Probe(malformed_json(rng), {"bad-json"}, "malformed")
    if r < 0.30:
        value = rng.choice([[], [1, 2], "join", 7, None, True, 1.5, [{"type": "join"}]])
        return Probe(json.dumps(value), {"bad-frame"}, "not-object")
    if r < 0.38:
        kind = rng.choice(["JOIN", "relay ", "pong", "hello", "", "joined", "error"])
        return Probe(json.dumps({"type": kind, "room": room_for}), {"bad-frame"}, "bad-type")
    if r < 0.55:
        keys = rng.sample(["type", "room", "role", "data", "resume"], rng.randrange(1, 6))
        frame = {k: rand_json_value(rng) for k in keys}
        if rng.random() < 0.6:
            frame["type"] = rng.choice(["join", "relay", "ping"])
        text = json.dumps(frame)
        if len(text) > LIMITS["max_message_bytes"]:
            return Probe(text, {"too-large"}, "wrong-types-big")
        return Probe(text, ANY_REPLY, "wrong-types")
    if r < 0.60:
        return Probe(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))),
                     {"bad-frame"}, "binary")
    if r < 0.66:
        size = rng.randrange(LIMITS["max_message_bytes"] + 1, LIMITS["hard_max_message_bytes"])
        data = json.dumps({"type": "relay", "data": "A" * size})
        return Probe(data, {"too-large"}, "too-large")
    if r < 0.72:
        role = rng.choice(["host", "candidate"])
        resume = rng.choice([None, "", rand_text(rng, 32), "A" * 128])
        frame = {"type": "join", "room": CANARY_ROOM, "role": role, "resume": resume}
        return Probe(json.dumps(frame), {"bad-frame"} if joined else {"room-full"}, "canary-join")
    if r < 0.82:
        role = rng.choice(["host", "host", "candidate"])
        room = f"{room_for}-{rng.randrange(3)}"
        if joined:
            allowed = {"bad-frame"}
        elif role == "host":
            allowed = {"joined", "room-full", "too-many-rooms"}
        else:
            allowed = {"unknown-room"}
        return Probe(json.dumps({"type": "join", "room": room, "role": role}), allowed, "join")
    if r < 0.91:
        data = rand_text(rng, rng.randrange(0, 300))
        return Probe(json.dumps({"type": "relay", "data": data}),
                     {"no-peer"} if joined else {"not-joined"}, "relay")
    return Probe('{"type":"ping"}', {"pong"} if joined else {"not-joined"}, "ping")


# ---- clients ------------------------------------------------------------------------------

CLOSE_CODES_OK = {4004, 4003, 4002, 1009}


async def next_reply(client: WsClient, tally: Tally) -> dict[str, Any] | None:
    """The next reply to our own frame, skipping peer notices; None if the server closed."""
    while True:
        try:
            async with asyncio.timeout(10):
                raw = await client.ws.recv()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code not in CLOSE_CODES_OK:
                tally.fail(f"unexpected close {code}")
            tally.saw(f"close-{code}")
            return None
        except TimeoutError:
            tally.fail("no reply within 10 s")
            return None
        frame = check_frame(raw, tally)
        if frame is None:
            return None
        if frame["type"] in ("peer-joined", "peer-left"):
            continue
        return frame


async def fuzz_worker(wid: int, port: int, tally: Tally) -> None:
    rng = random.Random(SEED + wid)
    generation = 0
    while tally.inputs < TARGET_INPUTS and not tally.failures:
        generation += 1
        client = await WsClient.connect(port, max_size=None)
        joined = False
        room_for = f"fuzz-worker{wid:02d}-gen{generation:05d}"
        try:
            while tally.inputs < TARGET_INPUTS and not tally.failures:
                special = rng.random()
                if special < 0.004:
                    await flood(port, rng, tally, f"flood-{room_for}")
                    continue
                if special < 0.008:
                    tally.inputs += 1
                    try:
                        await client.send("x" * (LIMITS["hard_max_message_bytes"] + 1))
                    except ConnectionClosed:  # already closed for earlier misbehaviour
                        break
                    code, _ = await client.closed()
                    if code != 1009:
                        tally.fail(f"hard-oversized frame closed with {code}, not 1009")
                    tally.saw("hard-oversize")
                    break
                probe = make_probe(rng, joined, room_for)
                tally.inputs += 1
                try:
                    await client.send(probe.payload)
                except ConnectionClosed as exc:  # closed for earlier misbehaviour
                    code = exc.rcvd.code if exc.rcvd is not None else None
                    if code not in CLOSE_CODES_OK:
                        tally.fail(f"unexpected close {code}")
                    break
                frame = await next_reply(client, tally)
                if frame is None:
                    break
                key = reply_key(frame)
                tally.saw(f"{probe.kind}->{key}")
                if key not in probe.allowed and key != "rate-limited":
                    tally.fail(f"{probe.kind}: got {key}, allowed {sorted(probe.allowed)}; "
                               f"sent {str(probe.payload)[:100]!r}")
                if key == "joined":
                    if frame.get("room") == CANARY_ROOM:
                        tally.fail("a fuzz client joined the canary room")
                    joined = True
        finally:
            with contextlib.suppress(Exception):
                await client.close()


async def flood(port: int, rng: random.Random, tally: Tally, room: str) -> None:
    """Hundreds of frames without reading: rate-limited, then closed for misbehaving."""
    client = await WsClient.connect(port, source="127.0.0.3")
    if reply_key(await client.join(room, "host")) != "joined":
        tally.fail("a flooding client could not join its own room")
    n = rng.randrange(300, 600)
    pongs = limited = 0
    started = asyncio.get_running_loop().time()
    for _ in range(n):
        tally.inputs += 1
        try:
            await client.send('{"type":"ping"}')
        except ConnectionClosed:
            break
    while True:
        frame = await next_reply(client, tally)
        if frame is None:
            break
        key = reply_key(frame)
        pongs += key == "pong"
        limited += key == "rate-limited"
    await client.close()
    tally.saw("flood")
    if limited == 0:
        tally.fail(f"a flood of {n} frames was never rate-limited")
    elapsed = asyncio.get_running_loop().time() - started
    allowed = LIMITS["message_burst"] + LIMITS["messages_per_second"] * elapsed + 1
    if pongs > allowed:
        tally.fail(f"a flood got {pongs} answers in {elapsed:.2f} s; the bucket allows {allowed}")


async def half_open(rng: random.Random, port: int, tally: Tally) -> None:
    """TCP connect and never finish the handshake: the server must drop us."""
    tally.inputs += 1
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    what = rng.choice([b"", b"GET /ws HTTP/1.1\r\nHost: x\r\n", b"\x16\x03\x01\x00",
                       b"GET /ws HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 3000])
    writer.write(what)
    try:
        async with asyncio.timeout(10):
            while await reader.read(4096):
                pass
        tally.saw("half-open-dropped")
    except TimeoutError:
        tally.fail("a half-open TCP client was not dropped")
    finally:
        writer.close()


async def never_joins(port: int, tally: Tally) -> None:
    tally.inputs += 1
    client = await WsClient.connect(port)
    code, _ = await client.closed(timeout=10)
    if code == 4003:
        tally.saw("never-joined-closed")
    else:
        tally.fail(f"a connection that never joined was closed with {code}, not 4003")


async def connection_flood(port: int, source: str, tally: Tally) -> None:
    """More connections from one address than allowed: the extra ones are refused."""
    limit = LIMITS["max_connections_per_ip"]
    clients: list[WsClient] = []
    try:
        for _ in range(limit):
            tally.inputs += 1
            clients.append(await WsClient.connect(port, source=source))
        for _ in range(5):
            tally.inputs += 1
            extra = await WsClient.connect(port, source=source)
            frame = check_frame(await extra.ws.recv(), tally)
            if frame is None or frame.get("code") != "too-many-connections":
                tally.fail(f"connection over the per-IP limit got {frame}")
            if (await extra.closed())[0] != 4005:
                tally.fail("connection over the per-IP limit was not closed with 4005")
        # ... and room creation from one address is capped too.
        rooms = LIMITS["max_rooms_per_ip"]
        for i, client in enumerate(clients[: rooms + 3]):
            tally.inputs += 1
            reply = await client.join(f"roomflood-{source.replace('.', '_')}-{i:04d}", "host")
            key = reply_key(reply)
            want = "joined" if i < rooms else "too-many-rooms"
            if key != want:
                tally.fail(f"room flood: room {i} got {key}, want {want}")
        tally.saw("connection-flood")
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()


async def chaos(port: int, tally: Tally) -> None:
    rng = random.Random(SEED - 1)
    tasks: list[asyncio.Task[None]] = []
    for round_ in range(12):
        for _ in range(6):
            tasks.append(asyncio.create_task(half_open(rng, port, tally)))
        for _ in range(2):
            tasks.append(asyncio.create_task(never_joins(port, tally)))
        if round_ % 4 == 0:
            await connection_flood(port, f"127.0.0.{10 + round_}", tally)
        await asyncio.sleep(0.25)
    await asyncio.gather(*tasks)


# ---- the canary -------------------------------------------------------------------------

@dataclass
class Canary:
    round_trips: int = 0
    problems: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def run_canary(port: int, canary: Canary, ready: asyncio.Event) -> None:
    host = await WsClient.connect(port, source="127.0.0.2")
    candidate = await WsClient.connect(port, source="127.0.0.2")
    await host.join(CANARY_ROOM, "host")
    await candidate.join(CANARY_ROOM, "candidate")
    await host.expect("peer-joined")
    ready.set()
    rng = random.Random(SEED + 999)
    try:
        while not canary.stop.is_set():
            i = canary.round_trips
            data = f"{i}:" + "".join(rng.choice(string.ascii_letters) for _ in range(64))
            await host.send({"type": "relay", "data": data})
            got = await candidate.recv(timeout=10)
            if got != {"type": "relay", "data": data}:
                canary.problems.append(f"candidate got {got!r} for round trip {i}")
                return
            await candidate.send({"type": "relay", "data": data[::-1]})
            got = await host.recv(timeout=10)
            if got != {"type": "relay", "data": data[::-1]}:
                canary.problems.append(f"host got {got!r} for round trip {i}")
                return
            canary.round_trips += 1
            await asyncio.sleep(0.02)  # well under the per-connection rate limit
    except (ConnectionClosed, TimeoutError) as exc:
        canary.problems.append(f"canary broke after {canary.round_trips}: {exc!r}")
    finally:
        await host.close()
        await candidate.close()


async def test_fuzz_the_server_while_another_room_keeps_relaying(caplog):
    caplog.set_level(logging.WARNING)
    tally = Tally()
    canary = Canary()
    async with running_server(**LIMITS) as server:
        ready = asyncio.Event()
        canary_task = asyncio.create_task(run_canary(server.port, canary, ready))
        await asyncio.wait_for(ready.wait(), 10)
        progress = [canary.round_trips]
        chaos_task = asyncio.create_task(chaos(server.port, tally))
        workers = [asyncio.create_task(fuzz_worker(w, server.port, tally))
                   for w in range(WORKERS)]
        while True:  # the canary must advance in every full second of fuzzing
            _, pending = await asyncio.wait(workers, timeout=1.0)
            if not pending:
                break
            progress.append(canary.round_trips)
        await asyncio.gather(*workers)
        await chaos_task
        stats_during = server.stats()
        canary.stop.set()
        await canary_task
        await eventually(lambda: server.stats()["connections"] == 0, timeout=10)
        assert server.stats() == {"status": "ok", "rooms": 0, "connections": 0}

    assert tally.failures == [], tally.failures
    assert canary.problems == []
    assert tally.inputs >= 10_000, tally.inputs
    assert all(b > a for a, b in itertools.pairwise(progress)), progress
    assert canary.round_trips >= 100
    assert stats_during["rooms"] >= 1  # the canary room was still open at the end
    # The fuzzer reached every path it was meant to reach.
    for needed in ("malformed->bad-json", "binary->bad-frame", "too-large->too-large",
                   "canary-join->room-full", "join->joined", "join->unknown-room",
                   "relay->no-peer", "relay->not-joined", "ping->pong", "flood",
                   "hard-oversize", "half-open-dropped", "never-joined-closed",
                   "connection-flood", "close-4004"):
        assert tally.seen.get(needed, 0) > 0, (needed, tally.seen)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
