"""The session's policy on the candidate's side, the camera check in the lobby, the phase and
timer controls, and the full transparency list — with NiceGUI's simulated `User`, the host and
the candidate connected through the real peer layer on 127.0.0.1 (no camera: these tests are
about the pages, and "no camera" is itself a camera-check result the lobby must show)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User
from nicegui.testing.user_simulation import user_simulation
from test_ui_pages import _second_user

from assessiq.core.policy import Policy, default_policy_text
from assessiq.room.call import plan_call
from assessiq.room.candidate import (
    MONITORED,
    CandidateController,
    read_session_policy,
)
from assessiq.ui.app import AppState, register_pages
from tests.peer_helpers import eventually

pytestmark = pytest.mark.timeout(90)


def custom_policy_text() -> str:
    """The defaults, except: a window blur counts from 0.5 s and warns at once (the defaults:
    3 s, from the second), and pasted text is recorded, at most 20 characters."""
    text = default_policy_text()
    blur = '[kinds."window.blur"]\n'
    head, tail = text.split(blur, 1)
    body, rest = tail.split("\n\n", 1)
    body = body.replace("min_duration = 3.0", "min_duration = 0.5") \
        .replace("warn_after = 2", "warn_after = 1")
    text = head + blur + body + "\n\n" + rest
    text = text.replace("include_text = false", "include_text = true") \
        .replace("max_chars = 1000", "max_chars = 20")
    policy = Policy.from_toml(text)
    rule = policy.rule("window.blur")
    assert rule is not None and rule.min_duration == 0.5 and rule.warn_after == 1
    assert policy.paste.include_text and policy.paste.max_chars == 20
    return text


@pytest.fixture
async def app_state(data_dir: str) -> AsyncIterator[tuple[AppState, User]]:
    state = AppState()
    state.calls["host"] = plan_call("host", camera="none", microphone="none", speaker=None)
    state.calls["candidate"] = plan_call("candidate", camera="none", microphone="none",
                                         speaker=None)
    async with user_simulation() as user:
        register_pages(state, ("host", "candidate"))
        try:
            yield state, user
        finally:
            if state.host is not None:
                await state.host.close()
            if state.candidate is not None:
                await state.candidate.close()


async def _connect(state: AppState, host_user: User, cand_user: User,
                   policy_file: Path | None,
                   setup: Callable[[User], None] | None = None) -> CandidateController:
    """The host creates a session (with `policy_file`, or the defaults; `setup` fills in
    more of the setup page); the candidate checks the invite, consents and joins. Returns
    on the candidate's check page."""
    await host_user.open(f"/{state.token}/host")
    await host_user.should_see("Create a session", retries=100)
    if policy_file is not None:
        host_user.find(marker="policy-file").type(str(policy_file))
    if setup is not None:
        setup(host_user)
    host_user.find(marker="create").click()
    await eventually(lambda: state.host is not None)
    await host_user.should_see("Waiting for the candidate", retries=100)
    assert state.host is not None
    cand = await _join(state, cand_user)
    await host_user.should_see("Candidate connected", retries=100)
    return cand


async def _join(state: AppState, cand_user: User) -> CandidateController:
    """The candidate checks the host's invite, consents and joins; returns on the check
    page."""
    assert state.host is not None
    await cand_user.open(f"/{state.token}/join")
    cand_user.find(marker="invite").type(state.host.invite_text)
    cand_user.find(marker="check-invite").click()
    await cand_user.should_see("What is monitored, and what leaves this computer", retries=100)
    # Before joining the policy is not known: the consent says pasted text may be asked for.
    await cand_user.should_see("unless the interviewer's policy asks for the pasted text",
                               retries=100)
    cand_user.find(marker="agree").click()
    cand_user.find(marker="continue").click()
    await cand_user.should_see("Camera check", retries=100)
    cand_user.find(marker="join").click()
    await eventually(lambda: state.candidate is not None and state.candidate.connected)
    cand = state.candidate
    assert cand is not None
    await cand_user.should_see("no camera to analyse", retries=200)
    return cand


def _table(user: User) -> ui.table:
    """The candidate's transparency table."""
    table = user.find(marker="sent-table").elements.pop()
    assert isinstance(table, ui.table)
    return table


def _enter_enabled(user: User) -> bool:
    button = user.find(marker="enter").elements.pop()
    assert isinstance(button, ui.button)
    return bool(button.enabled)


async def test_a_custom_policy_rules_the_candidates_side(
        app_state: tuple[AppState, User], tmp_path: Path) -> None:
    state, host_user = app_state
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(custom_policy_text(), encoding="utf-8")
    async with _second_user() as cand_user:
        cand = await _connect(state, host_user, cand_user, policy_file)
        host = state.host
        assert host is not None
        # The host's policy reached the candidate through the shared document.
        assert cand.policy_source == "session" and cand.policy.text == policy_file.read_text()
        assert cand.policy.paste.include_text
        # The session asks for pasted text: said on the check page, and the interview waits
        # for the candidate's agreement.
        await cand_user.should_see("records the TEXT of anything you paste", retries=100)
        await cand_user.should_see("its first 20 characters", retries=100)
        await eventually(lambda: cand.camera_check is not None and cand.camera_check.done)
        for _ in range(5):  # the page's poll runs, and still the button stays disabled
            await cand_user.should_see("no camera to analyse")
        assert not _enter_enabled(cand_user) and cand.paste_text_needs_consent
        # Before agreeing, a paste's text is never put in the event.
        t0 = time.time()
        early = await cand.on_signal({"kind": "paste", "state": "instant", "chars": 5,
                                      "text": "hello"}, now=t0)
        assert [e.kind for e in early] == ["paste"] and "text" not in early[0].data
        cand_user.find(marker="agree-paste").click()
        assert cand.paste_text_agreed
        await eventually(lambda: _enter_enabled(cand_user))

        # The lobby shows the candidate's camera-check result (a signed, verified event).
        await host_user.should_see("Camera check: no camera", retries=200)
        [check] = [e for e in host.events if e.kind == "camera.check"]
        key = host.host.device_key
        assert key is not None and check.signed_by(key)
        assert check.data["result"] == "no camera"

        cand_user.find(marker="enter").click()
        await cand_user.should_see("What is sent about you", retries=100)
        await cand_user.should_see("Warnings follow the interviewer's policy", retries=100)
        host_user.find(marker="start").click()
        await host_user.should_see("Integrity score", retries=100)

        # A 1 s window blur: under this policy it is sent (the defaults forgive 3 s) and the
        # candidate is warned at once (the defaults warn from the second).
        t1 = time.time()
        assert await cand.on_signal({"kind": "window.blur", "state": "on"}, now=t1) == []
        await cand.tick(now=t1 + 0.6)
        sent = await cand.on_signal({"kind": "window.blur", "state": "off"}, now=t1 + 1.0)
        assert [(e.kind, e.data["phase"]) for e in sent] == [("window.blur", "end")]
        await cand_user.should_see("This window lost focus", retries=100)
        await host_user.should_see("window.blur end (1.0 s)", retries=100)

        # A paste after agreeing: its text, capped at the policy's 20 characters.
        pasted = "def solve(): return 42  # from my notes"
        [paste] = await cand.on_signal({"kind": "paste", "state": "instant",
                                        "chars": len(pasted), "text": pasted}, now=t1 + 3)
        assert paste.data["text"] == pasted[:20] and paste.data["truncated"] is True
        assert paste.data["chars"] == len(pasted)
        await eventually(lambda: any(e.seq == paste.seq for e in host.events))
        [got] = [e for e in host.events if e.seq == paste.seq]
        assert got.data["text"] == pasted[:20]
        await eventually(lambda: any("the text was sent, as the policy asks" in r["what"]
                                 for r in _table(cand_user).rows))


async def test_the_default_policy_sends_no_pasted_text_and_forgives_a_short_blur(
        app_state: tuple[AppState, User]) -> None:
    state, host_user = app_state
    async with _second_user() as cand_user:
        cand = await _connect(state, host_user, cand_user, None)
        assert cand.policy_source == "session" and not cand.policy.paste.include_text
        await cand_user.should_see("only the size of what you paste or copy", retries=100)
        await cand_user.should_not_see("records the TEXT")
        await eventually(lambda: _enter_enabled(cand_user))
        cand_user.find(marker="enter").click()
        await cand_user.should_see("What is sent about you", retries=100)
        t0 = time.time()
        # Even if the page sent text, the process does not put it in the event.
        [paste] = await cand.on_signal({"kind": "paste", "state": "instant", "chars": 5,
                                        "text": "hello"}, now=t0)
        assert "text" not in paste.data and paste.data["chars"] == 5
        await eventually(lambda: any("the text itself is not sent" in r["what"]
                                 for r in _table(cand_user).rows))
        # The same 1 s blur is forgiven by the defaults: nothing sent, no warning.
        await cand.on_signal({"kind": "window.blur", "state": "on"}, now=t0 + 1)
        await cand.tick(now=t0 + 1.6)
        assert await cand.on_signal({"kind": "window.blur", "state": "off"}, now=t0 + 2) == []
        assert not any(e.kind == "window.blur" for e in cand.sent)
        await cand_user.should_not_see("This window lost focus")


async def test_phase_and_timer_controls_reach_the_candidate(
        app_state: tuple[AppState, User]) -> None:
    state, host_user = app_state
    async with _second_user() as cand_user:
        cand = await _connect(state, host_user, cand_user, None)
        host = state.host
        assert host is not None
        await eventually(lambda: _enter_enabled(cand_user))
        cand_user.find(marker="enter").click()
        await cand_user.should_see("phase: lobby", retries=100)
        await cand_user.should_see("timer not started", retries=100)
        host_user.find(marker="start").click()
        await host_user.should_see("Phase and timer", retries=100)
        # Starting the interview starts the timer with the session's duration (45 min).
        await cand_user.should_see("phase: interview", retries=100)
        await cand_user.should_see("time left 44:", retries=100)
        await host_user.should_see("time left 44:", retries=100)

        # The phase toggle: the interviewer picks "wrap-up"; the candidate sees it.
        toggle = host_user.find(marker="phase").elements.pop()
        assert isinstance(toggle, ui.toggle) and toggle.value == "interview"
        assert host_user.client is not None
        with host_user.client:  # the user's choice, through the toggle's own change handler
            toggle.set_value("wrap-up")
        await eventually(lambda: cand.doc.phase == "wrap-up")
        await cand_user.should_see("phase: wrap-up", retries=100)

        # Restart the timer with 2 minutes, then +5 min: 7 minutes, on both sides.
        host_user.find(marker="timer-minutes").clear().type("2")
        host_user.find(marker="restart-timer").click()
        await cand_user.should_see("time left 01:", retries=100)
        host_user.find(marker="extend-timer").click()
        await cand_user.should_see("time left 06:", retries=100)
        await host_user.should_see("time left 06:", retries=100)
        timer = cand.doc.timer()
        assert timer is not None and timer["duration_s"] == 7 * 60

        # Time up (a one-second timer, the controller's own restart): both pages say so.
        host.restart_timer(1 / 60)
        await cand_user.should_see("time is up", retries=200)
        await host_user.should_see("time is up", retries=100)


async def test_the_transparency_panel_lists_every_event(
        app_state: tuple[AppState, User]) -> None:
    state, host_user = app_state
    async with _second_user() as cand_user:
        cand = await _connect(state, host_user, cand_user, None)
        await eventually(lambda: _enter_enabled(cand_user))
        cand_user.find(marker="enter").click()
        await cand_user.should_see("What is sent about you", retries=100)
        t0 = time.time()
        for i in range(60):  # 60 copies, 2 s apart (one per second of a kind is kept)
            got = await cand.on_signal({"kind": "copy", "state": "instant", "chars": i + 1},
                                       now=t0 + 2 * i)
            assert len(got) == 1
        await cand.heartbeat()
        table = _table(cand_user)

        def listed() -> list[int]:
            return [int(r["seq"]) for r in table.rows]

        def expected(beats: bool) -> list[int]:
            return [e.seq for e in reversed(cand.sent)
                    if beats or not e.kind.endswith("heartbeat")]

        await eventually(lambda: listed() == expected(False))
        rows: list[dict[str, Any]] = table.rows
        assert len(rows) > 60 and rows[-1]["seq"] == cand.sent[0].seq  # the oldest too
        assert sum(1 for r in rows if r["kind"] == "copy") == 60
        assert any("(1 characters; the text itself is not sent)" in r["what"] for r in rows)
        assert table.props["pagination"]["rowsPerPage"] == 10  # page by page
        cand_user.find(marker="show-heartbeats").click()
        await eventually(lambda: listed() == expected(True))
        assert any(r["kind"] == "browser.heartbeat" for r in table.rows)
        await cand_user.should_see(f"{len(cand.sent)} events sent", retries=100)


def test_unreadable_session_policy_falls_back_to_the_defaults() -> None:
    policy, note = read_session_policy("version = 1\n[kinds.\"tab.hidden\"]\nweight = -1\n")
    assert policy == Policy.default()
    assert "could not be read" in note and "must not be negative" in note
    policy, note = read_session_policy("not toml [")
    assert policy == Policy.default() and "not valid TOML" in note
    policy, note = read_session_policy(custom_policy_text())
    assert note == "" and policy.paste.include_text


def test_paste_policy_key_is_checked_and_off_by_default() -> None:
    from assessiq.core.errors import PolicyError

    default = Policy.default()
    assert not default.paste.include_text and default.paste.max_chars == 1000
    assert "[paste]" in default.text and "include_text = false" in default.text
    for bad, why in (("include_text = 1", "true or false"), ("colour = 1", "unknown key")):
        text = default.text.replace("include_text = false", bad)
        with pytest.raises(PolicyError, match=why):
            Policy.from_toml(text)
    for bad in ("0", "4001", "2.5"):
        text = default.text.replace("max_chars = 1000", f"max_chars = {bad}")
        with pytest.raises(PolicyError, match="max_chars must be a whole number"):
            Policy.from_toml(text)
    # Without a [paste] table (older policy files): off.
    old = default.text.replace("[paste]", "[unused]").replace("include_text = false\n", "") \
        .replace("max_chars = 1000\n", "")
    assert not Policy.from_toml(old).paste.include_text
    assert any("never its text" in text for _title, text in MONITORED)


def test_the_policy_is_set_once_in_the_shared_document() -> None:
    from assessiq.core.document import SharedDoc

    a, b = SharedDoc(), SharedDoc()
    assert a.policy_text is None
    text = custom_policy_text()
    a.set_policy(text, origin="host")
    a.set_policy(text, origin="host")  # the same text again: fine
    with pytest.raises(ValueError, match="set once"):
        a.set_policy(default_policy_text(), origin="host")
    with pytest.raises(ValueError, match="characters of TOML"):
        b.set_policy("", origin="host")
    b.apply_update(a.get_update())
    assert b.policy_text == text


def test_a_camera_check_is_reported_and_never_scored() -> None:
    from assessiq.core.identity import Identity
    from assessiq.core.integrity import EventSigner
    from assessiq.core.score import evaluate
    from assessiq.room.host import describe_camera_check

    signer = EventSigner("session", Identity.generate())
    calibrated = signer.sign("camera.check", {"phase": "instant", "result": "calibrated",
                                              "text": "ok", "frames": 45, "yaw": 2.4,
                                              "pitch": -3.0})
    none = signer.sign("camera.check", {"phase": "instant", "result": "no camera",
                                        "text": "no camera", "frames": 0})
    evaluation = evaluate([calibrated, none], Policy.default())
    assert evaluation.score == 100 and not evaluation.warnings and not evaluation.flags
    assert describe_camera_check(calibrated.data) == (
        "Camera check: face found, calibrated on 45 frames (natural pose +2° sideways, "
        "-3° up/down).")
    assert describe_camera_check(none.data).startswith("Camera check: no camera")
    assert "cannot run" in describe_camera_check({"result": "unavailable"})


async def test_refusals_show_on_the_interviewers_panel_and_in_the_report(
        app_state: tuple[AppState, User]) -> None:
    """A modified candidate app sends what an honest one never does: the interviewer's page
    lists each refusal (time, channel, reason) with the total, and so does the report."""
    state, host_user = app_state
    async with _second_user() as cand_user:
        cand = await _connect(state, host_user, cand_user, None)
        host = state.host
        assert host is not None and cand.candidate is not None
        await eventually(lambda: _enter_enabled(cand_user))
        cand_user.find(marker="enter").click()
        host_user.find(marker="start").click()
        await host_user.should_see("Phase and timer", retries=100)
        await host_user.should_see("Refused from the candidate's app (0)", retries=100)
        await host_user.should_see(marker="refusals-none", retries=100)
        link = cand.candidate.link
        assert link is not None
        await link.conn.channels["control"].send(b"[" * 1500 + b"]" * 1500)
        await link.conn.channels["integrity"].send(b'{"v":1,"kind":"\xff"}.' + b"A" * 86)
        await host_user.should_see("Refused from the candidate's app (2)", retries=200)
        await host_user.should_see("control: control message refused: a control message is "
                                   "unreadable: nested 1500 levels deep", retries=100)
        await host_user.should_see("integrity: integrity event refused: malformed envelope",
                                   retries=100)
        await host_user.should_not_see(marker="refusals-none")
        # the candidate's page says so too (the host tells the app it refused something)
        await cand_user.should_see("The interviewer's app did not accept what this app sent: "
                                   "control message refused", retries=100)
        host_user.find(marker="end").click()
        host_user.find(marker="end-confirm").click()
        await eventually(lambda: host.ended is not None, what="the session sealed")
        ended = host.ended
        assert ended is not None and ended.verdict.valid
        report = ended.report_md.read_text(encoding="utf-8")
        section = report.split("## Refused from the candidate's app (2)\n\n", 1)[1]
        listed = section.split("\n\n", 1)[0].splitlines()
        assert len(listed) == 2
        assert "`control` control message refused" in listed[0] and "nested 1500" in listed[0]
        assert "`integrity` integrity event refused: malformed envelope" in listed[1]
        # The ended page shows the report. (Opened here: in the simulation, the candidate
        # page's own navigation on "bye" can take the host user's place.)
        await host_user.open(f"/{state.token}/host/ended")
        await host_user.should_see("The session is sealed.", retries=100)
        await host_user.should_see("Refused from the candidate's app (2)", retries=100)
