"""How a view follows its controller: `follow(changes, topics, render)` renders now and again
after each change of `topics` (the controller's `Changes`, see `assessiq.room.changes`), for
as long as the page's client lives; its subscription ends when NiceGUI deletes the client
(the tab closed and did not reconnect)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

from nicegui import background_tasks, ui

from ..room.changes import Changes

__all__ = ["follow"]


def follow(changes: Changes, topics: str | Iterable[str], render: Callable[[], object], *,
           at_most_every: float = 0.0, now: bool = True) -> Callable[[], None]:
    """`render()` now (unless `now` is false) and after each change of `topics` — once per
    burst, at most once per `at_most_every` seconds when given — while this page's client
    lives. `render` may be a coroutine function. Returns the unsubscribe function."""
    client = ui.context.client
    slot = ui.context.slot  # rendered where it was declared, as a timer's callback is

    def run() -> object:
        parent = slot._parent()  # (a weak reference: None once that element is gone)
        if client.is_deleted or parent is None or parent.is_deleted:
            off()  # the page closed (its delete handler normally came first), or the part
            return None
        with slot:
            return render()

    off = changes.on(topics, run, at_most_every=at_most_every)
    client.on_delete(off)
    if now:
        result = render()
        if inspect.isawaitable(result):
            background_tasks.create(_awaited(result), name="follow-first-render")
    return off


async def _awaited(result: object) -> None:
    assert inspect.isawaitable(result)
    await result
