"""A frame counter and a capture timestamp written INTO the pixels, and read back.

The stamp is a strip of 16×16 blocks along the top of the frame, each one bit (near-black or
near-white), aligned to VP8's 16×16 macroblocks so a flat block survives compression at any
sensible bitrate. 80 bits: a 24-bit frame counter, a 48-bit capture time in milliseconds
(`time.time()`), and an 8-bit CRC, so a damaged stamp is rejected rather than misread.

    stamp_bgr(image, counter=7, t_ms=now_ms)       # in place, on a BGR uint8 image
    read_stamp(gray) -> Stamp | None                # from a luma plane (or BGR image)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["BITS", "BLOCK", "STRIP_HEIGHT", "Stamp", "read_stamp", "stamp_bgr", "stamp_luma"]

BLOCK = 16
COLUMNS = 40  # 40 blocks of 16 px: 640 px
ROWS = 2
BITS = COLUMNS * ROWS
STRIP_HEIGHT = BLOCK * ROWS
_LOW, _HIGH = 24, 232
_COUNTER_BITS, _TIME_BITS, _CRC_BITS = 24, 48, 8


@dataclass(frozen=True)
class Stamp:
    """What a stamped frame carries."""

    counter: int  # frame number, modulo 2**24
    t_ms: int  # capture time, ms since the epoch


def _crc8(value: int, nbits: int) -> int:
    """CRC-8 (polynomial 0x07, initial 0xFF: an all-dark or all-bright strip does not pass)
    over the `nbits` low bits of `value`, most significant first."""
    crc = 0xFF
    for i in range(nbits - 1, -1, -1):
        bit = (value >> i) & 1
        top = (crc >> 7) & 1
        crc = (crc << 1) & 0xFF
        if top ^ bit:
            crc ^= 0x07
    return crc


def _bits(counter: int, t_ms: int) -> npt.NDArray[np.bool_]:
    payload = ((counter % (1 << _COUNTER_BITS)) << _TIME_BITS) | (t_ms % (1 << _TIME_BITS))
    word = (payload << _CRC_BITS) | _crc8(payload, _COUNTER_BITS + _TIME_BITS)
    return np.array([(word >> (BITS - 1 - i)) & 1 for i in range(BITS)], dtype=bool)


def _check_size(width: int, height: int) -> None:
    if width < COLUMNS * BLOCK or height < STRIP_HEIGHT:
        raise ValueError(f"a stamped frame must be at least {COLUMNS * BLOCK}×{STRIP_HEIGHT}")


def _strip(counter: int, t_ms: int) -> npt.NDArray[np.uint8]:
    """The stamp as a (STRIP_HEIGHT, 640) luma image."""
    levels = np.where(_bits(counter, t_ms), _HIGH, _LOW).astype(np.uint8).reshape(ROWS, COLUMNS)
    return np.repeat(np.repeat(levels, BLOCK, axis=0), BLOCK, axis=1)


def stamp_bgr(image: npt.NDArray[np.uint8], counter: int, t_ms: int) -> None:
    """Write the stamp into the top-left of a BGR (h, w, 3) uint8 image, in place."""
    h, w = image.shape[:2]
    _check_size(w, h)
    image[:STRIP_HEIGHT, : COLUMNS * BLOCK] = _strip(counter, t_ms)[:, :, None]


def stamp_luma(plane: npt.NDArray[np.uint8], counter: int, t_ms: int) -> None:
    """Write the stamp into a luma (Y) plane of shape (h, w), in place."""
    h, w = plane.shape[:2]
    _check_size(w, h)
    plane[:STRIP_HEIGHT, : COLUMNS * BLOCK] = _strip(counter, t_ms)


def read_stamp(image: npt.NDArray[np.uint8]) -> Stamp | None:
    """Read the stamp from a luma plane (h, w) or a BGR image; None if absent or damaged.
    A frame narrower than 640 px is taken as a 640-wide stamped frame scaled down (the
    sender stepped its picture down on a poor link): its strip is scaled back up first."""
    if image.ndim == 3:
        image = image[:, :, 1]  # green follows luma closely enough for two levels
    h, w = image.shape[:2]
    width = COLUMNS * BLOCK
    if w < width:
        rows = round(STRIP_HEIGHT * w / width)
        if w < width // 8 or h < rows:
            return None
        import cv2

        image = np.asarray(cv2.resize(np.ascontiguousarray(image[:rows]),
                                      (width, STRIP_HEIGHT), interpolation=cv2.INTER_LINEAR),
                           dtype=np.uint8)
    elif h < STRIP_HEIGHT:
        return None
    strip = image[:STRIP_HEIGHT, :width].astype(np.float32)
    # the mean of each block's inner 8×8, away from edges the codec may smear
    blocks = strip.reshape(ROWS, BLOCK, COLUMNS, BLOCK)[:, 4:12, :, 4:12].mean(axis=(1, 3))
    mid = (_LOW + _HIGH) / 2
    if np.any(np.abs(blocks - mid) < (_HIGH - _LOW) / 4):  # a block neither dark nor bright
        return None
    bits = (blocks.reshape(-1) > mid).astype(np.int64)
    word = 0
    for b in bits:
        word = (word << 1) | int(b)
    payload, crc = word >> _CRC_BITS, word & 0xFF
    if _crc8(payload, _COUNTER_BITS + _TIME_BITS) != crc:
        return None
    return Stamp(counter=payload >> _TIME_BITS, t_ms=payload & ((1 << _TIME_BITS) - 1))
