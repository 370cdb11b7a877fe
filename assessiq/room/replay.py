"""A sealed session as one timeline: the code as it was typed, runs, events and notes."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc

from ..core.document import SharedDoc, apply_update_checked
from ..core.provenance import Provenance, Running, generated_ranges, paste_marks, sides_of
from ..core.record import SessionRecord
from ..core.verify import Verdict, verify_record

__all__ = ["MAX_SHADED_UPDATES", "ProvenanceCursor", "Replay", "TimelineItem"]

MAX_SHADED_UPDATES = 20_000
"""Up to this many updates, the replay shades the code by who wrote it at every moment (a
seek back recomputes from the start; provenance took 1.18 s for 100,227 updates in
docs/benchmarks.md, so about a fifth of that here); longer sessions show the code plain while
playing, and the final code shaded."""

_CHECKPOINT = 200  # keep a copy of the document every so many updates


@dataclass(frozen=True)
class TimelineItem:
    t: float
    kind: str  # "event" | "run" | "note"
    text: str
    detail: dict[str, Any] = field(default_factory=dict)


class Replay:
    """Scrub through a session record. `code_at(t)` is fast for any `t`."""

    def __init__(self, record: SessionRecord) -> None:
        self.record = record
        self.verdict: Verdict = verify_record(record)
        self.times = [row.t for row in record.updates]
        self._checkpoints: list[tuple[int, bytes]] = []  # (updates applied, state)
        doc: Doc[Any] = Doc()
        for i, row in enumerate(record.updates):
            if i % _CHECKPOINT == 0:
                self._checkpoints.append((i, doc.get_update()))
            try:
                apply_update_checked(doc, row.data)
            except ValueError:  # a damaged history: the verdict says so; replay what reads
                self.times = self.times[:i]
                break
        self.final = SharedDoc(doc)
        items: list[TimelineItem] = []
        events = self.verdict.log.events if self.verdict.log else []
        for env in events:
            if env.kind.endswith("heartbeat"):
                continue
            items.append(TimelineItem(env.t, "event", f"#{env.seq} {env.kind} "
                                      f"{env.data.get('phase', '')}".rstrip(), dict(env.data)))
        for run in record.runs:
            result = run.get("result") or {}
            stage = result.get("run") or {}
            tests = result.get("tests") or []
            ok = sum(1 for t in tests if t.get("passed"))
            items.append(TimelineItem(run["t"], "run", f"run by {run['request'].get('by')}: "
                                      f"exit {stage.get('code')}, tests {ok}/{len(tests)}",
                                      {"output": stage.get("output", ""),
                                       "source": run["request"].get("source", "")}))
        for p in record.private:
            if p["kind"] == "note" and isinstance(p["value"], dict):
                items.append(TimelineItem(p["t"], "note", str(p["value"].get("text", ""))))
        self.items = sorted(items, key=lambda i: i.t)
        stamps = self.times + [i.t for i in self.items]
        created = record.meta.get("created")
        if isinstance(created, int | float):
            stamps.append(float(created))
        self.start = min(stamps) if stamps else 0.0
        self.end = max(stamps) if stamps else 0.0

    def code_at(self, t: float) -> str:
        """The code as it was at time `t`."""
        n = bisect.bisect_right(self.times, t)
        k = max(0, (n - 1) // _CHECKPOINT) if n else 0
        doc: Doc[Any] = Doc()
        if self._checkpoints:
            applied, state = self._checkpoints[min(k, len(self._checkpoints) - 1)]
            doc.apply_update(state)
        else:
            applied = 0
        for row in self.record.updates[applied:n]:
            apply_update_checked(doc, row.data)
        return SharedDoc(doc).code_text

    def updates_until(self, t: float) -> int:
        """How many of the document's updates were made by time `t`."""
        return bisect.bisect_right(self.times, t)

    def items_until(self, t: float) -> list[TimelineItem]:
        return [i for i in self.items if i.t <= t]


class ProvenanceCursor:
    """One page's view of who wrote the code at a moment of a replay: `at(n)` is the
    provenance after the first `n` updates, fed forward one update at a time while the page
    plays and started over when it goes back. Per page, so two tabs at different moments
    never make each other start over."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        meta = replay.record.meta
        self._generated, self._sides = generated_ranges(meta), sides_of(meta)
        log = replay.verdict.log
        self._pastes = paste_marks(log.events, log.arrivals) if log else []
        self._running = Running(self._generated, self._sides)

    def at(self, n: int) -> Provenance:
        if n < self._running.rows:
            self._running = Running(self._generated, self._sides)
        self._running.add(self.replay.record.updates[self._running.rows:n])
        return self._running.result(self._pastes)
