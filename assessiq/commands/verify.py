"""`assessiq verify SESSION [--json]`: check a sealed session file offline and recompute the
score. Exit 0 valid, 1 invalid or tampered, 2 unreadable."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from ..core.errors import RecordError
from ..core.record import SessionRecord
from ..core.verify import verify_record


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="check a sealed session file and recompute its integrity score",
        description=(
            "Check a session file offline: the host's seal, every event's signature, the hash "
            "chain, sequence, receipts, the document history, heartbeats, each side's restarts; "
            "then recompute the score from the verified log and the session's policy, and "
            "the final code's provenance (who wrote each character, and how). Exit 0 when "
            "valid, 1 when invalid or tampered with, 2 when the file cannot be read."
        ),
    )
    p.add_argument("session", help="the session file (.aiq)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--host-key", metavar="FINGERPRINT",
                   help="also require the session to be sealed by this host key fingerprint")
    p.set_defaults(func=run)


def _when(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")


MAX_RESTART_LINES = 20


def _restart_line(r: dict[str, Any]) -> str:
    """One restart: when, whose, how long away, why, and whether it checks."""
    from ..core.resume import describe

    return f"  RESTART {describe(r, _when)}"


def _print_restarts(items: list[dict[str, Any]]) -> None:
    if not items:
        return
    print(f"restarts  {len(items)} (each side's app died and resumed the session)")
    for r in items[:MAX_RESTART_LINES]:
        print(_restart_line(r))
    if len(items) > MAX_RESTART_LINES:
        print(f"  … and {len(items) - MAX_RESTART_LINES} more (see --json)")


def run(args: argparse.Namespace) -> int:
    try:
        record = SessionRecord.load(args.session)
    except RecordError as exc:
        if args.json:
            print(json.dumps({"valid": False, "events": 0, "errors": [str(exc)], "warnings": [],
                              "flags": [], "score": None, "explanation": [], "gaps": [],
                              "session": None, "host": None, "candidate": None,
                              "sealed": False, "provenance": None, "restarts": [],
                              "admissions": []}))
        else:
            print(f"assessiq verify: {exc}", file=sys.stderr)
        return 2
    verdict = verify_record(record, expected_host=args.host_key)
    out = verdict.to_json()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0 if verdict.valid else 1
    print(f"session   {verdict.session}")
    print(f"host      {verdict.host or '-'}   (compare with the interviewer's fingerprint)")
    print(f"candidate {verdict.candidate or '-'}")
    print(f"events    {verdict.events}")
    if verdict.log is not None and verdict.log.events:
        counts = Counter(e.kind for e in verdict.log.events)
        print("          " + ", ".join(f"{kind} ×{n}" for kind, n in sorted(counts.items())))
    if verdict.valid:
        devices = "devices (ADMITTED below)" if verdict.admissions else "device"
        print(f"VALID: sealed by the host; every event signed by the candidate's {devices}, "
              "in order, unbroken, receipted")
    else:
        print("INVALID:")
        for error in verdict.errors:
            print(f"  - {error}")
    if verdict.provenance is not None:
        print(f"code      {verdict.provenance.sentence()}")
    _print_restarts(verdict.restarts)
    for a in verdict.admissions:
        problem = f"  [{a['problem']}]" if a.get("problem") else ""
        print(f"  ADMITTED {_when(a['at'])} device {a['fingerprint']} "
              f"({a['name'] or 'no name'}) in place of the one before, from event "
              f"{a['from_seq']}{problem}")
    if out["score"] is not None:
        print(f"score     {out['score']}/100")
        for item in out["explanation"]:
            print(f"  -{item['penalty']:g}  {item['kind']}: {item['why']}")
        for flag in out["flags"]:
            print(f"  FLAG  {_when(flag['start'])} {flag['kind']} ({flag['reason']})")
        for gap in out["gaps"]:
            print(f"  GAP   {_when(gap['start'])} no heartbeat for {gap['duration']:.0f} s")
    return 0 if verdict.valid else 1
