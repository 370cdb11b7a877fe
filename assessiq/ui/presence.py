"""The two people's cursors, carried in the session's pycrdt `Awareness`.

Each side publishes `{"role", "name", "anchor", "head"}` (code points into the shared code);
the other side shows it in its editor. Positions are plain offsets, re-published whenever the
local selection or the code changes, so they never lag more than one edit behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pycrdt import Awareness

__all__ = ["Presence"]

log = logging.getLogger(__name__)

RemoteCallback = Callable[[str, int, int], None]  # name, anchor, head (-1: gone)


class Presence:
    def __init__(self, awareness: Awareness, role: str, name: str) -> None:
        self.awareness = awareness
        self.role = role
        self.name = name
        self._callbacks: list[RemoteCallback] = []
        self._subscription = awareness.observe(self._on_change)

    def close(self) -> None:
        self.awareness.unobserve(self._subscription)

    def set_cursor(self, anchor: int, head: int) -> None:
        self.awareness.set_local_state(
            {"role": self.role, "name": self.name, "anchor": int(anchor), "head": int(head)})

    def remote(self) -> tuple[str, int, int] | None:
        """The other person's cursor, or None."""
        own = self.awareness.client_id
        for client_id, state in list(self.awareness.states.items()):
            if client_id == own or not isinstance(state, dict):
                continue
            anchor, head = state.get("anchor"), state.get("head")
            if state.get("role") == self.role or not isinstance(anchor, int) or \
                    not isinstance(head, int) or isinstance(anchor, bool):
                continue
            return str(state.get("name") or state.get("role") or "peer")[:40], anchor, head
        return None

    def on_remote(self, callback: RemoteCallback) -> Callable[[], None]:
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def _on_change(self, topic: str, event: Any) -> None:
        if topic != "change":
            return
        current = self.remote()
        for callback in list(self._callbacks):
            try:
                if current is None:
                    callback("", -1, -1)
                else:
                    callback(*current)
            except Exception:  # a page that went away must not break presence
                log.exception("presence callback failed")


def editor_with_presence(doc: Any, *, origin: str, presence: Presence) -> Any:
    """The shared editor for one side, showing the other side's cursor and selection."""
    from .editor import SharedEditor

    editor = SharedEditor(doc, origin=origin, language=doc.language,
                          on_cursor=presence.set_cursor)
    editor.props('data-testid="editor"').style("height: 360px")
    presence.on_remote(editor.binding.show_remote_cursor)
    current = presence.remote()
    if current:
        editor.binding.show_remote_cursor(*current)
    return editor
