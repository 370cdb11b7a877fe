"""Relay credentials nobody can abuse: issued only to the members of a room that has both,
at a bounded rate per address, refused by the real coturn once expired or forged, and carried
to the candidate only inside the encrypted handshake.

coturn runs on 127.0.0.1 with the shipped `deploy/turnserver.conf` (rendered with a test
secret); the signaling server runs with a `[turn]` configuration like `deploy/signaling.toml`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import shutil
import subprocess
import time
from typing import Any

import pytest
from aioice.stun import TransactionFailed

from assessiq.core.identity import Identity
from assessiq.peer import Candidate, Host, IceServer
from assessiq.peer.errors import ConnectError
from signaling import ConfigError, ServerConfig, SignalingServer, load_config
from signaling.config import Limits
from signaling.rooms import room_tag
from signaling.testing import WsClient
from signaling.turn import TurnConfig, turn_credentials
from tests.nat_helpers import (
    DEPLOY,
    TEST_SECRET,
    loopback_coturn,
    render_signaling_toml,
    turn_allocate,
)
from tests.peer_helpers import FAST, eventually

ROOM = "room-turn-creds-0123456789"
TTL = 3600.0


def turn_server(urls: tuple[str, ...], secret: str = TEST_SECRET,
                **limits: Any) -> SignalingServer:
    return SignalingServer(ServerConfig(host="127.0.0.1", port=0,
                                        limits=dataclasses.replace(Limits(), **limits),
                                        turn=TurnConfig(secret, urls, TTL)))


def has_ice(frame: dict[str, Any]) -> bool:
    return any(k.startswith("ice_") and k != "ice_urls" for k in frame)


async def full_room(port: int, room: str = ROOM) -> tuple[WsClient, WsClient, dict[str, Any],
                                                          dict[str, Any]]:
    """A host and a candidate in `room`: both clients, the candidate's `joined` and the
    host's `peer-joined`."""
    host = await WsClient.connect(port)
    joined = await host.join(room, "host")
    assert joined["type"] == "joined" and not has_ice(joined)
    candidate = await WsClient.connect(port)
    cand_joined = await candidate.join(room, "candidate")
    return host, candidate, cand_joined, await host.expect("peer-joined")


async def test_credentials_only_for_a_client_that_joined_a_room():
    urls = ("stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp")
    async with turn_server(urls) as server:
        stranger = await WsClient.connect(server.port)
        await stranger.send({"type": "ping"})
        refused = await stranger.expect("error", "not-joined")
        assert not has_ice(refused)
        # A candidate for a room with no host is refused, and gets nothing either.
        early = await WsClient.connect(server.port)
        refused = await early.join(ROOM, "candidate")
        assert refused["code"] == "unknown-room" and not has_ice(refused)

        # A host alone in its room (any room id will do to open one) is told the relay's
        # URLs but gets no credentials: they come once a candidate is in the room too.
        host = await WsClient.connect(server.port)
        before = time.time()
        alone = await host.join(ROOM, "host")
        assert alone["type"] == "joined" and alone["ice_urls"] == list(urls)
        assert not has_ice(alone)
        candidate = await WsClient.connect(server.port)
        cand_joined = await candidate.join(ROOM, "candidate")
        told = await host.expect("peer-joined")
        for joined in (cand_joined, told):
            assert joined["ice_urls"] == list(urls)
            expiry, user = joined["ice_username"].split(":")
            assert user == room_tag(ROOM) and ROOM not in joined["ice_username"]
            assert before + TTL - 1 <= int(expiry) <= time.time() + TTL
            assert joined["ice_expires"] == int(expiry)
            digest = hmac.new(TEST_SECRET.encode(), joined["ice_username"].encode(),
                              hashlib.sha1).digest()
            assert joined["ice_credential"] == base64.b64encode(digest).decode()
        # A client taking a role that is already held gets no credentials.
        third = await WsClient.connect(server.port)
        full = await third.join(ROOM, "candidate")
        assert full["code"] == "room-full" and not has_ice(full)
        for client in (stranger, early, host, candidate, third):
            await client.close()
    # A server without a [turn] configuration issues nothing.
    async with SignalingServer(ServerConfig(host="127.0.0.1", port=0)) as plain:
        client = await WsClient.connect(plain.port)
        assert not has_ice(await client.join(ROOM, "host"))
        await client.close()


async def test_credentials_per_address_are_rate_limited():
    """One address opening room after room, as host and candidate, gets at most the
    configured number of pairs per hour; the joins themselves still succeed."""
    async with turn_server(("turn:127.0.0.1:3478",), turn_credentials_per_ip_per_hour=4) \
            as server:
        clients: list[WsClient] = []
        issued = []
        for i in range(3):
            host, candidate, cand_joined, told = await full_room(server.port, f"{ROOM}-{i}")
            clients += [host, candidate]
            assert cand_joined["type"] == "joined" and told["type"] == "peer-joined"
            issued.append((has_ice(cand_joined), has_ice(told)))
        assert issued == [(True, True), (True, True), (False, False)]
        for client in clients:
            await client.close()


async def test_real_coturn_accepts_issued_credentials_and_refuses_expired_or_forged(tmp_path):
    async with loopback_coturn(tmp_path) as port:
        async with turn_server((f"turn:127.0.0.1:{port}",)) as server:
            host, candidate, _, joined = await full_room(server.port)
            await host.close()
            await candidate.close()
        user, password = joined["ice_username"], joined["ice_credential"]
        relayed = await turn_allocate("127.0.0.1", port, user, password)
        assert relayed[0] == "127.0.0.1"

        tag = room_tag(ROOM)
        expired = turn_credentials(TEST_SECRET, tag, -60)
        forged = turn_credentials("not-the-secret-of-this-relay", tag, TTL)
        stretched = f"{int(time.time()) + 30 * 86400}:{tag}"  # a later expiry, same password
        for name, (u, p) in {
            "expired": (expired.username, expired.credential),
            "forged": (forged.username, forged.credential),
            "expiry changed": (stretched, password),
            "the old static user": ("assessiq", "CHANGE_ME"),
        }.items():
            with pytest.raises(TransactionFailed) as exc:
                await turn_allocate("127.0.0.1", port, u, p)
            assert "401" in str(exc.value), name
        # Still good after the refusals: the refusals are about the credentials only.
        assert (await turn_allocate("127.0.0.1", port, user, password))[0] == "127.0.0.1"


async def test_real_coturn_relays_to_no_special_network(tmp_path):
    """The shipped denied-peer-ip list: a member's allocation may not open a channel into the
    private and special IPv4 networks (403); a public address is allowed. The IPv6 ranges
    (IPv4-mapped, NAT64) cannot be tried with an IPv4 allocation: coturn is shown to have
    taken them."""
    from aioice.turn import create_turn_endpoint

    async with loopback_coturn(tmp_path) as port:
        creds = turn_credentials(TEST_SECRET, "denied-peers", TTL)
        transport, _ = await create_turn_endpoint(
            asyncio.DatagramProtocol, server_addr=("127.0.0.1", port),
            username=creds.username, password=creds.credential, lifetime=60)
        inner = transport._TurnTransport__inner_protocol  # type: ignore[attr-defined]
        refused = {}
        try:
            for i, peer in enumerate(["203.0.113.5", "10.0.0.1", "192.0.0.8", "198.18.0.1",
                                      "198.19.255.1", "240.0.0.1", "255.255.255.254"]):
                try:
                    await inner.channel_bind(0x4000 + i, (peer, 9))
                    refused[peer] = 0
                except TransactionFailed as exc:
                    refused[peer] = exc.response.error_code
        finally:
            transport.close()
        assert refused == {"203.0.113.5": 0} | {p: 403 for p in list(refused)[1:]}
    log = (tmp_path / "turn.log").read_text(errors="replace")
    for line in ("::ffff:0.0.0.0-::ffff:255.255.255.255", "64:ff9b::-64:ff9b::ffff:ffff"):
        assert f"Black listing: {line}" in log


def test_turn_configuration_from_the_shipped_file_the_environment_and_flags(tmp_path,
                                                                           monkeypatch):
    monkeypatch.delenv("ASSESSIQ_TURN_SECRET", raising=False)
    with pytest.raises(ConfigError, match="placeholder"):
        load_config(DEPLOY / "signaling.toml")
    rendered = tmp_path / "signaling.toml"
    rendered.write_text(render_signaling_toml(TEST_SECRET, ["turn:198.51.100.7:3478"]))
    config = load_config(rendered)
    assert config.turn == TurnConfig(TEST_SECRET, ("turn:198.51.100.7:3478",), 14400)
    assert config.host == "0.0.0.0" and config.port == 8765
    # The environment's secret wins over the file's (so the file may keep a placeholder).
    monkeypatch.setenv("ASSESSIQ_TURN_SECRET", "from-the-environment-0123")
    config = load_config(DEPLOY / "signaling.toml", {"turn_ttl_seconds": 600.0})
    assert config.turn is not None and config.turn.secret == "from-the-environment-0123"
    assert config.turn.ttl_seconds == 600 and config.turn.urls[0].startswith("stun:")
    flags = load_config(None, {"turn_urls": ["turn:127.0.0.1:3478"]})
    assert flags.turn is not None and flags.turn.urls == ("turn:127.0.0.1:3478",)
    monkeypatch.delenv("ASSESSIQ_TURN_SECRET")
    assert load_config(None).turn is None
    with pytest.raises(ConfigError, match="no secret"):
        load_config(None, {"turn_urls": ["turn:127.0.0.1:3478"]})
    (tmp_path / "secret").write_text("short\n")
    short = tmp_path / "short.toml"
    short.write_text('[turn]\nurls = ["turn:127.0.0.1"]\nsecret_file = "secret"\n')
    with pytest.raises(ConfigError, match="at least 16"):
        load_config(short)
    bad = tmp_path / "bad.toml"
    bad.write_text('[turn]\nurls = ["http://x"]\nsecret = "0123456789abcdef0"\n')
    with pytest.raises(ConfigError, match="stun:, turn: or turns:"):
        load_config(bad)


def test_compose_file_uses_the_shipped_configuration():
    # The file's own lines (no YAML parser is a dependency); `docker compose config` below,
    # where the plugin exists, validates the whole file.
    compose = [line.strip() for line in (DEPLOY / "compose.yaml").read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#")]
    signaling = compose[compose.index("signaling:"):compose.index("coturn:")]
    coturn = compose[compose.index("coturn:"):]
    assert "- ./signaling.toml:/etc/assessiq/signaling.toml:ro" in signaling
    assert 'command: ["--config", "/etc/assessiq/signaling.toml"]' in signaling
    assert "- ./turnserver.conf:/etc/coturn/turnserver.conf:ro" in coturn
    assert 'command: ["-c", "/etc/coturn/turnserver.conf"]' in coturn
    turn_conf = (DEPLOY / "turnserver.conf").read_text()
    active = [line for line in turn_conf.splitlines() if line and not line.startswith("#")]
    assert "use-auth-secret" in active and "lt-cred-mech" not in active
    assert not any(line.startswith("user=") for line in active)


def test_docker_compose_config_validates_the_compose_file():
    """`docker compose config` (the plugin) or `docker-compose config` (Debian's
    docker-compose 1.29), whichever works here; neither needs a running engine."""
    commands = []
    docker = shutil.which("docker")
    if docker is not None and subprocess.run([docker, "compose", "version"],
                                             capture_output=True, timeout=30).returncode == 0:
        commands.append([docker, "compose"])
    legacy = shutil.which("docker-compose")
    if legacy is not None:
        commands.append([legacy])
    if not commands:
        pytest.skip("neither `docker compose` (plugin) nor `docker-compose` is installed: "
                    "the compose file was not validated")
    result = subprocess.run([*commands[0], "-f", str(DEPLOY / "compose.yaml"), "config"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "signaling.toml:/etc/assessiq/signaling.toml:ro" in result.stdout
    assert "turnserver.conf:/etc/coturn/turnserver.conf:ro" in result.stdout

class RecordingServer(SignalingServer):
    """The real signaling server, keeping every frame a client sent it."""

    seen: list[str]

    async def _on_message(self, client: Any, message: str | bytes) -> None:
        self.seen.append(message if isinstance(message, str) else message.decode("latin-1"))
        await super()._on_message(client, message)


async def test_host_servers_reach_a_relay_only_candidate_only_inside_the_handshake(tmp_path):
    async with loopback_coturn(tmp_path, loopback_peers=True) as port:
        # The host brings its own relay (its config, marked share); this signaling server
        # issues none. Its STUN server goes to the candidate too, but not a TURN password
        # it did not mark share: the candidate is the party nobody vouches for.
        creds = turn_credentials(TEST_SECRET, "host-own", TTL)
        own = IceServer(f"turn:127.0.0.1:{port}", creds.username, creds.credential, share=True)
        private = turn_credentials(TEST_SECRET, "host-private", TTL)
        kept = IceServer(f"turn:127.0.0.1:{port}", private.username, private.credential)
        stun = IceServer(f"stun:127.0.0.1:{port}")
        host_cfg = dataclasses.replace(FAST, ice_servers=(own, kept, stun))
        # The candidate has no server of its own and hides its address: it can only connect
        # through a relay it was told about in the handshake.
        cand_cfg = dataclasses.replace(FAST, relay_only=True)
        server = RecordingServer(ServerConfig(host="127.0.0.1", port=0))
        server.seen = []
        async with server:
            url = f"ws://127.0.0.1:{server.port}"
            host = await Host.start(identity=Identity.generate(), signaling=url,
                                    config=host_cfg, session_path=tmp_path / "s.aiq",
                                    runs=False)
            try:
                cand = await Candidate.join(host.invite.encode(), config=cand_cfg, timeout=30)
                try:
                    assert cand.link is not None and host.link is not None
                    given = cand.link.conn.ice_servers
                    assert [s.url for s in given] == [own.url, stun.url]
                    assert given[0].credential == own.credential
                    assert all(s.username != kept.username for s in given)
                    assert cand.link.conn.selected_pair() is not None
                    assert cand.link.conn.selected_pair()[0] == "relay"
                    assert "typ host" not in cand.link.conn.local_sdp
                    cand.doc.insert_code(0, "through the host's relay", origin="candidate")
                    await eventually(lambda: host.doc.code_text == "through the host's relay",
                                     what="sync")
                finally:
                    await cand.close()
            finally:
                await host.close()
        relayed = "\n".join(server.seen)
        assert '"relay"' in relayed and len(server.seen) >= 4
        for secret_part in (creds.credential, creds.username, f"127.0.0.1:{port}"):
            assert secret_part not in relayed
            for frame in server.seen:
                data = json.loads(frame).get("data", "")
                if data:
                    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
                    assert secret_part.encode() not in raw


async def test_relay_only_with_no_turn_server_anywhere_is_refused_with_the_reason(tmp_path):
    from tests.peer_helpers import signaling_server

    async with signaling_server() as url:
        with pytest.raises(ConnectError, match="relay-only needs a TURN server"):
            await Host.start(identity=Identity.generate(), signaling=url, runs=False,
                             config=dataclasses.replace(FAST, relay_only=True),
                             session_path=tmp_path / "h.aiq")
        host = await Host.start(identity=Identity.generate(), signaling=url, runs=False,
                                config=FAST, session_path=tmp_path / "s.aiq")
        try:
            with pytest.raises(ConnectError, match="relay-only needs a TURN server"):
                await Candidate.join(host.invite.encode(), timeout=10,
                                     config=dataclasses.replace(FAST, relay_only=True))
        finally:
            await host.close()



async def test_a_host_that_cannot_make_its_connection_tells_the_candidate_why(tmp_path,
                                                                          monkeypatch):
    """The host's side of an attempt fails before its offer (here: a stand-in for relay-only
    with no TURN server): the candidate stops at once with the host's reason, signed,
    instead of waiting out its timeout."""
    import assessiq.peer.host as host_module
    from tests.peer_helpers import signaling_server

    def no_connection(*args: Any, **kwargs: Any) -> Any:
        raise ConnectError("the host has no usable TURN server (test)")

    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, runs=False,
                                config=FAST, session_path=tmp_path / "h.aiq")
        monkeypatch.setattr(host_module, "PeerConnection", no_connection)
        try:
            with pytest.raises(ConnectError, match="no usable TURN server"):
                await Candidate.join(host.invite.encode(), config=FAST, timeout=60)
        finally:
            await host.close()
