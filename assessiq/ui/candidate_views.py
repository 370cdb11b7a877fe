"""The candidate's screens, section by section, each rendering its part of the
`CandidateController` and following its change events (`live.follow`): the invite, the
interviewer's fingerprint and consent, the camera check, and the interview room (header,
editor and runs, the call, the notices and the transparency panel). `candidate_pages`
routes to them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nicegui import background_tasks, ui
from nicegui.events import GenericEventArguments

from ..core.errors import AssessIQError
from ..core.score import evaluate
from ..room.call import plan_call
from ..room.candidate import (
    MONITORED,
    CandidateController,
    describe,
    paste_text_words,
)
from ..room.report import clock, date_time
from .components import call_controls, media_source, timer_label
from .editor import SharedEditor, shared_editor
from .live import follow
from .provenance_view import candidate_provenance
from .resume_views import admission_wait
from .room import Panes, RunArea, follow_language, font_size, problem_panel, room_panes, run_area
from .state import AppState

__all__ = ["KIND_WORDS", "SENT_COLUMNS", "SIGNALS_JS", "check_view", "consent_view",
           "interview_view", "invite_form", "sent_row", "start_signals"]

log = logging.getLogger(__name__)

SIGNALS_JS = (Path(__file__).parent / "static" / "signals.js").read_text(encoding="utf-8")

KIND_WORDS = {
    "tab.hidden": "It looks like you switched away from this tab. Please stay on the "
                  "interview tab — the interviewer can see when you leave it.",
    "window.blur": "This window lost focus a few times. If a notification took it, no "
                   "problem; just come back to the interview.",
    "fullscreen.exit": "The interview runs in fullscreen. Please return to fullscreen.",
    "paste": "Pasting into the editor is noted (its size only). If you paste from your own "
             "notes, mention it to the interviewer.",
    "copy": "Copying from the page is noted (its size only).",
    "devtools.shortcut": "Developer-tools shortcuts are noted. Please keep to the editor.",
    "screens.multiple": "Your browser reports more than one screen. That is fine — the "
                        "interviewer is told, nothing else happens.",
    "face.absent": "We could not see your face for a while. Please stay in front of the camera.",
    "face.multiple": "More than one face appeared on camera. The interview is meant to be "
                     "taken alone.",
    "gaze.away": "You seemed to look away from the screen for a long time.",
    "head.turned": "Your head was turned away for a long time.",
    "camera.blocked": "Your camera seems covered or too dark.",
    "camera.frozen": "Your camera picture seems frozen.",
    "camera.off": "Your camera is off. Please turn it back on.",
}




SENT_COLUMNS = [
    {"name": "seq", "label": "#", "field": "seq", "align": "right"},
    {"name": "time", "label": "time (UTC)", "field": "time", "align": "left"},
    {"name": "kind", "label": "kind", "field": "kind", "align": "left"},
    {"name": "what", "label": "what", "field": "what", "align": "left"},
]


def sent_row(env: Any) -> dict[str, Any]:
    """One row of the transparency table."""
    return {"seq": env.seq, "time": clock(env.t), "kind": env.kind, "what": describe(env)}


# --- before joining -------------------------------------------------------------------------


def invite_form(state: AppState, token: str) -> None:
    """Paste the invite, give a name: "Check invite"."""
    ui.label("Paste the invite your interviewer sent you.").classes("text-h6")
    invite = ui.textarea("Invite", value=state.invite_text or "") \
        .classes("w-full").props('data-testid="invite-input"').mark("invite")
    name = ui.input("Your name (shown to the interviewer)", value=state.name or "") \
        .props('data-testid="name"').mark("name")
    error = ui.label("").classes("text-negative").props('data-testid="invite-error"')

    def check() -> None:
        try:
            state.candidate = CandidateController(
                invite.value or "", name=(name.value or None),
                signaling=state.signaling, config=state.peer_config(),
                call=state.calls.get("candidate") or plan_call("candidate"))
        except AssessIQError as exc:
            error.set_text(str(exc))
            return
        ui.navigate.to(f"/{token}/join")

    ui.button("Check invite", on_click=check) \
        .props('data-testid="check-invite"').mark("check-invite")


def consent_view(token: str, cand: CandidateController) -> None:
    """Who invited them (the fingerprint to compare), what is monitored, "I agree"."""
    ui.label("Check who invited you").classes("text-h5")
    ui.label(f"Interviewer's key fingerprint: {cand.host_fingerprint}") \
        .classes("text-h6").props('data-testid="host-fp"')
    ui.label("Ask your interviewer to read their fingerprint to you. If it differs, do "
             "not continue: someone else made this invite.")
    ui.label(f"The invite is valid until {date_time(cand.invite.expires)}.") \
        .classes("text-caption").props('data-testid="invite-expiry"')
    ui.separator()
    ui.label("What is monitored, and what leaves this computer").classes("text-h5")
    with ui.column().props('data-testid="consent"'):
        for title, text in MONITORED:
            ui.label(title).classes("text-subtitle1 text-weight-bold")
            ui.label(text)
        ui.label("Every event sent about you is listed on your screen as it is sent, "
                 "and the interviewer cannot change it afterwards: each event is "
                 "signed by a key that exists only on this computer for this session.") \
            .classes("text-italic")
        ui.label("Nothing is sent before you agree.").classes("text-weight-bold")
    agree = ui.checkbox("I have read this and agree to be monitored as described") \
        .props('data-testid="agree"').mark("agree")

    def agreed() -> None:
        if not agree.value:  # the button is disabled then; the server checks too
            return
        cand.consent()
        ui.navigate.to(f"/{token}/join/check")

    go = ui.button("Continue", on_click=agreed) \
        .props('data-testid="continue"').mark("continue")
    go.bind_enabled_from(agree, "value")


# --- the camera check -----------------------------------------------------------------------


def _join_button(token: str, cand: CandidateController) -> None:
    ui.label("Joining connects you to the interviewer: the call starts, and "
             "your camera's picture is checked and calibrated here (on this "
             "computer) before the interview begins.") \
        .props('data-testid="calibration"')
    error = ui.label("").classes("text-negative").props('data-testid="join-error"')
    admission_wait(cand)

    async def join() -> None:
        button.disable()
        error.set_text("connecting…")
        try:
            await cand.connect()
        except (AssessIQError, OSError, ValueError) as exc:  # one line, never a traceback
            if not isinstance(exc, AssessIQError):
                log.warning("candidate: joining failed: %r", exc)
            error.set_text(str(exc) or type(exc).__name__)
            button.enable()
            return
        ui.navigate.to(f"/{token}/join/check")

    button = ui.button("Join the interview", on_click=join) \
        .props('data-testid="join"').mark("join")


def _session_policy(cand: CandidateController, recheck: Any) -> None:
    """What this interviewer's policy asks that the consent screen could not know: pasted
    text (asked again here), the accommodations set for them."""
    policy = cand.policy
    with ui.column().classes("gap-1").props('data-testid="session-policy"'):
        if cand.policy_note:
            ui.label(cand.policy_note).classes("text-warning") \
                .props('data-testid="policy-note"')
        if policy.paste.include_text:
            # The consent screen could not know this before joining: ask again here.
            ui.label("One more thing this interviewer's policy asks for").classes("text-h6")
            ui.label(paste_text_words(policy.paste.max_chars)) \
                .props('data-testid="paste-text-consent"')
            ui.label("Nothing you paste is sent with its text until you agree. If you "
                     "do not agree, tell your interviewer before going on.") \
                .classes("text-caption")
            agree = ui.checkbox("I agree that the text I paste is sent",
                                value=cand.paste_text_agreed) \
                .props('data-testid="agree-paste"').mark("agree-paste")

            def agreed(e: Any) -> None:
                cand.paste_text_agreed = bool(e.value)
                recheck()

            agree.on_value_change(agreed)
        else:
            ui.label("This interviewer's policy records only the size of what you "
                     "paste or copy, never its text.").classes("text-caption") \
                .props('data-testid="paste-size-only"')
        if policy.accommodations.any:
            ui.label("Accommodations your interviewer set for you").classes("text-h6")
            for line in policy.accommodations.words():
                ui.label(line).props('data-testid="accommodation"')
            ui.label("Nothing from a detector that is off is analysed into an event, "
                     "sent, or counted.").classes("text-caption")


def check_view(state: AppState, token: str, cand: CandidateController) -> None:
    """Before joining: "Join the interview". After: the call, the camera check's progress
    (its "camera" change events), the session's policy, "Go to the interview" once the
    check is done (and pasted text agreed to, when the policy asks for it)."""
    ui.label("Camera check").classes("text-h5")
    state.tile("Your camera", "candidate-self", media_source(lambda: cand.candidate, "self"))
    if cand.candidate is None:
        _join_button(token, cand)
        return
    call_controls(lambda: cand.candidate, cand.call, cand.changes)
    check = cand.check_camera()
    status = ui.label("").props('data-testid="calibration"')
    go: list[ui.button] = []

    def show() -> None:
        if check is None or not go:
            return
        status.set_text(check.status)
        go[0].set_enabled(check.done and not cand.paste_text_needs_consent)

    _session_policy(cand, show)
    go.append(ui.button("Go to the interview",
                        on_click=lambda: ui.navigate.to(f"/{token}/join/interview"))
              .props('data-testid="enter"').mark("enter"))
    go[0].disable()
    follow(cand.changes, "camera", show)
    # a clock, as on the interview page: joined, this page is open — heartbeats are due from
    # the join, and the check (a calibration, a resumed app's too) must not read as a gap
    ui.timer(5.0, cand.heartbeat)


# --- the interview --------------------------------------------------------------------------


def _fullscreen_overlay() -> None:
    ui.add_body_html(
        '<div id="aiq-fullscreen-overlay" role="dialog" aria-modal="true" '
        'aria-label="Fullscreen" style="display:flex;position:fixed;inset:0;'
        'z-index:9000;background:rgba(20,30,40,.92);color:white;align-items:center;'
        'justify-content:center;flex-direction:column;gap:1em;font:18px sans-serif">'
        '<div>The interview runs in fullscreen.</div>'
        '<button data-testid="fullscreen" onclick="aiqEnterFullscreen()" '
        'style="font-size:18px;padding:.5em 1em">Enter fullscreen</button></div>')


def _header(cand: CandidateController) -> ui.row:
    """Connection, what the interviewer's app did not accept, the phase, the timer, the font
    size's place (returned: it needs the editor)."""
    doc = cand.doc
    with ui.row().classes("items-center w-full no-wrap gap-2"):
        conn = ui.label("").classes("aiq-status").props('data-testid="conn"')
        not_taken = ui.label("").classes("text-negative").props('data-testid="not-accepted"')
        phase = ui.label("").props('data-testid="phase"')
        timer_label(doc.timer, lambda: cand.ended, changes=cand.changes)
        fonts = ui.row()

    def show_connection() -> None:
        conn.set_text("connected" if cand.connected else (
            "the interviewer ended the session" if cand.ended else "reconnecting…"))

    def show_not_taken() -> None:
        told = cand.refused_by_peer
        if told:
            not_taken.set_text("The interviewer's app did not accept what this app sent: "
                               f"{told[-1]['reason']}")

    follow(cand.changes, ("connection", "ended"), show_connection)
    follow(cand.changes, "refused_by_peer", show_not_taken)
    follow(cand.changes, "phase", lambda: phase.set_text(f"phase: {doc.phase}"))
    return fonts


def _ended_banner() -> ui.label:
    banner = ui.label(
        "The interview has ended. The interviewer sealed the record; the "
        "editor is read-only and nothing more is sent.") \
        .classes("text-subtitle1 q-pa-sm bg-blue-1 text-black w-full") \
        .props('role="status" data-testid="ended-banner"').mark("ended-banner")
    banner.set_visibility(False)
    return banner


def _work(token: str, cand: CandidateController) -> tuple[SharedEditor, RunArea]:
    """The middle pane: the header, the ended banner, the editor, Run and the results."""
    session = cand.candidate
    assert session is not None
    fonts = _header(cand)
    banner = _ended_banner()
    with ui.element("div").classes("w-full aiq-editor-slot"):
        editor = shared_editor(session.doc, origin="candidate", awareness=session.awareness,
                               base=f"/{token}", role="candidate", name=cand.name or "candidate")
    with fonts:
        font_size(editor)
    follow_language(editor, session.doc, cand.changes)
    tickets: list[Any] = []

    async def run(stdin: str) -> None:
        ticket = await cand.request_run(stdin)
        if ticket is not None:
            tickets.append(ticket)

    area = run_area(run, cand.changes, session.doc)

    def show_refused() -> None:
        if tickets and tickets[-1].state == "refused":
            reason = str(tickets[-1].reason).rstrip(".")
            area.refused.set_text(f"This run was not started: {reason}. Nothing is held "
                                  "against you for this.")
        elif tickets:
            area.refused.set_text("")

    closed = [False]

    def show_ended() -> None:
        """After the end the page says so, and nothing on it works as if it went on."""
        if not cand.ended or closed[0]:
            return
        closed[0] = True  # stop the proctor, the call and signaling; keep the page
        background_tasks.create(cand.close(), name="candidate-close")
        editor.set_read_only()
        area.button.disable()
        banner.set_visibility(True)

    follow(cand.changes, "run_refusals", show_refused)
    follow(cand.changes, "ended", show_ended)
    return editor, area


def _notices(cand: CandidateController) -> None:
    """The latest warning, in plain words, when a new one is due by the session's policy."""
    notices = ui.column().classes("w-full").props('data-testid="notices"')
    warned = [0]

    def show() -> None:
        warnings = evaluate(cand.sent, cand.policy).warnings
        if len(warnings) <= warned[0]:
            return
        warned[0] = len(warnings)
        notices.clear()
        with notices:
            latest = warnings[-1]
            with ui.card().classes("w-full bg-amber-1 text-black q-pa-sm") \
                    .props('data-testid="notice"'):
                ui.label(KIND_WORDS.get(latest.kind, latest.kind))

    follow(cand.changes, "events", show, at_most_every=0.25)


def _transparency(cand: CandidateController) -> None:
    """Every event this computer signed and sent, newest first, and how many were
    receipted (redrawn on each one: its "events")."""
    with ui.card().classes("w-full q-pa-sm").props('data-testid="transparency"'):
        ui.label("What is sent about you").classes("text-subtitle1")
        ui.label("Every event this computer signed and sent to the "
                 "interviewer, newest first (all of them, page by page)."
                 ).classes("text-caption")
        ui.label(cand.policy_note or "Warnings follow the interviewer's "
                 "policy for this session.").classes("text-caption") \
            .props('data-testid="policy-source"')
        for line in cand.policy.accommodations.words():
            ui.label(f"Accommodation: {line}").classes("text-caption") \
                .props('data-testid="accommodation"')
        summary = ui.label("").classes("text-caption")
        beats = ui.switch("Show heartbeats too", value=False) \
            .props('data-testid="show-heartbeats"').mark("show-heartbeats")
        table = ui.table(columns=SENT_COLUMNS, rows=[], row_key="seq",
                         pagination={"rowsPerPage": 10}) \
            .props('dense flat wrap-cells data-testid="sent-table"') \
            .classes("w-full").mark("sent-table")
        assert cand.candidate is not None
        candidate_provenance(cand.candidate, cand.changes)
    listed_key: list[Any] = [None]

    def show() -> None:
        sent = cand.sent
        n_beats = sum(1 for e in sent if e.kind.endswith("heartbeat"))
        summary.set_text(f"{len(sent)} events sent ({n_beats} heartbeats: \"this page is "
                         "open\" and \"the camera analysis runs\"), "
                         f"{cand.receipted} receipted by the interviewer")
        listed = [env for env in sent if beats.value or not env.kind.endswith("heartbeat")]
        if (len(listed), bool(beats.value)) != listed_key[0]:  # not on every beat
            listed_key[0] = (len(listed), bool(beats.value))
            table.rows = [sent_row(env) for env in reversed(listed)]
            table.update()

    beats.on_value_change(show)
    follow(cand.changes, "events", show, at_most_every=0.25)


def _side(state: AppState, cand: CandidateController) -> None:
    """The right pane: the call, the camera analysis, the notices, the transparency panel."""
    session = cand.candidate
    with ui.row():
        state.tile("Interviewer", "candidate-remote", media_source(lambda: session, "remote"))
        state.tile("You", "candidate-self", media_source(lambda: session, "self"))
    call_controls(lambda: session, cand.call, cand.changes)
    analysis = ui.label("").classes("text-caption").props('data-testid="analysis"')
    check = cand.camera_check

    def show_analysis() -> None:
        if check is not None:
            analysis.set_text(check.status if check.done else "Camera analysis: starting…")

    follow(cand.changes, "camera", show_analysis)
    _notices(cand)
    _transparency(cand)


def interview_view(state: AppState, token: str, cand: CandidateController) -> Panes:
    """The interview room: the problem, the editor with runs, the side panel; the page's
    browser signals go to the controller."""
    assert cand.candidate is not None
    cand.check_camera()  # the proctor runs for the interview
    _fullscreen_overlay()
    panes = room_panes()
    with panes.problem:
        problem_panel(cand.candidate.doc, cand.changes)
    with panes.work:
        _work(token, cand)
    with panes.side:
        _side(state, cand)

    async def on_signal(e: GenericEventArguments) -> None:
        await cand.on_signal(e.args)

    ui.on("aiq_signal", on_signal)
    ui.timer(5.0, cand.heartbeat)  # a clock: "this page is open", signed every 5 s
    return panes


async def start_signals(cand: CandidateController) -> None:
    """Once the page is connected: its browser-signal script. The page sends pasted text to
    this computer's own process only when the session's policy asks for it and the
    candidate agreed (the process checks both again)."""
    await ui.context.client.connected()
    paste_max = cand.policy.paste.max_chars if cand.policy.paste.include_text \
        and cand.paste_text_agreed else 0
    ui.run_javascript(f"window.__aiqPasteMax = {int(paste_max)};" + SIGNALS_JS)
