"""The interviewer's live score is the sealed score: the same function over the same inputs.

A candidate who joins late was not silent while nobody was there: the sealed record counts
heartbeat gaps from the join, and the live page must too (it once counted them from when the
interviewer created the session, so an honest latecomer showed a gap and a penalty live that
the report did not have). A real host and candidate over the real signaling server and data
channels; the candidate joins well after the session was created.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from assessiq.core.identity import Identity
from assessiq.core.policy import Policy, default_policy_text
from assessiq.core.record import SessionRecord
from assessiq.core.verify import verify_record
from assessiq.peer import Candidate, Host
from assessiq.room.host import HostController, HostSetup
from assessiq.room.problems import Problem
from tests.peer_helpers import FAST, eventually, signaling_server

MAX_GAP = 5.0
POLICY = Policy.from_toml(default_policy_text().replace("max_gap = 20.0", f"max_gap = {MAX_GAP}"))


async def _beat(cand: Candidate) -> None:
    """An honest page: a heartbeat every half second until cancelled."""
    while True:
        await cand.send_event("browser.heartbeat")
        await asyncio.sleep(0.5)


async def test_a_late_joining_candidate_shows_the_sealed_score_live(tmp_path: Path) -> None:
    async with signaling_server() as url:
        host = await Host.start(signaling=url, config=FAST, identity=Identity.generate(),
                                session_path=tmp_path / "h.aiq", policy=POLICY, runs=False)
        setup = HostSetup(problem=Problem(title="t", statement="# t"), policy=POLICY)
        controller = HostController(setup, host, server=None)
        await asyncio.sleep(2 * MAX_GAP)  # the interviewer waits in the lobby
        cand = await Candidate.join(host.invite.encode(), config=FAST,
                                    session_path=tmp_path / "c.aiq")
        beating: asyncio.Task[None] | None = None
        try:
            await host.connected(30)
            await cand.connected(30)
            beating = asyncio.create_task(_beat(cand))  # beats until the seal
            await eventually(lambda: len(host.events) >= 6, what="heartbeats received")
            live = controller.evaluation(now=time.time())
            beating.cancel()
            path = await host.end()
            # the page's panel keeps asking after the seal closed the file: the same answer
            assert controller.evaluation(now=time.time()).gaps == []
        finally:
            if beating is not None:
                beating.cancel()
            await cand.close()
            await host.close()
    sealed = verify_record(SessionRecord.load(path))
    assert sealed.valid, sealed.errors
    assert sealed.evaluation is not None
    assert live.gaps == sealed.evaluation.gaps == []  # waiting in the lobby is not silence
    assert live.score == sealed.evaluation.score == 100
    assert live.explanation == sealed.evaluation.explanation
