"""The interviewer's app resumes an unsealed session from its start page: the same invite,
notes, phase and timer come back, the page says the app was restarted, the candidate's app
(still running) reconnects by itself, and the sealed record shows the restart. The
real-process kills are in tests/test_resume_*.py; here the app's pages and controller."""

from __future__ import annotations

from nicegui.testing import User
from test_ui_pages import _second_user
from test_ui_session_policy import _connect, _join, app_state  # noqa: F401 (a fixture)

from assessiq.ui.app import AppState
from tests.peer_helpers import eventually


async def test_the_interviewer_resumes_from_the_start_page(
        app_state: tuple[AppState, User]) -> None:  # noqa: F811
    state, host_user = app_state
    async with _second_user() as cand_user:
        cand = await _connect(state, host_user, cand_user, None)
        host = state.host
        assert host is not None
        host_user.find(marker="start").click()
        await eventually(lambda: host.doc.phase == "interview")
        host.add_note("strong start")
        timer = host.doc.timer()
        assert timer is not None
        cand.doc.insert_code(0, "# before\n", origin="candidate")
        await eventually(lambda: "# before" in host.doc.code_text)
        invite, room = host.invite_text, host.host.invite.room
        await host.close()  # the app stops without a seal (the process kill: test_resume_*)
        state.host = None
        cand.doc.insert_code(0, "# while away\n", origin="candidate")

        await host_user.open(f"/{state.token}/host")
        await host_user.should_see("1 unfinished session", retries=100)
        host_user.find(marker=f"resume-{room[:8]}").click()
        await eventually(lambda: state.host is not None, timeout=30)
        resumed = state.host
        assert resumed is not None and resumed is not host
        await host_user.should_see("Your app was restarted", retries=200)
        assert resumed.invite_text == invite
        assert [text for _, text in resumed.notes] == ["strong start"]
        assert resumed.doc.phase == "interview" and resumed.doc.timer() == timer
        assert resumed.setup.problem.title == host.setup.problem.title
        assert resumed.resumed is not None and resumed.resumed["away_s"] >= 0
        # The candidate's app reconnects by itself; what it typed meanwhile arrives.
        await eventually(lambda: resumed.connected, timeout=40)
        await eventually(lambda: "# while away" in resumed.doc.code_text, timeout=20)
        await eventually(lambda: cand.doc.code_text == resumed.doc.code_text)
        # The start page no longer offers it (this app holds it) and goes to the room.
        ended = await resumed.end()
        assert ended.verdict.valid, ended.verdict
        assert [r["side"] for r in ended.verdict.restarts] == ["host"]
        report = ended.report_md.read_text(encoding="utf-8")
        assert "## Restarts (1: an app died and resumed the session)" in report
        assert "interviewer down" in report and "signed by the host: ok" in report


async def test_the_candidate_resumes_by_joining_again(
        app_state: tuple[AppState, User]) -> None:  # noqa: F811
    state, host_user = app_state
    async with _second_user() as cand_user:
        first = await _connect(state, host_user, cand_user, None)
        host = state.host
        assert host is not None
        host_user.find(marker="start").click()
        await eventually(lambda: host.doc.phase == "interview")
        first.doc.insert_code(0, "# before\n", origin="candidate")
        await eventually(lambda: "# before" in host.doc.code_text)
        await first.close()  # the candidate's app dies (the process kill: test_resume_*)
        host.doc.insert_code(0, "# meanwhile\n", origin="host")
        # The app started again with the same invite: consent, join — and it continues.
        state.candidate = None
        cand = await _join(state, cand_user)
        assert cand is not first and cand.resumed is not None
        assert cand.candidate is not None and cand.candidate.device.public_key == \
            first.candidate.device.public_key  # type: ignore[union-attr]
        await cand_user.should_see("Your app was restarted", retries=100)
        # The camera check page beats too: a calibration after a crash is not a gap.
        await eventually(lambda: any(e.kind == "browser.heartbeat" for e in cand.sent),
                         timeout=15, what="a heartbeat from the check page")
        await eventually(lambda: "# meanwhile" in cand.doc.code_text, timeout=20)
        assert "# before" in cand.doc.code_text
        ended = await host.end()
        assert ended.verdict.valid, ended.verdict.errors
        assert [r["side"] for r in ended.verdict.restarts] == ["candidate"]
