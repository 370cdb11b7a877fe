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
