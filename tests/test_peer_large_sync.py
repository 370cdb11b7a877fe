"""No size breaks sync: a host and a joined candidate over real aiortc data channels.

A 10 MB paste and a 100,000-line file from either side arrive intact on the other (the sync
channel carries them in 64 KiB frames, `assessiq.core.fragments`); a sync channel killed in
the middle of a transfer makes the session rebuild the link by itself, with no edit lost; and
a modified peer's oversize or malformed frame stream is refused, recorded in the session file,
and the honest session goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from assessiq.core.fragments import FIRST, MIN_PART
from assessiq.core.record import SessionRecord
from assessiq.core.store import SessionStore
from assessiq.core.varints import write_varint
from assessiq.core.verify import verify_record
from assessiq.peer.session import PeerSession
from bench.common import varied_text
from tests.peer_helpers import eventually, joined_pair

TEN_MB = 10 * 1000 * 1000


def lines_file(count: int, who: str) -> str:
    return "".join(f"    x_{i} = solve({who!r}, {i})  # line {i}\n" for i in range(count))


def digest(session: PeerSession) -> str:
    return hashlib.sha256(session.doc.code_text.encode()).hexdigest()


async def arrives(sender: PeerSession, receiver: PeerSession, text: str, what: str) -> None:
    sender.doc.insert_code(len(sender.doc.code_text), text, origin=sender.role)
    want = digest(sender)
    size = len(sender.doc.code_text)
    # The length is cheap to read; the digest is checked once the length matches.
    await eventually(lambda: len(receiver.doc.code_text) == size, 60, what)
    assert digest(receiver) == want
    assert sender.is_connected and receiver.is_connected


@pytest.mark.parametrize("direction", ["host to candidate", "candidate to host"])
async def test_a_10_mb_paste_arrives_intact(tmp_path: Path, direction: str) -> None:
    async with joined_pair(tmp_path) as (_, host, cand):
        sender, receiver = (host, cand) if direction == "host to candidate" else (cand, host)
        links = (host.links_made, cand.links_made)
        await arrives(sender, receiver, varied_text(TEN_MB, direction), "the 10 MB paste")
        # ...over the same link, and the other way still works at keystroke size.
        receiver.doc.insert_code(0, "# ok\n", origin=receiver.role)
        await eventually(lambda: sender.doc.code_text.startswith("# ok\n"), 10, "a reply")
        assert (host.links_made, cand.links_made) == links
        assert host.refused_total == cand.refused_total == 0


@pytest.mark.parametrize("direction", ["host to candidate", "candidate to host"])
async def test_a_100000_line_file_arrives_intact(tmp_path: Path, direction: str) -> None:
    async with joined_pair(tmp_path) as (_, host, cand):
        sender, receiver = (host, cand) if direction == "host to candidate" else (cand, host)
        text = lines_file(100_000, sender.role)
        await arrives(sender, receiver, text, "the 100,000-line file")
        assert receiver.doc.code_text.count("\n") == 100_000
        assert host.refused_total == cand.refused_total == 0


async def test_a_sync_channel_killed_mid_transfer_recovers_with_no_edit_lost(
    tmp_path: Path,
) -> None:
    async with joined_pair(tmp_path) as (_, host, cand):
        assert cand.link is not None
        incoming = cand.link.conn.channels["sync"]
        pasted = varied_text(TEN_MB, "killed")
        host.doc.insert_code(0, pasted, origin="host")
        await eventually(lambda: incoming.partial > 0, 20, "the paste half-way")
        incoming.dc.close()  # the candidate's end of the sync channel dies mid-message
        # Edits on both sides while the link is down or being rebuilt.
        cand.doc.insert_code(0, "# candidate, meanwhile\n", origin="candidate")
        host.doc.insert_code(len(host.doc.code_text), "# host, meanwhile\n", origin="host")
        await eventually(lambda: cand.links_made >= 2 and host.links_made >= 2
                         and cand.is_connected and host.is_connected, 30, "the new link")
        await eventually(lambda: len(cand.doc.code_text) == len(host.doc.code_text)
                         == TEN_MB + 23 + 18, 30, "convergence")
        assert digest(host) == digest(cand)
        text = host.doc.code_text  # the candidate's line went in concurrently with the paste
        for line in ("# candidate, meanwhile\n", "# host, meanwhile\n"):
            assert text.count(line) == 1
            text = text.replace(line, "")
        assert text == pasted


async def test_a_sync_that_stops_with_its_channel_open_rebuilds_the_link(
    tmp_path: Path,
) -> None:
    """DocSync gives up on a channel that aiortc still reports open (the 256 KiB send
    error did this before): the session must not stay "connected" without syncing."""
    from assessiq.core.errors import ChannelClosed

    async with joined_pair(tmp_path) as (_, host, cand):
        assert host.link is not None
        channel = host.link.conn.channels["sync"]

        def broken(message: bytes) -> bool:
            raise ChannelClosed("the test breaks this sync")

        channel.send_nowait = broken  # type: ignore[method-assign]
        host.doc.insert_code(0, "lost on the broken link? ", origin="host")
        await eventually(lambda: host.links_made >= 2 and cand.links_made >= 2
                         and host.is_connected and cand.is_connected, 30, "the new link")
        cand.doc.insert_code(len(cand.doc.code_text), "no.", origin="candidate")
        await eventually(lambda: host.doc.code_text == cand.doc.code_text
                         == "lost on the broken link? no.", 20, "convergence")
        assert channel.dc.readyState != "open"  # the old link really was torn down


def first_frame(total: int, part: bytes) -> bytes:
    head = bytearray((FIRST,))
    write_varint(total, head)
    return bytes(head) + part


async def test_a_modified_peers_oversize_or_malformed_frames_are_refused_and_recorded(
    tmp_path: Path,
) -> None:
    async with joined_pair(tmp_path) as (_, host, cand):
        assert cand.link is not None and host.link is not None
        link = host.link
        dc = cand.link.conn.channels["sync"].dc
        part = b"\x00" * MIN_PART
        # All sent in one go (no await): nothing honest is framed in between.
        dc.send(first_frame(1 << 30, part))           # 1 GiB announced: over the cap
        dc.send(b"\x02\x01" + part)                   # a part of no message
        dc.send(b"\x09junk")                          # an unknown tag
        dc.send(first_frame(60 << 20, part))          # 60 MiB begun (admitted, never ended)
        dc.send(b"\x00\x00\x01x")                     # ...then a whole message inside it
        dc.send(first_frame(16 << 20, b"\x01" * 60_000))  # past the rate cap's burst
        dc.send(b"\x00end")                           # ends the refused message's frames
        await eventually(lambda: host.refused_total >= 6, 20, "the refusals")
        reasons = [r["reason"] for r in host.refused if r["channel"] == "sync"]
        for expected in ("over the 67108864-byte limit", "no message begun",
                         "unknown frame tag", "whole message inside an incomplete",
                         "over the inbound rate cap", "whole message inside an incomplete"):
            assert any(expected in reason for reason in reasons), (expected, reasons)
            reasons.remove(next(r for r in reasons if expected in r))
        assert host.refused_total == 6
        # The honest session goes on, on the same link.
        cand.doc.insert_code(0, "still syncing", origin="candidate")
        await eventually(lambda: host.doc.code_text == "still syncing", 20, "sync, one way")
        host.doc.insert_code(len(host.doc.code_text), "!", origin="host")
        await eventually(lambda: cand.doc.code_text == "still syncing!", 20, "and back")
        assert host.link is link and not link.dead.is_set()
        path = await host.end()
    with SessionStore.open(path) as store:
        verdict = verify_record(SessionRecord.from_store(store)).to_json()
    assert verdict["valid"], verdict
    assert verdict["refused"] == 6
    assert {r["channel"] for r in verdict["refusals"]} == {"sync"}
    assert any("rate cap" in r["reason"] for r in verdict["refusals"])


async def test_an_honest_session_with_large_pastes_refuses_nothing(tmp_path: Path) -> None:
    async with joined_pair(tmp_path) as (_, host, cand):
        await arrives(cand, host, varied_text(3_000_000, "one"), "a paste")
        await arrives(host, cand, varied_text(3_000_000, "two"), "a paste back")
        await asyncio.sleep(0)
        path = await host.end()
    with SessionStore.open(path) as store:
        verdict = verify_record(SessionRecord.from_store(store)).to_json()
    assert verdict["valid"] and verdict["refused"] == 0 and verdict["refusals"] == []
