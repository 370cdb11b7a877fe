"""The integrity log: envelopes, the host's `LogVerifier`, offline `check_log`, receipts."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assessiq.core.encoding import canonical_json, pack_signed
from assessiq.core.identity import Identity
from assessiq.core.integrity import (
    EVENT_DOMAIN,
    MAX_ENVELOPE_BYTES,
    ClockRule,
    Envelope,
    EventSigner,
    IntegrityError,
    LogVerifier,
    Receipt,
    check_log,
    clock_rule,
    genesis_hash,
    make_receipt,
)

SESSION = "room-A"
T0 = 1_800_000_000.0


@pytest.fixture
def device() -> Identity:
    return Identity.generate()


def _log(device: Identity, n: int = 6, session: str = SESSION) -> list[Envelope]:
    signer = EventSigner(session, device)
    return [signer.sign("proctor.heartbeat" if i % 2 else "tab.hidden",
                        {} if i % 2 else {"phase": "start"}, now=T0 + i) for i in range(n)]


def _resign(device: Identity, env: Envelope, **changes: object) -> bytes:
    d = json.loads(env.body)
    d.update(changes)
    body = canonical_json(d)
    return pack_signed(body, device.sign(EVENT_DOMAIN, body))


def refuse(v: LogVerifier, raw: bytes, words: str) -> None:
    with pytest.raises(IntegrityError) as exc:
        v.accept(raw)
    assert words in str(exc.value), str(exc.value)
    assert "\n" not in str(exc.value)


def test_valid_chain_accepted_online_and_offline(device: Identity) -> None:
    log = _log(device)
    v = LogVerifier(SESSION, device.public_key)
    for env in log:
        got, new = v.accept(env.encode())
        assert new and got.seq == env.seq
    assert v.head == log[-1].hash
    assert log[0].prev == genesis_hash(SESSION)
    assert all(b.prev == a.hash for a, b in itertools.pairwise(log))
    check = check_log(SESSION, device.public_key, [e.raw for e in log])
    assert check.errors == [] and check.head == log[-1].hash and len(check.events) == 6


def test_signer_resumes_after_restart(device: Identity) -> None:
    log = _log(device, 4)
    signer = EventSigner.resume(SESSION, device, log)
    log.append(signer.sign("paste", {"phase": "instant", "chars": 3}, now=T0 + 10))
    assert check_log(SESSION, device.public_key, [e.raw for e in log]).errors == []
    # a wall clock that steps back does not make time go backwards in the log
    log.append(signer.sign("copy", {"phase": "instant"}, now=T0 - 100))
    assert log[-1].t == log[-2].t
    assert check_log(SESSION, device.public_key, [e.raw for e in log]).errors == []


def test_duplicate_is_idempotent(device: Identity) -> None:
    log = _log(device, 3)
    v = LogVerifier(SESSION, device.public_key)
    for env in log:
        v.accept(env.raw)
    got, new = v.accept(log[1].raw)
    assert new is False and got.raw == log[1].raw
    assert len(v.accepted) == 3 and v.head == log[-1].hash


def test_each_kind_of_bad_envelope_refused_with_its_reason(device: Identity) -> None:
    log = _log(device, 4)
    other_dev = Identity.generate()
    v = LogVerifier(SESSION, device.public_key)
    v.accept(log[0].raw)
    v.accept(log[1].raw)
    nxt = log[2]
    # bad signature: a body field changed after signing
    d = json.loads(nxt.body)
    d["data"] = {"phase": "end"}
    refuse(v, pack_signed(canonical_json(d), nxt.signature), "signature")
    # wrong key: a well-formed continuation signed by another device
    refuse(v, _resign(other_dev, nxt), "signature is not the candidate's device key")
    # gap: event 3 before 2
    refuse(v, log[3].raw, "sequence gap, events 2..2 are missing")
    # replay of a different envelope at an old seq
    refuse(v, _resign(device, log[1], data={"replayed": True}), "duplicate or replayed")
    # other session (same key, proper chain position)
    refuse(v, _resign(device, nxt, session="room-B"), "another session")
    # broken chain
    refuse(v, _resign(device, nxt, prev="0" * 64), "hash chain broken")
    # time backwards
    refuse(v, _resign(device, nxt, t=log[1].t - 5), "time goes backwards")
    # malformed and oversized
    refuse(v, b"not an envelope", "malformed")
    refuse(v, _resign(device, nxt, seq=-1), "malformed")
    refuse(v, _resign(device, nxt, kind="Bad Kind"), "malformed")
    refuse(v, _resign(device, nxt, severity="fatal"), "malformed")
    refuse(v, _resign(device, nxt, v=2), "malformed")
    refuse(v, _resign(device, nxt, seq=True), "malformed")
    refuse(v, _resign(device, nxt, data=[1]), "malformed")
    refuse(v, nxt.raw.replace(b'"t":', b'"t":1e999,"x":', 1), "malformed")  # infinite time
    big = _resign(device, nxt, data={"x": "y" * MAX_ENVELOPE_BYTES})
    refuse(v, big, "larger than 16 KiB")
    # after all that, the real next event still goes in: nothing above moved the head
    assert v.accept(nxt.raw)[1] is True
    assert v.accept(log[3].raw)[1] is True


def test_reorder_refused_online_and_reported_offline(device: Identity) -> None:
    log = _log(device, 5)
    raws = [e.raw for e in log]
    raws[1], raws[2] = raws[2], raws[1]
    errors = check_log(SESSION, device.public_key, raws).errors
    assert errors and any("gap" in e for e in errors)
    v = LogVerifier(SESSION, device.public_key)
    v.accept(raws[0])
    refuse(v, raws[1], "sequence gap")


def test_check_log_collects_every_problem(device: Identity) -> None:
    log = _log(device, 6)
    other = _log(Identity.generate(), 6)
    cases = {
        "delete": ([e.raw for i, e in enumerate(log) if i != 2], "gap"),
        "duplicate": ([e.raw for e in log[:3]] + [log[2].raw] + [e.raw for e in log[3:]],
                      "duplicate"),
        "foreign": ([e.raw for e in log[:3]] + [other[3].raw] + [e.raw for e in log[4:]],
                    "signature"),
        "malformed": ([e.raw for e in log[:3]] + [b"{}"] + [e.raw for e in log[3:]],
                      "stored event #3"),
        "other session": ([e.raw for e in _log(device, 3, session="room-B")], "another session"),
    }
    for name, (raws, words) in cases.items():
        errors = check_log(SESSION, device.public_key, raws).errors
        assert any(words in e for e in errors), (name, errors)
    # truncation is not visible to the log alone, but the head moves
    assert check_log(SESSION, device.public_key, [e.raw for e in log[:4]]).head == log[3].hash


def test_receipts(device: Identity) -> None:
    host = Identity.generate()
    env = _log(device, 1)[0]
    receipt = make_receipt(host, env, now=T0 + 1)
    back = Receipt.decode(receipt.encode())
    assert back.verify(host.public_key) and not back.verify(device.public_key)
    assert (back.session, back.seq, back.hash, back.at) == (SESSION, 0, env.hash, T0 + 1)
    d = json.loads(receipt.body)
    d["seq"] = 5
    assert not Receipt.decode(pack_signed(canonical_json(d), receipt.signature)).verify(
        host.public_key)
    # a cut signature still parses, but never verifies
    assert not Receipt.decode(receipt.raw[:-2]).verify(host.public_key)
    for raw in (b"", b"x", b"{}.AA", b"y" * 3000, receipt.raw[:-1],
                receipt.raw.replace(b'"at":', b'"at":NaN,"z":', 1)):
        with pytest.raises(IntegrityError):
            Receipt.decode(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_crashes_the_verifier(raw: bytes) -> None:
    v = LogVerifier(SESSION, Identity.generate().public_key)
    with pytest.raises(IntegrityError):
        v.accept(raw)
    assert v.accepted == []


# --- the host's clock -------------------------------------------------------------------------
OFFSET = 40.0  # the candidate's clock runs 40 s ahead of the host's
RULE = ClockRule(offset=OFFSET, bound=10.0, start=T0)


def _clocked(device: Identity, *host_times: float) -> list[Envelope]:
    """Events signed on the candidate's (skewed) clock at these host times."""
    signer = EventSigner(SESSION, device)
    return [signer.sign("browser.heartbeat", now=h + OFFSET) for h in host_times]


def test_a_skewed_clock_within_the_bound_is_accepted(device: Identity) -> None:
    v = LogVerifier(SESSION, device.public_key, RULE)
    v.link_opened(T0 + 1)
    for i, env in enumerate(_clocked(device, T0 + 2, T0 + 3, T0 + 4)):
        v.accept(env.raw, T0 + 2 + i + 0.3)  # 0.3 s on the way
    assert len(v.accepted) == 3


@pytest.mark.parametrize(("signed", "arrived", "words"), [
    (T0 + 86_400 + 5, T0 + 5, "in the future"),
    (T0 + 5 + 10.5, T0 + 5, "in the future"),
    (T0 + 20, T0 + 60, "back-dated"),  # late on a link open since well before it was signed
])
def test_an_event_too_far_from_the_host_clock_is_refused_and_the_head_stays(
        device: Identity, signed: float, arrived: float, words: str) -> None:
    v = LogVerifier(SESSION, device.public_key, RULE)
    v.link_opened(T0 + 1)
    first, = _clocked(device, T0 + 2)
    v.accept(first.raw, T0 + 2.1)
    signer = EventSigner(SESSION, device, next_seq=1, prev=first.hash, last_t=first.t)
    bad = signer.sign("browser.heartbeat", now=signed + OFFSET)
    with pytest.raises(IntegrityError) as exc:
        v.accept(bad.raw, arrived)
    assert words in str(exc.value) and "bound 10 s" in str(exc.value), str(exc.value)
    assert v.head == first.hash and len(v.accepted) == 1
    # the honest next event (same seq, chained to the head) is still accepted
    honest = EventSigner(SESSION, device, next_seq=1, prev=first.hash, last_t=first.t).sign(
        "browser.heartbeat", now=arrived + OFFSET)
    v.accept(honest.raw, arrived + 0.1)
    # ... and a hostile app that went on from the refused one is refused as a gap
    after_bad = signer.sign("browser.heartbeat", now=arrived + OFFSET)
    refuse(v, after_bad.raw, "hash chain broken")


def test_an_event_dated_before_the_session_is_refused(device: Identity) -> None:
    v = LogVerifier(SESSION, device.public_key, RULE)
    v.link_opened(T0 + 1)
    early, = _clocked(device, T0 - 3600)
    with pytest.raises(IntegrityError, match="before the session began"):
        v.accept(early.raw, T0 + 1.5)  # also an hour late, but before the session says more
    v.accept(_clocked(device, T0 + 2)[0].raw, T0 + 2.1)


def test_the_outbox_resent_after_a_reconnect_is_late_but_accepted(device: Identity) -> None:
    """Signed while the link was down, sent when the next one opened: honest, however old."""
    v = LogVerifier(SESSION, device.public_key, RULE)
    v.link_opened(T0 + 1)
    envs = _clocked(device, T0 + 2, T0 + 30, T0 + 200, T0 + 401)
    v.accept(envs[0].raw, T0 + 2.1)
    v.link_opened(T0 + 400)  # the link was down from about T0 + 3 to T0 + 400
    v.accept(envs[1].raw, T0 + 400.2)  # 370 s late: in the outbox
    v.accept(envs[2].raw, T0 + 400.3)
    v.accept(envs[3].raw, T0 + 401.1)
    assert len(v.accepted) == 4
    # offline, with the links the host recorded, the same verdict; without them, not
    arrivals = [T0 + 2.1, T0 + 400.2, T0 + 400.3, T0 + 401.1]
    raws = [e.raw for e in envs]
    ok = check_log(SESSION, device.public_key, raws, arrivals=arrivals, clock=RULE,
                   links=v.links)
    assert ok.errors == [] and ok.arrivals == arrivals
    bad = check_log(SESSION, device.public_key, raws, arrivals=arrivals, clock=RULE,
                    links=[T0 + 1])
    assert len(bad.errors) == 2 and all("back-dated" in e for e in bad.errors), bad.errors


def test_check_log_finds_an_arrival_time_that_contradicts_the_signed_one(
        device: Identity) -> None:
    envs = _clocked(device, T0 + 2, T0 + 3)
    check = check_log(SESSION, device.public_key, [e.raw for e in envs],
                      arrivals=[T0 + 2.1, T0 + 3.1 - 60], clock=RULE, links=[T0 + 1])
    assert len(check.errors) == 1 and "in the future" in check.errors[0]
    assert len(check.events) == 2  # still scored, but the record is not valid
    with pytest.raises(ValueError):
        check_log(SESSION, device.public_key, [e.raw for e in envs], arrivals=[T0])


def test_clock_rule_from_metadata() -> None:
    rule, links = clock_rule({"clock_offset": 40.0, "clock_bound": 23, "created": T0,
                              "links_opened": [T0 + 1, "x", T0 + 9]})
    assert rule == ClockRule(offset=40.0, bound=23.0, start=T0) and links == [T0 + 1, T0 + 9]
    assert clock_rule({"created": T0}) == (None, [])  # a record made before the rule
    assert clock_rule({"clock_offset": float("nan"), "clock_bound": 1, "created": T0})[0] is None


def test_link_openings_are_bounded_and_ascending(device: Identity) -> None:
    v = LogVerifier(SESSION, device.public_key, RULE)
    assert v.link_opened(T0 + 5) and not v.link_opened(T0 + 4)
    for i in range(2000):
        v.link_opened(T0 + 6 + i)
    assert len(v.links) == 1000
