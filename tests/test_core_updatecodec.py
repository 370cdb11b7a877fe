"""The update codec: real pycrdt updates — typing, deleting, jumping, emoji and CJK, map
writes, two and three clients exchanging updates — come back byte for byte, the keystroke
shapes really go into columns, and damaged columns are refused or read differently, never
anything else."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assessiq.core.document import SharedDoc
from assessiq.core.updatecodec import DELETE, INSERT, RAW, decode_updates, encode_updates

_CHARS = "abcxyz ()\n:=é数🙂"


def _session(seed: int, n_ops: int, n_docs: int) -> list[bytes]:
    """Every update, in the order one peer recorded it, of `n_docs` peers editing one doc
    (local updates, and the others' updates as they were applied)."""
    rng = random.Random(seed)
    docs = [SharedDoc() for _ in range(n_docs)]
    recorded: list[bytes] = []
    docs[0].doc.observe(lambda e: recorded.append(e.update))
    outbox: list[list[bytes]] = [[] for _ in docs]
    for i, shared in enumerate(docs):
        shared.doc.observe(lambda e, i=i: outbox[i].append(e.update))
    for _ in range(n_ops):
        k = rng.randrange(n_docs)
        shared = docs[k]
        n = len(shared.code_text)
        r = rng.random()
        if r < 0.1 and n_docs > 1:  # deliver the others' updates to k
            for j in range(n_docs):
                if j != k:
                    for update in outbox[j]:
                        shared.apply_update(update)
        elif r < 0.3 and n:
            start = rng.randrange(n)
            shared.delete_code(start, min(n - start, rng.choice([1, 1, 1, 3])))
        elif r < 0.35:
            shared.phase = rng.choice(["lobby", "interview"])
        else:
            at = rng.choice([n, n, rng.randint(0, n)])
            shared.insert_code(at, "".join(rng.choice(_CHARS)
                                           for _ in range(rng.choice([1, 1, 2]))))
    return recorded


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=300),
       st.integers(min_value=1, max_value=3))
def test_real_updates_come_back_exactly(seed: int, n_ops: int, n_docs: int) -> None:
    updates = _session(seed, n_ops, n_docs)
    assert decode_updates(encode_updates(updates), len(updates)) == updates


def test_keystrokes_go_into_columns() -> None:
    updates = _session(5, 2000, 1)
    kinds = encode_updates(updates)[0]
    assert len(kinds) == len(updates)
    # typing and single deletes are columns; the first insert (it names the root) and map
    # writes are kept raw
    assert kinds.count(INSERT) > 0.5 * len(updates) and kinds.count(DELETE) > 0
    assert 0 < kinds.count(RAW) < 0.2 * len(updates)


def test_foreign_bytes_are_kept_raw() -> None:
    odd = [b"", b"\x01", b"\x01\x01\xff", b"\x00\x01\x05\x02\x01\x01", b"\x01\x01" + b"\x80" * 20,
           # an insert with an overlong (non-canonical) varint: must not be "normalised"
           b"\x01\x01\x81\x00\x00\x84\x01\x00\x01a\x00"]
    columns = encode_updates(odd)
    assert columns[0] == bytes([RAW] * len(odd))
    assert decode_updates(columns, len(odd)) == odd


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=3), st.integers(min_value=0),
       st.integers(min_value=0, max_value=7), st.integers(min_value=0))
def test_damaged_columns_are_refused_or_read_differently(column: int, pos: int, bit: int,
                                                         cut: int) -> None:
    updates = _session(11, 120, 2)
    columns = encode_updates(updates)
    if not columns[column]:
        return
    flipped = bytearray(columns[column])
    flipped[pos % len(flipped)] ^= 1 << bit
    damaged = list(columns)
    damaged[column] = bytes(flipped)
    with contextlib.suppress(ValueError):
        assert decode_updates(damaged, len(updates)) != updates
    truncated = list(columns)
    truncated[column] = columns[column][: cut % len(columns[column])]
    with pytest.raises(ValueError):
        decode_updates(truncated, len(updates))
    with pytest.raises(ValueError):
        decode_updates(columns, len(updates) + 1)
