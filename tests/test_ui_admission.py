"""Another computer for the same candidate (theirs died, or its session file was lost): the
interviewer's page asks, the candidate's new computer says it waits, and the decision —
admit or refuse — is the interviewer's and is in the record. The peer-level cases (the chain
under the new key, forged admissions) are in tests/test_resume_candidate_devices.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nicegui.testing import User
from test_ui_pages import _second_user
from test_ui_session_policy import _connect, app_state  # noqa: F401 (a fixture)

from assessiq.core.errors import AssessIQError
from assessiq.room.call import plan_call
from assessiq.room.candidate import CandidateController
from assessiq.ui.app import AppState
from tests.peer_helpers import eventually


def _other_computer(state: AppState, invite: str, name: str) -> CandidateController:
    other = CandidateController(invite, name=name, config=state.peer_config(),
                                call=plan_call("candidate", camera="none", microphone="none",
                                               speaker=None))
    other.consent()
    return other


async def test_the_interviewer_admits_or_refuses_another_computer(
        app_state: tuple[AppState, User], tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    state, host_user = app_state
    async with _second_user() as cand_user:
        first = await _connect(state, host_user, cand_user, None)
        host = state.host
        assert host is not None
        await first.close()  # the candidate's computer dies
        invite = host.invite_text
        # A stranger's computer with the invite (another data dir: another machine) is refused.
        monkeypatch.setenv("ASSESSIQ_DATA_DIR", str(tmp_path / "stranger"))
        stranger = _other_computer(state, invite, "someone else")
        asking = asyncio.ensure_future(stranger.connect(timeout=20))
        await eventually(lambda: stranger.awaiting_admission, what="the stranger waits")
        await host_user.should_see("Another computer asks to continue as the candidate",
                                   retries=100)
        await host_user.should_see("someone else")
        host_user.find(marker="refuse-device").click()
        with pytest.raises(AssessIQError):
            await asyncio.wait_for(asking, 30)
        assert not stranger.awaiting_admission  # (its page no longer says it waits)
        await host_user.should_not_see("Another computer asks", retries=100)
        assert any(r["channel"] == "device" for r in host.host.store.refusals())

        # The candidate on their second laptop is admitted: same session, same signed log.
        monkeypatch.setenv("ASSESSIQ_DATA_DIR", str(tmp_path / "laptop2"))
        laptop = _other_computer(state, invite, "Ada (laptop 2)")
        joining = asyncio.ensure_future(laptop.connect(timeout=20))
        await eventually(lambda: laptop.awaiting_admission, what="the laptop waits")
        await host_user.should_see("Ada (laptop 2)", retries=100)
        host_user.find(marker="admit-device").click()
        await asyncio.wait_for(joining, 60)
        try:
            assert laptop.connected and not laptop.awaiting_admission
            await host_user.should_not_see("Another computer asks", retries=100)
            ended = await host.end()
            assert ended.verdict.valid, ended.verdict.errors
            assert [(a["name"], a["problem"]) for a in ended.verdict.admissions] == [
                ("Ada (laptop 2)", None)]
            assert "## Devices admitted by the interviewer" in \
                ended.report_md.read_text(encoding="utf-8")
            assert laptop.candidate is not None
            assert host.host.device_key == laptop.candidate.device.public_key
        finally:
            await laptop.close()
