"""Offsets into one string in three units, and editor change sets between them.

Three worlds meet at the code editor:

- **code points**: Python `str` indices (`len("😀") == 1`);
- **UTF-16 code units**: browser editors such as CodeMirror (`"😀".length == 2` in JavaScript);
- **UTF-8 bytes**: pycrdt `Text` indices (the Yrs document uses byte offsets).

Every conversion is for a given string, checks its offset and raises `ValueError` with a
clear message when the offset is out of range or falls inside a character (between the two
halves of a surrogate pair, or inside a multi-byte UTF-8 sequence). Strings must be valid
Unicode: a lone surrogate is refused.

A `TextChange` is one replacement `{from, to, insert}` against the text *before* the change,
the shape CodeMirror's `iterChanges` gives and `dispatch({changes})` takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CodeOp",
    "TextChange",
    "TextIndex",
    "cp_to_utf8",
    "cp_to_utf16",
    "editor_changes_to_ops",
    "utf8_delta_to_changes",
    "utf8_len",
    "utf8_to_cp",
    "utf8_to_utf16",
    "utf16_len",
    "utf16_to_cp",
    "utf16_to_utf8",
]


def _check_offset(offset: object, length: int, unit: str) -> int:
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise ValueError(f"{unit} offset must be an integer, not {type(offset).__name__}")
    if offset < 0 or offset > length:
        raise ValueError(f"{unit} offset {offset} is out of range 0..{length}")
    return offset


class TextIndex:
    """Offset conversions for one string; encodes it at most once per unit.

    ASCII strings take a fast path: all three units coincide.
    """

    __slots__ = ("_ascii", "_text", "_utf8", "_utf16")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, not {type(text).__name__}")
        self._text = text
        self._ascii = text.isascii()
        self._utf8: bytes | None = None
        self._utf16: bytes | None = None
        if not self._ascii:
            # Validates the string once: a lone surrogate cannot be encoded.
            try:
                self._utf8 = text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"text is not valid Unicode: lone surrogate at code point {exc.start}"
                ) from None

    @property
    def text(self) -> str:
        return self._text

    def _bytes8(self) -> bytes:
        if self._utf8 is None:
            self._utf8 = self._text.encode("utf-8")
        return self._utf8

    def _bytes16(self) -> bytes:
        if self._utf16 is None:
            self._utf16 = self._text.encode("utf-16-le")
        return self._utf16

    # lengths
    @property
    def cp_len(self) -> int:
        return len(self._text)

    @property
    def utf8_len(self) -> int:
        return len(self._text) if self._ascii else len(self._bytes8())

    @property
    def utf16_len(self) -> int:
        return len(self._text) if self._ascii else len(self._bytes16()) // 2

    # from code points
    def cp_to_utf8(self, offset: int) -> int:
        offset = _check_offset(offset, len(self._text), "code point")
        if self._ascii:
            return offset
        return len(self._text[:offset].encode("utf-8"))

    def cp_to_utf16(self, offset: int) -> int:
        offset = _check_offset(offset, len(self._text), "code point")
        if self._ascii:
            return offset
        return len(self._text[:offset].encode("utf-16-le")) // 2

    # from UTF-8 bytes
    def utf8_to_cp(self, offset: int) -> int:
        offset = _check_offset(offset, self.utf8_len, "UTF-8")
        if self._ascii:
            return offset
        data = self._bytes8()
        if offset < len(data) and 0x80 <= data[offset] <= 0xBF:
            raise ValueError(f"UTF-8 offset {offset} falls inside a multi-byte character")
        return len(data[:offset].decode("utf-8"))

    def utf8_to_utf16(self, offset: int) -> int:
        return self.cp_to_utf16(self.utf8_to_cp(offset))

    # from UTF-16 code units
    def utf16_to_cp(self, offset: int) -> int:
        offset = _check_offset(offset, self.utf16_len, "UTF-16")
        if self._ascii:
            return offset
        data = self._bytes16()
        if 0 < offset < len(data) // 2:
            unit = int.from_bytes(data[2 * offset - 2 : 2 * offset], "little")
            if 0xD800 <= unit <= 0xDBFF:
                raise ValueError(f"UTF-16 offset {offset} splits a surrogate pair")
        return len(data[: 2 * offset].decode("utf-16-le"))

    def utf16_to_utf8(self, offset: int) -> int:
        return self.cp_to_utf8(self.utf16_to_cp(offset))


def utf8_len(text: str) -> int:
    """Length of `text` in UTF-8 bytes."""
    return TextIndex(text).utf8_len


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units."""
    return TextIndex(text).utf16_len


def cp_to_utf8(text: str, offset: int) -> int:
    """Code-point offset in `text` → UTF-8 byte offset."""
    return TextIndex(text).cp_to_utf8(offset)


def cp_to_utf16(text: str, offset: int) -> int:
    """Code-point offset in `text` → UTF-16 code-unit offset."""
    return TextIndex(text).cp_to_utf16(offset)


def utf8_to_cp(text: str, offset: int) -> int:
    """UTF-8 byte offset in `text` → code-point offset."""
    return TextIndex(text).utf8_to_cp(offset)


def utf8_to_utf16(text: str, offset: int) -> int:
    """UTF-8 byte offset in `text` → UTF-16 code-unit offset."""
    return TextIndex(text).utf8_to_utf16(offset)


def utf16_to_cp(text: str, offset: int) -> int:
    """UTF-16 code-unit offset in `text` → code-point offset."""
    return TextIndex(text).utf16_to_cp(offset)


def utf16_to_utf8(text: str, offset: int) -> int:
    """UTF-16 code-unit offset in `text` → UTF-8 byte offset."""
    return TextIndex(text).utf16_to_utf8(offset)


@dataclass(frozen=True, slots=True)
class TextChange:
    """Replace `[start, end)` of the text before the change with `insert`.

    The unit of `start`/`end` (code points or UTF-16) is the caller's. As JSON for
    CodeMirror it is `{"from": start, "to": end, "insert": insert}`.
    """

    start: int
    end: int
    insert: str = ""

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"change {name} must be an integer, not {type(value).__name__}")
        if self.start < 0:
            raise ValueError(f"change start {self.start} is negative")
        if self.end < self.start:
            raise ValueError(f"change end {self.end} is before its start {self.start}")
        if not isinstance(self.insert, str):
            raise ValueError(f"change insert must be a str, not {type(self.insert).__name__}")

    def to_json(self) -> dict[str, Any]:
        return {"from": self.start, "to": self.end, "insert": self.insert}


@dataclass(frozen=True, slots=True)
class CodeOp:
    """Delete `delete` code points at `index`, then insert `insert` there.

    A list of `CodeOp`s is applied in order, each against the result of the previous one.
    """

    index: int
    delete: int
    insert: str


def _parse_change(raw: Mapping[str, Any] | TextChange) -> TextChange:
    if isinstance(raw, TextChange):
        return raw
    if not isinstance(raw, Mapping):
        raise ValueError(f"an editor change must be an object, not {type(raw).__name__}")
    unknown = set(raw) - {"from", "to", "insert"}
    if unknown:
        raise ValueError(f"an editor change has unknown keys: {', '.join(sorted(unknown))}")
    if "from" not in raw:
        raise ValueError("an editor change needs 'from'")
    start = raw["from"]
    end = raw.get("to", start)
    return TextChange(start, end, raw.get("insert", ""))


def editor_changes_to_ops(
    text: str, changes: Iterable[Mapping[str, Any] | TextChange]
) -> list[CodeOp]:
    """Convert a CodeMirror change set (UTF-16 offsets against `text`) to code-point ops.

    Changes must not overlap (CodeMirror's never do). At one position, pure inserts come
    before a replaced range, and several inserts keep their order. The returned ops,
    applied in order, turn `text` into the edited text.
    """
    index = TextIndex(text)
    parsed = [_parse_change(c) for c in changes]
    ordered = sorted(enumerate(parsed), key=lambda item: (item[1].start, item[1].end, item[0]))
    previous_end = 0
    ops: list[CodeOp] = []
    for _, change in ordered:
        if change.start < previous_end:
            raise ValueError(
                f"editor changes overlap at UTF-16 offset {change.start} (previous ends at "
                f"{previous_end})"
            )
        previous_end = change.end
        start = index.utf16_to_cp(change.start)
        end = index.utf16_to_cp(change.end)
        TextIndex(change.insert)  # refuses lone surrogates in the inserted text
        ops.append(CodeOp(start, end - start, change.insert))
    # Right to left: earlier offsets stay valid; equal starts keep their order.
    ops.reverse()
    return ops


def utf8_delta_to_changes(
    old: str, delta: Sequence[Mapping[str, Any]]
) -> tuple[str, list[TextChange], list[TextChange]]:
    """Apply a pycrdt/Yjs text delta (UTF-8 `retain`/`delete` lengths) to `old`.

    Returns the new text and the same edit as changes against `old` in code points and in
    UTF-16 code units, ascending and non-overlapping (a delete followed by an insert at the
    same place is one replacement).
    """
    index = TextIndex(old)
    byte_pos = 0
    raw: list[tuple[int, int, str]] = []  # (start_byte, end_byte, insert)
    for item in delta:
        if "retain" in item:
            byte_pos += int(item["retain"])
        elif "delete" in item:
            end = byte_pos + int(item["delete"])
            if raw and raw[-1][1] == byte_pos:
                raw[-1] = (raw[-1][0], end, raw[-1][2])
            else:
                raw.append((byte_pos, end, ""))
            byte_pos = end
        elif "insert" in item:
            value = item["insert"]
            if not isinstance(value, str):
                raise ValueError("the code text holds a non-text embed")
            if raw and raw[-1][1] == byte_pos:
                raw[-1] = (raw[-1][0], raw[-1][1], raw[-1][2] + value)
            else:
                raw.append((byte_pos, byte_pos, value))
        else:
            raise ValueError(f"unknown delta item: {sorted(item)}")
    cp_changes: list[TextChange] = []
    u16_changes: list[TextChange] = []
    pieces: list[str] = []
    last_cp = 0
    for start_b, end_b, insert in raw:
        start = index.utf8_to_cp(start_b)
        end = index.utf8_to_cp(end_b)
        cp_changes.append(TextChange(start, end, insert))
        u16_changes.append(TextChange(index.cp_to_utf16(start), index.cp_to_utf16(end), insert))
        pieces.append(old[last_cp:start])
        pieces.append(insert)
        last_cp = end
    pieces.append(old[last_cp:])
    return "".join(pieces), cp_changes, u16_changes
