"""Offsets between UTF-16 (browser editors), code points (Python) and UTF-8 (pycrdt)."""

from __future__ import annotations

import pycrdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assessiq.core.textindex import (
    CodeOp,
    TextChange,
    TextIndex,
    cp_to_utf8,
    cp_to_utf16,
    editor_changes_to_ops,
    utf8_delta_to_changes,
    utf8_len,
    utf8_to_cp,
    utf8_to_utf16,
    utf16_len,
    utf16_to_cp,
    utf16_to_utf8,
)

FAMILY = "👨\u200d👩\u200d👧"  # ZWJ sequence: 5 code points, 8 UTF-16 units, 18 UTF-8 bytes
FLAG = "🇫🇷"  # two regional indicators
COMBINING = "e\u0301"  # e + combining acute
CJK = "世界"
SAMPLE = f"a{FAMILY}b{FLAG}c{COMBINING}{CJK}😀"

# Any valid Unicode text (no lone surrogates), biased towards the hard cases.
unicode_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(["a", "\n", "é", "世", "😀", "\u200d", "\u0301", "🇫", "🇷", "𝄞"]),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=40,
)


def apply_utf16(text: str, changes: list[dict[str, object]]) -> str:
    """What an editor does: splice UTF-16 code units, positions against the old text."""
    units = text.encode("utf-16-le")
    out = b""
    last = 0
    for change in sorted(changes, key=lambda c: (c["from"], c["to"])):  # type: ignore[arg-type,return-value]
        start, end = 2 * int(change["from"]), 2 * int(change["to"])  # type: ignore[call-overload]
        out += units[last:start] + str(change["insert"]).encode("utf-16-le")
        last = end
    return (out + units[last:]).decode("utf-16-le")


def apply_ops(text: str, ops: list[CodeOp]) -> str:
    for op in ops:
        text = text[: op.index] + op.insert + text[op.index + op.delete :]
    return text


def test_lengths_of_hard_text() -> None:
    assert len(FAMILY) == 5
    assert utf16_len(FAMILY) == 8
    assert utf8_len(FAMILY) == 18
    assert (len(FLAG), utf16_len(FLAG), utf8_len(FLAG)) == (2, 4, 8)
    assert (len(COMBINING), utf16_len(COMBINING), utf8_len(COMBINING)) == (2, 2, 3)
    assert (len(CJK), utf16_len(CJK), utf8_len(CJK)) == (2, 2, 6)


def test_offsets_after_each_kind_of_character() -> None:
    index = TextIndex(SAMPLE)
    # after "a" + family
    assert index.cp_to_utf16(6) == 9
    assert index.cp_to_utf8(6) == 19
    # after "b" + flag
    assert index.cp_to_utf16(9) == 14
    assert index.cp_to_utf8(9) == 28
    # after "c" + e + combining mark + CJK
    assert index.cp_to_utf16(14) == 19
    assert index.cp_to_utf8(14) == 38
    # the end
    assert index.cp_to_utf16(15) == utf16_len(SAMPLE) == 21
    assert index.cp_to_utf8(15) == utf8_len(SAMPLE) == 42
    assert index.utf16_to_cp(21) == 15
    assert index.utf8_to_cp(42) == 15
    assert utf16_to_utf8(SAMPLE, 9) == 19
    assert utf8_to_utf16(SAMPLE, 28) == 14


def test_pycrdt_text_indices_are_utf8_bytes() -> None:
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    text.insert(0, SAMPLE)
    assert len(text) == utf8_len(SAMPLE)
    text.insert(cp_to_utf8(SAMPLE, 9), "X")  # after the flag
    assert str(text) == SAMPLE[:9] + "X" + SAMPLE[9:]


@pytest.mark.parametrize(
    ("func", "offset", "message"),
    [
        (utf16_to_cp, 2, "splits a surrogate pair"),  # inside the man emoji
        (utf16_to_utf8, 11, "splits a surrogate pair"),  # inside the flag
        (utf8_to_cp, 2, "inside a multi-byte character"),
        (utf8_to_utf16, 37, "inside a multi-byte character"),  # inside 界
        (cp_to_utf8, 16, "out of range 0..15"),
        (cp_to_utf16, -1, "out of range"),
        (utf16_to_cp, 22, "out of range 0..21"),
        (utf8_to_cp, 43, "out of range 0..42"),
    ],
)
def test_bad_offsets_are_refused(func, offset, message) -> None:
    with pytest.raises(ValueError, match=message):
        func(SAMPLE, offset)


def test_non_integer_offset_and_lone_surrogate_are_refused() -> None:
    with pytest.raises(ValueError, match="must be an integer"):
        cp_to_utf8("abc", True)
    with pytest.raises(ValueError, match="must be an integer"):
        cp_to_utf8("abc", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lone surrogate at code point 1"):
        TextIndex("a\ud800b")


@settings(max_examples=150, deadline=None)
@given(text=unicode_text, data=st.data())
def test_round_trips_through_every_unit(text: str, data: st.DataObject) -> None:
    index = TextIndex(text)
    cp = data.draw(st.integers(0, len(text)))
    u8 = index.cp_to_utf8(cp)
    u16 = index.cp_to_utf16(cp)
    assert u8 == len(text[:cp].encode("utf-8"))
    assert u16 == len(text[:cp].encode("utf-16-le")) // 2
    assert index.utf8_to_cp(u8) == cp
    assert index.utf16_to_cp(u16) == cp
    assert index.utf8_to_utf16(u8) == u16
    assert index.utf16_to_utf8(u16) == u8


@settings(max_examples=100, deadline=None)
@given(text=unicode_text, data=st.data())
def test_every_utf16_offset_is_either_a_boundary_or_refused(text: str, data: st.DataObject) -> None:
    units = text.encode("utf-16-le")
    offset = data.draw(st.integers(0, len(units) // 2))
    try:
        cp = utf16_to_cp(text, offset)
    except ValueError as exc:
        assert "surrogate" in str(exc)
        high = int.from_bytes(units[2 * offset - 2 : 2 * offset], "little")
        assert 0xD800 <= high <= 0xDBFF
    else:
        assert text[:cp].encode("utf-16-le") == units[: 2 * offset]


@st.composite
def editor_change_sets(draw: st.DrawFn) -> tuple[str, list[dict[str, object]]]:
    """A text and a valid CodeMirror change set against it (sorted, non-overlapping)."""
    text = draw(unicode_text)
    boundaries = [TextIndex(text).cp_to_utf16(i) for i in range(len(text) + 1)]
    cuts = sorted(draw(st.lists(st.sampled_from(boundaries), max_size=6)))
    changes = []
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        changes.append({"from": start, "to": end, "insert": draw(unicode_text)})
    if len(cuts) % 2:
        changes.append({"from": cuts[-1], "to": cuts[-1], "insert": draw(unicode_text)})
    return text, draw(st.permutations(changes))


@settings(max_examples=150, deadline=None)
@given(case=editor_change_sets())
def test_editor_change_sets_become_equivalent_code_point_ops(
    case: tuple[str, list[dict[str, object]]],
) -> None:
    text, changes = case
    ops = editor_changes_to_ops(text, changes)
    assert apply_ops(text, ops) == apply_utf16(text, changes)


def test_editor_change_set_with_emoji_and_cjk() -> None:
    text = "x = '😀世界'"
    # Replace 😀 (UTF-16 5..7) with 🎉 and insert 🇫🇷 at the end, in one change set.
    changes = [{"from": 10, "to": 10, "insert": FLAG}, {"from": 5, "to": 7, "insert": "🎉"}]
    ops = editor_changes_to_ops(text, changes)
    assert apply_ops(text, ops) == "x = '🎉世界'🇫🇷"
    assert ops == [CodeOp(9, 0, FLAG), CodeOp(5, 1, "🎉")]


def test_two_inserts_at_one_place_keep_their_order() -> None:
    ops = editor_changes_to_ops("ab", [{"from": 1, "insert": "X"}, {"from": 1, "insert": "Y"}])
    assert apply_ops("ab", ops) == "aXYb"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ([{"from": 1, "to": 2, "insert": ""}], "splits a surrogate pair"),
        ([{"from": 0, "to": 3}, {"from": 2, "to": 4}], "overlap"),
        ([{"from": 3, "to": 2}], "before its start"),
        ([{"from": 0, "to": 99}], "out of range"),
        ([{"to": 1}], "needs 'from'"),
        ([{"from": 0, "where": 1}], "unknown keys: where"),
        (["abc"], "must be an object"),
        ([{"from": 0, "insert": 5}], "insert must be a str"),
        ([{"from": 0, "insert": "\udc00"}], "lone surrogate"),
    ],
)
def test_bad_editor_changes_are_refused(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        editor_changes_to_ops("😀ab", changes)


def test_text_change_checks_itself() -> None:
    assert TextChange(1, 2, "x").to_json() == {"from": 1, "to": 2, "insert": "x"}
    with pytest.raises(ValueError, match="negative"):
        TextChange(-1, 2)


@settings(max_examples=100, deadline=None)
@given(
    before=unicode_text,
    edits=st.lists(
        st.tuples(st.integers(0, 60), st.integers(0, 5), unicode_text), min_size=1, max_size=4
    ),
)
def test_pycrdt_deltas_convert_to_editor_changes(
    before: str, edits: list[tuple[int, int, str]]
) -> None:
    """Real pycrdt deltas (UTF-8) → code-point and UTF-16 changes that reproduce the text."""
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    text.insert(0, before)
    deltas: list[list[dict[str, object]]] = []
    text.observe(lambda event: deltas.append(event.delta))
    expected = before
    with doc.transaction():
        for position, length, insert in edits:
            position = min(position, len(expected))
            length = min(length, len(expected) - position)
            index = TextIndex(expected)
            start, end = index.cp_to_utf8(position), index.cp_to_utf8(position + length)
            if end > start:
                del text[start:end]
            if insert:
                text.insert(start, insert)
            expected = expected[:position] + insert + expected[position + length :]
    assert str(text) == expected
    if not deltas:  # nothing changed
        assert expected == before
        return
    (delta,) = deltas
    new, cp_changes, u16_changes = utf8_delta_to_changes(before, delta)  # type: ignore[arg-type]
    assert new == expected
    assert (
        apply_ops(
            before, [CodeOp(c.start, c.end - c.start, c.insert) for c in reversed(cp_changes)]
        )
        == expected
    )
    assert apply_utf16(before, [c.to_json() for c in u16_changes]) == expected
