"""What every benchmark module shares: the row it reports and small statistics helpers.

A benchmark module `bench/bench_<area>.py` defines `run(quick: bool) -> list[Row]`.
Report medians (the machines are noisy) and, where there is a baseline, run it side by side
in the same process and report the ratio.
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass


@dataclass
class Row:
    area: str
    what: str
    value: float
    unit: str
    baseline: float | None = None  # the same measurement for the baseline, same run
    baseline_name: str = ""
    goal: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        assert self.baseline is not None
        return self.value / self.baseline


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def percentile(xs: list[float], p: float) -> float:
    """The p-th percentile (0..100), nearest-rank."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def varied_text(size: int, seed: str = "bench") -> str:
    """`size` characters of varied text, lines of a running SHA-256 (nothing repeats, so
    neither compression nor a CRDT's run merging shrinks it): a paste for the big-sync
    benchmark and tests."""
    line = hashlib.sha256(seed.encode()).hexdigest()
    out, n = [], 0
    while n < size:
        chunk = f"{n:09d} {line}\n"
        out.append(chunk)
        n += len(chunk)
        line = hashlib.sha256(line.encode()).hexdigest()
    return "".join(out)[:size]
