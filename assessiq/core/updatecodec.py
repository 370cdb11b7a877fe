"""A lossless re-encoding of per-keystroke pycrdt updates that compresses well.

A single-character edit is a ~24-byte update v1: the 7-byte client id twice, a clock that grows
by one per keystroke, the origin's clock one below it, one character. lzma sees the repetition
but not the arithmetic, so a segment spends ~2 bytes per update on them. Here the two shapes
that make up nearly every keystroke are split into columns before compression:

- an *insert*: one struct of one client, a string item with a left and/or right origin, and an
  empty delete set;
- a *delete*: no structs, a delete set of one range of one client;

with client ids replaced by an index into a table and clocks stored as small differences from
what the previous update predicts. Anything else (a first insert, a map write, a remote update
with several structs) is kept as raw bytes. Every update is re-serialised from its parsed form
and compared before it is accepted into a column (values above 64 bits stay raw, so every
difference fits the decoder's varints), and `segments.encode_segment` decodes each new segment
and compares it with its rows before the store lets go of them: decoding gives back the exact
bytes, which the session's seal hashes.
"""

from __future__ import annotations

from collections.abc import Iterable

from .varints import read_varint as _read_varint
from .varints import read_zigzag as _read_zigzag
from .varints import write_varint as _varint
from .varints import write_zigzag as _zigzag

__all__ = ["decode_updates", "encode_updates"]

RAW, INSERT, DELETE = 0, 1, 2
_HAS_LEFT, _HAS_RIGHT, _STRING = 0x80, 0x40, 0x04
_INSERT_INFOS = frozenset({_HAS_LEFT | _STRING, _HAS_RIGHT | _STRING,
                           _HAS_LEFT | _HAS_RIGHT | _STRING})


# A parsed keystroke: (INSERT, client, clock, info, left, right, text bytes) or
# (DELETE, client, clock, length). left/right are (client, clock) or None.
Insert = tuple[int, int, int, int, tuple[int, int] | None, tuple[int, int] | None, bytes]
Delete = tuple[int, int, int, int]


_U64 = 1 << 64  # yrs clocks and client ids are at most 64 bits: larger stays raw


def _parse(update: bytes) -> Insert | Delete | None:
    parsed = _parse_shape(update)
    if parsed is None:
        return None
    numbers = [v for v in parsed[1:] if isinstance(v, int)]
    for ref in parsed[4:6] if parsed[0] == INSERT else ():
        if isinstance(ref, tuple):
            numbers += ref
    return parsed if all(v < _U64 for v in numbers) else None


def _parse_shape(update: bytes) -> Insert | Delete | None:
    try:
        if update[:2] == b"\x01\x01":
            client, pos = _read_varint(update, 2)
            clock, pos = _read_varint(update, pos)
            info = update[pos]
            pos += 1
            if info not in _INSERT_INFOS:
                return None
            left = right = None
            if info & _HAS_LEFT:
                lc, pos = _read_varint(update, pos)
                lk, pos = _read_varint(update, pos)
                left = (lc, lk)
            if info & _HAS_RIGHT:
                rc, pos = _read_varint(update, pos)
                rk, pos = _read_varint(update, pos)
                right = (rc, rk)
            length, pos = _read_varint(update, pos)
            text = update[pos : pos + length]
            if len(text) != length or update[pos + length :] != b"\x00":
                return None
            return (INSERT, client, clock, info, left, right, text)
        if update[:2] == b"\x00\x01":
            client, pos = _read_varint(update, 2)
            if update[pos : pos + 1] != b"\x01":
                return None
            clock, pos = _read_varint(update, pos + 1)
            length, pos = _read_varint(update, pos)
            if pos != len(update):
                return None
            return (DELETE, client, clock, length)
    except (ValueError, IndexError):
        return None
    return None


def _serialise(parsed: Insert | Delete) -> bytes:
    out = bytearray()
    if parsed[0] == INSERT:
        _, client, clock, info, left, right, text = parsed  # type: ignore[misc]
        out += b"\x01\x01"
        _varint(client, out)
        _varint(clock, out)
        out.append(info)
        for ref in (left, right):
            if ref is not None:
                _varint(ref[0], out)
                _varint(ref[1], out)
        _varint(len(text), out)
        out += text
        out.append(0)
    else:
        _, client, clock, length = parsed  # type: ignore[misc]
        out += b"\x00\x01"
        _varint(client, out)
        out.append(1)
        _varint(clock, out)
        _varint(length, out)
    return bytes(out)


def encode_updates(updates: Iterable[bytes], *, raw_only: bool = False) -> list[bytes]:
    """The updates as columns (kinds, numbers, text, raw); `decode_updates` inverts it.
    `raw_only` keeps every update as raw bytes (the fallback the segment format uses)."""
    kinds, nums, text, raw = bytearray(), bytearray(), bytearray(), bytearray()
    clients: dict[int, int] = {}
    last_insert: dict[int, int] = {}  # client -> clock of its previous insert
    last_delete = last_right = 0  # typing at one spot keeps the same right neighbour

    def client_index(client: int) -> None:
        index = clients.get(client)
        if index is None:  # a new client: its index, then its id
            index = clients[client] = len(clients)
            _varint(index, nums)
            _varint(client, nums)
        else:
            _varint(index, nums)

    for update in updates:
        parsed = None if raw_only else _parse(update)
        if parsed is None or _serialise(parsed) != update:
            kinds.append(RAW)
            _varint(len(update), raw)
            raw += update
            continue
        kinds.append(parsed[0])
        if parsed[0] == INSERT:
            _, client, clock, info, left, right, chars = parsed  # type: ignore[misc]
            client_index(client)
            _zigzag(clock - last_insert.get(client, -1) - 1, nums)
            last_insert[client] = clock
            nums.append(info)
            if left is not None:
                client_index(left[0])
                _zigzag(left[1] - (clock - 1), nums)
            if right is not None:
                client_index(right[0])
                _zigzag(right[1] - last_right, nums)
                last_right = right[1]
            _varint(len(chars), text)
            text += chars
        else:
            _, client, clock, length = parsed  # type: ignore[misc]
            client_index(client)
            _zigzag(clock - (last_delete - 1), nums)
            last_delete = clock
            _varint(length, nums)
    return [bytes(kinds), bytes(nums), bytes(text), bytes(raw)]


def decode_updates(columns: list[bytes], n: int) -> list[bytes]:
    """Invert `encode_updates` for `n` updates; `ValueError` if the columns are damaged."""
    if len(columns) != 4:
        raise ValueError("damaged update columns")
    kinds, nums, text, raw = columns
    if len(kinds) != n:
        raise ValueError("damaged update columns: wrong count")
    clients: list[int] = []
    last_insert: dict[int, int] = {}
    last_delete = last_right = 0
    np = tp = rp = 0
    out: list[bytes] = []

    def read_client() -> int:
        nonlocal np
        index, np = _read_varint(nums, np)
        if index == len(clients):
            client, np = _read_varint(nums, np)
            clients.append(client)
        elif index > len(clients):
            raise ValueError("damaged update columns: unknown client")
        return clients[index]

    for kind in kinds:
        if kind == RAW:
            length, rp = _read_varint(raw, rp)
            if rp + length > len(raw):
                raise ValueError("damaged update columns: truncated raw update")
            out.append(raw[rp : rp + length])
            rp += length
        elif kind == INSERT:
            client = read_client()
            delta, np = _read_zigzag(nums, np)
            clock = last_insert.get(client, -1) + 1 + delta
            last_insert[client] = clock
            if np >= len(nums) or nums[np] not in _INSERT_INFOS:
                raise ValueError("damaged update columns: bad item info")
            info = nums[np]
            np += 1
            left = right = None
            if info & _HAS_LEFT:
                lc = read_client()
                d, np = _read_zigzag(nums, np)
                left = (lc, clock - 1 + d)
            if info & _HAS_RIGHT:
                rc = read_client()
                d, np = _read_zigzag(nums, np)
                right = (rc, last_right + d)
                last_right = right[1]
            length, tp = _read_varint(text, tp)
            if tp + length > len(text):
                raise ValueError("damaged update columns: truncated text")
            chars = text[tp : tp + length]
            tp += length
            if clock < 0 or (left and left[1] < 0) or (right and right[1] < 0):
                raise ValueError("damaged update columns: negative clock")
            out.append(_serialise((INSERT, client, clock, info, left, right, chars)))
        elif kind == DELETE:
            client = read_client()
            d, np = _read_zigzag(nums, np)
            clock = last_delete - 1 + d
            last_delete = clock
            length, np = _read_varint(nums, np)
            if clock < 0:
                raise ValueError("damaged update columns: negative clock")
            out.append(_serialise((DELETE, client, clock, length)))
        else:
            raise ValueError("damaged update columns: unknown kind")
    if np != len(nums) or tp != len(text) or rp != len(raw):
        raise ValueError("damaged update columns: trailing data")
    return out
