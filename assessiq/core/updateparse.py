"""Read a Yjs/Yrs update (v1 encoding) without applying it: which clients it writes, which root
types it names, what kinds of content it carries, which items it refers to and deletes.

This is what makes authority checkable before anything reaches the document: the host refuses
a candidate's update that names a root other than the code, nests a type, or writes or refers
to the items of the host's own state document. It is also how an update that mixes the code
and the state (a stored history row, a test's whole-document update) is split into the two
documents: a client's structs are one contiguous block of bytes, and so is each client's part
of the delete set, so splitting is cutting and re-counting, never re-encoding.

Format (lib0 / Yjs `UpdateEncoderV1`): a count of client blocks; each block is a count of
structs, the client id, the first clock, then the structs (GC, Skip, or Item with its origins,
parent info, and content); then the delete set (per client: ranges of clock and length).
Anything malformed raises `ValueError`: the caller refuses the whole update.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from .varints import read_varint, write_varint

__all__ = [
    "ClientBlock",
    "Keystroke",
    "ParsedUpdate",
    "join_update",
    "keystroke",
    "parse_update",
    "state_vector_clocks",
    "varint_bytes",
]

# content refs (info & 0x1F)
GC: Final = 0
DELETED: Final = 1
JSON: Final = 2
BINARY: Final = 3
STRING: Final = 4
EMBED: Final = 5
FORMAT: Final = 6
TYPE: Final = 7
ANY: Final = 8
DOC: Final = 9
SKIP: Final = 10
_ORIGIN, _RIGHT, _SUB = 0x80, 0x40, 0x20
_U64: Final = 1 << 64
MAX_ANY_DEPTH: Final = 64


@dataclass
class ClientBlock:
    """One client's structs in an update, and what they say about where they belong."""

    client: int
    clock: int
    start: int
    """Byte offset of the block (its struct count) in the update."""
    end: int
    roots: set[str] = field(default_factory=set)
    """Root type names given as an item's parent."""
    refs: set[int] = field(default_factory=set)
    """Clients whose items this block's items name as origin, right origin or parent."""
    contents: set[int] = field(default_factory=set)
    """Content refs used (see the constants above)."""
    nested: bool = False
    """Some item's parent is another item (a nested type)."""
    length: int = 0
    """How many clock units the block spans (strings count UTF-16 code units, as Yjs)."""


@dataclass
class ParsedUpdate:
    data: bytes
    blocks: list[ClientBlock]
    deletes: list[tuple[int, int, int]]
    """Per client in the delete set: (client, byte start, byte end) of its ranges."""
    ds_start: int


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def uint(self) -> int:
        value, self.pos = read_varint(self.data, self.pos)
        if value >= _U64:  # Yrs reads 64 bits: a longer number must not alias a shorter one
            raise ValueError("update has a number over 64 bits")
        return value

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("update ends inside a value")
        self.pos += n

    def string(self) -> str:
        n = self.uint()
        start = self.pos
        self.skip(n)
        try:
            return self.data[start:self.pos].decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("update has a string that is not UTF-8") from None

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ValueError("update ends early")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def signed(self) -> None:
        first = self.byte()
        while first & 0x80:
            first = self.byte()

    def any(self, depth: int = 0) -> None:
        if depth > MAX_ANY_DEPTH:
            raise ValueError("update has a value nested too deep")
        tag = self.byte()
        if tag in (127, 126, 121, 120):  # undefined, null, false, true
            return
        if tag == 125:  # integer
            self.signed()
        elif tag == 124:  # float32
            self.skip(4)
        elif tag in (123, 122):  # float64, bigint
            self.skip(8)
        elif tag in (119, 116):  # string, bytes
            self.skip(self.uint())
        elif tag == 118:  # object
            for _ in range(self.uint()):
                self.skip(self.uint())
                self.any(depth + 1)
        elif tag == 117:  # array
            for _ in range(self.uint()):
                self.any(depth + 1)
        else:
            raise ValueError(f"update has an unknown value type {tag}")


def _content(r: _Reader, ref: int) -> int:
    """Skip one item's content; returns its length in clock units."""
    if ref == DELETED:
        return r.uint()
    if ref == JSON:
        n = r.uint()
        for _ in range(n):
            r.skip(r.uint())
        return n
    if ref == STRING:
        text = r.string()
        return len(text.encode("utf-16-le")) // 2
    if ref == ANY:
        n = r.uint()
        for _ in range(n):
            r.any()
        return n
    if ref in (BINARY, EMBED):
        r.skip(r.uint())
    elif ref == FORMAT:
        r.skip(r.uint())
        r.skip(r.uint())
    elif ref == TYPE:
        if r.uint() in (3, 5):  # XmlElement, XmlHook carry a name
            r.skip(r.uint())
    elif ref == DOC:
        r.skip(r.uint())
        r.any()
    else:
        raise ValueError(f"update has an unknown content type {ref}")
    return 1


def parse_update(update: bytes) -> ParsedUpdate:
    """Parse `update` (bytes of a v1 update); `ValueError` if it is not one."""
    r = _Reader(bytes(update))
    blocks: list[ClientBlock] = []
    n_blocks = r.uint()
    if n_blocks > len(r.data):
        raise ValueError(f"update claims {n_blocks} clients in {len(r.data)} bytes")
    for _ in range(n_blocks):
        start = r.pos
        n_structs = r.uint()
        if n_structs > len(r.data) - r.pos:
            raise ValueError(f"update claims {n_structs} structs in {len(r.data) - r.pos} bytes")
        block = ClientBlock(client=r.uint(), clock=r.uint(), start=start, end=start)
        for _ in range(n_structs):
            info = r.byte()
            ref = info & 0x1F
            if ref in (GC, SKIP):
                block.length += r.uint()
                continue
            if info & _ORIGIN:
                block.refs.add(r.uint())
                r.uint()
            if info & _RIGHT:
                block.refs.add(r.uint())
                r.uint()
            if not info & (_ORIGIN | _RIGHT):
                if r.uint() == 1:
                    block.roots.add(r.string())
                else:
                    block.nested = True
                    block.refs.add(r.uint())
                    r.uint()
                if info & _SUB:
                    r.skip(r.uint())
            block.contents.add(ref)
            block.length += _content(r, ref)
        block.end = r.pos
        blocks.append(block)
    ds_start = r.pos
    deletes: list[tuple[int, int, int]] = []
    n_clients = r.uint()
    if n_clients > len(r.data):
        raise ValueError(f"delete set claims {n_clients} clients in {len(r.data)} bytes")
    for _ in range(n_clients):
        start = r.pos
        client = r.uint()
        n_ranges = r.uint()
        if 2 * n_ranges > len(r.data) - r.pos:
            raise ValueError(f"delete set claims {n_ranges} ranges in {len(r.data) - r.pos} bytes")
        for _ in range(2 * n_ranges):
            r.uint()
        deletes.append((client, start, r.pos))
    if r.pos != len(r.data):
        raise ValueError("update has trailing bytes")
    return ParsedUpdate(r.data, blocks, deletes, ds_start)


def join_update(parsed: ParsedUpdate, blocks: list[ClientBlock],
                deletes: list[tuple[int, int, int]]) -> bytes:
    """An update made of some of `parsed`'s client blocks and delete-set entries, byte for
    byte as they were (only the two counts are written anew)."""
    out = bytearray()
    write_varint(len(blocks), out)
    for block in blocks:
        out += parsed.data[block.start:block.end]
    write_varint(len(deletes), out)
    for _, start, end in deletes:
        out += parsed.data[start:end]
    return bytes(out)


def state_vector_clocks(state: bytes) -> dict[int, int]:
    """A state vector (as `Doc.get_state()` / `pycrdt.get_state(update)` give) as a dict."""
    r = _Reader(bytes(state))
    count = r.uint()
    if 2 * count > len(r.data):
        raise ValueError("state vector claims more entries than it has bytes")
    clocks = {}
    for _ in range(count):
        client = r.uint()
        clocks[client] = r.uint()
    if r.pos != len(r.data):
        raise ValueError("state vector has trailing bytes")
    return clocks


# ---------------------------------------------------------------- the keystroke fast path
# Nearly every update is one keystroke: one string item placed by its origins (so it names no
# parent), or one deleted range. Matching these two shapes with one regular expression, and
# comparing client ids as their (canonical) encoded bytes, reads a keystroke in about a
# microsecond; anything else goes through `parse_update`.
_CLIENT = rb"([\x00-\x7f]|[\x80-\xff]{1,7}[\x01-\x7f])"  # canonical, at most 56 bits
_NUM = rb"(?:[\x00-\x7f]|[\x80-\xff]{1,8}[\x01-\x7f])"
_INSERT_RE = re.compile(
    rb"\x01\x01" + _CLIENT + _NUM
    + rb"(?:\x84" + _CLIENT + _NUM + rb"|\x44" + _CLIENT + _NUM
    + rb"|\xc4" + _CLIENT + _NUM + _CLIENT + _NUM + rb")([\x00-\x7f])", re.DOTALL)
_DELETE_RE = re.compile(rb"\x00\x01" + _CLIENT + rb"\x01" + _NUM + _NUM, re.DOTALL)


Keystroke: TypeAlias = tuple[bytes | None, ...]
"""The encoded client id a keystroke writes with, then those of the items it refers to (None
where a shape has no such item)."""


def keystroke(update: bytes) -> Keystroke | None:
    """The keystroke in `update` if it has one of the two keystroke shapes (an insert of at
    most 127 bytes of text with an empty delete set, or one deleted range), else None."""
    m = _INSERT_RE.match(update)
    if m is not None:
        end = m.end()
        if end + update[end - 1] + 1 != len(update) or update[-1] != 0:  # text, empty set
            return None
        return m.group(1, 2, 3, 4, 5)
    m = _DELETE_RE.fullmatch(update)
    return None if m is None else (m.group(1),)


def varint_bytes(n: int) -> bytes:
    """The canonical encoding of `n`, to compare with `Keystroke` ids."""
    out = bytearray()
    write_varint(n, out)
    return bytes(out)
