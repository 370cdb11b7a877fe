"""Unsigned LEB128 varints and zigzag-encoded signed ones: the numbers in the session file's
segments and in the update codec's columns."""

from __future__ import annotations

__all__ = ["read_varint", "read_zigzag", "write_varint", "write_zigzag"]

MAX_VARINT_BITS = 70  # 10 bytes: a difference of two 64-bit values, zigzagged, fits


def write_varint(n: int, out: bytearray) -> None:
    """Append `n` (>= 0) to `out`."""
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return


def write_zigzag(n: int, out: bytearray) -> None:
    """Append the signed `n`, small magnitudes in few bytes."""
    write_varint(n << 1 if n >= 0 else (-n << 1) - 1, out)


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(the varint at `pos`, the position after it); ValueError if truncated or too long."""
    n = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, pos
        shift += 7
        if shift > MAX_VARINT_BITS:
            raise ValueError("varint too long")


def read_zigzag(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    z, pos = read_varint(buf, pos)
    return (z >> 1) ^ -(z & 1), pos
