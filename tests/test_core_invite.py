"""Invites and join requests: every bad one refused with a one-line `InviteError`."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assessiq.core.encoding import b64d, b64e, canonical_json, pack_signed
from assessiq.core.errors import InviteError
from assessiq.core.identity import Identity
from assessiq.core.invite import (
    INVITE_DOMAIN,
    INVITE_PREFIX,
    JOIN_CLOCK_SKEW_S,
    JOIN_DOMAIN,
    LINK_PREFIX,
    Invite,
    JoinGate,
    JoinRequest,
    make_invite,
)

HOST = Identity.generate()
OTHER = Identity.generate()
NOW = 1_800_000_000.0
INVITE = make_invite(HOST, signaling="wss://sig.example/", label="Ada", now=NOW)
TEXT = INVITE.encode()


def refused(text: str, **kw: object) -> str:
    """The one-line reason `Invite.decode` gives; fails on any other exception or success."""
    with pytest.raises(InviteError) as exc:
        Invite.decode(text, **kw)  # type: ignore[arg-type]
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


def _parts(text: str) -> tuple[dict[str, object], bytes]:
    body, sig = text[len(INVITE_PREFIX):].split(".")
    return json.loads(b64d(body)), b64d(sig)


def _encode(body: bytes, sig: bytes) -> str:
    return f"{INVITE_PREFIX}{b64e(body)}.{b64e(sig)}"


def test_round_trip_as_string_and_link() -> None:
    for text in (TEXT, INVITE.link(), TEXT[:30] + "\n" + TEXT[30:] + "  "):
        inv = Invite.decode(text, now=NOW)
        assert (inv.room, inv.secret, inv.host_key, inv.expires) == (
            INVITE.room, INVITE.secret, HOST.public_key, INVITE.expires)
        assert inv.label == "Ada" and inv.signaling == "wss://sig.example/"
        assert inv.id == INVITE.id
    assert INVITE.link().startswith(LINK_PREFIX)
    assert Invite.decode(TEXT, now=NOW, expected_host=HOST.fingerprint.lower()).room == INVITE.room


def test_make_invite_refuses_bad_reachability() -> None:
    with pytest.raises(InviteError):
        make_invite(HOST)
    with pytest.raises(InviteError):
        make_invite(HOST, signaling="http://x")


def test_expired() -> None:
    msg = refused(TEXT, now=INVITE.expires + 1)
    assert "expired" in msg
    refused(TEXT, now=INVITE.expires)  # the expiry instant itself is already too late


def test_forged_resigned_by_another_key_keeping_the_host_key() -> None:
    data, _ = _parts(TEXT)
    body = canonical_json(data)
    assert "altered or forged" in refused(_encode(body, OTHER.sign(INVITE_DOMAIN, body)), now=NOW)
    # another key's signature in the wrong domain (e.g. a join signature) neither
    assert "forged" in refused(_encode(body, HOST.sign(JOIN_DOMAIN, body)), now=NOW)


def test_forged_invite_naming_the_forger_is_caught_by_the_expected_fingerprint() -> None:
    data, _ = _parts(TEXT)
    data["host"] = b64e(OTHER.public_key)
    body = canonical_json(data)
    text = _encode(body, OTHER.sign(INVITE_DOMAIN, body))
    assert Invite.decode(text, now=NOW).host_fingerprint == OTHER.fingerprint  # self-consistent
    msg = refused(text, now=NOW, expected_host=HOST.fingerprint)
    assert OTHER.fingerprint in msg and HOST.fingerprint in msg


@pytest.mark.parametrize("field,value", [
    ("room", "another-room"), ("secret", b64e(b"\x00" * 32)), ("exp", 9_999_999_999),
    ("label", "Mallory"), ("sig_url", "wss://evil.example/"), ("lan", True),
    ("host", b64e(OTHER.public_key)), ("extra", 1),
])
def test_tampered_body_fields(field: str, value: object) -> None:
    data, sig = _parts(TEXT)
    data[field] = value
    msg = refused(_encode(canonical_json(data), sig), now=NOW)
    assert "signature" in msg


@pytest.mark.parametrize("field,value", [
    ("v", 2), ("host", 5), ("host", "!!"), ("host", b64e(b"short")), ("secret", b64e(b"1")),
    ("room", None), ("exp", "soon"), ("exp", True),
])
def test_damaged_fields_signed_by_the_host(field: str, value: object) -> None:
    """Even validly signed, a body with missing or mistyped fields is refused, not crashed on."""
    data, _ = _parts(TEXT)
    data[field] = value
    body = canonical_json(data)
    refused(_encode(body, HOST.sign(INVITE_DOMAIN, body)), now=NOW)


def test_every_prefix_of_a_real_invite_is_refused() -> None:
    for text in (TEXT, INVITE.link()):
        for n in range(len(text)):
            prefix = text[:n]
            if not prefix.strip():
                assert refused(prefix) == "no invite given"
                continue
            refused(prefix, now=NOW)


def test_every_single_character_change_is_refused() -> None:
    alphabet = "Aa0-_."
    for i in range(len(INVITE_PREFIX), len(TEXT)):
        for c in alphabet:
            if c != TEXT[i]:
                refused(TEXT[:i] + c + TEXT[i + 1:], now=NOW)


def test_wrong_kind_of_input() -> None:
    assert "too long" in refused("aiq1." + "A" * 5000)
    assert "aiq1." in refused("https://example.com/join")
    refused(INVITE_PREFIX + "..")
    refused(INVITE_PREFIX + b64e(b"[1,2]") + "." + b64e(b"x" * 64))
    refused(123)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_garbage_text_only_ever_gives_invite_error(text: str) -> None:
    for candidate in (text, INVITE_PREFIX + text, LINK_PREFIX + INVITE_PREFIX + text):
        refused(candidate, now=NOW)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.binary(max_size=100))
def test_garbage_bytes_in_both_parts(body: bytes, sig: bytes) -> None:
    refused(_encode(body, sig), now=NOW)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "room", "secret", "host", "exp", "lan", "label",
                                        "sig_url"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                 st.text(max_size=20), st.lists(st.integers(), max_size=3)),
                       max_size=8))
def test_any_json_body_signed_by_the_host_never_crashes(data: dict[str, object]) -> None:
    try:
        body = canonical_json(data)
    except ValueError:
        return  # NaN is not JSON
    try:
        Invite.decode(_encode(body, HOST.sign(INVITE_DOMAIN, body)), now=NOW)
    except InviteError as exc:
        assert "\n" not in str(exc)


# --- join requests ---------------------------------------------------------------------------
def _join(device: Identity, invite: Invite = INVITE, at: float = NOW + 10) -> bytes:
    return JoinRequest.create(invite, device, name="Ada", now=at).encode()


def join_refused(gate: JoinGate, raw: bytes, at: float = NOW + 10) -> str:
    with pytest.raises(InviteError) as exc:
        gate.admit(raw, now=at)
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_join_admits_one_device_and_it_again_on_reconnect() -> None:
    gate = JoinGate(INVITE)
    device = Identity.generate()
    req = gate.admit(_join(device), now=NOW + 10)
    assert req.device_key == device.public_key and req.name == "Ada"
    assert gate.pinned_device == device.public_key
    # reconnect with the same device, a fresh request: accepted
    assert gate.admit(_join(device, at=NOW + 500), now=NOW + 500).device_key == device.public_key
    # after expiry the pinned device can still reconnect; nobody else can join
    later = INVITE.expires + 60
    assert gate.admit(_join(device, at=later), now=later).device_key == device.public_key
    assert "another candidate" in join_refused(gate, _join(Identity.generate(), at=later),
                                               at=later)


def test_join_refusals() -> None:
    gate = JoinGate(INVITE)
    device = Identity.generate()
    first = _join(device)
    gate.admit(first, now=NOW + 10)
    assert "replayed" in join_refused(gate, first)
    assert "another candidate" in join_refused(gate, _join(Identity.generate()))
    other_invite = make_invite(HOST, lan=True, now=NOW)
    assert "different invite" in join_refused(gate, _join(device, other_invite))
    assert "stale" in join_refused(gate, _join(device, at=NOW + 10 - JOIN_CLOCK_SKEW_S - 1))
    assert "stale" in join_refused(gate, _join(device, at=NOW + 10 + JOIN_CLOCK_SKEW_S + 1))
    fresh = JoinGate(INVITE)
    assert "expired" in join_refused(fresh, _join(device, at=INVITE.expires + 1),
                                     at=INVITE.expires + 1)


def test_join_bad_signature_and_damage() -> None:
    gate = JoinGate(INVITE)
    device = Identity.generate()
    req = JoinRequest.decode(_join(device))
    # signed by another key than the device key it presents
    forged = pack_signed(req.body, Identity.generate().sign(JOIN_DOMAIN, req.body))
    assert "signature" in join_refused(gate, forged)
    # a body field changed after signing
    data = json.loads(req.body)
    data["name"] = "Mallory"
    assert "signature" in join_refused(gate, pack_signed(canonical_json(data), req.signature))
    # the invite's signature domain is not a join signature
    body = req.body
    assert "signature" in join_refused(gate, pack_signed(body, device.sign(INVITE_DOMAIN, body)))
    for raw in (b"", b"{}", b"x" * 5000, b"{}." + b64e(b"x" * 64).encode(), req.encode()[:-3]):
        join_refused(gate, raw)
    assert gate.pinned_device is None  # nothing above got in


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_join_garbage_bytes_only_give_invite_error(raw: bytes) -> None:
    with pytest.raises(InviteError) as exc:
        JoinGate(INVITE).admit(raw, now=NOW)
    assert "\n" not in str(exc.value)


def test_join_every_prefix_refused() -> None:
    raw = _join(Identity.generate())
    for n in range(len(raw)):
        join_refused(JoinGate(INVITE), raw[:n])


def test_real_clock_defaults() -> None:
    inv = make_invite(HOST, lan=True)
    assert not inv.is_expired() and inv.expires > time.time()
    gate = JoinGate(inv)
    assert gate.admit(JoinRequest.create(inv, Identity.generate()).encode()).room == inv.room
