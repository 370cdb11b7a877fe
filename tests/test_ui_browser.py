"""The apps in a real browser: the host and the candidate in two headless Chromium instances,
each talking to its own AssessIQ process, connected peer to peer on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    TWO_SCREENS,
    App,
    by_testid,
    chromium,
    click,
    editor_selection,
    editor_text,
    focus_editor_at,
    remote_caret,
    require_browser,
    screenshot,
    text_of,
    type_in_editor,
    wait_for,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from test_ui_session_policy import custom_policy_text

from assessiq.core.record import SessionRecord
from assessiq.room.replay import Replay

pytestmark = pytest.mark.timeout(500)


def _utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _hide_tab(driver: Any) -> str:
    """Open a second tab and switch to it: the interview tab becomes hidden."""
    original: str = driver.current_window_handle
    driver.switch_to.new_window("tab")
    return original


def _video_width(driver: Any, testid: str) -> int:
    """The natural width of the frame a video tile shows (0: no frame decoded yet)."""
    width = driver.execute_script(
        f'const i = document.querySelector("[data-testid={testid}] img");'
        "return i && i.complete ? i.naturalWidth : 0;")
    return int(width or 0)


def _no_video_shown(driver: Any, testid: str) -> bool:
    """Whether a video tile shows "camera not available"."""
    return bool(driver.execute_script(
        f'const l = document.querySelector("[data-testid={testid}] [data-aiq-novideo]");'
        'return !!l && getComputedStyle(l).display !== "none";'))


def _overlay_shown(driver: Any) -> bool:
    return bool(driver.execute_script(
        'const o = document.getElementById("aiq-fullscreen-overlay");'
        'return !!o && getComputedStyle(o).display !== "none";'))


def _in_fullscreen(driver: Any) -> bool:
    return bool(driver.execute_script("return !!document.fullscreenElement"))


def _signed_on_both(hd: Any, cd: Any, host_line: str, listed: str, what: str) -> None:
    """`host_line` in the host's integrity panel (verified) and `listed` (the event's
    description) in the candidate's transparency panel (its first page: the newest)."""
    wait_for(lambda: host_line in text_of(hd, "timeline"), what=f"{what} on the host")
    wait_for(lambda: listed in text_of(cd, "transparency"), what=f"{what} on the candidate")


def _browser_signals(hd: Any, cd: Any) -> None:
    """Fullscreen exit with its overlay, copy, paste (with its text: the session's policy
    asks for it and the candidate agreed), devtools shortcuts: each from real browser
    input, signed by the candidate's app and shown on both sides."""
    # Fullscreen: the page is in it since "Enter fullscreen"; leaving it (the Fullscreen API
    # call the Escape key makes) shows the overlay until the candidate returns.
    wait_for(lambda: _in_fullscreen(cd), what="the candidate's page in fullscreen")
    assert not _overlay_shown(cd)
    cd.execute_script("document.exitFullscreen()")
    wait_for(lambda: _overlay_shown(cd), what="the fullscreen overlay")
    _signed_on_both(hd, cd, "fullscreen.exit start", "the candidate left fullscreen (started)",
                    "fullscreen left")
    screenshot(cd, "candidate-fullscreen-overlay")
    click(cd, "fullscreen")  # the overlay's button: back to fullscreen
    wait_for(lambda: _in_fullscreen(cd) and not _overlay_shown(cd), what="back in fullscreen")
    _signed_on_both(hd, cd, "fullscreen.exit end", "the candidate left fullscreen — ended",
                    "fullscreen back")

    # Copy a line typed into the editor, then paste it: sizes, and the pasted text.
    from selenium.webdriver.common.by import By

    content = cd.find_element(By.CSS_SELECTOR, "[data-testid=editor] .cm-content")
    focus_editor_at(cd, _utf16_len(editor_text(cd)))
    type_in_editor(cd, "\n# note")
    wait_for(lambda: editor_text(cd).endswith("# note"), what="the line typed")
    end = _utf16_len(editor_text(cd))
    cd.execute_script(
        'const ed = document.querySelector("[data-testid=editor]").aiqEditor.editor;'
        "ed.focus(); ed.dispatch({selection: {anchor: arguments[0], head: arguments[1]}});",
        end - 6, end)
    content.send_keys(Keys.CONTROL, "c")
    _signed_on_both(hd, cd, "copy instant (6 chars)",
                    "text copied from the page (6 characters; the text itself is not sent)",
                    "copy")
    focus_editor_at(cd, end)
    content.send_keys(Keys.CONTROL, "v")
    wait_for(lambda: editor_text(cd).endswith("# note# note"), what="the paste in the editor")
    _signed_on_both(hd, cd, 'paste instant (6 chars: "# note")',
                    "(6 characters; the text was sent, as the policy asks)", "paste")

    # Developer-tools shortcuts, as key presses in the page. One event of a kind per
    # second is kept (a held key), so the second shortcut waits out that second.
    content.send_keys(Keys.F12)
    first = time.monotonic()
    _signed_on_both(hd, cd, "devtools.shortcut instant (F12)",
                    "a developer-tools shortcut was pressed", "F12")
    wait_for(lambda: time.monotonic() - first > 1.2, what="the per-second debounce")
    content.send_keys(Keys.CONTROL, Keys.SHIFT, "i")
    _signed_on_both(hd, cd, "devtools.shortcut instant (Mod-Shift-I)",
                    "a developer-tools shortcut was pressed", "Ctrl+Shift+I")
    shortcuts = text_of(cd, "transparency").count("a developer-tools shortcut was pressed")
    assert shortcuts == 2, shortcuts


def test_host_and_candidate_in_two_browsers(tmp_path: Path) -> None:
    require_browser()
    host = App(["-v", "host", "--camera", "synthetic"], tmp_path)
    cand = App(["-v", "join", "--camera", "synthetic"], tmp_path)
    # The session's own policy: a window blur counts from 0.5 s and the pasted text is
    # recorded (the candidate is asked about it after joining).
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(custom_policy_text(), encoding="utf-8")
    try:
        # The candidate's browser reports two screens (headless Chromium's --screen-info).
        with chromium() as hd, chromium(screens=TWO_SCREENS) as cd:
            # -- the host creates a session and gets an invite --------------------------------
            hd.get(host.url)
            wait_for(lambda: by_testid(hd, "create"), what="setup page")
            by_testid(hd, "policy-file").send_keys(str(policy_file))
            screenshot(hd, "host-setup")
            click(hd, "create")
            invite = wait_for(lambda: by_testid(hd, "invite").get_attribute("value"),
                              what="invite")
            assert invite.startswith("aiq1.")
            assert by_testid(hd, "qr").find_element("css selector", "svg")
            host_fp = text_of(hd, "host-fp").rsplit(" ", 1)[1]
            screenshot(hd, "host-lobby")

            # -- the candidate checks the invite, reads what is monitored, joins ---------------
            cd.get(cand.url)
            by_testid(cd, "invite-input").send_keys(invite)
            by_testid(cd, "name").send_keys("Ada")
            click(cd, "check-invite")
            wait_for(lambda: host_fp in text_of(cd, "host-fp"), what="host fingerprint shown")
            consent = text_of(cd, "consent")
            assert "never its text" in consent and "Nothing is sent before you agree" in consent
            assert not by_testid(cd, "continue").is_enabled()
            screenshot(cd, "candidate-consent")
            click(cd, "agree")
            click(cd, "continue")
            wait_for(lambda: by_testid(cd, "join"), what="camera check page")
            assert "camera" in text_of(cd, "calibration").lower()
            click(cd, "join")
            # Joined: the camera check calibrates the proctor on the (synthetic) camera.
            wait_for(lambda: "Calibrated on" in text_of(cd, "calibration"), timeout=120,
                     what="calibration on the candidate's camera")
            assert "Synthetic camera" in text_of(cd, "call")
            wait_for(lambda: _video_width(cd, "video-your-camera"), what="self view")
            # The session's policy records pasted text: asked here, after joining.
            assert "records the TEXT of anything you paste" in text_of(cd, "session-policy")
            assert not by_testid(cd, "enter").is_enabled()
            screenshot(cd, "candidate-check")
            click(cd, "agree-paste")
            click(cd, "enter")
            wait_for(lambda: cd.current_url.endswith("/join/interview"), timeout=90,
                     what="candidate interview page")
            wait_for(lambda: "Ada" in text_of(hd, "lobby-status"), what="host sees candidate")
            status = text_of(hd, "lobby-status")
            assert "device" in status
            wait_for(lambda: "face found, calibrated" in text_of(hd, "lobby-camera"),
                     what="the camera check's result in the lobby")
            screenshot(hd, "host-lobby-candidate")
            click(hd, "start")
            wait_for(lambda: hd.current_url.endswith("/host/interview"), what="host interview")
            starter = wait_for(lambda: editor_text(hd), what="host editor")
            wait_for(lambda: editor_text(cd) == starter, what="candidate has the starter code")
            click(cd, "fullscreen")
            # Two screens, as the candidate's browser reports them (screen.isExtended).
            _signed_on_both(hd, cd, "screens.multiple instant",
                            "the browser reports more than one screen", "two screens")

            # -- both type at once, emoji and CJK, and see each other's text --------------------
            focus_editor_at(hd, 0)
            focus_editor_at(cd, _utf16_len(starter))
            host_text = "# 主机 😀 host\n"
            cand_text = "\n# 候选 🎉 cand"
            threads = [
                threading.Thread(target=type_in_editor, args=(hd, host_text)),
                threading.Thread(target=type_in_editor, args=(cd, cand_text)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            # Live video on both sides: each tile shows decoded frames from the other side.
            for d, tile in ((hd, "video-candidate"), (hd, "video-you"),
                            (cd, "video-interviewer"), (cd, "video-you")):
                wait_for(partial(_video_width, d, tile), timeout=90, what=f"frames in {tile}")
                # (the page itself hides "camera not available" while frames come: video.js)
                wait_for(lambda d=d, tile=tile: not _no_video_shown(d, tile),
                         what=f"{tile} without 'camera not available'")
            expected = host_text + starter + cand_text
            wait_for(lambda: editor_text(hd) == expected, what="host sees both edits")
            wait_for(lambda: editor_text(cd) == expected, what="candidate sees both edits")
            # Cursors intact: each caret is still right after what that person typed.
            assert editor_selection(hd) == (_utf16_len(host_text),) * 2
            assert editor_selection(cd) == (_utf16_len(expected),) * 2
            # Each side shows the other's cursor.
            wait_for(lambda: remote_caret(hd) == "Ada", what="host shows candidate's cursor")
            wait_for(lambda: remote_caret(cd) == "interviewer",
                     what="candidate shows host's cursor")
            screenshot(hd, "host-interview")

            # -- a true conflict: the candidate's page is cut from its process while both
            # type at the same place; once it reconnects, both converge with both edits -----
            cd.execute_script(
                'document.querySelector("[data-testid=editor]").aiqEditor.provider.disconnect()')
            focus_editor_at(cd, 0)
            type_in_editor(cd, "C")
            focus_editor_at(hd, 0)
            type_in_editor(hd, "H")
            wait_for(lambda: editor_text(hd).startswith("H"), what="the host's own edit")
            assert editor_text(cd).startswith("C") and "H" not in editor_text(cd)[:2]
            cd.execute_script(
                'document.querySelector("[data-testid=editor]").aiqEditor.provider.connect()')
            wait_for(lambda: editor_text(hd) == editor_text(cd) and "C" in editor_text(hd)[:2],
                     what="both converge with both edits")
            assert editor_text(hd)[2:] == expected
            expected = editor_text(hd)

            # -- a run shows its results on both sides ---------------------------------------
            focus_editor_at(cd, 0)
            cd.execute_script(
                'const ed = document.querySelector("[data-testid=editor]").aiqEditor.editor;'
                "ed.dispatch({changes: {from: 0, to: ed.state.doc.length, insert: arguments[0]}})",
                "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n")
            wait_for(lambda: "print(sum(" in editor_text(hd), what="host gets the new code")
            click(cd, "run")
            for d in (hd, cd):

                def passed(d: Any = d) -> bool:
                    return "public tests 2/2 passed" in text_of(d, "run-summary")

                wait_for(passed, timeout=120, what="run results with both tests passed")
            # Hidden tests: on the interviewer's page only.
            wait_for(lambda: "hidden tests 2/2 passed" in text_of(hd, "hidden-summary"),
                     what="hidden results on the host")
            assert "hidden tests" not in text_of(cd, "results")
            screenshot(cd, "candidate-run")
            screenshot(hd, "host-run")

            # -- a run over the host's size limit is refused; the candidate sees why --------
            code = editor_text(cd)
            cd.execute_script(
                'const ed = document.querySelector("[data-testid=editor]").aiqEditor.editor;'
                "ed.dispatch({changes: {from: 0, to: ed.state.doc.length, insert: arguments[0]}})",
                "x = 1\n" * 12000)
            wait_for(lambda: len(editor_text(hd)) == 72000, timeout=90, what="large code synced")
            click(cd, "run")
            wait_for(lambda: "the source is" in text_of(cd, "run-refused"), timeout=90,
                     what="the refusal's reason on the candidate's page")
            screenshot(cd, "candidate-run-refused")
            cd.execute_script(
                'const ed = document.querySelector("[data-testid=editor]").aiqEditor.editor;'
                "ed.dispatch({changes: {from: 0, to: ed.state.doc.length, insert: arguments[0]}})",
                code)
            wait_for(lambda: editor_text(hd) == code, timeout=90, what="code restored")

            # -- browser signals: fullscreen, copy, paste, devtools shortcuts ---------------
            _browser_signals(hd, cd)

            # -- a tab switch reaches the host's panel and the candidate's own panel; the
            # window loses focus with it (headless Chromium gives a second window no focus of
            # its own, so the tab switch is how a real blur happens here) -------------------
            original = _hide_tab(cd)
            # Hidden until the host has verified both conditions (the policy forgives a tab
            # hidden less than 2 s, and this session's a blur under 0.5 s).
            wait_for(lambda: "tab.hidden start" in text_of(hd, "timeline")
                     and "window.blur start" in text_of(hd, "timeline"),
                     what="tab switch and blur in the host's integrity panel")
            cd.close()
            cd.switch_to.window(original)
            wait_for(lambda: "the interview tab was hidden" in text_of(cd, "transparency"),
                     what="tab switch in the candidate's transparency panel")
            # the candidate's app declared its synthetic camera in the signed log
            assert "session.note" in text_of(hd, "timeline")
            wait_for(lambda: "tab.hidden end" in text_of(hd, "timeline"),
                     what="the tab switch's end")
            wait_for(lambda: "window.blur end" in text_of(hd, "timeline"),
                     what="focus back: the blur's end")
            wait_for(lambda: "the interview window lost focus — ended" in
                     text_of(cd, "transparency"), what="the blur in the candidate's panel")
            assert "Integrity score" in text_of(hd, "score")
            if _overlay_shown(cd):  # Chromium leaves fullscreen when its tab is switched away
                click(cd, "fullscreen")
                wait_for(lambda: not _overlay_shown(cd), what="back in fullscreen")
            for d, panel in ((hd, "integrity-panel"), (cd, "transparency")):
                d.execute_script("arguments[0].scrollIntoView()", by_testid(d, panel))
            screenshot(hd, "host-integrity")
            screenshot(cd, "candidate-transparency")

            # -- the host ends: sealed, valid ------------------------------------------------
            click(hd, "end")
            click(hd, "end-confirm")  # sealing is final: it asks first
            wait_for(lambda: hd.current_url.endswith("/host/ended"), timeout=90,
                     what="ended page")
            verdict = text_of(hd, "verdict")
            assert verdict.startswith("VALID"), verdict
            session_file = Path(text_of(hd, "session-file").split(": ", 1)[1])
            assert session_file.exists()
            assert session_file.with_suffix(".report.html").exists()
            screenshot(hd, "host-ended")
            # ... and the candidate's page says so: editor read-only, Run off, timer stopped
            wait_for(lambda: by_testid(cd, "ended-banner").is_displayed(),
                     what="the candidate told the interview ended")
            wait_for(lambda: cd.execute_script(
                'return document.querySelector("[data-testid=editor] .cm-content")'
                '.getAttribute("contenteditable")') == "false",
                what="the candidate's editor read-only")
            assert not by_testid(cd, "run").is_enabled()
            wait_for(lambda: text_of(cd, "timer") == "the interview has ended",
                     what="the candidate's timer stopped")
            screenshot(cd, "candidate-ended")

        # -- the replay viewer opens the sealed file --------------------------------------
        replay = App(["replay", str(session_file)], tmp_path)
        try:
            with chromium() as rd:
                rd.get(replay.url)
                wait_for(lambda: text_of(rd, "verdict").startswith("VALID"), what="replay")
                wait_for(lambda: "print(sum(" in text_of(rd, "replay-code"),
                         what="final code in the replay")
                assert "tab.hidden" in text_of(rd, "replay-items")
                screenshot(rd, "replay")
                # it plays: at 10×, from the start (Play at the end starts over) to the end,
                # where it stops by itself on the final code
                def ten_times() -> bool:
                    button = rd.find_element(By.XPATH, '//*[@data-testid="speed"]//button'
                                             '[normalize-space(.)="10×"]')
                    if button.get_attribute("aria-pressed") != "true":
                        button.click()
                    return "at 10×" in text_of(rd, "when")

                wait_for(ten_times, what="the speed set to 10×")
                click(rd, "play")
                wait_for(lambda: text_of(rd, "play").lower() == "pause", what="playing")
                offsets: list[float] = []

                def played() -> bool:  # (noting where the player was on the way)
                    offsets.append(float(text_of(rd, "when").split("(+", 1)[1].split(" ")[0]))
                    return text_of(rd, "play").lower() == "play"

                wait_for(played, timeout=120, what="played to the end")
                assert len(set(offsets)) >= 3 and offsets == sorted(offsets), offsets
                final = Replay(SessionRecord.load(session_file)).final.code_text
                shown = rd.execute_script(
                    'return document.querySelector("[data-testid=replay-code] pre").innerText')
                assert shown.strip() == final.strip()
                screenshot(rd, "replay-played")
        finally:
            replay.stop()
    finally:
        host.stop()
        cand.stop()
