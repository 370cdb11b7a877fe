"""The replay viewer: scrub a sealed session's timeline and see whether it verifies."""

from __future__ import annotations

from nicegui import ui

from ..core.errors import RecordError
from ..core.record import SessionRecord
from .app import AppState, check_token
from .frame import frame
from .replay import Replay
from .report import clock

__all__ = ["register"]


def register(state: AppState) -> None:
    cache: dict[str, Replay] = {}

    @ui.page("/{token}/replay")
    async def replay_page(token: str) -> None:
        check_token(state, token)
        path = state.replay_path
        with frame("replay", role="replay"):
            if path is None:
                ui.label("No session file given.")
                return
            if str(path) not in cache:
                try:
                    cache[str(path)] = Replay(SessionRecord.load(path))
                except RecordError as exc:
                    ui.label(str(exc)).classes("text-negative").props('data-testid="error"')
                    return
            replay = cache[str(path)]
            verdict = replay.verdict.to_json()
            ui.label(str(path)).classes("text-caption")
            if verdict["valid"]:
                ui.label("VALID: sealed by the host; every event signed by the candidate's "
                         "device, in order, unbroken, receipted").classes("text-positive") \
                    .props('data-testid="verdict"')
            else:
                with ui.column().props('data-testid="verdict"'):
                    ui.label("INVALID").classes("text-negative text-h6")
                    for error in verdict["errors"]:
                        ui.label(f"• {error}").classes("text-negative")
            ui.label(f"host {verdict['host']} · candidate {verdict['candidate']} · score "
                     f"{verdict['score']}/100 · {verdict['events']} events")
            span = max(replay.end - replay.start, 0.001)
            when = ui.label("").props('data-testid="when"')
            slider = ui.slider(min=0, max=round(span, 3), step=0.1, value=round(span, 3)) \
                .props('data-testid="scrub" label').classes("w-full")
            with ui.row().classes("w-full no-wrap items-start"):
                code = ui.code("", language=replay.final.language).classes("w-full") \
                    .style("flex: 3").props('data-testid="replay-code"')
                items_col = ui.column().classes("gap-0").style("flex: 2") \
                    .props('data-testid="replay-items"')

            def show() -> None:
                t = replay.start + float(slider.value or 0)
                when.set_text(f"{clock(t)} UTC (+{t - replay.start:.1f} s)")
                code.set_content(replay.code_at(t) or " ")
                items_col.clear()
                with items_col:
                    for item in reversed(replay.items_until(t)[-60:]):
                        colour = {"event": "text-orange-9", "run": "text-blue-9",
                                  "note": "text-grey-8"}[item.kind]
                        ui.label(f"{clock(item.t)} {item.kind}: {item.text}").classes(colour)
                        output = str(item.detail.get("output") or "")
                        if item.kind == "run" and output:
                            ui.code(output[-1500:], language="text").classes("w-full")

            slider.on_value_change(lambda _: show())
            show()
