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

__all__ = ["Replay", "TimelineItem"]

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
        self._running: Running | None = None
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

    def provenance_at(self, n: int) -> Provenance:
        """Who wrote each character of the code as it was after its first `n` updates, and
        how (`core.provenance`, fed one update at a time while the replay plays forward;
        started over when it goes back)."""
        if self._running is None or n < self._running.rows:
            meta = self.record.meta
            self._running = Running(generated_ranges(meta), sides_of(meta))
        running = self._running
        running.add(self.record.updates[running.rows:n])
        log = self.verdict.log
        return running.result(paste_marks(log.events, log.arrivals) if log else ())

    def updates_until(self, t: float) -> int:
        """How many of the document's updates were made by time `t`."""
        return bisect.bisect_right(self.times, t)

    def items_until(self, t: float) -> list[TimelineItem]:
        return [i for i in self.items if i.t <= t]
