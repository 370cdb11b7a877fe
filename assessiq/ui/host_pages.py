"""The interviewer's pages: setup, lobby (invite, QR, candidate), interview, ended. Each
page checks the run's secret and where the session is, then renders its views
(`host_views`), which follow the `HostController`'s change events."""

from __future__ import annotations

from nicegui import ui

from .frame import frame
from .host_views import (
    EndControls,
    ended_view,
    interview_view,
    invite_qr_svg,
    lobby_view,
    setup_form,
)
from .resume_views import admission_prompt, resume_offer, resumed_line
from .state import AppState, check_token

__all__ = ["invite_qr_svg", "register"]


def register(state: AppState) -> None:
    base = "/{token}/host"

    @ui.page(base)
    async def setup_page(token: str) -> None:
        check_token(state, token)
        host = state.host
        if host is not None:  # (a resumed session goes on at its phase)
            where = "ended" if host.ended else \
                "interview" if host.doc.phase == "interview" else "lobby"
            ui.navigate.to(f"/{token}/host/{where}")
            return
        with frame("new session", role="host"):
            resume_offer(state, token)
            setup_form(state, token)

    @ui.page(base + "/lobby")
    async def lobby_page(token: str) -> None:
        check_token(state, token)
        host = state.host
        if host is None:
            ui.navigate.to(f"/{token}/host")
            return
        with frame("lobby", role="host"):
            resumed_line(host.resumed, whose="Your app")
            admission_prompt(host)
            lobby_view(state, token, host)

    @ui.page(base + "/interview")
    async def interview_page(token: str) -> None:
        check_token(state, token)
        host = state.host
        if host is None:
            ui.navigate.to(f"/{token}/host")
            return
        if host.ended is not None:
            ui.navigate.to(f"/{token}/host/ended")
            return
        ending = EndControls(host, token)
        with frame("interview", role="host"):
            resumed_line(host.resumed, whose="Your app")
            admission_prompt(host)
            interview_view(state, token, host, ending)

    @ui.page(base + "/ended")
    async def ended_page(token: str) -> None:
        check_token(state, token)
        host = state.host
        if host is None or host.ended is None:
            ui.navigate.to(f"/{token}/host")
            return
        with frame("ended", role="host"):
            ended_view(host)
