"""Refusals are part of the record: stored, sealed, tamper-evident, reported by `verify`."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from core_factories import build_session

from assessiq.core.record import SessionRecord
from assessiq.core.seal import seal
from assessiq.core.store import MAX_REFUSAL_ROWS, SessionStore
from assessiq.core.verify import verify_record


def _with_refusals(tmp_path: Path, n: int) -> tuple[Path, object]:
    built = build_session(tmp_path / "r.aiq", seed=3, sealed=False)
    store = SessionStore.open(built.path)
    for i in range(n):
        store.append_refusal("sync", f"forbidden write {i}", b"x" * i, t=1000.0 + i)
    seal(store, built.host)
    store.close()
    return built.path, built


def _sql(path: Path, statement: str) -> None:
    """Edit the sealed file behind the seal's back, as a tamperer would."""
    db = sqlite3.connect(path)
    db.execute(statement)
    db.commit()
    db.close()


def test_an_honest_record_has_no_refusals(tmp_path: Path) -> None:
    built = build_session(tmp_path / "h.aiq", seed=3)
    out = verify_record(built.record).to_json()
    assert out["valid"] and out["refusals"] == [] and out["refused"] == 0


def test_refusals_are_sealed_and_reported(tmp_path: Path) -> None:
    path, _ = _with_refusals(tmp_path, 3)
    verdict = verify_record(SessionRecord.load(path))
    assert verdict.valid, verdict.errors
    out = verdict.to_json()
    assert out["refused"] == 3
    assert [r["reason"] for r in out["refusals"]] == [f"forbidden write {i}" for i in range(3)]
    assert {r["channel"] for r in out["refusals"]} == {"sync"}
    record = SessionRecord.load(path)
    assert record.refusals[2]["digest"] == hashlib.sha256(b"xx").hexdigest()
    assert record.refusals[2]["size"] == 2


def test_deleting_or_editing_a_refusal_breaks_the_seal(tmp_path: Path) -> None:
    path, _ = _with_refusals(tmp_path, 3)
    _sql(path, "DELETE FROM refusals WHERE id = (SELECT MAX(id) FROM refusals)")
    verdict = verify_record(SessionRecord.load(path))
    assert not verdict.valid
    assert any("refused" in e and "truncated" in e for e in verdict.errors), verdict.errors
    _sql(path, "UPDATE refusals SET reason = 'nothing' WHERE id = 1")
    verdict = verify_record(SessionRecord.load(path))
    assert not verdict.valid


def test_dropping_the_whole_table_is_caught(tmp_path: Path) -> None:
    path, _ = _with_refusals(tmp_path, 2)
    _sql(path, "DROP TABLE refusals")
    verdict = verify_record(SessionRecord.load(path))
    assert not verdict.valid
    assert any("refused" in e for e in verdict.errors), verdict.errors


def test_a_flood_of_refusals_is_bounded_and_counted(tmp_path: Path) -> None:
    store = SessionStore.create(tmp_path / "f.aiq", {"session": "s"})
    extra = 25
    for i in range(MAX_REFUSAL_ROWS + extra):
        store.append_refusal("control", "junk", b"j", t=float(i))
    rows = store.refusals()
    store.close()
    assert len(rows) == MAX_REFUSAL_ROWS
    assert sum(r["count"] for r in rows) == MAX_REFUSAL_ROWS + extra
    assert rows[-1]["count"] == extra + 1


def test_a_long_reason_is_cut(tmp_path: Path) -> None:
    store = SessionStore.create(tmp_path / "l.aiq", {"session": "s"})
    store.append_refusal("sync", "r" * 100_000)
    (row,) = store.refusals()
    store.close()
    assert len(row["reason"]) == 300
