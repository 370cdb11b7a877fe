"""One aiortc connection on loopback: channels open, messages flow as a `Channel`, the DTLS
certificate is bound to the signed SDP, and a garbage-sending peer cannot hurt the other."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from assessiq.core.errors import ChannelClosed
from assessiq.peer.connection import PeerConnection, check_dtls_binding
from assessiq.peer.errors import ConnectError
from assessiq.peer.link import Link
from tests.peer_helpers import FAST

SMALL = dataclasses.replace(FAST, max_message_bytes=64 * 1024)


async def connected_pair():
    a, b = PeerConnection(FAST), PeerConnection(SMALL)
    offer = await a.offer()
    answer = await b.answer(offer)
    await a.accept(answer)
    await asyncio.gather(a.wait_open(10), b.wait_open(10))
    return a, b


async def test_channels_open_and_carry_bytes():
    a, b = await connected_pair()
    try:
        assert set(a.channels) == set(b.channels) == {"sync", "integrity", "control"}
        await a.channels["sync"].send(b"\x00hello")
        assert await b.channels["sync"].recv() == b"\x00hello"
        big = bytes(range(256)) * 200
        await b.channels["integrity"].send(big)
        assert await a.channels["integrity"].recv() == big
    finally:
        await a.close()
        await b.close()
    with pytest.raises(ChannelClosed):
        await b.channels["sync"].recv()


async def test_dtls_binding_detects_a_swapped_fingerprint():
    a, b = await connected_pair()
    try:
        check_dtls_binding(a.pc, a.remote_sdp, a.local_sdp)  # the real one passes
        # An SDP whose fingerprint was swapped (what a MITM signaling server would do).
        fake = b.local_sdp
        for line in fake.splitlines():
            if line.startswith("a=fingerprint:sha-256 "):
                fake = fake.replace(line, "a=fingerprint:sha-256 " + ":".join(["AB"] * 32))
        with pytest.raises(ConnectError, match="in the middle"):
            check_dtls_binding(a.pc, fake, a.local_sdp)
        with pytest.raises(ConnectError, match="our own DTLS"):
            check_dtls_binding(a.pc, a.remote_sdp, fake)
    finally:
        await a.close()
        await b.close()


async def test_garbage_and_oversized_messages_do_not_break_the_link():
    a, b = await connected_pair()
    received: list[bytes] = []

    async def echo(channel):
        async for raw in channel:
            received.append(raw)

    link = Link(b, {"sync": echo, "integrity": echo})
    task = asyncio.create_task(link.run())
    try:
        ctl = a.channels["control"].dc
        for junk in (b"\xff" * 10, "not json", '{"t":"ping"}', '{"t":"bye"}', "[" * 3000,
                     b"x" * 5000, '{"t":"ping","id":1,"at":1,"evil":2}'):
            ctl.send(junk)
        a.channels["integrity"].dc.send(b"y" * (SMALL.max_message_bytes + 10))  # oversized
        a.channels["integrity"].dc.send("text is fine")
        a.channels["sync"].dc.send("text, unframed")  # the sync channel's frames: refused
        a.channels["sync"].dc.send(b"\x00framed")
        await a.channels["control"].send(b'{"t":"ping","id":7,"at":1}')
        pong = await asyncio.wait_for(a.channels["control"].recv(), 5)
        while b'"pong"' not in pong or b"7" not in pong:
            pong = await asyncio.wait_for(a.channels["control"].recv(), 5)
        await asyncio.sleep(0.2)
        assert link.malformed == 7
        assert b.channels["integrity"].dropped == 1
        assert b.channels["sync"].dropped == 1
        assert sorted(received) == [b"framed", b"text is fine"]
        assert not link.dead.is_set()
    finally:
        await link.close()
        task.cancel()
        await a.close()
