"""`updateparse`: reading an update without applying it, splitting it, and its refusals."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pycrdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assessiq.core.document import SharedDoc
from assessiq.core.updateparse import join_update, parse_update, state_vector_clocks

edits = st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["a", "😀", "é", "中文x", "\n"]),
                           st.integers(0, 50)), min_size=1, max_size=12)


def _apply(doc: pycrdt.Doc[Any], ops: list[tuple[int, str, int]]) -> None:
    text = doc.get("code", type=pycrdt.Text)
    meta = doc.get("meta", type=pycrdt.Map)
    runs = doc.get("runs", type=pycrdt.Array)
    for kind, value, n in ops:
        size = len(str(text).encode())
        if kind == 0:
            text.insert(0, value)
        elif kind == 1:
            text.insert(size, value)
        elif kind == 2 and size:
            del text[0:len(str(text)[0].encode())]
        elif kind == 3:
            meta[value] = [n, value, None]
        else:
            runs.append(f"r{n}")


@settings(max_examples=150, deadline=None)
@given(edits)
def test_lengths_agree_with_yrs_and_blocks_join_back(ops: list[tuple[int, str, int]]) -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=9)
    _apply(doc, ops)
    update = doc.get_update()
    parsed = parse_update(update)
    assert {b.client: b.clock + b.length for b in parsed.blocks} == \
        state_vector_clocks(doc.get_state())
    assert join_update(parsed, parsed.blocks, parsed.deletes) == update


def test_what_a_block_says() -> None:
    doc: pycrdt.Doc[Any] = pycrdt.Doc(client_id=5)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    doc.get("code", type=pycrdt.Text).insert(0, "hi")
    doc.get("meta", type=pycrdt.Map)["k"] = "v"
    doc.get("meta", type=pycrdt.Map)["n"] = pycrdt.Map({"x": 1})
    doc.get("code", type=pycrdt.Text).insert(1, "b", attrs={"bold": True})
    code, meta, nested, formatted = (parse_update(u).blocks[0] for u in updates)
    assert code.roots == {"code"} and code.contents == {4} and not code.nested
    assert meta.roots == {"meta"} and meta.contents == {8}
    assert 7 in nested.contents  # a nested type
    assert 6 in formatted.contents and formatted.refs == {5}


@pytest.mark.parametrize("data", [b"", b"\x05", b"\x01\x01\x05\x00\x84", b"\x00\x00\x00",
                                  b"\x01\x01\x05\x00\x1f\x00", b"\xff" * 12])
def test_malformed_updates_are_value_errors(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_update(data)


def test_random_bytes_never_raise_anything_else() -> None:
    rng = random.Random(3)
    good = pycrdt.Doc()
    good.get("code", type=pycrdt.Text).insert(0, "hello 😀")
    update = good.get_update()
    for _ in range(2000):
        data = bytearray(update)
        data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(ValueError):
            parse_update(bytes(data))


def test_a_joined_update_splits_back_into_code_and_state() -> None:
    a = SharedDoc()
    a.set_code("x = 1 😀")
    a.set_problem("p", origin="host")
    a.set_phase("interview", origin="host")
    a.delete_code(0, 2)
    joined = a.get_update()
    b = SharedDoc()
    parts = b.split_update(joined)
    assert set(parts) == {"code", "state"}
    b.apply_update(joined)
    assert b.snapshot_json() == a.snapshot_json()
    with pytest.raises(ValueError, match="roots"):
        scratch: pycrdt.Doc[Any] = pycrdt.Doc()
        with scratch.transaction():
            scratch.get("code", type=pycrdt.Text).insert(0, "x")
            scratch.get("meta", type=pycrdt.Map)["k"] = "v"
        b.split_update(scratch.get_update())
