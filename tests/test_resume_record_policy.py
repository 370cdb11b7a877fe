"""How the policy counts a restart (`[resume]`, `core.score`): the host's downtime never
against the candidate, the candidate's counted once, on the host's clock, not from its claim."""

from __future__ import annotations

from typing import Any

import pytest

from assessiq.core.errors import PolicyError
from assessiq.core.identity import Identity
from assessiq.core.integrity import Envelope, EventSigner
from assessiq.core.policy import Accommodations, Policy, ResumeRule
from assessiq.core.resume import HOST_RESTARTS_KEY, RESUMED, resumed_data
from assessiq.core.score import Evaluation, evaluate_session

T0 = 1_800_000_000.0
BEAT = 5.0
DEVICE = Identity.generate()
POLICY = Policy.default()


def _session(plan: list[tuple[float, float, str, dict[str, Any]]]
             ) -> tuple[list[Envelope], list[float]]:
    """Sign `plan` ((signed offset, arrival offset, kind, data), in signing order) as one
    chain; the events in the order the host stored them (by arrival) and their arrivals."""
    signer = EventSigner("room", DEVICE)
    signed = [(T0 + arrive, signer.sign(kind, data, now=T0 + t))
              for t, arrive, kind, data in plan]
    signed.sort(key=lambda p: (p[0], p[1].seq))
    return [e for _, e in signed], [a for a, _ in signed]


def _beats(start: float, stop: float, *, arrive: float | None = None
           ) -> list[tuple[float, float, str, dict[str, Any]]]:
    """Heartbeats signed every 5 s in [start, stop); they arrive 50 ms later, or all at
    `arrive` (resent from the outbox after a reconnect)."""
    out: list[tuple[float, float, str, dict[str, Any]]] = []
    t = start
    while t < stop:
        out.append((t, t + 0.05 if arrive is None else max(arrive, t + 0.05),
                    "browser.heartbeat", {}))
        t += BEAT
    return out


def _resumed(t: float, away: float, *, last_seen: float | None = None,
             side: str = "candidate") -> tuple[float, float, str, dict[str, Any]]:
    data = resumed_data(side="candidate", away_s=away,
                        last_seen=T0 + (t - away if last_seen is None else last_seen),
                        why="newest row in its session file")
    data["side"] = side  # (a modified app may say anything)
    return (t, t + 0.1, RESUMED, data)


def _evaluate(plan: list[tuple[float, float, str, dict[str, Any]]], *, end: float,
              policy: Policy = POLICY, host_restarts: list[list[float]] | None = None
              ) -> Evaluation:
    events, arrivals = _session(sorted(plan, key=lambda p: p[0]))
    meta: dict[str, Any] = {"created": T0, "joined": T0}
    if host_restarts is not None:
        meta[HOST_RESTARTS_KEY] = host_restarts
    return evaluate_session(meta, events, policy,
                            arrivals=arrivals, end_t=T0 + end)


def _penalty(ev: Evaluation, kind: str) -> float:
    return float(sum(e["penalty"] for e in ev.explanation if e.get("kind") == kind))


def test_the_host_down_is_never_a_gap_for_the_candidate() -> None:
    # the host's app is down from 100 s to 400 s; the candidate's app keeps beating, and
    # its outbox resends those beats in a burst once it has reconnected, 10 s after
    plan = _beats(0, 100) + _beats(100, 410, arrive=410) + _beats(410, 700)
    ev = _evaluate(plan, end=700, host_restarts=[[T0 + 99.9, T0 + 400.0]])
    assert ev.gaps == [] and ev.score == 100
    assert [(r.side, r.away) for r in ev.restarts] == [("host", 300.1)]
    assert _penalty(ev, "host.resumed") == 0 and any(
        e["kind"] == "host.resumed" for e in ev.explanation)
    # without the host's mark, the same arrivals are a gap, and it costs
    bare = _evaluate(plan, end=700)
    assert [round(g.duration) for g in bare.gaps] == [315] and bare.score < 100


def test_the_host_down_does_not_hide_the_candidates_own_silence() -> None:
    # the candidate's app went silent at 40 s, before the host went down (100 s to 400 s),
    # and beat again only 60 s after the host was back (past its reconnect allowance)
    plan = _beats(0, 40) + _beats(460, 700)
    ev = _evaluate(plan, end=700, host_restarts=[[T0 + 100.0, T0 + 400.0]])
    assert [(round(g.start - T0), round(g.end - T0)) for g in ev.gaps] == [(35, 100),
                                                                         (430, 460)]


def test_one_short_honest_restart_costs_nothing_and_is_counted_once() -> None:
    # the candidate's app dies at ~100 s and is back 60 s later; no heartbeat gap is left
    plan = [*_beats(0, 100), _resumed(160, 60), *_beats(162, 400)]
    ev = _evaluate(plan, end=400)
    assert ev.gaps == [] and ev.score == 100
    (r,) = ev.restarts
    assert r.side == "candidate" and r.penalty == 0 and 60 <= r.away <= 70
    assert _penalty(ev, RESUMED) == 0
    # without the [resume] rule's attribution the same silence would be a heartbeat gap
    beats_only = _evaluate(_beats(0, 100) + _beats(162, 400), end=400)
    assert len(beats_only.gaps) == 1 and beats_only.score < 100


def test_a_long_restart_costs_by_the_weight_and_many_cost_more() -> None:
    rule = POLICY.resume
    plan = [*_beats(0, 100), _resumed(700, 600), *_beats(702, 900)]
    ev = _evaluate(plan, end=900)
    (r,) = ev.restarts
    assert ev.gaps == []  # counted once: by the resume rule, not as a gap too
    assert r.penalty == pytest.approx(rule.weight + rule.per_minute * (r.away - rule.grace)
                                      / 60, abs=0.01)
    assert ev.score == round(100 - r.penalty) < 100
    # three short restarts: the first free, each other one costs the weight
    many = [*_beats(0, 100), _resumed(160, 60), *_beats(162, 300), _resumed(360, 60),
            *_beats(362, 500), _resumed(560, 60), *_beats(562, 700)]
    ev3 = _evaluate(many, end=700)
    assert [r.penalty for r in ev3.restarts] == [0, rule.weight, rule.weight]
    assert ev3.gaps == [] and ev3.score == 100 - 2 * rule.weight


def test_a_stream_slow_to_come_back_has_the_reconnect_allowance_then_is_a_gap() -> None:
    rule = POLICY.resume
    # the page beats again 25 s after the restart arrived (the browser reopening): free
    slow = _evaluate([*_beats(0, 100), _resumed(160, 60), *_beats(185, 400)], end=400)
    assert slow.gaps == [] and slow.score == 100
    assert 60 <= slow.restarts[0].away <= 70  # up to the restart, not to the next beat
    # silent for ten minutes after the restart: a restart does not buy a free silence
    silent = _evaluate([*_beats(0, 100), _resumed(160, 60), *_beats(760, 900)], end=900)
    assert silent.restarts[0].penalty == 0
    (gap,) = silent.gaps
    assert gap.start == pytest.approx(T0 + 160.1 + rule.reconnect)
    assert gap.end == pytest.approx(T0 + 760.05) and silent.score < 100


def test_both_down_one_after_the_other_counts_only_the_candidates_own_time() -> None:
    # the host dies at 100 s and is back at 300 s; the candidate's app dies at 150 s (its
    # beats from 100 s to 150 s wait in its outbox) and is back at 420 s
    plan = [*_beats(0, 100), *_beats(100, 150, arrive=420), _resumed(420, 270, last_seen=150),
            *_beats(422, 700)]
    ev = _evaluate(plan, end=700, host_restarts=[[T0 + 100.0, T0 + 300.0]])
    (host, cand) = ev.restarts
    assert host.side == "host" and cand.side == "candidate"
    assert cand.away == pytest.approx(420 - (300 + POLICY.resume.reconnect), abs=0.2)
    assert ev.gaps == [] and cand.penalty == 0 and ev.score == 100


def test_without_any_heartbeat_a_restart_closes_nothing() -> None:
    ev = _evaluate([_resumed(700, 60)], end=900)
    assert [r.away for r in ev.restarts] == [0] and [g.kind for g in ev.gaps] == ["heartbeat"]
    assert _penalty(ev, RESUMED) == 0


def test_the_claim_is_not_read_the_hosts_clock_decides() -> None:
    # a modified app claims 0 s away after a 10-minute silence: it costs what the truth does
    honest = _evaluate([*_beats(0, 100), _resumed(700, 600), *_beats(702, 900)], end=900)
    lying = _evaluate([*_beats(0, 100), _resumed(700, 0, last_seen=700), *_beats(702, 900)],
                      end=900)
    assert lying.score == honest.score < 100
    assert lying.restarts[0].away == honest.restarts[0].away > 590


def test_a_candidate_claiming_to_be_the_host_excuses_nothing() -> None:
    plan = [*_beats(0, 100), _resumed(700, 600, side="host"), *_beats(702, 900)]
    ev = _evaluate(plan, end=900)
    assert [r.side for r in ev.restarts] == ["candidate"] and ev.score < 100


def test_a_flood_of_restarts_is_capped_and_counts_the_silence_once() -> None:
    rule = POLICY.resume
    flood = [(700 + i * 0.001, 700.1 + i * 0.001, RESUMED,
              resumed_data(side="candidate", away_s=0, last_seen=T0 + 700, why="x"))
             for i in range(2000)]
    ev = _evaluate(_beats(0, 100) + flood + _beats(702, 900), end=900)
    assert len(ev.restarts) == 2000 and _penalty(ev, RESUMED) == rule.max_penalty
    # the silence counted once (a later one may close an ordinary beat's interval)
    assert [round(r.away) for r in ev.restarts if r.away > BEAT + 0.1] == [605]
    assert ev.gaps == []


def test_a_condition_open_when_the_app_died_ends_where_it_was_last_alive() -> None:
    plan = [*_beats(0, 100), (90, 90.05, "tab.hidden", {"phase": "start", "start": T0 + 90}),
            _resumed(160, 60, last_seen=100), *_beats(162, 4000)]
    ev = _evaluate(plan, end=4000)
    (hidden,) = [o for o in ev.occurrences if o.kind == "tab.hidden"]
    # not until the end of the session: until the last event the dead app signed (its
    # heartbeat at 95), not the 100 it claims
    assert hidden.duration == pytest.approx(5.0)


def test_a_claimed_last_seen_cannot_take_back_a_condition() -> None:
    """A modified app opens a condition, goes on beating for ten minutes, then signs a
    restart that claims it died right when the condition began: the condition still lasted
    until its last event before the restart (what its own signed log shows)."""
    plan = [*_beats(0, 700), (90, 90.05, "tab.hidden", {"phase": "start", "start": T0 + 90}),
            _resumed(700, 0, last_seen=90), *_beats(702, 900)]
    honest = [*_beats(0, 900), (90, 90.05, "tab.hidden", {"phase": "start", "start": T0 + 90}),
              (700, 700.05, "tab.hidden", {"phase": "end", "start": T0 + 90, "end": T0 + 700,
                                           "duration": 610})]
    forged, plain = _evaluate(plan, end=900), _evaluate(honest, end=900)
    (hidden,) = [o for o in forged.occurrences if o.kind == "tab.hidden"]
    assert hidden.duration == pytest.approx(605.0)  # to its last heartbeat before the restart
    assert forged.score <= plain.score < 100


def test_the_resume_rule_is_read_and_checked() -> None:
    assert POLICY.resume == ResumeRule()  # the default file says what the defaults are
    text = POLICY.text.replace("grace = 120.0", "grace = 600.0")
    assert Policy.from_toml(text).resume.grace == 600
    with pytest.raises(PolicyError, match="free"):
        Policy.from_toml(POLICY.text.replace("free = 1", "free = 1.5"))
    with pytest.raises(PolicyError, match="negative"):
        Policy.from_toml(POLICY.text.replace("reconnect = 30.0", "reconnect = -1"))
    old = "version = 1\n"  # a policy from before [resume]: the defaults
    assert Policy.from_toml(old).resume == ResumeRule()
    # accommodations keep the rule
    adjusted = POLICY.with_accommodations(Accommodations(off=("gaze.away",), extra_minutes=10))
    assert adjusted.resume == POLICY.resume and adjusted.rule("gaze.away") is None
    plan = [*_beats(0, 100), _resumed(700, 600), *_beats(702, 900)]
    assert _evaluate(plan, end=900, policy=adjusted).score == _evaluate(plan, end=900).score
