"""Run the benchmarks and print one table: `python -m bench [--quick] [--only AREA] [--json F]`."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.common import Row


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--only", action="append", default=[], help="run only these areas")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    here = Path(__file__).parent
    rows: list[Row] = []
    failed: list[str] = []
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        area = info.name.removeprefix("bench_")
        if args.only and area not in args.only:
            continue
        print(f"running {area} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{info.name}")
            rows.extend(module.run(quick=args.quick))
        except Exception as exc:  # a failing benchmark must not hide the others
            failed.append(f"{area}: {type(exc).__name__}: {exc}")
        print(f"  {area} took {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    header = ["area", "what", "value", "unit", "baseline", "ratio", "goal", "note"]
    table = [header] + [
        [r.area, r.what, fmt(r.value), r.unit,
         (f"{fmt(r.baseline)} ({r.baseline_name})" if r.baseline is not None else "-"),
         (f"{r.ratio:.2f}x" if r.ratio is not None else "-"), r.goal, r.note]
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("-+-".join("-" * w for w in widths))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    for f in failed:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
