"""The interviewer's screens, section by section, each rendering its part of the
`HostController` and following its change events (`live.follow`): the setup form, the lobby,
the interview room (header, editor and runs, call, integrity, refusals, provenance, phase
and timer, notes) and the sealed session. `host_pages` routes to them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import qrcode
import qrcode.image.svg
from nicegui import ui

from ..core.errors import AssessIQError
from ..core.policy import MAX_EXTRA_MINUTES, Accommodations, Policy
from ..room.call import plan_call
from ..room.host import HostController, HostSetup
from ..room.problems import BANK, LANGUAGES, canonical_language
from .components import call_controls, integrity_panel, media_source, timer_label
from .editor import SharedEditor, shared_editor
from .live import follow
from .provenance_view import host_provenance_card
from .refusals import refusals_panel
from .room import Panes, follow_language, font_size, problem_panel, room_panes, run_area
from .state import AppState

__all__ = ["EndControls", "ended_view", "interview_view", "invite_qr_svg", "lobby_view",
           "setup_form"]

log = logging.getLogger(__name__)


def invite_qr_svg(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=6)
    svg: str = image.to_string(encoding="unicode")
    return svg


# --- setup ----------------------------------------------------------------------------------


def _sandbox_progress(status: ui.label) -> Callable[[str], None]:
    """A launched sandbox's steps (a first image pull takes minutes), logged and shown under
    "Create session" while that page is open. Called from the launcher's worker thread too."""
    loop = asyncio.get_running_loop()

    def show(message: str) -> None:
        if not status.is_deleted:
            status.set_text(f"starting… {message}")

    def progress(message: str) -> None:
        log.info("sandbox: %s", message)
        with contextlib.suppress(RuntimeError):  # the app has shut down: the log has it
            loop.call_soon_threadsafe(show, message)

    return progress


def setup_form(state: AppState, token: str) -> None:
    """Problem, language, duration, policy, accommodations, label: "Create session"."""
    problems = dict(BANK)
    if state.problem_file is not None:
        problems = {state.problem_file.title: state.problem_file, **problems}
    ui.label("Create a session").classes("text-h5")
    first = next(iter(problems.values()))
    languages = list(LANGUAGES)
    for each in problems.values():  # a file's language the sandbox may not know
        if canonical_language(each.language) not in languages:
            languages.append(canonical_language(each.language))
    problem = ui.select(list(problems), value=first.title, label="Problem") \
        .classes("w-96").props('data-testid="problem"').mark("problem")
    # Start from the problem's language, and follow the problem when it changes.
    language = ui.select(languages, value=canonical_language(first.language),
                         label="Language").classes("w-96") \
        .props('data-testid="language"').mark("language")
    starter_note = ui.label("").classes("text-caption text-grey-7") \
        .props('data-testid="starter-note"')

    def describe_starter() -> None:
        chosen = problems[problem.value]
        own = canonical_language(chosen.language)
        starter_note.set_text(
            "" if language.value == own else
            f"The problem's starter code is {own}; in {language.value} the editor "
            "starts with a one-line comment instead.")

    def follow_problem() -> None:
        language.set_value(canonical_language(problems[problem.value].language))
        describe_starter()

    problem.on_value_change(follow_problem)
    language.on_value_change(describe_starter)
    duration = ui.number("Duration (minutes)", value=45, min=1, max=600).classes("w-96")
    policy_path = ui.input("Policy file (empty: the documented defaults)") \
        .classes("w-96").props('data-testid="policy-file"').mark("policy-file")
    with ui.expansion("Accommodations for this candidate").classes("w-96") \
            .props('data-testid="accommodations"'):
        ui.label("For a candidate whose eyes or head move in ways the detectors would "
                 "misread, or who needs more time. The candidate is told before the "
                 "interview starts, and the sealed record keeps it.") \
            .classes("text-caption")
        gaze_off = ui.checkbox("Turn off gaze detection (eyes turned away)") \
            .props('data-testid="acc-gaze"').mark("acc-gaze")
        head_off = ui.checkbox("Turn off head-pose detection (head turned away)") \
            .props('data-testid="acc-head"').mark("acc-head")
        extra_time = ui.number("Extra minutes", value=0, min=0,
                               max=MAX_EXTRA_MINUTES).classes("w-40") \
            .props('data-testid="acc-extra"').mark("acc-extra")
    label = ui.input("Candidate label (optional, e.g. their name)").classes("w-96")
    error = ui.label("").classes("text-negative")

    async def create() -> None:
        try:
            chosen = problems[problem.value]
            policy_file = Path(policy_path.value) if policy_path.value \
                else state.app_config.policy_file
            policy = Policy.load(policy_file) if policy_file else Policy.default()
            off = tuple(kind for kind, box in (("gaze.away", gaze_off),
                                               ("head.turned", head_off)) if box.value)
            policy = policy.with_accommodations(Accommodations(
                off=off, extra_minutes=float(extra_time.value or 0)))
            setup = HostSetup(problem=chosen, language=language.value,
                              duration_min=float(duration.value or 45), policy=policy,
                              label=label.value or "", signaling=state.signaling,
                              lan=state.lan, lan_address=state.lan_address)
            button.disable()
            error.set_text("starting…")
            call = state.calls.get("host") or plan_call("host")
            state.host = await HostController.start(
                setup, call=call, config=state.peer_config(),
                run_backend=state.app_config.sandbox_backend_instance(
                    _sandbox_progress(error)))
        except (AssessIQError, ValueError, OSError) as exc:
            error.set_text(str(exc))
            button.enable()
            return
        ui.navigate.to(f"/{token}/host/lobby")

    button = ui.button("Create session", on_click=create) \
        .props('data-testid="create"').mark("create")


# --- lobby ----------------------------------------------------------------------------------


def _invite(host: HostController) -> None:
    """The invite as text, as a link (when the signaling server serves one) and as a QR."""
    with ui.row().classes("items-start"):
        with ui.column():
            invite = ui.textarea("Invite", value=host.invite_text) \
                .props('readonly data-testid="invite" autogrow').classes("w-96")
            ui.button("Copy invite", on_click=lambda: ui.clipboard.write(invite.value or ""))
            link = host.invite_link
            if link is not None:  # the same invite, as a link a mail client opens
                ui.label("or as a link (its page shows the one command to run):") \
                    .classes("text-caption")
                ui.link(link, link, new_tab=True).classes("text-caption") \
                    .style("word-break: break-all; max-width: 24rem") \
                    .props('data-testid="invite-link"').mark("invite-link")
                ui.button("Copy link", on_click=lambda: ui.clipboard.write(link)) \
                    .props("flat dense")
        ui.html(invite_qr_svg(host.invite_text)).style("width: 220px") \
            .props('data-testid="qr"')


def lobby_view(state: AppState, token: str, host: HostController) -> None:
    """The fingerprint, the invite, who joined and their camera check, "Start interview"
    (on by itself with `auto_start`, or when the phase moved on elsewhere)."""
    ui.label(f"Your key fingerprint: {host.host_fingerprint}") \
        .classes("text-subtitle1").props('data-testid="host-fp"')
    ui.label("Send this invite to the candidate (any channel), and read the fingerprint "
             "to them so they can check it.")
    _invite(host)
    status = ui.label("Waiting for the candidate…").props('data-testid="lobby-status"')
    camera = ui.label("").props('data-testid="lobby-camera"')
    state.tile("Candidate camera check", "host-remote", media_source(lambda: host.host, "remote"))
    moved = [False]

    def start() -> None:
        if moved[0]:
            return
        moved[0] = True
        if host.doc.phase == "lobby":
            host.set_phase("interview")
        ui.navigate.to(f"/{token}/host/interview")

    start_button = ui.button("Start interview", on_click=start) \
        .props('data-testid="start"').mark("start")
    start_button.disable()

    def show() -> None:
        if moved[0]:
            return
        if host.doc.phase != "lobby" or (host.connected and state.extra.get("auto_start")):
            start()
            return
        check = host.camera_check
        if check is not None:
            camera.set_text(check)
        elif host.connected:
            camera.set_text("Camera check: the candidate is checking their camera…")
        if host.connected:
            name = f" ({host.candidate_name})" if host.candidate_name else ""
            status.set_text(f"Candidate connected{name}: device {host.candidate_fingerprint}")
            start_button.enable()
        elif host.candidate_fingerprint:
            status.set_text(f"Candidate {host.candidate_fingerprint} disconnected; "
                            "waiting for them to reconnect…")
            start_button.disable()

    follow(host.changes, ("connection", "events", "phase"), show)


# --- the interview --------------------------------------------------------------------------


class EndControls:
    """"End and seal" with its confirmation (sealing is final: the candidate's editor stops,
    the record is signed, no more events are accepted, so it asks first) and the line that
    says why sealing failed."""

    def __init__(self, host: HostController, token: str) -> None:
        self.host, self.token = host, token
        with ui.dialog() as self.confirm, \
                ui.card().props('data-testid="end-confirm-dialog"'):
            ui.label("End the interview and seal the record?").classes("text-h6")
            ui.label("This cannot be undone: the candidate's editor becomes read-only, the "
                     "timer stops, and the session file is signed as it is now.")
            with ui.row().classes("w-full justify-end"):
                ui.button("Keep interviewing", on_click=self.confirm.close).props(
                    'flat data-testid="end-cancel"').mark("end-cancel")
                ui.button("End and seal", color="negative", on_click=self.end) \
                    .props('data-testid="end-confirm"').mark("end-confirm")
        self.error: ui.label | None = None
        self.button: ui.button | None = None

    def place(self) -> None:
        """The error line and the button (in the header row)."""
        self.error = ui.label("").classes("text-negative").props('data-testid="end-error"')
        self.button = ui.button("End and seal", color="negative",
                                on_click=lambda: self.confirm.open()) \
            .props('data-testid="end"').mark("end")

    async def end(self) -> None:
        assert self.button is not None and self.error is not None
        host = self.host
        self.confirm.close()
        self.button.disable()
        self.error.set_text("sealing…")
        try:
            await host.end()
        except Exception as exc:  # the expected ones are logged by end()
            if not isinstance(exc, AssessIQError | OSError):
                log.exception("host: ending the session failed")
            what = "could not be sealed" if host.sealed_path is None else \
                "is sealed, but its report could not be written"
            self.error.set_text(f"The session {what}: {str(exc).rstrip('.')}. Fix the cause "
                                "(e.g. free disk space) and press End and seal again.")
            self.button.enable()
            return
        ui.navigate.to(f"/{self.token}/host/ended")


def _header(host: HostController, ending: EndControls) -> tuple[ui.select, ui.row]:
    """Connection, the timer, the language switch, the font size's place, End and seal.
    Returns the language select and the row for the font size (it needs the editor)."""
    with ui.row().classes("items-center w-full no-wrap gap-2"):
        conn = ui.label("").classes("aiq-status").props('data-testid="conn"')
        timer_label(host.doc.timer, changes=host.changes)

        def switch(e: Any) -> None:
            try:
                host.switch_language(str(e.value))
            except ValueError as exc:
                ui.notify(str(exc), type="negative")

        language = ui.select(LANGUAGES, value=canonical_language(
            host.doc.language or host.setup.language), label="Language",
            on_change=switch).classes("w-32") \
            .props('dense data-testid="language-switch"').mark("language-switch")
        fonts = ui.row()
        ui.space()
        ending.place()

    def show_connection() -> None:
        conn.set_text("candidate connected" if host.connected else "candidate offline")

    follow(host.changes, "connection", show_connection)
    return language, fonts


def _work(token: str, host: HostController, ending: EndControls) -> SharedEditor:
    """The middle pane: the header, the shared editor, Run, the console and the results."""
    language, fonts = _header(host, ending)
    with ui.element("div").classes("w-full aiq-editor-slot"):
        editor = shared_editor(host.doc, origin="host", awareness=host.host.awareness,
                               base=f"/{token}", role="host", name="interviewer")
    with fonts:
        font_size(editor)
    follow_language(editor, host.doc, host.changes, language)

    def run(stdin: str) -> None:
        area.refused.set_text(host.run(stdin) or "")

    area = run_area(run, host.changes, host.doc, host.hidden_results)
    return editor


def _phase_and_timer(host: HostController) -> None:
    with ui.card().classes("w-full q-pa-sm"):
        ui.label("Phase and timer").classes("text-subtitle1")
        phase = ui.toggle(["lobby", "interview", "wrap-up"], value=host.doc.phase,
                          on_change=lambda e: host.set_phase(e.value)) \
            .props('data-testid="phase-toggle"').mark("phase")
        with ui.row().classes("items-center"):
            extra = ui.number("minutes", value=host.setup.duration_min,
                              min=1, max=600).classes("w-24") \
                .props('data-testid="timer-minutes"').mark("timer-minutes")
            ui.button("Restart timer",
                      on_click=lambda: host.restart_timer(float(extra.value or 1))) \
                .props('data-testid="restart-timer"').mark("restart-timer")
            ui.button("+5 min", on_click=lambda: host.extend_timer(5)) \
                .props('data-testid="extend-timer"').mark("extend-timer")

    def show_phase() -> None:
        if phase.value != host.doc.phase and host.doc.phase in ("lobby", "interview", "wrap-up"):
            phase.set_value(host.doc.phase)

    follow(host.changes, "phase", show_phase, now=False)


def _notes(host: HostController) -> None:
    with ui.card().classes("w-full q-pa-sm"):
        ui.label("Private notes (never shared)").classes("text-subtitle1")
        note = ui.textarea(placeholder="a note…").classes("w-full") \
            .props('data-testid="note"').mark("note")
        listed = ui.column().classes("gap-0").props('data-testid="notes"')

        def add() -> None:
            host.add_note(note.value or "")
            note.set_value("")

        ui.button("Add note", on_click=add).props('data-testid="add-note"').mark("add-note")

    def show() -> None:
        listed.clear()
        with listed:
            for t, text in host.notes:
                ui.label(f"{time.strftime('%H:%M:%S', time.gmtime(t))} {text}") \
                    .classes("text-body2")

    follow(host.changes, "notes", show)


def _side(state: AppState, host: HostController) -> None:
    """The right pane: the call, integrity, refusals, provenance, phase and timer, notes."""
    with ui.row():
        state.tile("Candidate", "host-remote", media_source(lambda: host.host, "remote"))
        state.tile("You", "host-self", media_source(lambda: host.host, "self"))
    call_controls(lambda: host.host, host.call, host.changes)
    integrity_panel(lambda: host.events, host.evaluation, host.changes)
    refusals_panel(lambda: host.refusals, host.changes)
    host_provenance_card(host)
    _phase_and_timer(host)
    _notes(host)


def interview_view(state: AppState, token: str, host: HostController,
                   ending: EndControls) -> Panes:
    """The interview room: the problem, the editor with runs, the side panel."""
    panes = room_panes()
    with panes.problem:
        problem_panel(host.doc, host.changes)
    with panes.work:
        _work(token, host, ending)
    with panes.side:
        _side(state, host)
    return panes


# --- sealed ---------------------------------------------------------------------------------


def ended_view(host: HostController) -> None:
    """The verdict, the files and the report."""
    done = host.ended
    assert done is not None
    verdict = done.verdict.to_json()
    ui.label("The session is sealed.").classes("text-h5")
    ui.label(("VALID" if verdict["valid"] else "INVALID") + ": " + (
        "sealed by you; every event signed by the candidate's device, in order, "
        "unbroken, receipted" if verdict["valid"] else "; ".join(verdict["errors"]))) \
        .props('data-testid="verdict"')
    ui.label(f"Integrity score: {verdict['score']}/100")
    ui.label(f"Session file: {done.session_file}").props('data-testid="session-file"')
    ui.label(f"Report: {done.report_html}")
    with ui.row():
        ui.button("Download session file",
                  on_click=lambda: ui.download.file(done.session_file))
        ui.button("Download report (HTML)",
                  on_click=lambda: ui.download.file(done.report_html))
        ui.button("Download report (Markdown)",
                  on_click=lambda: ui.download.file(done.report_md))
    ui.markdown(done.report_md.read_text(encoding="utf-8")).classes("w-full")
