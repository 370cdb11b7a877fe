"""The candidate's interview room with NiceGUI's simulated `User` (no browser): its views
render the `CandidateController` and follow its change events — the phase, a run result, a
browser signal signed and listed with its notice, a condition sent when it is due (a timer
for that moment, not a poll), and the end: read-only editor, Run off, the ended banner, the
timer stopped — on a real host and candidate over the real signaling server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nicegui import ui
from nicegui.testing import User
from nicegui.testing.user_simulation import user_simulation

from assessiq.core.identity import Identity
from assessiq.peer import Candidate, Host
from assessiq.room.candidate import CandidateController
from assessiq.ui.app import AppState, register_pages
from tests.peer_helpers import FAST, eventually, signaling_server

pytestmark = pytest.mark.timeout(90)

RESULT = {"run": {"stdout": "6\n", "stderr": "", "output": "6\n", "code": 0, "signal": None},
          "tests": [{"name": "three numbers", "passed": True}]}


def _listed(user: User) -> str:
    table = user.find(marker="sent-table").elements.pop()
    assert isinstance(table, ui.table)
    return "\n".join(f"{r['kind']}: {r['what']}" for r in table.rows)


async def test_the_candidate_room_follows_its_controller(tmp_path: Path, data_dir: str
                                                         ) -> None:
    async with signaling_server() as url:
        host = await Host.start(signaling=url, config=FAST, identity=Identity.generate(),
                                session_path=tmp_path / "h.aiq", runs=False)
        cand = CandidateController(host.invite.encode(), name="Grace", config=FAST,
                                   signaling=url)
        cand.consent()
        cand.attach(await Candidate.join(host.invite.encode(), config=FAST,
                                         session_path=tmp_path / "c.aiq"))
        state = AppState()
        state.candidate = cand
        try:
            await cand.wait_for_policy()
            async with user_simulation() as user:
                register_pages(state, ("candidate",))
                await user.open(f"/{state.token}/join/interview")
                await user.should_see("What is sent about you", retries=100)
                await user.should_see("phase: lobby", retries=100)
                await user.should_see("No runs yet.", retries=100)
                await user.should_see("connected", retries=100)

                # The interviewer starts: the phase and the timer, from the document.
                host.doc.set_phase("interview", origin="host")
                host.doc.start_timer(600, time.time(), origin="host")
                await user.should_see("phase: interview", retries=100)
                await user.should_see("time left 09:", retries=100)

                # A run answered in the document.
                host.doc.request_run("r1", by="candidate", at=time.time(),
                                     language="python", source="print(6)")
                host.doc.set_run_result("r1", RESULT)
                await user.should_see("public tests 1/1 passed", retries=100)

                # The tab hidden long enough: sent when due (no "off" yet, no poll), listed,
                # and the notice in plain words.
                await cand.on_signal({"kind": "tab.hidden", "state": "on"})
                await eventually(lambda: any(e.kind == "tab.hidden" for e in cand.sent),
                                 timeout=10, what="the due tab.hidden start")
                await eventually(lambda: "tab.hidden" in _listed(user), what="the listing")
                await cand.on_signal({"kind": "tab.hidden", "state": "off"})
                await user.should_see("Please stay on the interview tab", retries=100)
                await eventually(lambda: any(e.kind == "tab.hidden" for e in host.events))

                # The end: the page turns read-only with the banner, Run off, timer stopped.
                await host.end()
                await user.should_see(marker="ended-banner", retries=200)
                await user.should_see("the interview has ended", retries=100)
                await user.should_see("the interviewer ended the session", retries=100)
                editor = user.find(marker="editor").elements.pop()
                assert editor.props["readOnly"] is True
                run = user.find(marker="run").elements.pop()
                assert isinstance(run, ui.button) and not run.enabled
        finally:
            await cand.close()
            await host.close()
