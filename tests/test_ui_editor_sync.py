"""The editor page as a y-sync peer of its own process (`SyncProtocol` role "browser",
`ui/editor.py`): an honest page's keystrokes reach the other person unchanged and are
recorded as this person's; a modified page (or another program that found the room) can
write nothing but this person's code, as its one client id; and the session file holds the
same keystrokes as the old push/confirm path did.

The page is played by a pycrdt document, whose updates are Yjs's own format (the real page,
in Chromium, is tests/test_ui_editor_browser.py and tests/test_ui_browser.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from fastapi import FastAPI
from pycrdt import Awareness, create_awareness_message, create_sync_message, create_update_message
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from assessiq.core.document import SharedDoc
from assessiq.core.record import SessionRecord
from assessiq.core.store import SessionStore
from assessiq.core.sync import STATE, SyncProtocol
from assessiq.room.replay import Replay
from assessiq.ui.editor import EDITORS, EditorEndpoint, add_editor_route


class Page:
    """A browser editor: a Yjs-format document writing as `client`, and what it sends."""

    def __init__(self, client: int) -> None:
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=client)
        self.text = self.doc.get("code", type=pycrdt.Text)
        self.outbox: list[bytes] = []
        self._applying = False
        self.doc.observe(self._on_update)

    def _on_update(self, event: pycrdt.TransactionEvent) -> None:
        if not self._applying:
            self.outbox.append(create_update_message(event.update))

    def type(self, index: int, text: str) -> None:
        """One update per character, at code point `index` (pycrdt counts UTF-8 bytes)."""
        for ch in text:
            self.text.insert(len(str(self.text)[:index].encode()), ch)
            index += 1

    def receive(self, message: bytes) -> None:
        if message[0] != 0:  # presence: not this page's concern here
            return
        self._applying = True
        try:
            reply = pycrdt.handle_sync_message(message[1:], self.doc)
        finally:
            self._applying = False
        if reply is not None:
            self.outbox.append(reply)


class Side:
    """One person's process: its document, its peer sync, and one editor page."""

    def __init__(self, role: str, peer_role: str, sync_role: Any) -> None:
        self.doc = SharedDoc()
        self.awareness = Awareness(self.doc.doc)
        self.refused: list[str] = []
        self.page_refused: list[str] = []
        self.peer = SyncProtocol(self.doc, self.awareness, origin=peer_role, role=sync_role,
                                 on_refused=lambda r, _m: self.refused.append(r))
        self.writer = self.doc.new_writer("code")
        self.page = Page(self.writer)
        self.editor = SyncProtocol(self.doc, self.awareness, origin=role, role="browser",
                                   writer=self.writer,
                                   on_refused=lambda r, _m: self.page_refused.append(r))


def pump(*links: tuple[Callable[[], list[bytes]], Callable[[bytes], None]]) -> None:
    """Deliver every queued message over `links` (take, receive) until all are quiet."""
    for _ in range(1000):
        moved = False
        for take, receive in links:
            for message in take():
                moved = True
                receive(message)
        if not moved:
            return
    raise AssertionError("the sync did not settle")


def page_take(page: Page) -> Callable[[], list[bytes]]:
    def take() -> list[bytes]:
        out, page.outbox = page.outbox, []
        return out
    return take


@pytest.fixture
def pair() -> tuple[Side, Side]:
    host, cand = Side("host", "candidate", "owner"), Side("candidate", "host", "reader")
    for side in (host, cand):
        side.peer.open()
        side.editor.open()
    host.doc.set_problem("Sum two numbers", origin="host")
    host.doc.set_code("def f():\n    pass\n", origin="host")
    settle(host, cand)
    return host, cand


def settle(host: Side, cand: Side) -> None:
    pump((host.peer.take, cand.peer.receive), (cand.peer.take, host.peer.receive),
         (host.editor.take, host.page.receive), (page_take(host.page), host.editor.receive),
         (cand.editor.take, cand.page.receive), (page_take(cand.page), cand.editor.receive))


def test_a_page_keystroke_reaches_the_other_page_and_is_recorded_as_its_persons(
        pair: tuple[Side, Side]) -> None:
    host, cand = pair
    seen: list[tuple[str | None, int]] = []
    cand.doc.observe_updates(lambda u, origin: seen.append((origin, len(u))))
    assert str(cand.page.text) == str(host.page.text) == "def f():\n    pass\n"
    cand.page.type(len("def f():\n    "), "return 1 # 😀 世界 🇫🇷\n    ")
    settle(host, cand)
    expected = "def f():\n    return 1 # 😀 世界 🇫🇷\n    pass\n"
    assert cand.doc.code_text == host.doc.code_text == str(host.page.text) == expected
    assert {origin for origin, _ in seen} == {"candidate"}  # every keystroke, the person's
    assert len(seen) == len("return 1 # 😀 世界 🇫🇷\n    ")
    host.page.type(0, "# host\n")
    settle(host, cand)
    assert str(cand.page.text) == "# host\n" + expected
    assert not (host.refused or cand.refused or host.page_refused or cand.page_refused)


def test_a_modified_page_writes_nothing_but_its_own_persons_code(
        pair: tuple[Side, Side]) -> None:
    host, cand = pair
    before = host.doc.code_text
    # as the interviewer's page or process, as another page, as a made-up client
    for client in (host.writer, host.doc.client_id, cand.doc.client_id, 7777):
        forged: pycrdt.Doc[Any] = pycrdt.Doc(client_id=client)
        forged.apply_update(cand.doc.get_part_update("code"))
        updates: list[bytes] = []
        forged.observe(lambda e, out=updates: out.append(e.update))
        forged.get("code", type=pycrdt.Text).insert(0, "FORGED ")
        cand.editor.receive(create_update_message(updates[-1]))
    # the state: a root of the host's, and a state sync message
    rogue: pycrdt.Doc[Any] = pycrdt.Doc(client_id=cand.writer)
    rogue_updates: list[bytes] = []
    rogue.observe(lambda e: rogue_updates.append(e.update))
    rogue.get("meta", type=pycrdt.Map)["problem"] = "solved already"
    cand.editor.receive(create_update_message(rogue_updates[-1]))
    cand.editor.receive(bytes((STATE,)) + create_update_message(rogue_updates[-1])[1:])
    settle(host, cand)
    assert cand.doc.code_text == host.doc.code_text == before
    assert host.doc.problem == cand.doc.problem == "Sum two numbers"
    reasons = cand.page_refused
    assert len(reasons) == 6, reasons
    assert sum("forges edits of client" in r for r in reasons) == 4
    assert "writes to meta" in reasons[4] and "only this side writes" in reasons[5]
    # the honest page goes on
    cand.page.type(0, "ok ")
    settle(host, cand)
    assert host.doc.code_text == "ok " + before
    assert not host.refused  # nothing forged ever left the candidate's process


def test_a_page_may_echo_what_everyone_wrote(pair: tuple[Side, Side]) -> None:
    host, cand = pair
    host.page.type(0, "x")
    settle(host, cand)
    # a page that reconnects sends all it has: the host's and its own edits, nothing new
    cand.editor.receive(create_update_message(cand.page.doc.get_update()))
    cand.editor.receive(create_sync_message(cand.page.doc))
    settle(host, cand)
    assert not cand.page_refused and not host.refused
    assert host.doc.code_text == cand.doc.code_text


def test_the_peer_cannot_forge_the_other_persons_page(pair: tuple[Side, Side]) -> None:
    host, cand = pair
    # the host's process (modified) writes as the candidate's page
    forged: pycrdt.Doc[Any] = pycrdt.Doc(client_id=cand.writer)
    forged.apply_update(host.doc.get_part_update("code"))
    updates: list[bytes] = []
    forged.observe(lambda e: updates.append(e.update))
    forged.get("code", type=pycrdt.Text).insert(0, "typed by the candidate? ")
    cand.peer.receive(create_update_message(updates[-1]))
    assert "forges edits of this side" in cand.refused[-1]
    assert not cand.doc.code_text.startswith("typed")
    # and the candidate's page's own next keystroke still goes through
    cand.page.type(0, "c")
    settle(host, cand)
    assert host.doc.code_text.startswith("c") and cand.doc.code_text.startswith("c")


def presence(client: int, clock: int, state: dict[str, Any] | None) -> bytes:
    enc = pycrdt.Encoder()
    enc.write_var_uint(1)
    enc.write_var_uint(client)
    enc.write_var_uint(clock)
    enc.write_var_string(json.dumps(state) if state is not None else "null")
    return create_awareness_message(enc.to_bytes())


def test_a_page_speaks_for_its_own_presence_only(pair: tuple[Side, Side]) -> None:
    host, cand = pair
    cursor = {"role": "candidate", "user": {"name": "Ada", "color": "#d9480f"},
              "cursor": {"anchor": {"type": None, "tname": "code", "item": None,
                                    "assoc": 0}}}
    cand.editor.receive(presence(cand.writer, 1, cursor))
    cand.editor.receive(presence(host.writer, 5, {"role": "host", "user": {"name": "x"}}))
    settle(host, cand)
    assert host.awareness.states.get(cand.writer) == cursor  # shown on the host's side
    assert host.writer not in cand.awareness.states  # the page's claim for another: ignored
    # the host's page hears of it too, through its own process
    host.editor.receive(presence(host.writer, 1, {"role": "host", "user": {"name": "I"}}))
    settle(host, cand)
    assert cand.awareness.states.get(host.writer) == {"role": "host", "user": {"name": "I"}}
    cand.editor.receive(presence(cand.writer, 2, {"role": "candidate", "pad": "x" * 5000}))
    assert "presence state of" in cand.page_refused[-1]
    # a page that leaves takes its caret with it, on both sides
    cand.editor.close()
    settle(host, cand)
    assert cand.writer not in host.awareness.states


def test_two_pages_and_reloads_are_not_a_presence_flood(pair: tuple[Side, Side]) -> None:
    host, cand = pair
    # a page reloaded five times: each load a new client; the old one leaves
    for load in range(5):
        writer = cand.doc.new_writer("code")
        page = SyncProtocol(cand.doc, cand.awareness, origin="candidate", role="browser",
                            writer=writer)
        page.open()
        page.receive(presence(writer, 1, {"role": "candidate", "user": {"name": f"{load}"}}))
        settle(host, cand)
        page.close()
        settle(host, cand)
    assert not host.refused


def test_the_session_file_records_the_same_keystrokes_as_the_old_path(tmp_path: Path) -> None:
    """The old editor pushed each keystroke as a UTF-16 change applied by its process
    (`apply_editor_changes`); the page now sends Yjs updates. The same keys make the same
    recorded timeline: one update per key, the same origin, the same text after each."""
    script: list[tuple[int, int, str]] = []  # (utf-16 from, to, insert) per key
    text = ""
    for ch in "def add(a, b):\n    return a + b  # 😀 和 🇫🇷\n":
        n = len(text.encode("utf-16-le")) // 2
        script.append((n, n, ch))
        text += ch
    script += [(len(text.encode("utf-16-le")) // 2 - 1, len(text.encode("utf-16-le")) // 2, "")]

    def timeline(path: Path, new_path: bool) -> list[tuple[float, str, str]]:
        store = SessionStore.create(path, {"session": "s", "created": 1000.0})
        ticks = iter(range(10_000))
        store.clock = lambda: 1000.0 + next(ticks)
        doc = SharedDoc()
        store.attach(doc, local_origin="candidate")
        if new_path:
            writer = doc.new_writer("code")
            page = Page(writer)
            editor = SyncProtocol(doc, Awareness(doc.doc), origin="candidate",
                                  role="browser", writer=writer)
            editor.open()
            editor.take()
            for start, end, insert in script:
                units = str(page.text).encode("utf-16-le")  # the page counts UTF-16
                at = len(units[:start * 2].decode("utf-16-le").encode())  # pycrdt: UTF-8
                to = len(units[:end * 2].decode("utf-16-le").encode())
                if end > start:
                    del page.text[at:to]
                if insert:
                    page.text.insert(at, insert)
                for message in page_take(page)():
                    editor.receive(message)
        else:
            for start, end, insert in script:
                doc.apply_editor_changes([{"from": start, "to": end, "insert": insert}],
                                         origin="candidate")
        store.flush()
        replay = Replay(SessionRecord.from_store(store))
        rows = [(row.t, row.origin) for row in store.updates()]
        store.close()
        return [(t, origin, replay.code_at(t)) for t, origin in rows]

    old = timeline(tmp_path / "old.aiq", new_path=False)
    new = timeline(tmp_path / "new.aiq", new_path=True)
    assert len(old) == len(script)
    assert new == old
    assert old[-1][2] == text[:-1]


@contextlib.contextmanager
def served_room(token: str, room: str, code: str, origin: str
                ) -> Iterator[tuple[FastAPI, SharedDoc, EditorEndpoint]]:
    """An app with the editor route under `token`, and a live editor `room` on a document
    holding `code`."""
    app = FastAPI()
    add_editor_route(app, lambda: token)
    doc = SharedDoc()
    doc.set_code(code, origin="host")
    endpoint = EditorEndpoint(doc, origin, doc.new_writer("code"), Awareness(doc.doc))
    EDITORS[room] = endpoint
    try:
        yield app, doc, endpoint
    finally:
        EDITORS.pop(room, None)


def test_the_websocket_route_answers_only_the_runs_secret_and_a_live_room() -> None:
    with served_room("secret-token", "room-1", "x = 1\n", "candidate") as (app, doc, endpoint):
        writer = endpoint.writer
        with TestClient(app) as client:
            for path in ("/wrong-token/yjs/room-1", "/secret-token/yjs/no-such-room"):
                with pytest.raises(WebSocketDisconnect), client.websocket_connect(path):
                    pass
            page = Page(writer)
            with client.websocket_connect("/secret-token/yjs/room-1") as ws:
                page.receive(ws.receive_bytes())  # the process's step 1: the page answers
                ws.send_bytes(create_sync_message(page.doc))
                while str(page.text) != "x = 1\n":
                    page.receive(ws.receive_bytes())
                for message in page_take(page)():
                    ws.send_bytes(message)
                page.type(6, "y = 2\n")
                for message in page_take(page)():
                    ws.send_bytes(message)
                ws.send_text("not a y-sync message")
                ws.send_bytes(b"\x00\x00\x05junk!")
                page.type(0, "# ok\n")
                for message in page_take(page)():
                    ws.send_bytes(message)
                ws.send_bytes(create_sync_message(page.doc))  # a round trip: all is applied
                while True:
                    message = ws.receive_bytes()
                    if message[:2] == b"\x00\x01":
                        break
            assert doc.code_text == "# ok\nx = 1\ny = 2\n"
            assert endpoint.refused == 2


def test_an_idle_page_hears_from_its_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """y-websocket drops a connection after 30 s without a message; the process sends an
    update that changes nothing every `PING_S`, which the page applies as nothing."""
    # (through the module's own globals: another test may have imported it afresh)
    monkeypatch.setitem(EditorEndpoint.serve.__globals__, "PING_S", 0.05)
    with served_room("t", "room-2", "x\n", "host") as (app, _doc, endpoint):
        writer = endpoint.writer
        with TestClient(app) as client, client.websocket_connect("/t/yjs/room-2") as ws:
            page = Page(writer)
            ws.send_bytes(create_sync_message(page.doc))
            time.sleep(0.4)  # idle: ~8 pings are due meanwhile
            ws.send_bytes(create_sync_message(page.doc))  # its answer comes after them
            pings = step2s = 0
            while step2s < 2:
                message = ws.receive_bytes()
                pings += message == b"\x00\x02\x02\x00\x00"
                step2s += message[:2] == b"\x00\x01"
                page.receive(message)
            assert pings >= 2
            assert str(page.text) == "x\n"  # the pings changed nothing
