"""Real-browser test helpers: start AssessIQ apps as processes, drive headless Chromium.

Everything stays on 127.0.0.1: the apps listen there, the embedded signaling server too, and
Chromium runs with its background networking switched off.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).parent / "artifacts"
T = TypeVar("T")


def require_browser() -> None:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("needs Debian's chromium and chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("needs selenium (a dev dependency)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class App:
    """One `assessiq <command>` process serving its app on 127.0.0.1."""

    def __init__(self, args: list[str], data_dir: Path, *, timeout: float = 90.0,
                 module: str = "assessiq", urls: int = 1) -> None:
        self.port = free_port()
        # NiceGUI takes over the port when it believes it runs under pytest: hide pytest.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(ASSESSIQ_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
        self.log_path = data_dir / f"app-{self.port}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--no-browser", "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        self.urls: list[str] = []
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if ": open http" in line:
                self.urls.append(line.split(": open ", 1)[1].strip())
                if len(self.urls) == urls:
                    break
        if len(self.urls) < urls:
            self.stop()
            raise RuntimeError(f"app did not start: {self.log_path.read_text()[-2000:]}")
        wait_for(lambda: _listening(self.port), timeout=timeout, what="app listening")

    @property
    def url(self) -> str:
        return self.urls[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: Callable[[], T], *, timeout: float = 60.0, what: str = "condition",
             interval: float = 0.05) -> T:
    """Poll `check` until it returns something true (returned) or `timeout` passes (an
    AssertionError naming `what`). Timeouts are generous bounds for a busy 2-core CI
    machine, not expectations: a passing wait returns as soon as its condition holds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # the page may be mid-render
            last = exc
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


TWO_SCREENS = "{0,0 1600x1200}{1600,0 1280x1024}"
"""Headless Chromium's `--screen-info`: two side-by-side screens (`screen.isExtended` is
then true; with the default single screen it is false)."""


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000, *, screens: str | None = None,
             flags: tuple[str, ...] = ()) -> Iterator[Any]:
    """A headless Chromium with a fresh profile and no background networking; `screens`
    sets the screens it reports (headless `--screen-info`, e.g. `TWO_SCREENS`); `flags` are
    added to its command line."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="aiq-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 f"--window-size={width},{height}", *flags):
        options.add_argument(flag)
    if screens is not None:
        options.add_argument(f"--screen-info={screens}")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(90)
    try:
        yield driver
    finally:
        with contextlib.suppress(Exception):
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def by_testid(driver: Any, testid: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def click(driver: Any, testid: str, timeout: float = 60.0) -> None:
    def attempt() -> bool:
        el = by_testid(driver, testid)
        if not el.is_enabled() or el.get_attribute("disabled"):
            return False
        # to the middle of the window: a fixed page header can cover what is at its top
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
        el.click()
        return True

    wait_for(attempt, timeout=timeout, what=f"click {testid}")


def text_of(driver: Any, testid: str) -> str:
    """The element's text. NiceGUI may replace an element between finding it and reading
    it (a refreshed label): then it is found again."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        try:
            text: str = by_testid(driver, testid).text
            return text
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError(f"[data-testid={testid}] kept being replaced while read")


def editor_text(driver: Any) -> str:
    text: str = driver.execute_script(
        'const e = document.querySelector("[data-testid=editor]");'
        "return e && e.aiqEditor ? e.aiqEditor.getText() : null;")
    return text


def editor_selection(driver: Any) -> tuple[int, int]:
    sel = driver.execute_script(
        'const s = document.querySelector("[data-testid=editor]").aiqEditor.editor.state'
        ".selection.main; return [s.anchor, s.head];")
    return int(sel[0]), int(sel[1])


def remote_caret(driver: Any) -> str | None:
    value: str | None = driver.execute_script(
        'const c = document.querySelector("[data-testid=editor] .cm-ySelectionInfo");'
        "return c ? c.textContent : null;")
    return value


def open_interview(hd: Any, cd: Any, host_url: str, cand_url: str, *, name: str | None = None,
                   timeout: float = 60.0, before_enter: Callable[[], None] | None = None
                   ) -> None:
    """Create a session in the host's page, join it in the candidate's (as `name`, if
    given), enter after the camera check (`before_enter` runs first) and start it: both
    pages end on their interview pages."""
    hd.get(host_url)
    click(hd, "create")
    invite = wait_for(lambda: by_testid(hd, "invite").get_attribute("value"), what="invite")
    cd.get(cand_url)
    by_testid(cd, "invite-input").send_keys(invite)
    if name is not None:
        by_testid(cd, "name").send_keys(name)
    for step in ("check-invite", "agree", "continue", "join"):
        click(cd, step)
    if before_enter is not None:
        before_enter()
    click(cd, "enter", timeout=timeout)  # after the camera check
    wait_for(lambda: cd.current_url.endswith("/join/interview"), timeout=timeout,
             what="candidate interview page")
    if name is not None:
        wait_for(lambda: name in text_of(hd, "lobby-status"), what="host sees candidate")
    click(hd, "start")
    wait_for(lambda: hd.current_url.endswith("/host/interview"), what="host interview page")


def focus_editor_at(driver: Any, pos: int) -> None:
    driver.execute_script(
        'const ed = document.querySelector("[data-testid=editor]").aiqEditor;'
        "ed.editor.focus(); ed.editor.dispatch({selection: {anchor: arguments[0]}});", pos)


def type_in_editor(driver: Any, text: str) -> None:
    from selenium.webdriver.common.by import By

    content = driver.find_element(By.CSS_SELECTOR, "[data-testid=editor] .cm-content")
    content.send_keys(text)


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


@contextlib.contextmanager
def calibrated_interview(host_dir: Path, cand_dir: Path
                         ) -> Iterator[tuple[Any, Any, str]]:
    """A host app and a candidate app (data in `host_dir` and `cand_dir`, synthetic cameras)
    in two headless Chromium browsers: the candidate, "Ada", joined after the camera check
    calibrated, and the interview started. Yields (host driver, candidate driver, the
    starter code both editors show); everything is stopped on the way out."""
    require_browser()
    with contextlib.ExitStack() as stack:
        host = App(["-v", "host", "--camera", "synthetic"], host_dir)
        stack.callback(host.stop)
        cand = App(["-v", "join", "--camera", "synthetic"], cand_dir)
        stack.callback(cand.stop)
        hd = stack.enter_context(chromium())
        cd = stack.enter_context(chromium())
        open_interview(
            hd, cd, host.url, cand.url, name="Ada", timeout=90,
            before_enter=lambda: wait_for(
                lambda: "Calibrated on" in text_of(cd, "calibration"), timeout=120,
                what="calibration on the candidate's camera"))
        starter = wait_for(lambda: editor_text(hd), what="host editor")
        wait_for(lambda: editor_text(cd) == starter, what="candidate has the starter code")
        yield hd, cd, starter
