"""Accessibility in a real browser: axe-core on every page of the host's, the candidate's and
the replay's apps, and the candidate's way from the invite into the interview with the
keyboard alone.

axe-core is the npm package pinned in js/axe/package-lock.json (apart from the editor's
lockfile, whose hash the editor bundle's header names); when js/axe/node_modules is missing,
the module's fixture installs it with `npm ci` and skips, saying so, where npm is missing. It
is injected into each page in the test Chromium and run there; the full results of each page
are kept as JSON in tests/artifacts/a11y/. A page passes with no violation of "serious" or
"critical" impact (axe's own grading); the moderate and minor ones are kept in the JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    ARTIFACTS,
    App,
    by_testid,
    chromium,
    click,
    editor_text,
    require_browser,
    text_of,
    wait_for,
)

pytestmark = pytest.mark.timeout(400)

AXE_DIR = Path(__file__).parent.parent / "js" / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
OUT = ARTIFACTS / "a11y"


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core's browser script, installed from js/axe/package-lock.json if it is not yet."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("needs npm to install axe-core from js/axe/package-lock.json")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=AXE_DIR, check=True, timeout=300)
    return AXE_JS.read_text(encoding="utf-8")


def dark(driver: Any) -> None:
    """Switch the page to the dark theme (its toggle: the system's theme, light here, →
    dark) and wait until Quasar has redrawn its items dark and their colour transitions
    (0.3 s) have ended: axe-core reads the colours as they are at that moment."""
    click(driver, "theme")
    wait_for(lambda: driver.execute_script(
        "return document.body.classList.contains('body--dark') && "
        "[...document.querySelectorAll('.q-item')]"
        ".every(i => i.classList.contains('q-item--dark')) && "
        "!document.getAnimations().some(a => a instanceof CSSTransition)"),
        what="the dark theme")


def run_axe(driver: Any, source: str, page: str) -> list[str]:
    """Run axe-core on the page `driver` shows; keep its full results as
    tests/artifacts/a11y/`page`.json and return one line per serious or critical violation
    (with the elements it names)."""
    if not driver.execute_script("return !!window.axe"):
        driver.execute_script(source)
    driver.set_script_timeout(120)
    results = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(JSON.parse(JSON.stringify(r))),"
        " e => done({error: String(e)}));")
    assert "error" not in results, results.get("error")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{page}.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    bad = []
    for v in results["violations"]:
        if v["impact"] in BLOCKING:
            targets = "; ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:6])
            bad.append(f"{page}: {v['id']} ({v['impact']}, {len(v['nodes'])} elements: "
                       f"{targets})")
    return bad


def active(driver: Any) -> Any:
    return driver.switch_to.active_element


def tab_to(driver: Any, testid: str, *, limit: int = 40) -> Any:
    """Press Tab (in the element that has the focus) until the focus is inside the element
    `testid` names; the element that then has the focus."""
    from selenium.webdriver.common.keys import Keys

    def inside() -> bool:
        return bool(driver.execute_script(
            "const t = document.querySelector(`[data-testid=\"${arguments[0]}\"]`);"
            "return !!t && (t === document.activeElement || t.contains(document.activeElement))",
            testid))

    for _ in range(limit):
        if inside():
            return active(driver)
        active(driver).send_keys(Keys.TAB)
    raise AssertionError(f"{limit} Tab presses did not reach [data-testid={testid}]")


def press(driver: Any, testid: str, key: str) -> None:
    """Tab to `testid` and press `key` (Enter or Space) there, once it is enabled."""
    def enabled() -> bool:
        return bool(driver.execute_script(
            "const t = document.querySelector(`[data-testid=\"${arguments[0]}\"]`);"
            "return !!t && !t.disabled && !t.hasAttribute('disabled')"
            " && t.getAttribute('aria-disabled') !== 'true'", testid))

    wait_for(enabled, what=f"{testid} enabled")
    tab_to(driver, testid).send_keys(key)


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, App, Path]]:
    require_browser()
    data = tmp_path_factory.mktemp("a11y")
    host = App(["host", "--camera", "synthetic"], data)
    try:
        cand = App(["join", "--camera", "synthetic"], data)
    except Exception:
        host.stop()
        raise
    try:
        yield host, cand, data
    finally:
        cand.stop()
        host.stop()


def test_every_page_passes_axe_and_the_candidate_needs_only_the_keyboard(
        apps: tuple[App, App, Path], axe_source: str) -> None:
    from selenium.webdriver.common.keys import Keys

    host, cand, data = apps
    bad: list[str] = []
    with chromium() as hd, chromium() as cd:
        # -- the host: setup and lobby ------------------------------------------------------
        hd.get(host.url)
        wait_for(lambda: by_testid(hd, "create"), what="setup page")
        bad += run_axe(hd, axe_source, "host-setup")
        click(hd, "create")
        invite = wait_for(lambda: by_testid(hd, "invite").get_attribute("value"),
                          what="invite")
        bad += run_axe(hd, axe_source, "host-lobby")

        # -- the candidate, with the keyboard only: Tab, typing, Enter and Space ------------
        cd.get(cand.url)
        wait_for(lambda: by_testid(cd, "check-invite"), what="join page")
        bad += run_axe(cd, axe_source, "candidate-join")
        tab_to(cd, "invite-input").send_keys(invite)
        tab_to(cd, "name").send_keys("Ada")
        press(cd, "check-invite", Keys.ENTER)
        wait_for(lambda: by_testid(cd, "agree"), what="consent page")
        bad += run_axe(cd, axe_source, "candidate-consent")
        press(cd, "agree", Keys.SPACE)
        press(cd, "continue", Keys.ENTER)
        wait_for(lambda: cd.current_url.endswith("/join/check"), what="camera check page")
        wait_for(lambda: by_testid(cd, "join"), what="join button")
        bad += run_axe(cd, axe_source, "candidate-check-before-join")
        press(cd, "join", Keys.ENTER)
        wait_for(lambda: "Calibrated on" in text_of(cd, "calibration"), timeout=120,
                 what="calibration on the candidate's camera")
        bad += run_axe(cd, axe_source, "candidate-check")
        press(cd, "enter", Keys.ENTER)
        wait_for(lambda: cd.current_url.endswith("/join/interview"), timeout=90,
                 what="candidate interview page")
        wait_for(lambda: "Ada" in text_of(hd, "lobby-status"), what="host sees candidate")
        bad += run_axe(hd, axe_source, "host-lobby-candidate")

        # -- the interview on both sides, then the end ---------------------------------------
        click(hd, "start")
        wait_for(lambda: hd.current_url.endswith("/host/interview"), what="host interview")
        wait_for(lambda: hd.execute_script(
            'return !!document.querySelector("[data-testid=editor] .cm-content")'),
            what="host editor")
        wait_for(lambda: cd.execute_script(
            'return !!document.querySelector("[data-testid=editor] .cm-content")'),
            what="candidate editor")
        # The page asks for fullscreen first (a dialog over the page): Enter on its button.
        press(cd, "fullscreen", Keys.ENTER)
        wait_for(lambda: cd.execute_script("return !!document.fullscreenElement"),
                 what="the candidate's page in fullscreen")
        # The candidate writes and runs code with the keyboard: Tab indents inside the
        # editor, so Escape and then Tab leaves it (CodeMirror's way out, named in the
        # editor's aria-label).
        tab_to(cd, "editor").send_keys(Keys.CONTROL, Keys.END)
        active(cd).send_keys(Keys.ENTER, "# typed with the keyboard")
        wait_for(lambda: "# typed with the keyboard" in editor_text(cd), what="typed")
        active(cd).send_keys(Keys.ESCAPE)
        active(cd).send_keys(Keys.TAB)
        assert not cd.execute_script(
            'return document.querySelector("[data-testid=editor]")'
            ".contains(document.activeElement)"), "Escape, Tab did not leave the editor"
        press(cd, "run", Keys.ENTER)
        wait_for(lambda: by_testid(cd, "run-summary"), timeout=120, what="the run's result")
        wait_for(lambda: by_testid(hd, "run-summary"), timeout=60, what="the run on the host")
        bad += run_axe(hd, axe_source, "host-interview")
        bad += run_axe(cd, axe_source, "candidate-interview")
        for d, page in ((hd, "host-interview-dark"), (cd, "candidate-interview-dark")):
            dark(d)
            bad += run_axe(d, axe_source, page)
        click(hd, "end")
        click(hd, "end-confirm")
        wait_for(lambda: hd.current_url.endswith("/host/ended"), timeout=90, what="ended page")
        session_file = Path(text_of(hd, "session-file").split(": ", 1)[1])
        bad += run_axe(hd, axe_source, "host-ended")
        wait_for(lambda: by_testid(cd, "ended-banner").is_displayed(),
                 what="the candidate told the interview ended")
        bad += run_axe(cd, axe_source, "candidate-ended")

    # -- the replay of the sealed session --------------------------------------------------
    replay = App(["replay", str(session_file)], data)
    try:
        with chromium() as rd:
            rd.get(replay.url)
            wait_for(lambda: text_of(rd, "verdict").startswith("VALID"), what="replay")
            bad += run_axe(rd, axe_source, "replay")
            dark(rd)
            bad += run_axe(rd, axe_source, "replay-dark")
    finally:
        replay.stop()
    assert not bad, "serious or critical axe-core violations:\n" + "\n".join(bad)
