"""Compressed segments of document updates: how the session file keeps every keystroke small.

A segment holds consecutive update rows (sequence number, time, origin, bytes), laid out in
columns before lzma compression: time deltas in 10 ms ticks (zigzag varints), origin indices,
then the updates re-encoded column-wise by `updatecodec` (lossless). Column order lets lzma see
the repetition in each kind of value; raw float timestamps, by contrast, cost ~6 bytes per
keystroke compressed.

Times are kept to 10 ms (`TIME_STEP`): the store rounds them when it records an update
(`quantize_time`), so a segment reproduces its rows exactly. A replay at 100 steps a second is
finer than a screen refreshes, and human key timing at 1 ms costs ~1.1 bytes per keystroke
after compression, at 10 ms ~0.7 (measured on the benchmark trace). Version-2 segments (1 ms
ticks, raw update bytes) still read.

A *batch* is the uncompressed form the store commits first: one row per group commit, the
same columns as fixed-width little-endian arrays, cheap to write on every flush (one SQLite
row instead of one per keystroke) and compacted into segments later.
"""

from __future__ import annotations

import json
import lzma
import math
import struct
import sys
from array import array
from dataclasses import dataclass

from .updatecodec import decode_updates, encode_updates
from .varints import read_varint as _read_varint
from .varints import write_varint as _varint
from .varints import write_zigzag as _zigzag

__all__ = ["TIME_STEP", "UpdateRow", "decode_batch", "decode_segment", "encode_batch",
           "encode_segment", "quantize_time"]

LZMA_PRESET = 6


@dataclass(frozen=True)
class UpdateRow:
    """One stored document update."""

    seq: int
    t: float
    origin: str
    data: bytes


TIME_STEP = 0.01
"""The resolution of document update times in the session file, in seconds."""
_TICKS_PER_S = 100  # 1 / TIME_STEP, as the exact integer the rounding uses
MAX_TIME = 10**11  # seconds since 1970 (the year ~5138): a later time is a damaged segment


def quantize_time(t: float) -> float:
    """`t` rounded to `TIME_STEP` (10 ms), the resolution the session file keeps."""
    if not math.isfinite(t):
        raise ValueError("an update's time must be a finite number")
    return round(t * _TICKS_PER_S) / _TICKS_PER_S


def _grid(rows: list[UpdateRow]) -> tuple[int, list[int]]:
    """The tick rate the rows' times sit on (100 Hz; 1000 Hz for rows from files written
    before times were kept to 10 ms) and the times in ticks."""
    for hz in (_TICKS_PER_S, 1000):
        ticks = [round(r.t * hz) for r in rows]
        if all(k / hz == r.t for k, r in zip(ticks, rows, strict=True)):
            return hz, ticks
    raise ValueError("segment times must be on the 10 ms grid (quantize_time)")


def _pack(rows: list[UpdateRow], hz: int, ticks: list[int], *, raw_only: bool) -> bytes:
    origins = sorted({r.origin for r in rows})
    index = {o: i for i, o in enumerate(origins)}
    header = json.dumps({"v": 3, "origins": origins, "n": len(rows), "seq0": rows[0].seq,
                         "hz": hz, "tick0": ticks[0]}).encode()
    times, who = bytearray(), bytearray()
    prev = ticks[0]
    for k, r in zip(ticks, rows, strict=True):
        _zigzag(k - prev, times)  # times may step back
        prev = k
        _varint(index[r.origin], who)
    body = bytearray()
    _varint(len(header), body)
    body += header
    columns = [bytes(times), bytes(who),
               *encode_updates((r.data for r in rows), raw_only=raw_only)]
    for column in columns:
        _varint(len(column), body)
        body += column
    return lzma.compress(bytes(body), preset=LZMA_PRESET)


def encode_segment(rows: list[UpdateRow]) -> bytes:
    """Pack consecutive rows (times on the `TIME_STEP` grid) into one compressed blob.

    The blob is decoded and compared with `rows` before it is returned (the store deletes
    the rows it replaces): should the update codec ever not give back the exact bytes, the
    segment keeps the updates raw instead."""
    if not rows:
        raise ValueError("a segment needs at least one row")
    hz, ticks = _grid(rows)
    for raw_only in (False, True):
        blob = _pack(rows, hz, ticks, raw_only=raw_only)
        try:
            if decode_segment(blob) == rows:
                return blob
        except ValueError:
            pass
    raise ValueError("a segment did not decode back to its rows")


def decode_segment(blob: bytes) -> list[UpdateRow]:
    """Unpack `encode_segment`; `ValueError` if the blob is damaged."""
    try:
        return _decode_segment(blob)
    except (OverflowError, MemoryError, RecursionError) as exc:  # crafted numbers
        raise ValueError(f"damaged segment ({type(exc).__name__})") from None


def _decode_segment(blob: bytes) -> list[UpdateRow]:
    unpacker = lzma.LZMADecompressor()
    try:
        buf = unpacker.decompress(blob)
    except lzma.LZMAError as exc:
        raise ValueError("damaged segment") from exc
    if not unpacker.eof or unpacker.unused_data:
        raise ValueError("damaged segment: truncated, or bytes after its end")
    hlen, pos = _read_varint(buf, 0)
    try:
        header = json.loads(buf[pos : pos + hlen])
        version = header.get("v")
        if version not in (2, 3):
            raise ValueError("unknown segment version")
        origins = [str(o) for o in header["origins"]]
        n, seq0 = int(header["n"]), int(header["seq0"])
        ms = int(header["ms0" if version == 2 else "tick0"])
        ticks = 1000 if version == 2 else int(header.get("hz", _TICKS_PER_S))
        if ticks not in (_TICKS_PER_S, 1000) or n < 1 or seq0 < 0:
            raise ValueError("damaged segment header")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError("damaged segment header") from exc
    pos += hlen
    columns = []
    for _ in range(3 if version == 2 else 6):
        clen, pos = _read_varint(buf, pos)
        if pos + clen > len(buf):
            raise ValueError("truncated segment")
        columns.append(bytes(buf[pos : pos + clen]))
        pos += clen
    times, who = columns[:2]
    if version == 2:  # lengths, then the update bytes after the columns
        datas, lp, lengths = [], 0, columns[2]
        for _ in range(n):
            ln, lp = _read_varint(lengths, lp)
            if pos + ln > len(buf):
                raise ValueError("damaged segment row")
            datas.append(bytes(buf[pos : pos + ln]))
            pos += ln
        if lp != len(lengths):
            raise ValueError("damaged segment: trailing data")
    else:
        datas = decode_updates(columns[2:], n)
    rows, tp, wp = [], 0, 0
    limit = MAX_TIME * ticks
    for i in range(n):
        zz, tp = _read_varint(times, tp)
        ms += (zz >> 1) ^ -(zz & 1)
        oi, wp = _read_varint(who, wp)
        if oi >= len(origins) or not -limit <= ms <= limit:
            raise ValueError("damaged segment row")
        rows.append(UpdateRow(seq0 + i, ms / ticks, origins[oi], datas[i]))
    if pos != len(buf) or tp != len(times) or wp != len(who):
        raise ValueError("damaged segment: trailing data")
    return rows


_BATCH_MAGIC = b"AQB1"
_BATCH_HEAD = struct.Struct("<4sII")  # magic, rows, origin-table length


def _le(values: array) -> bytes:  # type: ignore[type-arg]
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def encode_batch(times: tuple[float, ...], origins: tuple[str, ...],
                 datas: tuple[bytes, ...]) -> bytes:
    """Pack one group commit's rows (parallel columns) for the store's hot table."""
    n = len(times)
    if not n or len(origins) != n or len(datas) != n:
        raise ValueError("a batch needs equally long, non-empty columns")
    table = sorted(set(origins))
    if len(table) > 0xFFFF:
        raise ValueError("too many distinct origins in one batch")
    if len(table) == 1:  # the usual batch: one person typing
        who = bytes(2 * n)
    else:
        index = {o: i for i, o in enumerate(table)}
        who = _le(array("H", [index[o] for o in origins]))
    names = json.dumps(table).encode()
    return b"".join((
        _BATCH_HEAD.pack(_BATCH_MAGIC, n, len(names)), names,
        _le(array("d", times)), who, _le(array("I", map(len, datas))), *datas,
    ))


def _column(kind: str, buf: bytes, pos: int, n: int) -> tuple[array, int]:  # type: ignore[type-arg]
    values = array(kind)
    end = pos + n * values.itemsize
    if end > len(buf):
        raise ValueError("truncated batch")
    values.frombytes(buf[pos:end])
    if sys.byteorder == "big":
        values.byteswap()
    return values, end


def decode_batch(blob: bytes, first_seq: int) -> list[UpdateRow]:
    """Unpack `encode_batch` (rows numbered from `first_seq`); `ValueError` if damaged."""
    if len(blob) < _BATCH_HEAD.size:
        raise ValueError("truncated batch")
    magic, n, names_len = _BATCH_HEAD.unpack_from(blob)
    pos = _BATCH_HEAD.size
    if magic != _BATCH_MAGIC or n == 0 or pos + names_len > len(blob):
        raise ValueError("damaged batch header")
    try:
        table = json.loads(blob[pos : pos + names_len])
    except ValueError as exc:
        raise ValueError("damaged batch header") from exc
    if not isinstance(table, list) or not all(isinstance(o, str) for o in table):
        raise ValueError("damaged batch header")
    pos += names_len
    times, pos = _column("d", blob, pos, n)
    who, pos = _column("H", blob, pos, n)
    lengths, pos = _column("I", blob, pos, n)
    if pos + sum(lengths) != len(blob):
        raise ValueError("damaged batch: its rows do not add up to its size")
    rows: list[UpdateRow] = []
    for i in range(n):
        t, oi, ln = times[i], who[i], lengths[i]
        if oi >= len(table) or not math.isfinite(t):
            raise ValueError("damaged batch row")
        rows.append(UpdateRow(first_seq + i, t, table[oi], blob[pos : pos + ln]))
        pos += ln
    return rows
