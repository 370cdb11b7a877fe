"""A hostile signaling server: every case ends in a clear refusal or a correct recovery,
never in a connection to the wrong party."""

from __future__ import annotations

import dataclasses

import pytest

from assessiq.core.encoding import b64d, b64e
from assessiq.core.handshake import C2H, H2C, derive_key, open_message, seal_message
from assessiq.core.identity import Identity
from assessiq.core.invite import make_invite
from assessiq.peer import Candidate, ConnectError, Host
from tests.peer_helpers import FAST, HostileSignaling, eventually

CFG = dataclasses.replace(FAST, handshake_timeout=1.5)


def flip(data: str) -> str:
    raw = bytearray(b64d(data))
    raw[len(raw) // 2] ^= 0x40
    return b64e(bytes(raw))


async def start_pair(tmp_path, server: HostileSignaling, *, join_timeout: float = 15.0):
    host = await Host.start(identity=Identity.generate(), signaling=server.url, config=CFG,
                            session_path=tmp_path / "s.aiq")
    try:
        cand = await Candidate.join(host.invite.encode(), config=CFG, timeout=join_timeout)
    except BaseException:
        await host.close()
        raise
    return host, cand


async def expect_refusal(tmp_path, server: HostileSignaling, match: str) -> Host:
    host = await Host.start(identity=Identity.generate(), signaling=server.url, config=CFG,
                            session_path=tmp_path / "s.aiq")
    try:
        with pytest.raises(ConnectError, match=match):
            await Candidate.join(host.invite.encode(), config=CFG, timeout=15)
        assert host.links_made == 0, "the host connected to someone despite the refusal"
    finally:
        await host.close()
    return host


async def test_tampered_offer_is_refused(tmp_path):
    def tamper(data, role, n):
        return [flip(data)] if role == "host" else [data]

    async with HostileSignaling(tamper) as server:
        await expect_refusal(tmp_path, server, "failed authentication")


async def test_reflected_hello_is_refused(tmp_path):
    server = HostileSignaling()

    async def reflect(data, role, n):
        if role == "candidate":
            await server.deliver("candidate", data)  # back to the sender
            return []
        return [data]

    server.tamper = reflect
    async with server:
        await expect_refusal(tmp_path, server, "failed authentication")


async def test_server_substituting_its_own_host_is_refused(tmp_path):
    """The server answers the candidate itself with a complete offer made under its own
    invite and key for the same room: it cannot produce the real invite's key."""
    server = HostileSignaling()

    async def impostor(data, role, n):
        if role != "candidate":
            return []
        fake_host = Identity.generate()
        fake = make_invite(fake_host, signaling=server.url)
        fake = dataclasses.replace(fake, room=room[0])
        body = {"v": 1, "kind": "offer", "room": room[0], "dir": H2C, "attempt": "x", "n": 0,
                "sdp": "v=0\r\na=fingerprint:sha-256 AA:BB\r\n", "device": ""}
        await server.deliver("candidate",
                             seal_message(derive_key(fake), room[0], H2C, fake_host, body))
        return []

    room: list[str] = []
    server.tamper = impostor
    async with server:
        host = await Host.start(identity=Identity.generate(), signaling=server.url, config=CFG,
                                session_path=tmp_path / "s.aiq")
        room.append(host.invite.room)
        try:
            with pytest.raises(ConnectError, match="failed authentication"):
                await Candidate.join(host.invite.encode(), config=CFG, timeout=15)
            assert host.links_made == 0 and host.device_key is None
        finally:
            await host.close()


async def test_server_with_secret_rewriting_sdp_fingerprint_is_refused(tmp_path):
    """Even a server that learned the invite secret cannot rewrite the SDP (fingerprint or
    candidates): it cannot sign as the host."""
    server = HostileSignaling()
    key: list[bytes] = []
    room: list[str] = []

    def rewrite(data, role, n):
        if role != "host":
            return [data]
        body, _, _ = open_message(key[0], room[0], H2C, data)
        sdp = body["sdp"]
        lines = [ln for ln in sdp.split("\r\n") if ln.startswith("a=fingerprint:")]
        body["sdp"] = sdp.replace(lines[0], "a=fingerprint:sha-256 " + ":".join(["66"] * 32))
        body["sdp"] = body["sdp"].replace("127.0.0.1", "127.0.0.2")  # and the candidates
        return [seal_message(key[0], room[0], H2C, Identity.generate(), body)]

    server.tamper = rewrite
    async with server:
        host = await Host.start(identity=Identity.generate(), signaling=server.url, config=CFG,
                                session_path=tmp_path / "s.aiq")
        key.append(derive_key(host.invite))
        room.append(host.invite.room)
        try:
            with pytest.raises(ConnectError, match="not signed by the host key"):
                await Candidate.join(host.invite.encode(), config=CFG, timeout=15)
            assert host.links_made == 0
        finally:
            await host.close()


async def test_server_with_secret_rewriting_answer_is_refused_by_host(tmp_path):
    server = HostileSignaling()
    key: list[bytes] = []
    room: list[str] = []

    def rewrite(data, role, n):
        if role != "candidate":
            return [data]
        body, _, _ = open_message(key[0], room[0], C2H, data)
        if body["kind"] != "answer":
            return [data]
        body["sdp"] = body["sdp"].replace("a=fingerprint:sha-256 ", "a=fingerprint:sha-256 00")
        return [seal_message(key[0], room[0], C2H, Identity.generate(), body)]

    server.tamper = rewrite
    async with server:
        host = await Host.start(identity=Identity.generate(), signaling=server.url, config=CFG,
                                session_path=tmp_path / "s.aiq")
        key.append(derive_key(host.invite))
        room.append(host.invite.room)
        try:
            with pytest.raises(ConnectError, match=r"refused the connection.*pinned device"):
                await Candidate.join(host.invite.encode(), config=CFG, timeout=15)
            assert any("pinned device key" in r for r in host.refusals), host.refusals
            assert host.links_made == 0
        finally:
            await host.close()


async def test_injected_hello_without_secret_is_refused_and_real_candidate_connects(tmp_path):
    server = HostileSignaling()

    async def inject(data, role, n):
        if role == "candidate" and n == 0:
            other = make_invite(Identity.generate(), signaling=server.url)
            junk = seal_message(derive_key(other), other.room, C2H, Identity.generate(),
                                {"v": 1, "kind": "hello"})
            return [junk, flip(data), data]
        return [data]

    server.tamper = inject
    async with server:
        host, cand = await start_pair(tmp_path, server)
        try:
            assert len(host.refusals) >= 2  # the forged hello and the altered copy
            assert host.device_key == cand.device.public_key
        finally:
            await cand.close()
            await host.close()


async def test_dropped_and_duplicated_messages_recover(tmp_path):
    def tamper(data, role, n):
        if role == "host" and n == 0:
            return []  # drop the first offer: the candidate retries with a new attempt
        return [data, data]  # duplicate everything else

    async with HostileSignaling(tamper) as server:
        host, cand = await start_pair(tmp_path, server)
        try:
            assert cand.attempts >= 2
            host.doc.insert_code(0, "ok", origin="host")
            await eventually(lambda: cand.doc.code_text == "ok", what="sync")
            assert host.device_key == cand.device.public_key
        finally:
            await cand.close()
            await host.close()


async def test_replayed_old_offer_is_ignored_and_session_recovers(tmp_path):
    server = HostileSignaling()
    replayed: list[int] = []

    async def tamper(data, role, n):
        if role == "host" and n >= 1 and not replayed:
            replayed.append(n)
            return [server.seen["host"][0]]  # the offer of the first connection, replayed
        return [data]

    server.tamper = tamper
    async with server:
        host, cand = await start_pair(tmp_path, server)
        try:
            assert cand.link is not None
            await cand.link.conn.pc.close()  # the link drops; the candidate handshakes again
            await eventually(lambda: cand.links_made >= 2 and cand.is_connected, what="relink")
            assert replayed, "the old offer was never replayed"
            assert cand.attempts >= 3  # the replayed offer was ignored; a new attempt won
            cand.doc.insert_code(0, "after", origin="candidate")
            await eventually(lambda: host.doc.code_text == "after", what="sync")
        finally:
            await cand.close()
            await host.close()


@pytest.mark.parametrize("role", ["candidate", "host"])
async def test_reordered_messages_end_in_the_right_connection(tmp_path, role):
    """The server holds one side's first message back and delivers it after the second
    (the candidate's hellos, or the host's offers, swapped): the stale one is ignored."""
    held: list[str] = []
    swapped: list[bool] = []

    def tamper(data, sender, n):
        if sender != role:
            return [data]
        if n == 0:
            held.append(data)
            return []
        if n == 1:
            swapped.append(True)
            return [data, held[0]]
        return [data]

    async with HostileSignaling(tamper) as server:
        host, cand = await start_pair(tmp_path, server)
        try:
            assert swapped, "the server never had a second message to swap with"
            assert host.device_key == cand.device.public_key
            assert host.links_made == 1
            cand.doc.insert_code(0, "in order", origin="candidate")
            await eventually(lambda: host.doc.code_text == "in order", what="sync")
        finally:
            await cand.close()
            await host.close()
