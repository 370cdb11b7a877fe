"""Page logic with NiceGUI's simulated `User` (no browser): the host's and the candidate's
screens in one process, connected through the real peer layer on 127.0.0.1, with the call
(synthetic cameras both ways), the candidate's real proctor, and runs in the host's sandbox."""

from __future__ import annotations

import html
import re
import time
from collections.abc import AsyncIterator

import cv2
import numpy as np
import pytest
from nicegui import ui
from nicegui.testing import User
from nicegui.testing.user_simulation import user_simulation

from assessiq.core.record import SessionRecord
from assessiq.room.call import plan_call
from assessiq.room.replay import Replay
from assessiq.ui.app import AppState, register_pages
from tests.peer_helpers import eventually

pytestmark = pytest.mark.timeout(90)

# The candidate's synthetic camera: in view (the camera check calibrates on it), then out of
# view long enough for the proctor's face.absent, then back.
SCENES = [(9.0, "present"), (7.0, "absent"), (1e7, "present")]


@pytest.fixture
async def app_state(data_dir: str) -> AsyncIterator[tuple[AppState, User]]:
    state = AppState()
    state.calls["host"] = plan_call("host", camera="synthetic", microphone="synthetic",
                                    speaker=None)
    state.calls["candidate"] = plan_call("candidate", camera="synthetic",
                                         microphone="synthetic", speaker=None, scenes=SCENES)
    async with user_simulation() as user:
        register_pages(state, ("host", "candidate", "replay"))
        try:
            yield state, user
        finally:
            if state.host is not None:
                await state.host.close()
            if state.candidate is not None:
                await state.candidate.close()


async def test_pages_need_the_run_secret(app_state: tuple[AppState, User]) -> None:
    state, user = app_state
    for path in ("/wrong-token/host", "/wrong-token/join", "/wrong-token/replay", "/",
                 f"/{state.token[:-1]}/host"):
        response = await user.http_client.get(path)
        assert response.status_code == 404, path
    response = await user.http_client.get(f"/{state.token}/host")
    assert response.status_code == 200


async def test_host_creates_a_session_and_candidate_joins(
        app_state: tuple[AppState, User]) -> None:
    state, host_user = app_state
    await host_user.open(f"/{state.token}/host")
    await host_user.should_see("Create a session", retries=100)
    host_user.find(marker="create").click()
    await eventually(lambda: state.host is not None)
    await host_user.should_see("Your key fingerprint", retries=100)
    assert state.host is not None
    invite = state.host.invite_text
    await host_user.should_see(state.host.host_fingerprint, retries=100)
    # the invite also as a link a mail client opens: the signaling server's join page
    link = host_user.find(marker="invite-link").elements.pop()
    assert isinstance(link, ui.link) and link.props["href"] == state.host.invite_link
    assert str(link.props["href"]).startswith("http://127.0.0.1:")
    assert str(link.props["href"]).endswith(f"/join#{invite}")
    await host_user.should_see("Waiting for the candidate", retries=100)
    # The invite is shown as text; the problem, language and phase are in the shared doc.
    assert host_user.find(ui.textarea).elements.pop().value == invite
    assert state.host.doc.phase == "lobby" and state.host.doc.problem.startswith("# ")
    assert [t["name"] for t in state.host.doc.public_tests()] == ["three numbers", "negative"]

    # The candidate, in a second simulated browser of the same app.
    async with _second_user() as cand_user:
        await cand_user.open(f"/{state.token}/join")
        cand_user.find(marker="invite").type("aiq1.garbage.more")
        cand_user.find(marker="check-invite").click()
        await cand_user.should_see("truncated or damaged", retries=100)
        assert state.candidate is None
        cand_user.find(marker="invite").clear().type(invite)
        cand_user.find(marker="name").type("Grace")
        cand_user.find(marker="check-invite").click()
        await cand_user.should_see(state.host.host_fingerprint, retries=100)
        await cand_user.should_see("What is monitored, and what leaves this computer", retries=100)
        await cand_user.should_see("never its text", retries=100)
        go = cand_user.find(marker="continue").elements.pop()
        assert isinstance(go, ui.button)
        assert not go.enabled  # nothing happens before consent
        cand_user.find(marker="agree").click()
        assert go.enabled
        cand_user.find(marker="continue").click()
        await cand_user.should_see("Camera check", retries=100)
        await cand_user.should_see("camera not available", retries=100)  # not joined yet
        cand_user.find(marker="join").click()
        await eventually(lambda: state.candidate is not None and state.candidate.connected)
        # The camera check calibrates the proctor on the call's own frames, then it runs.
        await cand_user.should_see("Calibrated on", retries=400)
        await cand_user.should_see("Synthetic camera", retries=100)
        controller = state.candidate
        assert controller is not None and controller.candidate is not None
        assert controller.candidate.proctor is not None
        cand_user.find(marker="enter").click()
        await cand_user.should_see("What is sent about you", retries=100)

        await host_user.should_see("Candidate connected (Grace)", retries=100)
        # The lobby shows the camera check's result, from the candidate's signed event.
        await host_user.should_see("Camera check: face found, calibrated on", retries=100)
        host_user.find(marker="start").click()
        await host_user.should_see("Integrity score 100/100", retries=100)
        await eventually(lambda: state.host is not None and state.host.doc.phase == "interview")
        assert state.host.doc.timer() is not None
        await eventually(lambda: state.candidate is not None
                     and state.candidate.doc.phase == "interview")
        await cand_user.should_see("phase: interview", retries=100)

        # Video: every tile's frame endpoint serves real JPEGs, under the run's secret only.
        # A token that differs from the real one in its last character (never equal to it).
        other = state.token[:-1] + ("y" if state.token.endswith("x") else "x")
        for name in ("host-remote", "host-self", "candidate-remote", "candidate-self"):
            await eventually(lambda name=name: state.videos[name]() is not None)
            response = await host_user.http_client.get(f"/{state.token}/video/{name}")
            assert response.status_code == 200, name
            assert response.headers["content-type"] == "image/jpeg"
            image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and image.shape[0] > 0 and image.shape[1] > 0, name
            wrong = await host_user.http_client.get(f"/{other}/video/{name}")
            assert wrong.status_code == 404
        assert (await host_user.http_client.get(f"/{state.token}/video/nope")).status_code == 404

        # Before any run, both pages list the public tests: name, input, expected output.
        for u in (host_user, cand_user):
            await u.should_see("No runs yet.", retries=100)
            await u.should_see("three numbers", retries=100)
            await u.should_see("expected output", retries=100)
        # Runs: the candidate's Run goes to the host's run service; results on both pages,
        # hidden tests only on the interviewer's.
        code = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"
        controller.doc.set_code(code, origin="candidate")
        await eventually(lambda: state.host is not None and state.host.doc.code_text == code)
        cand_user.find(marker="run").click()
        await host_user.should_see("public tests 2/2 passed", retries=600)
        await cand_user.should_see("public tests 2/2 passed", retries=100)
        await host_user.should_see("hidden tests 2/2 passed", retries=100)
        # Each test's verdict in words (and colour), not an emoji alone: a mark without an
        # emoji font is a box. Hidden results are named.
        for u in (host_user, cand_user):
            await u.should_see("✓ passed: three numbers", retries=100)
            await u.should_see("✓ passed: negative", retries=100)
        await host_user.should_see("empty input ✓ passed, large ✓ passed", retries=100)
        await cand_user.should_not_see("hidden tests")
        assert [r["by"] for r in state.host.doc.runs()] == ["candidate"]
        # A run that is too large is refused by the host, and the candidate is told why.
        controller.doc.set_code("x = 1\n" * 12000, origin="candidate")
        cand_user.find(marker="run").click()
        await cand_user.should_see("This run was not started: the source is", retries=600)
        assert len(state.host.doc.runs()) == 1
        # The interviewer's own Run goes through the same service (and its limits).
        host_user.find(marker="run").click()
        await host_user.should_see("runs are limited to 64 KiB", retries=100)
        controller.doc.set_code(code, origin="candidate")
        await eventually(lambda: state.host is not None and state.host.doc.code_text == code)
        host_user.find(marker="run").click()
        await eventually(lambda: state.host is not None and len(state.host.doc.runs()) == 2)
        assert state.host.doc.runs()[1]["by"] == "host"
        # The console: the interviewer runs the code with their own input; both see it.
        host_user.find(marker="console-input").type("40 2")
        host_user.find(marker="console-run").click()
        await cand_user.should_see('run by host with input "40 2"', retries=600)
        host_doc = state.host.doc
        await eventually(lambda: len(host_doc.runs()) == 3
                         and host_doc.runs()[2]["result"] is not None, what="the console run")
        assert host_doc.runs()[2]["stdin"] == "40 2"
        assert host_doc.runs()[2]["result"]["run"]["stdout"] == "42\n"

        # The candidate turns the camera off and on: signed camera.off, seen on both sides.
        cand_user.find(marker="camera-switch").click()
        await host_user.should_see("camera.off start", retries=200)
        await eventually(lambda: "camera.off" in _listed(cand_user))
        cand_user.find(marker="camera-switch").click()
        await host_user.should_see("camera.off end", retries=200)

        # A tab switch long enough to count reaches the host's log and the candidate's list.
        cand = state.candidate
        assert cand is not None
        t0 = time.time()
        assert await cand.on_signal({"kind": "tab.hidden", "state": "on"}, now=t0) == []
        sent = await cand.on_signal({"kind": "tab.hidden", "state": "off"}, now=t0 + 5)
        assert [(e.kind, e.data["phase"]) for e in sent] == [("tab.hidden", "start"),
                                                             ("tab.hidden", "end")]
        await eventually(lambda: "the interview tab was hidden" in _listed(cand_user))
        await host_user.should_see("tab.hidden end (5.0 s)", retries=100)
        await cand_user.should_see("Please stay on the interview tab", retries=100)

        # The proctor saw the synthetic camera's empty room: signed, verified, on both sides.
        # (bounded generously: on a busy machine the proctor's analysis lags the scenes)
        await eventually(lambda: state.host is not None
                     and any(e.kind == "face.absent" for e in state.host.events), timeout=60)
        await host_user.should_see("face.absent start", retries=100)
        await eventually(lambda: "face.absent" in _listed(cand_user))

        # Private notes stay on the host.
        host_user.find(marker="note").type("strong on invariants")
        host_user.find(marker="add-note").click()
        await host_user.should_see("strong on invariants", retries=100)
        assert "strong on invariants" not in repr(cand.doc.snapshot())

        # End: sealed, verified, reports written; the candidate is told.
        host_user.find(marker="end").click()
        host_user.find(marker="end-confirm").click()
        await eventually(lambda: state.host is not None and state.host.ended is not None,
                         what="the session sealed")
        # (opened here: in NiceGUI's simulation the host page's `ui.navigate` can land on
        # the candidate's simulated user, which then shows the host's ended page)
        await host_user.open(f"/{state.token}/host/ended")
        await host_user.should_see("The session is sealed.", retries=100)
        await host_user.should_see("VALID", retries=100)
        ended = state.host.ended
        assert ended is not None and ended.verdict.valid
        report = ended.report_md.read_text()
        assert "strong on invariants" in report and "tab.hidden" in report
        await eventually(lambda: cand.ended)
        await cand_user.open(f"/{state.token}/join/interview")  # (the same simulation quirk)
        await cand_user.should_see("the interviewer ended the session", retries=100)
        # After the end the candidate's page says so, and nothing on it still works as if
        # the interview went on: the editor is read-only, Run is off, the timer stopped.
        await cand_user.should_see(marker="ended-banner", retries=100)
        await cand_user.should_see("the interview has ended", retries=100)
        editor = cand_user.find(marker="editor").elements.pop()
        assert editor.props["readOnly"] is True
        run_button = cand_user.find(marker="run").elements.pop()
        assert isinstance(run_button, ui.button) and not run_button.enabled

        # The replay page reads the sealed file.
        state.replay_path = ended.session_file
        await host_user.open(f"/{state.token}/replay")
        await host_user.should_see("VALID", retries=100)
        await host_user.should_see("tab.hidden", retries=100)
        # its header names the file (it read "replay · replay"), and it plays: at 10× from
        # the start (Play at the end starts over) to the end, where the code is the final code
        await host_user.should_see(f"· replay · {ended.session_file.name}", retries=100)
        await host_user.should_not_see("replay · replay")
        host_user.find(marker="speed").elements.pop().set_value("10×")
        host_user.find(marker="play").click()
        await host_user.should_see("Pause", retries=100)
        await host_user.should_see("Play", retries=1200)  # stops by itself at the end
        final = Replay(SessionRecord.load(ended.session_file)).final.code_text
        code = host_user.find(marker="replay-code").elements.pop()
        assert isinstance(code, ui.html)  # the final code, shaded by who wrote it
        assert html.unescape(re.sub(r"<[^>]+>", "", code.content)) == final
        assert 'data-prov="candidate-burst"' in code.content  # (set in one go, no paste)


def _listed(user: User) -> str:
    """The candidate's transparency table (every event sent about them) as text."""
    table = user.find(marker="sent-table").elements.pop()
    assert isinstance(table, ui.table)
    return "\n".join(f"#{r['seq']} {r['kind']}: {r['what']}" for r in table.rows)


class _second_user:
    """A second simulated browser on the app already running in this test."""

    async def __aenter__(self) -> User:
        import httpx
        from nicegui import core

        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(core.app),
                                         base_url="http://test")
        return User(self._client)

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()


async def test_video_tile_lights_up_when_frames_come(data_dir: str) -> None:
    state = AppState()
    frames: list[bytes | None] = [None]
    async with user_simulation() as user:
        register_pages(state, ("host",))

        @ui.page("/tile")
        def tile() -> None:
            state.tile("Candidate", "test", lambda: frames[0])

        await user.open("/tile")
        await user.should_see("camera not available", retries=100)
        response = await user.http_client.get(f"/{state.token}/video/test")
        assert response.status_code == 204  # no frame yet: the page tries again later
        _ok, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
        frames[0] = jpeg.tobytes()
        # (whether "camera not available" shows is the page's video.js: tests/test_ui_browser.py)
        response = await user.http_client.get(f"/{state.token}/video/test")
        assert response.status_code == 200 and response.content == frames[0]
        assert (await user.http_client.get("/wrong/video/test")).status_code == 404
