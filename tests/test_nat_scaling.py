"""Several signaling servers behind one balancer: both members of a room name it the same way in
the URL they connect to (`?r=<room tag>`), so a balancer hashing on that parameter (HAProxy
`balance url_param r`, nginx `hash $arg_r consistent`) sends them to the same instance and the
instances share nothing. The server itself ignores the parameter."""

from __future__ import annotations

import asyncio
from typing import Any

from assessiq.peer.signaling_client import SignalingClient, affinity_url
from signaling import ServerConfig, SignalingServer
from signaling.rooms import room_tag

ROOMS = [f"room-affinity-{i:02d}-0123456789" for i in range(12)]


class PathRecorder(SignalingServer):
    """The real server, keeping the request path of every WebSocket connection."""

    paths: list[str]

    def _process_request(self, connection: Any, request: Any) -> Any:
        self.paths.append(request.path)
        return super()._process_request(connection, request)


def test_the_affinity_parameter_is_the_room_tag_and_keeps_other_query_parts():
    assert affinity_url("ws://s:1/ws", ROOMS[0]) == f"ws://s:1/ws?r={room_tag(ROOMS[0])}"
    assert affinity_url("wss://s/ws?x=1", "r" * 16) == f"wss://s/ws?x=1&r={room_tag('r' * 16)}"


async def test_both_members_of_each_room_connect_with_the_same_room_tag():
    server = PathRecorder(ServerConfig(host="127.0.0.1", port=0))
    server.paths = []
    async with server:
        url = f"ws://127.0.0.1:{server.port}"
        clients = []
        for room in ROOMS:
            for role in ("host", "candidate"):
                client = SignalingClient(url, room, role)
                await client.start()
                clients.append(client)
        await clients[0].send("hello")
        assert await asyncio.wait_for(clients[1].recv(), 5) == "hello"
        for client in clients:
            await client.close()
    expected = [f"/ws?r={room_tag(room)}" for room in ROOMS for _ in range(2)]
    assert server.paths == expected
    assert len(set(server.paths)) == len(ROOMS)  # rooms spread; each room's pair together
