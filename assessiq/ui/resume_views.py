"""What the pages show about a restart: the interviewer's list of unsealed sessions to resume
(on the start page), and the line both people see after an app came back ("resumed at …
after N s away"). The resume itself is `room.host.HostController.resume` and the peer layer's
`Host.resume` / `Candidate.join` (which continues an unfinished interview)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from nicegui import ui

from ..core.errors import AssessIQError
from ..core.resume import away_words
from .live import follow
from .state import AppState

if TYPE_CHECKING:
    from ..room.candidate import CandidateController
    from ..room.host import HostController

__all__ = ["admission_prompt", "admission_wait", "resume_offer", "resumed_line", "unsealed_list"]

log = logging.getLogger(__name__)


def _clock(t: float) -> str:
    """A time of day, with the date when it is not today."""
    same_day = time.localtime(t)[:3] == time.localtime()[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", time.localtime(t))


def resumed_line(resumed: dict[str, Any] | None, *, whose: str) -> ui.label | None:
    """"Your app was restarted: resumed at 14:03:10 after 42 s away." (nothing when the app
    was not restarted). `whose`: "Your app" or "The candidate's app"…"""
    if not resumed:
        return None
    at, away = resumed.get("at"), resumed.get("away_s")
    if not isinstance(at, int | float) or not isinstance(away, int | float):
        return None
    return ui.label(f"{whose} was restarted: resumed at {_clock(float(at))} after "
                    f"{away_words(float(away))} away. Nothing acknowledged was lost, and the "
                    "restart is in the record.") \
        .classes("text-body2 q-pa-xs rounded-borders bg-blue-1 text-blue-10") \
        .props('role=status data-testid="resumed"')


def unsealed_list(sessions: list[Any], resume: Callable[[Any], Awaitable[None]]) -> None:
    """The start page's list of this interviewer's unsealed sessions (an app stopped before
    the seal): one row each, with "Resume" (`resume(summary)`; a one-line reason shows when
    it cannot be resumed)."""
    if not sessions:
        return
    with ui.card().classes("w-full q-pa-sm").props('data-testid="unsealed"'):
        n = len(sessions)
        ui.label(f"{n} unfinished session{'s' if n > 1 else ''}: the app stopped before the "
                 "seal. Resume one to go on where it stopped (same invite; the candidate's "
                 "app reconnects by itself).").classes("text-body2")
        for summary in sessions:
            who = summary.candidate or ("a candidate joined" if summary.joined
                                        else "nobody joined yet")
            with ui.row().classes("items-center gap-2 w-full"):
                ui.label(f"{summary.label or summary.room[:8]} · {who} · started "
                         f"{_clock(summary.created)} · last active "
                         f"{_clock(summary.last_alive)}").classes("text-body2")
                error = ui.label("").classes("text-negative text-body2")
                button = ui.button("Resume").props(
                    f'outline dense data-testid="resume-{summary.room[:8]}"') \
                    .mark(f"resume-{summary.room[:8]}")

                async def go(summary: Any = summary, button: ui.button = button,
                             error: ui.label = error) -> None:
                    button.disable()
                    error.set_text("resuming…")
                    try:
                        await resume(summary)
                    except (AssessIQError, OSError, ValueError) as exc:  # one line
                        if not isinstance(exc, AssessIQError):
                            log.warning("host: resuming %s failed: %r", summary.path, exc)
                        error.set_text(str(exc) or type(exc).__name__)
                        button.enable()

                button.on_click(go)


def resume_offer(state: AppState, token: str) -> None:
    """The start page's offer to resume: this host key's unsealed sessions in the data dir
    that no running app holds (`peer.host.unsealed_sessions`)."""
    from ..core.identity import load_or_create_host_identity
    from ..core.paths import sessions_dir
    from ..peer.host import unsealed_sessions
    from ..room.call import plan_call
    from ..room.host import HostController

    try:
        sessions = [s for s in unsealed_sessions(sessions_dir(),
                                                 identity=load_or_create_host_identity())
                    if not s.in_use]
    except (OSError, AssessIQError):  # an unreadable data dir: nothing to offer
        return

    async def resume(summary: Any) -> None:
        if state.host is None:
            state.host = await HostController.resume(
                summary.path, config=state.peer_config(),
                call=state.calls.get("host") or plan_call("host"),
                run_backend=state.app_config.sandbox_backend_instance())
        ui.navigate.to(f"/{token}/host")

    unsealed_list(sessions, resume)


def admission_prompt(host: HostController) -> None:
    """The interviewer's decision when another computer asks to continue as the candidate
    (theirs died, or its session file was lost): admit it as the candidate's new device, or
    refuse. Either way it is recorded; shown only while a request waits."""
    box = ui.column().classes("w-full")

    def render() -> None:
        box.clear()
        pending = host.pending_device
        if pending is None:
            return
        name = pending.request.name or "(no name given)"
        before = host.candidate_fingerprint or "none yet"
        with box, ui.card().classes("w-full q-pa-sm bg-amber-1 text-black") \
                .props('role=alert data-testid="admission"'):
            ui.label(f"Another computer asks to continue as the candidate: {name}, device "
                     f"{pending.fingerprint}, at {_clock(pending.at)} (the candidate's device "
                     f"so far: {before}).").classes("text-body2")
            ui.label("Admit it if the candidate told you their computer or its session file "
                     "is gone: its events continue the same signed log under the new device "
                     "key, and the admission is in the record. Refuse it otherwise; the "
                     "refusal is recorded too.").classes("text-caption")
            with ui.row().classes("gap-2"):
                async def decide(accept: bool, shown: str = pending.fingerprint) -> None:
                    try:
                        await host.admit_device(accept, shown)
                    except AssessIQError as exc:  # (decided meanwhile, or it went away)
                        ui.notify(str(exc))

                ui.button("Admit as the candidate's new device",
                          on_click=lambda: decide(True)) \
                    .props('color=primary data-testid="admit-device"').mark("admit-device")
                ui.button("Refuse", on_click=lambda: decide(False)) \
                    .props('outline color=black data-testid="refuse-device"') \
                    .mark("refuse-device")

    follow(host.changes, "pending_device", render)


def admission_wait(cand: CandidateController) -> None:
    """On the candidate's page while this computer waits for the interviewer's decision."""
    label = ui.label("This computer is not the one that joined this interview first: the "
                     "interviewer is asked whether to admit it. Tell them why (your computer "
                     "restarted elsewhere, or the session file was lost).") \
        .classes("text-body2 text-indigo-8").props('role=status data-testid="admission-wait"')

    def render() -> None:
        label.set_visibility(cand.awaiting_admission)

    follow(cand.changes, "admission", render)
