"""The shared interview document: a typed wrapper over one pycrdt `Doc`.

A live `SharedDoc` is two pycrdt documents, one per writer (see docs/architecture.md,
"Authority"): the *code* document, which both people write, and the *state* document, which
only the interviewer's process writes and which is synced one way, host to candidate. The two
use different client ids and different root names, so their histories join into one pycrdt
document without conflict: the session file keeps one stream of updates, and replay, report and
verify read it as one document (`SharedDoc(doc)` wraps such a joined document).

Root types, by name:

- `code` (`Text`, code document): the code. pycrdt indexes it in UTF-8 bytes; this class
  takes and reports code points (and UTF-16 for the browser editor).
- `meta` (`Map`): `language`, `problem` (markdown), `phase`, `timer`, `public_tests` and
  `policy` (the session's integrity policy as TOML text, set once by the host).
  Structured values (`timer`, `public_tests`) are canonical JSON strings: pycrdt would turn
  every int into a float, and a JSON string keeps the value exact and replaces it whole.
- `runs` (`Array` of run ids, in request order), `run_requests` and `run_results`
  (`Map` run id → canonical JSON).

Everything but `code` is in the state document.

Values written by the other peer are read defensively: a value of the wrong shape reads as
absent (the default), the same way on every machine, so `snapshot()` never fails and stays
deterministic.

Interviewer-only data (notes, hidden tests, score) never goes into this document.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias, cast, get_args

import pycrdt

from .jsonlimits import loads_bounded
from .textindex import CodeOp, TextChange, TextIndex, editor_changes_to_ops, utf8_delta_to_changes
from .updateparse import (
    ClientBlock,
    join_update,
    parse_update,
    state_vector_clocks,
    varint_bytes,
)
from .varints import write_varint

__all__ = ["CODE_ROOTS", "PARTS", "PHASES", "STATE_ROOTS", "CodeChange", "Part", "PartCallback",
           "Phase", "SharedDoc", "UpdateCallback", "apply_update_checked", "pycrdt_failure"]

log = logging.getLogger(__name__)

Phase: TypeAlias = Literal["lobby", "interview", "wrap-up", "ended"]
PHASES: Final[tuple[str, ...]] = get_args(Phase)
DEFAULT_LANGUAGE: Final = "python"
MAX_LANGUAGE_LEN: Final = 64
MAX_POLICY_LEN: Final = 64 * 1024
_EMPTY_UPDATE: Final = b"\x00\x00"

UpdateCallback: TypeAlias = Callable[[bytes, str | None], None]
"""Called with every binary update of the document and the origin of its transaction."""

Part: TypeAlias = Literal["code", "state"]
PARTS: Final[tuple[Part, ...]] = ("code", "state")
CODE_ROOTS: Final = frozenset({"code"})
STATE_ROOTS: Final = frozenset({"meta", "runs", "run_requests", "run_results"})
ROOTS: Final[dict[Part, frozenset[str]]] = {"code": CODE_ROOTS, "state": STATE_ROOTS}
PartCallback: TypeAlias = Callable[[Part, bytes, str | None], None]
"""Called with the part (code or state) an update belongs to, the update and its origin."""
MAX_TIMER_S: Final = 7 * 24 * 3600.0
"""A timer longer than a week is not an interview's (a hostile value reads as no timer)."""
MAX_EPOCH_S: Final = 1e10


@dataclass(frozen=True, slots=True)
class CodeChange:
    """One transaction's change to the code, for editors.

    `changes` are in code points, `changes_utf16` in UTF-16 code units; both are against the
    code before the change, ascending and non-overlapping (CodeMirror's change-set shape).
    `text` is the code after the change, so a callback never needs to read the document.
    """

    changes: tuple[TextChange, ...]
    changes_utf16: tuple[TextChange, ...]
    text: str
    origin: str | None


def pycrdt_failure(exc: BaseException) -> bool:
    """Whether `exc` is pycrdt refusing bad input: a Python exception, or a panic inside yrs
    (pyo3's PanicException derives from BaseException, so `except Exception` misses it —
    measured: a few bit flips in a keystroke's update can panic `apply_update`)."""
    if isinstance(exc, Exception):
        return True
    return type(exc).__name__ == "PanicException"


def apply_update_checked(doc: pycrdt.Doc[Any], update: bytes) -> None:
    """`doc.apply_update(update)`, with any failure (a panic in yrs included) as ValueError."""
    try:
        doc.apply_update(update)
    except BaseException as exc:
        if not pycrdt_failure(exc):
            raise
        raise ValueError(f"the update cannot be applied ({type(exc).__name__})") from None


def _canonical_json(value: object, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not plain JSON data: {exc}") from None


def _finite(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, not {value}")
    return float(value)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, not {type(value).__name__}")
    TextIndex(value)  # refuses lone surrogates
    return value


MAX_VALUE_BYTES = 64 * 1024 * 1024  # the whole document's cap (sync.MAX_DOC_BYTES)
MAX_VALUE_DEPTH = 16  # a run result, the deepest honest value, nests 4 levels


def _loads(raw: object) -> Any:
    """Parse a JSON value written by a peer; anything unparsable — or nested deeper than
    `MAX_VALUE_DEPTH`, checked before parsing — reads as None."""
    if not isinstance(raw, str):
        return None
    try:
        return loads_bounded(raw, max_bytes=MAX_VALUE_BYTES, max_depth=MAX_VALUE_DEPTH)
    except ValueError:
        return None


@contextmanager
def _transactions(docs: tuple[pycrdt.Doc[Any], ...], origin: str | None) -> Iterator[None]:
    """One transaction on each of `docs` (one or two), tagged with `origin`."""
    if len(docs) == 1:
        with docs[0].transaction(origin=origin):
            yield
        return
    with docs[0].transaction(origin=origin), docs[1].transaction(origin=origin):
        yield


class SharedDoc:
    """The shared interview document. All edits go through this object.

    `origin` names who made an edit (e.g. `"host"`, `"candidate"`, `"remote"`); it is passed
    to the pycrdt transaction and reported to `observe_updates` subscribers (the store).
    """

    def __init__(self, doc: pycrdt.Doc[Any] | None = None, *, client_id: int | None = None) -> None:
        if doc is not None and client_id is not None:
            raise ValueError("pass either an existing doc or a client_id, not both")
        if doc is not None:  # one joined document (a replay, a report): both parts in it
            self._code_doc: pycrdt.Doc[Any] = doc
            self._state_doc: pycrdt.Doc[Any] = doc
        else:
            self._code_doc = pycrdt.Doc(client_id=client_id)
            state_client = secrets.randbits(52)
            while state_client == self._code_doc.client_id:
                state_client = secrets.randbits(52)
            self._state_doc = pycrdt.Doc(client_id=state_client)
        self._split = self._state_doc is not self._code_doc
        self.remote_bytes = 0
        """Update bytes the sync took from peers into this document (held to its cap)."""
        self._doc = self._code_doc  # (the keystroke paths use it)
        self._code = self._code_doc.get("code", type=pycrdt.Text)
        self._meta = self._state_doc.get("meta", type=pycrdt.Map)
        self._run_ids = self._state_doc.get("runs", type=pycrdt.Array)
        self._run_requests = self._state_doc.get("run_requests", type=pycrdt.Map)
        self._run_results = self._state_doc.get("run_results", type=pycrdt.Map)
        # Which part each known client writes: how a joined update is split (`split_update`).
        self._client_part: dict[int, Part] = {self._code_doc.client_id: "code"}
        if self._split:
            self._client_part[self._state_doc.client_id] = "state"
        # This side's writers of each part: its own pycrdt client and every browser editor
        # of this person's (`adopt_client`); kept as encoded bytes too, for the sync's
        # keystroke path. Live sets: the sync reads them as they grow.
        self._own: dict[Part, set[int]] = {p: {self.part_doc(p).client_id} for p in PARTS}
        self._own_wire: dict[Part, set[bytes]] = {
            p: {varint_bytes(c) for c in ids} for p, ids in self._own.items()}
        # A copy of the code as a Python str. None when unknown (after a change this object
        # did not make itself); it is rebuilt from the document on the next read.
        self._mirror: str | None = None
        # Length of the code while it is known to be pure ASCII (code points == UTF-8 bytes),
        # which lets a keystroke skip copying and re-indexing the whole text.
        self._ascii_len: int | None = None
        self._own_txn = False
        self._depth = 0
        self._origin: str | None = None
        self._update_callbacks: list[UpdateCallback] = []
        self._part_callbacks: list[PartCallback] = []
        self._code_callbacks: list[Callable[[CodeChange], None]] = []
        self._code_subscription: pycrdt.Subscription | None = None
        self._code_doc.observe(self._on_code_transaction)
        if self._split:
            self._state_doc.observe(self._on_state_transaction)

    @property
    def doc(self) -> pycrdt.Doc[Any]:
        """The code's pycrdt document (presence lives on it; edit through this class)."""
        return self._code_doc

    @property
    def split(self) -> bool:
        """Whether code and state are two documents (a live session) or one (a replay)."""
        return self._split

    def part_doc(self, part: Part) -> pycrdt.Doc[Any]:
        """The pycrdt document that holds `part` (the same one twice when not split)."""
        return self._code_doc if part == "code" else self._state_doc

    @property
    def client_id(self) -> int:
        return self._code_doc.client_id

    def own_clients(self, part: Part) -> frozenset[int]:
        """The client ids this side writes `part` with: its own, and its browser editors'."""
        return frozenset(self._own[part])

    def own_wire(self, part: Part) -> Set[bytes]:
        """`own_clients(part)` as encoded on the wire (a live view: it grows with
        `adopt_client`)."""
        return self._own_wire[part]

    def new_writer(self, part: Part = "code") -> int:
        """A fresh client id for a writer of this side's (a browser editor), adopted as
        this side's own (`adopt_client`). It fits in 32 bits, as Yjs's client ids do, and
        is not one the document knows."""
        known = set(state_vector_clocks(self.get_state())) | set(self._client_part)
        client = secrets.randbits(32)
        while client in known or client == 0:
            client = secrets.randbits(32)
        self.adopt_client(part, client)
        return client

    def adopt_client(self, part: Part, client: int) -> None:
        """Count `client` as one of this side's own writers of `part`: a peer may echo its
        edits, never add to them."""
        self._own[part].add(client)
        self._own_wire[part].add(varint_bytes(client))
        self._client_part.setdefault(client, part)

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self, origin: str | None = None) -> Iterator[None]:
        """Group changes into one transaction per document, tagged with `origin`.

        Use it around changes made directly on `.doc` (e.g. applying a peer's update);
        the code mirror is refreshed afterwards.
        """
        with self._txn(origin, own=False):
            yield

    def _docs(self, part: Part | None) -> tuple[pycrdt.Doc[Any], ...]:
        if not self._split:
            return (self._code_doc,)
        if part is None:
            return (self._code_doc, self._state_doc)
        return (self.part_doc(part),)

    @contextmanager
    def _txn(self, origin: str | None, *, own: bool, part: Part | None = None) -> Iterator[None]:
        if origin is not None and not isinstance(origin, str):
            raise ValueError(f"origin must be a str or None, not {type(origin).__name__}")
        docs = self._docs(part)
        if self._depth:  # nested: join the running transaction (pycrdt checks the origin)
            if not own:
                self._own_txn = False
            with _transactions(docs, origin):
                yield
            return
        self._origin, self._own_txn = origin, own
        self._depth += 1
        try:
            with _transactions(docs, origin):
                yield
        finally:
            self._depth -= 1
            self._origin, self._own_txn = None, False

    def apply_update(self, update: bytes, *, origin: str | None = "remote") -> None:
        """Apply a binary update (from a peer or the store); an update that holds both code
        and state is split between the two documents. Raises `ValueError` if malformed."""
        if update == _EMPTY_UPDATE:
            return
        if not self._split:
            with self._txn(origin, own=False):
                apply_update_checked(self._code_doc, update)
            return
        for part, piece in self.split_update(update).items():
            self.apply_part_update(part, piece, origin=origin)

    def apply_part_update(self, part: Part, update: bytes, *,
                          origin: str | None = "remote") -> None:
        """Apply `update` to the document of `part` only (the sync does this, having checked
        who may write it). Raises `ValueError` if malformed."""
        doc = self._code_doc if part == "code" else self._state_doc
        if self._depth or not (origin is None or type(origin) is str):
            if update != _EMPTY_UPDATE:
                with self._txn(origin, own=False, part=part):
                    apply_update_checked(doc, update)
            return
        # every remote keystroke's path: pycrdt's apply opens the one transaction, and the
        # origin the store records is ours (`_report` reads it), so no outer one is needed
        self._origin, self._own_txn, self._depth = origin, False, 1
        try:
            doc.apply_update(update)  # (`apply_update_checked`, inlined)
        except BaseException as exc:
            if not pycrdt_failure(exc):
                raise
            raise ValueError(f"the update cannot be applied ({type(exc).__name__})") from None
        finally:
            self._origin, self._own_txn, self._depth = None, False, 0

    def learn_clients(self, part: Part, clients: Iterable[int]) -> None:
        """Note that `clients` write `part` (so a later joined update can be split)."""
        for client in clients:
            self._client_part.setdefault(client, part)

    def split_update(self, update: bytes) -> dict[Part, bytes]:
        """Cut an update that may hold both parts into one update per part, byte for byte
        (see `updateparse`). A client's structs go by the roots they name, else by what is
        known of the client or of the items they refer to; `ValueError` if an update names
        roots of both parts in one client's structs, or unknown roots."""
        parsed = parse_update(update)
        blocks: dict[Part, list[ClientBlock]] = {"code": [], "state": []}
        for block in parsed.blocks:
            part = self._part_of(block)
            self._client_part.setdefault(block.client, part)
            blocks[part].append(block)
        deletes: dict[Part, list[tuple[int, int, int]]] = {"code": [], "state": []}
        for entry in parsed.deletes:
            deletes[self._client_part.get(entry[0], "code")].append(entry)
        used = [p for p in PARTS if blocks[p] or deletes[p]]
        if len(used) <= 1:
            return {used[0] if used else "code": bytes(update)}
        return {p: join_update(parsed, blocks[p], deletes[p]) for p in used}

    def _part_of(self, block: ClientBlock) -> Part:
        if block.roots:
            for part in PARTS:
                if block.roots <= ROOTS[part]:
                    return part
            raise ValueError(f"an update names roots {sorted(block.roots)[:4]} together or "
                             f"unknown to the interview document")
        known = self._client_part.get(block.client)
        if known is not None:
            return known
        for ref in block.refs:
            known = self._client_part.get(ref)
            if known is not None:
                return known
        return "code"

    def get_update(self, state: bytes | None = None) -> bytes:
        """The whole document (both parts) as one update, or what a peer with `state` is
        missing."""
        if not self._split:
            return self._code_doc.get_update(state)
        code = self._code_doc.get_update(state)
        rest = self._state_doc.get_update(state)
        if rest == _EMPTY_UPDATE:
            return code
        if code == _EMPTY_UPDATE:
            return rest
        return pycrdt.merge_updates(code, rest)

    def get_part_update(self, part: Part, state: bytes | None = None) -> bytes:
        return self.part_doc(part).get_update(state)

    def get_state(self) -> bytes:
        """The state vector of both parts together."""
        if not self._split:
            return self._code_doc.get_state()
        clocks = state_vector_clocks(self._code_doc.get_state())
        clocks.update(state_vector_clocks(self._state_doc.get_state()))
        out = bytearray()
        write_varint(len(clocks), out)
        for client, clock in sorted(clocks.items(), reverse=True):
            write_varint(client, out)
            write_varint(clock, out)
        return bytes(out)

    def _on_code_transaction(self, event: pycrdt.TransactionEvent) -> None:
        # Runs inside the pycrdt commit: never read the document here. Every keystroke
        # comes here, so the usual case (the store and the sync, one callback each) is
        # written out rather than calling `_report`.
        if not self._own_txn and self._code_subscription is None:
            self._mirror = None
            self._ascii_len = None
        callbacks, parts = self._update_callbacks, self._part_callbacks
        if len(callbacks) <= 1 and len(parts) <= 1:
            if callbacks or parts:
                update = event.update
                if update != _EMPTY_UPDATE:
                    if callbacks:
                        callbacks[0](update, self._origin)
                    if parts:
                        parts[0]("code", update, self._origin)
            return
        self._report("code", event)

    def _on_state_transaction(self, event: pycrdt.TransactionEvent) -> None:
        self._report("state", event)

    def _report(self, part: Part, event: pycrdt.TransactionEvent) -> None:
        callbacks = self._update_callbacks
        parts = self._part_callbacks
        if callbacks or parts:
            update = event.update
            if update != _EMPTY_UPDATE:
                if len(callbacks) == 1:  # the usual case: the store alone
                    callbacks[0](update, self._origin)
                else:
                    for callback in list(callbacks):
                        callback(update, self._origin)
                for part_callback in list(parts):
                    part_callback(part, update, self._origin)

    def observe_updates(self, callback: UpdateCallback) -> Callable[[], None]:
        """Call `callback(update, origin)` for every change; returns an unsubscribe function.

        It runs inside the pycrdt commit: it must not read or write the document.
        """
        self._update_callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._update_callbacks:
                self._update_callbacks.remove(callback)

        return unsubscribe

    def observe_part_updates(self, callback: PartCallback) -> Callable[[], None]:
        """Like `observe_updates`, with the part each update belongs to (for the sync)."""
        self._part_callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._part_callbacks:
                self._part_callbacks.remove(callback)

        return unsubscribe

    def observe_state(self, callback: Callable[[frozenset[str]], None]) -> Callable[[], None]:
        """Call `callback(names)` after each change to the shared state, local or remote:
        the `meta` keys that changed ("language", "problem", "phase", "timer", "policy",
        "public_tests") and "runs" for a run requested or answered. It runs inside the pycrdt
        commit: it must not read or write the document (the pages' controllers only note
        what changed). Returns an unsubscribe function."""

        def on_meta(event: Any) -> None:
            callback(frozenset(str(key) for key in event.keys))

        def on_runs(_event: Any) -> None:
            callback(frozenset(("runs",)))

        roots: list[Any] = [self._run_ids, self._run_requests, self._run_results]
        subs = [(self._meta, self._meta.observe(on_meta))] + \
            [(root, root.observe(on_runs)) for root in roots]

        def unsubscribe() -> None:
            while subs:
                root, sub = subs.pop()
                root.unobserve(sub)

        return unsubscribe

    # ------------------------------------------------------------------ code
    @property
    def code_text(self) -> str:
        """The code as a Python str (safe to call from an `observe_code` callback)."""
        if self._mirror is None:
            self._set_mirror(str(self._code))
        assert self._mirror is not None
        return self._mirror

    def _set_mirror(self, text: str | None) -> None:
        self._mirror = text
        self._ascii_len = len(text) if text is not None and text.isascii() else None

    def _ascii_ranges(self, ops: Sequence[CodeOp]) -> tuple[list[tuple[int, int, str]], int] | None:
        """The UTF-8 ranges of `ops` when the code and the ops are pure ASCII and in range
        (then indices need no conversion), with the new length; else None (the general path
        validates, converts, and raises the precise error)."""
        n = self._ascii_len
        if n is None or self._code_subscription is not None:
            return None
        ranges: list[tuple[int, int, str]] = []
        for op in ops:
            index, delete, insert = op.index, op.delete, op.insert
            if type(index) is not int or type(delete) is not int or \
                    not isinstance(insert, str) or not insert.isascii():
                return None
            if index < 0 or delete < 0 or index + delete > n:
                return None
            ranges.append((index, index + delete, insert))
            n += len(insert) - delete
        return ranges, n

    def _edit_code(self, ops: Sequence[CodeOp], origin: str | None) -> None:
        fast = self._ascii_ranges(ops)
        if fast is not None:
            ranges_fast, new_len = fast
            with self._txn(origin, own=True, part="code"):
                for start, end, insert in ranges_fast:
                    if end > start:
                        del self._code[start:end]
                    if insert:
                        self._code.insert(start, insert)
            self._mirror, self._ascii_len = None, new_len  # read lazily by code_text
            return
        # Check every op against the evolving text before changing anything, so a bad op
        # never leaves half an edit behind.
        text = self.code_text
        ranges: list[tuple[int, int, str]] = []  # UTF-8 (start, end, insert)
        for op in ops:
            for name, value in (("index", op.index), ("delete length", op.delete)):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"code {name} must be an integer")
            if op.index < 0 or op.index > len(text):
                raise ValueError(f"code index {op.index} is out of range 0..{len(text)}")
            if op.delete < 0 or op.index + op.delete > len(text):
                raise ValueError(
                    f"cannot delete {op.delete} code points at {op.index}: the code has {len(text)}"
                )
            TextIndex(op.insert)
            index = TextIndex(text)
            start = index.cp_to_utf8(op.index)
            end = index.cp_to_utf8(op.index + op.delete) if op.delete else start
            ranges.append((start, end, op.insert))
            text = text[: op.index] + op.insert + text[op.index + op.delete :]
        with self._txn(origin, own=True, part="code"):
            for start, end, insert in ranges:
                if end > start:
                    del self._code[start:end]
                if insert:
                    self._code.insert(start, insert)
        if self._code_subscription is None:
            self._set_mirror(text)

    def insert_code(self, index: int, text: str, *, origin: str | None = None) -> None:
        """Insert `text` at code-point `index`."""
        n = self._ascii_len
        # The keystroke fast path (ASCII code, ASCII text, in range, not nested, no code
        # observer): indices need no conversion and nothing else is checked or copied.
        if n is not None and type(index) is int and type(text) is str and 0 <= index <= n \
                and text.isascii() and not self._depth and self._code_subscription is None \
                and (origin is None or type(origin) is str):
            # (`_txn` without the generator, inlined: this runs on every key press)
            self._origin, self._own_txn, self._depth = origin, True, 1
            try:
                with self._doc.transaction(origin=origin):
                    self._code.insert(index, text)
            finally:
                self._origin, self._own_txn, self._depth = None, False, 0
            self._mirror, self._ascii_len = None, n + len(text)
            return
        self._edit_code([CodeOp(index, 0, _text(text, "inserted text"))], origin)

    def delete_code(self, index: int, length: int, *, origin: str | None = None) -> None:
        """Delete `length` code points at code-point `index`."""
        n = self._ascii_len
        if n is not None and type(index) is int and type(length) is int and index >= 0 \
                and length >= 0 and index + length <= n and not self._depth \
                and self._code_subscription is None and (origin is None or type(origin) is str):
            self._origin, self._own_txn, self._depth = origin, True, 1
            try:
                with self._doc.transaction(origin=origin):
                    if length:
                        del self._code[index : index + length]
            finally:
                self._origin, self._own_txn, self._depth = None, False, 0
            self._mirror, self._ascii_len = None, n - length
            return
        self._edit_code([CodeOp(index, length, "")], origin)

    def set_code(self, text: str, *, origin: str | None = None) -> None:
        """Replace the whole code."""
        self._edit_code([CodeOp(0, len(self.code_text), _text(text, "code"))], origin)

    def apply_editor_changes(
        self,
        changes_utf16: Sequence[Mapping[str, Any] | TextChange],
        origin: str | None = None,
    ) -> None:
        """Apply a CodeMirror change set ({from, to, insert} in UTF-16, against the current
        code) as one transaction."""
        self._edit_code(editor_changes_to_ops(self.code_text, changes_utf16), origin)

    def observe_code(self, callback: Callable[[CodeChange], None]) -> Callable[[], None]:
        """Call `callback(CodeChange)` after every change to the code; returns an
        unsubscribe function. The callback runs inside the pycrdt commit: it may use the
        `CodeChange` and `code_text`, but must not otherwise read or write the document."""
        if self._code_subscription is None:
            self.code_text  # noqa: B018 - the mirror must be exact before the first delta
            self._code_subscription = self._code.observe(self._on_code_event)
        self._code_callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._code_callbacks:
                self._code_callbacks.remove(callback)
            if not self._code_callbacks and self._code_subscription is not None:
                self._code.unobserve(self._code_subscription)
                self._code_subscription = None

        return unsubscribe

    def _on_code_event(self, event: pycrdt.TextEvent) -> None:
        # Runs inside the pycrdt commit: works from the mirror and the delta only.
        if self._mirror is None:
            return
        delta: list[dict[str, Any]] = event.delta  # type: ignore[attr-defined]
        try:
            new, cp_changes, u16_changes = utf8_delta_to_changes(self._mirror, delta)
        except ValueError as exc:
            log.warning("code change not understood, editors must reload: %s", exc)
            self._set_mirror(None)
            return
        self._set_mirror(new)
        change = CodeChange(tuple(cp_changes), tuple(u16_changes), new, self._origin)
        for callback in list(self._code_callbacks):
            callback(change)

    # ------------------------------------------------------------------ metadata
    def _meta_str(self, key: str) -> str | None:
        value = self._meta.get(key)
        return value if isinstance(value, str) else None

    def _set_meta(self, key: str, value: str, origin: str | None) -> None:
        with self._txn(origin, own=True, part="state"):
            self._meta[key] = value

    @property
    def language(self) -> str:
        return self._meta_str("language") or DEFAULT_LANGUAGE

    @language.setter
    def language(self, value: str) -> None:
        self.set_language(value)

    def set_language(self, value: str, *, origin: str | None = None) -> None:
        value = _text(value, "language")
        if not value or len(value) > MAX_LANGUAGE_LEN or any(c.isspace() for c in value):
            raise ValueError(
                f"language must be a non-empty name without spaces, at most "
                f"{MAX_LANGUAGE_LEN} characters: {value!r}"
            )
        self._set_meta("language", value, origin)

    @property
    def problem(self) -> str:
        """The problem statement (markdown)."""
        return self._meta_str("problem") or ""

    @problem.setter
    def problem(self, value: str) -> None:
        self.set_problem(value)

    def set_problem(self, value: str, *, origin: str | None = None) -> None:
        self._set_meta("problem", _text(value, "problem"), origin)

    @property
    def policy_text(self) -> str | None:
        """The session's integrity policy (TOML text) as the host set it, or None (not set
        yet, or not text). The candidate's app debounces and warns by it."""
        value = self._meta_str("policy")
        return value if value and len(value) <= MAX_POLICY_LEN else None

    def set_policy(self, text: str, *, origin: str | None = None) -> None:
        """Set the session's policy text, once (the host, when it creates the session)."""
        text = _text(text, "policy")
        if not text or len(text) > MAX_POLICY_LEN:
            raise ValueError(f"the policy must be 1..{MAX_POLICY_LEN} characters of TOML")
        current = self._meta_str("policy")
        if current is not None and current != text:
            raise ValueError("the session's policy is set once and cannot change")
        self._set_meta("policy", text, origin)

    @property
    def phase(self) -> Phase:
        value = self._meta_str("phase")
        return cast(Phase, value) if value in PHASES else "lobby"

    @phase.setter
    def phase(self, value: Phase) -> None:
        self.set_phase(value)

    def set_phase(self, value: Phase, *, origin: str | None = None) -> None:
        if value not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}, not {value!r}")
        self._set_meta("phase", value, origin)

    def start_timer(self, duration_s: float, now: float, *, origin: str | None = None) -> None:
        """Start (or restart) the interview timer at time `now` (seconds since the epoch)."""
        duration = _finite(duration_s, "timer duration")
        if not 0 < duration <= MAX_TIMER_S:
            raise ValueError(f"timer duration must be positive and at most a week, "
                             f"not {duration_s}")
        started = _finite(now, "timer start")
        if not 0 <= started <= MAX_EPOCH_S:
            raise ValueError(f"timer start {now} is not a time of this era")
        value = {"started_at": started, "duration_s": duration}
        self._set_meta("timer", _canonical_json(value, "timer"), origin)

    def clear_timer(self, *, origin: str | None = None) -> None:
        with self._txn(origin, own=True, part="state"):
            if "timer" in self._meta:
                del self._meta["timer"]

    def timer(self) -> dict[str, float] | None:
        """`{"started_at": float, "duration_s": float}` or None when no timer runs."""
        value = _loads(self._meta.get("timer"))
        if not isinstance(value, dict):
            return None
        try:
            started = _finite(value.get("started_at"), "timer start")
            duration = _finite(value.get("duration_s"), "timer duration")
        except ValueError:
            return None
        # the same range `start_timer` allows: a value out of it (a hostile peer's
        # {"started_at": 1e308, "duration_s": -5}) reads as no timer, on every machine
        if not (0 < duration <= MAX_TIMER_S and 0 <= started <= MAX_EPOCH_S):
            return None
        return {"started_at": started, "duration_s": duration}

    # ------------------------------------------------------------------ public tests
    def set_public_tests(
        self, tests: Sequence[Mapping[str, Any]], *, origin: str | None = None
    ) -> None:
        """Replace the public test cases: each `{"name", "stdin", "expected"}` (all str)."""
        if isinstance(tests, str | bytes) or not isinstance(tests, Sequence):
            raise ValueError("public tests must be a list of objects")
        clean: list[dict[str, str]] = []
        for position, test in enumerate(tests, 1):
            if not isinstance(test, Mapping) or set(test) != {"name", "stdin", "expected"}:
                raise ValueError(
                    f"public test {position} must have exactly the keys name, stdin, expected"
                )
            clean.append({k: _text(test[k], f"public test {position} {k}") for k in sorted(test)})
        self._set_meta("public_tests", _canonical_json(clean, "public tests"), origin)

    def public_tests(self) -> list[dict[str, str]]:
        value = _loads(self._meta.get("public_tests"))
        if not isinstance(value, list):
            return []
        return [
            {k: t[k] for k in ("name", "stdin", "expected")}
            for t in value
            if isinstance(t, dict)
            and set(t) == {"name", "stdin", "expected"}
            and all(isinstance(v, str) for v in t.values())
        ]

    # ------------------------------------------------------------------ runs
    def request_run(
        self,
        run_id: str,
        *,
        by: str,
        at: float,
        language: str,
        source: str,
        stdin: str = "",
        origin: str | None = None,
    ) -> None:
        """Record a request to run `source` (with `stdin`, a console run's input; none is
        kept when empty); results come later via `set_run_result`."""
        run_id = _text(run_id, "run id")
        if not run_id:
            raise ValueError("run id must not be empty")
        if run_id in self._run_requests:
            raise ValueError(f"run {run_id!r} was already requested")
        request = {
            "run_id": run_id,
            "by": _text(by, "run requester"),
            "at": _finite(at, "run time"),
            "language": _text(language, "run language"),
            "source": _text(source, "run source"),
        }
        if stdin:
            request["stdin"] = _text(stdin, "run input")
        with self._txn(origin, own=True, part="state"):
            self._run_requests[run_id] = _canonical_json(request, "run request")
            self._run_ids.append(run_id)

    def set_run_result(
        self, run_id: str, result: Mapping[str, Any], *, origin: str | None = None
    ) -> None:
        """Attach a run's result (a Piston-shaped execute response) to its request."""
        if run_id not in self._run_requests:
            raise ValueError(f"no run {run_id!r} was requested")
        if not isinstance(result, Mapping):
            raise ValueError(f"a run result must be an object, not {type(result).__name__}")
        self._set_run_result(run_id, _canonical_json(dict(result), "run result"), origin)

    def _set_run_result(self, run_id: str, value: str, origin: str | None) -> None:
        with self._txn(origin, own=True, part="state"):
            self._run_results[run_id] = value

    def runs(self) -> list[dict[str, Any]]:
        """Every run request in request order, each with `result` (a dict or None)."""
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        for run_id in self._run_ids.to_py() or []:
            if not isinstance(run_id, str) or run_id in seen:
                continue
            seen.add(run_id)
            request = _loads(self._run_requests.get(run_id))
            if not self._valid_request(run_id, request):
                continue
            result = _loads(self._run_results.get(run_id))
            out.append({**request, "result": result if isinstance(result, dict) else None})
        return out

    @staticmethod
    def _valid_request(run_id: str, request: object) -> bool:
        if not isinstance(request, dict) or request.get("run_id") != run_id:
            return False
        keys = set(request) - {"stdin"}  # (a console run's input, when it has one)
        if keys != {"run_id", "by", "at", "language", "source"}:
            return False
        at = request["at"]
        return (
            all(isinstance(request[k], str) for k in ("by", "language", "source"))
            and isinstance(request.get("stdin", ""), str)
            and isinstance(at, int | float)
            and not isinstance(at, bool)
            and math.isfinite(at)
        )

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> dict[str, Any]:
        """A plain, JSON-serialisable view of everything; equal content gives an equal dict
        (and equal canonical JSON) on any machine."""
        return {
            "code": self.code_text,
            "language": self.language,
            "problem": self.problem,
            "phase": self.phase,
            "timer": self.timer(),
            "public_tests": self.public_tests(),
            "runs": self.runs(),
        }

    def snapshot_json(self) -> str:
        """`snapshot()` as canonical JSON (sorted keys, no spaces) for hashing."""
        return _canonical_json(self.snapshot(), "snapshot")
