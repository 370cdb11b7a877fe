"""Small view pieces shared by the host's and the candidate's screens."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nicegui import ui

from ..core.errors import AssessIQError
from ..core.integrity import Envelope
from ..core.score import Evaluation
from ..room.call import CallPlan, describe_problems
from ..room.changes import Changes
from ..room.report import clock
from .live import follow

__all__ = ["FrameSource", "call_controls", "integrity_panel", "media_source", "results_view",
           "timer_label", "verdict_words", "video_tile"]

FrameSource = Callable[[], bytes | None]
"""Returns the latest video frame as JPEG bytes, or None while there is none."""

VIDEO_JS = (Path(__file__).parent / "static" / "video.js").read_text(encoding="utf-8")


def media_source(session: Callable[[], Any], which: str) -> FrameSource:
    """Frames from the call of the peer session `session()` returns (`session.media`, the
    live link's `MediaSession`: `remote_jpeg()` / `self_jpeg()`); None between links."""

    def get() -> bytes | None:
        media = getattr(session(), "media", None)
        fn = getattr(media, f"{which}_jpeg", None)
        frame = fn() if callable(fn) else None
        return frame if isinstance(frame, bytes) else None

    return get


def video_tile(title: str, url: str) -> None:
    """A video tile: "camera not available" until frames come. `video.js` shows the frames
    of `url` (under the run's secret): pushed over the websocket `url + "/ws"` as each new
    one arrives (the default, measured faster), or fetched from the frame endpoint `url`
    one after another; "camera not available" shows while no frame has come for 2 s."""
    testid = "video-" + "-".join(title.lower().split())
    with ui.card().classes("q-pa-xs").style("width: 240px").props(f'data-testid="{testid}"'):
        ui.label(title).classes("text-caption")
        ui.element("img").props(f'data-aiq-video="{url}" alt="{title}: live video"') \
            .style("width: 230px; height: 172px; background: #222; object-fit: contain")
        # shown while no frame came lately: `video.js` decides, in the page that gets them
        ui.label("camera not available").classes("text-grey-8 text-caption") \
            .props('data-testid="no-camera" data-aiq-novideo')
    ui.add_body_html(f"<script>{VIDEO_JS}</script>")


def call_controls(session: Callable[[], Any], plan: CallPlan | None,
                  changes: Changes) -> None:
    """Camera and microphone switches, what is wrong with the devices (redrawn on the
    controller's "call" and "connection" changes), and whether the picture is a synthetic
    camera. `session()` is the peer session (Host or Candidate)."""
    with ui.column().classes("gap-0 w-full").props('data-testid="call"'):
        if plan is None:
            ui.label("This session has no audio or video.").classes("text-caption")
            return
        if plan.note:
            ui.label(plan.note).classes("text-caption text-indigo-8") \
                .props('data-testid="synthetic-note"')
        message = ui.label("").classes("text-caption text-negative") \
            .props('data-testid="call-problems"')

        def set_camera(on: bool) -> None:
            try:
                session().set_camera(on)
            except AssessIQError as exc:
                message.set_text(str(exc))

        def set_microphone(on: bool) -> None:
            media = getattr(session(), "media", None)
            if media is None:
                message.set_text("not connected: the microphone cannot be switched now")
                return
            try:
                media.set_muted(not on)
            except AssessIQError as exc:
                message.set_text(f"{exc}.")

        with ui.row().classes("items-center"):
            ui.switch("Camera", value=True, on_change=lambda e: set_camera(bool(e.value))) \
                .props('data-testid="camera-switch"').mark("camera-switch")
            ui.switch("Microphone", value=True,
                      on_change=lambda e: set_microphone(bool(e.value))) \
                .props('data-testid="mic-switch"').mark("mic-switch")
        problems = ui.column().classes("gap-0")
        shown: list[list[str]] = [[]]

        def refresh() -> None:
            media = getattr(session(), "media", None)
            current = list(getattr(media, "problems", None) or [])
            if current != shown[0]:
                shown[0] = current
                problems.clear()
                with problems:
                    for line in describe_problems(current):
                        ui.label(line).classes("text-caption text-warning")

        follow(changes, ("call", "connection"), refresh)


def timer_label(get_timer: Callable[[], dict[str, float] | None],
                ended: Callable[[], bool] = lambda: False, *,
                changes: Changes | None = None) -> ui.label:
    """The time left, counting down each second (a clock: the only thing that changes in
    between is the time); redrawn at once when the timer is set or the session ends
    (`changes`' "timer" and "ended"); once `ended()` it stops for good."""
    label = ui.label("timer not started").classes("text-subtitle1 aiq-status") \
        .props('data-testid="timer"')

    def tick() -> None:
        if ended():
            label.set_text("the interview has ended")
            every_second.deactivate()
            return
        t = get_timer()
        if t is None:
            label.set_text("timer not started")
            return
        left = max(0.0, t["started_at"] + t["duration_s"] - time.time())
        if left <= 0:
            label.set_text("time is up")
            return
        label.set_text(f"time left {int(left // 60):02d}:{int(left % 60):02d}")

    every_second = ui.timer(1.0, tick)
    if changes is not None:
        follow(changes, ("timer", "ended"), tick, now=False)
    tick()
    return label


def verdict_words(passed: bool) -> str:
    """A test's verdict as shown: a text mark any font has, and the word."""
    return "✓ passed" if passed else "✗ FAILED"


def results_view(runs: list[dict[str, Any]],
                 hidden: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """The latest runs, newest first: output, each public test with its diff, and (on the
    interviewer's page only) the hidden tests' outcomes from the host's private store."""
    if not runs:
        ui.label("No runs yet.").classes("text-grey-7")
        return
    for run in reversed(runs[-5:]):
        result = run.get("result")
        head = f"{clock(run['at'])} run by {run['by']}"
        stdin = run.get("stdin")
        if isinstance(stdin, str) and stdin:  # a console run: with the input it was given
            shown = stdin if len(stdin) <= 80 else stdin[:77] + "…"
            head += f" with input {json.dumps(shown, ensure_ascii=False)}"
        with ui.card().classes("w-full q-pa-sm").props('data-testid="run"'):
            if result is None:
                ui.label(f"{head}: running…")
                continue
            if "run" not in result:
                ui.label(f"{head}: {result.get('error', 'could not run')}") \
                    .props('data-testid="run-summary"')
                continue
            stage = result.get("run") or {}
            tests = result.get("tests") or []
            passed = sum(1 for t in tests if t.get("passed"))
            status = stage.get("status") or f"exit {stage.get('code')}"
            ui.label(f"{head}: {status}; public tests {passed}/{len(tests)} passed") \
                .props('data-testid="run-summary"')
            output = (stage.get("output") or "")[-3000:]
            if output:
                ui.code(output, language="text").classes("w-full") \
                    .copy_button.props('aria-label="copy the output"')
            for test in tests:
                ok = bool(test.get("passed"))
                # in words and colour: an emoji mark alone is a box where no emoji font is
                ui.label(f"{verdict_words(ok)}: {test.get('name')}") \
                    .classes("text-positive" if ok else "text-negative text-weight-bold") \
                    .props('data-testid="test-verdict"')
                if not ok and test.get("diff"):
                    ui.code(test["diff"], language="diff").classes("w-full") \
                        .copy_button.props('aria-label="copy the difference"')
            secret = (hidden or {}).get(str(run.get("run_id")))
            if hidden is not None and secret is not None:
                ok_n = sum(1 for t in secret if t.get("passed"))
                marks = ", ".join(f"{t.get('name')} {verdict_words(bool(t.get('passed')))}"
                                  for t in secret)
                ui.label(f"hidden tests {ok_n}/{len(secret)} passed (only you see this): "
                         f"{marks}").classes("text-indigo-8") \
                    .props('data-testid="hidden-summary"')


def _event_line(env: Envelope) -> str:
    data = env.data
    extra = ""
    if data.get("phase") == "end":
        extra = f" ({float(data.get('duration', 0)):.1f} s)"
    elif "chars" in data:
        extra = f" ({data['chars']} chars)"
        if isinstance(data.get("text"), str):  # the policy asks for pasted text
            shown = data["text"] if len(data["text"]) <= 60 else data["text"][:57] + "…"
            extra = f" ({data['chars']} chars: {json.dumps(shown, ensure_ascii=False)}" \
                    f"{', truncated' if data.get('truncated') else ''})"
    elif env.kind == "devtools.shortcut" and isinstance(data.get("key"), str):
        extra = f" ({data['key']})"
    elif env.kind == "camera.check" and isinstance(data.get("result"), str):
        extra = f" ({data['result']})"
    start = data.get("start")
    when = start if data.get("phase") == "start" and isinstance(start, int | float) else env.t
    return f"{clock(when)} #{env.seq} {env.kind} {data.get('phase', '')}{extra}"


SCORE_CLOCK_S = 5.0
"""How often the live score is recomputed with no new event: a heartbeat gap grows, and a
condition still running counts longer, with the time alone."""


def integrity_panel(events: Callable[[], list[Envelope]],
                    evaluation: Callable[[], Evaluation], changes: Changes) -> None:
    """Live timeline of verified events, warnings, flags and the score with its reasons:
    redrawn on each verified event (`changes`' "events") and every `SCORE_CLOCK_S` seconds
    for what the time alone changes."""

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

    with ui.card().classes("w-full q-pa-sm").props('data-testid="integrity-panel"'):
        ui.label("Integrity (verified events)").classes("text-subtitle1")
        body()
    follow(changes, "events", body.refresh, now=False, at_most_every=0.25)
    ui.timer(SCORE_CLOCK_S, body.refresh)  # a clock: the score's time-dependent part
