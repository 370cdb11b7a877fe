"""The shared code editor: CodeMirror and a Yjs document in the browser, a y-sync peer of
this process over a local websocket.

A keystroke's whole path: CodeMirror → Yjs (y-codemirror.next) → one update over the page's
websocket → this process applies it to the `SharedDoc` (the session file records it, tagged
with this person's `origin` and its time) → the peer sync sends it on over the data channel
→ the other process applies it → its pages' websockets → their Yjs documents → CodeMirror.
Nothing on the way waits for a reply, and neither process transforms an edit: pycrdt and Yjs
speak the same update format and sync protocol.

The page is a third end of the document, with less say than the peer: `SyncProtocol`'s
`browser` role. It may write the code only, with the one client id this process gave it
(`SharedDoc.new_writer`, which also makes it one of this side's own, so the peer cannot
forge it); anything else it sends is refused, logged, and changes nothing. The websocket
lives under the run's secret (`/<token>/yjs/<room>`, `room` a fresh secret per editor
element) and `LocalGuard`'s Host and Origin checks. Presence (the remote caret) is Yjs
awareness carried through the session's `Awareness`.

The browser side is js/src/editor.js, bundled with its npm packages by scripts/build-js into
static/yeditor/ (shipped in the wheel; nothing is fetched at run time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response, WebSocket, WebSocketDisconnect
from nicegui import ui
from pycrdt import Awareness

from ..core.aio import first_completed
from ..core.channel import ChannelIteration
from ..core.document import SharedDoc
from ..core.errors import ChannelClosed
from ..core.sync import DocSync

__all__ = ["EDITORS", "PING_S", "EditorEndpoint", "SharedEditor", "WebSocketChannel",
           "add_editor_route"]

log = logging.getLogger(__name__)

PING_S = 10.0
"""How often an idle page hears from this process (y-websocket reconnects after 30 s of
silence)."""
COLORS = {"host": "#1971c2", "candidate": "#c2410c"}  # white names on them: >= 4.5:1


class WebSocketChannel(ChannelIteration):
    """A `Channel` over an accepted Starlette websocket (binary messages)."""

    def __init__(self, websocket: WebSocket, name: str) -> None:
        self.websocket = websocket
        self._path = name

    @property
    def path(self) -> str:
        return self._path

    async def send(self, message: bytes) -> None:
        try:
            await self.websocket.send_bytes(message)
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise ChannelClosed(f"{self._path}: {exc}") from None

    async def recv(self) -> bytes:
        try:
            message = await self.websocket.receive()
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise ChannelClosed(f"{self._path}: {exc}") from None
        if message["type"] == "websocket.disconnect":
            raise ChannelClosed(f"{self._path} closed")
        data = message.get("bytes")
        if data is None:  # a text frame: no y-sync message is one (the sync drops it)
            return (message.get("text") or "").encode()[:64]
        return bytes(data)


@dataclass
class EditorEndpoint:
    """What one editor element's websocket syncs with: `doc`, writing as `writer`, its
    edits tagged `origin`, presence through `awareness`."""

    doc: SharedDoc
    origin: str
    writer: int
    awareness: Awareness
    refused: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self._syncs: set[DocSync] = set()

    async def close(self) -> None:
        """The element is gone: end its websockets, and accept no new one."""
        self.closed = True
        for sync in list(self._syncs):
            await sync.stop()

    def _refused(self, reason: str, raw: bytes) -> None:
        self.refused += 1
        log.warning("editor page (%s): refused %d bytes: %s", self.origin, len(raw), reason)

    async def serve(self, websocket: WebSocket) -> None:
        """Sync with an accepted websocket until it closes."""
        channel = WebSocketChannel(websocket, f"editor-{self.origin}")
        sync = DocSync(self.doc, channel, awareness=self.awareness, origin=self.origin,
                       role="browser", writer=self.writer, on_refused=self._refused)
        if self.closed:
            return
        self._syncs.add(sync)
        await sync.start()
        try:
            while not sync.closed.is_set():
                await first_completed(sync.closed.wait(), asyncio.sleep(PING_S))
                if not sync.closed.is_set():
                    sync.protocol.ping()
        finally:
            self._syncs.discard(sync)
            await sync.stop()


EDITORS: dict[str, EditorEndpoint] = {}
"""The live editor elements of this process, by their room (a secret)."""


def _same(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


def add_editor_route(app: FastAPI, token: Callable[[], str]) -> None:
    """`WS /<token>/yjs/<room>`: the y-sync websocket of the editor element `room` (404
    without the run's secret or for an unknown room)."""

    @app.websocket("/{token_}/yjs/{room}")
    async def editor_socket(websocket: WebSocket, token_: str, room: str) -> None:
        endpoint = EDITORS.get(room) if _same(token_, token()) else None
        if endpoint is None:
            await websocket.send_denial_response(Response(status_code=404))
            return
        await websocket.accept()
        await endpoint.serve(websocket)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close()


_COMPONENT = str(Path(__file__).parent / "static" / "shared_editor.js")


class SharedEditor(ui.element, component=_COMPONENT, esm={"aiq-yeditor": "static/yeditor"}):
    """The shared editor element (see the module docstring). `base` is the run's secret
    path (`/<token>`); `role` and `name` are shown to the other person with the caret."""

    def __init__(self, doc: SharedDoc, *, origin: str, awareness: Awareness, base: str,
                 role: str, name: str, language: str = "python") -> None:
        super().__init__()
        self.room = secrets.token_urlsafe(18)
        self.endpoint = EditorEndpoint(doc, origin, doc.new_writer("code"), awareness)
        EDITORS[self.room] = self.endpoint
        self._props["base"] = base.rstrip("/")
        self._props["room"] = self.room
        self._props["clientId"] = self.endpoint.writer
        self._props["language"] = language
        self._props["readOnly"] = False
        self._props["user"] = {"name": name[:40], "role": role,
                               "color": COLORS.get(role, "#495057")}
        self.classes("w-full").style("height: 100%; min-height: 180px; border: 1px solid #ccc")

    @property
    def language(self) -> str:
        return str(self._props["language"])

    def set_language(self, language: str) -> None:
        self._props["language"] = language
        self.update()

    def set_read_only(self, read_only: bool = True) -> None:
        """Stop (or allow again) typing in this page's editor: the interview has ended. The
        record does not depend on it (the other side no longer takes edits once sealed)."""
        self._props["readOnly"] = read_only
        self.update()

    def _handle_delete(self) -> None:
        endpoint = EDITORS.pop(self.room, None)
        if endpoint is not None:
            with contextlib.suppress(RuntimeError):  # (no running loop: nothing is open)
                asyncio.get_running_loop().create_task(endpoint.close())
        super()._handle_delete()


def shared_editor(doc: Any, *, origin: str, awareness: Awareness, base: str, role: str,
                  name: str) -> SharedEditor:
    """The shared editor for one side, as the interview pages place it."""
    editor = SharedEditor(doc, origin=origin, awareness=awareness, base=base, role=role,
                          name=name, language=doc.language)
    editor.props('data-testid="editor"').style("height: 100%").mark("editor")
    return editor
