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
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .integrity import Envelope, clock_rule
from .kinds import HEARTBEAT, INSTANT, KINDS
from .policy import Policy

__all__ = ["Evaluation", "Gap", "Occurrence", "evaluate"]


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


@dataclass
class Evaluation:
    score: int
    occurrences: list[Occurrence] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    explanation: list[dict[str, Any]] = field(default_factory=list)

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
    for env in events:
        info = KINDS.get(env.kind)
        if info is None or info.shape == HEARTBEAT:
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


def _gaps(events: list[Envelope], times: list[float], start_t: float, end_t: float,
          max_gap: float) -> list[Gap]:
    """Silences longer than `max_gap`, per heartbeat stream, on the host's clock (`times[i]`
    is when the host received `events[i]`): the proctor and the page beat separately, so a
    stopped proctor shows even while the page goes on. A session with no heartbeat at all is
    one silence from its start to its end."""
    streams: dict[str, list[float]] = {}
    for e, t in zip(events, times, strict=True):
        info = KINDS.get(e.kind)
        if info is not None and info.shape == HEARTBEAT:
            streams.setdefault(e.kind, []).append(t)
    if not streams:
        streams["heartbeat"] = []
    gaps = []
    for kind, beats in streams.items():
        marks = [start_t, *sorted(beats), end_t]
        gaps += [Gap(a, b, kind) for a, b in itertools.pairwise(marks) if b - a > max_gap]
    return sorted(gaps, key=lambda g: (g.start, g.kind))


def evaluate(
    events: Iterable[Envelope], policy: Policy, *, start_t: float | None = None,
    end_t: float | None = None, arrivals: Sequence[float] | None = None, offset: float = 0.0,
) -> Evaluation:
    """Escalate every occurrence and compute the score (0–100) with its itemised explanation.

    `arrivals[i]` is when the host received `events[i]` (its clock): heartbeat gaps are
    measured on them. Without them (the candidate's own view) the signed times stand in.
    `offset` is the candidate's clock minus the host's, measured at join. `start_t`/`end_t`
    bound the session for heartbeat gaps, on the host's clock (default: the first/last event).
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
    hb = policy.heartbeats
    gaps = _gaps(evs, times, start, end, hb.max_gap)
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
    return Evaluation(score=score, occurrences=occurrences, gaps=gaps, explanation=explanation)


def evaluate_session(
    meta: dict[str, Any], events: Iterable[Envelope], policy: Policy, *,
    arrivals: Sequence[float] | None, end_t: float | None,
) -> Evaluation:
    """The session's evaluation from its metadata, as `verify` computes it from the sealed
    record and as the interviewer's live page shows it: one function, so the two cannot
    differ for the same log. Heartbeats are due from when the candidate joined (waiting in
    the lobby is not silence; records without that mark count from their creation); the
    candidate's clock offset is the one recorded at join. `end_t` is the seal's time, or now
    for a live session."""
    start = meta.get("joined", meta.get("created"))
    clock, _ = clock_rule(meta)
    return evaluate(
        events, policy,
        start_t=float(start) if isinstance(start, int | float) and math.isfinite(start) else None,
        end_t=end_t, arrivals=arrivals, offset=clock.offset if clock else 0.0,
    )
