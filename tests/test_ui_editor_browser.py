"""The shared editor (issue 13's Yjs + CodeMirror page, a y-sync peer of its own process) in
two real headless Chromium browsers, each on its own AssessIQ process, peer to peer on
127.0.0.1: concurrent typing in one line at 20 keys a second each, emoji / CJK / IME input, a
10 MB paste, per-person undo and redo, and remote carets.

One interview (host + candidate apps, joined and started: ~30 s each) is shared by every test
of this module (`room`, module scoped); each test first puts a known text in the editor. The
keystrokes are real key events (Chrome DevTools Protocol `Input.dispatchKeyEvent`, or
WebDriver's key actions), sent on a schedule from one thread per browser. Besides the two
pages, the host's and the candidate's session files are read (read-only, while the session
runs) to check that what they record is what both screens show.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    calibrated_interview,
    editor_selection,
    editor_text,
    focus_editor_at,
    remote_caret,
    screenshot,
    type_in_editor,
    wait_for,
)
from pycrdt import Doc
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from websockets.sync.client import ClientConnection, connect

from assessiq.core.document import SharedDoc, apply_update_checked
from assessiq.core.record import SessionRecord

pytestmark = pytest.mark.timeout(500)

KEYS_PER_S = 20.0
RACE_KEYS = 120
HOST_CHARS = "abcdefghijklmnopqrstuvwxyz"
CAND_CHARS = "0123456789"
PASTE_FILL = "the quick brown fox jumps over the lazy dog 0123456789"
PASTE_LINES = 163840
"""A 10 MiB paste: 163840 lines of an 8-digit line number, a space, `PASTE_FILL` and a
newline (64 characters each)."""
_PASTE_JS = """
const fill = arguments[0], lines = arguments[1], parts = new Array(lines);
for (let i = 0; i < lines; i++) parts[i] = String(i).padStart(8, "0") + " " + fill + "\\n";
const text = parts.join("");
const data = new DataTransfer();
data.setData("text/plain", text);
document.querySelector("[data-testid=editor] .cm-content").dispatchEvent(
    new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
return text.length;
"""


@dataclass
class Room:
    """One running interview: both browsers on their interview pages, and the session files
    of both sides."""

    hd: Any
    cd: Any
    host_dir: Path
    cand_dir: Path

    def host_file(self) -> Path:
        return _one_session_file(self.host_dir, "host")

    def cand_file(self) -> Path:
        return _one_session_file(self.cand_dir, "candidate")


def _one_session_file(data_dir: Path, what: str) -> Path:
    files = sorted((data_dir / "sessions").glob("*.aiq"))
    assert len(files) == 1, f"the {what}'s session files: {files}"
    return files[0]


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    """A host app and a candidate app (each its own data dir), the candidate joined (the
    default policy) and the interview started, in two headless Chromium browsers."""
    host_dir = tmp_path_factory.mktemp("editor-host")
    cand_dir = tmp_path_factory.mktemp("editor-cand")
    with calibrated_interview(host_dir, cand_dir) as (hd, cd, _):
        yield Room(hd, cd, host_dir, cand_dir)


# --- page helpers -----------------------------------------------------------------------------

_ED = 'const ed = document.querySelector("[data-testid=editor]").aiqEditor;'


def _utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _set_code(driver: Any, text: str) -> None:
    """Replace the whole code from this page (one edit, as a select-all + paste would)."""
    driver.execute_script(
        _ED + "ed.editor.dispatch({changes: {from: 0, to: ed.editor.state.doc.length,"
        " insert: arguments[0]}});", text)


def _reset(room: Room, text: str) -> None:
    """Put `text` in the editor (from the candidate's page) and wait until both show it;
    forget both undo histories, so a test's Ctrl+Z concerns only its own edits."""
    _set_code(room.cd, text)
    _on_both(room, lambda d: editor_text(d) == text, "the reset", timeout=90)
    for d in (room.hd, room.cd):
        d.execute_script(_ED + "ed.undoManager.clear();")


def _doc_length(driver: Any) -> int:
    return int(driver.execute_script(_ED + "return ed.editor.state.doc.length;"))


def _doc_sha256(driver: Any) -> str:
    """The SHA-256 (hex) of the page's code as UTF-8, computed in the page (the code itself
    may be too large to fetch through WebDriver comfortably)."""
    digest: str = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];" + _ED +
        "crypto.subtle.digest('SHA-256', new TextEncoder().encode(ed.getText()))"
        ".then(b => done(Array.from(new Uint8Array(b))"
        ".map(x => x.toString(16).padStart(2, '0')).join('')));")
    return digest


def _tail(driver: Any, n: int) -> str:
    text: str = driver.execute_script(
        _ED + "const s = ed.editor.state.doc; return s.sliceString(s.length - arguments[0]);",
        n)
    return text


def _key_event(char: str) -> dict[str, Any]:
    """`Input.dispatchKeyEvent` fields of the unshifted key typing `char` (a letter or digit)."""
    code = f"Digit{char}" if char.isdigit() else f"Key{char.upper()}"
    return {"key": char, "code": code, "windowsVirtualKeyCode": ord(char.upper()),
            "nativeVirtualKeyCode": ord(char.upper())}


class Cdp:
    """A DevTools Protocol session of its own on a browser's page (beside chromedriver's):
    a call is one websocket round trip to the browser on 127.0.0.1, short enough to keep 20
    key presses a second on schedule (chromedriver's `execute_cdp_cmd`, an HTTP request per
    call, fell behind at about 12 a second on a busy 2-core machine). Open with `cdp`."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._next = 0

    def call(self, method: str, **params: Any) -> Any:
        self._next += 1
        ident = self._next
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result")

    def press(self, char: str) -> None:
        """One real key press (down with its text, then up) in the focused element."""
        event = _key_event(char)
        self.call("Input.dispatchKeyEvent", type="keyDown", text=char, unmodifiedText=char,
                  **event)
        self.call("Input.dispatchKeyEvent", type="keyUp", **event)


@contextlib.contextmanager
def cdp(driver: Any) -> Iterator[Cdp]:
    """A `Cdp` session on `driver`'s current page (found by its URL among the browser's
    targets, through the debugging address chromedriver opened on 127.0.0.1)."""
    address = driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{address}/json/list", timeout=30) as response:
        targets = json.loads(response.read())
    url = driver.current_url
    page = next(t for t in targets if t.get("type") == "page" and t.get("url") == url)
    with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
        yield Cdp(ws)


def _type_on_schedule(cdp: Cdp, chars: str, start: float, rate: float,
                      errors: list[BaseException]) -> None:
    """Press each of `chars` at `start + i / rate` (monotonic clock; a late key goes at once,
    none is skipped)."""
    try:
        for i, char in enumerate(chars):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            cdp.press(char)
    except BaseException as exc:  # reported by the test's thread
        errors.append(exc)


def _file_code(path: Path) -> tuple[str, list[str]]:
    """The code a session file records (read-only, while its app runs) and the origin of each
    of its updates, in order."""
    record = SessionRecord.load(path)
    doc: Doc[Any] = Doc()
    for row in record.updates:
        apply_update_checked(doc, row.data)
    return SharedDoc(doc).code_text, [row.origin for row in record.updates]


def _files_agree(room: Room, text: str) -> None:
    """Both session files come to hold `text` as the code."""
    for path, who in ((room.host_file(), "host"), (room.cand_file(), "candidate")):
        wait_for(partial(_file_holds, path, text), timeout=60,
                 what=f"the {who}'s session file holds the code both pages show")


def _file_holds(path: Path, text: str) -> bool:
    return _file_code(path)[0] == text


def _on_both(room: Room, check: Callable[[Any], object], what: str,
             timeout: float = 60.0) -> None:
    """Wait until `check(driver)` holds on the host's page, then on the candidate's."""
    for d, who in ((room.hd, "host"), (room.cd, "candidate")):
        wait_for(partial(check, d), timeout=timeout, what=f"{what} on the {who}'s page")


# --- tests ------------------------------------------------------------------------------------


def test_remote_carets_show_the_other_persons_name(room: Room) -> None:
    _reset(room, "def f():\n    return 1\n")
    focus_editor_at(room.hd, 3)
    focus_editor_at(room.cd, 12)
    wait_for(lambda: remote_caret(room.hd) == "Ada", what="the host shows the candidate's caret")
    wait_for(lambda: remote_caret(room.cd) == "interviewer",
             what="the candidate shows the host's caret")
    # The host's caret is on line 1: its name is shown whole, inside the editor (a label
    # above the first line was cut off by the scroller, and shown only on hover).
    wait_for(lambda: _label_inside(room.cd), what="the caret's name shown on line 1")
    wait_for(lambda: _label_inside(room.hd), what="the caret's name shown on line 2")
    screenshot(room.hd, "editor-host-remote-caret")
    screenshot(room.cd, "editor-candidate-remote-caret-line-1")


def _label_inside(driver: Any) -> bool:
    """The other person's caret label is opaque and lies wholly inside the editor's view."""
    inside: bool = driver.execute_script(
        'const e = document.querySelector("[data-testid=editor]");'
        'const info = e.querySelector(".cm-ySelectionInfo");'
        "if (!info) return false;"
        'const box = e.querySelector(".cm-scroller").getBoundingClientRect();'
        "const r = info.getBoundingClientRect();"
        "return getComputedStyle(info).opacity === '1' && r.height > 0 && r.width > 0"
        " && r.top >= box.top && r.bottom <= box.bottom && r.left >= box.left;")
    return inside


def test_python_auto_indent_is_the_starters_four_spaces(room: Room) -> None:
    _reset(room, "")
    focus_editor_at(room.cd, 0)
    type_in_editor(room.cd, "def f():\n")
    # Auto-indent after the colon: four spaces, as the starters and PEP 8 (it gave two).
    wait_for(lambda: editor_text(room.cd) == "def f():\n    ", what="the auto-indent")
    _on_both(room, lambda d: editor_text(d) == "def f():\n    ", "the indented line")


def test_both_type_in_the_same_line_at_20_keys_a_second(room: Room) -> None:
    head = "# race\nrace: "
    tail = "\n# end\n"
    _reset(room, head + tail)
    host_keys = (HOST_CHARS * 5)[:RACE_KEYS]
    cand_keys = (CAND_CHARS * 13)[:RACE_KEYS]
    _, host_origins = _file_code(room.host_file())
    _, cand_origins = _file_code(room.cand_file())
    # Both carets at the same place: the end of the line "race: ".
    focus_editor_at(room.hd, len(head))
    focus_editor_at(room.cd, len(head))
    errors: list[BaseException] = []
    with cdp(room.hd) as host_cdp, cdp(room.cd) as cand_cdp:
        start = time.monotonic() + 0.3
        threads = [threading.Thread(target=_type_on_schedule,
                                    args=(session, keys, start, KEYS_PER_S, errors))
                   for session, keys in ((host_cdp, host_keys), (cand_cdp, cand_keys))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    n = len(head) + 2 * RACE_KEYS + len(tail)
    _on_both(room, lambda d: len(editor_text(d)) >= n, "every key")
    wait_for(lambda: editor_text(room.hd) == editor_text(room.cd), timeout=60,
             what="both pages converge")
    final = editor_text(room.hd)
    assert final.startswith(head) and final.endswith(tail), final
    typed = final[len(head):-len(tail)]
    # No lost, duplicated or reordered character: each person's keys in their typing order
    # (the interleaving of the two is free), and nothing else.
    assert "".join(c for c in typed if c in HOST_CHARS) == host_keys, typed
    assert "".join(c for c in typed if c in CAND_CHARS) == cand_keys, typed
    assert len(typed) == 2 * RACE_KEYS, typed
    # Each caret stayed after its own keys: all of them before it, none after.
    for d, mine in ((room.hd, HOST_CHARS), (room.cd, CAND_CHARS)):
        anchor, caret = editor_selection(d)
        assert anchor == caret and len(head) <= caret <= len(head) + len(typed), (anchor, caret)
        after = typed[caret - len(head):]
        assert not any(c in mine for c in after), (caret, typed)
    # Both session files hold the same code, each keystroke recorded with its origin.
    _files_agree(room, final)
    _, host_after = _file_code(room.host_file())
    _, cand_after = _file_code(room.cand_file())
    new_host = host_after[len(host_origins):]
    new_cand = cand_after[len(cand_origins):]
    assert new_host.count("host") >= RACE_KEYS and new_host.count("candidate") >= RACE_KEYS, \
        (len(new_host), sorted(set(new_host)))
    assert new_cand.count("candidate") >= RACE_KEYS and new_cand.count("host") >= RACE_KEYS, \
        (len(new_cand), sorted(set(new_cand)))
    screenshot(room.hd, "editor-host-race")


def test_emoji_and_cjk_input_reach_the_other_side(room: Room) -> None:
    base = "# i18n\n"
    _reset(room, base)
    # The host, at the top: CJK through WebDriver's key input, then (CDP's insertText, as an
    # input method commits) a ZWJ family, a flag with its variation selector, and a CJK
    # character outside the BMP (a surrogate pair).
    focus_editor_at(room.hd, 0)
    type_in_editor(room.hd, "# 中文 한국어 ")
    with cdp(room.hd) as session:
        session.call("Input.insertText", text="👨‍👩‍👧‍👦 🏳️‍🌈 𠜎\n")
    host_text = "# 中文 한국어 👨‍👩‍👧‍👦 🏳️‍🌈 𠜎\n"
    wait_for(lambda: editor_text(room.cd) == host_text + base,
             what="the host's text on the candidate's page")
    # The candidate, at the end: an emoji key by key, a flag (two regional indicators, two
    # surrogate pairs), then an IME composition (pinyin "nihao" composed, then committed).
    end = _utf16_len(host_text + base)
    focus_editor_at(room.cd, end)
    type_in_editor(room.cd, "# 😀 ")
    with cdp(room.cd) as session:
        session.call("Input.insertText", text="🇯🇵 ")
        for composing in ("n", "ni", "你", "你h", "你ha", "你hao", "你好"):
            session.call("Input.imeSetComposition", text=composing,
                         selectionStart=len(composing), selectionEnd=len(composing))
            if composing == "你hao":  # the editor follows the composition as it goes
                wait_for(lambda: editor_text(room.cd).endswith("🇯🇵 你hao"),
                         what="the composition in the candidate's editor")
        session.call("Input.insertText", text="你好")
    cand_text = "# 😀 🇯🇵 你好"
    expected = host_text + base + cand_text
    _on_both(room, lambda d: editor_text(d) == expected, "both texts")
    # Each caret right after what that person typed (CodeMirror counts UTF-16 units).
    assert editor_selection(room.hd) == (_utf16_len(host_text),) * 2
    assert editor_selection(room.cd) == (_utf16_len(expected),) * 2
    _files_agree(room, expected)
    screenshot(room.hd, "editor-host-i18n")


def test_a_10_mb_paste_reaches_the_host_intact(room: Room) -> None:
    base = "# paste below\n"
    _reset(room, base)
    pasted = "".join(f"{i:08d} {PASTE_FILL}\n" for i in range(PASTE_LINES))
    assert len(pasted) == 10 * 1024 * 1024
    expected = base + pasted
    digest = hashlib.sha256(expected.encode()).hexdigest()
    focus_editor_at(room.cd, len(base))
    assert room.cd.execute_script(_PASTE_JS, PASTE_FILL, PASTE_LINES) == len(pasted)
    wait_for(lambda: _doc_length(room.cd) == len(expected), timeout=60,
             what="the paste in the candidate's editor")
    wait_for(lambda: _doc_length(room.hd) == len(expected), timeout=240, interval=0.5,
             what="the paste on the host's page")
    assert _doc_sha256(room.hd) == digest
    assert _doc_sha256(room.cd) == digest
    assert editor_selection(room.cd) == (len(expected),) * 2
    host_code, _ = _file_code(room.host_file())
    assert hashlib.sha256(host_code.encode()).hexdigest() == digest, len(host_code)
    # Typing still works on both sides: the host at the top, the candidate at the end.
    focus_editor_at(room.hd, 0)
    for d, char in ((room.hd, "h"), (room.cd, "c")):
        with cdp(d) as session:
            session.press(char)
    _on_both(room, lambda d: _doc_length(d) == len(expected) + 2 and _tail(d, 2) == "\nc"
             and d.execute_script(_ED + "return ed.editor.state.doc.sliceString(0, 2);")
             == "h#", "both keys after the paste")
    # Back to a small text, so that later tests stay fast.
    _reset(room, "# after the paste\n")


def test_undo_and_redo_stay_local_to_each_person(room: Room) -> None:
    _reset(room, "host: \ncand: \n")
    focus_editor_at(room.hd, len("host: "))
    type_in_editor(room.hd, "AAA")
    both = "host: AAA\ncand: BBB\n"
    wait_for(lambda: editor_text(room.cd) == "host: AAA\ncand: \n",
             what="the host's AAA on the candidate's page")
    focus_editor_at(room.cd, len("host: AAA\ncand: "))
    type_in_editor(room.cd, "BBB")
    content = {d: d.find_element(By.CSS_SELECTOR, "[data-testid=editor] .cm-content")
               for d in (room.hd, room.cd)}

    def shown(text: str, what: str) -> None:
        _on_both(room, lambda d: editor_text(d) == text, what)

    shown(both, "both edits")
    # The candidate's Ctrl+Z undoes the candidate's BBB only, on both sides.
    content[room.cd].send_keys(Keys.CONTROL, "z")
    shown("host: AAA\ncand: \n", "the candidate's undo")
    content[room.cd].send_keys(Keys.CONTROL, Keys.SHIFT, "z")
    shown(both, "the candidate's redo (Ctrl+Shift+Z)")
    content[room.cd].send_keys(Keys.CONTROL, "z")
    shown("host: AAA\ncand: \n", "the candidate's second undo")
    content[room.cd].send_keys(Keys.CONTROL, "y")
    shown(both, "the candidate's redo (Ctrl+Y)")
    # The host's Ctrl+Z undoes the host's AAA only.
    content[room.hd].send_keys(Keys.CONTROL, "z")
    shown("host: \ncand: BBB\n", "the host's undo")
    content[room.hd].send_keys(Keys.CONTROL, "y")
    shown(both, "the host's redo")
    _files_agree(room, both)


def _fits(driver: Any) -> dict[str, Any]:
    """How the interview page sits in the window: horizontal overflow, and where Run and the
    results are."""
    fit: dict[str, Any] = driver.execute_script(
        "const q = id => document.querySelector(`[data-testid=${id}]`).getBoundingClientRect();"
        "const run = q('run'), out = q('results'), ed = q('editor');"
        "return {overflow: document.documentElement.scrollWidth - window.innerWidth,"
        " height: window.innerHeight, run: run.bottom, results: out.top,"
        " editor: ed.height, scrolled: window.scrollY};")
    return fit


@pytest.mark.parametrize("size", [(1280, 720), (1440, 900), (1920, 1080)])
def test_the_room_fills_the_window_with_run_and_results_in_view(room: Room,
                                                                size: tuple[int, int]) -> None:
    width, height = size
    for d, who in ((room.hd, "host"), (room.cd, "candidate")):
        d.set_window_size(width, height)  # then grown by the browser's own frame: the
        extra = d.execute_script(  # page itself gets width × height
            "return [window.outerWidth - window.innerWidth,"
            " window.outerHeight - window.innerHeight];")
        d.set_window_size(width + int(extra[0]), height + int(extra[1]))
        d.execute_script("window.scrollTo(0, 0)")

        def settled(d: Any = d) -> dict[str, Any] | None:
            fit = _fits(d)
            return fit if fit["run"] <= fit["height"] else None

        fit = wait_for(settled, what=f"Run in view on the {who}'s page at {width}×{height}")
        assert fit["height"] == height, fit
        assert fit["overflow"] <= 0, fit  # no horizontal scrolling
        assert fit["results"] < fit["height"], fit  # the results start within the window
        assert fit["editor"] >= 180, fit  # the editor takes the height it is given
        screenshot(d, f"room-{who}-{width}x{height}")
