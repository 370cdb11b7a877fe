"""The replay viewer: play a sealed session back (or scrub it), see what happened when, and
whether it verifies. The player's clock is `replay_player.Player`; this is its view."""

from __future__ import annotations

import html
import time
from collections.abc import Callable

from nicegui import ui
from nicegui.events import KeyEventArguments

from ..core.errors import RecordError
from ..core.record import SessionRecord
from ..room.provenance_report import MAX_COLOURED_CHARS, code_html
from ..room.replay import MAX_SHADED_UPDATES, ProvenanceCursor, Replay
from ..room.replay_player import SPEEDS, Player
from ..room.report import clock, date_time
from .frame import frame
from .provenance_view import replay_provenance
from .state import AppState, check_token

__all__ = ["register"]

_COLOURS = {"event": "text-deep-orange-10", "run": "text-blue-9", "note": "text-grey-8"}
_MARKER = {"event": "#e8590c", "run": "#1971c2", "note": "#868e96"}


def register(state: AppState) -> None:
    cache: dict[str, Replay] = {}

    @ui.page("/{token}/replay")
    async def replay_page(token: str) -> None:
        check_token(state, token)
        path = state.replay_path
        with frame(path.name if path is not None else "replay", role="replay"):
            if path is None:
                ui.label("No session file given.")
                return
            if str(path) not in cache:
                try:
                    cache[str(path)] = Replay(SessionRecord.load(path))
                except RecordError as exc:
                    ui.label(str(exc)).classes("text-negative").props('data-testid="error"')
                    return
            _viewer(cache[str(path)], str(path))


def _viewer(replay: Replay, path: str) -> None:
    verdict = replay.verdict.to_json()
    ui.label(path).classes("text-caption")
    if verdict["valid"]:
        ui.label("VALID: sealed by the host; every event signed by the candidate's "
                 "device, in order, unbroken, receipted").classes("text-positive") \
            .props('data-testid="verdict"')
    else:
        with ui.column().props('data-testid="verdict"'):
            ui.label("INVALID").classes("text-negative text-h6")
            for error in verdict["errors"]:
                ui.label(f"• {error}").classes("text-negative")
    ui.label(f"{date_time(replay.start)} · host {verdict['host']} · candidate "
             f"{verdict['candidate']} · score {verdict['score']}/100 · "
             f"{verdict['events']} events")
    span = round(max(replay.end - replay.start, 0.001), 3)
    player = Player(span=span, moments=[t - replay.start for t in replay.times]
                    + [i.t - replay.start for i in replay.items],
                    marks=[i.t - replay.start for i in replay.items], t=span)

    def then_sync(move: Callable[[], None]) -> None:
        move()
        sync()

    with ui.row().classes("items-center w-full gap-2"):
        play = ui.button("Play", on_click=lambda: then_sync(player.toggle)) \
            .props('data-testid="play" aria-keyshortcuts="Space"').mark("play")
        ui.button("◀ event", on_click=lambda: then_sync(player.previous_mark)) \
            .props('flat data-testid="previous-event" aria-keyshortcuts="ArrowLeft" '
                   'aria-label="previous event"').mark("previous-event")
        ui.button("event ▶", on_click=lambda: then_sync(player.next_mark)) \
            .props('flat data-testid="next-event" aria-keyshortcuts="ArrowRight" '
                   'aria-label="next event"').mark("next-event")
        speed = ui.toggle(list(SPEEDS), value=player.speed,
                          on_change=lambda e: then_sync(lambda: player.set_speed(str(e.value)))) \
            .props('dense data-testid="speed" role="group" aria-label="speed"').mark("speed")
        when = ui.label("").classes("q-ml-md").props('data-testid="when" aria-live="off"')
    slider = ui.slider(min=0, max=span, step=0.1, value=span) \
        .props('data-testid="scrub" aria-label="time in the session"').classes("w-full")
    # the timeline's markers: each event, run and note where it happened; a click goes there
    with ui.element("div").classes("relative w-full").style("height: 14px") \
            .props('data-testid="markers"'):
        for item in replay.items:
            at = item.t - replay.start
            ui.element("div").style(
                f"position:absolute;left:calc({100 * at / span:.3f}% - 2px);top:0;width:4px;"
                f"height:14px;background:{_MARKER[item.kind]};cursor:pointer") \
                .props(f'title="{clock(item.t)} {item.kind}" data-kind="{item.kind}"') \
                .on("click", lambda _, at=at: then_sync(lambda: player.seek(at)))
    ui.label("Space: play or pause · ← →: previous or next event").classes("text-caption")
    with ui.row().classes("w-full no-wrap items-start"):
        with ui.column().classes("gap-1").style("flex: 3; min-width: 0"):
            # the code as typed, each stretch shaded by who wrote it and how (the legend is
            # the final code's, below)
            code = ui.html("").classes("w-full").props('data-testid="replay-code"') \
                .mark("replay-code")
        items_col = ui.column().classes("gap-0").style("flex: 2") \
            .props('data-testid="replay-items"')
    replay_provenance(replay)

    shown = {"updates": -1, "items": -1}
    cursor = ProvenanceCursor(replay) if len(replay.times) <= MAX_SHADED_UPDATES else None

    def show() -> None:
        t = replay.start + player.t
        when.set_text(f"{clock(t)} UTC (+{player.t:.1f} s of {span:.1f} s, at {player.speed})")
        n = replay.updates_until(t)
        if n != shown["updates"]:
            shown["updates"] = n
            prov = cursor.at(n) if cursor is not None else None
            code.set_content(code_html(prov) if prov is not None and
                             len(prov.text) <= MAX_COLOURED_CHARS else
                             f"<pre>{html.escape(replay.code_at(t))}</pre>")
        items = replay.items_until(t)
        if len(items) != shown["items"]:
            shown["items"] = len(items)
            items_col.clear()
            with items_col:
                for item in reversed(items[-60:]):
                    ui.label(f"{clock(item.t)} {item.kind}: {item.text}") \
                        .classes(_COLOURS[item.kind])
                    output = str(item.detail.get("output") or "")
                    if item.kind == "run" and output:
                        ui.code(output[-1500:], language="text").classes("w-full") \
                            .copy_button.props('aria-label="copy the output"')

    def sync() -> None:
        """The player moved: the slider, the button and the view follow."""
        play.set_text("Pause" if player.playing else "Play")
        if abs(float(slider.value or 0) - player.t) > 1e-6:
            slider.set_value(round(player.t, 3))
        show()

    def scrubbed() -> None:
        if abs(float(slider.value or 0) - player.t) > 1e-6:  # the person moved it
            player.seek(float(slider.value or 0))
            show()

    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        elapsed, last[0] = now - last[0], now
        if player.playing:
            player.advance(elapsed)
            sync()

    def key(e: KeyEventArguments) -> None:
        if not e.action.keydown or e.action.repeat:
            return
        if e.key.space:
            player.toggle()
        elif e.key.arrow_right:
            player.next_mark()
        elif e.key.arrow_left:
            player.previous_mark()
        else:
            return
        sync()

    slider.on_value_change(lambda _: scrubbed())
    ui.keyboard(on_key=key)
    ui.timer(0.1, tick)
    speed.value = player.speed
    show()
