"""The interviewer's "Refused from the candidate's app" list: what the host refused from the
peer (malformed or over-limit messages, forged or out-of-order events, forbidden writes), with
time, channel and reason, and the total. Every refusal is also in the session file, under the
seal, and in the report; an honest session shows none.

Kept apart from `components.integrity_panel` (verified events and the score) because a
refusal is not an event: nothing the candidate's app signed, only what the host would not take.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nicegui import ui

from ..room.changes import Changes
from ..room.report import clock
from .live import follow

__all__ = ["SHOWN", "refusal_line", "refusals_panel"]

SHOWN = 20
"""How many of the latest refusals the panel lists (all are in the session file)."""

Refusals = Callable[[], tuple[int, Sequence[dict[str, Any]]]]
"""Returns (the total refused, the latest refusals, oldest first)."""


def refusal_line(refusal: dict[str, Any]) -> str:
    """One refusal as the panel and the report show it: time, channel, reason (×count)."""
    t = refusal.get("t")
    when = clock(t) if isinstance(t, int | float) else "--:--:--"
    count = refusal.get("count", 1)
    times = f" (×{count})" if isinstance(count, int) and count > 1 else ""
    return f"{when} {refusal.get('channel', '?')}: {refusal.get('reason', '')}{times}"


def refusals_panel(source: Refusals, changes: Changes) -> None:
    """A card listing the latest refusals, newest first, redrawn on each refusal
    (`changes`' "refusals")."""

    @ui.refreshable
    def body() -> None:
        total, latest = source()
        title.set_text(f"Refused from the candidate's app ({total})")
        if not total:
            ui.label("none").classes("text-caption").props('data-testid="refusals-none"') \
                .mark("refusals-none")
            return
        with ui.column().classes("gap-0").props('data-testid="refusals"'):
            for refusal in reversed(list(latest)[-SHOWN:]):
                ui.label(refusal_line(refusal)).classes("text-body2 text-negative")
        hidden = total - min(len(latest), SHOWN)
        if hidden > 0:
            ui.label(f"… and {hidden} earlier (all are in the session file)") \
                .classes("text-caption")

    with ui.card().classes("w-full q-pa-sm").props('data-testid="refusals-panel"'):
        title = ui.label("").classes("text-subtitle1")
        body()
    follow(changes, "refusals", body.refresh, now=False, at_most_every=0.5)  # (a flood)
