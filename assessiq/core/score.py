"""Escalation (warnings for the candidate, flags for the interviewer) and the integrity score.

Everything here is a pure function of the verified events and the policy: the same inputs give
the same result on any machine, so `assessiq verify` recomputes exactly what the host showed.

The timeline is the host's clock. Heartbeat gaps are measured on when the host received each
heartbeat (`arrivals`), so heartbeats sent late — back-dated, or held back — never fill a
silence; other times are the signed ones moved onto the host's clock by the candidate's clock
offset measured at join. A condition lasts from its signed start to its signed end (its
`data.start`/`data.end`, else the start and end envelopes' signed times); a free
`data.duration` field is never read.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .integrity import Envelope, clock_rule
from .kinds import HEARTBEAT, INSTANT, KINDS
from .policy import Policy, ResumeRule
from .resume import RESUMED, host_windows

__all__ = ["Evaluation", "Gap", "Occurrence", "Resumed", "evaluate", "evaluate_session"]


@dataclass(frozen=True)
class Occurrence:
    """One counted occurrence of a kind, and what it escalated to."""

    kind: str
    seq: int
    start: float
    duration: float
    level: str  # "counted" | "warning" | "flag"
    reason: str


@dataclass(frozen=True)
class Gap:
    start: float
    end: float
    kind: str = "heartbeat"  # whose heartbeats stopped; "heartbeat" when none came at all

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Resumed:
    """A restart as the policy counted it. `side` "candidate": its `session.resumed` event
    (`seq`), `at` when the host received it, `away` the silence it closed on the host's clock
    (0 when none, or when an earlier restart already counted that silence). `side` "host":
    `at` when the host came back, `away` how long it was down (never counted)."""

    side: str
    at: float
    away: float
    penalty: float
    seq: int | None = None


@dataclass
class Evaluation:
    score: int
    occurrences: list[Occurrence] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    explanation: list[dict[str, Any]] = field(default_factory=list)
    restarts: list[Resumed] = field(default_factory=list)

    @property
    def warnings(self) -> list[Occurrence]:
        return [o for o in self.occurrences if o.level in ("warning", "flag")]

    @property
    def flags(self) -> list[Occurrence]:
        return [o for o in self.occurrences if o.level == "flag"]

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "warnings": [asdict(o) for o in self.warnings],
            "flags": [asdict(o) for o in self.flags],
            "gaps": [{"start": g.start, "end": g.end, "duration": g.duration, "kind": g.kind}
                     for g in self.gaps],
            "explanation": self.explanation,
            "restarts": [asdict(r) for r in self.restarts],
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _span(began: Envelope | None, env: Envelope) -> float:
    """How long the condition that `env` ends lasted: from its signed start to its signed end.

    The detector's own times (`data.start` and `data.end` of the end event, both signed, on
    the detector's clock, before the hysteresis confirmed them) when both are there and in
    order; else the signed times of the start and end envelopes. `data.duration` is a free
    field that repeats `end - start`: it is never read, so it cannot contradict them."""
    start, end = _number(env.data.get("start")), _number(env.data.get("end"))
    if start is not None and end is not None and end >= start and math.isfinite(end - start):
        return end - start
    return max(0.0, env.t - began.t) if began is not None else 0.0


def _conditions(
    events: list[Envelope], end_t: float, offset: float
) -> list[tuple[str, int, float, float]]:
    """(kind, seq, start, duration) for every condition and instant in the log; `start` on
    the host's clock (a signed time minus the candidate's clock `offset`).

    A condition is counted at its "end"; one still open at the end of the log (`end_t`, the
    host's clock) lasts until then.
    """
    out: list[tuple[str, int, float, float]] = []
    open_: dict[str, Envelope] = {}
    prev_t: float | None = None  # the signed time of the event before this one, any kind
    for env in events:
        info = KINDS.get(env.kind)
        before, prev_t = prev_t, env.t
        if info is None or info.shape == HEARTBEAT:
            continue
        if env.kind == RESUMED:
            # (counted by the [resume] rule, not here.) The app that saw the open conditions
            # died: each ends at the last event that app signed — the one before this, as
            # the restarted app signs `session.resumed` before anything else — never at what
            # the event claims (`last_seen`: a modified app could claim a condition away).
            # Its restart is not counted again as them.
            for kind, opened in open_.items():
                end = max(opened.t, before if before is not None else opened.t)
                out.append((kind, opened.seq, opened.t - offset, end - opened.t))
            open_.clear()
            continue
        phase = env.data.get("phase")
        if info.shape == INSTANT or phase == "instant":
            out.append((env.kind, env.seq, env.t - offset, 0.0))
        elif phase == "start":
            open_.setdefault(env.kind, env)
        elif phase == "end":
            began = open_.pop(env.kind, None)
            at = (began or env).t - offset
            out.append((env.kind, began.seq if began else env.seq, at, _span(began, env)))
    for kind, began in open_.items():
        out.append((kind, began.seq, began.t - offset, max(0.0, end_t - (began.t - offset))))
    out.sort(key=lambda c: (c[2], c[1]))
    return out


def _without(a: float, b: float, windows: Sequence[tuple[float, float]]
             ) -> list[tuple[float, float]]:
    """The parts of the interval (a, b) outside every window (sorted, as `host_windows`)."""
    parts = [(a, b)]
    for w0, w1 in windows:
        parts = [p for x, y in parts for p in ((x, min(y, w0)), (max(x, w1), y)) if p[1] > p[0]]
    return parts


Silence = tuple[float, float, str]
"""(start, end, kind): a time between heartbeats of one stream, on the host's clock."""


def _silences(events: list[Envelope], times: list[float], start_t: float, end_t: float,
              excused: Sequence[tuple[float, float]], longer: float = 0.0) -> list[Silence]:
    """Every silence longer than `longer` between heartbeats, per heartbeat stream, on the
    host's clock (`times[i]` is when the host received `events[i]`), outside the `excused`
    windows (the host was down): the proctor and the page beat separately, so a stopped
    proctor shows even while the page goes on. A session with no heartbeat at all is one
    silence from its start to its end."""
    streams: dict[str, list[float]] = {}
    for e, t in zip(events, times, strict=True):
        info = KINDS.get(e.kind)
        if info is not None and info.shape == HEARTBEAT:
            streams.setdefault(e.kind, []).append(t)
    if not streams:
        streams["heartbeat"] = []
    out: list[Silence] = []
    for kind, beats in streams.items():
        marks = [start_t, *sorted(beats), end_t]
        if excused:
            out += [(x, y, kind) for a, b in itertools.pairwise(marks) if b - a > longer
                    for x, y in _without(a, b, excused) if y - x > longer]
        else:
            out += [(a, b, kind) for a, b in itertools.pairwise(marks) if b - a > longer]
    return out


def _past_host_down(end: float, through: dict[float, float]) -> float:
    """Where a silence that ends at `end` ends for a restart closing it: past the end of the
    host's down window (`through`: start → end) that began there, if one did."""
    while through.get(end, end) > end:
        end = through[end]
    return end


def _candidate_restarts(
    events: list[Envelope], times: list[float], silences: list[Silence], slack: float,
    reconnect: float, excused: Sequence[tuple[float, float]] = (),
) -> tuple[list[tuple[Envelope, float, float]], set[int], list[Silence]]:
    """The candidate's restarts as the host saw them: ((event, arrival, away) for each
    `session.resumed` event, the silences they closed (indices into `silences`), and what is
    left of those silences after each restart's `reconnect` seconds).

    What the candidate's app claims is not read: its time away is the silence its restart
    closed, on the host's clock — in each heartbeat stream, the silence that began before the
    event arrived and had not ended `slack` seconds before it (the app resends what it had
    not had receipted, then the restart, then beats again), up to the event's arrival. A
    stream still silent after that (its page or proctor not yet back) has `reconnect` seconds
    to beat again, like after the host's restart; what is left is an ordinary silence. A
    silence cut short by the host's going down (an `excused` window began where it ends) goes
    on, for this, until that window ends: the candidate's app that died first and came back
    after the host's closes its own time before the host died. A silence is counted for one
    restart only, the first that closes it; a restart that closes none was away for 0 s as
    far as the host can tell."""
    out: list[tuple[Envelope, float, float]] = []
    taken: set[int] = set()
    left: list[Silence] = []
    streams: dict[str, list[int]] | None = None
    for env, at in zip(events, times, strict=True):
        if env.kind != RESUMED:
            continue
        if streams is None:  # per stream, in order (a stream's silences do not overlap)
            streams = {}
            for i in sorted(range(len(silences)), key=lambda i: silences[i][0]):
                streams.setdefault(silences[i][2], []).append(i)
            through = dict(excused)
            bounds = {k: ([silences[i][0] for i in ix],
                          [_past_host_down(silences[i][1], through) for i in ix])
                      for k, ix in streams.items()}
        away = 0.0
        for kind, ix in streams.items():
            if kind == "heartbeat":
                continue  # (no heartbeat at all: nothing shows when the app was gone)
            starts, ends = bounds[kind]
            for j in range(bisect_left(ends, at - slack), bisect_left(starts, at)):
                i = ix[j]
                if i in taken:
                    continue
                taken.add(i)
                start, end, _ = silences[i]
                away = max(away, min(end, at) - start)
                if end > at + reconnect:
                    left.append((at + reconnect, end, kind))
        out.append((env, at, away))
    return out, taken, left


def _resume_penalties(aways: list[float], rule: ResumeRule) -> list[float]:
    """Each candidate restart's cost by the [resume] rule, before the cap."""
    out = []
    for n, away in enumerate(aways, 1):
        beyond = max(0.0, away - rule.grace)
        base = rule.weight if n > rule.free or beyond > 0 else 0.0
        out.append(base + rule.per_minute * beyond / 60.0)
    return out


def evaluate(
    events: Iterable[Envelope], policy: Policy, *, start_t: float | None = None,
    end_t: float | None = None, arrivals: Sequence[float] | None = None, offset: float = 0.0,
    host_down: Sequence[tuple[float, float]] = (),
) -> Evaluation:
    """Escalate every occurrence and compute the score (0–100) with its itemised explanation.

    `arrivals[i]` is when the host received `events[i]` (its clock): heartbeat gaps are
    measured on them. Without them (the candidate's own view) the signed times stand in.
    `offset` is the candidate's clock minus the host's, measured at join. `start_t`/`end_t`
    bound the session for heartbeat gaps, on the host's clock (default: the first/last event).
    `host_down` are the host's own restarts, `(last_seen, at)` on its clock: no heartbeat is
    due from `last_seen` until the policy's `[resume] reconnect` seconds after `at`. The
    candidate's restarts (`session.resumed` events) are counted by the `[resume]` rule, and
    the heartbeat silences they closed are not also counted as gaps.
    """
    evs = list(events)
    if not evs and (start_t is None or end_t is None):
        return Evaluation(score=100, explanation=[{"why": "no events: nothing to explain"}])
    if arrivals is not None and len(arrivals) != len(evs):
        raise ValueError("one arrival time per event is needed")
    times = list(arrivals) if arrivals is not None else [e.t - offset for e in evs]
    start = times[0] if start_t is None else start_t
    end = times[-1] if end_t is None else end_t
    occurrences: list[Occurrence] = []
    counts: dict[str, int] = {}
    totals: dict[str, float] = {}
    for kind, seq, t0, duration in _conditions(evs, end, offset):
        rule = policy.rule(kind)
        if rule is None or duration < rule.min_duration:
            continue
        n = counts[kind] = counts.get(kind, 0) + 1
        totals[kind] = totals.get(kind, 0.0) + duration
        if n >= rule.flag_after:
            level, reason = "flag", f"occurrence {n} (flag from {rule.flag_after})"
        elif rule.flag_duration and duration >= rule.flag_duration:
            level, reason = "flag", f"lasted {duration:.0f} s (flag at {rule.flag_duration:.0f} s)"
        elif n >= rule.warn_after:
            level, reason = "warning", f"occurrence {n} (warning from {rule.warn_after})"
        else:
            level, reason = "counted", f"occurrence {n}"
        occurrences.append(Occurrence(kind, seq, t0, round(duration, 3), level, reason))

    explanation: list[dict[str, Any]] = []
    penalty_total = 0.0
    for kind in sorted(counts):
        rule = policy.rule(kind)
        assert rule is not None
        raw = rule.weight * counts[kind] + rule.per_minute * totals[kind] / 60.0
        penalty = round(min(rule.max_penalty, raw), 2)
        penalty_total += penalty
        explanation.append({
            "kind": kind, "occurrences": counts[kind], "seconds": round(totals[kind], 1),
            "penalty": penalty,
            "why": f"{counts[kind]} × {rule.weight:g} + {totals[kind] / 60:.1f} min × "
                   f"{rule.per_minute:g}, capped at {rule.max_penalty:g}",
        })
    hb, rr = policy.heartbeats, policy.resume
    excused = sorted((a, b + rr.reconnect) for a, b in host_down)
    # (every silence when a restart may have closed one; else only those long enough to count)
    longer = 0.0 if any(e.kind == RESUMED for e in evs) else hb.max_gap
    silences = _silences(evs, times, start, end, excused, longer)
    resumed, closed, left = _candidate_restarts(evs, times, silences, hb.max_gap, rr.reconnect,
                                                excused)
    gaps = sorted((Gap(a, b, kind) for i, (a, b, kind) in enumerate(silences) if i not in closed
                   and b - a > hb.max_gap), key=lambda g: (g.start, g.kind))
    if left:
        gaps = sorted(gaps + [Gap(a, b, kind) for a, b, kind in left if b - a > hb.max_gap],
                      key=lambda g: (g.start, g.kind))
    costs = _resume_penalties([away for _, _, away in resumed], rr)
    restarts = [Resumed("host", b, round(b - a, 3), 0.0) for a, b in sorted(host_down)]
    restarts += [Resumed("candidate", at, round(away, 3), round(cost, 2), env.seq)
                 for (env, at, away), cost in zip(resumed, costs, strict=True)]
    restarts.sort(key=lambda r: (r.at, r.side != "host"))
    if resumed:
        penalty = round(min(rr.max_penalty, sum(costs)), 2)
        penalty_total += penalty
        away = sum(a for _, _, a in resumed)
        explanation.append({
            "kind": RESUMED, "occurrences": len(resumed), "seconds": round(away, 1),
            "penalty": penalty,
            "why": f"{len(resumed)} restart(s) of the candidate's app, {away:.0f} s away in all "
                   f"on the interviewer's clock: {rr.free} back within {rr.grace:g} s "
                   f"free, any other × {rr.weight:g}, + {rr.per_minute:g} per minute "
                   f"beyond {rr.grace:g} s, capped at {rr.max_penalty:g}",
        })
    if host_down:
        down = sum(b - a for a, b in host_down)
        explanation.append({
            "kind": "host.resumed", "occurrences": len(host_down), "seconds": round(down, 1),
            "penalty": 0.0,
            "why": f"the interviewer's app restarted {len(host_down)} time(s), {down:.0f} s "
                   f"down in all: never counted against the candidate (no heartbeat is due "
                   f"while it is down, nor for {rr.reconnect:g} s after)",
        })
    if gaps:
        penalty = round(min(hb.max_penalty, hb.weight * len(gaps)), 2)
        penalty_total += penalty
        explanation.append({
            "kind": "heartbeat.gap", "occurrences": len(gaps),
            "seconds": round(sum(g.duration for g in gaps), 1), "penalty": penalty,
            "why": f"{len(gaps)} silence(s) longer than {hb.max_gap:g} s × {hb.weight:g}, "
                   f"capped at {hb.max_penalty:g}",
        })
    score = max(0, min(100, round(100 - penalty_total)))
    return Evaluation(score=score, occurrences=occurrences, gaps=gaps, explanation=explanation,
                      restarts=restarts)


def evaluate_session(
    meta: dict[str, Any], events: Iterable[Envelope], policy: Policy, *,
    arrivals: Sequence[float] | None, end_t: float | None,
) -> Evaluation:
    """The session's evaluation from its metadata, as `verify` computes it from the sealed
    record and as the interviewer's live page shows it: one function, so the two cannot
    differ for the same log. Heartbeats are due from when the candidate joined (waiting in
    the lobby is not silence; records without that mark count from their creation); the
    candidate's clock offset is the one recorded at join; the host's own restarts are the
    ones its metadata records (`core.resume.host_windows`). `end_t` is the seal's time, or
    now for a live session."""
    start = meta.get("joined", meta.get("created"))
    clock, _ = clock_rule(meta)
    return evaluate(
        events, policy,
        start_t=float(start) if isinstance(start, int | float) and math.isfinite(start) else None,
        end_t=end_t, arrivals=arrivals, offset=clock.offset if clock else 0.0,
        host_down=host_windows(meta),
    )
