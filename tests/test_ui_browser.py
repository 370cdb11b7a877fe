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

pytestmark = pytest.mark.timeout(200)


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


def test_host_and_candidate_in_two_browsers(tmp_path: Path) -> None:
    require_browser()
    host = App(["-v", "host", "--camera", "synthetic"], tmp_path)
    cand = App(["-v", "join", "--camera", "synthetic"], tmp_path)
    try:
        with chromium() as hd, chromium() as cd:
            # -- the host creates a session and gets an invite --------------------------------
            hd.get(host.url)
            wait_for(lambda: by_testid(hd, "create"), what="setup page")
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
            wait_for(lambda: "Calibrated on" in text_of(cd, "calibration"), timeout=60,
                     what="calibration on the candidate's camera")
            assert "Synthetic camera" in text_of(cd, "call")
            wait_for(lambda: _video_width(cd, "video-your-camera"), what="self view")
            screenshot(cd, "candidate-check")
            click(cd, "enter")
            wait_for(lambda: cd.current_url.endswith("/join/interview"), timeout=40,
                     what="candidate interview page")
            wait_for(lambda: "Ada" in text_of(hd, "lobby-status"), what="host sees candidate")
            status = text_of(hd, "lobby-status")
            assert "device" in status
            click(hd, "start")
            wait_for(lambda: hd.current_url.endswith("/host/interview"), what="host interview")
            starter = wait_for(lambda: editor_text(hd), what="host editor")
            wait_for(lambda: editor_text(cd) == starter, what="candidate has the starter code")
            click(cd, "fullscreen")

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
                wait_for(partial(_video_width, d, tile), timeout=30, what=f"frames in {tile}")
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

            # -- a true conflict: the candidate's edit reaches its process only after the
            # host's edit at the same place; the browser rebases and both converge ---------
            cd.execute_script(
                'const ed = document.querySelector("[data-testid=editor]").aiqEditor;'
                "window.__held = []; window.__send = ed.sendPush.bind(ed);"
                "ed.sendPush = (p) => window.__held.push(p);")
            focus_editor_at(cd, 0)
            type_in_editor(cd, "C")
            focus_editor_at(hd, 0)
            type_in_editor(hd, "H")
            wait_for(lambda: editor_text(cd).startswith(("CH", "HC")),
                     what="host's edit reaches the candidate while its own is held")
            assert cd.execute_script(
                'return document.querySelector("[data-testid=editor]").aiqEditor.rebases') >= 1
            cd.execute_script(  # deliver the held pushes, the stale one first
                'const ed = document.querySelector("[data-testid=editor]").aiqEditor;'
                "ed.sendPush = window.__send; for (const p of window.__held) ed.sendPush(p);")
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

                wait_for(passed, timeout=60, what="run results with both tests passed")
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
            wait_for(lambda: len(editor_text(hd)) == 72000, timeout=30, what="large code synced")
            click(cd, "run")
            wait_for(lambda: "the source is" in text_of(cd, "run-refused"), timeout=30,
                     what="the refusal's reason on the candidate's page")
            screenshot(cd, "candidate-run-refused")
            cd.execute_script(
                'const ed = document.querySelector("[data-testid=editor]").aiqEditor.editor;'
                "ed.dispatch({changes: {from: 0, to: ed.state.doc.length, insert: arguments[0]}})",
                code)
            wait_for(lambda: editor_text(hd) == code, timeout=30, what="code restored")

            # -- a tab switch reaches the host's panel and the candidate's own panel ----------
            original = _hide_tab(cd)
            assert cd.execute_script("return document.visibilityState") is not None
            time.sleep(2.6)  # the policy forgives a tab hidden for less than 2 s
            cd.close()
            cd.switch_to.window(original)
            wait_for(lambda: "tab.hidden" in text_of(hd, "timeline"), timeout=20,
                     what="tab switch in the host's integrity panel")
            wait_for(lambda: "tab.hidden" in text_of(cd, "transparency"), timeout=20,
                     what="tab switch in the candidate's transparency panel")
            # the candidate's app declared its synthetic camera in the signed log
            assert "session.note" in text_of(hd, "timeline")
            wait_for(lambda: "tab.hidden end" in text_of(hd, "timeline"), timeout=20,
                     what="the tab switch's end")
            assert "Integrity score" in text_of(hd, "score")
            screenshot(hd, "host-integrity")
            screenshot(cd, "candidate-transparency")

            # -- the host ends: sealed, valid ------------------------------------------------
            click(hd, "end")
            wait_for(lambda: hd.current_url.endswith("/host/ended"), timeout=30,
                     what="ended page")
            verdict = text_of(hd, "verdict")
            assert verdict.startswith("VALID"), verdict
            session_file = Path(text_of(hd, "session-file").split(": ", 1)[1])
            assert session_file.exists()
            assert session_file.with_suffix(".report.html").exists()
            screenshot(hd, "host-ended")

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
        finally:
            replay.stop()
    finally:
        host.stop()
        cand.stop()
