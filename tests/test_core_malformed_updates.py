"""Update bytes that make yrs panic (pyo3's PanicException is a BaseException, which a plain
`except Exception` lets through): refused as ValueError by the document, dropped by the sync
protocol, reported by `verify` — never a traceback. Also: crafted segments and batches."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pycrdt
import pytest
from pycrdt import Doc

from assessiq.cli import main as cli_main
from assessiq.core.document import SharedDoc, apply_update_checked
from assessiq.core.record import SessionRecord
from assessiq.core.segments import UpdateRow, decode_segment, encode_segment
from assessiq.core.sync import SyncProtocol
from assessiq.core.updatecodec import INSERT, decode_updates, encode_updates
from assessiq.core.verify import verify_record
from tests.core_factories import build_session

# Found by flipping bits in real keystrokes: the first is client 12345 typing "a", the second
# its next keystroke with three bits flipped, which makes yrs 0.28 panic (Option::unwrap).
FIRST = bytes.fromhex("0101b96000040104636f6465016100")
PANICS = bytes.fromhex("0101b96001a4396000016200")


def test_the_planted_update_really_panics_pycrdt() -> None:
    doc: Doc = Doc()
    doc.apply_update(FIRST)
    with pytest.raises(BaseException) as info:
        doc.apply_update(PANICS)
    assert not isinstance(info.value, Exception)  # the reason for all of this


def test_the_document_refuses_it_as_value_error_and_goes_on() -> None:
    shared = SharedDoc()
    shared.apply_update(FIRST)
    with pytest.raises(ValueError, match="cannot be applied"):
        shared.apply_update(PANICS)
    plain: Doc = Doc()
    apply_update_checked(plain, FIRST)
    with pytest.raises(ValueError):
        apply_update_checked(plain, PANICS)
    shared.insert_code(1, "b")
    assert shared.code_text == "ab"


def test_the_sync_protocol_drops_it() -> None:
    doc = SharedDoc()
    protocol = SyncProtocol(doc)
    protocol.receive(pycrdt.create_update_message(FIRST))
    protocol.receive(pycrdt.create_update_message(PANICS))
    assert protocol.dropped == 1 and doc.code_text == "a"


def test_verify_reports_it_and_the_cli_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                ) -> None:
    built = build_session(tmp_path / "s.aiq", seed=3)
    record = built.record
    rows = record.updates
    record.updates = [UpdateRow(0, rows[0].t, rows[0].origin, FIRST),
                      UpdateRow(1, rows[0].t, rows[0].origin, PANICS),
                      *[UpdateRow(r.seq + 2, r.t, r.origin, r.data) for r in rows]]
    verdict = verify_record(record)
    assert not verdict.valid
    assert any("cannot be replayed at update 1" in e for e in verdict.errors)
    path = tmp_path / "panics.aiq"
    record.write(path)
    capsys.readouterr()
    assert cli_main(["verify", str(path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False and any("cannot be replayed" in e for e in out["errors"])


def test_values_beyond_64_bits_stay_raw_and_come_back() -> None:
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
            n >>= 7
            if not n:
                return bytes(out)
    big = 1 << 76
    odd = [b"\x01\x01" + varint(5) + varint(big) + b"\x84" + varint(5) + varint(0) + b"\x01a\x00",
           b"\x00\x01" + varint(5) + b"\x01" + varint(big) + varint(1),
           b"\x01\x01" + varint(5) + varint(3) + b"\x84" + varint(5) + varint(2) + b"\x01a\x00"]
    columns = encode_updates(odd)
    assert list(columns[0]) == [0, 0, INSERT]  # the two huge ones raw, the ordinary one not
    assert decode_updates(columns, len(odd)) == odd


def _segment_with_header(change: dict[str, object]) -> bytes:
    rows = [UpdateRow(0, 1.0, "host", FIRST)]
    body = lzma.decompress(encode_segment(rows))
    hlen = body[0]
    assert hlen < 128  # a one-byte varint
    header = json.loads(body[1 : 1 + hlen])
    header.update(change)
    raw = json.dumps(header).encode()
    n, prefix = len(raw), bytearray()
    while True:
        prefix.append((n & 0x7F) | (0x80 if n >> 7 else 0))
        n >>= 7
        if not n:
            break
    return lzma.compress(bytes(prefix) + raw + body[1 + hlen :])


@pytest.mark.parametrize("change", [{"n": 1e400}, {"tick0": 10**400}, {"tick0": 1e308},
                                    {"hz": 7}, {"seq0": -1}, {"v": 9}, {"origins": 3}])
def test_crafted_segment_headers_are_value_errors(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        decode_segment(_segment_with_header(change))


def test_bytes_after_a_segment_or_a_wrong_range_are_refused(tmp_path: Path) -> None:
    rows = [UpdateRow(0, 1.0, "host", FIRST)]
    blob = encode_segment(rows)
    assert decode_segment(blob) == rows
    with pytest.raises(ValueError, match="after its end"):
        decode_segment(blob + b"\x00junk")
    built = build_session(tmp_path / "r.aiq", seed=5)
    import sqlite3
    with sqlite3.connect(built.path) as db:
        db.execute("UPDATE segments SET last_seq = last_seq + 1")
    with pytest.raises(Exception, match="not a readable session file") as info:
        SessionRecord.load(built.path)
    assert "do not match its range" in str(info.value)


@pytest.mark.parametrize("seed", range(12))
def test_flipped_bytes_in_a_sealed_files_segment_never_pass(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int) -> None:
    """The real file, not the decoded record: the segment blob itself is edited."""
    import random
    import sqlite3
    built = build_session(tmp_path / "f.aiq", seed=seed, n_updates=120)
    rng = random.Random(seed)
    with sqlite3.connect(built.path) as db:
        (blob,) = db.execute("SELECT blob FROM segments ORDER BY first_seq LIMIT 1").fetchone()
        damaged = bytearray(blob)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        db.execute("UPDATE segments SET blob = ? WHERE first_seq = 0", (bytes(damaged),))
    capsys.readouterr()
    code = cli_main(["verify", str(built.path)])
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert "Traceback" not in err and len([ln for ln in err.splitlines() if ln]) <= 1
