"""The report's times carry their date wherever it is not the session's first day."""

from __future__ import annotations

import datetime as dt

from assessiq.room.report import _stamper


def test_a_time_past_midnight_carries_its_date() -> None:
    start = dt.datetime(2026, 12, 7, 23, 59, 0, tzinfo=dt.UTC).timestamp()
    stamp = _stamper(start)
    assert stamp(start + 30) == "23:59:30"
    assert stamp(start + 120) == "2026-12-08 00:01:00"
    assert _stamper(None)(start) == "2026-12-07 23:59:00"  # no start known: always dated
