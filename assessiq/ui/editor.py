"""The shared code editor: a CodeMirror element in the browser bound to the `SharedDoc`.

`EditorBinding` is the Python end of one browser editor. It numbers every update it sends to
the browser; the browser pushes its own edits together with the number of the last update it
has seen, and an edit made on an older document is refused (the browser rebases it over the
updates it missed and pushes again — the scheme of @codemirror/collab). Remote edits travel
as change sets, never as a whole new value, so the local cursor stays where it was. Offsets
are UTF-16 towards the browser and code points towards the document (`core.textindex`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import nicegui.elements.codemirror  # noqa: F401 - registers the "nicegui-codemirror" ESM bundle
from nicegui import ui
from nicegui.events import GenericEventArguments

from ..core.document import CodeChange, SharedDoc
from ..core.textindex import TextIndex

__all__ = ["EditorBinding", "EditorSink", "SharedEditor"]

log = logging.getLogger(__name__)

CursorCallback = Callable[[int, int], None]


class EditorSink(Protocol):
    """Where a binding sends updates (the browser element, or a list in tests)."""

    def ack(self, version: int, count: int) -> None: ...

    def remote(self, version: int, changes: list[dict[str, Any]]) -> None: ...

    def reset(self, version: int, text: str) -> None: ...

    def cursor(self, version: int, cursor: dict[str, Any] | None) -> None: ...


class EditorBinding:
    """Keeps one browser editor in step with `doc`; edits from it are tagged `origin`."""

    def __init__(self, doc: SharedDoc, sink: EditorSink, *, origin: str,
                 on_cursor: CursorCallback | None = None) -> None:
        self.doc = doc
        self.sink = sink
        self.origin = origin
        self.on_cursor = on_cursor
        self.version = 0
        self.refused = 0
        self._applying = False
        self._remote_cursor: tuple[str, int, int, str] | None = None
        self._unsubscribe: Callable[[], None] | None = doc.observe_code(self._on_code)

    @property
    def text(self) -> str:
        return self.doc.code_text

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def push(self, version: Any, updates: Any) -> None:
        """Edits from the browser, each a list of {from, to, insert} (UTF-16), made on
        update number `version`. Refused silently when the browser is behind."""
        if not isinstance(version, int) or not isinstance(updates, list) or not updates:
            log.warning("editor: dropped a malformed push from the browser")
            return
        if version != self.version:
            self.refused += 1
            return
        applied = 0
        try:
            for update in updates:
                if not isinstance(update, list):
                    raise ValueError("an edit must be a list of changes")
                self._applying = True
                try:
                    self.doc.apply_editor_changes(update, origin=self.origin)
                finally:
                    self._applying = False
                applied += 1
                self.version += 1
        except ValueError as exc:
            log.warning("editor: refused an edit from the browser: %s", exc)
            self.version += 1
            self.sink.reset(self.version, self.doc.code_text)
            return
        self.sink.ack(version, applied)
        self._send_cursor()

    def resync(self) -> None:
        """The browser fell out of step: send it the whole text as a new version."""
        self.version += 1
        self.sink.reset(self.version, self.doc.code_text)
        self._send_cursor()

    def cursor(self, version: Any, anchor: Any, head: Any) -> None:
        """The browser's selection (UTF-16, against update number `version`)."""
        if version != self.version or self.on_cursor is None:
            return
        try:
            index = TextIndex(self.doc.code_text)
            self.on_cursor(index.utf16_to_cp(anchor), index.utf16_to_cp(head))
        except ValueError as exc:
            log.debug("editor: ignored a cursor: %s", exc)

    def show_remote_cursor(self, name: str, anchor: int, head: int, color: str = "#d9480f"
                           ) -> None:
        """Show the other person's selection (code points); `anchor < 0` hides it."""
        self._remote_cursor = None if anchor < 0 else (name, anchor, head, color)
        self._send_cursor()

    def _send_cursor(self) -> None:
        if self._remote_cursor is None:
            self.sink.cursor(self.version, None)
            return
        name, anchor, head, color = self._remote_cursor
        text = self.doc.code_text
        index = TextIndex(text)
        n = len(text)
        self.sink.cursor(self.version, {
            "name": name, "color": color,
            "anchor": index.cp_to_utf16(min(max(anchor, 0), n)),
            "head": index.cp_to_utf16(min(max(head, 0), n)),
        })

    def _on_code(self, change: CodeChange) -> None:
        # Runs inside the document's commit: uses only `change`.
        if self._applying:
            return
        version = self.version
        self.version += 1
        self.sink.remote(version, [c.to_json() for c in change.changes_utf16])


_COMPONENT = str(Path(__file__).parent / "static" / "shared_editor.js")


class SharedEditor(ui.element, component=_COMPONENT):
    """The CodeMirror element bound to the shared document (see the module docstring)."""

    def __init__(self, doc: SharedDoc, *, origin: str, language: str = "python",
                 on_cursor: CursorCallback | None = None, readonly: bool = False) -> None:
        super().__init__()
        self.binding = EditorBinding(doc, self, origin=origin, on_cursor=on_cursor)
        self._props["text"] = doc.code_text
        self._props["version"] = self.binding.version
        self._props["language"] = language
        self._props["readonly"] = readonly
        self.classes("w-full").style("height: 100%; min-height: 320px; border: 1px solid #ccc")
        self.on("push", self._on_push)
        self.on("cursor", self._on_cursor)
        self.on("resync", lambda _: self.binding.resync())

    def set_language(self, language: str) -> None:
        self._props["language"] = language
        self.update()

    def _on_push(self, e: GenericEventArguments) -> None:
        args = e.args if isinstance(e.args, dict) else {}
        self.binding.push(args.get("version"), args.get("updates"))

    def _on_cursor(self, e: GenericEventArguments) -> None:
        args = e.args if isinstance(e.args, dict) else {}
        self.binding.cursor(args.get("version"), args.get("anchor"), args.get("head"))

    # --- EditorSink ----------------------------------------------------------------------
    def ack(self, version: int, count: int) -> None:
        self.run_method("ack", version, count)

    def remote(self, version: int, changes: list[dict[str, Any]]) -> None:
        self.run_method("remote", version, changes)

    def reset(self, version: int, text: str) -> None:
        self.run_method("reset", version, text)

    def cursor(self, version: int, cursor: dict[str, Any] | None) -> None:
        self.run_method("showCursor", version, cursor)

    def _handle_delete(self) -> None:
        self.binding.close()
        super()._handle_delete()
