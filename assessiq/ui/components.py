"""Small view pieces shared by the host's and the candidate's screens."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from nicegui import ui

from ..core.integrity import Envelope
from ..core.score import Evaluation
from .report import clock

__all__ = ["FrameSource", "integrity_panel", "media_source", "results_view", "timer_label",
           "video_tile"]

FrameSource = Callable[[], bytes | None]
"""Returns the latest video frame as JPEG bytes, or None while there is none."""


def media_source(session: Callable[[], Any], which: str) -> FrameSource:
    """Frames from the call layer when the peer session carries one (`session.media`, with
    `remote_jpeg()` / `self_jpeg()`); None until then, so the tile says so."""

    def get() -> bytes | None:
        media = getattr(session(), "media", None)
        fn = getattr(media, f"{which}_jpeg", None)
        frame = fn() if callable(fn) else None
        return frame if isinstance(frame, bytes) else None

    return get


def video_tile(title: str, source: FrameSource | None) -> None:
    """A video tile: "camera not available" until frames come, then the latest frame."""
    with ui.card().classes("q-pa-xs").style("width: 240px"):
        ui.label(title).classes("text-caption")
        image = ui.image().style("width: 230px; height: 172px; background: #222")
        image.set_visibility(False)
        missing = ui.label("camera not available").classes("text-grey-6 text-caption") \
            .props('data-testid="no-camera"')
        last: list[bytes | None] = [None]

        def refresh() -> None:
            frame = source() if source is not None else None
            if frame is None or frame is last[0]:
                return
            last[0] = frame
            image.set_source("data:image/jpeg;base64," + base64.b64encode(frame).decode())
            image.set_visibility(True)
            missing.set_visibility(False)

        ui.timer(0.2, refresh)


def timer_label(get_timer: Callable[[], dict[str, float] | None]) -> ui.label:
    label = ui.label("timer not started").classes("text-subtitle1").props('data-testid="timer"')

    def tick() -> None:
        t = get_timer()
        if t is None:
            label.set_text("timer not started")
            return
        left = max(0.0, t["started_at"] + t["duration_s"] - time.time())
        label.set_text(f"time left {int(left // 60):02d}:{int(left % 60):02d}")

    ui.timer(1.0, tick)
    return label


def results_view(runs: list[dict[str, Any]]) -> None:
    """The latest runs, newest first: output, and each public test with its diff."""
    if not runs:
        ui.label("No runs yet.").classes("text-grey-7")
        return
    for run in reversed(runs[-5:]):
        result = run.get("result")
        head = f"{clock(run['at'])} run by {run['by']}"
        with ui.card().classes("w-full q-pa-sm").props('data-testid="run"'):
            if result is None:
                ui.label(f"{head}: running…")
                continue
            stage = result.get("run") or {}
            tests = result.get("tests") or []
            passed = sum(1 for t in tests if t.get("passed"))
            status = stage.get("status") or f"exit {stage.get('code')}"
            ui.label(f"{head}: {status}; public tests {passed}/{len(tests)} passed") \
                .props('data-testid="run-summary"')
            output = (stage.get("output") or "")[-3000:]
            if output:
                ui.code(output, language="text").classes("w-full")
            for test in tests:
                mark = "✅" if test.get("passed") else "❌"
                ui.label(f"{mark} {test.get('name')}")
                if not test.get("passed") and test.get("diff"):
                    ui.code(test["diff"], language="diff").classes("w-full")


def _event_line(env: Envelope) -> str:
    data = env.data
    extra = ""
    if data.get("phase") == "end":
        extra = f" ({float(data.get('duration', 0)):.1f} s)"
    elif "chars" in data:
        extra = f" ({data['chars']} chars)"
    start = data.get("start")
    when = start if data.get("phase") == "start" and isinstance(start, int | float) else env.t
    return f"{clock(when)} #{env.seq} {env.kind} {data.get('phase', '')}{extra}"


def integrity_panel(events: Callable[[], list[Envelope]],
                    evaluation: Callable[[], Evaluation]) -> None:
    """Live timeline of verified events, warnings, flags and the score with its reasons."""
    seen = [-1, -1.0]

    @ui.refreshable
    def body() -> None:
        evs = events()
        ev = evaluation()
        beats = sum(1 for e in evs if e.kind.endswith("heartbeat"))
        ui.label(f"Integrity score {ev.score}/100").classes("text-h6") \
            .props('data-testid="score"')
        for item in ev.explanation:
            ui.label(f"−{item['penalty']:g} {item['kind']}: {item['why']}") \
                .classes("text-caption")
        for flag in ev.flags:
            ui.label(f"FLAG {clock(flag.start)} {flag.kind} ({flag.reason})") \
                .classes("text-negative")
        for warning in [w for w in ev.warnings if w.level == "warning"]:
            ui.label(f"warning {clock(warning.start)} {warning.kind} ({warning.reason})") \
                .classes("text-warning")
        for gap in ev.gaps:
            ui.label(f"GAP {clock(gap.start)} no heartbeat for {gap.duration:.0f} s")
        ui.label(f"{len(evs)} verified events ({beats} heartbeats)").classes("text-caption")
        with ui.column().classes("gap-0").props('data-testid="timeline"'):
            for env in reversed([e for e in evs if not e.kind.endswith("heartbeat")][-50:]):
                ui.label(_event_line(env)).classes("text-body2")

    def maybe_refresh() -> None:
        evs = events()
        # Refresh on new events, and every few seconds for conditions still running.
        key = (len(evs), int(time.time() / 5))
        if (key[0], float(key[1])) != (seen[0], seen[1]):
            seen[0], seen[1] = key[0], float(key[1])
            body.refresh()

    with ui.card().classes("w-full q-pa-sm").props('data-testid="integrity-panel"'):
        ui.label("Integrity (verified events)").classes("text-subtitle1")
        body()
    ui.timer(0.25, maybe_refresh)
