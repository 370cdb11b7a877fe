"""Parse before trust (issue 12, item 6): size and nesting limits before any JSON from the other
side is parsed, on every channel and input; a failure drops that message with a reason, is
recorded as a refusal, and keeps the link.

First the helper (`loads_bounded`) and each decoder on its own, then a modified candidate
(and a hostile host) sending what an honest app never sends over the real data channels.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given
from hypothesis import strategies as st

import signaling.jsonlimits
from assessiq.core import document, handshake, invite, jsonlimits, sync
from assessiq.core.encoding import b64e, canonical_json, pack_signed
from assessiq.core.identity import Identity
from assessiq.core.integrity import Envelope, EventSigner, IntegrityError, Receipt
from assessiq.core.jsonlimits import json_depth, loads_bounded
from assessiq.core.record import SessionRecord
from assessiq.core.verify import verify_record
from assessiq.peer import Candidate, Host, control
from assessiq.peer.signaling_client import SignalingClient
from signaling.frames import FrameError, parse_client_frame
from tests.peer_helpers import eventually, joined_pair

SIG = b"\x01" * 64  # any 64 bytes: these are refused before a signature is ever checked


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def deep_object(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


# ---- the helper ----------------------------------------------------------------------------


def test_honest_json_parses_as_json_does() -> None:
    text = '{"a": [1, 2.5, {"b": "x [ { \\" \\\\"}], "c": null, "d": true}'
    assert loads_bounded(text, max_bytes=1000, max_depth=3) == json.loads(text)
    assert loads_bounded(text.encode(), max_bytes=1000, max_depth=3) == json.loads(text)
    assert loads_bounded(bytearray(b"[]"), max_bytes=2, max_depth=1) == []
    assert loads_bounded(memoryview(b"7"), max_bytes=1, max_depth=0) == 7


def test_depth_is_refused_at_one_past_the_limit() -> None:
    assert loads_bounded(deep(4), max_bytes=100, max_depth=4) is not None
    with pytest.raises(ValueError, match="nested 5 levels deep, over the limit of 4"):
        loads_bounded(deep(5), max_bytes=100, max_depth=4)
    with pytest.raises(ValueError, match="nested 5 levels"):
        loads_bounded(deep_object(5), max_bytes=100, max_depth=4)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"code": "[" * 500 + '{"\\"' * 100, "q": '"]]]'})
    assert json_depth(text) == 1
    assert loads_bounded(text, max_bytes=10_000, max_depth=1) == json.loads(text)


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n\u00e9'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=30,
))
def test_the_scan_measures_what_the_parser_builds(value: Any) -> None:
    def depth(v: Any) -> int:
        if isinstance(v, list):
            return 1 + max(map(depth, v), default=0)
        if isinstance(v, dict):
            return 1 + max(map(depth, v.values()), default=0)
        return 0

    text = json.dumps(value)
    assert json_depth(text) == depth(value)
    assert loads_bounded(text, max_bytes=len(text.encode()), max_depth=depth(value)) == value


def test_a_100000_deep_message_is_refused_without_recursion() -> None:
    for raw in (deep(100_000), deep(100_000).decode(), deep_object(100_000)):
        with pytest.raises(ValueError, match="nested 100000 levels deep"):
            loads_bounded(raw, max_bytes=2_000_000, max_depth=64)


def test_size_is_checked_before_anything_else() -> None:
    blob = b"\xff" * 10_000_001
    with pytest.raises(ValueError, match="10000001 bytes, over the limit of 1000"):
        loads_bounded(blob, max_bytes=1000, max_depth=8)
    with pytest.raises(ValueError, match="over the limit of 10 bytes"):
        loads_bounded("a" * 11, max_bytes=10, max_depth=8)
    with pytest.raises(ValueError, match="13 bytes, over the limit of 10"):
        loads_bounded('"éééééé"'[:7], max_bytes=10, max_depth=8)  # 7 characters, 13 bytes


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"a": "\xff"}', "not UTF-8 text"),
    ('"\ud800"', "not UTF-8 text"),
    ("NaN", "NaN is not JSON"),
    ("[Infinity]", "Infinity is not JSON"),
    ("1" * 5000, "not valid JSON"),
    ('"[[[[', "not valid JSON"),
    ("{} []", "not valid JSON"),
    ("", "not valid JSON"),
])
def test_what_is_not_json_is_a_one_line_value_error(raw: bytes | str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        loads_bounded(raw, max_bytes=100_000, max_depth=8)
    assert "\n" not in str(info.value)


def test_anything_but_bytes_or_text_is_refused() -> None:
    with pytest.raises(ValueError, match="expected bytes or text, not int"):
        loads_bounded(12, max_bytes=10, max_depth=1)  # type: ignore[arg-type]


def test_the_scan_is_cheap() -> None:
    """Measured, not asserted against a clock: the figure is printed for the record."""
    text = json.dumps([{"a": "x" * 50, "b": [1, 2, {"c": "[[[["}]} for _ in range(20_000)])
    start = time.perf_counter()
    json_depth(text)
    scan = time.perf_counter() - start
    start = time.perf_counter()
    json.loads(text)
    parse = time.perf_counter() - start
    print(f"depth scan {scan * 1e3:.1f} ms, parse {parse * 1e3:.1f} ms for {len(text)} bytes")


def test_signaling_keeps_an_identical_copy() -> None:
    def code(module: Any) -> str:
        source = Path(module.__file__).read_text(encoding="utf-8")
        return source[source.index('"""', 3) + 3:]

    assert code(signaling.jsonlimits) == code(jsonlimits)


# ---- each decoder ---------------------------------------------------------------------------


@pytest.mark.parametrize("body", [deep(5000), deep_object(2000), b'{"v":1,"d":"\xff"}', b"NaN"])
def test_envelope_and_receipt_refuse_before_parsing(body: bytes) -> None:
    raw = pack_signed(body, SIG)
    with pytest.raises(IntegrityError, match="malformed envelope: "):
        Envelope.decode(raw)
    if len(raw) <= 2048:
        with pytest.raises(IntegrityError, match="malformed receipt: "):
            Receipt.decode(raw)


def test_control_refuses_before_parsing() -> None:
    with pytest.raises(control.ControlError, match="nested 2000 levels"):
        control.decode(deep(2000))
    with pytest.raises(control.ControlError, match="over the limit"):
        control.decode(deep(100_000))
    with pytest.raises(control.ControlError, match="not UTF-8"):
        control.decode(b'{"t":"bye","reason":"\xff"}')
    assert control.decode(b'{"t":"bye","reason":"ok"}') == {"t": "bye", "reason": "ok"}


def test_a_handshake_body_is_refused_before_parsing() -> None:
    host = Identity.generate()
    inv = invite.make_invite(host, signaling="ws://127.0.0.1:1")
    key = handshake.derive_key(inv)

    def sealed(inner: bytes) -> str:
        nonce = os.urandom(handshake.NONCE_LEN)
        aad = handshake._aad(inv.room, handshake.C2H)
        return b64e(nonce + ChaCha20Poly1305(key).encrypt(nonce, inner, aad))

    for inner in (deep(20_000), canonical_json({"body": b64e(deep(3000)), "sig": b64e(SIG)})):
        with pytest.raises(handshake.HandshakeError, match="malformed inside its encryption"):
            handshake.open_message(key, inv.room, handshake.C2H, sealed(inner))


def test_an_invite_and_a_join_request_are_refused_before_parsing() -> None:
    body = deep(1000)
    with pytest.raises(invite.InviteError, match="truncated or damaged"):
        invite.Invite.decode(f"{invite.INVITE_PREFIX}{b64e(body)}.{b64e(SIG)}")
    with pytest.raises(invite.InviteError, match="join request is damaged"):
        invite.JoinRequest.decode(pack_signed(body, SIG))


def test_a_relay_frame_is_refused_before_parsing() -> None:
    with pytest.raises(FrameError, match="nested 3000 levels") as info:
        parse_client_frame(deep(3000).decode())
    assert info.value.code == "bad-json"
    with pytest.raises(FrameError, match="over the limit of 100"):
        parse_client_frame('{"type":"ping"}' + " " * 100, max_bytes=100)
    client = SignalingClient("ws://127.0.0.1:1", "r" * 16, "host")
    assert client._on_frame(deep(100_000).decode()) is False
    assert client._on_frame(deep(1000).decode()) is False
    assert client._on_frame('{"type":"pong"}') is not None  # a flat frame is read


def test_a_deep_presence_state_is_malformed_not_a_crash() -> None:
    payload = sync._encode_awareness([(7, 1, "[" * 3000 + "]" * 3000)])
    with pytest.raises(sync._Malformed, match="nested 3000 levels"):
        sync._parse_awareness(payload, 3)
    honest = json.dumps({"role": "candidate", "name": "[Ada]", "cursor": {"anchor": 1}})
    assert sync._parse_awareness(sync._encode_awareness([(7, 1, honest)]), 3) == [
        (7, 1, honest)]


def test_a_deep_value_in_the_document_reads_as_nothing() -> None:
    assert document._loads("[" * 5000 + "]" * 5000) is None
    assert document._loads('{"started_at": 1, "duration_s": [[[1]]]}') == {
        "started_at": 1, "duration_s": [[[1]]]}


# ---- through the real peers ------------------------------------------------------------------


ATTACKS: dict[str, list[bytes]] = {
    # 100,000 deep is 200 KB: over the channel's own size limits, refused unread
    "integrity": [
        pack_signed(deep(100_000), SIG),
        pack_signed(deep(5000), SIG),           # under 16 KiB: the nesting limit refuses it
        pack_signed(b'{"v":1,"kind":"\xff\xfe"}', SIG),
        b"\xff\xfe\xfd not even a signed message",
        pack_signed(canonical_json({"v": 1, "seq": "zero", "kind": "paste"}), SIG),
        pack_signed(canonical_json([1, 2, 3]), SIG),
    ],
    "control": [
        deep(100_000),
        deep(1500),                             # under 4 KiB: the nesting limit refuses it
        b'{"t":"bye","reason":"\xff"}',
        b'{"t":"ping","id":"not a number","at":1}',
        b'[{"t":"bye","reason":"x"}]',
    ],
}


async def _assert_honest_session_goes_on(host: Host, cand: Candidate, marker: str) -> None:
    await cand.send_event("paste", {"phase": "instant", "chars": len(marker)})
    await eventually(lambda: bool(host.events) and host.events[-1].data.get("chars")
                     == len(marker) and not cand.outbox, what="the honest event's receipt")
    cand.doc.insert_code(0, marker, origin="candidate")
    await eventually(lambda: marker in host.doc.code_text, what="the doc still syncing")


@pytest.mark.parametrize("channel", sorted(ATTACKS))
async def test_a_modified_candidate_is_refused_and_the_link_stays(tmp_path: Path,
                                                                  channel: str) -> None:
    async with joined_pair(tmp_path, runs=False) as (_, host, cand):
        assert cand.link is not None
        links = host.links_made
        before = host.refused_total
        for raw in ATTACKS[channel]:
            await cand.link.conn.channels[channel].send(raw)
        await eventually(lambda: host.refused_total >= before + len(ATTACKS[channel]),
                         what=f"every {channel} message refused")
        refused = [r for r in host.refused if r["channel"] == channel]
        assert len(refused) == len(ATTACKS[channel])
        assert any("nested" in r["reason"] for r in refused)
        assert any("UTF-8" in r["reason"] for r in refused)
        await _assert_honest_session_goes_on(host, cand, f"# after the {channel} attack\n")
        assert host.links_made == links and host.link is not None  # the link was never torn down
        path = await host.end()
    out = verify_record(SessionRecord.load(path)).to_json()
    assert out["valid"], out["errors"]
    assert out["refused"] == len(ATTACKS[channel])
    assert [r["channel"] for r in out["refusals"]] == [channel] * len(ATTACKS[channel])
    assert any("nested" in r["reason"] for r in out["refusals"])
    assert out["events"] == 1


async def test_a_hostile_hosts_receipt_is_refused_by_the_candidate(tmp_path: Path) -> None:
    async with joined_pair(tmp_path, runs=False) as (_, host, cand):
        assert host.link is not None
        await host.link.conn.channels["integrity"].send(pack_signed(deep(600), SIG))
        await eventually(lambda: any("nested" in r["reason"] for r in cand.refused),
                         what="the candidate refusing the receipt")
        await _assert_honest_session_goes_on(host, cand, "# still here\n")
        assert cand.links_made == 1


def test_honest_messages_pass_the_limits() -> None:
    """Brackets in an honest event's text or a control message's reason are not nesting."""
    signer = EventSigner("s" * 22, Identity.generate())
    env = signer.sign("paste", {"phase": "instant", "chars": 3, "text": "[{[", "truncated": False})
    assert Envelope.decode(env.raw) == env
    bye = {"t": "bye", "reason": "[[[[{{{{"}
    assert control.decode(control.encode("bye", reason="[[[[{{{{")) == bye


def _lift_send_limit(cand: Candidate) -> None:
    """What a modified app does to send more than the host's SCTP limit (256 KiB) in one
    message: lift its own check of the size the host advertised."""
    assert cand.link is not None
    cand.link.conn.pc.sctp._remote_max_message_size = 0


@pytest.mark.parametrize("channel", ["integrity", "control"])
async def test_a_message_over_the_channel_limit_is_refused_unread_and_recorded(
        tmp_path: Path, channel: str) -> None:
    async with joined_pair(tmp_path, runs=False) as (_, host, cand):
        assert cand.link is not None
        links = host.links_made
        _lift_send_limit(cand)
        blob = b"\xff" * 900_000  # over the channel's 256 KiB, under SCTP's receive window
        await cand.link.conn.channels[channel].send(blob)
        await eventually(lambda: any(r["size"] == len(blob) for r in host.refused),
                         what=f"the 900 KB {channel} message refused")
        (refusal,) = [r for r in host.refused if r["size"] == len(blob)]
        assert refusal["channel"] == channel
        assert "900000 bytes is over the limit of 262144" in refusal["reason"]
        await _assert_honest_session_goes_on(host, cand, f"# after 900 KB on {channel}\n")
        assert host.links_made == links
        path = await host.end()
    out = verify_record(SessionRecord.load(path)).to_json()
    assert out["valid"], out["errors"]
    assert out["refused"] == 1 and out["refusals"][0]["channel"] == channel


async def test_a_10_mb_message_costs_the_sender_its_link_and_nothing_else(
        tmp_path: Path) -> None:
    """One message larger than SCTP's receive window (aiortc: 1 MiB) can never be completed:
    the window reopens only when a message does. The modified candidate's association stalls,
    the heartbeat ends the link, and the session builds a new one; the host never held more
    than its window of it, and the honest session goes on (its event is resent and
    receipted, the document syncs)."""
    async with joined_pair(tmp_path, runs=False) as (_, host, cand):
        assert cand.link is not None
        links = host.links_made
        _lift_send_limit(cand)
        await cand.link.conn.channels["integrity"].send(b"\xff" * 10_000_000)
        await eventually(lambda: host.links_made > links and host.is_connected,
                         what="a new link")
        await _assert_honest_session_goes_on(host, cand, "# after 10 MB\n")
        path = await host.end()
    out = verify_record(SessionRecord.load(path)).to_json()
    assert out["valid"], out["errors"]
    assert out["events"] == 1


async def test_a_flood_of_junk_is_counted_not_written_one_by_one(tmp_path: Path) -> None:
    """1,000 junk control messages at once: each is refused and counted, the first ones are
    itemised, the rest are sealed as counted rows; the honest session goes on. (Many more
    at once starve the link's own heartbeat, which shares the channel: the link is rebuilt.)"""
    async with joined_pair(tmp_path, runs=False) as (_, host, cand):
        assert cand.link is not None
        control = cand.link.conn.channels["control"]
        n = 1_000
        for _ in range(n):
            await control.send(b"junk")
        await eventually(lambda: host.refused_total >= n, timeout=30,
                         what="every junk message refused")
        cand.doc.insert_code(0, "still here\n")
        await eventually(lambda: host.doc.code_text.startswith("still here"))
        path = await host.end()
    out = verify_record(SessionRecord.load(path)).to_json()
    assert out["valid"], out["errors"]
    assert out["refused"] == n
    assert len(out["refusals"]) < 200  # itemised at most 20 a second, the rest counted
    assert any("not itemised" in r["reason"] and r["count"] > 1 for r in out["refusals"])
