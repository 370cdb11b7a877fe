"""Generated editing traces for the provenance tests and benchmark.

A `Trace` plays people editing one code document the way the browser editor does (CodeMirror
with auto-close and auto-indent, one Yjs transaction per keystroke, a paste or a drop as one
transaction) with real pycrdt documents, one per writer, and records what the host's session
file would hold: every update with its time (to 10 ms, as the store keeps it) and origin,
plus the candidate's signed paste events. The timing models are human ones (log-normal
inter-key intervals, typos corrected, pauses to think) or planted ones (an autotyper at a
constant 25-40 ms).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import pycrdt

from assessiq.core.provenance import PasteMark
from assessiq.core.segments import quantize_time

T0 = 1_796_000_000.0  # 2026-12-01, a plain epoch time
PAIRS = {"(": ")", "[": "]", "{": "}", '"': '"', "'": "'"}


@dataclass(frozen=True)
class Row:
    seq: int
    t: float
    origin: str
    data: bytes


@dataclass
class Writer:
    doc: pycrdt.Doc[Any]
    text: pycrdt.Text
    origin: str
    cursor: int = 0


@dataclass
class Trace:
    """One interview's code history, as the host records it."""

    seed: int = 0
    t: float = T0
    rows: list[Row] = field(default_factory=list)
    pastes: list[PasteMark] = field(default_factory=list)
    generated: list[tuple[int, int, int]] = field(default_factory=list)
    writers: dict[str, Writer] = field(default_factory=dict)
    code: str = ""
    _out: list[bytes] = field(default_factory=list)
    _mine: Writer | None = None
    check: bool = True
    """Check the record's text after every edit (off for the benchmark's long traces)."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.record: pycrdt.Doc[Any] = pycrdt.Doc()
        self.record_text = self.record.get("code", type=pycrdt.Text)
        clients = iter(self.rng.sample(range(1, 2**32), 3))
        for name, origin in (("starter", "host"), ("candidate", "candidate"),
                             ("interviewer", "host")):
            doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=next(clients))
            self.writers[name] = Writer(doc, doc.get("code", type=pycrdt.Text), origin)
            doc.observe(lambda e, d=doc: self._observed(d, e.update))

    def _observed(self, doc: pycrdt.Doc[Any], update: bytes) -> None:
        if self._mine is not None and doc is self._mine.doc and update != b"\x00\x00":
            self._out.append(update)

    # ------------------------------------------------------------------ plumbing
    def _edit(self, who: str, ops: list[tuple[int, int, str]]) -> None:
        """One transaction of `who`: (code-point index, delete count, insert) against the
        code as it is before each op."""
        w = self.writers[who]
        self._out.clear()
        self._mine = w
        with w.doc.transaction():
            for index, delete, insert in ops:
                start = len(self.code[:index].encode())
                if delete:
                    end = len(self.code[:index + delete].encode())
                    del w.text[start:end]
                if insert:
                    w.text.insert(start, insert)
                self.code = self.code[:index] + insert + self.code[index + delete:]
        self._mine = None
        if not self._out:
            return
        [data] = self._out  # the transaction's own update, as the store records it
        self.rows.append(Row(len(self.rows), quantize_time(self.t), w.origin, data))
        self.record.apply_update(data)
        for other in self.writers.values():
            if other is not w:
                other.doc.apply_update(data)
        if self.check:
            assert str(self.record_text) == self.code

    def wait(self, seconds: float) -> None:
        self.t += seconds

    # ------------------------------------------------------------------ actions
    def starter(self, text: str) -> None:
        """The interviewer's app writes the starter code (editor-generated)."""
        w = self.writers["starter"]
        client = w.doc.client_id
        clock0 = _clock(w.doc.get_state(), client)
        self._edit("starter", [(0, len(self.code), text)])
        self.generated.append((client, clock0, _clock(w.doc.get_state(), client)))

    def move(self, who: str, index: int) -> None:
        self.writers[who].cursor = index

    def type(self, who: str, text: str, *, iki: Any, typo: float = 0.0,
             think: float = 0.0) -> None:
        """Type `text` at the cursor key by key; `iki()` gives each interval (s). With
        auto-close and auto-indent as CodeMirror does them; `typo`: the chance of a wrong key
        corrected with Backspace; `think`: the chance of a 0.5-4 s pause after a newline."""
        w = self.writers[who]
        for ch in text:
            if typo and ch.isalpha() and self.rng.random() < typo:
                self.wait(iki())
                self._edit(who, [(w.cursor, 0, "q")])
                w.cursor += 1
                self.wait(iki() * 1.5)
                self._edit(who, [(w.cursor - 1, 1, "")])
                w.cursor -= 1
            self.wait(iki())
            self.key(who, ch)
            if ch == "\n" and think and self.rng.random() < think:
                self.wait(self.rng.uniform(0.5, 4.0))

    def key(self, who: str, ch: str) -> None:
        w = self.writers[who]
        c = w.cursor
        if ch in PAIRS.values() and self.code[c:c + 1] == ch:
            w.cursor += 1  # typing over the auto-closed bracket: no change
            return
        if ch == "\n":
            line = self.code[:c].rsplit("\n", 1)[-1]
            indent = line[:len(line) - len(line.lstrip(" "))]
            if line.rstrip().endswith(":"):
                indent += "    "
            self._edit(who, [(c, 0, "\n" + indent)])
            w.cursor += 1 + len(indent)
            # the source text's own indentation is typed over by the auto-indent
            return
        if ch in PAIRS and not (ch in "\"'" and self.code[c - 1:c].isalnum()):
            self._edit(who, [(c, 0, ch + PAIRS[ch])])
        else:
            self._edit(who, [(c, 0, ch)])
        w.cursor += 1

    def paste(self, who: str, text: str, *, event: bool = True, lag: float = 0.05) -> None:
        """Paste (or, without `event`, drop) `text` at the cursor in one transaction."""
        w = self.writers[who]
        self._edit(who, [(w.cursor, 0, text)])
        w.cursor += len(text)
        if event:
            units = len(text.encode("utf-16-le")) // 2
            self.pastes.append(PasteMark(quantize_time(self.t + lag), units, len(self.pastes)))

    def ime(self, who: str, latin: str, result: str, *, iki: Any) -> None:
        """An IME composition: the romanisation typed key by key, then the committed
        characters replace it in one transaction."""
        w = self.writers[who]
        start = w.cursor
        for ch in latin:
            self.wait(iki())
            self._edit(who, [(w.cursor, 0, ch)])
            w.cursor += 1
        self.wait(iki())
        self._edit(who, [(start, len(latin), result)])
        w.cursor = start + len(result)

    def backspace(self, who: str, n: int, *, iki: Any) -> None:
        w = self.writers[who]
        for _ in range(n):
            self.wait(iki())
            self._edit(who, [(w.cursor - 1, 1, "")])
            w.cursor -= 1

    def select_delete(self, who: str, start: int, end: int) -> str:
        w = self.writers[who]
        gone = self.code[start:end]
        self._edit(who, [(start, end - start, "")])
        w.cursor = start
        return gone


def _clock(state: bytes, client: int) -> int:
    from assessiq.core.updateparse import state_vector_clocks

    return state_vector_clocks(state).get(client, 0)


def lognormal(rng: random.Random, median_s: float, sigma: float) -> Any:
    mu = math.log(median_s)
    return lambda: rng.lognormvariate(mu, sigma)


def uniform(rng: random.Random, low: float, high: float) -> Any:
    return lambda: rng.uniform(low, high)


SOLUTION = '''import sys


def solve(data):
    numbers = [int(x) for x in data.split()]
    best = {}
    for i, n in enumerate(numbers):
        if n % 2 == 0:
            best[n] = best.get(n, 0) + i
    return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))


if __name__ == "__main__":
    print(solve(sys.stdin.read()))
'''


def source_text(text: str) -> str:
    """`text` as a person types it into an auto-indenting editor: no leading indentation
    (the editor puts it there) and no closing bracket the editor closes itself is skipped
    (typing over it moves past it)."""
    return "\n".join(line.lstrip(" ") for line in text.split("\n"))
