"""The browser demo: both apps from one command, the candidate consents and joins, and both
are in the interview, typing into one shared editor."""

from __future__ import annotations

from pathlib import Path

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

pytestmark = pytest.mark.timeout(150)


def test_demo_opens_both_apps_ready_to_type(tmp_path: Path) -> None:
    require_browser()
    demo = App([], tmp_path, module="assessiq.ui.demo", urls=2)
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
            wait_for(lambda: cd.current_url.endswith("/join/interview"), timeout=40,
                     what="candidate in the interview")
            # The host's lobby moves to the interview by itself in the demo.
            wait_for(lambda: hd.current_url.endswith("/host/interview"), timeout=20,
                     what="host in the interview")
            starter = wait_for(lambda: editor_text(cd), what="candidate editor")
            wait_for(lambda: editor_text(hd) == starter, what="same code on both")
            focus_editor_at(cd, 0)
            type_in_editor(cd, "# demo ✓\n")
            wait_for(lambda: editor_text(hd) == "# demo ✓\n" + starter, what="typing arrives")
            screenshot(hd, "demo-host")
            screenshot(cd, "demo-candidate")
    finally:
        demo.stop()
