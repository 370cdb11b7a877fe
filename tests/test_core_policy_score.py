"""The escalation policy (TOML) and the score: a pure, bounded function of log and policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from core_factories import build_session
from hypothesis import given, settings
from hypothesis import strategies as st

from assessiq.core.encoding import unpack_signed
from assessiq.core.errors import PolicyError
from assessiq.core.identity import Identity
from assessiq.core.integrity import Envelope, EventSigner
from assessiq.core.kinds import CONDITION, HEARTBEAT, INSTANT, KINDS
from assessiq.core.policy import Policy, default_policy_text
from assessiq.core.score import evaluate
from assessiq.core.verify import verify_record

DEVICE = Identity.generate()
T0 = 1_800_000_000.0


def events(spec: list[tuple[float, str, dict[str, Any]]]) -> list[Envelope]:
    signer = EventSigner("s", DEVICE)
    return [signer.sign(kind, data, now=T0 + t) for t, kind, data in sorted(
        spec, key=lambda s: s[0])]


def beats(until: float, every: float = 5.0, skip: tuple[float, float] = (0, 0)
          ) -> list[tuple[float, str, dict[str, Any]]]:
    out: list[tuple[float, str, dict[str, Any]]] = []
    t = 0.0
    while t <= until:
        if not skip[0] <= t < skip[1]:
            out.append((t, "proctor.heartbeat", {}))
        t += every
    return out


def condition(kind: str, start: float, duration: float) -> list[tuple[float, str, dict[str, Any]]]:
    return [(start, kind, {"phase": "start"}),
            (start + duration, kind, {"phase": "end", "duration": duration})]


POLICY = Policy.from_toml("""
version = 1
[heartbeats]
max_gap = 20.0
weight = 4
max_penalty = 10
[kinds."tab.hidden"]
min_duration = 2.0
warn_after = 2
flag_after = 3
flag_duration = 20.0
weight = 3
per_minute = 6.0
max_penalty = 30
""")


def test_default_policy_loads_and_covers_every_finding_kind() -> None:
    policy = Policy.default()
    assert policy.text == default_policy_text()
    for name, info in KINDS.items():
        # (a restart is counted by the policy's [resume] rule, not a [kinds] one)
        if info.shape in (CONDITION, INSTANT) and name not in ("session.note",
                                                                "session.resumed"):
            assert policy.rule(name) is not None, name
    assert policy.rule("proctor.heartbeat") is None and policy.heartbeats.max_gap > 0
    assert KINDS["proctor.heartbeat"].shape == HEARTBEAT


@pytest.mark.parametrize("text", [
    "version = ",                                    # not TOML
    "",                                              # no version
    "version = 2",
    'version = "1"',
    "version = 1\nkinds = 5",
    "version = 1\nkinds = [1, 2]",
    'version = 1\n[kinds]\n"paste" = 3',
    'version = 1\n[kinds."paste"]\nweight = "heavy"',
    'version = 1\n[kinds."paste"]\nweight = true',
    'version = 1\n[kinds."paste"]\nweight = -1',
    'version = 1\n[kinds."paste"]\nweight = nan',
    'version = 1\n[kinds."paste"]\nper_minute = inf',
    'version = 1\n[kinds."paste"]\nwarn_after = 1.5',
    'version = 1\n[kinds."paste"]\nflag_after = 0',
    'version = 1\n[kinds."paste"]\nspeed = 3',
    'version = 1\n[kinds."paste"]\nmax_penalty = [1]',
    "version = 1\nheartbeats = 3",
    "version = 1\n[heartbeats]\nmax_gap = 0",
    "version = 1\n[heartbeats]\nweight = -2",
    "version = 1\n[heartbeats]\nevery = 5",
])
def test_malformed_policies_give_policy_error(text: str) -> None:
    with pytest.raises(PolicyError) as exc:
        Policy.from_toml(text)
    assert str(exc.value) and "\n" not in str(exc.value)


def test_policy_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(default_policy_text())
    assert Policy.load(path).kinds == Policy.default().kinds
    with pytest.raises(PolicyError):
        Policy.load(tmp_path / "missing.toml")


def test_min_duration_filters_blips() -> None:
    spec = beats(60) + condition("tab.hidden", 10, 1.5) + condition("tab.hidden", 30, 2.5)
    ev = evaluate(events(spec), POLICY)
    assert [(o.start - T0, o.duration) for o in ev.occurrences] == [(30.0, 2.5)]
    assert ev.explanation[0]["occurrences"] == 1


def test_escalation_by_count_and_by_duration() -> None:
    spec = beats(200) + condition("tab.hidden", 10, 3) + condition("tab.hidden", 30, 3) + \
        condition("tab.hidden", 50, 3)
    levels = [o.level for o in evaluate(events(spec), POLICY).occurrences]
    assert levels == ["counted", "warning", "flag"]
    long_one = beats(200) + condition("tab.hidden", 10, 25)
    (occ,) = evaluate(events(long_one), POLICY).occurrences
    assert occ.level == "flag" and "25 s" in occ.reason
    just_under = beats(200) + condition("tab.hidden", 10, 19.5)
    assert evaluate(events(just_under), POLICY).occurrences[0].level == "counted"


def test_penalty_arithmetic_and_cap() -> None:
    spec = beats(100) + condition("tab.hidden", 10, 30)
    ev = evaluate(events(spec), POLICY)
    assert ev.explanation == [{"kind": "tab.hidden", "occurrences": 1, "seconds": 30.0,
                               "penalty": 6.0, "why": ev.explanation[0]["why"]}]
    assert ev.score == 94  # 100 - (3 + 0.5 min x 6)
    many = beats(2000) + [s for i in range(30) for s in condition("tab.hidden", 10 + 60 * i, 5)]
    capped = evaluate(events(many), POLICY)
    assert capped.explanation[0]["penalty"] == 30 and capped.score == 70


def test_condition_still_open_at_the_end_lasts_until_then() -> None:
    spec = [*beats(100), (40, "tab.hidden", {"phase": "start"})]
    (occ,) = evaluate(events(spec), POLICY).occurrences
    assert occ.duration == 60.0


def test_heartbeat_gaps_found_and_charged() -> None:
    spec = beats(200, skip=(50, 110))  # silence from 45 s to 110 s
    ev = evaluate(events(spec), POLICY, start_t=T0, end_t=T0 + 200)
    assert [(g.start - T0, g.end - T0) for g in ev.gaps] == [(45.0, 110.0)]
    assert ev.score == 96 and ev.explanation[-1]["kind"] == "heartbeat.gap"
    # silence at the start and end of the session counts too (bounded by start/end)
    late = evaluate(events(beats(100)), POLICY, start_t=T0 - 60, end_t=T0 + 170)
    assert len(late.gaps) == 2
    # charged per gap, capped
    holes = [b for b in beats(1000) if int(b[0]) % 100 < 50]
    capped = evaluate(events(holes), POLICY)
    assert len(capped.gaps) >= 9 and capped.explanation[-1]["penalty"] == 10


def test_score_is_pure_and_survives_a_file_round_trip(tmp_path: Path) -> None:
    built = build_session(tmp_path / "s.aiq", seed=5)
    policy = Policy.default()
    meta = built.record.meta
    assert built.record.seal is not None
    sealed_at = json.loads(unpack_signed(built.record.seal)[0])
    a = evaluate(built.envelopes, policy, start_t=meta["created"],
                 end_t=sealed_at["sealed_at"]).to_json()
    b = evaluate(list(built.envelopes), Policy.from_toml(default_policy_text()),
                 start_t=meta["created"], end_t=sealed_at["sealed_at"]).to_json()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    verdict = verify_record(built.record).to_json()
    again = verify_record(type(built.record).load(built.path)).to_json()
    for key in ("score", "explanation", "warnings", "flags", "gaps"):
        assert json.dumps(verdict[key], sort_keys=True) == json.dumps(a[key], sort_keys=True)
        assert json.dumps(again[key], sort_keys=True) == json.dumps(a[key], sort_keys=True)
    assert a["score"] < 100 and a["explanation"]


finding = st.sampled_from(["face.absent", "face.multiple", "gaze.away", "tab.hidden",
                           "camera.blocked", "paste", "copy", "window.blur", "unknown.kind"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1000), finding,
                          st.sampled_from(["start", "end", "instant", None]),
                          st.one_of(st.none(), st.floats(-10, 1e6), st.just(1e300))),
                max_size=60),
       st.booleans())
def test_score_bounded_and_deterministic(spec: list[tuple[float, str, str | None, float | None]],
                                         with_beats: bool) -> None:
    items: list[tuple[float, str, dict[str, Any]]] = []
    for t, kind, phase, duration in spec:
        data: dict[str, Any] = {}
        if phase:
            data["phase"] = phase
        if duration is not None:
            data["duration"] = duration
        items.append((t, kind, data))
    if with_beats:
        items += beats(1000, every=7)
    evs = events(items)
    for policy in (Policy.default(), POLICY):
        first = evaluate(evs, policy).to_json()
        assert 0 <= first["score"] <= 100
        assert json.dumps(first, sort_keys=True, allow_nan=False) == json.dumps(
            evaluate(list(evs), policy).to_json(), sort_keys=True, allow_nan=False)


def test_hundreds_of_findings_floor_at_zero() -> None:
    spec = [s for i in range(200) for k in ("face.multiple", "face.absent", "tab.hidden",
                                            "camera.blocked", "camera.frozen", "camera.off")
            for s in condition(k, 10 + 100 * i, 40)]
    spec += [(10 + 100 * i + 50, "paste", {"phase": "instant"}) for i in range(200)]
    assert evaluate(events(spec), Policy.default()).score == 0


def test_no_events() -> None:
    ev = evaluate([], Policy.default())
    assert ev.score == 100 and ev.explanation
    silent = evaluate([], Policy.default(), start_t=T0, end_t=T0 + 10)
    assert silent.score == 100 and silent.gaps == []


def test_a_silent_session_is_one_long_gap() -> None:
    """A candidate app that sends nothing at all is not a clean record."""
    ev = evaluate([], POLICY, start_t=T0, end_t=T0 + 3600)
    assert [(g.start - T0, g.end - T0, g.kind) for g in ev.gaps] == [(0.0, 3600.0, "heartbeat")]
    assert ev.score < 100 and ev.explanation[-1]["kind"] == "heartbeat.gap"


def test_a_stopped_proctor_shows_while_the_page_beats_on() -> None:
    page = [(t, "browser.heartbeat", {}) for t, _, _ in beats(200)]
    proctor = beats(200, skip=(60, 200))  # the proctor stops after 55 s
    ev = evaluate(events(page + proctor), POLICY, start_t=T0, end_t=T0 + 200)
    assert [(g.start - T0, g.kind) for g in ev.gaps] == [(55.0, "proctor.heartbeat")]


# --- the host's clock: arrivals for gaps, signed start and end for durations -----------------
def test_heartbeats_that_arrive_late_do_not_fill_a_gap() -> None:
    """A 60 s silence, then 12 heartbeats back-dated into it, all arriving at once."""
    before = beats(30)
    backfill = [(35.0 + 5 * i, "proctor.heartbeat", {}) for i in range(12)]
    evs = events(before + backfill)
    signed_gaps = evaluate(evs, POLICY, start_t=T0, end_t=T0 + 95).gaps
    assert signed_gaps == []  # on the signed times the silence is filled
    arrivals = [T0 + t for t, _, _ in before] + [T0 + 90.0 + 0.01 * i for i in range(12)]
    ev = evaluate(evs, POLICY, start_t=T0, end_t=T0 + 95, arrivals=arrivals)
    assert [(g.start - T0, g.end - T0) for g in ev.gaps] == [(30.0, 90.0)]
    assert ev.explanation[-1]["kind"] == "heartbeat.gap"
    with pytest.raises(ValueError):
        evaluate(evs, POLICY, arrivals=arrivals[:-1])


def test_a_condition_lasts_from_its_signed_start_to_its_signed_end() -> None:
    """`data.duration` is never read: the detector's own start and end decide, else the
    start and end envelopes' signed times."""
    claims = [(0.0, "face.absent", {"phase": "start", "start": T0}),
              (60.0, "face.absent", {"phase": "end", "start": T0, "end": T0 + 60,
                                     "duration": 0.1})]
    (occ,) = evaluate(events(claims), Policy.default()).occurrences
    assert occ.duration == 60.0
    bare = [(0.0, "face.absent", {"phase": "start"}),
            (60.0, "face.absent", {"phase": "end", "duration": 0.1})]
    (occ,) = evaluate(events(bare), Policy.default()).occurrences
    assert occ.duration == 60.0
    reversed_ = [(0.0, "face.absent", {"phase": "start"}),
                 (45.0, "face.absent", {"phase": "end", "start": T0 + 60, "end": T0})]
    (occ,) = evaluate(events(reversed_), Policy.default()).occurrences
    assert occ.duration == 45.0  # a detector interval out of order: the envelopes' span


def test_the_timeline_is_moved_onto_the_host_clock_by_the_offset() -> None:
    """A candidate clock 40 s ahead: the same occurrences, at the host's times; a condition
    still open at the end lasts until the host's end, not 40 s less."""
    spec = [(0.0, "tab.hidden", {"phase": "start"}), (10.0, "paste", {"phase": "instant"})]
    skewed = events([(t + 40.0, k, d) for t, k, d in spec])
    ev = evaluate(skewed, Policy.default(), start_t=T0, end_t=T0 + 30, offset=40.0,
                  arrivals=[T0 + 0.1, T0 + 10.1])
    honest = evaluate(events(spec), Policy.default(), start_t=T0, end_t=T0 + 30,
                      arrivals=[T0 + 0.1, T0 + 10.1])
    assert ev.to_json() == honest.to_json()
    assert [(o.kind, o.start - T0, o.duration) for o in ev.occurrences] == [
        ("tab.hidden", 0.0, 30.0), ("paste", 10.0, 0.0)]
