"""The code's provenance as people read it: the report's Markdown and coloured HTML, and the
live pages' incremental computation (`LiveProvenance`). The NiceGUI panels that show it are
in `ui/provenance_view.py`.

Every view shows the result of the one core function (`core.provenance`): the report and the
replay take it from `verify_record`'s verdict; the live pages compute it from their own
session file's rows and verified events (`live_provenance`), the same rows the sealed record
will hold. Colours and words are here, nothing else.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from typing import Any

from ..core.provenance import (
    Provenance,
    Running,
    from_parts,
    generated_ranges,
    paste_marks,
    sides_of,
)
from ..core.segments import UpdateRow, decode_batch, decode_segment

__all__ = ["LEGEND", "MAX_COLOURED_CHARS", "REFRESH_S", "LiveProvenance", "code_html",
           "legend_html", "live_provenance", "markdown_lines", "report_html", "rows_after",
           "summary_line"]

log = logging.getLogger(__name__)

LEGEND: dict[tuple[str, str], tuple[str, str]] = {
    ("candidate", "typed"): ("typed by the candidate", "#ffffff"),
    ("candidate", "pasted"): ("pasted by the candidate (with its paste event)", "#ffd8a8"),
    ("candidate", "burst"): ("inserted at once by the candidate, no paste event", "#ffa8a8"),
    ("candidate", "transcription"): ("typed at a transcription cadence", "#e5dbff"),
    ("interviewer", "typed"): ("typed by the interviewer", "#d0ebff"),
    ("interviewer", "pasted"): ("pasted by the interviewer", "#a5d8ff"),
    ("interviewer", "burst"): ("inserted at once by the interviewer", "#a5d8ff"),
    ("interviewer", "transcription"): ("typed by the interviewer (even cadence)", "#d0ebff"),
    ("editor", "starter"): ("the starter code (the editor)", "#e9ecef"),
    ("editor", "auto"): ("indentation and closing brackets (the editor)", "#f1f3f5"),
}
_UNKNOWN = ("by an unknown writer", "#fff3bf")
REFRESH_S = 3.0
"""How often the live panels recompute (at most; longer when a recompute takes long)."""
MAX_COLOURED_CHARS = 200_000
"""Longer code is not coloured on the live page (the report colours it all)."""
OFF_LOOP_ROWS = 500
"""From this many new updates on, the live pages analyse them in a worker thread, so the app's
event loop (which also serves the peer session's heartbeats and receipts) keeps running; fewer
take a few ms at most (~10 us an update, measured) and are analysed in place."""


def summary_line(sentence: str) -> str:
    """A summary as a sentence: capital first, full stop last."""
    return sentence[:1].upper() + sentence[1:] + "."


def _style(author: str, how: str) -> tuple[str, str]:
    return LEGEND.get((author, how), _UNKNOWN)


def code_html(prov: Provenance) -> str:
    """The final code as a <pre>, each stretch coloured by who wrote it and how."""
    # dark text on white whatever the page's theme: the colours are chosen for white paper
    out = ['<pre class="aiq-provenance" style="padding:.5em;border:1px solid #ccc;'
           'overflow:auto;line-height:1.35;background:#ffffff;color:#1a1a1a">']
    for s in prov.segments:
        words, colour = _style(s.author, s.how)
        text = html.escape(prov.text[s.start:s.end])
        if s.author == "candidate" and s.how == "typed":
            out.append(text)
        else:
            out.append(f'<span data-prov="{s.author}-{s.how}" title="{html.escape(words)}" '
                       f'style="background:{colour}">{text}</span>')
    out.append("</pre>")
    return "".join(out)


def legend_html(prov: Provenance) -> str:
    """The colours that appear in `prov`, with their share of the code."""
    items = []
    for author, by in sorted(prov.counts.items()):
        for how, n in sorted(by.items()):
            words, colour = _style(author, how)
            share = 100 * n / max(1, len(prov.text))
            items.append(f'<span style="background:{colour};color:#1a1a1a;border:1px solid '
                         f'#ccc;padding:0 .4em;margin-right:.6em">{html.escape(words)}: '
                         f'{share:.0f} %</span>')
    return f'<p class="aiq-provenance-legend">{"".join(items)}</p>'


def report_html(prov: Provenance | None) -> str:
    """The report's HTML section: the summary, the legend and the coloured code."""
    if prov is None:
        return "<h2>The final code by provenance</h2><p>The history cannot be replayed.</p>"
    summary = html.escape(summary_line(prov.sentence()))
    return (f"<h2>The final code by provenance</h2><p>{summary}</p>"
            f"{legend_html(prov)}{code_html(prov)}")


def markdown_lines(prov: Provenance | None, clock: Callable[[float], str]) -> list[str]:
    """The report's Markdown section: the summary, what each part of the code is, and
    which lines were not typed by the candidate."""
    lines = ["", "## Who wrote the code", ""]
    if prov is None:
        return [*lines, "- the document history cannot be replayed", ""]
    lines += [f"{summary_line(prov.sentence())}", ""]
    for author, by in sorted(prov.counts.items()):
        for how, n in sorted(by.items()):
            lines.append(f"- {_style(author, how)[0]}: {n} characters "
                         f"({100 * n / max(1, len(prov.text)):.0f} %)")
    for p in prov.pastes:
        lines.append(f"- {clock(p['t'])} paste (event #{p['seq']}, {p['chars']} characters): "
                     f"{p['kept']} in the final code")
    for b in prov.bursts:
        lines.append(f"- {clock(b['t'])} {b['chars']} characters inserted at once by the "
                     f"{b['author']} with no paste event: {b['kept']} in the final code")
    for r in prov.transcriptions:
        lines.append(f"- {clock(r['t0'])}–{clock(r['t1'])} {r['keys']} keys by the "
                     f"{r['author']} at a transcription cadence ({r['why']}: "
                     f"{r['median_ms']:g} ms apart, spread {r['spread']:g}): {r['kept']} "
                     f"in the final code")
    for author, rhythm in prov.rhythm.items():
        lines.append(f"- the {author}'s own rhythm: {rhythm['median_ms']:g} ms between keys, "
                     f"spread {rhythm['spread']:g}, over {rhythm['keys']} keys")
    marked = _marked_lines(prov)
    if marked:
        lines += ["", "Lines not typed by the candidate:", ""]
        lines += [f"- line{'s' if a != b else ''} {a}{f'–{b}' if a != b else ''}: {words}"
                  for a, b, words in marked]
    if prov.unmatched_pastes:
        lines.append(f"- {len(prov.unmatched_pastes)} paste event(s) with no matching insert "
                     "(pasted elsewhere on the page, or nothing arrived)")
    for error in prov.errors:
        lines.append(f"- **{error}**")
    lines += ["", "> Provenance is information, not a finding: a fast, clean typist is not a "
              "cheater, and someone retyping an answer by hand looks like typing. See "
              "docs/integrity.md.", ""]
    return lines


def _marked_lines(prov: Provenance) -> list[tuple[int, int, str]]:
    """(first line, last line, words) of the lines whose visible characters were mostly
    not typed by the candidate (editor whitespace does not count)."""
    per_char = prov.per_char()
    out: list[tuple[int, int, str]] = []
    pos = 0
    for number, line in enumerate(prov.text.split("\n"), 1):
        counts: dict[tuple[str, str], int] = {}
        for i, ch in enumerate(line):
            if not ch.isspace():
                key = per_char[pos + i]
                counts[key] = counts.get(key, 0) + 1
        pos += len(line) + 1
        if not counts:
            continue
        top = max(counts.items(), key=lambda kv: kv[1])[0]
        if top == ("candidate", "typed"):
            continue
        words = _style(*top)[0]
        if out and out[-1][1] == number - 1 and out[-1][2] == words:
            out[-1] = (out[-1][0], number, words)
        else:
            out.append((number, number, words))
    return out


def live_provenance(store: Any, events: list[Any], arrivals: list[float] | None = None,
                    *, offset: float = 0.0) -> Provenance:
    """The provenance of a running session from its own session file's rows and the
    verified events (the host's: with their arrival times; the candidate's own: their
    signed times), computed from the start."""
    store.flush()
    return from_parts(list(store.updates()), store.meta(), events, arrivals, offset=offset)


def rows_after(store: Any, seq: int) -> list[UpdateRow]:
    """The session file's document updates after update `seq`, in order, read in one
    snapshot (a compaction moving rows meanwhile can neither hide nor repeat one)."""
    store.flush()
    db = store._db
    db.execute("BEGIN")
    try:
        segments = db.execute("SELECT blob FROM segments WHERE last_seq > ? ORDER BY first_seq",
                              (seq,)).fetchall()
        single = db.execute("SELECT seq, t, origin, data FROM updates WHERE seq > ? "
                            "ORDER BY seq", (seq,)).fetchall()
        batches = db.execute("SELECT first_seq, blob FROM batches WHERE last_seq > ? ORDER BY "
                             "first_seq", (seq,)).fetchall() if store._batches else []
    finally:
        db.execute("COMMIT")
    rows = [r for (blob,) in segments for r in decode_segment(blob) if r.seq > seq]
    rows += [UpdateRow(*r) for r in single]
    rows += [r for first, blob in batches for r in decode_batch(blob, first) if r.seq > seq]
    rows.sort(key=lambda r: r.seq)
    return rows


class LiveProvenance:
    """A running session's provenance, kept up to date from its session file: each call
    reads only the updates recorded since the last (`core.provenance.Running`), so a long
    interview costs the live page no more than a short one."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._running: Running | None = None
        self._seq = -1
        self._last: tuple[int, Provenance] | None = None  # (events seen, the result)
        self._pending_rows = 0

    def compute(self, events: list[Any], arrivals: list[float] | None = None, *,
                offset: float = 0.0) -> Provenance:
        job = self._job(events, arrivals, offset)
        return job if isinstance(job, Provenance) else job()

    async def compute_async(self, events: list[Any], arrivals: list[float] | None = None, *,
                            offset: float = 0.0) -> Provenance:
        """`compute`, with the analysis of many new updates (`OFF_LOOP_ROWS`) in a worker
        thread. The session file is read here, on the caller's loop; the caller runs one at
        a time (`provenance_panel`)."""
        job = self._job(events, arrivals, offset)
        if isinstance(job, Provenance):
            return job
        if self._pending_rows >= OFF_LOOP_ROWS:
            return await asyncio.to_thread(job)
        return job()

    def _job(self, events: list[Any], arrivals: list[float] | None, offset: float
             ) -> Provenance | Callable[[], Provenance]:
        """Read what is new from the session file: the unchanged result, or the analysis
        left to do (touching only the `Running`, not the session file)."""
        meta = self.store.meta()
        generated = tuple(generated_ranges(meta))
        if self._running is None or self._running.generated != generated:
            self._running, self._seq = Running(generated, sides_of(meta)), -1
        rows = rows_after(self.store, self._seq)
        if rows:
            self._seq = rows[-1].seq
        elif self._last is not None and self._last[0] == len(events):
            return self._last[1]  # nothing new
        if arrivals is not None and len(arrivals) != len(events):
            arrivals = None
        marks = paste_marks(events, arrivals, offset)
        running, seen = self._running, len(events)
        self._pending_rows = len(rows)

        def job() -> Provenance:
            if rows:
                running.add(rows)
            prov = running.result(marks)
            self._last = (seen, prov)
            return prov
        return job
