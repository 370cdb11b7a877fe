"""The candidate's pages: the invite and the interviewer's fingerprint, consent, camera check
and calibration, and the interview with the transparency panel. Each page checks the run's
secret and how far the candidate got, then renders its views (`candidate_views`), which
follow the `CandidateController`'s change events."""

from __future__ import annotations

from nicegui import ui

from .candidate_views import check_view, consent_view, interview_view, invite_form, start_signals
from .frame import frame
from .resume_views import resumed_line
from .state import AppState, check_token

__all__ = ["register"]


def register(state: AppState) -> None:
    base = "/{token}/join"

    @ui.page(base)
    async def join_page(token: str) -> None:
        check_token(state, token)
        with frame("join", role="candidate"):
            if state.candidate is None:
                invite_form(state, token)
            else:
                consent_view(token, state.candidate)

    @ui.page(base + "/check")
    async def check_page(token: str) -> None:
        check_token(state, token)
        cand = state.candidate
        if cand is None or not cand.consented:  # no step past consent without it
            ui.navigate.to(f"/{token}/join")
            return
        with frame("camera check", role="candidate"):
            resumed_line(cand.resumed, whose="Your app")
            check_view(state, token, cand)

    @ui.page(base + "/interview")
    async def interview_page(token: str) -> None:
        check_token(state, token)
        cand = state.candidate
        if cand is None or not cand.consented or cand.candidate is None:
            ui.navigate.to(f"/{token}/join")
            return
        with frame("interview", role="candidate"):
            resumed_line(cand.resumed, whose="Your app")
            interview_view(state, token, cand)
        await start_signals(cand)
