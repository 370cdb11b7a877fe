"""Replay the history of one Yjs text (the code) item by item, without pycrdt.

The session file keeps every update of the code as Yjs v1 bytes. pycrdt can apply them, but
it cannot say *which* item each character of the result is, nor which characters an update
inserted or deleted, without an observer that costs ~0.7 ms per update on a long text
(measured: 100,000 keystrokes, 74 s with `Text.observe`, 0.6 s without). Provenance needs
exactly that, for every update, so this module keeps its own copy of the text's item list:

- every item (tombstones too) in document order, as a doubly linked list of nodes, each one
  run of one client's consecutive clocks (split on demand, as Yjs splits items);
- integration by the YATA rule Yjs uses (`Item.integrate`: conflicting concurrent inserts
  are ordered by origin, then client id), so the order is Yjs's and pycrdt's;
- for each applied update, the nodes it created and the nodes it deleted.

Only items whose parent is the root `code` (or that follow one, by origin) are kept; the
state document's items (the problem, tests, runs) are recognised and skipped. Lengths and
clocks are in UTF-16 code units, as in Yjs; a node's text is a Python str. Anything
malformed raises `ValueError`. The tests check the resulting text against pycrdt's on
concurrent random edits.

An item (or a delete) that refers to an item not seen yet waits, indexed by the
(client, clock) it waits for: each arriving item wakes only what waits for it, so waiting
items cost nothing while they wait, and the keystroke path stays on. At most `MAX_WAITING`
may wait; past that `apply` refuses this and every later update (`unreadable`).
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["Node", "RowChange", "TextReplay"]

_ORIGIN: Final = 0x80
_RIGHT: Final = 0x40
_SUB: Final = 0x20
_GC: Final = 0
_DELETED: Final = 1
_STRING: Final = 4
_SKIP: Final = 10
_ADJACENT_SCAN: Final = 64
"""Tombstones skipped when deciding whether two nodes of one update are side by side."""
MAX_WAITING: Final = 20_000
"""Items and deletes that may wait at once for an item not seen yet. An honest history has
none waiting once each update is in (the session file keeps them in order); a hostile peer
can send thousands. Past this the history is unreadable from that update on (`unreadable`)."""

ID = tuple[int, int]

# The keystroke shapes (as `updateparse.keystroke`): one string item of at most 127 bytes
# placed by its origins, with an empty delete set; or one deleted range and nothing else.
_VAR = rb"(?:[\x00-\x7f]|[\x80-\xff]{1,9}[\x00-\x7f])"
_FAST_INSERT = re.compile(
    rb"\x01\x01(" + _VAR + rb")(" + _VAR + rb")(?:\x84(" + _VAR + rb")(" + _VAR + rb")"
    rb"|\x44(" + _VAR + rb")(" + _VAR + rb")|\xc4(" + _VAR + rb")(" + _VAR + rb")("
    + _VAR + rb")(" + _VAR + rb"))([\x00-\x7f])", re.DOTALL)
_FAST_DELETE = re.compile(rb"\x00\x01(" + _VAR + rb")\x01(" + _VAR + rb")(" + _VAR + rb")",
                          re.DOTALL)
_NUMS: dict[bytes, int] = {}
_INF: Final = float("inf")


def _num(raw: bytes) -> int:
    """A varint's value from its bytes (clocks of up to three bytes worked out; longer
    numbers — client ids, which repeat on every key — remembered)."""
    n = len(raw)
    if n == 1:
        return raw[0]
    if n == 2:
        return (raw[0] & 0x7F) | (raw[1] << 7)
    if n == 3:
        return (raw[0] & 0x7F) | ((raw[1] & 0x7F) << 7) | (raw[2] << 14)
    value = _NUMS.get(raw)
    if value is None:
        value = shift = 0
        for b in raw:
            value |= (b & 0x7F) << shift
            shift += 7
        if len(_NUMS) < 65536:
            _NUMS[raw] = value
    return value


class Node:
    """One run of a client's consecutive clocks in the text (see the module docstring)."""

    __slots__ = ("client", "clock", "deleted", "left", "length", "origin", "right",
                 "rorigin", "tag", "text")

    def __init__(self, client: int, clock: int, length: int, text: str,
                 origin: ID | None, rorigin: ID | None, deleted: bool, tag: Any) -> None:
        self.client = client
        self.clock = clock
        self.length = length
        self.text = text
        self.origin = origin
        self.rorigin = rorigin
        self.deleted = deleted
        self.tag = tag
        self.left: Node | None = None
        self.right: Node | None = None


class RowChange:
    """What one update did to the text: the nodes it created and those it deleted."""

    __slots__ = ("created", "deleted")

    def __init__(self) -> None:
        self.created: list[Node] = []
        self.deleted: list[Node] = []

    def runs(self, nodes: list[Node]) -> list[list[Node]]:
        """`nodes` (of this change) grouped into runs that sit side by side in the text
        (at most `_ADJACENT_SCAN` older tombstones between two of them skipped), each in
        document order."""
        if len(nodes) == 1:
            return [nodes]
        members = set(nodes)  # (by identity: a node defines no equality)
        out: list[list[Node]] = []
        for node in nodes:
            other = node.left
            k = _ADJACENT_SCAN
            while k and other is not None and other not in members and other.deleted:
                other = other.left
                k -= 1
            if other is not None and other in members:
                continue  # not the first of its run
            run = [node]
            while True:
                other = run[-1].right
                k = _ADJACENT_SCAN
                while k and other is not None and other not in members and other.deleted:
                    other = other.right
                    k -= 1
                if other is None or other not in members:
                    break
                run.append(other)
            out.append(run)
        return out


def utf16_len(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _cut(text: str, units: int) -> tuple[str, str]:
    """`text` cut after `units` UTF-16 code units (a surrogate pair cut in two leaves
    U+FFFD on each side, as Yjs does)."""
    if text.isascii():
        return text[:units], text[units:]
    raw = text.encode("utf-16-le", "surrogatepass")
    return (raw[: 2 * units].decode("utf-16-le", "replace"),
            raw[2 * units:].decode("utf-16-le", "replace"))


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self) -> int:
        data, pos = self.data, self.pos
        try:
            b = data[pos]
            if b < 0x80:
                self.pos = pos + 1
                return b
            n, shift = b & 0x7F, 7
            while True:
                pos += 1
                b = data[pos]
                n |= (b & 0x7F) << shift
                if b < 0x80:
                    self.pos = pos + 1
                    return n
                shift += 7
                if shift > 70:
                    raise ValueError("varint too long")
        except IndexError:
            raise ValueError("update ends inside a number") from None

    def string(self) -> str:
        n = self.uint()
        start = self.pos
        end = start + n
        if end > len(self.data):
            raise ValueError("update ends inside a string")
        self.pos = end
        try:
            return self.data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("update has a string that is not UTF-8") from None

    def skip_any(self, depth: int = 0) -> None:
        if depth > 64:
            raise ValueError("update has a value nested too deep")
        if self.pos >= len(self.data):
            raise ValueError("update ends early")
        tag = self.data[self.pos]
        self.pos += 1
        if tag in (127, 126, 121, 120):
            return
        if tag == 125:
            self.uint()  # (a signed varint: its length is what matters here)
        elif tag == 124:
            self.pos += 4
        elif tag in (123, 122):
            self.pos += 8
        elif tag in (119, 116):
            self.pos = self.uint() + self.pos
        elif tag == 118:
            for _ in range(self.uint()):
                self.pos = self.uint() + self.pos
                self.skip_any(depth + 1)
        elif tag == 117:
            for _ in range(self.uint()):
                self.skip_any(depth + 1)
        else:
            raise ValueError(f"update has an unknown value type {tag}")


class _Struct:
    __slots__ = ("client", "clock", "code", "deleted", "length", "origin", "rorigin", "text")

    def __init__(self, client: int, clock: int, length: int, origin: ID | None,
                 rorigin: ID | None, code: bool | None, text: str, deleted: bool) -> None:
        self.client, self.clock, self.length = client, clock, length
        self.origin, self.rorigin, self.code = origin, rorigin, code
        self.text, self.deleted = text, deleted


def _content(r: _Reader, ref: int) -> tuple[int, str, bool]:
    """(length in clock units, its text ("" when not text), whether it is deleted content)."""
    if ref == _STRING:
        text = r.string()
        return utf16_len(text), text, False
    if ref == _DELETED:
        return r.uint(), "", True
    if ref == 2:  # JSON
        n = r.uint()
        for _ in range(n):
            r.pos = r.uint() + r.pos
        return n, "", False
    if ref == 8:  # Any
        n = r.uint()
        for _ in range(n):
            r.skip_any()
        return n, "", False
    if ref in (3, 5):
        r.pos = r.uint() + r.pos
    elif ref == 6:
        r.pos = r.uint() + r.pos
        r.pos = r.uint() + r.pos
    elif ref == 7:
        if r.uint() in (3, 5):
            r.pos = r.uint() + r.pos
    elif ref == 9:
        r.pos = r.uint() + r.pos
        r.skip_any()
    else:
        raise ValueError(f"update has an unknown content type {ref}")
    return 1, "", False


class TextReplay:
    """The item list of the root text `root`, grown one update at a time (`apply`)."""

    def __init__(self, root: str = "code") -> None:
        self.root = root
        self.start: Node | None = None
        self._starts: dict[int, list[int]] = {}  # client -> start clocks of its nodes
        self._nodes: dict[int, list[Node]] = {}  # client -> its nodes, by clock
        self._next: dict[int, int] = {}  # client -> the next clock not yet seen
        # client -> clock ranges of items of other roots, in order, not overlapping
        self._foreign: dict[int, list[tuple[int, int]]] = {}
        # client -> heap of (the clock it waits for, arrival, the waiting struct or delete):
        # each waits until that client's next clock is past the clock
        self._waits: dict[int, list[tuple[int, int, _Struct | tuple[int, int, int]]]] = {}
        self._waiting = 0
        self._arrivals = 0
        self._woken: list[int] = []  # clients whose next clock moved while something waits
        self.rechecks = 0
        """Waiting structs and deletes looked at again after what they waited for arrived
        (a measure of work, for the tests)."""
        self.unreadable: str | None = None
        """Why the history cannot be read past some update (too many waiting), or None."""

    # --------------------------------------------------------------------- lookups
    def find(self, client: int, clock: int) -> Node | None:
        """The node holding `(client, clock)`, or None."""
        nodes = self._nodes.get(client)
        if not nodes:
            return None
        last = nodes[-1]
        if clock >= last.clock:
            return last if clock < last.clock + last.length else None
        starts = self._starts[client]
        i = bisect.bisect_right(starts, clock) - 1
        if i < 0:
            return None
        node = nodes[i]
        return node if clock < node.clock + node.length else None

    def _is_foreign(self, ident: ID) -> bool:
        ranges = self._foreign.get(ident[0])
        if not ranges:
            return False
        i = bisect.bisect_right(ranges, (ident[1], _INF)) - 1
        return i >= 0 and ident[1] < ranges[i][1]

    def split(self, node: Node, units: int) -> Node:
        """Cut `node` after `units` clock units; returns the new right part."""
        if not 0 < units < node.length:
            raise ValueError("split outside the node")
        left_text, right_text = _cut(node.text, units) if node.text else ("", "")
        right = Node(node.client, node.clock + units, node.length - units, right_text,
                     (node.client, node.clock + units - 1), node.rorigin, node.deleted,
                     node.tag)
        node.text = left_text
        node.length = units
        right.left, right.right = node, node.right
        if node.right is not None:
            node.right.left = right
        node.right = right
        starts, nodes = self._starts[node.client], self._nodes[node.client]
        i = bisect.bisect_right(starts, node.clock)
        starts.insert(i, right.clock)
        nodes.insert(i, right)
        return right

    def _clean_end(self, ident: ID) -> Node | None:
        node = self.find(*ident)
        if node is not None and ident[1] != node.clock + node.length - 1:
            self.split(node, ident[1] - node.clock + 1)
        return node

    def _clean_start(self, ident: ID) -> Node | None:
        node = self.find(*ident)
        if node is not None and ident[1] != node.clock:
            return self.split(node, ident[1] - node.clock)
        return node

    # --------------------------------------------------------------------- applying
    def apply(self, update: bytes, tag: Any = None) -> RowChange:
        """Apply one v1 update; new nodes get `tag`. `ValueError` when malformed."""
        if self.unreadable is not None:
            raise ValueError(self.unreadable)
        node = self.insert_key(update, tag)
        if node is not None:
            change = RowChange()
            change.created.append(node)
            return change
        m = _FAST_DELETE.fullmatch(update)
        if m is not None:
            change = RowChange()
            self._delete(_num(m.group(1)), _num(m.group(2)), _num(m.group(3)), change)
            return change
        change = RowChange()
        r = _Reader(bytes(update))
        structs: list[_Struct] = []
        seen: list[tuple[int, int, int]] = []  # GC ranges
        root = self.root
        for _ in range(r.uint()):
            n_structs = r.uint()
            client = r.uint()
            clock = r.uint()
            if n_structs > len(r.data):
                raise ValueError("update claims more structs than it has bytes")
            for _ in range(n_structs):
                if r.pos >= len(r.data):
                    raise ValueError("update ends early")
                info = r.data[r.pos]
                r.pos += 1
                ref = info & 0x1F
                if ref in (_GC, _SKIP):
                    length = r.uint()
                    if ref == _GC:
                        seen.append((client, clock, length))
                    clock += length
                    continue
                origin = (r.uint(), r.uint()) if info & _ORIGIN else None
                rorigin = (r.uint(), r.uint()) if info & _RIGHT else None
                code: bool | None = None
                if origin is None and rorigin is None:
                    if r.uint() == 1:
                        code = r.string() == root
                    else:
                        r.uint()
                        r.uint()
                        code = False  # a nested type's item: never the code's
                    if info & _SUB:
                        r.string()
                        code = False
                length, text, deleted = _content(r, ref)
                if r.pos > len(r.data):
                    raise ValueError("update ends early")
                if ref != _STRING and ref != _DELETED:
                    code = False if code is None else code and False
                structs.append(_Struct(client, clock, length, origin, rorigin, code, text,
                                       deleted))
                clock += length
        deletes: list[tuple[int, int, int]] = []
        for _ in range(r.uint()):
            client = r.uint()
            for _ in range(r.uint()):
                c0 = r.uint()
                deletes.append((client, c0, r.uint()))
        if r.pos != len(r.data):
            raise ValueError("update has trailing bytes")
        for client, clock, length in seen:
            self._see(client, clock, length)
        self._wake(tag, change)
        for s in structs:
            self._place(s, tag, change)
            if self._woken:
                self._wake(tag, change)
        for client, c0, n in deletes:
            self._delete(client, c0, n, change)
        return change

    def insert_key(self, update: bytes, tag: Any) -> Node | None:
        """`apply` for an update of the keystroke shape (one short string item placed by its
        origins, nothing deleted): its node; None (nothing applied) for any other update, or
        one that something waiting waits for — then call `apply`."""
        m = _FAST_INSERT.match(update)
        if m is not None and self.unreadable is None:
            end = m.end()
            size = update[end - 1]
            if end + size + 1 != len(update) or update[-1] != 0:
                return None
            try:
                text = update[end:end + size].decode("utf-8")
            except UnicodeDecodeError:
                return None
            g = m.groups()
            # (the varints written out: a call each cost ~15 % of the keystroke's path)
            raw = g[0]
            client = _NUMS.get(raw)
            if client is None:
                client = _num(raw)
            raw = g[1]
            n = len(raw)
            clock = raw[0] if n == 1 else (raw[0] & 0x7F) | (raw[1] << 7) if n == 2 else \
                (raw[0] & 0x7F) | ((raw[1] & 0x7F) << 7) | (raw[2] << 14) if n == 3 else \
                _num(raw)
            if g[2] is not None:
                raw = g[3]
                n = len(raw)
                origin: ID | None = (
                    client if g[2] == g[0] else _num(g[2]),
                    raw[0] if n == 1 else (raw[0] & 0x7F) | (raw[1] << 7) if n == 2 else
                    (raw[0] & 0x7F) | ((raw[1] & 0x7F) << 7) | (raw[2] << 14) if n == 3 else
                    _num(raw))
                rorigin: ID | None = None
            elif g[4] is not None:
                origin, rorigin = None, (_num(g[4]), _num(g[5]))
            else:
                raw = g[7]
                n = len(raw)
                origin = (
                    client if g[6] == g[0] else _num(g[6]),
                    raw[0] if n == 1 else (raw[0] & 0x7F) | (raw[1] << 7) if n == 2 else
                    (raw[0] & 0x7F) | ((raw[1] & 0x7F) << 7) | (raw[2] << 14) if n == 3 else
                    _num(raw))
                raw = g[9]
                n = len(raw)
                rorigin = (
                    client if g[8] == g[0] else _num(g[8]),
                    raw[0] if n == 1 else (raw[0] & 0x7F) | (raw[1] << 7) if n == 2 else
                    (raw[0] & 0x7F) | ((raw[1] & 0x7F) << 7) | (raw[2] << 14) if n == 3 else
                    _num(raw))
            if clock != self._next.get(client, 0):
                return None
            waits = self._waits.get(client)
            if waits and waits[0][0] < clock + len(text) * 2:
                return None  # it wakes what waits for it: `apply`
            left = right = None
            if origin is not None:
                oc, ok = origin
                nodes = self._nodes.get(oc)
                left = nodes[-1] if nodes else None  # (typing on: the client's newest node)
                if left is None or not left.clock <= ok < left.clock + left.length:
                    left = self.find(oc, ok)
                    if left is None:
                        return None
                if ok != left.clock + left.length - 1:
                    self.split(left, ok - left.clock + 1)
            if rorigin is not None:
                right = left.right if left is not None else self.start
                if right is None or right.clock != rorigin[1] or right.client != rorigin[0]:
                    right = self.find(rorigin[0], rorigin[1])  # (not typing on in place)
                    if right is None:
                        return None
                    if rorigin[1] != right.clock:
                        right = self.split(right, rorigin[1] - right.clock)
            length = len(text) if text.isascii() else utf16_len(text)
            node = Node(client, clock, length, text, origin, rorigin, False, tag)
            if (left is None and (right is None or right.left is not None)) or \
                    (left is not None and left.right is not right):
                left = self._resolve(node, left, right)
            nxt = left.right if left is not None else self.start
            node.left, node.right = left, nxt
            if left is not None:
                left.right = node
            else:
                self.start = node
            if nxt is not None:
                nxt.left = node
            starts = self._starts.get(client)
            if starts is None:
                self._starts[client], self._nodes[client] = [clock], [node]
            else:
                starts.append(clock)
                self._nodes[client].append(node)
            self._next[client] = clock + length
            return node
        return None

    def _see(self, client: int, clock: int, length: int) -> None:
        if clock + length > self._next.get(client, 0):
            self._next[client] = clock + length
            if client in self._waits:
                self._woken.append(client)

    def _wait(self, client: int, clock: int, item: _Struct | tuple[int, int, int]) -> None:
        """`item` waits until `client`'s clock `clock` is seen."""
        if self._waiting >= MAX_WAITING:
            self.unreadable = (f"more than {MAX_WAITING:,} items wait for items never sent; "
                               "the history is not read past this update")
            raise ValueError(self.unreadable)
        heapq.heappush(self._waits.setdefault(client, []), (clock, self._arrivals, item))
        self._arrivals += 1
        self._waiting += 1

    def _wake(self, tag: Any, change: RowChange) -> None:
        """Place what waited for the clocks that arrived (and what that wakes in turn)."""
        woken = self._woken
        while woken:
            client = woken.pop()
            heap = self._waits.get(client)
            if not heap:
                continue
            known = self._next.get(client, 0)
            ready = []
            while heap and heap[0][0] < known:
                ready.append(heapq.heappop(heap)[2])
            if not heap:
                del self._waits[client]
            self._waiting -= len(ready)
            self.rechecks += len(ready)
            for item in ready:
                if isinstance(item, _Struct):
                    self._place(item, tag, change)
                else:
                    self._delete(*item, change)

    def _place(self, s: _Struct, tag: Any, change: RowChange) -> None:
        """Integrate `s`, skip it (not the code's), or let it wait for what it refers to."""
        if s.clock > self._next.get(s.client, 0):
            self._wait(s.client, s.clock - 1, s)  # an earlier clock of its client is missing
            return
        for ident in (s.origin, s.rorigin):
            if ident is not None and ident[1] >= self._next.get(ident[0], 0):
                self._wait(ident[0], ident[1], s)  # (both must be there to place it)
                return
        if self._is_code(s):
            self._integrate(s, tag, change)
        else:
            self._mark_foreign(s)

    def _is_code(self, s: _Struct) -> bool:
        """Whether `s` (its origins all seen) is an item of the code."""
        code = s.code
        for ident in (s.origin, s.rorigin):
            if ident is None:
                continue
            if self.find(*ident) is not None:
                code = True if code is None else code
            elif self._is_foreign(ident):
                code = False
        return bool(code)  # False: refers to items of no known root (e.g. collected)

    def _mark_foreign(self, s: _Struct) -> None:
        end = s.clock + s.length
        known = self._next.get(s.client, 0)
        if end > known:
            first = max(s.clock, known)  # (what came before is known already)
            ranges = self._foreign.setdefault(s.client, [])
            if ranges and ranges[-1][1] == first:
                ranges[-1] = (ranges[-1][0], end)
            else:
                ranges.append((first, end))
            self._see(s.client, s.clock, s.length)

    def _integrate(self, s: _Struct, tag: Any, change: RowChange) -> None:
        known = self._next.get(s.client, 0)
        offset = known - s.clock
        if offset >= s.length:
            return  # already have it all
        origin, text, length = s.origin, s.text, s.length
        if offset > 0:
            origin = (s.client, s.clock + offset - 1)
            if text:
                text = _cut(text, offset)[1]
            length -= offset
        clock = s.clock + max(offset, 0)
        node = Node(s.client, clock, length, text, origin, s.rorigin, s.deleted, tag)
        left = self._clean_end(origin) if origin is not None else None
        right = self._clean_start(s.rorigin) if s.rorigin is not None else None
        if (left is None and (right is None or right.left is not None)) or \
                (left is not None and left.right is not right):
            left = self._resolve(node, left, right)
        nxt = left.right if left is not None else self.start
        node.left, node.right = left, nxt
        if left is not None:
            left.right = node
        else:
            self.start = node
        if nxt is not None:
            nxt.left = node
        self._starts.setdefault(s.client, []).append(clock)
        self._nodes.setdefault(s.client, []).append(node)
        self._next[s.client] = clock + length
        if s.client in self._waits:
            self._woken.append(s.client)
        change.created.append(node)

    def _resolve(self, node: Node, left: Node | None, right: Node | None) -> Node | None:
        """Yjs's conflict resolution for concurrent inserts between `left` and `right`."""
        o = left.right if left is not None else self.start
        conflicting: set[int] = set()
        before: set[int] = set()
        while o is not None and o is not right:
            before.add(id(o))
            conflicting.add(id(o))
            if node.origin == o.origin:
                if o.client < node.client:
                    left = o
                    conflicting.clear()
                elif node.rorigin == o.rorigin:
                    break
            elif o.origin is not None:
                held = self.find(*o.origin)
                if held is not None and id(held) in before:
                    if id(held) not in conflicting:
                        left = o
                        conflicting.clear()
                else:
                    break
            else:
                break
            o = o.right
        return left

    def _delete(self, client: int, clock: int, length: int, change: RowChange) -> None:
        end = clock + length
        known = self._next.get(client, 0)
        if end > known:
            first = max(clock, known)
            self._wait(client, first, (client, first, end - first))
            end = known
        if clock >= end or client not in self._nodes:
            return
        node = self.find(client, clock)
        if node is None:  # starts in a gap (items of another root): find the next node
            starts = self._starts[client]
            i = bisect.bisect_left(starts, clock)
            if i >= len(starts):
                return
            node = self._nodes[client][i]
        elif node.clock < clock:
            node = self.split(node, clock - node.clock)
        nodes, starts = self._nodes[client], self._starts[client]
        i = bisect.bisect_left(starts, node.clock)
        while i < len(nodes) and nodes[i].clock < end:
            node = nodes[i]
            if node.clock + node.length > end:
                self.split(node, end - node.clock)
            if not node.deleted:
                node.deleted = True
                change.deleted.append(node)
            i += 1

    # --------------------------------------------------------------------- reading
    def nodes(self) -> Iterator[Node]:
        """Every node in document order (tombstones too)."""
        node = self.start
        while node is not None:
            yield node
            node = node.right

    def live(self) -> Iterator[Node]:
        """The nodes of the current text, in order."""
        node = self.start
        while node is not None:
            if not node.deleted and node.text:
                yield node
            node = node.right

    def text(self) -> str:
        return "".join(n.text for n in self.live())
