"""Code provenance: who put each character of the final code there, and how.

A pure function of the session file's document history (every update, with its time and
origin) and the candidate's signed `paste` events: `compute(rows, pastes=..., generated=...)`.
The same inputs give the same answer on any machine; `assessiq verify`, the report, the
replay and the interviewer's live page all call it (`from_record` for a sealed record).

**Author.** Every update row is tagged with the side that wrote it (`origin`: "host" or
"candidate"; the host's record tags what arrived from the peer "candidate"). A Yjs item keeps
the client id of the page or process that wrote it, and each client's items arrive only in
rows of one side (the sync refuses a peer's update that writes with this side's clients, and
a page may write only with its own client), so `writers` maps every client id to its side from
the sealed rows alone, and a client seen under two sides is reported in `conflicts`. Text the
interviewer's app wrote by itself (the starter code; a language switch) is listed in the
record's metadata as clock ranges of its code client (`generated`, see `mark_generated`) and
is attributed to the *editor*.

**How**, for each update (one editor transaction):

- *pasted*: a candidate's update matched to one of their signed `paste` events — within
  `PASTE_WINDOW_S` on the record's clock, inserting at most the event's `chars` UTF-16 units
  and at least three quarters of them (a pasted CRLF arrives as LF);
- *duplicated*: an insert whose text repeats the text right beside it (a line duplicated in
  the editor) keeps the provenance of that text;
- *moved / restored*: an insert whose text is exactly a text the same side deleted before (an
  undo or redo, a drag inside the editor, cut and paste) keeps the provenance of what was
  deleted;
- *editor-generated* (`auto`): the whitespace after a typed newline (auto-indent), an update
  that inserts only whitespace (Tab, re-indent), and the closing half of a bracket or quote
  pair inserted with its opening half (auto-close) or around a selection;
- *typed*: what is left is one character per place (multiple cursors type one each; an emoji
  with its joiners and modifiers is one character), or at most `IME_MAX` characters replacing
  no shorter a text the same side typed key by key in the last `IME_WINDOW_S` (an IME
  composition being committed: CJK input counts as typing), or fewer than `BURST_MIN`
  characters (a dead key, an autocorrection, a short text expansion), or one text at several
  places, of at most 4 characters or replacing deleted text (a comment toggled on several
  lines, a replace-all);
- *burst*: anything longer, in one transaction, with no paste event: drag and drop from
  outside, an autotyper that inserts whole strings, an extension.

**Transcription cadence.** Consecutive one-character inserts by one side, each placed inside
what the run typed so far (the caret did not move away), with no deletion by that side and no
pause over `RUN_GAP_S`, form a run. A run of at least `RUN_MIN` keys (with at least
`RUN_DISTINCT` different characters: a held key's auto-repeat is not one) is *transcription*
when its inter-key intervals are near-constant (their *spread* — the mean of the smallest
80 % of their distances from their median, over the median — under `SPREAD_MAX`) or faster
than any person sustains (median under `FAST_MS`). Human typing, fast or slow, varies from
key to key far more than that; tools that type out a text at a fixed or narrowly random
interval do not (measured on the record's 10 ms grid by bench/bench_provenance.py, 300 runs
of 60 keys each: log-normal human intervals with σ = 0.35 gave a spread of at least 0.138, a
120 wpm typist's σ = 0.45 at least 0.175; uniform 80–120 ms autotyping at most 0.115; 25–40
ms is caught by its speed). Each finding carries the same side's own rhythm (the median and
spread of their other runs) for comparison.

What this cannot tell, plainly: someone retyping an answer by hand from a phone or a second
screen types like a person and counts as typing; times are the host's receipt times (to
10 ms), so network jitter blurs an autotyper's cadence; two pastes within the candidate
app's one-second debounce leave one event, and the second reads as a burst; a paste into a
modified app that sends no event reads as a burst. A fast, clean typist is not a cheater:
provenance is information, weighted 0 in the default policy.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import statistics
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from .textreplay import Node, RowChange, TextReplay

__all__ = ["AUTHORS", "HOWS", "PasteMark", "Provenance", "Running", "Segment", "code_clock",
           "compute",
           "from_parts", "from_record", "generated_ranges", "mark_generated", "paste_marks",
           "policy_weight", "sides_of"]

PASTE_WINDOW_S: Final = 10.0
IME_WINDOW_S: Final = 60.0
IME_MAX: Final = 32
BURST_MIN: Final = 8
RUN_GAP_S: Final = 2.0
RUN_MIN: Final = 40
RUN_DISTINCT: Final = 8
SPREAD_MAX: Final = 0.12
FAST_MS: Final = 45.0
MAX_BESIDE: Final = 10_000
"""Longest text checked for repeating its neighbour (a duplicated line or block)."""
RHYTHM_MIN: Final = 10
"""Runs shorter than this are left out of a side's rhythm (and cannot be transcription)."""

AUTHORS: Final = ("candidate", "interviewer", "editor", "unknown")
HOWS: Final = ("typed", "pasted", "burst", "transcription", "auto", "starter")
_SIDE: Final = {"candidate": "candidate", "host": "interviewer", "interviewer": "interviewer"}
# kinds kept in a node's tag (row * 8 + kind)
_TYPED, _PASTED, _BURST, _AUTO, _STARTER = 0, 1, 2, 3, 4
_KIND_HOW: Final = {_TYPED: "typed", _PASTED: "pasted", _BURST: "burst", _AUTO: "auto",
                    _STARTER: "starter"}
_PAIRS: Final = {"()", "[]", "{}", "''", '""', "``"}
_OPENERS: Final = {p[0]: p[1] for p in _PAIRS}
META_KEY: Final = "generated_code"
"""Session-file metadata key: the code the interviewer's app wrote itself (see
`mark_generated`)."""


class _Row(Protocol):
    @property
    def t(self) -> float: ...
    @property
    def origin(self) -> str: ...
    @property
    def data(self) -> bytes: ...


@dataclass(frozen=True)
class PasteMark:
    """A signed `paste` event: when the host received it (the record's clock), its `chars`
    (UTF-16 units, as the browser counts) and its sequence number in the log."""

    t: float
    chars: int
    seq: int = -1


@dataclass(frozen=True)
class Segment:
    """Code points `start`..`end` of the final code, written by `author`, `how`."""

    start: int
    end: int
    author: str
    how: str

    def to_json(self) -> list[Any]:
        return [self.start, self.end, self.author, self.how]


@dataclass
class Provenance:
    """The attribution of the final code (see the module docstring)."""

    text: str
    segments: list[Segment]
    counts: dict[str, dict[str, int]]
    pastes: list[dict[str, Any]] = field(default_factory=list)
    bursts: list[dict[str, Any]] = field(default_factory=list)
    transcriptions: list[dict[str, Any]] = field(default_factory=list)
    unmatched_pastes: list[dict[str, Any]] = field(default_factory=list)
    rhythm: dict[str, dict[str, Any]] = field(default_factory=dict)
    writers: dict[int, str] = field(default_factory=dict)
    conflicts: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return len(self.text)

    def share(self, author: str, how: str | None = None) -> float:
        """The fraction (0..1) of the final code by `author` (and `how`)."""
        if not self.text:
            return 0.0
        by = self.counts.get(author, {})
        n = sum(by.values()) if how is None else by.get(how, 0)
        return n / len(self.text)

    def per_char(self) -> list[tuple[str, str]]:
        """(author, how) for every code point of the final code."""
        out: list[tuple[str, str]] = []
        for s in self.segments:
            out += [(s.author, s.how)] * (s.end - s.start)
        return out

    def sentence(self, *, you: bool = False) -> str:
        """One line: "the candidate typed 82 % of the final code; 9 % pasted in 2 pastes;
        6 % by the interviewer; 3 % in one burst at 14:02 with no paste event". With `you`,
        the same about the candidate, addressed to them."""
        if not self.text:
            return "the code is empty"
        who = "you" if you else "the candidate"
        parts = [f"{who} typed {_pct(self.share('candidate', 'typed'))} of the final code"]
        pasted = [p for p in self.pastes if p["author"] == "candidate" and p["kept"]]
        if pasted:
            n = len(pasted)
            parts.append(f"{_pct(self.share('candidate', 'pasted'))} pasted in "
                         f"{_count(n, 'paste')}")
        for b in (b for b in self.bursts if b["author"] == "candidate" and b["kept"]):
            parts.append(f"{_pct(b['kept'] / len(self.text))} in one burst at "
                         f"{_hhmm(b['t'])} with no paste event")
        for r in (r for r in self.transcriptions if r["author"] == "candidate" and r["kept"]):
            parts.append(f"{_pct(r['kept'] / len(self.text))} typed at a transcription "
                         f"cadence ({r['keys']} keys, {r['median_ms']:.0f} ms apart, "
                         f"from {_hhmm(r['t0'])})")
        theirs = self.share("interviewer")
        if theirs:
            # (the candidate's own copy cannot tell the interviewer's starter code from
            # their typing: only the host's app knows which writes were its own)
            parts.append(f"{_pct(theirs)} by the interviewer" + (
                " (their typing and any starter code)" if you else ""))
        generated = self.share("editor")
        if generated:
            parts.append(f"{_pct(generated)} written by the editor (starter, indentation, "
                         f"closing brackets)")
        unknown = self.share("unknown")
        if unknown:
            parts.append(f"{_pct(unknown)} by an unknown writer")
        return "; ".join(parts)

    def to_json(self, *, segments: bool = True) -> dict[str, Any]:
        """The documented `provenance` object of `assessiq verify --json`."""
        out: dict[str, Any] = {
            "chars": len(self.text),
            "counts": self.counts,
            "percent": {a: {h: round(100 * n / len(self.text), 1) for h, n in by.items()}
                        for a, by in self.counts.items()} if self.text else {},
            "summary": self.sentence(),
            "pastes": self.pastes,
            "bursts": self.bursts,
            "transcriptions": self.transcriptions,
            "unmatched_pastes": self.unmatched_pastes,
            "rhythm": self.rhythm,
            "writers": {str(c): a for c, a in sorted(self.writers.items())},
            "conflicts": self.conflicts,
            "errors": self.errors,
        }
        if segments:
            out["segments"] = [s.to_json() for s in self.segments]
        return out


def _pct(x: float) -> str:
    return f"{round(100 * x)} %"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _hhmm(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M")


def _graphemes(text: str) -> int:
    """How many characters a person would say `text` has: a base character with its
    combining marks, variation selectors, skin tones and zero-width-joined parts is one; a
    pair of regional indicators (a flag) is one."""
    if text.isascii():
        return len(text)
    n = 0
    joined = False
    flag_half = False
    for ch in text:
        o = ord(ch)
        if o == 0x200D:
            joined = True
            continue
        if joined:
            joined = False
            continue
        if 0xFE00 <= o <= 0xFE0F or 0x1F3FB <= o <= 0x1F3FF or 0xE0020 <= o <= 0xE007F \
                or 0xE0100 <= o <= 0xE01EF or unicodedata.combining(ch):
            continue
        if 0x1F1E6 <= o <= 0x1F1FF:
            flag_half = not flag_half
            if not flag_half:
                continue
        else:
            flag_half = False
        n += 1
    return n


def _spread(values: list[float], median: float) -> float:
    """How much `values` vary around their median, relative to it: the mean of the smallest
    80 % of their distances from the median, over the median. Robust to the few long
    intervals of any typing (a pause, a key typed over an auto-closed bracket), and not
    stepped by the record's 10 ms grid as a median absolute deviation would be."""
    if median <= 0:
        return 0.0
    d = sorted(abs(v - median) for v in values)
    d = d[:max(1, len(d) * 4 // 5)]
    return statistics.fmean(d) / median


def _is_ws(text: str) -> bool:
    return bool(text) and not text.strip(" \t")


class _Runs:
    """The cadence of one side's typing: runs of contiguous one-character inserts."""

    __slots__ = ("chars", "client", "first", "last_t", "rows", "times", "upto")

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.times: list[float] = []
        self.chars: list[str] = []
        # what the run typed so far: `client`'s clocks `first`..`upto` (client -1: nothing)
        self.client = -1
        self.first = 0
        self.upto = 0
        self.last_t = 0.0


def _judge(author: str, rows: list[int], times: list[float], chars: list[str]
           ) -> tuple[dict[str, Any] | None, tuple[float, float, int] | None]:
    """A closed run: (a transcription finding, None) or (None, its rhythm (median, spread,
    keys)) or (None, None) when too short to say."""
    if len(rows) < RHYTHM_MIN:
        return None, None  # (too short to say anything about a rhythm)
    gaps = [1000 * (b - a) for a, b in itertools.pairwise(times)]
    keys = [g for g, c0, c1 in zip(gaps, chars, chars[1:], strict=False) if c0 != c1]
    if len(keys) < 2:
        return None, None
    median = statistics.median(keys)
    spread = _spread(keys, median)
    if len(rows) >= RUN_MIN and len(set(chars)) >= RUN_DISTINCT and \
            (spread < SPREAD_MAX or median < FAST_MS):
        return {"author": author, "t0": times[0], "t1": times[-1], "keys": len(rows),
                "median_ms": round(median, 1), "spread": round(spread, 3),
                "why": "near-constant intervals" if spread < SPREAD_MAX else
                "faster than a person sustains", "rows": rows}, None
    return None, (median, spread, len(rows))


class _Analysis:
    """One pass over the history (see `compute`)."""

    def __init__(self, pastes: Sequence[PasteMark],
                 generated: Sequence[tuple[int, int, int]], sides: Mapping[str, str]) -> None:
        self.sides = {**_SIDE, **sides}
        self.replay = TextReplay("code")
        self.row_t: list[float] = []
        self.row_author: list[str] = []
        self.pastes = sorted(pastes, key=lambda p: p.t)
        self.maybe_paste: dict[int, int] = {}  # row -> UTF-16 units it inserted
        self.burst_rows: dict[int, int] = {}  # row -> chars inserted
        self.generated: dict[int, list[tuple[int, int]]] = {}
        for client, a, b in generated:
            self.generated.setdefault(client, []).append((a, b))
        self.pool: dict[tuple[str, str], list[tuple[str, int]]] = {}
        self.runs: dict[str, _Runs] = {}
        self.flagged: set[int] = set()
        self.findings: list[dict[str, Any]] = []
        self.run_stats: dict[str, list[tuple[float, float, int]]] = {}
        self.writers: dict[int, str] = {}
        self.conflicts: set[int] = set()
        self.errors: list[str] = []

    # ------------------------------------------------------------------ per row
    def row(self, t: float, origin: str, data: bytes) -> None:
        row_t = self.row_t
        i = len(row_t)
        author = self.sides.get(origin, "unknown")
        row_t.append(t)
        self.row_author.append(author)
        node = self.replay.insert_key(data, i * 8)  # (the keystroke's path)
        if node is not None:
            client = node.client
            if self.writers.get(client) != author:
                self._writer(client, author)
            text = node.text
            if self.generated and client in self.generated:
                rest = self._generated([node])
                if len(rest) != 1 or rest[0] is not node:
                    if rest:
                        self._general(i, t, author, rest, [], None)
                    return
            one = len(text) == 1
            indent = not one and text[0] == "\n" and not text.strip(" \t\n") \
                and "\n" not in text[1:]  # Enter, and the indentation the editor added
            if one or indent or (len(text) == 2 and text in _PAIRS) or (
                    not text.isascii() and _graphemes(text) == 1):
                start = node.clock
                end = start + node.length
                if indent or (not one and text in _PAIRS):
                    self.replay.split(node, 1).tag = i * 8 + _AUTO
                # `_key`, written out for the keystroke's path
                runs = self.runs.get(author)
                after = node.origin
                if runs is None or after is None or after[0] != runs.client or \
                        not runs.first <= after[1] < runs.upto or t - runs.last_t > RUN_GAP_S:
                    self._key(author, i, t, client, after, start, end, text[0])
                    return
                if end > runs.upto:
                    runs.upto = end
                runs.last_t = t
                runs.rows.append(i)
                runs.times.append(t)
                runs.chars.append(text[0])
                return
            self._general(i, t, author, [node], [], None)
            return
        if self.replay.unreadable is not None:
            return  # (said once, at the update that made it so)
        try:
            change = self.replay.apply(data, i * 8)
        except ValueError as exc:
            self.errors.append(f"update {i} cannot be read: {exc}")
            return
        self._general(i, t, author, change.created, change.deleted, change)

    def _writer(self, client: int, author: str) -> None:
        known = self.writers.setdefault(client, author)
        if known != author:
            self.conflicts.add(client)

    def _key(self, author: str, row: int, t: float, client: int, origin: tuple[int, int] | None,
             start: int, end: int, char: str) -> None:
        """One keystroke (`client`'s clocks `start`..`end`, placed after `origin`)."""
        runs = self.runs.get(author)
        if runs is None:
            runs = self.runs[author] = _Runs()
        if origin is None or origin[0] != runs.client or \
                not runs.first <= origin[1] < runs.upto or t - runs.last_t > RUN_GAP_S:
            self._close(author)  # (placed outside what this run typed: the caret moved)
            runs.client, runs.first, runs.upto = client, start, end
        elif end > runs.upto:
            runs.upto = end
        runs.last_t = t
        runs.rows.append(row)
        runs.times.append(t)
        runs.chars.append(char)

    def _close(self, author: str) -> None:
        runs = self.runs.get(author)
        if runs is None or not runs.rows:
            return
        times, rows, chars = runs.times, runs.rows, runs.chars
        runs.rows, runs.times, runs.chars, runs.client = [], [], [], -1
        finding, stat = _judge(author, rows, times, chars)
        if finding is not None:
            self.flagged.update(rows)
            self.findings.append(finding)
        elif stat is not None:
            self.run_stats.setdefault(author, []).append(stat)

    def _generated(self, nodes: list[Node]) -> list[Node]:
        """Tag the editor's own text among `nodes`; returns the rest."""
        rest: list[Node] = []
        for node in nodes:
            ranges = self.generated.get(node.client)
            if not ranges:
                rest.append(node)
                continue
            pieces = [node]
            for a, b in ranges:  # cut at the ranges' ends so each piece is in or out
                for cut in (a, b):
                    for piece in list(pieces):
                        if piece.clock < cut < piece.clock + piece.length:
                            pieces.append(self.replay.split(piece, cut - piece.clock))
            for piece in pieces:
                if any(a <= piece.clock < b for a, b in ranges):
                    piece.tag = (piece.tag & ~7) | _STARTER
                else:
                    rest.append(piece)
        return rest

    def _general(self, i: int, t: float, author: str, created: list[Node],
                 deleted: list[Node], change: RowChange | None) -> None:
        if deleted:
            self._close(author)  # a correction ends a run
        for node in created:
            if self.writers.get(node.client) != author:
                self._writer(node.client, author)
        runs_of = (change or RowChange()).runs
        if deleted:
            for run in runs_of(deleted):
                text = "".join(n.text for n in run)
                if len(text) >= 2:
                    self.pool[(author, text)] = [(n.text, n.tag) for n in run if n.text]
        live = [n for n in created if n.text and not n.deleted]
        if live:
            live = self._generated(live)
        if not live:
            return
        runs = runs_of(live)
        open_runs: list[list[Node]] = []
        for run in runs:
            text = "".join(n.text for n in run)
            inherited = self.pool.get((author, text)) if len(text) >= 2 else None
            if inherited is None and len(text) >= 2:
                inherited = self._beside(run, text, i)
            if inherited is not None:
                self._inherit(run, inherited)
            else:
                open_runs.append(run)
        if not open_runs:
            self._close(author)
            return
        first = open_runs[0][0]
        span = (first.client, first.origin, first.clock,
                max(n.clock + n.length for n in open_runs[0]))  # (before any cut below)
        typed: list[str] = []
        openers = {"".join(n.text for n in run) for run in open_runs}
        for run in open_runs:
            text = "".join(n.text for n in run)
            if _is_ws(text) and len(text) >= 2:
                self._tag_from(run, 0, i * 8 + _AUTO)
            elif text[0] == "\n" and _is_ws(text[1:]):
                self._tag_from(run, 1, i * 8 + _AUTO)
                typed.append("\n")
            elif text in _PAIRS:
                self._tag_from(run, 1, i * 8 + _AUTO)
                typed.append(text[0])
            elif len(text) == 1 and text in _OPENERS.values() and any(
                    o in openers for o, c in _OPENERS.items() if c == text):
                self._tag_from(run, 0, i * 8 + _AUTO)
            else:
                typed.append(text)
        if not typed:
            self._close(author)
            return
        sizes = [_graphemes(x) for x in typed]
        if author == "candidate" and max(sizes) > 1:
            # a paste if one of the candidate's paste events matches it; that is decided
            # when the result is read (`_match_pastes`), so that an event arriving after its
            # text gives the same answer live as in the sealed record
            self.maybe_paste[i] = sum(n.length for run in open_runs for n in run)
        if max(sizes) <= 1:
            if len(open_runs) == 1 and not deleted and len(typed) == 1:
                self._key(author, i, t, *span, typed[0][:1])
            else:
                self._close(author)
            return
        self._close(author)
        total = sum(sizes)
        if len(typed) > 1 and len(set(typed)) == 1 and (sizes[0] <= 4 or deleted):
            return  # one text at several places: a comment toggled, several cursors, a
            # replace-all (each replacing a deleted text)
        if deleted and total <= IME_MAX and self._composed(deleted, author, t, total):
            return  # an IME composition committed (typed)
        if total < BURST_MIN:
            return
        self.burst_rows[i] = sum(len(x) for x in typed)
        for run in open_runs:
            for n in run:
                if n.tag & 7 == _TYPED and n.tag >> 3 == i:
                    n.tag = i * 8 + _BURST

    def _beside(self, run: list[Node], text: str, row: int) -> list[tuple[str, int]] | None:
        """When `text` (inserted by `run`) repeats the text right before or right after it —
        a line duplicated in the editor — the pieces of that text with their tags."""
        n = len(text)
        if n > MAX_BESIDE:
            return None
        for left in (True, False):
            pieces: list[tuple[str, int]] = []
            got = 0
            node = run[0].left if left else run[-1].right
            steps = 0
            while node is not None and got < n and steps < n + MAX_BESIDE:
                if not node.deleted and node.text and node.tag >> 3 != row:
                    pieces.append((node.text, node.tag))
                    got += len(node.text)
                node = node.left if left else node.right
                steps += 1
            if got < n:
                continue
            if left:
                pieces.reverse()
            joined = "".join(p for p, _ in pieces)
            if (joined[-n:] if left else joined[:n]) != text:
                continue
            extra = got - n  # cut what lies beyond the repeated text
            if left and extra:
                first_text, first_tag = pieces[0]
                pieces[0] = (first_text[extra:], first_tag)
            elif extra:
                last_text, last_tag = pieces[-1]
                pieces[-1] = (last_text[:len(last_text) - extra], last_tag)
            return [p for p in pieces if p[0]]
        return None

    def _tag_from(self, run: list[Node], units: int, tag: int) -> None:
        """Give `tag` to the run's text from UTF-16 offset `units` on."""
        seen = 0
        for node in list(run):
            if seen + node.length <= units:
                seen += node.length
                continue
            if seen < units:
                node = self.replay.split(node, units - seen)
                seen = units
            node.tag = tag
            seen += node.length

    def _inherit(self, run: list[Node], source: list[tuple[str, int]]) -> None:
        """Give the run the tags of the deleted text it restores, piece by piece."""
        nodes = list(run)
        k = 0
        for text, tag in source:
            need = len(text.encode("utf-16-le", "surrogatepass")) // 2
            while need > 0 and k < len(nodes):
                node = nodes[k]
                if node.length > need:
                    nodes.insert(k + 1, self.replay.split(node, need))
                node.tag = tag
                need -= node.length
                k += 1

    def _composed(self, deleted: list[Node], author: str, t: float, inserted: int) -> bool:
        """Whether an insert of `inserted` characters replacing `deleted` commits an IME
        composition: what it replaces was typed (key by key) by the same side in the last
        `IME_WINDOW_S`, and the result is no longer than it, give or take one."""
        composing = 0
        for n in deleted:
            row = n.tag >> 3
            if n.tag & 7 != _TYPED or row in self.maybe_paste or row >= len(self.row_t) or \
                    self.row_author[row] != author or t - self.row_t[row] > IME_WINDOW_S:
                return False
            composing += _graphemes(n.text)
        return inserted <= composing + 1

    def _match_pastes(self) -> tuple[dict[int, int], list[bool]]:
        """Which rows are pastes: each row that could be one, in order, takes the closest
        unused paste event in time that fits its size. Returns (row -> event index, which
        events were used)."""
        used = [False] * len(self.pastes)
        matched: dict[int, int] = {}
        for row, units in self.maybe_paste.items():
            t = self.row_t[row]
            best: int | None = None
            for k, p in enumerate(self.pastes):
                if p.t > t + PASTE_WINDOW_S:
                    break
                if used[k] or p.t < t - PASTE_WINDOW_S:
                    continue
                if not (units <= p.chars and 4 * units >= 3 * p.chars):
                    continue
                if best is None or abs(p.t - t) < abs(self.pastes[best].t - t):
                    best = k
            if best is not None:
                used[best] = True
                matched[row] = best
        return matched, used

    # ------------------------------------------------------------------ the result
    def result(self, final_text: str | None) -> Provenance:
        """The attribution so far (the analysis can go on: runs still open are judged as if
        they ended here, without ending them)."""
        matched, used = self._match_pastes()
        flagged = set(self.flagged)
        findings = [dict(f) for f in self.findings]
        run_stats = {a: list(s) for a, s in self.run_stats.items()}
        for author, runs in self.runs.items():
            finding, stat = _judge(author, runs.rows, runs.times, runs.chars)
            if finding is not None:
                flagged.update(runs.rows)
                findings.append(finding)
            elif stat is not None:
                run_stats.setdefault(author, []).append(stat)
        row_author = self.row_author
        segments: list[Segment] = []
        counts: dict[str, dict[str, int]] = {}
        kept_rows: dict[int, int] = {}
        pieces: list[str] = []
        pos = 0
        for node in self.replay.live():
            tag = node.tag
            kind, row = tag & 7, tag >> 3
            if row in matched and kind != _STARTER:
                kind = _PASTED  # the whole insert, its indentation and brackets too
            if kind in (_AUTO, _STARTER):
                author, how = "editor", _KIND_HOW[kind]
            else:
                author = row_author[row] if row < len(row_author) else "unknown"
                how = "transcription" if kind == _TYPED and row in flagged else _KIND_HOW[kind]
            text = node.text
            n = len(text)
            pieces.append(text)
            by = counts.setdefault(author, {})
            by[how] = by.get(how, 0) + n
            if kind in (_PASTED, _BURST) or (kind == _TYPED and row in flagged):
                kept_rows[row] = kept_rows.get(row, 0) + n
            if segments and segments[-1].author == author and segments[-1].how == how:
                last = segments[-1]
                segments[-1] = Segment(last.start, pos + n, author, how)
            else:
                segments.append(Segment(pos, pos + n, author, how))
            pos += n
        text = "".join(pieces)
        errors = list(self.errors)
        if final_text is not None and final_text != text:
            errors.append("the attribution's text differs from the document's final code")
        pastes = [{"t": self.row_t[row], "author": row_author[row], "seq": self.pastes[k].seq,
                   "chars": self.pastes[k].chars, "kept": kept_rows.get(row, 0)}
                  for row, k in sorted(matched.items())]
        bursts = [{"t": self.row_t[row], "author": row_author[row], "chars": n,
                   "kept": kept_rows.get(row, 0)} for row, n in sorted(self.burst_rows.items())
                  if row not in matched]
        transcriptions = []
        for f in sorted(findings, key=lambda f: f["t0"]):
            rows = f.pop("rows")
            f["kept"] = sum(kept_rows.get(r, 0) for r in rows)
            transcriptions.append(f)
        unmatched = [{"t": p.t, "chars": p.chars, "seq": p.seq}
                     for p, u in zip(self.pastes, used, strict=True) if not u and p.chars > 0]
        rhythm = {}
        for author, stats in sorted(run_stats.items()):
            keys = sum(n for _, _, n in stats)
            rhythm[author] = {
                "runs": len(stats), "keys": keys,
                "median_ms": round(statistics.median(m for m, _, _ in stats), 1),
                "spread": round(statistics.median(c for _, c, _ in stats), 3)}
        return Provenance(text=text, segments=segments, counts=counts, pastes=pastes,
                          bursts=bursts, transcriptions=transcriptions,
                          unmatched_pastes=unmatched, rhythm=rhythm, writers=self.writers,
                          conflicts=sorted(self.conflicts), errors=errors)


def compute(rows: Iterable[_Row], *, pastes: Sequence[PasteMark] = (),
            generated: Sequence[tuple[int, int, int]] = (),
            final_text: str | None = None, sides: Mapping[str, str] | None = None
            ) -> Provenance:
    """The provenance of the code after `rows` (each with `t`, `origin`, `data`: the
    session file's document updates, in order). `pastes`: the candidate's signed paste events
    on the same clock; `generated`: (client, first clock, end clock) ranges of text the
    interviewer's app wrote by itself (`generated_ranges`). With `final_text` (the document's
    code, as pycrdt reads it) a difference is reported in `errors`. `sides` maps further
    origins to authors ("host" is the interviewer's, "candidate" the candidate's)."""
    running = Running(generated, sides)
    running.add(rows)
    return running.result(pastes, final_text)


class Running:
    """`compute` one update at a time, for a session that is still going (the live pages):
    `add` the new rows as they are recorded, read `result` whenever; the answer is the one
    `compute` gives for all the rows so far (paste events are matched when it is read, so one
    that arrives after its text counts the same)."""

    def __init__(self, generated: Sequence[tuple[int, int, int]] = (),
                 sides: Mapping[str, str] | None = None) -> None:
        self.generated = tuple(generated)
        self._analysis = _Analysis((), generated, sides or {})

    @property
    def rows(self) -> int:
        return len(self._analysis.row_t)

    def add(self, rows: Iterable[_Row]) -> None:
        analysis = self._analysis
        # Two objects per update, linked both ways: the cyclic collector would walk them
        # again and again while they are built (~15 % of the time, measured); it runs after.
        enabled = gc.isenabled()
        gc.disable()
        try:
            for row in rows:
                analysis.row(row.t, row.origin, row.data)
        finally:
            if enabled:
                gc.enable()

    def result(self, pastes: Sequence[PasteMark] = (), final_text: str | None = None
               ) -> Provenance:
        self._analysis.pastes = sorted(pastes, key=lambda p: p.t)
        return self._analysis.result(final_text)


# ---------------------------------------------------------------------- the record
def generated_ranges(meta: Mapping[str, Any]) -> list[tuple[int, int, int]]:
    """The editor-generated code ranges a session file's metadata lists (malformed entries
    are ignored)."""
    out = []
    value = meta.get(META_KEY)
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            c, a, b = item.get("client"), item.get("from"), item.get("to")
            if isinstance(c, int) and isinstance(a, int) and isinstance(b, int) and \
                    not any(isinstance(v, bool) for v in (c, a, b)) and 0 <= a < b and c >= 0:
                out.append((c, a, b))
    return out


def code_clock(doc: Any) -> int:
    """How many clock units this side's own code client has written (before and after an
    editor write, for `mark_generated`)."""
    from .updateparse import state_vector_clocks

    return state_vector_clocks(doc.part_doc("code").get_state()).get(doc.client_id, 0)


def mark_generated(store: Any, doc: Any, what: str, before: int) -> None:
    """Record in the session file's metadata (sealed with it) that the code this side's own
    code client wrote since clock `before` was written by the app itself (`what`: "starter",
    "language switch"), not typed by anyone."""
    after = code_clock(doc)
    if after <= before:
        return
    entries = list(store.meta().get(META_KEY) or [])
    entries.append({"what": what, "client": doc.client_id, "from": before, "to": after})
    store.set_meta(META_KEY, entries)


def paste_marks(events: Sequence[Any], arrivals: Sequence[float] | None = None,
                offset: float = 0.0) -> list[PasteMark]:
    """The `paste` events among verified envelopes, on the record's clock: when the host
    received each (`arrivals`), else its signed time less the candidate's clock `offset`."""
    out = []
    for k, env in enumerate(events):
        if env.kind != "paste":
            continue
        chars = env.data.get("chars")
        if isinstance(chars, bool) or not isinstance(chars, int):
            continue
        t = arrivals[k] if arrivals is not None and k < len(arrivals) else env.t - offset
        out.append(PasteMark(float(t), chars, env.seq))
    return out


def from_parts(rows: Iterable[_Row], meta: Mapping[str, Any], events: Sequence[Any] = (),
               arrivals: Sequence[float] | None = None, *, offset: float = 0.0,
               final_text: str | None = None) -> Provenance:
    """The provenance of a session file's parts: its update rows and metadata, and the
    verified events (`arrivals`: when the host received each; else their signed times less
    the candidate's clock `offset`). The live pages and a sealed record both come here."""
    if arrivals is not None and len(arrivals) != len(events):
        arrivals = None
    pastes = paste_marks(events, arrivals, offset)
    return compute(rows, pastes=pastes, generated=generated_ranges(meta),
                   final_text=final_text, sides=sides_of(meta))


def sides_of(meta: Mapping[str, Any]) -> dict[str, str]:
    """Origins beyond "host" and "candidate" a session file may use: a record written with a
    plain pycrdt document tags the peer's updates "remote"."""
    return {"remote": "candidate" if meta.get("role", "host") == "host" else "interviewer"}


def from_record(record: Any, log: Any = None, *, final_text: str | None = None
                ) -> Provenance:
    """The provenance of a session record (`SessionRecord`), with the paste events of its
    checked log (`verify`'s `LogCheck`; without it, no paste is matched)."""
    if log is None:
        return from_parts(record.updates, record.meta, final_text=final_text)
    return from_parts(record.updates, record.meta, log.events, log.arrivals,
                      final_text=final_text)


def policy_weight(policy_text: str | None) -> tuple[float, float]:
    """The `[provenance]` table of a policy: (weight, max_penalty); (0, 0) when absent or
    unreadable. `weight` is score points per 10 % of the final code the candidate inserted
    in bursts or typed at a transcription cadence."""
    if not policy_text:
        return 0.0, 0.0
    try:
        table = tomllib.loads(policy_text).get("provenance") or {}
    except tomllib.TOMLDecodeError:
        return 0.0, 0.0
    if not isinstance(table, dict):
        return 0.0, 0.0
    values = []
    for key, default in (("weight", 0.0), ("max_penalty", 0.0)):
        v = table.get(key, default)
        ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1e6
        values.append(float(v) if ok else 0.0)
    return values[0], values[1]
