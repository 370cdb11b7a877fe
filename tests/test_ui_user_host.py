"""The interviewer's interview room with NiceGUI's simulated `User` (no browser): its views
render the `HostController` and follow its change events — a run result after the
document's run list changes, a warning after an event is verified, a refusal, a note, the
phase, the language and the connection — on a real host and candidate over the real
signaling server; the page's subscriptions end with its client."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nicegui import ui
from nicegui.testing.user_simulation import user_simulation

from assessiq.core.identity import Identity
from assessiq.peer import Candidate, Host
from assessiq.room.host import HostController, HostSetup
from assessiq.room.problems import BANK
from assessiq.ui.app import AppState, register_pages
from assessiq.ui.editor import SharedEditor
from tests.peer_helpers import FAST, eventually, signaling_server

pytestmark = pytest.mark.timeout(90)

RESULT = {"run": {"stdout": "6\n", "stderr": "", "output": "6\n", "code": 0, "signal": None},
          "tests": [{"name": "three numbers", "passed": True},
                    {"name": "negative", "passed": False, "diff": "-1\n+2\n"}]}


async def test_the_host_room_follows_its_controller(tmp_path: Path, data_dir: str) -> None:
    async with signaling_server() as url:
        peer = await Host.start(signaling=url, config=FAST, identity=Identity.generate(),
                                session_path=tmp_path / "h.aiq", runs=False)
        host = HostController(HostSetup(problem=BANK["Sum of numbers"]), peer, server=None)
        peer.doc.set_problem(BANK["Sum of numbers"].statement, origin="host")
        cand = await Candidate.join(peer.invite.encode(), config=FAST,
                                    session_path=tmp_path / "c.aiq")
        state = AppState()
        state.host = host
        try:
            await peer.connected(30)
            host.set_phase("interview")
            before = host.changes.listeners
            async with user_simulation() as user:
                register_pages(state, ("host",))
                await user.open(f"/{state.token}/host/interview")
                await user.should_see("No runs yet.", retries=100)
                await user.should_see("candidate connected", retries=100)
                assert host.changes.listeners > before  # the page follows its controller

                # A run requested and answered in the document: the results show it.
                peer.doc.request_run("r1", by="candidate", at=time.time(),
                                     language="python", source="print(6)")
                await user.should_see("running…", retries=100)
                peer.doc.set_run_result("r1", RESULT)
                await user.should_see("public tests 1/2 passed", retries=100)
                await user.should_see("✗ FAILED: negative", retries=100)

                # A signed event, verified: the integrity panel lists it.
                await cand.send_event("tab.hidden", {"phase": "instant"}, severity="warn")
                await user.should_see("tab.hidden instant", retries=100)
                await user.should_see("1 verified events (0 heartbeats)", retries=100)

                # A refusal, a note, the phase and the language changed elsewhere.
                peer.refuse("control", "a malformed test message")
                await user.should_see("Refused from the candidate's app (1)", retries=100)
                await user.should_see("a malformed test message", retries=100)
                user.find(marker="note").type("strong on invariants")
                user.find(marker="add-note").click()
                await user.should_see("strong on invariants", retries=100)
                host.set_phase("wrap-up")  # (another tab of the interviewer's)
                toggle = user.find(marker="phase").elements.pop()
                assert isinstance(toggle, ui.toggle)
                await eventually(lambda: toggle.value == "wrap-up", what="the phase toggle")
                assert host.switch_language("javascript")
                select = user.find(marker="language-switch").elements.pop()
                editor = user.find(marker="editor").elements.pop()
                assert isinstance(select, ui.select) and isinstance(editor, SharedEditor)
                await eventually(lambda: select.value == "javascript"
                                 and editor.language == "javascript", what="the language")

                # The candidate leaves: the header says so (the link's event).
                await cand.close()
                await user.should_see("candidate offline", retries=200)

                # The only timers left are clocks: nothing ticks faster than once a second
                # (but NiceGUI's own code blocks, for their copy buttons).
                timers = [t for t in user.find(kind=ui.timer).elements
                          if t.parent_slot is None or not isinstance(t.parent_slot.parent, ui.code)]
                assert timers and all(t.interval >= 1.0 for t in timers)

                # Closing the page ends its subscriptions.
                user.client.delete()
                assert host.changes.listeners == before
        finally:
            await cand.close()
            await host.close()
