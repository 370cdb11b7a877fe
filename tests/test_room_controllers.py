"""The page controllers emit named changes driven by their sources — the shared document's
observers, the peer's hooks (verified events, the link, refusals, the end) and their own
actions — with a real host and candidate over the real signaling server; no NiceGUI, and
nothing polled: a quiet session delivers nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from assessiq.core.identity import Identity
from assessiq.peer import Candidate, Host
from assessiq.room.candidate import CANDIDATE_TOPICS, CandidateController
from assessiq.room.changes import Changes
from assessiq.room.host import HOST_TOPICS, HostController, HostSetup
from assessiq.room.problems import Problem
from tests.peer_helpers import FAST, eventually, signaling_server


class Seen:
    """Every topic delivered by `changes`, in order (one per burst)."""

    def __init__(self, changes: Changes, topics: tuple[str, ...]) -> None:
        self.topics: list[str] = []
        for topic in topics:
            changes.on(topic, lambda topic=topic: self.topics.append(topic))

    def clear(self) -> None:
        self.topics.clear()

    def has(self, *topics: str) -> Callable[[], bool]:
        return lambda: all(t in self.topics for t in topics)


async def test_controllers_emit_what_their_sources_changed(tmp_path: Path) -> None:
    async with signaling_server() as url:
        host = await Host.start(signaling=url, config=FAST, identity=Identity.generate(),
                                session_path=tmp_path / "h.aiq", runs=False)
        controller = HostController(HostSetup(problem=Problem(title="t", statement="# t")),
                                    host, server=None)
        hs = Seen(controller.changes, HOST_TOPICS)
        cc = CandidateController(host.invite.encode(), config=FAST, signaling=url)
        cs = Seen(cc.changes, CANDIDATE_TOPICS)
        cand = await Candidate.join(host.invite.encode(), config=FAST,
                                    session_path=tmp_path / "c.aiq")
        try:
            cc.attach(cand)
            await host.connected(30)
            await cand.connected(30)
            await eventually(hs.has("connection"), what="the host's link event")
            assert cc.connected  # (`join` returns connected: the page starts from there)
            # the session's policy arrives with the document: waited for by its event
            await cc.wait_for_policy(10)
            assert cc.policy_source == "session"

            # Nothing changes: nothing is delivered (no poll behind the events).
            hs.clear()
            cs.clear()
            await asyncio.sleep(0.5)
            assert hs.topics == [] and cs.topics == []

            # The document: the host's own change, seen on both sides (the candidate's from
            # the sync); the candidate's typing reaches the host as "code".
            controller.set_phase("interview")
            await eventually(hs.has("phase", "timer"))
            await eventually(cs.has("phase", "timer"), what="the phase on the candidate's side")
            assert cand.doc.phase == "interview"
            cand.doc.insert_code(0, "print(1)\n", origin="candidate")
            await eventually(hs.has("code"), what="the candidate's code at the host")
            assert "runs" not in hs.topics
            host.doc.request_run("r1", by="host", at=time.time(), language="python",
                                 source="print(1)")
            await eventually(hs.has("runs"))
            await eventually(cs.has("runs"), what="the run list at the candidate")
            assert controller.switch_language("javascript")
            await eventually(cs.has("language", "code"), what="the language switch")

            # A signed event: the candidate's list (signed, then receipted), the host's
            # panel once verified.
            hs.clear()
            cs.clear()
            await cand.send_event("tab.hidden", {"phase": "instant"}, severity="warn")
            await eventually(hs.has("events"), what="the verified event at the host")
            await eventually(lambda: cs.topics.count("events") >= 1 and len(cand.receipts) == 1)
            await eventually(lambda: cs.topics.count("events") >= 2, what="the receipt's event")
            assert host.events[-1].kind == "tab.hidden"

            # The controllers' own actions, and refusals both ways.
            controller.add_note("clear thinking")
            await eventually(hs.has("notes"))
            assert controller.run() is not None  # this session runs no code: refused
            await eventually(hs.has("run_refusals"))
            host.refuse("control", "a test refusal")
            await eventually(hs.has("refusals"))
            await eventually(cs.has("refused_by_peer"), what="the host's refusal notice")
            ticket = await cc.request_run()
            assert ticket is not None
            await eventually(lambda: ticket.state == "refused")
            await eventually(lambda: cs.topics.count("run_refusals") >= 2)

            # The end: the candidate's page hears it from the peer, not by asking.
            cs.clear()
            await host.end()
            await eventually(cs.has("ended"), what="the end at the candidate")
            assert cc.ended
        finally:
            await cc.close()
            await host.close()
        assert cc.changes.listeners == len(CANDIDATE_TOPICS)  # its own "policy" one is gone
        assert cand.listeners == []
        controller.unwatch()
        assert host.listeners == []
