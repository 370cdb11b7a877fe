"""Another device for the same candidate, without processes: the handshake holds it for the
interviewer, an admission continues the same chain under the new key (live and offline), and
the signed admission entry cannot be forged or reordered."""

from __future__ import annotations

import asyncio

import pytest

from assessiq.core.admission import (
    ADMITTED,
    admissions,
    current_device,
    key_schedule,
    record_admission,
)
from assessiq.core.encoding import b64e
from assessiq.core.errors import AssessIQError
from assessiq.core.handshake import (
    CandidateHandshake,
    HandshakeError,
    Head,
    HostHandshake,
    Opened,
    Pending,
    Waiting,
    seal_message,
)
from assessiq.core.identity import Identity
from assessiq.core.integrity import (
    ClockRule,
    EventSigner,
    IntegrityError,
    LogVerifier,
    check_log,
)
from assessiq.core.invite import make_invite
from assessiq.core.store import SessionStore

SDP = "v=0\r\na=fingerprint:sha-256 AA:BB\r\n"


@pytest.fixture
def parties():
    host = Identity.generate()
    invite = make_invite(host, signaling="ws://127.0.0.1:9")
    return host, invite, HostHandshake(invite, host)


def joined(invite, hh: HostHandshake, device: Identity) -> None:
    ch = CandidateHandshake(invite, device)
    assert isinstance(hh.receive(ch.hello()), Opened)
    ch.receive(hh.offer(SDP))
    hh.receive(ch.answer(SDP))


def test_an_admitted_device_gets_the_held_attempt_and_the_head(parties):
    _host, invite, hh = parties
    first, second = Identity.generate(), Identity.generate()
    joined(invite, hh, first)
    ch = CandidateHandshake(invite, second, name="New laptop")
    pending = hh.receive(ch.hello())
    assert isinstance(pending, Pending) and pending.request.name == "New laptop"
    assert pending.fingerprint == second.fingerprint
    # the same device asks again (a new attempt): the newest request is the one held
    ch = CandidateHandshake(invite, second, name="New laptop")
    again = hh.receive(ch.hello())
    assert isinstance(again, Pending) and hh.pending is again
    admitted = hh.admit_pending()
    assert admitted is again and hh.pending is None and hh.device_key == second.public_key
    head = Head(7, "ab" * 32, 1234.5)
    got = ch.receive(hh.offer(SDP, head=head))
    assert isinstance(got, Opened) and ch.offer_head == head
    assert isinstance(hh.receive(ch.answer(SDP)), Opened)
    # the first device is now the other one
    old = CandidateHandshake(invite, first)
    assert isinstance(hh.receive(old.hello()), Pending)
    with pytest.raises(HandshakeError, match="no other device"):
        HostHandshake(invite, _host).admit_pending()


def test_a_stale_or_foreign_request_from_another_device_is_refused_not_held(parties):
    _host, invite, hh = parties
    joined(invite, hh, Identity.generate())
    ch = CandidateHandshake(invite, Identity.generate())
    with pytest.raises(HandshakeError, match="stale") as info:
        hh.receive(ch.hello(now=1.0))
    assert info.value.attempt == ch.attempt and hh.pending is None


def test_a_malformed_head_or_a_forged_wait_is_refused(parties):
    host, invite, hh = parties
    ch = CandidateHandshake(invite, Identity.generate())
    hh.receive(ch.hello())
    body = {"v": 1, "kind": "offer", "room": invite.room, "dir": "h2c", "attempt": ch.attempt,
            "n": 0, "sdp": SDP, "device": b64e(ch.device.public_key), "head_seq": -1,
            "head_hash": "00" * 32, "head_t": 1.0}
    with pytest.raises(HandshakeError, match="malformed log head"):
        ch.receive(seal_message(hh.key, invite.room, "h2c", host, body))
    wait = {"v": 1, "kind": "wait", "room": invite.room, "dir": "h2c", "attempt": ch.attempt,
            "n": 0, "reason": "x"}
    with pytest.raises(HandshakeError, match="impersonating"):
        ch.receive(seal_message(hh.key, invite.room, "h2c", Identity.generate(), wait))
    assert isinstance(ch.receive(seal_message(hh.key, invite.room, "h2c", host, wait)), Waiting)


def test_the_chain_goes_on_under_the_admitted_key_live_and_offline():
    session = "room-1"
    first, second = Identity.generate(), Identity.generate()
    rule = ClockRule(offset=0.0, bound=30.0, start=1000.0)
    a = EventSigner(session, first, clock=lambda: 1010.0)
    raws = [a.sign("session.note").raw, a.sign("session.note").raw]
    verifier = LogVerifier(session, first.public_key, rule)
    for raw in raws:
        verifier.accept(raw, 1010.0)
    # the new machine's clock is 40 s behind: held to its own offset, dated on its own clock
    assert verifier.rotate(second.public_key, -40.0) == 2
    b = EventSigner(session, second, next_seq=2, prev=verifier.head)
    raws += [b.sign("session.resumed", now=980.0).raw, b.sign("session.note", now=985.0).raw]
    with pytest.raises(IntegrityError, match="not the candidate's device key"):
        verifier.accept(EventSigner(session, first, next_seq=2, prev=verifier.head,
                                    last_t=1010.0).sign("x.y", now=1011.0).raw, 1011.0)
    verifier.accept(raws[2], 1020.0)
    verifier.accept(raws[3], 1025.0)
    arrivals = [1010.0, 1010.0, 1020.0, 1025.0]
    ok = check_log(session, first.public_key, raws, arrivals=arrivals, clock=rule,
                   rotations=[(2, second.public_key, -40.0)])
    assert ok.errors == [] and len(ok.events) == 4
    without = check_log(session, first.public_key, raws, arrivals=arrivals, clock=rule)
    assert any("not the candidate's device key" in e for e in without.errors)
    # held to the first device's clock, its events are 40 s back-dated
    same_clock = check_log(session, first.public_key, raws, arrivals=arrivals, clock=rule,
                           rotations=[(2, second.public_key, 0.0)])
    assert any("back-dated" in e for e in same_clock.errors)
    too_early = check_log(session, first.public_key, raws, arrivals=arrivals, clock=rule,
                          rotations=[(1, second.public_key, -40.0)])
    assert too_early.errors


def store_with(tmp_path, host: Identity, first: Identity) -> SessionStore:
    return SessionStore.create(tmp_path / "h.aiq", {
        "session": "room-1", "host_key": b64e(host.public_key), "role": "host",
        "device_key": b64e(first.public_key)})


def test_the_admission_entry_is_signed_and_checked(tmp_path):
    host, first, second, third = (Identity.generate() for _ in range(4))
    store = store_with(tmp_path, host, first)
    with pytest.raises(AssessIQError, match="only the session's own host key"):
        record_admission(store, Identity.generate(), from_seq=2, old_key=first.public_key,
                         new_key=second.public_key, name="x", clock_offset=0.0, asked_at=1.0)
    record_admission(store, host, from_seq=2, old_key=first.public_key,
                     new_key=second.public_key, name="Laptop 2", clock_offset=-3.0,
                     asked_at=5.0)
    assert current_device(store) == second.public_key
    found = admissions(store.private(), "room-1", host.public_key)
    assert [(a.from_seq, a.name, a.problem) for a in found] == [(2, "Laptop 2", None)]
    assert found[0].to_json()["fingerprint"] == second.fingerprint
    schedule, errors = key_schedule(first.public_key, found)
    assert schedule == [(2, second.public_key, -3.0)] and errors == []
    # another host key, another session, or an admission that skips a device: errors
    assert admissions(store.private(), "room-1", Identity.generate().public_key)[0].problem
    assert admissions(store.private(), "room-2", host.public_key)[0].problem
    record_admission(store, host, from_seq=5, old_key=third.public_key,
                     new_key=first.public_key, name="", clock_offset=0.0, asked_at=6.0)
    schedule, errors = key_schedule(first.public_key, admissions(
        store.private(ADMITTED), "room-1", host.public_key))
    assert len(schedule) == 1 and "does not replace the device pinned before it" in errors[0]
    # an edited entry (its from_seq moved) no longer verifies
    row = store._db.execute("SELECT id, value FROM private WHERE kind=?",
                            (ADMITTED,)).fetchone()
    store._db.execute("UPDATE private SET value=? WHERE id=?",
                      (row[1].replace('\\"from_seq\\":2', '\\"from_seq\\":1'), row[0]))
    assert admissions(store.private(), "room-1", host.public_key)[0].problem == \
        "its signature is not the host's"
    store.close()


async def test_an_admitted_device_resumes_from_its_own_file(tmp_path):
    from assessiq.peer import Candidate, Host
    from tests.peer_helpers import FAST, eventually, signaling_server

    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "h.aiq", runs=False)
        try:
            first = await Candidate.join(host.invite.encode(), config=FAST,
                                         session_path=tmp_path / "a.aiq")
            for _ in range(2):
                await first.send_event("session.note", {"phase": "instant", "text": "a"})
            await eventually(lambda: len(host.events) == 2)
            await first.close()
            joining = asyncio.create_task(Candidate.join(
                host.invite.encode(), config=FAST, session_path=tmp_path / "b.aiq"))
            await eventually(lambda: host.pending_device is not None, 10)
            await host.admit_device(True)
            second = await joining
            assert second.admitted_from == 2 and second.log[0].seq == 2
            await second.send_event("session.note", {"phase": "instant", "text": "b"})
            await eventually(lambda: len(host.events) == 4)
            await second.close()  # the new device's app dies too, and comes back
            again = await Candidate.join(host.invite.encode(), config=FAST,
                                         session_path=tmp_path / "b.aiq")
            try:
                assert again.resumed_from == tmp_path / "b.aiq"
                assert again.device.public_key == second.device.public_key
                assert [e.seq for e in again.log] == [2, 3, 4]
                await eventually(lambda: len(host.events) == 5, 10)
                assert not host.integrity_errors and host.pending_device is None
                assert [e.kind for e in host.events].count("session.resumed") == 2
            finally:
                await again.close()
        finally:
            await host.close()
