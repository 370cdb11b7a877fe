"""The code's provenance where people look, as NiceGUI panels: the interviewer's live card,
the candidate's transparency panel and the replay's. What they show and how it is computed is
in `room/provenance_report.py` (the report uses the same words and colours)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.provenance import Provenance
from ..room.changes import Changes
from ..room.provenance_report import (
    MAX_COLOURED_CHARS,
    REFRESH_S,
    LiveProvenance,
    code_html,
    legend_html,
    summary_line,
)

__all__ = ["candidate_provenance", "host_provenance_card", "provenance_panel",
           "replay_provenance"]

log = logging.getLogger(__name__)


def provenance_panel(compute: Callable[[], Provenance | Awaitable[Provenance | None] | None],
                     changes: Changes, *, you: bool = False, show_code: bool = True) -> Any:
    """A live panel: the summary line (and, for the interviewer, the coloured code in an
    expansion), recomputed when the code or the events change (`changes`' "code" and
    "events"), at most every `REFRESH_S` seconds (longer when a computation takes long),
    one computation at a time, and once after the last change (`compute` may be a coroutine
    function: see `LiveProvenance.compute_async`)."""
    from nicegui import ui

    from .live import follow

    state: dict[str, Any] = {"next": 0.0, "cost": 0.0, "busy": False, "again": False}
    with ui.column().classes("w-full gap-1").props('data-testid="provenance"') as panel:
        summary = ui.label("").classes("text-body2").props('data-testid="provenance-summary"')
        code = None
        if show_code:
            with ui.expansion("Who wrote the code").classes("w-full"):
                code = ui.html("").props('data-testid="provenance-code"')

    async def refresh() -> None:
        if state["busy"]:  # the computation under way runs once more when it is done
            state["again"] = True
            return
        state["busy"] = True
        try:
            while True:
                state["again"] = False
                wait = state["next"] - time.monotonic()
                if wait > 0:  # not more often than that: a throttle, not a poll
                    await asyncio.sleep(wait)
                if panel.is_deleted:
                    return
                await once()
                if not state["again"]:
                    return
        finally:
            state["busy"] = False

    async def once() -> None:
        now = time.monotonic()
        started = time.perf_counter()
        try:
            got = compute()
            prov = await got if inspect.isawaitable(got) else got
        except Exception:  # a view must never take the page down
            log.exception("provenance: the live view could not be computed")
            prov = None
        state["cost"] = time.perf_counter() - started
        state["next"] = now + max(REFRESH_S, 10 * state["cost"])
        if prov is None or prov is state.get("shown"):
            return
        state["shown"] = prov
        summary.set_text(summary_line(prov.sentence(you=you)))
        if code is not None:
            body = code_html(prov) if len(prov.text) <= MAX_COLOURED_CHARS else (
                f"<p>The code is {len(prov.text):,} characters long: too long to colour "
                "here. The report colours it all.</p>")
            code.set_content(legend_html(prov) + body)

    follow(changes, ("code", "events"), refresh)
    return panel


def host_provenance_card(controller: Any) -> Any:
    """The interviewer's live page: who wrote the code so far, and how (from the host's own
    session file and the verified paste events: what the sealed record will say)."""
    from nicegui import ui

    live: dict[str, LiveProvenance] = {}

    async def compute() -> Provenance | None:
        peer = controller.host
        if controller.ended is not None or peer.store is None or \
                getattr(peer.store, "_closed", False):  # (sealed, or being sealed)
            return None
        view = live.setdefault("view", LiveProvenance(peer.store))
        return await view.compute_async(list(peer.events), peer.arrivals())

    with ui.card().classes("w-full q-pa-sm") as card:
        ui.label("Who wrote the code").classes("text-subtitle1")
        provenance_panel(compute, controller.changes)
    return card


def candidate_provenance(session: Any, changes: Changes) -> Any:
    """The candidate's transparency panel: the same summary about themselves, from their own
    copy of the session (their own paste events, on their own clock)."""
    from nicegui import ui

    live: dict[str, LiveProvenance] = {}

    async def compute() -> Provenance | None:
        store = getattr(session, "store", None)
        if store is None or session.ended.is_set() or getattr(store, "_closed", False):
            return None
        view = live.setdefault("view", LiveProvenance(store))
        return await view.compute_async(list(session.log))

    with ui.column().classes("w-full gap-0") as column:
        ui.label("What the code's history says about you (the interviewer sees the same, "
                 "from their copy):").classes("text-caption")
        provenance_panel(compute, changes, you=True, show_code=False)
    return column


def replay_provenance(replay: Any) -> Any:
    """The replay's section: the final code coloured by provenance, with the summary and
    the legend (from the replay's own verification of the sealed record)."""
    from nicegui import ui

    prov = replay.verdict.provenance
    with ui.expansion("Who wrote the final code", value=True).classes("w-full") \
            .props('data-testid="replay-provenance"') as section:
        if prov is None:
            ui.label("The document history cannot be replayed.")
        else:
            ui.label(summary_line(prov.sentence())) \
                .props('data-testid="provenance-summary"')
            body = code_html(prov) if len(prov.text) <= MAX_COLOURED_CHARS else (
                f"<p>The code is {len(prov.text):,} characters long: too long to colour "
                "here. The report colours it all.</p>")
            ui.html(legend_html(prov) + body).classes("w-full")
    return section
