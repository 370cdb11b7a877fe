"""The session store: reopen restores the document exactly, segments are lossless, replay at
any time is right, and the seal compacts everything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import lzma
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from assessiq.core.errors import RecordError, StoreError
from assessiq.core.record import SessionRecord
from assessiq.core.segments import decode_batch, encode_batch, quantize_time
from assessiq.core.store import (
    SEGMENT_SIZE,
    SessionStore,
    UpdateRow,
    decode_segment,
    encode_segment,
)

META = {"session": "s1", "created": 1.0}


def _fill(doc: Doc[Any], n: int) -> None:
    code = doc.get("code", type=Text)
    state = doc.get("state", type=Map)
    tests = doc.get("tests", type=Array)
    for i in range(n):
        with doc.transaction(origin="host"):
            code.insert(len(code), "é数🙂x"[i % 4])
        if i % 7 == 0:
            with doc.transaction(origin="host"):
                state["phase"] = f"p{i}"
                tests.append(f"case {i}")
        if i % 11 == 10:
            with doc.transaction(origin="host"):
                del code[0:1]


def _content(doc: Doc[Any]) -> tuple[str, dict[str, Any], list[Any]]:
    return (str(doc.get("code", type=Text)), doc.get("state", type=Map).to_py() or {},
            doc.get("tests", type=Array).to_py() or [])


def _equivalent(a: Doc[Any], b: Doc[Any]) -> None:
    assert _content(a) == _content(b)
    assert a.get_state() == b.get_state()
    # nothing in `a` that `b` lacks: the diff adds nothing to a fresh copy of `b`
    c: Doc[Any] = Doc()
    c.apply_update(b.get_update())
    c.apply_update(a.get_update(b.get_state()))
    assert c.get_state() == b.get_state() and _content(c) == _content(b)


def test_reopen_restores_the_document_exactly(tmp_path: Path) -> None:
    path = tmp_path / "s.aiq"
    doc: Doc[Any] = Doc()
    store = SessionStore.create(path, META)
    store.attach(doc, local_origin="host")
    _fill(doc, 300)
    # a remote update (no origin) is recorded under the remote origin
    peer: Doc[Any] = Doc()
    peer.apply_update(doc.get_update())
    peer_updates: list[bytes] = []
    sub = peer.observe(lambda e: peer_updates.append(e.update))
    peer.get("code", type=Text).insert(0, "peer:")
    peer.unobserve(sub)
    doc.apply_update(peer_updates[0])
    store.close()

    reopened = SessionStore.open(path)
    fresh: Doc[Any] = Doc()
    n = reopened.load_into(fresh)
    assert n == reopened.durable_seq + 1 == len(list(reopened.updates()))
    _equivalent(fresh, doc)
    assert str(fresh.get("code", type=Text)).startswith("peer:")
    origins = [r.origin for r in reopened.updates()]
    assert origins.count("remote") == 1 and set(origins) == {"host", "remote"}
    assert reopened.meta()["session"] == "s1"
    # keep writing after reopen: sequence numbers continue, nothing is overwritten
    reopened.attach(fresh, local_origin="host")
    with fresh.transaction(origin="host"):
        fresh.get("code", type=Text).insert(0, "more ")
    reopened.close()
    again = SessionStore.open(path)
    seqs = [r.seq for r in again.updates()]
    assert seqs == list(range(len(seqs))) and len(seqs) == n + 1
    final: Doc[Any] = Doc()
    again.load_into(final)
    _equivalent(final, fresh)
    again.close()


def test_compaction_keeps_every_update(tmp_path: Path) -> None:
    doc: Doc[Any] = Doc()
    code = doc.get("code", type=Text)
    store = SessionStore.create(tmp_path / "c.aiq", META)
    store.attach(doc, local_origin="host")
    store.compact_high_water = 2 * SEGMENT_SIZE  # no event loop here: the high-water path
    captured: list[bytes] = []
    sub = doc.observe(lambda e: captured.append(e.update))
    for i in range(3 * SEGMENT_SIZE + 100):
        with doc.transaction(origin="host"):
            code.insert(len(code), chr(97 + i % 26))
        if i % 200 == 0:
            store.flush()
    doc.unobserve(sub)
    store.flush()
    store.wait_compaction()  # compaction runs in the background
    db = store._db
    n_seg = db.execute("SELECT COUNT(*) FROM segments").fetchone()[0]
    hot = store.hot_count()
    assert n_seg >= 1 and hot < 2 * SEGMENT_SIZE  # the flush policy compacted
    rows = list(store.updates())
    assert [r.data for r in rows] == captured
    assert [r.seq for r in rows] == list(range(len(captured)))
    store.close()


def test_state_at_replays_the_past(tmp_path: Path) -> None:
    store = SessionStore.create(tmp_path / "r.aiq", META)
    doc: Doc[Any] = Doc()
    code = doc.get("code", type=Text)
    snapshots: list[tuple[float, str]] = []
    pending: list[bytes] = []
    sub = doc.observe(lambda e: pending.append(e.update))
    t = 1000.0
    for i in range(2 * SEGMENT_SIZE + 300):  # some in segments, some hot
        t += 0.25 if i % 50 else 30.0  # typing bursts and pauses
        with doc.transaction():
            if i % 9 == 8:
                del code[len(code) - 1:]
            else:
                code.insert(len(code), "ab数"[i % 3])
        store.record_update(pending.pop(), origin="host", t=t)
        snapshots.append((t, str(code)))
    doc.unobserve(sub)
    store.flush()
    store.compact()
    assert store._db.execute("SELECT COUNT(*) FROM segments").fetchone()[0] >= 1
    assert str(store.state_at(0.0).get("code", type=Text)) == ""
    for k in (0, 1, 49, 50, 51, 700, SEGMENT_SIZE - 1, SEGMENT_SIZE, 1500,
              len(snapshots) - 1):
        at, text = snapshots[k]
        assert str(store.state_at(at).get("code", type=Text)) == text, k
        # between two updates: still the earlier state
        if k + 1 < len(snapshots):
            mid = (at + snapshots[k + 1][0]) / 2
            assert str(store.state_at(mid).get("code", type=Text)) == text
    assert str(store.state_at(t + 100).get("code", type=Text)) == str(code)
    store.close()


def test_put_seal_compacts_everything(tmp_path: Path) -> None:
    path = tmp_path / "p.aiq"
    store = SessionStore.create(path, META)
    doc: Doc[Any] = Doc()
    store.attach(doc, local_origin="host")
    _fill(doc, SEGMENT_SIZE + 77)
    store.flush()
    before = list(store.updates())
    assert store.hot_count() > 0
    store.put_seal(b"seal-bytes")
    assert store.hot_count() == 0
    assert list(store.updates()) == before
    assert store.seal_raw() == b"seal-bytes"
    with pytest.raises(StoreError, match="already sealed"):
        store.put_seal(b"again")
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_other_tables_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "o.aiq"
    with SessionStore.create(path, META) as store:
        store.append_envelope(b"env-1", received_at=5.0)
        store.append_receipt(b"rcpt-1")
        store.put_run("r1", {"lang": "py"}, None, t=3.0)
        store.put_run("r1", {"lang": "py"}, {"run": {"stdout": "1\n"}}, t=3.0)
        store.add_private("note", {"text": "ok"}, t=4.0)
        store.add_private("score", 88, t=6.0)
        store.set_meta("phase", "done")
    with SessionStore.open(path) as store:
        assert store.envelopes() == [b"env-1"] and store.receipts() == [b"rcpt-1"]
        assert store.runs() == [{"id": "r1", "t": 3.0, "request": {"lang": "py"},
                                 "result": {"run": {"stdout": "1\n"}}}]
        assert [p["kind"] for p in store.private()] == ["note", "score"]
        assert store.private("score")[0]["value"] == 88
        assert store.meta()["phase"] == "done"


def test_store_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "e.aiq"
    SessionStore.create(path, META).close()
    junk = tmp_path / "junk.aiq"
    junk.write_bytes(b"hello, not sqlite" * 100)
    other_db = tmp_path / "other.db"
    sqlite3.connect(other_db).execute("CREATE TABLE meta (key TEXT, value TEXT)")
    cases: list[Callable[[], object]] = [
        lambda: SessionStore.create(path, META),
        lambda: SessionStore.open(tmp_path / "missing.aiq"),
        lambda: SessionStore.open(junk),
        lambda: SessionStore.open(other_db),
        lambda: SessionStore.create(tmp_path / "no" / "dir.aiq", META),
    ]
    for case in cases:
        with pytest.raises(StoreError) as exc:
            case()
        assert "\n" not in str(exc.value)
    closed = SessionStore.open(path)
    closed.close()
    with pytest.raises(StoreError):
        closed.record_update(b"\x01\x02\x03", origin="host")


async def test_updates_flush_by_themselves_in_an_event_loop(tmp_path: Path) -> None:
    store = SessionStore.create(tmp_path / "a.aiq", META)
    doc: Doc[Any] = Doc()
    store.attach(doc, local_origin="host")
    with doc.transaction(origin="host"):
        doc.get("code", type=Text).insert(0, "x")
    assert store.durable_seq == -1
    for _ in range(100):
        await asyncio.sleep(store.flush_interval)
        if store.durable_seq == 0:
            break
    assert store.durable_seq == 0
    store.close()


rows_strategy = st.lists(
    # the store keeps times to 10 ms (quantize_time), in any order
    st.tuples(st.integers(min_value=-2**43, max_value=2**43).map(lambda c: c / 100),
              st.text(max_size=12), st.binary(max_size=64)),
    min_size=1, max_size=40,
)


def test_segment_times_must_be_on_the_10ms_grid() -> None:
    with pytest.raises(ValueError, match="10 ms grid"):
        encode_segment([UpdateRow(0, 1.0005, "host", b"x")])
    # rows from files written before times were kept to 10 ms (1 ms) still compact, exactly
    legacy = [UpdateRow(0, 1.005, "host", b"x"), UpdateRow(1, 1.007, "remote", b"y")]
    assert decode_segment(encode_segment(legacy)) == legacy
    assert quantize_time(1.004) == 1.0 and quantize_time(2.5) == 2.5
    assert quantize_time(1234567890.126) == 1234567890.13


def _v2_segment(rows: list[UpdateRow]) -> bytes:
    """A segment as the previous format wrote it (1 ms ticks, lengths, raw update bytes)."""
    def varint(n: int, out: bytearray) -> None:
        while True:
            out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
            n >>= 7
            if not n:
                return
    origins = sorted({r.origin for r in rows})
    ms = [round(r.t * 1000) for r in rows]
    header = json.dumps({"v": 2, "origins": origins, "n": len(rows), "seq0": rows[0].seq,
                         "ms0": ms[0]}).encode()
    times, who, lengths, body = bytearray(), bytearray(), bytearray(), bytearray()
    prev = ms[0]
    for m, r in zip(ms, rows, strict=True):
        delta = m - prev
        varint((delta << 1) ^ (delta >> 63), times)
        prev = m
        varint(origins.index(r.origin), who)
        varint(len(r.data), lengths)
    varint(len(header), body)
    body += header
    for column in (times, who, lengths):
        varint(len(column), body)
        body += column
    body += b"".join(r.data for r in rows)
    return lzma.compress(bytes(body))


def test_segments_of_the_previous_format_still_read() -> None:
    rows = [UpdateRow(7, 1.001, "host", b"\x01\x02"), UpdateRow(8, 1.002, "remote", b"xyz"),
            UpdateRow(9, 0.999, "host", b"")]
    assert decode_segment(_v2_segment(rows)) == rows


@settings(max_examples=300, deadline=None)
@given(rows_strategy, st.integers(min_value=0, max_value=2**40))
def test_segments_are_lossless(rows: list[tuple[float, str, bytes]], seq0: int) -> None:
    original = [UpdateRow(seq0 + i, t, o, d) for i, (t, o, d) in enumerate(rows)]
    assert decode_segment(encode_segment(original)) == original


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_damaged_segments_raise_value_error(garbage: bytes, pos: int, bit: int) -> None:
    with pytest.raises(ValueError):
        decode_segment(garbage)
    blob = bytearray(encode_segment([UpdateRow(0, 1.5, "host", b"\x01\x02abc")]))
    blob[pos % len(blob)] ^= 1 << bit  # the xz container's checks catch any flip
    with pytest.raises(ValueError):
        decode_segment(bytes(blob))


@settings(max_examples=300, deadline=None)
@given(rows_strategy, st.integers(min_value=0, max_value=2**40))
def test_batches_are_lossless(rows: list[tuple[float, str, bytes]], seq0: int) -> None:
    original = [UpdateRow(seq0 + i, t, o, d) for i, (t, o, d) in enumerate(rows)]
    times, origins, datas = zip(*rows, strict=True)
    assert decode_batch(encode_batch(times, origins, datas), seq0) == original


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0), st.integers(min_value=0, max_value=7),
       st.integers(min_value=0))
def test_damaged_batches_raise_value_error_or_differ(garbage: bytes, pos: int, bit: int,
                                                     cut: int) -> None:
    """A batch has no checksum of its own (the seal protects a finished session): damage
    is either refused with ValueError or reads as different rows, never anything else."""
    with pytest.raises(ValueError):
        decode_batch(b"AQB1" + garbage, 0)
    rows = [UpdateRow(0, 1.5, "host", b"\x01\x02abc"), UpdateRow(1, 1.75, "remote", b"\x07")]
    blob = encode_batch((1.5, 1.75), ("host", "remote"), (b"\x01\x02abc", b"\x07"))
    with pytest.raises(ValueError):
        decode_batch(blob[: cut % len(blob)], 0)  # any truncation
    flipped = bytearray(blob)
    flipped[pos % len(blob)] ^= 1 << bit
    with contextlib.suppress(ValueError):
        assert decode_batch(bytes(flipped), 0) != rows


def test_each_flush_is_one_batch_row_and_a_damaged_one_is_a_clear_error(
        tmp_path: Path) -> None:
    path = tmp_path / "b.aiq"
    store = SessionStore.create(path, META)
    doc: Doc[Any] = Doc()
    store.attach(doc, local_origin="host")
    _fill(doc, 300)
    store.flush()
    _fill(doc, 5)
    store.flush()
    batches = store._db.execute("SELECT first_seq, last_seq FROM batches ORDER BY 1").fetchall()
    assert len(batches) == 2 and batches[0][0] == 0 and batches[1][0] == batches[0][1] + 1
    assert store.hot_count() == batches[1][1] + 1 == len(list(store.updates()))
    store.close()
    with sqlite3.connect(path) as db:  # a torn or edited batch row
        db.execute("UPDATE batches SET blob = substr(blob, 1, 40) WHERE first_seq = 0")
    with pytest.raises(StoreError, match=r"truncated batch|damaged batch"):
        list(SessionStore.open(path).updates())
    with pytest.raises(RecordError, match="not a readable session file") as info:
        SessionRecord.load(path)
    assert "\n" not in str(info.value)


def test_files_without_a_batches_table_still_open(tmp_path: Path) -> None:
    """Files written before batches existed keep one row per update in `updates`."""
    path = tmp_path / "old.aiq"
    store = SessionStore.create(path, META)
    doc: Doc[Any] = Doc()
    store.attach(doc, local_origin="host")
    _fill(doc, 50)
    store.flush()
    rows = list(store.updates())
    store.close()
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO updates VALUES (?, ?, ?, ?)",
                       [(r.seq, r.t, r.origin, r.data) for r in rows])
        db.execute("DROP TABLE batches")
    reopened = SessionStore.open(path)
    assert list(reopened.updates()) == rows and reopened.hot_count() == len(rows)
    doc2: Doc[Any] = Doc()
    reopened.load_into(doc2)
    reopened.attach(doc2, local_origin="host")
    _fill(doc2, 20)  # new updates go into a batch after the old rows
    reopened.flush()
    everything = list(reopened.updates())
    assert everything[: len(rows)] == rows
    assert [r.seq for r in everything] == list(range(len(everything)))
    reopened.compact(keep_hot=0)
    assert list(reopened.updates()) == everything and reopened.hot_count() == 0
    reopened.close()


async def test_compaction_waits_for_the_writer_to_be_idle(tmp_path: Path) -> None:
    doc: Doc[Any] = Doc()
    code = doc.get("code", type=Text)
    store = SessionStore.create(tmp_path / "idle.aiq", META)
    store.attach(doc, local_origin="host")
    store.compact_idle_delay = 0.2

    def segments() -> int:
        return int(store._db.execute("SELECT COUNT(*) FROM segments").fetchone()[0])

    for i in range(3 * SEGMENT_SIZE):
        with doc.transaction(origin="host"):
            code.insert(len(code), chr(97 + i % 26))
        if i % 500 == 0:
            store.flush()
    store.flush()
    assert segments() == 0  # typing: maintenance waits
    for _ in range(100):  # idle now: one segment at a time
        await asyncio.sleep(0.05)
        if segments() >= 1 and store._compaction is not None and store._compaction.done():
            break
    store.wait_compaction()
    assert segments() >= 1
    assert [r.seq for r in store.updates()] == list(range(3 * SEGMENT_SIZE))
    store.close()
