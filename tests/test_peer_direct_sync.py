"""`DocSync` over real aiortc data channels takes the direct path: a local edit is handed to
aiortc inside the edit, a peer's update is applied inside aiortc's message handler, and a
full send buffer falls back to the send loop without reordering anything."""

from __future__ import annotations

import asyncio
from typing import Any

import pycrdt

from assessiq.core.document import SharedDoc
from assessiq.core.fragments import Reassembler
from assessiq.core.sync import DocSync
from assessiq.peer.connection import PeerConnection
from assessiq.peer.datachannel import HIGH_WATER
from tests.peer_helpers import FAST, eventually


async def connected_pair() -> tuple[PeerConnection, PeerConnection]:
    a, b = PeerConnection(FAST), PeerConnection(FAST)
    await a.accept(await b.answer(await a.offer()))
    await asyncio.gather(a.wait_open(10), b.wait_open(10))
    return a, b


async def test_an_edit_is_sent_and_applied_without_waiting_for_a_task() -> None:
    a, b = await connected_pair()
    doc_a, doc_b = SharedDoc(), SharedDoc()
    seen_in_handler: list[str] = []
    try:
        async with DocSync(doc_a, a.channels["sync"], origin="b") as sync_a, \
                DocSync(doc_b, b.channels["sync"], origin="a") as sync_b:
            await asyncio.gather(sync_a.synced.wait(), sync_b.synced.wait())
            # aiortc calls message handlers in the order they were added: this one runs
            # right after the channel's own, so it sees whether the update is applied yet.
            b.channels["sync"].dc.on("message",
                                      lambda _m: seen_in_handler.append(doc_b.code_text))
            dc_a = a.channels["sync"].dc
            before = dc_a.bufferedAmount
            doc_a.insert_code(0, "print(1)")
            # Handed to aiortc by the edit itself, not by a task that has not run yet.
            assert dc_a.bufferedAmount > before
            await eventually(lambda: doc_b.code_text == "print(1)", 10, "the edit arriving")
            assert seen_in_handler[-1] == "print(1)"
    finally:
        await a.close()
        await b.close()


async def test_a_full_send_buffer_falls_back_to_the_loop_in_order() -> None:
    a, b = await connected_pair()
    doc_a, doc_b = SharedDoc(), SharedDoc()
    sent: list[bytes] = []
    received: list[bytes] = []
    try:
        async with DocSync(doc_a, a.channels["sync"], origin="b") as sync_a, \
                DocSync(doc_b, b.channels["sync"], origin="a") as sync_b:
            await asyncio.gather(sync_a.synced.wait(), sync_b.synced.wait())
            doc_a.observe_updates(lambda update, _o: sent.append(update))

            frames = Reassembler()  # the wire carries the sync messages in frames

            def on_message(frame: Any) -> None:
                message = frames.feed(bytes(frame))
                if message is not None and message[:2] == bytes(
                        (pycrdt.YMessageType.SYNC, pycrdt.YSyncMessageType.SYNC_UPDATE)):
                    received.append(message)

            b.channels["sync"].dc.on("message", on_message)
            dc_a = a.channels["sync"].dc
            chunk = "#" * (200 * 1024)  # under the 256 KiB message limit
            full_at = None
            for i in range(8):  # no await: aiortc cannot drain anything meanwhile
                doc_a.insert_code(len(doc_a.code_text), chunk)
                if full_at is None and dc_a.bufferedAmount > HIGH_WATER:
                    full_at = i
            assert full_at is not None and full_at < 7, "the buffer never filled"
            for word in ("one", "two", "three"):
                doc_a.insert_code(len(doc_a.code_text), word)
            # The edits after the buffer filled were held back, not handed to aiortc.
            assert dc_a.bufferedAmount < (full_at + 2) * (len(chunk) + 64)
            expected = chunk * 8 + "onetwothree"
            await eventually(lambda: doc_b.code_text == expected, 30, "every edit arriving")
            assert received == [pycrdt.create_update_message(u) for u in sent]
    finally:
        await a.close()
        await b.close()


async def test_a_listener_gets_queued_messages_first_and_its_bugs_stay_in_the_log(
        caplog: Any) -> None:
    a, b = await connected_pair()
    try:
        for word in (b"one", b"two"):
            await a.channels["integrity"].send(word)
        channel = b.channels["integrity"]
        await eventually(lambda: channel._inbox.qsize() == 2, 10, "two queued messages")
        got: list[bytes] = []

        def listener(message: bytes) -> None:
            got.append(message)
            if message == b"two":
                raise RuntimeError("a bug in the consumer")

        channel.listen(listener)
        assert got == [b"one", b"two"]  # the queued ones, in order, at once
        assert channel.dropped == 1 and "the listener failed" in caplog.text
        await a.channels["integrity"].send(b"three")
        await eventually(lambda: got[-1:] == [b"three"], 10, "a message after the failure")
        channel.listen(None)
        await a.channels["integrity"].send(b"four")
        assert await asyncio.wait_for(channel.recv(), 10) == b"four"
        assert got[-1] == b"three"
    finally:
        await a.close()
        await b.close()
