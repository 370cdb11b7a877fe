"""The candidate's consent is enforced by the app, not only by a disabled button: the pages
after consent refuse (back to the consent screen), and joining refuses, until the candidate
agreed in this run. NiceGUI's simulated `User`, a real host on 127.0.0.1 (no camera)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from nicegui.testing import User
from nicegui.testing.user_simulation import user_simulation

from assessiq.core.errors import AssessIQError
from assessiq.room.call import plan_call
from assessiq.room.candidate import CandidateController
from assessiq.room.host import HostController, HostSetup
from assessiq.room.problems import BANK
from assessiq.ui.app import AppState, register_pages
from tests.peer_helpers import eventually

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def app_state(data_dir: str) -> AsyncIterator[tuple[AppState, User]]:
    state = AppState()
    state.calls["candidate"] = plan_call("candidate", camera="none", microphone="none",
                                         speaker=None)
    async with user_simulation() as user:
        register_pages(state, ("candidate",))
        state.host = await HostController.start(
            HostSetup(problem=next(iter(BANK.values()))),
            call=plan_call("host", camera="none", microphone="none", speaker=None))
        try:
            yield state, user
        finally:
            if state.candidate is not None:
                await state.candidate.close()
            await state.host.close()


async def test_the_steps_after_consent_refuse_until_the_candidate_agrees(
        app_state: tuple[AppState, User]) -> None:
    state, user = app_state
    assert state.host is not None
    # The invite is checked (as `assessiq join INVITE` does), but nobody agreed yet.
    state.candidate = cand = CandidateController(state.host.invite_text,
                                                 call=state.calls["candidate"])
    for step in ("check", "interview"):
        await user.open(f"/{state.token}/join/{step}")
        # sent back to the consent screen: no camera check, no join button
        await user.should_see("What is monitored, and what leaves this computer", retries=100)
        await user.should_not_see("Join the interview")
        await user.should_not_see("Camera check")
    with pytest.raises(AssessIQError, match="not agreed to the monitoring"):
        await cand.connect()
    assert cand.candidate is None and not state.host.connected
    # Agreeing on the consent screen opens the next step.
    user.find(marker="agree").click()
    user.find(marker="continue").click()
    await user.should_see("Camera check", retries=100)
    await user.should_see("Join the interview", retries=100)
    assert cand.consented
    user.find(marker="join").click()
    await eventually(lambda: cand.connected and state.host is not None and state.host.connected)


async def test_the_invite_expiry_has_its_date(app_state: tuple[AppState, User]) -> None:
    """A 24-hour invite's expiry can be tomorrow: a time alone read as already expired."""
    state, user = app_state
    assert state.host is not None
    state.candidate = cand = CandidateController(state.host.invite_text,
                                                 call=state.calls["candidate"])
    await user.open(f"/{state.token}/join")
    expires = dt.datetime.fromtimestamp(cand.invite.expires, dt.UTC)
    await user.should_see(f"The invite is valid until {expires:%Y-%m-%d %H:%M:%S} UTC.",
                          retries=100)
