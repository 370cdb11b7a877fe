"""The pure handshake: sealing, signatures, counters, attempts and the join gate."""

from __future__ import annotations

import json

import pytest

from assessiq.core.encoding import b64d, b64e
from assessiq.core.handshake import (
    C2H,
    H2C,
    CandidateHandshake,
    HandshakeError,
    HostHandshake,
    Ignored,
    Opened,
    Pending,
    Waiting,
    derive_key,
    open_message,
    sdp_fingerprints,
    seal_message,
)
from assessiq.core.identity import Identity
from assessiq.core.invite import make_invite

SDP_A = "v=0\r\na=fingerprint:sha-256 AA:BB:CC\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n"
SDP_B = "v=0\r\na=fingerprint:sha-256 11:22:33\r\n"


@pytest.fixture
def parties():
    host = Identity.generate()
    invite = make_invite(host, signaling="ws://127.0.0.1:1")
    return host, invite, HostHandshake(invite, host)


def full_exchange(invite, hh: HostHandshake, device: Identity) -> CandidateHandshake:
    ch = CandidateHandshake(invite, device, name="Ada")
    opened = hh.receive(ch.hello())
    assert isinstance(opened, Opened) and opened.kind == "hello"
    got = ch.receive(hh.offer(SDP_A))
    assert isinstance(got, Opened) and got.body["sdp"] == SDP_A
    done = hh.receive(ch.answer(SDP_B))
    assert isinstance(done, Opened) and hh.answer_sdp == SDP_B
    return ch


def test_happy_path_pins_the_device(parties):
    _host, invite, hh = parties
    device = Identity.generate()
    full_exchange(invite, hh, device)
    assert hh.device_key == device.public_key
    assert hh.join is not None and hh.join.name == "Ada"


def test_reconnect_same_device_is_a_new_attempt(parties):
    _host, invite, hh = parties
    device = Identity.generate()
    first = full_exchange(invite, hh, device)
    second = full_exchange(invite, hh, device)
    assert first.attempt != second.attempt
    assert hh.attempt == second.attempt


def test_second_device_waits_for_the_interviewer_and_a_refusal_is_signed(parties):
    _host, invite, hh = parties
    first = Identity.generate()
    full_exchange(invite, hh, first)
    intruder = CandidateHandshake(invite, Identity.generate())
    pending = hh.receive(intruder.hello())
    assert isinstance(pending, Pending) and pending.attempt == intruder.attempt
    assert hh.pending is pending and hh.device_key == first.public_key  # nothing changed yet
    assert isinstance(intruder.receive(hh.wait(pending.attempt, "wait")), Waiting)
    refused, refusal = hh.refuse_pending("not admitted")
    assert refused is pending and hh.pending is None
    with pytest.raises(HandshakeError, match="refused the connection: not admitted"):
        intruder.receive(refusal)
    with pytest.raises(HandshakeError, match="no other device is waiting"):
        hh.refuse_pending("again")


def test_tampered_bytes_fail_authentication(parties):
    _host, invite, hh = parties
    ch = CandidateHandshake(invite, Identity.generate())
    hello = bytearray(b64d(ch.hello()))
    hello[40] ^= 1
    with pytest.raises(HandshakeError, match="failed authentication"):
        hh.receive(b64e(bytes(hello)))
    with pytest.raises(HandshakeError, match="not base64"):
        hh.receive("é")
    with pytest.raises(HandshakeError, match="truncated"):
        hh.receive(b64e(b"short"))


def test_reflected_message_is_refused(parties):
    _host, invite, _hh = parties
    ch = CandidateHandshake(invite, Identity.generate())
    hello = ch.hello()
    with pytest.raises(HandshakeError, match="failed authentication"):
        ch.receive(hello)  # the server sends the candidate's own message back


def test_duplicates_and_replays_are_dropped(parties):
    _host, invite, hh = parties
    device = Identity.generate()
    ch = CandidateHandshake(invite, device)
    hello = ch.hello()
    assert isinstance(hh.receive(hello), Opened)
    assert isinstance(hh.receive(hello), Ignored)  # duplicate hello
    offer = hh.offer(SDP_A)
    assert isinstance(ch.receive(offer), Opened)
    assert isinstance(ch.receive(offer), Ignored)  # duplicate offer
    answer = ch.answer(SDP_B)
    assert isinstance(hh.receive(answer), Opened)
    assert isinstance(hh.receive(answer), Ignored)
    # A new attempt: the old offer replayed to the new attempt is dropped.
    ch2 = CandidateHandshake(invite, device)
    assert isinstance(hh.receive(ch2.hello()), Opened)
    assert isinstance(ch2.receive(offer), Ignored)
    # The old answer replayed into the new attempt is dropped too.
    assert isinstance(hh.receive(answer), Ignored)
    # And the old hello replayed is never admitted again.
    assert isinstance(hh.receive(hello), Ignored)


def test_wrong_secret_or_room_refused(parties):
    host, _invite, hh = parties
    other = make_invite(host, signaling="ws://127.0.0.1:1")
    ch = CandidateHandshake(other, Identity.generate())
    with pytest.raises(HandshakeError, match="failed authentication"):
        hh.receive(ch.hello())


def test_server_with_the_secret_cannot_impersonate_host(parties):
    _host, invite, hh = parties
    ch = CandidateHandshake(invite, Identity.generate())
    hh.receive(ch.hello())
    key = derive_key(invite)
    # The server knows the secret, rewrites the offer's fingerprint and re-signs with its key.
    body, _raw, sig = open_message(key, invite.room, H2C, hh.offer(SDP_A))
    body["sdp"] = SDP_A.replace("AA:BB:CC", "DE:AD:00")
    forged = seal_message(key, invite.room, H2C, Identity.generate(), body)
    with pytest.raises(HandshakeError, match="not signed by the host key"):
        ch.receive(forged)
    # Keeping the host's real signature over the changed body fails too.
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    inner = json.dumps({"body": b64e(json.dumps(body).encode()), "sig": b64e(sig)}).encode()
    nonce = b"\x00" * 12
    aad = b"assessiq/handshake/v1|" + invite.room.encode() + b"|h2c"
    forged2 = b64e(nonce + ChaCha20Poly1305(key).encrypt(nonce, inner, aad))
    with pytest.raises(HandshakeError, match="not signed by the host key"):
        ch.receive(forged2)


def test_server_with_the_secret_cannot_answer_for_pinned_device(parties):
    _host, invite, hh = parties
    device = Identity.generate()
    ch = CandidateHandshake(invite, device)
    hh.receive(ch.hello())
    ch.receive(hh.offer(SDP_A))
    key = derive_key(invite)
    body, _, _ = open_message(key, invite.room, C2H, ch.answer(SDP_B))
    body["sdp"] = SDP_B.replace("11:22:33", "66:66:66")
    forged = seal_message(key, invite.room, C2H, Identity.generate(), body)
    with pytest.raises(HandshakeError, match="pinned device key"):
        hh.receive(forged)


def test_offer_for_another_device_refused(parties):
    _host, invite, hh = parties
    ch = CandidateHandshake(invite, Identity.generate())
    hh.receive(ch.hello())
    offer = hh.offer(SDP_A)
    # A different candidate process that somehow got the same attempt id.
    other = CandidateHandshake(invite, Identity.generate())
    other.attempt = ch.attempt
    with pytest.raises(HandshakeError, match="different candidate device"):
        other.receive(offer)


def test_sdp_without_fingerprint_refused(parties):
    _host, invite, hh = parties
    ch = CandidateHandshake(invite, Identity.generate())
    hh.receive(ch.hello())
    with pytest.raises(HandshakeError, match="no DTLS fingerprint"):
        ch.receive(hh.offer("v=0\r\n"))


def test_out_of_order_answer_refused(parties):
    _host, invite, hh = parties
    device = Identity.generate()
    ch = CandidateHandshake(invite, device)
    hh.receive(ch.hello())
    with pytest.raises(HandshakeError, match="before a valid offer"):
        ch.answer(SDP_B)


def test_hello_signed_by_other_key_refused(parties):
    _host, invite, hh = parties
    device = Identity.generate()
    ch = CandidateHandshake(invite, device)
    key = derive_key(invite)
    body, _, _ = open_message(key, invite.room, C2H, ch.hello())
    forged = seal_message(key, invite.room, C2H, Identity.generate(), body)
    with pytest.raises(HandshakeError, match="not signed by the device key"):
        hh.receive(forged)


def test_host_key_must_match_invite():
    invite = make_invite(Identity.generate(), signaling="ws://127.0.0.1:1")
    with pytest.raises(HandshakeError, match="did not make the invite"):
        HostHandshake(invite, Identity.generate())


def test_sdp_fingerprints_parse():
    assert sdp_fingerprints(SDP_A) == [("sha-256", "AA:BB:CC")]
    assert sdp_fingerprints("v=0\r\n") == []


def test_forged_answer_names_the_attempt_for_a_signed_refusal(parties):
    _host, invite, hh = parties
    ch = CandidateHandshake(invite, Identity.generate())
    hh.receive(ch.hello())
    ch.receive(hh.offer(SDP_A))
    key = derive_key(invite)
    body, _, _ = open_message(key, invite.room, C2H, ch.answer(SDP_B))
    forged = seal_message(key, invite.room, C2H, Identity.generate(), body)
    with pytest.raises(HandshakeError) as info:
        hh.receive(forged)
    assert info.value.attempt == ch.attempt
    with pytest.raises(HandshakeError, match="refused the connection"):
        ch.receive(hh.refuse(ch.attempt, str(info.value)))
