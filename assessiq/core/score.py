"""Escalation (warnings for the candidate, flags for the interviewer) and the integrity score.

Everything here is a pure function of the verified events and the policy: the same inputs give
the same result on any machine, so `assessiq verify` recomputes exactly what the host showed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from .integrity import Envelope
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


def _conditions(events: list[Envelope], end_t: float) -> list[tuple[str, int, float, float]]:
    """(kind, seq, start, duration) for every condition and instant in the log.

    A condition is counted at its "end" (duration from its data, else from the envelopes'
    signed times); one still open at the end of the log lasts until then.
    """
    out: list[tuple[str, int, float, float]] = []
    open_: dict[str, Envelope] = {}
    for env in events:
        info = KINDS.get(env.kind)
        if info is None or info.shape == HEARTBEAT:
            continue
        phase = env.data.get("phase")
        if info.shape == INSTANT or phase == "instant":
            out.append((env.kind, env.seq, env.t, 0.0))
        elif phase == "start":
            open_.setdefault(env.kind, env)
        elif phase == "end":
            began = open_.pop(env.kind, None)
            start = began.t if began else (_number(env.data.get("start")) or env.t)
            duration = _number(env.data.get("duration"))
            if duration is None or duration < 0:
                duration = max(0.0, env.t - start)
            out.append((env.kind, began.seq if began else env.seq, start, duration))
    for kind, began in open_.items():
        out.append((kind, began.seq, began.t, max(0.0, end_t - began.t)))
    out.sort(key=lambda c: (c[2], c[1]))
    return out


def _gaps(events: list[Envelope], start_t: float, end_t: float, max_gap: float) -> list[Gap]:
    """Silences longer than `max_gap`, per heartbeat stream: the proctor and the page beat
    separately, so a stopped proctor shows even while the page goes on. A session with no
    heartbeat at all is one silence from its start to its end."""
    streams: dict[str, list[float]] = {}
    for e in events:
        info = KINDS.get(e.kind)
        if info is not None and info.shape == HEARTBEAT:
            streams.setdefault(e.kind, []).append(e.t)
    if not streams:
        streams["heartbeat"] = []
    gaps = []
    for kind, beats in streams.items():
        marks = [start_t, *beats, end_t]
        gaps += [Gap(a, b, kind) for a, b in itertools.pairwise(marks) if b - a > max_gap]
    return sorted(gaps, key=lambda g: (g.start, g.kind))


def evaluate(
    events: Iterable[Envelope], policy: Policy, *, start_t: float | None = None,
    end_t: float | None = None,
) -> Evaluation:
    """Escalate every occurrence and compute the score (0–100) with its itemised explanation.

    `start_t`/`end_t` bound the session for heartbeat gaps (default: the first/last event).
    """
    evs = list(events)
    if not evs and (start_t is None or end_t is None):
        return Evaluation(score=100, explanation=[{"why": "no events: nothing to explain"}])
    start = evs[0].t if start_t is None else start_t
    end = evs[-1].t if end_t is None else end_t
    occurrences: list[Occurrence] = []
    counts: dict[str, int] = {}
    totals: dict[str, float] = {}
    for kind, seq, t0, duration in _conditions(evs, end):
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
    gaps = _gaps(evs, start, end, hb.max_gap)
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
