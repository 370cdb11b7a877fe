"""The candidate's restart is signed once, where the host's chain says, and the interviewer's
admission prompt never goes stale (issue 15's review): failed resume attempts sign nothing; a
second laptop killed while it waited continues the chain from the host's head; the
interviewer decides on the device shown, a request is dropped when the pinned device comes
back or after `ADMISSION_WAIT_S`, and a failed admission write changes nothing. Real peers over
the real signaling server on 127.0.0.1 (and a child process where a kill is needed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest

from assessiq.core import handshake
from assessiq.core.errors import AssessIQError, StoreError
from assessiq.core.handshake import CandidateHandshake, HandshakeError, HostHandshake, Opened
from assessiq.core.identity import Identity
from assessiq.core.integrity import Envelope, EventSigner
from assessiq.core.invite import make_invite
from assessiq.core.record import SessionRecord
from assessiq.core.verify import verify_record
from assessiq.peer import Candidate, Host
from assessiq.peer.candidate import ResumeError, _create_store
from assessiq.peer.config import PeerConfig
from assessiq.peer.errors import PeerError
from tests.peer_helpers import FAST, eventually, signaling_server
from tests.test_resume_candidate import Child, chain_is_whole, hosted

SDP = "v=0\r\na=fingerprint:sha-256 AA:BB\r\n"
NOTE = {"phase": "instant", "text": "n"}


def resumed(events) -> list[int]:
    return [e.seq for e in events if e.kind == "session.resumed"
            and e.data.get("side") == "candidate"]


async def test_failed_resume_attempts_sign_no_restart(tmp_path):
    """The interviewer's app is down; the candidate's app tries to resume three times in
    vain, then the host comes back: one restart in the record, and it costs nothing."""
    cand_file = tmp_path / "c.aiq"
    async with signaling_server() as url:
        host = await Host.start(signaling=url, config=FAST, identity=Identity.generate(),
                                session_path=tmp_path / "h.aiq", runs=False)
        first = await Candidate.join(host.invite.encode(), config=FAST, session_path=cand_file)
        await first.send_event("session.note", NOTE)
        await eventually(lambda: len(host.events) == 1)
        await first.close()
        await host.close()  # the interviewer's app is down too
        for _ in range(3):
            with pytest.raises(PeerError):  # (the room has no host: it cannot be joined)
                await Candidate.resume(host.invite, session_path=cand_file, config=FAST,
                                       timeout=1.0)
        stored = [Envelope.decode(raw) for _, raw in SessionRecord.load(cand_file).envelopes]
        assert resumed(stored) == [], "a failed attempt signed a restart"
        again = await Host.resume(tmp_path / "h.aiq", identity=host.identity, config=FAST,
                                  runs=False)
        try:
            cand = await Candidate.resume(host.invite, session_path=cand_file, config=FAST)
            try:
                await eventually(lambda: len(again.events) == 2, 10, "the restart")
                assert resumed(cand.log) == [1] and not cand.outbox
                # a reconnect within the same app run signs no other restart
                assert again.link is not None
                await again.link.close()
                await again.connected(15)
                await cand.send_event("session.note", NOTE)
                await eventually(lambda: len(again.events) == 3, 10)
                assert resumed(again.events) == [1] and not again.integrity_errors
            finally:
                await cand.close()
            path = await again.end()
        finally:
            await again.close()
    verdict = verify_record(SessionRecord.load(path))
    assert verdict.valid, verdict.errors
    assert verdict.evaluation is not None
    assert [r.side for r in verdict.evaluation.restarts].count("candidate") == 1
    assert verdict.evaluation.score == 100


async def test_a_second_laptop_killed_while_it_waited_continues_the_hosts_chain(tmp_path):
    """Another machine waits for the interviewer, is killed, joins again from its own
    file and is admitted: its events go on from the host's head, none refused."""
    other_file, other_data = tmp_path / "other.aiq", tmp_path / "other-data"
    async with hosted(tmp_path) as (host, invite):
        first = await Candidate.join(host.invite.encode(), config=FAST,
                                     session_path=tmp_path / "first.aiq")
        for _ in range(2):
            await first.send_event("session.note", NOTE)
        await eventually(lambda: len(host.events) == 2)
        await first.close()
        head = len(host.events)
        waiting = await Child.start("other", str(invite), str(other_file), data_dir=other_data)
        await eventually(lambda: host.pending_device is not None, 15, "the waiting laptop")
        killed = host.pending_device
        await waiting.kill()  # killed before the interviewer decided
        assert other_file.exists()
        back = await Child.start("other", str(invite), str(other_file), data_dir=other_data)
        # its new hello replaces the killed app's request
        await eventually(lambda: host.pending_device not in (None, killed), 15, "it asks")
        pending = host.pending_device
        assert pending is not None
        await host.admit_device(True, fingerprint=pending.fingerprint)
        await back.expect("JOINED")
        synced = json.loads(await back.expect("SYNCED"))
        assert not host.integrity_errors and not host.refusals
        chain_is_whole(host)
        assert resumed(host.events) == [head]
        assert all(e.signed_by(pending.request.device_key) for e in host.events[head:])
        assert synced["receipts"] == synced["events"] == len(host.events) - head
        path = await host.end()
        assert await back.exit_code() == 0
    verdict = verify_record(SessionRecord.load(path))
    assert verdict.valid, verdict.errors


async def test_events_signed_before_the_admission_are_signed_again_after_the_head(tmp_path):
    """A file whose events were signed at positions the host filled with the first device's
    (never receipted) is set aside: the chain goes on from the host's head, those events are
    signed again after the admission's restart, and a later resume checks the file from
    there."""
    async with signaling_server() as url:
        host = await Host.start(signaling=url, config=FAST, identity=Identity.generate(),
                                session_path=tmp_path / "h.aiq", runs=False)
        try:
            first = await Candidate.join(host.invite.encode(), config=FAST,
                                         session_path=tmp_path / "a.aiq")
            for _ in range(3):
                await first.send_event("session.note", NOTE)
            await eventually(lambda: len(host.events) == 3)
            await first.close()
            # laptop 2's file, as an app that signed before it was admitted left it
            laptop = Candidate(host.invite, Identity.generate(), PeerConfig(), "Laptop 2")
            store = _create_store(laptop, tmp_path / "b.aiq", url)
            early = EventSigner(host.invite.room, laptop.device)
            store.append_envelope(early.sign("session.resumed", {
                "phase": "instant", "side": "candidate", "away_s": 1.0, "last_seen": 1.0,
                "why": "x"}).raw)
            store.append_envelope(early.sign("browser.tab_hidden", {"phase": "instant"}).raw)
            store.close()
            laptop.store = store
            laptop._unlock()
            joining = asyncio.create_task(Candidate.join(
                host.invite.encode(), config=FAST, session_path=tmp_path / "b.aiq"))
            await eventually(lambda: host.pending_device is not None, 10)
            await host.admit_device(True)
            second = await joining
            try:
                assert second.resumed_from == tmp_path / "b.aiq" and second.admitted_from == 3
                assert [(e.seq, e.kind) for e in second.log] == [
                    (3, "session.resumed"), (4, "browser.tab_hidden")]
                assert second.log[0].data["why"].startswith("another device")
                await eventually(lambda: len(host.events) == 5 and not second.outbox, 10)
            finally:
                await second.close()
            again = await Candidate.join(host.invite.encode(), config=FAST,
                                         session_path=tmp_path / "b.aiq")
            try:
                assert [e.seq for e in again.log] == [3, 4, 5]
                await eventually(lambda: len(host.events) == 6, 10)
            finally:
                await again.close()
            assert not host.integrity_errors and not host.refusals
            chain_is_whole(host)
            assert resumed(host.events) == [3, 5]
        finally:
            await host.close()


def test_the_interviewer_decides_on_the_device_shown_while_it_is_current():
    host = Identity.generate()
    invite = make_invite(host, signaling="ws://127.0.0.1:9")
    hh = HostHandshake(invite, host)
    first, other = Identity.generate(), Identity.generate()
    ch = CandidateHandshake(invite, first)
    hh.receive(ch.hello())
    ch.receive(hh.offer(SDP))
    hh.receive(ch.answer(SDP))
    asking = CandidateHandshake(invite, other)
    pending = hh.receive(asking.hello())
    assert hh.pending is pending
    # another device's fingerprint than the one waiting: refused, nothing changes
    with pytest.raises(HandshakeError, match="decide on the one shown now") as info:
        hh.admit_pending(first.fingerprint)
    assert "\n" not in str(info.value)
    with pytest.raises(HandshakeError, match="decide on the one shown now"):
        hh.refuse_pending("no", first.fingerprint)
    assert hh.pending is pending and hh.device_key == first.public_key
    # the pinned device comes back: the request is dropped (the host tells both)
    assert isinstance(hh.receive(CandidateHandshake(invite, first).hello()), Opened)
    assert hh.pending is None and hh.dropped is pending
    with pytest.raises(HandshakeError, match="no other device"):
        hh.admit_pending(other.fingerprint)
    # a request no one decided on expires after ADMISSION_WAIT_S
    again = hh.receive(CandidateHandshake(invite, other).hello())
    assert hh.expire(again.at + handshake.ADMISSION_WAIT_S - 1) is None
    with pytest.raises(HandshakeError, match="expired"):
        hh.admit_pending(other.fingerprint, now=again.at + handshake.ADMISSION_WAIT_S)
    assert hh.pending is None and hh.device_key == first.public_key


async def test_the_hosts_prompt_never_goes_stale(tmp_path, monkeypatch):
    """(The signaling server lets one candidate app into the room at a time: the pinned
    device comes back once the other one's app has gone.)"""
    async with signaling_server() as url:
        host = await Host.start(signaling=url, config=FAST, identity=Identity.generate(),
                                session_path=tmp_path / "h.aiq", runs=False)
        heard: list[str] = []
        host.listeners.append(heard.append)
        first = await Candidate.join(host.invite.encode(), config=FAST,
                                     session_path=tmp_path / "a.aiq")
        try:
            await first.send_event("session.note", NOTE)
            await eventually(lambda: len(host.events) == 1)
            first_key = host.device_key
            await first.close()  # its app dies

            laptop = asyncio.create_task(Candidate.join(
                host.invite.encode(), config=FAST, session_path=tmp_path / "b.aiq"))
            await eventually(lambda: host.pending_device is not None, 10)
            pending = host.pending_device
            assert pending is not None
            # the page showed another device: refused in one line, nothing changes
            with pytest.raises(HandshakeError, match="decide on the one shown now"):
                await host.admit_device(True, fingerprint=first.device.fingerprint)
            # the admission cannot be written: the old device stays pinned
            import assessiq.peer.host as host_module

            def cannot_write(*args: object, **kwargs: object) -> None:
                raise StoreError("disk full")

            with monkeypatch.context() as patch:
                patch.setattr(host_module, "record_admission", cannot_write)
                with pytest.raises(StoreError):
                    await host.admit_device(True, fingerprint=pending.fingerprint)
            assert host.device_key == first_key and host.verifier is not None
            assert host.verifier.device_key == first_key and host.pending_device is pending
            # the laptop's app is closed, and the pinned device comes back: the request
            # it left is dropped, and the page is told
            laptop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await laptop
            heard.clear()
            first = await Candidate.join(host.invite.encode(), config=FAST,
                                         session_path=tmp_path / "a.aiq")
            assert first.resumed_from == tmp_path / "a.aiq"
            await eventually(lambda: host.pending_device is None, 10, "the request dropped")
            assert "pending_device" in heard
            await first.close()

            # a request no one decides on expires (ADMISSION_WAIT_S, shortened): the page
            # and the waiting device are told
            monkeypatch.setattr(handshake, "ADMISSION_WAIT_S", 1.0)
            late = asyncio.create_task(Candidate.join(
                host.invite.encode(), config=FAST, session_path=tmp_path / "c.aiq"))
            await eventually(lambda: host.pending_device is not None, 10)
            heard.clear()
            await eventually(lambda: host.pending_device is None, 5, "the request expired")
            assert "pending_device" in heard
            with pytest.raises(AssessIQError, match="did not decide in time"):
                await asyncio.wait_for(late, 10)
            assert host.device_key == first_key and not host.integrity_errors
            assert [e.kind for e in host.events].count("session.resumed") == 1
        finally:
            await first.close()
            await host.close()


async def test_a_document_that_does_not_replay_is_a_resume_error(tmp_path):
    invite = make_invite(Identity.generate(), signaling="ws://127.0.0.1:9")
    cand = Candidate(invite, Identity.generate(), PeerConfig(), "Ada")
    path = tmp_path / "c.aiq"
    store = _create_store(cand, path, "ws://127.0.0.1:9")
    cand.doc.insert_code(0, "print(1)\n")
    store.record_update(b"\x01\x02junk", origin="candidate")  # (a damaged update)
    store.close()
    cand.store = store
    cand._unlock()
    with pytest.raises(ResumeError, match="does not replay") as info:
        await Candidate.resume(invite, session_path=path)
    assert "\n" not in str(info.value)
    assert not Path(f"{path}.lock").exists()  # released: it can be tried again
