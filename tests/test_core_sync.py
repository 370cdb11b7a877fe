"""DocSync: two SharedDocs kept in sync over an in-memory channel pair, with awareness."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable

import pycrdt
import pytest

from assessiq.core.channel import memory_pair
from assessiq.core.document import SharedDoc
from assessiq.core.sync import DocSync, SyncProtocol

# Bounds every wait: a broken sync fails the test instead of hanging it.
WAIT = 10.0


async def eventually(check: Callable[[], bool]) -> None:
    """Let the event loop run until `check()` holds (bounded by WAIT)."""

    async def poll() -> None:
        while not check():
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), WAIT)


async def test_two_docs_converge_over_a_memory_pair() -> None:
    a, b = SharedDoc(client_id=1), SharedDoc(client_id=2)
    a.set_code("def f():\n    return '😀'\n", origin="host")
    a.problem = "# 問題"
    end_a, end_b = memory_pair("sync")
    async with DocSync(a, end_a, origin="candidate") as sa, DocSync(b, end_b, origin="host") as sb:
        await asyncio.wait_for(asyncio.gather(sa.synced.wait(), sb.synced.wait()), WAIT)
        assert b.snapshot() == a.snapshot()
        b.insert_code(0, "# 世界\n", origin="candidate")
        a.phase = "interview"
        await eventually(lambda: a.snapshot() == b.snapshot())
        assert a.code_text.startswith("# 世界\n")
        assert b.phase == "interview"


async def test_concurrent_edits_converge() -> None:
    a, b = SharedDoc(client_id=1), SharedDoc(client_id=2)
    a.set_code("0123456789")
    b.apply_update(a.get_update())
    # Both edit before they are connected: concurrent changes.
    for i in range(50):
        a.insert_code(i % 10, "a😀")
        b.insert_code(len(b.code_text) - i % 5, "b世")
        if i % 7 == 0:
            b.delete_code(0, 1)
    a.language, b.language = "rust", "go"
    end_a, end_b = memory_pair()
    async with DocSync(a, end_a) as sa, DocSync(b, end_b) as sb:
        await asyncio.wait_for(asyncio.gather(sa.synced.wait(), sb.synced.wait()), WAIT)
        await eventually(lambda: a.snapshot() == b.snapshot())
        # And edits made while connected keep flowing both ways.
        for _ in range(20):
            a.insert_code(0, "x")
            b.insert_code(len(b.code_text), "y")
        await eventually(lambda: a.code_text == b.code_text and a.code_text.count("x") >= 20)
    assert a.snapshot() == b.snapshot()
    assert a.language in ("rust", "go")
    assert a.code_text.count("😀") == 50
    assert a.code_text.count("世") == 50


async def test_awareness_state_arrives_and_is_cleared_on_stop() -> None:
    a, b = SharedDoc(client_id=11), SharedDoc(client_id=22)
    end_a, end_b = memory_pair()
    sb = DocSync(b, end_b)
    await sb.start()
    async with DocSync(a, end_a) as sa:
        sa.awareness.set_local_state({"user": "candidate", "cursor": {"anchor": 3, "head": 5}})
        sb.awareness.set_local_state({"user": "host"})
        await eventually(lambda: sb.awareness.states.get(11, {}).get("user") == "candidate")
        await eventually(lambda: sa.awareness.states.get(22) == {"user": "host"})
        assert sb.awareness.states[11]["cursor"] == {"anchor": 3, "head": 5}
        sa.awareness.set_local_state_field("cursor", {"anchor": 4, "head": 4})
        await eventually(lambda: sb.awareness.states[11]["cursor"]["head"] == 4)
    # a stopped: it owned its awareness, so it told b it left.
    await eventually(lambda: 11 not in sb.awareness.states)
    await sb.stop()


async def test_garbage_from_the_peer_is_dropped_and_sync_goes_on(caplog) -> None:
    a = SharedDoc(client_id=1)
    a.set_code("start")
    peer_end, evil_end = memory_pair()
    rng = random.Random(7)
    good = SharedDoc(client_id=9)
    good.set_code("😀")
    good_update = good.get_update()
    garbage = [b"", b"\x00", b"\x07\x01\x02", b"\x00\x09abc", b"\x01", b"\x01\x05ab"]
    garbage += [bytes([0, rng.randrange(3)]) + os.urandom(rng.randrange(40)) for _ in range(200)]
    garbage += [bytes([1]) + os.urandom(rng.randrange(40)) for _ in range(100)]
    garbage += [bytes([1, 4, 1, 5, 0, 1, ord("[")])]  # awareness state that is not an object
    for _ in range(100):  # a real update with a few bytes flipped
        message = bytearray(pycrdt.create_update_message(good_update))
        message[rng.randrange(3, len(message))] = rng.randrange(256)
        garbage.append(bytes(message))
    with caplog.at_level(logging.WARNING, logger="assessiq.core.sync"):
        async with DocSync(a, peer_end) as sync:
            for message in garbage:
                await evil_end.send(message)
            await evil_end.send(pycrdt.create_sync_message(pycrdt.Doc()))  # a real step 1
            # The sync is still alive and answers a real step 1 with step 2.
            step2 = None
            while step2 is None:
                reply = await asyncio.wait_for(evil_end.recv(), WAIT)
                if reply[:2] == b"\x00\x01":
                    step2 = reply
            b = SharedDoc()
            b.apply_update(pycrdt.read_message(step2[2:]))
            assert "start" in b.code_text
            assert sync.dropped >= 300
    assert "malformed sync message" in caplog.text
    a.snapshot()  # still readable, whatever was merged


async def test_channel_close_ends_the_sync_and_forgets_the_peers_presence() -> None:
    a, b = SharedDoc(client_id=1), SharedDoc(client_id=2)
    awareness_b = pycrdt.Awareness(b.doc)
    end_a, end_b = memory_pair()
    sa = DocSync(a, end_a)
    sb = DocSync(b, end_b, awareness=awareness_b)
    await sa.start()
    await sb.start()
    awareness_b.set_local_state({"user": "host"})
    await eventually(lambda: 2 in sa.awareness.states)
    end_b.close()
    await asyncio.wait_for(sa.closed.wait(), WAIT)
    await eventually(lambda: 2 not in sa.awareness.states)
    await sb.stop()
    await sa.stop()


async def test_reconnect_sends_only_what_is_missing() -> None:
    a, b = SharedDoc(client_id=1), SharedDoc(client_id=2)
    awareness_a = pycrdt.Awareness(a.doc)
    awareness_a.set_local_state({"user": "candidate"})
    end_a, end_b = memory_pair()
    async with DocSync(a, end_a, awareness=awareness_a), DocSync(b, end_b) as sb:
        await eventually(lambda: 1 in sb.awareness.states)
        a.set_code("x" * 5000)
        await eventually(lambda: b.code_text == a.code_text)
    # Offline edits on both sides, then a new connection.
    a.insert_code(0, "A")
    b.insert_code(0, "B")
    end_a, end_b = memory_pair()
    sizes: list[int] = []
    original_send = end_b.send

    async def counting_send(message: bytes) -> None:
        sizes.append(len(message))
        await original_send(message)

    end_b.send = counting_send  # type: ignore[method-assign]
    async with DocSync(a, end_a, awareness=awareness_a), DocSync(b, end_b) as sb:
        await eventually(lambda: a.snapshot() == b.snapshot() and a.code_text.count("x") == 5000)
        await eventually(lambda: sb.awareness.states.get(1) == {"user": "candidate"})
    assert max(sizes) < 1000  # the 5000-character text is not sent again


async def test_start_twice_is_refused_and_stop_is_idempotent() -> None:
    end_a, _ = memory_pair()
    sync = DocSync(SharedDoc(), end_a)
    await sync.start()
    with pytest.raises(RuntimeError, match="already started"):
        await sync.start()
    await sync.stop()
    await sync.stop()


def test_protocol_without_io_and_a_three_way_hub() -> None:
    """A hub forwards a change from one peer to another (and presence too)."""
    hub, left, right = SharedDoc(client_id=1), SharedDoc(client_id=2), SharedDoc(client_id=3)
    hub_awareness = pycrdt.Awareness(hub.doc)
    pairs = [
        (SyncProtocol(hub, hub_awareness, name="hub-left"), SyncProtocol(left, name="left")),
        (SyncProtocol(hub, hub_awareness, name="hub-right"), SyncProtocol(right, name="right")),
    ]
    for x, y in pairs:
        x.open()
        y.open()

    def pump() -> None:
        moved = True
        while moved:
            moved = False
            for x, y in pairs:
                for message in x.take():
                    y.receive(message)
                    moved = True
                for message in y.take():
                    x.receive(message)
                    moved = True

    pump()
    assert all(p.synced for pair in pairs for p in pair)
    left.insert_code(0, "from left 😀")
    pairs[0][1].awareness.set_local_state({"user": "left"})
    pump()
    assert right.code_text == "from left 😀"
    assert pairs[1][1].awareness.states.get(2) == {"user": "left"}
    assert hub.snapshot() == left.snapshot() == right.snapshot()


@pytest.mark.parametrize(
    ("payload", "kind", "reason"),
    [
        (pycrdt.write_var_uint(1 << 30) + b"\x01\x02", 0, "state vector claims"),
        (pycrdt.write_var_uint(1 << 28) + b"\x01\x02\x03", 2, "update claims"),
        (b"\x01" + pycrdt.write_var_uint(1 << 28) + b"\x01\x02\x03", 1, "update claims"),
    ],
)
def test_huge_counts_are_refused_before_yrs_sees_them(payload, kind, reason, caplog) -> None:
    doc = SharedDoc()
    protocol = SyncProtocol(doc)
    with caplog.at_level(logging.WARNING, logger="assessiq.core.sync"):
        protocol.receive(bytes([0, kind]) + pycrdt.write_var_uint(len(payload)) + payload)
    assert protocol.dropped == 1
    assert reason in caplog.text
