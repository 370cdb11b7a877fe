"""Accommodations: the interviewer turns detectors off for a candidate and adds time.

Part of the session's policy (so sealed with the record, recomputed by `verify`), shown to the
candidate before the interview, and honoured on both sides: the candidate's app drops the
silenced detectors' findings unsigned, and the host counts nothing of theirs even when a
modified app sends them anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nicegui.testing import User
from test_core_policy_score import beats, condition, events
from test_ui_session_policy import _connect, _second_user, app_state  # noqa: F401 (fixture)

from assessiq.core.errors import PolicyError
from assessiq.core.policy import Accommodations, Policy
from assessiq.core.record import SessionRecord
from assessiq.core.score import evaluate
from assessiq.core.verify import verify_record
from assessiq.room.report import render_markdown
from assessiq.ui.app import AppState
from tests.peer_helpers import eventually

OFF = Accommodations(off=("gaze.away", "head.turned"), extra_minutes=15)


def test_detectors_off_count_nothing_and_the_rest_still_counts() -> None:
    log = events(beats(300) + condition("gaze.away", 10, 60) + condition("head.turned", 100, 40)
                 + condition("tab.hidden", 200, 30))
    plain = Policy.default()
    eased = plain.with_accommodations(OFF)
    before = {e["kind"] for e in evaluate(log, plain).explanation}
    after = {e["kind"] for e in evaluate(log, eased).explanation}
    assert {"gaze.away", "head.turned", "tab.hidden"} <= before
    assert after == {"tab.hidden"}
    assert evaluate(log, eased).score > evaluate(log, plain).score
    # the policy text says so, and reads back the same (it is what the record seals)
    assert Policy.from_toml(eased.text).accommodations == OFF
    assert OFF.words() == ["Gaze detection (eyes turned away) is off.",
                           "Head-pose detection (head turned away) is off.",
                           "15 extra minutes are added to the time."]


@pytest.mark.parametrize(("table", "why"), [
    ('off = ["face.absent"]', "off lists detectors"),
    ('off = "gaze.away"', "off must be a list"),
    ("off = [{a = 1}]", "off must be a list"),
    ("extra_minutes = -5", "extra_minutes must be from 0"),
    ("extra_minutes = 1e9", "extra_minutes must be from 0"),
    ("extra_minutes = true", "extra_minutes must be from 0"),
    ("snooze = 1", "unknown key 'snooze'"),
])
def test_a_bad_accommodations_table_is_refused_with_its_reason(table: str, why: str) -> None:
    with pytest.raises(PolicyError, match=why):
        Policy.from_toml(f"version = 1\n[accommodations]\n{table}\n")


def test_accommodations_are_set_in_one_place() -> None:
    eased = Policy.default().with_accommodations(OFF)
    with pytest.raises(PolicyError, match="already sets"):
        eased.with_accommodations(Accommodations(extra_minutes=5))
    assert Policy.default().with_accommodations(Accommodations()) == Policy.default()


async def test_set_at_setup_told_to_the_candidate_honoured_and_sealed(
        app_state: tuple[AppState, User], tmp_path: Path) -> None:  # noqa: F811
    state, host_user = app_state

    def accommodate(user: User) -> None:
        user.find(marker="acc-gaze").click()
        user.find(marker="acc-head").click()
        user.find(marker="acc-extra").elements.pop().set_value(15)

    async with _second_user() as cand_user:
        cand = await _connect(state, host_user, cand_user, None, accommodate)
        host = state.host
        assert host is not None
        assert host.setup.policy.accommodations == OFF
        # told before the interview starts, and in the transparency panel after
        await cand_user.should_see("Accommodations your interviewer set for you", retries=100)
        await cand_user.should_see("Gaze detection (eyes turned away) is off.", retries=100)
        await cand_user.should_see("15 extra minutes are added to the time.", retries=100)
        # the candidate's app drops the silenced detectors' findings unsigned
        assert cand.candidate is not None
        await eventually(lambda: cand.candidate is not None
                         and cand.candidate.silenced == frozenset(OFF.off))
        sent_before = len(cand.candidate.log)
        cand.candidate.proctor_sink("gaze.away", {"phase": "start", "start": 0.0})
        cand.candidate.proctor_sink("face.absent", {"phase": "start", "start": 0.0})
        await cand.candidate.events_sent()
        assert [e.kind for e in cand.candidate.log[sent_before:]] == ["face.absent"]
        # a modified app sends one anyway: received, counted for nothing
        await cand.send("head.turned", {"phase": "start"})
        await cand.send("head.turned", {"phase": "end", "duration": 90.0})
        host.set_phase("interview")
        timer: dict[str, Any] | None = host.doc.timer()
        assert timer is not None and timer["duration_s"] == (45 + 15) * 60
        await eventually(lambda: sum(e.kind == "head.turned" for e in host.events) == 2)
        assert "head.turned" not in {e["kind"] for e in host.evaluation().explanation}
        ended = await host.end()
    record = SessionRecord.load(ended.session_file)
    verdict = verify_record(record)
    assert verdict.valid, verdict.errors
    assert verdict.evaluation is not None
    assert "head.turned" not in {e["kind"] for e in verdict.evaluation.explanation}
    assert Policy.from_toml(record.meta["policy"]).accommodations == OFF
    assert "- accommodations set by the interviewer: Gaze detection (eyes turned away) is " \
           "off." in render_markdown(record, verdict)
