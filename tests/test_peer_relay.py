"""Relay-only (iceTransportPolicy "relay") through a real coturn on 127.0.0.1."""

from __future__ import annotations

import dataclasses

from assessiq.core.identity import Identity
from assessiq.peer import Candidate, Host, IceServer
from tests.peer_helpers import (
    FAST,
    TURN_PASSWORD,
    TURN_USER,
    coturn,
    eventually,
    signaling_server,
)


async def test_relay_only_through_coturn_connects_and_syncs(tmp_path):
    async with coturn(tmp_path) as port, signaling_server() as url:
        turn = IceServer(f"turn:127.0.0.1:{port}", TURN_USER, TURN_PASSWORD)
        cfg = dataclasses.replace(FAST, ice_servers=(turn,), relay_only=True)
        host = await Host.start(identity=Identity.generate(), signaling=url, config=cfg,
                                session_path=tmp_path / "s.aiq")
        try:
            cand = await Candidate.join(host.invite.encode(), config=cfg, timeout=30)
            try:
                assert host.link is not None
                for session in (host, cand):
                    sdp = session.link.conn.local_sdp
                    assert "typ relay" in sdp and "typ host" not in sdp
                pair = cand.link.conn.pc.sctp.transport.transport._connection._nominated
                assert pair and all(p.local_candidate.type == "relay" for p in pair.values())
                cand.doc.insert_code(0, "via turn", origin="candidate")
                await eventually(lambda: host.doc.code_text == "via turn", what="sync")
                await cand.send_event("paste", {"phase": "instant", "chars": 1})
                await eventually(lambda: len(host.events) == 1, what="event")
            finally:
                await cand.close()
        finally:
            await host.close()
