"""Host and candidate in one process over the real signaling server and real aiortc."""

from __future__ import annotations

import asyncio

import pytest

from assessiq.core.identity import Identity
from assessiq.core.record import SessionRecord
from assessiq.core.store import SessionStore
from assessiq.core.verify import verify_record
from assessiq.peer import Candidate, Host, PeerError
from tests.peer_helpers import FAST, eventually, joined_pair, signaling_server


async def test_connect_edit_events_end_and_verify(tmp_path):
    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "s.aiq")
        cand = await Candidate.join(host.invite.encode(), config=FAST, name="Ada")
        await host.connected(10)
        host.doc.insert_code(0, "def solve():\n", origin="host")
        cand.doc.insert_code(0, "# 🎉 hi\n", origin="candidate")
        await eventually(lambda: host.doc.code_text == cand.doc.code_text
                         and "solve" in cand.doc.code_text and "🎉" in host.doc.code_text,
                         what="convergence")
        await cand.send_event("tab.hidden", {"phase": "start", "start": 1.0, "confidence": 1})
        await cand.send_event("paste", {"phase": "instant", "chars": 12})
        await eventually(lambda: len(host.events) == 2 and not cand.outbox, what="receipts")
        assert [e.kind for e in host.events] == ["tab.hidden", "paste"]
        path = await host.end()
        await eventually(lambda: cand.ended.is_set(), what="bye")
        await cand.close()
    with SessionStore.open(path) as store:
        verdict = verify_record(SessionRecord.from_store(store))
    assert verdict.valid, verdict.errors
    assert verdict.events == 2


async def test_second_candidate_is_refused(tmp_path):
    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "s.aiq")
        cand = await Candidate.join(host.invite.encode(), config=FAST)
        try:
            with pytest.raises(PeerError, match="room already has a candidate"):
                await Candidate.join(host.invite.encode(), config=FAST, timeout=10)
        finally:
            await cand.close()
            await host.close()


async def test_link_loss_reconnects_and_resends_events(tmp_path):
    async with joined_pair(tmp_path, connect=False) as (_url, host, cand):
        # Kill the candidate's peer connection under it (like a dead network path).
        assert cand.link is not None
        await cand.link.conn.pc.close()
        await asyncio.sleep(0)
        await cand.send_event("paste", {"phase": "instant", "chars": 3})  # while down
        cand.doc.insert_code(0, "offline edit\n", origin="candidate")
        await eventually(lambda: cand.links_made >= 2 and cand.is_connected, what="relink")
        await eventually(lambda: "offline edit" in host.doc.code_text, what="resync")
        await eventually(lambda: len(host.events) == 1 and not cand.outbox, what="resend")


async def test_malformed_channel_messages_cannot_crash_the_host(tmp_path):
    async with joined_pair(tmp_path, connect=False) as (_url, host, cand):
        assert cand.link is not None and host.link is not None
        chans = {n: c.dc for n, c in cand.link.conn.channels.items()}
        junk = [b"", b"\x00", b"\x00\x01\xff\xff\xff\xff\x0f", b"\x01" * 300, "text",
                b"\x00\x02" + b"\xff" * 100, '{"t":"bye"}', "[" * 4000,
                b"\x00" * (64 * 1024)]
        for raw in junk:
            for dc in chans.values():
                dc.send(raw)
        for _ in range(50):  # a flood of garbage envelopes
            chans["integrity"].send(b'{"v":1,"seq":0}.AAAA')
        await cand.send_event("paste", {"phase": "instant", "chars": 5})
        cand.doc.insert_code(0, "still fine", origin="candidate")
        await eventually(lambda: host.doc.code_text == "still fine", what="sync")
        await eventually(lambda: len(host.events) == 1 and not cand.outbox, what="event")
        assert host.link is not None and not host.link.dead.is_set()
        assert host.link.malformed >= len(junk)
        assert len(host.integrity_errors) >= 50
        assert not host.ended.is_set()


async def test_a_flood_of_valid_messages_keeps_memory_bounded(tmp_path):
    from assessiq.peer.session import KEEP_RECENT

    async with joined_pair(tmp_path, connect=False) as (_url, host, cand):
        assert cand.link is not None
        flood = KEEP_RECENT + 150
        for i in range(flood):  # well-formed, so each one is accepted and kept
            await cand.send_control("phase", phase=f"p{i}")
        for _ in range(flood):  # well-formed envelopes that do not verify
            cand.link.conn.channels["integrity"].dc.send(b'{"v":1,"seq":0}.AAAA')
        await eventually(lambda: host.control_messages
                         and host.control_messages[-1].get("phase") == f"p{flood - 1}",
                         what="the last message")
        await eventually(lambda: len(host.integrity_errors) == KEEP_RECENT,
                         what="the errors")
        assert len(host.control_messages) == KEEP_RECENT
        assert host.control_messages[0]["phase"] == f"p{flood - KEEP_RECENT}"
        assert host.link is not None and not host.link.dead.is_set()


async def test_losing_signaling_for_good_is_said_and_the_link_goes_on(tmp_path, caplog):
    from assessiq.peer.signaling_client import SignalingClient

    async with joined_pair(tmp_path, connect=False) as (url, host, cand):
        assert host.signaling is not None
        # Whoever holds the host's resume token replaces its socket (close code 4001):
        # the host's signaling client gives up for good.
        thief = SignalingClient.for_peer(url, host.invite.room, "host", FAST)
        thief.resume = host.signaling.resume
        try:
            await thief.start()
            await eventually(lambda: "signaling is gone for good" in caplog.text,
                             what="the host saying so")
            assert host.failure is None  # a live link needs no signaling
            cand.doc.insert_code(0, "still here", origin="candidate")
            await eventually(lambda: host.doc.code_text == "still here", what="sync")
        finally:
            await thief.close()


async def test_a_host_that_fails_to_start_leaves_no_file_behind(tmp_path):
    import dataclasses

    from signaling import ServerConfig, SignalingServer
    from signaling.config import Limits

    one_room = ServerConfig(host="127.0.0.1", port=0,
                            limits=dataclasses.replace(Limits(), max_rooms=1))
    async with SignalingServer(one_room) as server:
        url = f"ws://127.0.0.1:{server.port}"
        first = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                 session_path=tmp_path / "first.aiq", runs=False)
        path = tmp_path / "second.aiq"
        with pytest.raises(PeerError, match="too-many-rooms"):
            await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                             session_path=path, runs=False)
        assert not [p for p in tmp_path.iterdir() if p.name.startswith("second")]
        await first.close()
    async with signaling_server() as url:
        again = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                 session_path=path, runs=False)  # the same path works now
        await again.close()
    assert path.exists()

async def test_closing_a_host_keeps_everything_written_unsealed(tmp_path):
    from assessiq.core.document import SharedDoc
    from assessiq.core.store import SessionStore

    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "s.aiq", runs=False)
        host.doc.insert_code(0, "kept on close", origin="host")
        await host.close()  # straight after the edit: still pending in the store
        await host.close()  # twice is harmless
    with SessionStore.open(tmp_path / "s.aiq") as store:
        assert SharedDoc(store.state_at(float("inf"))).code_text == "kept on close"
        assert store.seal_raw() is None  # closed, not ended


async def test_a_failed_join_leaves_no_file_behind(tmp_path):
    from assessiq.core.invite import make_invite

    async with signaling_server() as url:
        invite = make_invite(Identity.generate(), signaling=url)  # no host ever comes
        path = tmp_path / "cand.aiq"
        with pytest.raises(PeerError):
            await Candidate.join(invite.encode(), config=FAST, timeout=2, session_path=path)
        assert not [p for p in tmp_path.iterdir() if p.name.startswith("cand")]


async def test_a_candidate_with_a_call_joins_a_host_without_one(tmp_path):
    from assessiq.media import SYNTHETIC, MediaConfig

    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "s.aiq", runs=False)  # no media
        cand = await Candidate.join(
            host.invite.encode(), config=FAST,
            media=MediaConfig(camera=SYNTHETIC, microphone=SYNTHETIC, speaker=None, fps=10))
        try:
            assert cand.link is not None and cand.link.conn.media is None
            cand.doc.insert_code(0, "no call needed", origin="candidate")
            await eventually(lambda: host.doc.code_text == "no call needed", what="sync")
        finally:
            await cand.close()
            await host.close()


async def test_no_event_is_signed_after_the_session_ended():
    from assessiq.core.identity import Identity
    from assessiq.core.invite import make_invite
    from assessiq.peer.candidate import Candidate
    from assessiq.peer.config import PeerConfig
    from assessiq.peer.errors import PeerError

    invite = make_invite(Identity.generate(), signaling="ws://127.0.0.1:9/ws")
    cand = Candidate(invite, Identity.generate(), PeerConfig(), name=None)
    cand.ended.set()
    with pytest.raises(PeerError, match="has ended"):
        await cand.send_event("paste", {"phase": "instant", "chars": 3})
    assert cand.log == []
