"""zeroconf discovery of the host's own signaling endpoint, pinned to 127.0.0.1."""

from __future__ import annotations

from assessiq.discovery import Advertiser, discover, room_tag


async def test_advertised_endpoint_is_found_on_loopback():
    room = "R" * 22
    async with Advertiser(room, "127.0.0.1", 45678, interfaces=["127.0.0.1"]):
        url = await discover(room, timeout=8.0, interfaces=["127.0.0.1"])
    assert url == "ws://127.0.0.1:45678/ws"


async def test_other_rooms_are_not_picked():
    async with Advertiser("A" * 22, "127.0.0.1", 45679, interfaces=["127.0.0.1"]):
        assert await discover("B" * 22, timeout=2.5, interfaces=["127.0.0.1"]) is None


def test_room_tag_hides_the_room():
    tag = room_tag("secret-room-id-123456")
    assert len(tag) == 20 and "secret" not in tag
    assert tag != room_tag("secret-room-id-123457")


async def test_lan_mode_host_is_found_and_joined_without_a_server(tmp_path):
    from assessiq.core.identity import Identity
    from assessiq.peer import Candidate, Host
    from tests.peer_helpers import FAST, eventually

    host = await Host.start(identity=Identity.generate(), lan=True, lan_address="127.0.0.1",
                            advertise_interfaces=["127.0.0.1"], config=FAST,
                            session_path=tmp_path / "s.aiq")
    try:
        assert host.invite.lan and host.server is not None
        cand = await Candidate.join(host.invite.encode(), config=FAST,
                                    discover_interfaces=["127.0.0.1"], discover_timeout=8)
        try:
            assert cand.found_by == "zeroconf"
            host.doc.insert_code(0, "lan", origin="host")
            await eventually(lambda: cand.doc.code_text == "lan", what="sync")
        finally:
            await cand.close()
    finally:
        await host.close()


async def test_lan_with_an_outside_server_does_not_promise_lan(tmp_path):
    """Only the embedded server is advertised: an invite that said LAN would make the
    candidate wait out a discovery that cannot succeed."""
    from assessiq.core.identity import Identity
    from assessiq.peer import Host
    from tests.peer_helpers import FAST, signaling_server

    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, lan=True,
                                config=FAST, session_path=tmp_path / "s.aiq", runs=False)
        try:
            assert not host.invite.lan and host.invite.signaling == url
            assert host.advertiser is None
        finally:
            await host.close()
