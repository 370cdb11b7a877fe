"""Bounded JSON parsing for anything that comes from the other side (peer, relay, invite).

Python's `json` recurses once per nesting level, so a message nested a few thousand levels
deep raises `RecursionError` — not `ValueError` — from inside the parser, and a caller that
catches only `ValueError` lets it end whatever was reading (it once tore the link down from
an unsigned envelope on `integrity`). `loads_bounded` checks the size and the nesting depth
*before* the parser runs, refuses invalid UTF-8, NaN and Infinity, and turns every failure
into a `ValueError` with a one-line reason. The depth scan drops the strings and counts the
brackets left, in C-speed steps (regular expressions, `itertools.accumulate`): about 20 ms
a megabyte of bracket-heavy JSON, twice what parsing it costs; it is skipped when there
are fewer opening brackets in all than the limit allows.

`signaling/jsonlimits.py` is a copy of this file (the relay imports nothing from `assessiq`).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

__all__ = ["json_depth", "loads_bounded"]

# A JSON string, or an unterminated one running to the end (the parser refuses it later).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of `text` nest (0 for a scalar), counting only
    brackets outside strings. For text that is not JSON the figure is only an upper bound
    of what a parser would reach before it fails."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def loads_bounded(raw: bytes | bytearray | memoryview | str, *, max_bytes: int,
                  max_depth: int) -> Any:
    """Parse `raw` (UTF-8 bytes, or text) as JSON only if it is at most `max_bytes` long (in
    UTF-8) and nests at most `max_depth` arrays/objects; `ValueError` with a one-line
    reason otherwise, and for anything the parser refuses."""
    if isinstance(raw, bytes | bytearray | memoryview):
        size = len(raw) if not isinstance(raw, memoryview) else raw.nbytes
        if size > max_bytes:
            raise ValueError(f"{size} bytes, over the limit of {max_bytes}")
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    elif isinstance(raw, str):
        if len(raw) > max_bytes:  # a character is at least one byte: no need to encode
            raise ValueError(f"{len(raw)} characters, over the limit of {max_bytes} bytes")
        try:
            size = len(raw.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise ValueError(f"not UTF-8 text (a lone surrogate at {exc.start})") from None
        if size > max_bytes:
            raise ValueError(f"{size} bytes, over the limit of {max_bytes}")
        text = raw
    else:
        raise ValueError(f"expected bytes or text, not {type(raw).__name__}")
    if text.count("[") + text.count("{") > max_depth:  # fewer cannot nest past the limit
        depth = json_depth(text)
        if depth > max_depth:
            raise ValueError(f"nested {depth} levels deep, over the limit of {max_depth}")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at character {exc.pos}") from None
    except ValueError as exc:  # NaN or Infinity, or an integer of too many digits
        raise ValueError(f"not valid JSON: {str(exc).splitlines()[0][:120]}") from None
    except RecursionError:  # not reachable under a sane max_depth; never let it escape
        raise ValueError("nested too deeply to parse") from None
