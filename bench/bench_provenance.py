"""Code provenance of a long session: `core.provenance.compute` over a 100,000-keystroke
history (the goal: at most 1 s), beside pycrdt merely replaying the same updates into a
document (what `verify` does anyway), interleaved in one run.

The session is generated (tests/provenance_traces.py): the candidate types the solution
again and again at a human rhythm with typos corrected, rewrites blocks (select and delete),
pastes with their events, drops text in, and the interviewer types comments; one Yjs update
per keystroke, as the browser editor sends them.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from typing import Any

import pycrdt

from bench.common import Row, median
from tests.provenance_traces import SOLUTION, Trace, lognormal, source_text

AREA = "provenance"


def make_session(keys: int, seed: int = 11) -> Trace:
    tr = Trace(seed=seed, check=False)
    tr.starter("# Read the input, print the answer.\n")
    rng = random.Random(seed)
    iki = lognormal(rng, 0.11, 0.45)
    text = source_text(SOLUTION)
    loops = 0
    while len(tr.rows) < keys:
        loops += 1
        tr.move("candidate", 0)  # a new version above the old (its indentation from 0)
        tr.type("candidate", text, iki=iki, typo=0.03, think=0.2)
        if loops % 10 == 0:
            tr.move("interviewer", 0)
            tr.type("interviewer", "# interviewer: and the empty input?\n", iki=iki)
        if loops % 15 == 0:
            tr.paste("candidate", "def helper(a, b):\n    return a * b + 1\n")
        if loops % 25 == 0:
            tr.paste("candidate", "x = [i * i for i in range(100)]\n" * 5, event=False)
        while len(tr.code) > 6000:  # rewrite: select an older block and delete it
            start = rng.randrange(0, len(tr.code) - 1500)
            tr.select_delete("candidate", start, start + 1200)
        tr.wait(rng.uniform(1, 10))
    return tr


def _ours(tr: Trace) -> tuple[float, float]:
    """(wall, CPU) seconds of one provenance computation."""
    from assessiq.core.provenance import compute

    t0, c0 = time.perf_counter(), time.process_time()
    prov = compute(tr.rows, pastes=tr.pastes, generated=tr.generated)
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert prov.text == tr.code and not prov.errors
    return took, cpu


def _pycrdt(tr: Trace) -> float:
    t0 = time.perf_counter()
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    for row in tr.rows:
        doc.apply_update(row.data)
    took = time.perf_counter() - t0
    assert str(doc.get("code", type=pycrdt.Text)) == tr.code
    return took


CADENCES = [("human, log-normal sigma 0.30, median 100 ms", "ln", 0.10, 0.30),
             ("human, log-normal sigma 0.35, median 100 ms", "ln", 0.10, 0.35),
             ("human, log-normal sigma 0.45, median 100 ms (120 wpm)", "ln", 0.10, 0.45),
             ("human, log-normal sigma 0.50, median 450 ms (hunt and peck)", "ln", 0.45, 0.50),
             ("autotyper, uniform 25-40 ms", "u", 0.025, 0.040),
             ("autotyper, uniform 80-120 ms", "u", 0.08, 0.12),
             ("autotyper, uniform 150-200 ms", "u", 0.15, 0.20)]


def cadence_rows(runs: int) -> list[Row]:
    """The transcription rule's calibration: the spread (`provenance._spread`) of `runs` runs
    of 60 keys per cadence, on the record's 10 ms grid, one key in ten typed over an
    auto-closed bracket (a doubled interval)."""
    import math

    from assessiq.core.provenance import SPREAD_MAX, _spread
    from assessiq.core.segments import quantize_time

    rng = random.Random(5)
    out = []
    for name, kind, a, b in CADENCES:
        spreads = []
        for _ in range(runs):
            t, stamps = 1_796_000_000.0, []
            def step(kind: str = kind, a: float = a, b: float = b) -> float:
                return rng.lognormvariate(math.log(a), b) if kind == "ln" else rng.uniform(a, b)

            for _ in range(61):
                t += step() + (step() if rng.random() < 0.1 else 0.0)
                stamps.append(quantize_time(t))
            gaps = [1000 * (y - x) for x, y in itertools.pairwise(stamps)]
            gaps.sort()
            spreads.append(_spread(gaps, gaps[len(gaps) // 2]))
        spreads.sort()
        under = sum(x < SPREAD_MAX for x in spreads)
        out.append(Row(AREA, f"  spread over 60 keys: {name}", spreads[len(spreads) // 2], "",
                       note=f"min {spreads[0]:.3f}, max {spreads[-1]:.3f}, {under}/{runs} "
                            f"under {SPREAD_MAX}"))
    return out


def waiting_rows(waiting: int, keys: int) -> list[Row]:
    """A hostile peer's history: `waiting` valid updates that refer to items it never sends
    (they wait in the item replay), then `keys` keystrokes of the candidate; the provenance
    of it all beside that of the keystrokes alone, interleaved."""
    from assessiq.core.provenance import compute
    from tests.provenance_traces import T0
    from tests.provenance_traces import Row as TraceRow
    from tests.test_provenance_hostile import _hostile

    hostile, typed, _, _ = _hostile(waiting, keys)
    alone = [TraceRow(i, T0 + 0.1 * i, "candidate", k) for i, k in enumerate(typed)]
    rows = [TraceRow(i, T0 + i, "candidate", u) for i, u in enumerate(hostile)]
    rows += [TraceRow(len(rows) + r.seq, r.t + len(hostile), r.origin, r.data) for r in alone]
    with_waiting: list[float] = []
    without: list[float] = []
    for _ in range(7):
        for which, out in ((rows, with_waiting), (alone, without)):
            t0 = time.perf_counter()
            compute(which)
            out.append(time.perf_counter() - t0)
    return [Row(AREA, f"  {keys:,} keystrokes after {waiting:,} updates that wait for an item "
                "never sent", median(with_waiting), "s", baseline=median(without),
                baseline_name=f"the {keys:,} keystrokes alone",
                note="includes reading the waiting updates themselves; each arrival wakes "
                     "only what waits for it, the keystroke path stays on")]


def run(quick: bool) -> list[Row]:
    keys = 10_000 if quick else 100_000
    t0 = time.perf_counter()
    tr = make_session(keys)
    made = time.perf_counter() - t0
    n = len(tr.rows)
    ours: list[float] = []
    cpu: list[float] = []
    base: list[float] = []
    load = os.getloadavg()[0]
    for _ in range(3 if quick else 7):  # interleaved
        wall, used = _ours(tr)
        ours.append(wall)
        cpu.append(used)
        base.append(_pycrdt(tr))
    from assessiq.core.provenance import compute

    prov = compute(tr.rows, pastes=tr.pastes, generated=tr.generated)
    note = (f"{n} updates, final code {len(tr.code)} chars; found {len(prov.pastes)} pastes, "
            f"{len(prov.bursts)} bursts, {len(prov.transcriptions)} transcription runs; "
            f"trace made in {made:.0f} s; load average {load:.1f} on "
            f"{os.cpu_count()} cores")
    return [*cadence_rows(50 if quick else 300),
        Row(AREA, f"provenance of a {n:,}-update session", median(ours), "s",
            baseline=median(base), baseline_name="pycrdt replaying the same updates",
            goal="<= 1 s for 100,000 keystrokes", note=note),
        Row(AREA, "  the same, CPU time of the process", median(cpu), "s",
            note=f"min {min(cpu):.2f} s, max {max(cpu):.2f} s"),
        Row(AREA, "  per update", 1e6 * median(ours) / n, "us",
            baseline=1e6 * median(base) / n, baseline_name="pycrdt replay"),
        *waiting_rows(300, 3000), *waiting_rows(3000, 3000),
    ]
