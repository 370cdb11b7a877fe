"""The browser demo: both apps from `assessiq demo`, the candidate consents, joins and is
calibrated on the synthetic camera, both are in the interview with live video, typing into one
shared editor, and the proctor's planted "out of view" reaches the interviewer's panel."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    App,
    by_testid,
    chromium,
    click,
    editor_text,
    focus_editor_at,
    require_browser,
    screenshot,
    type_in_editor,
    wait_for,
)

pytestmark = pytest.mark.timeout(400)


def _video_width(driver: Any, testid: str) -> int:
    width = driver.execute_script(
        f'const i = document.querySelector("[data-testid={testid}] img");'
        "return i && i.complete ? i.naturalWidth : 0;")
    return int(width or 0)


def test_demo_opens_both_apps_ready_to_type(tmp_path: Path) -> None:
    require_browser()
    demo = App(["demo"], tmp_path, urls=2)
    try:
        host_url, cand_url = demo.urls
        assert host_url.endswith("/host/lobby") and cand_url.endswith("/join")
        with chromium() as hd, chromium() as cd:
            hd.get(host_url)
            wait_for(lambda: by_testid(hd, "invite").get_attribute("value"), what="lobby")
            cd.get(cand_url)
            # The invite is already checked: the candidate sees the fingerprint and consent.
            fp = by_testid(hd, "host-fp").text.rsplit(" ", 1)[1]
            wait_for(lambda: fp in by_testid(cd, "host-fp").text, what="fingerprint")
            click(cd, "agree")
            click(cd, "continue")
            click(cd, "join")
            wait_for(lambda: "Calibrated on" in by_testid(cd, "calibration").text, timeout=120,
                     what="calibrated on the synthetic camera")
            click(cd, "enter")
            wait_for(lambda: cd.current_url.endswith("/join/interview"), timeout=90,
                     what="candidate in the interview")
            # The host's lobby moves to the interview by itself in the demo.
            wait_for(lambda: hd.current_url.endswith("/host/interview"), timeout=90,
                     what="host in the interview")
            starter = wait_for(lambda: editor_text(cd), what="candidate editor")
            wait_for(lambda: editor_text(hd) == starter, what="same code on both")
            focus_editor_at(cd, 0)
            type_in_editor(cd, "# demo ✓\n")
            wait_for(lambda: editor_text(hd) == "# demo ✓\n" + starter, what="typing arrives")
            for d, tile in ((hd, "video-candidate"), (hd, "video-you"),
                            (cd, "video-interviewer"), (cd, "video-you")):
                wait_for(partial(_video_width, d, tile), timeout=90, what=f"frames in {tile}")
            # The planted timeline: the candidate leaves the picture 15 s after joining.
            wait_for(lambda: "face.absent start" in by_testid(hd, "timeline").text, timeout=120,
                     what="the proctor's face.absent in the interviewer's panel")
            wait_for(lambda: "face.absent" in by_testid(cd, "transparency").text,
                     what="face.absent in the candidate's panel")
            screenshot(hd, "demo-host")
            screenshot(cd, "demo-candidate")
    finally:
        demo.stop()
