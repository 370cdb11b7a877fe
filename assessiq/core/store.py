"""The session store: one SQLite file per session, local-first and crash-safe.

What it holds: every CRDT update with its time (to 10 ms) and origin, one per
transaction, so a replay shows the code as it was typed; every integrity envelope and receipt;
run results; the session's metadata and policy; host-only notes, hidden tests and score; and
finally the seal.

Durability policy (WAL mode):
- Document updates are group-committed: `record_update` buffers, and a commit follows at most
  `flush_interval` (50 ms) later, or at once through `flush()`. An update is *acknowledged* once
  the commit holding it has returned (`durable_seq`). These commits use `synchronous=NORMAL`:
  they survive a crash or kill of the process; after a power cut the newest ones may be missing
  (SQLite stays consistent), and the peer's copy of the document restores them at the next sync.
- A change of a live `SharedDoc`'s state document (the host's: problem, tests, phase, timer,
  runs) is committed inside the transaction that made it, before control returns to the event
  loop that transmits the sync's message: the other side is never told state this file lacks.
- Integrity envelopes, receipts, runs, host-only entries and the seal are the record itself:
  each is committed with `synchronous=FULL` (fsync) before its call returns, which also makes
  every document update committed before it durable against a power cut. An envelope and its
  receipt are one transaction (`append_event`); the seal row and the emptying of `live` too.
- Metadata, refusals and `live` (what only a live session needs: the invite for a resume)
  are committed at once with `synchronous=NORMAL`.
See docs/architecture.md, "Durability policy", for what a kill or a power cut can lose.

Each group commit writes its updates as one *batch* row (uncompressed columns,
`segments.encode_batch`): one SQLite row per commit, not one per keystroke. The `updates`
table holds single rows (record copies write them; older files have them).

Compaction: once more than two segments' worth of updates are hot and the writer has been idle
for a moment (or the hot table passes a high-water mark), a background thread with its own
connection moves the oldest `SEGMENT_SIZE` of them into one compressed segment (`segments.py`)
in a single transaction. Readers always see a consistent snapshot; sealing compacts the rest
and vacuums the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pycrdt import Doc, TransactionEvent

from .document import SharedDoc, apply_update_checked
from .errors import StoreError
from .segments import (
    UpdateRow,
    decode_batch,
    decode_segment,
    encode_batch,
    encode_segment,
    quantize_time,
)

__all__ = ["SEGMENT_SIZE", "SessionStore", "UpdateRow", "decode_segment", "encode_segment"]

SEGMENT_SIZE = 4096
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
MAX_PENDING = 4096
SEALED_SEGMENT_ROWS = 1 << 18  # at the seal, segments are joined up to this many rows
SEALED_PAGE_SIZE = 1024

SCHEMA_BATCHES = """
CREATE TABLE IF NOT EXISTS batches (
    first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, blob BLOB NOT NULL);
"""
SCHEMA_REFUSALS = """
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY, t REAL NOT NULL, channel TEXT NOT NULL, reason TEXT NOT NULL,
    digest TEXT NOT NULL, size INTEGER NOT NULL, count INTEGER NOT NULL);
"""
MAX_REFUSAL_ROWS = 10_000
"""Past this many refusals the last row counts the rest (a flood cannot grow the file)."""
MAX_REASON_CHARS = 300
SCHEMA_LIVE = """
CREATE TABLE IF NOT EXISTS live (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
"""What only a live session needs (the invite with its secret, where its signaling server
listened): not part of the record, emptied in the transaction that stores the seal."""
SCHEMA = SCHEMA_BATCHES + """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    seq INTEGER PRIMARY KEY, t REAL NOT NULL, origin TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL,
    t0 REAL NOT NULL, t1 REAL NOT NULL, blob BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS envelopes (
    id INTEGER PRIMARY KEY, received_at REAL NOT NULL, raw BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (id INTEGER PRIMARY KEY, raw BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, t REAL NOT NULL, request TEXT NOT NULL, result TEXT);
CREATE TABLE IF NOT EXISTS private (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, t REAL NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seal (id INTEGER PRIMARY KEY CHECK (id = 1), raw BLOB NOT NULL);
""" + SCHEMA_REFUSALS


def transaction_origin(doc: Doc[Any], event: TransactionEvent) -> Any:
    """The origin object a transaction was opened with (pycrdt passes only its hash)."""
    origin_hash = event.transaction.origin()  # type: ignore[attr-defined]
    if origin_hash is None:
        return None
    return getattr(doc, "_origins", {}).get(origin_hash, origin_hash)


def _ensure_table(conn: sqlite3.Connection, name: str, schema: str, read_only: bool) -> bool:
    """Whether table `name` is there, creating it from `schema` when the file is writable."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                         (name,)).fetchone() is not None
    if not found and not read_only:
        conn.execute(schema)
        return True
    return found


class SessionStore:
    """A live session file. Create with `create`, reopen with `open`; close when done."""

    def __init__(self, path: Path, conn: sqlite3.Connection, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._db = conn
        self._pending: list[tuple[float, str, bytes]] = []
        # (files written before batches, or before refusals were recorded, have no such
        # table: read it as empty)
        self._batches = _ensure_table(conn, "batches", SCHEMA_BATCHES, read_only)
        self._has_refusals = _ensure_table(conn, "refusals", SCHEMA_REFUSALS, read_only)
        batch_max, batch_rows = conn.execute(
            "SELECT MAX(last_seq), TOTAL(last_seq - first_seq + 1) FROM batches"
        ).fetchone() if self._batches else (None, 0)
        row = conn.execute(
            "SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM updates "
            "UNION ALL SELECT MAX(last_seq) FROM segments)"
        ).fetchone()
        last = max((int(v) for v in (row[0], batch_max) if v is not None), default=-1)
        self.durable_seq: int = last
        self._hot: int = conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0] + \
            int(batch_rows)
        self._hot_lock = threading.Lock()
        self._compactor: ThreadPoolExecutor | None = None
        self._compaction: Future[None] | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self.compact_idle_delay = 2.0
        self.compact_high_water = 64 * SEGMENT_SIZE
        self.flush_interval = 0.05
        # where update times come from (a benchmark or test may replay a recorded timing);
        # set it before `attach`, whose keystroke path takes it once
        self.clock: Callable[[], float] = time.time
        self.remote_origin = "remote"
        self._subscriptions: list[tuple[Doc[Any] | None, Any]] = []
        self._urgent: list[bool] = []  # set while a state transaction commits (`attach`)
        self._closed = False

    # --- opening -------------------------------------------------------------------------
    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_S)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not an AssessIQ session file ({exc})") from exc
        return conn

    @classmethod
    def create(cls, path: Path | str, meta: dict[str, Any]) -> SessionStore:
        """A new session file at `path` (refuses to overwrite), with `meta` written once."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError as exc:
            raise StoreError(f"{path} already exists; not overwriting a session") from exc
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror}") from exc
        os.close(fd)
        conn = cls._connect(path)
        conn.executescript(SCHEMA)
        with contextlib.closing(conn.cursor()) as cur:
            cur.execute("BEGIN")
            cur.execute("INSERT INTO meta VALUES ('schema', ?)", (json.dumps(SCHEMA_VERSION),))
            for key, value in meta.items():
                cur.execute("INSERT INTO meta VALUES (?, ?)", (key, json.dumps(value)))
            cur.execute("COMMIT")
        return cls(path, conn)

    @classmethod
    def open(cls, path: Path | str) -> SessionStore:
        """Reopen an existing session file (after a restart or a crash)."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(f"no session file at {path}")
        conn = cls._connect(path)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{path} is not an AssessIQ session file ({exc})") from exc
        if row is None or json.loads(row[0]) != SCHEMA_VERSION:
            conn.close()
            raise StoreError(f"{path} is not an AssessIQ session file of a known version")
        return cls(path, conn)

    def close(self) -> None:
        if self._closed:
            return
        for doc, sub in self._subscriptions:
            with contextlib.suppress(Exception):
                if doc is None:
                    sub()
                else:
                    doc.unobserve(sub)
        self._subscriptions.clear()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        self.flush()
        self.wait_compaction()
        if self._compactor is not None:
            self._compactor.shutdown(wait=True)
        self._closed = True
        self._db.close()

    def discard(self) -> None:
        """Close and delete the file (and SQLite's side files): for a session that failed to
        start, so that nothing half-made is left under its name."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- metadata ------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # --- what only a live session needs --------------------------------------------------
    def live(self) -> dict[str, Any]:
        """The live-only values (`set_live`); empty once sealed, and for older files."""
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='live'"
                            ).fetchone() is None:
            return {}
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM live")}

    def set_live(self, key: str, value: Any) -> None:
        """Keep `value` while the session is live (the invite, with its secret, for a
        resume): committed at once, never sealed, deleted with the seal."""
        self._commit_pending()
        self._db.execute(SCHEMA_LIVE)
        self._db.execute("INSERT OR REPLACE INTO live VALUES (?, ?)", (key, json.dumps(value)))

    # --- document updates ----------------------------------------------------------------
    def attach(self, doc: Any, *, local_origin: str, remote_origin: str = "remote") -> None:
        """Record every update of `doc`: a `SharedDoc` (preferred) or a plain pycrdt `Doc`.

        Origins: with a SharedDoc, a transaction without an origin is a local edit
        (`local_origin`), one tagged "remote" came from the peer (`remote_origin`), any other
        string is kept. With a plain Doc, which cannot tell, untagged updates are taken as
        the peer's (pycrdt's own sync applies them untagged).
        """
        self.remote_origin = remote_origin
        if hasattr(doc, "observe_updates"):
            pending, clock = self._pending, self.clock

            urgent = self._urgent

            def on_update(update: bytes, origin: str | None) -> None:
                # `record_update`, inlined for the keystroke path (a SharedDoc reports only
                # non-empty `bytes` updates; time.time() is finite, so rounding is enough)
                if self._closed:
                    raise StoreError("the session store is closed")
                pending.append((round(clock() * 100) / 100, local_origin if origin is None
                                else (remote_origin if origin == "remote" else origin), update))
                if urgent:  # a change of the state document: committed before it is sent
                    urgent.clear()
                    self._commit_pending()
                elif self._flush_handle is None or len(pending) >= MAX_PENDING:
                    self._after_record()

            unsubscribe = doc.observe_updates(on_update)
            self._subscriptions.append((None, unsubscribe))
            if getattr(doc, "split", False):
                state = doc.part_doc("state")

                def on_state(event: TransactionEvent) -> None:
                    # pycrdt calls a document's observers in no fixed order: this may run
                    # before or after the SharedDoc's own observer reports the update to
                    # `on_update` and to the sync. After: commit it now. Before: ask
                    # `on_update` to commit it as it arrives. Either way it is committed
                    # inside the transaction, before control returns to the event loop,
                    # which is what transmits the sync's message (aiortc sends from a task).
                    if pending and pending[-1][2] == event.update:
                        self._commit_pending()
                    else:
                        urgent.append(True)

                self._subscriptions.append((state, state.observe(on_state)))
            return
        ydoc: Doc[Any] = doc

        def on_transaction(event: TransactionEvent) -> None:
            origin = transaction_origin(ydoc, event)
            who = origin if isinstance(origin, str) else (
                remote_origin if origin is None else local_origin)
            self.record_update(event.update, origin=who)

        self._subscriptions.append((ydoc, ydoc.observe(on_transaction)))

    def record_update(self, update: bytes, *, origin: str, t: float | None = None) -> int:
        """Buffer one update; returns its sequence number. Durable after the next flush."""
        if self._closed:
            raise StoreError("the session store is closed")
        if len(update) <= 2:  # an empty transaction (no changes): nothing to keep
            return self.durable_seq + len(self._pending)
        when = quantize_time(self.clock() if t is None else t)
        self._pending.append((when, origin, bytes(update)))
        seq = self.durable_seq + len(self._pending)
        self._after_record()
        return seq

    def _after_record(self) -> None:
        """Flush a full buffer at once; otherwise make sure a flush is scheduled."""
        if len(self._pending) >= MAX_PENDING:
            self.flush()
        elif self._flush_handle is None:
            # (the non-raising lookup: this runs on every keystroke, loop or not)
            loop = asyncio.events._get_running_loop()
            if loop is not None:  # without a loop the caller flushes explicitly
                self._flush_handle = loop.call_later(self.flush_interval, self.flush)

    def flush(self) -> int:
        """Commit buffered updates; returns the last durable (acknowledged) update seq.

        Compaction is maintenance and must not compete with typing (in one process, even a
        background lzma thread slows the writer): it waits until the writer has been idle for
        `compact_idle_delay` seconds, then moves one segment at a time; only a hot table past
        `compact_high_water` is compacted at once. Sealing compacts the rest.
        """
        self._commit_pending()
        if self.read_only:
            return self.durable_seq
        with self._hot_lock:
            hot = self._hot
        if hot >= self.compact_high_water:
            self._start_compaction(SEGMENT_SIZE)
        elif hot >= 2 * SEGMENT_SIZE:
            loop = asyncio.events._get_running_loop()
            if loop is not None:
                if self._idle_handle is not None:
                    self._idle_handle.cancel()  # still typing: push maintenance back
                self._idle_handle = loop.call_later(self.compact_idle_delay, self._idle_compact)
        return self.durable_seq

    def _start_compaction(self, keep_hot: int, max_segments: int | None = None) -> bool:
        if self._compaction is not None and not self._compaction.done():
            return False
        if self._compactor is None:
            self._compactor = ThreadPoolExecutor(1, thread_name_prefix="store-compact")
        self._compaction = self._compactor.submit(self._compact, keep_hot, max_segments)
        return True

    def _idle_compact(self) -> None:
        """The writer has been idle: compact one segment, and look again shortly after."""
        self._idle_handle = None
        if self._closed:
            return
        with self._hot_lock:
            hot = self._hot
        if hot < 2 * SEGMENT_SIZE:
            return
        self._start_compaction(SEGMENT_SIZE, max_segments=1)
        loop = asyncio.events._get_running_loop()
        if loop is not None:
            self._idle_handle = loop.call_later(0.25, self._idle_compact)

    def _commit_pending(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._pending or self._closed:
            return
        first = self.durable_seq + 1
        n = len(self._pending)
        times, origins, datas = zip(*self._pending, strict=True)
        self._db.execute("INSERT INTO batches VALUES (?, ?, ?)",
                         (first, first + n - 1, encode_batch(times, origins, datas)))
        self._pending.clear()
        self.durable_seq = first + n - 1
        with self._hot_lock:
            self._hot += n

    def wait_compaction(self) -> None:
        """Wait for a background compaction to finish (re-raising its error, if any)."""
        if self._compaction is not None:
            self._compaction.result()
            self._compaction = None

    def compact(self, *, keep_hot: int = SEGMENT_SIZE) -> None:
        """Compact now, in this thread, until at most `keep_hot` updates are hot
        (`keep_hot=0` compacts everything, as the seal does)."""
        self._commit_pending()
        self.wait_compaction()
        self._compact(keep_hot)

    def _compact(self, keep_hot: int, max_segments: int | None = None) -> None:
        # Its own connection: the compactor must not interleave with the writer's transactions.
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        made = 0
        try:
            while max_segments is None or made < max_segments:
                made += 1
                with self._hot_lock:
                    hot = self._hot
                if hot <= keep_hot or (keep_hot and hot - keep_hot < SEGMENT_SIZE):
                    return
                rows = self._oldest_hot(conn, min(SEGMENT_SIZE, hot - keep_hot))
                try:  # the heavy part: off the writer, while it is idle
                    blob = encode_segment(rows)
                except ValueError as exc:
                    raise StoreError(f"{self.path}: cannot compact: {exc}") from exc
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO segments VALUES (?, ?, ?, ?, ?)",
                             (rows[0].seq, rows[-1].seq, rows[0].t, rows[-1].t, blob))
                conn.execute("DELETE FROM updates WHERE seq <= ?", (rows[-1].seq,))
                if self._batches:
                    conn.execute("DELETE FROM batches WHERE last_seq <= ?", (rows[-1].seq,))
                conn.execute("COMMIT")
                with self._hot_lock:
                    self._hot -= len(rows)
        finally:
            conn.close()

    def hot_count(self) -> int:
        """How many committed updates are not yet compacted into segments (read from the file)."""
        single = self._db.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
        batched = self._db.execute(
            "SELECT TOTAL(last_seq - first_seq + 1) FROM batches").fetchone()[0] \
            if self._batches else 0
        return int(single) + int(batched)

    def _batch_rows(self, batches: list[tuple[int, int, bytes]]) -> list[UpdateRow]:
        rows: list[UpdateRow] = []
        for first, last, blob in batches:
            try:
                decoded = decode_batch(blob, first)
            except ValueError as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
            if decoded[-1].seq != last:
                raise StoreError(f"{self.path}: damaged batch (its rows do not match its range)")
            rows += decoded
        return rows

    def _oldest_hot(self, conn: sqlite3.Connection, n: int) -> list[UpdateRow]:
        """At least the `n` oldest hot updates, ending on a batch boundary (a batch row is
        moved whole)."""
        single = [UpdateRow(*r) for r in conn.execute(
            "SELECT seq, t, origin, data FROM updates ORDER BY seq LIMIT ?", (n,))]
        batches: list[tuple[int, int, bytes]] = []
        if self._batches:
            count = 0
            for first, last, blob in conn.execute(
                    "SELECT first_seq, last_seq, blob FROM batches ORDER BY first_seq"):
                batches.append((first, last, blob))
                count += last - first + 1
                if count >= n:
                    break
        rows = sorted(single + self._batch_rows(batches), key=lambda r: r.seq)
        cut = rows[min(n, len(rows)) - 1].seq
        cut = max([cut] + [last for first, last, _ in batches if first <= cut])
        if single and len(single) == n and single[-1].seq < cut:  # more single rows below cut
            single = [UpdateRow(*r) for r in conn.execute(
                "SELECT seq, t, origin, data FROM updates WHERE seq <= ? ORDER BY seq", (cut,))]
            rows = sorted(single + self._batch_rows(batches), key=lambda r: r.seq)
        return [r for r in rows if r.seq <= cut]

    def updates(self) -> Iterator[UpdateRow]:
        """Every durable update in order (segments first, then the hot rows), read in one
        snapshot so a concurrent compaction can neither hide nor repeat a row."""
        self._db.execute("BEGIN")
        try:
            blobs = self._db.execute(
                "SELECT first_seq, last_seq, blob FROM segments ORDER BY first_seq").fetchall()
            hot = self._db.execute(
                "SELECT seq, t, origin, data FROM updates ORDER BY seq").fetchall()
            batches = self._db.execute(
                "SELECT first_seq, last_seq, blob FROM batches ORDER BY first_seq"
            ).fetchall() if self._batches else []
        finally:
            self._db.execute("COMMIT")
        for first, last, blob in blobs:
            try:
                rows = decode_segment(blob)
            except ValueError as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
            if rows[0].seq != first or rows[-1].seq != last:
                raise StoreError(f"{self.path}: damaged segment (its rows do not match its range)")
            yield from rows
        rows = [UpdateRow(*row) for row in hot] + self._batch_rows(batches)
        if hot and batches:
            rows.sort(key=lambda r: r.seq)
        yield from rows

    def load_into(self, doc: Any) -> int:
        """Apply every stored update to `doc` (a pycrdt Doc or a SharedDoc) before attaching
        the store to it; returns how many."""
        n = 0
        for row in self.updates():
            if isinstance(doc, SharedDoc):
                doc.apply_update(row.data)  # (checked: ValueError if malformed)
            else:
                apply_update_checked(doc, row.data)
            n += 1
        return n

    def state_at(self, t: float) -> Doc[Any]:
        """The document as it was at time `t` (every update recorded at or before `t`)."""
        doc: Doc[Any] = Doc()
        for row in self.updates():
            if row.t > t:
                break
            apply_update_checked(doc, row.data)
        return doc

    # --- integrity log, receipts, runs, private ------------------------------------------
    def _durable(self, sql: str, params: tuple[Any, ...]) -> None:
        """Commit one statement with fsync (see the durability policy above)."""
        self._commit_pending()
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._db.execute(sql, params)
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def append_envelope(self, raw: bytes, *, received_at: float | None = None) -> None:
        self._durable("INSERT INTO envelopes (received_at, raw) VALUES (?, ?)",
                      (time.time() if received_at is None else received_at, bytes(raw)))

    def append_event(self, raw: bytes, receipt: bytes, *, received_at: float) -> None:
        """An accepted integrity envelope and the host's receipt for it, in one transaction
        committed with fsync: the receipt may be sent once this returns (a kill can never
        leave a receipted event unstored, nor a stored event without its receipt)."""
        self._commit_pending()
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO envelopes (received_at, raw) VALUES (?, ?)",
                                 (received_at, bytes(raw)))
                self._db.execute("INSERT INTO receipts (raw) VALUES (?)", (bytes(receipt),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def envelope_rows(self) -> list[tuple[float, bytes]]:
        """Every stored envelope with when it arrived (the host's clock), in arrival order."""
        return [(float(t), bytes(r)) for t, r in
                self._db.execute("SELECT received_at, raw FROM envelopes ORDER BY id")]

    def envelopes(self) -> list[bytes]:
        return [bytes(r) for (r,) in self._db.execute("SELECT raw FROM envelopes ORDER BY id")]

    def append_receipt(self, raw: bytes) -> None:
        self._durable("INSERT INTO receipts (raw) VALUES (?)", (bytes(raw),))

    def receipts(self) -> list[bytes]:
        return [bytes(r) for (r,) in self._db.execute("SELECT raw FROM receipts ORDER BY id")]

    def put_run(self, run_id: str, request: dict[str, Any], result: dict[str, Any] | None,
                *, t: float | None = None) -> None:
        self._durable(
            "INSERT INTO runs VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "request=excluded.request, result=excluded.result",
            (run_id, time.time() if t is None else t, json.dumps(request),
             None if result is None else json.dumps(result)))

    def runs(self) -> list[dict[str, Any]]:
        return [
            {"id": i, "t": t, "request": json.loads(q), "result": None if r is None else
             json.loads(r)}
            for i, t, q, r in self._db.execute("SELECT id, t, request, result FROM runs ORDER BY t")
        ]

    def add_private(self, kind: str, value: Any, *, t: float | None = None) -> None:
        """Host-only data (notes, hidden tests and their results, the score)."""
        self._durable("INSERT INTO private (kind, t, value) VALUES (?, ?, ?)",
                      (kind, time.time() if t is None else t, json.dumps(value)))

    def private(self, kind: str | None = None) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT kind, t, value FROM private ORDER BY id").fetchall()
        return [{"kind": k, "t": t, "value": json.loads(v)} for k, t, v in rows
                if kind is None or k == kind]

    def newest_time(self) -> float | None:
        """The newest time a row of this file says it was written, on this side's own clock:
        an update, an envelope's arrival, a run, a host-only entry, a refusal (None: none
        yet). Read-only; what `core.resume.last_alive` reads after a restart."""
        parts = ["SELECT MAX(t) FROM updates", "SELECT MAX(t1) FROM segments",
                 "SELECT MAX(received_at) FROM envelopes", "SELECT MAX(t) FROM runs",
                 "SELECT MAX(t) FROM private"]
        if self._has_refusals:
            parts.append("SELECT MAX(t) FROM refusals")
        times = [float(t) for (t,) in self._db.execute(" UNION ALL ".join(parts))
                 if t is not None]
        if self._batches:
            last = self._db.execute("SELECT first_seq, last_seq, blob FROM batches "
                                    "ORDER BY first_seq DESC LIMIT 1").fetchall()
            times += [r.t for r in self._batch_rows(last)]
        times += [t for t, _, _ in self._pending]
        return max(times, default=None)

    # --- refusals ------------------------------------------------------------------------
    def append_refusal(self, channel: str, reason: str, raw: bytes = b"", *,
                       t: float | None = None, count: int = 1) -> None:
        """Record that something from the peer was refused: on which channel, why, and the
        SHA-256 and size of what was refused (not its bytes: they may be huge or hostile);
        `count` > 1 for a row that stands for several. Committed at once (not fsynced: a
        flood of refusals must not become a flood of fsyncs). Past `MAX_REFUSAL_ROWS` rows
        the last row counts the rest."""
        when = time.time() if t is None else t
        digest = hashlib.sha256(raw).hexdigest()
        reason = reason[:MAX_REASON_CHARS]
        self._commit_pending()
        rows = self._db.execute("SELECT COUNT(*) FROM refusals").fetchone()[0]
        if rows >= MAX_REFUSAL_ROWS:
            self._db.execute(
                "UPDATE refusals SET count = count + ?, t = ?, channel = 'many', "
                "reason = 'further refusals (not itemised)', digest = '', size = size + ? "
                "WHERE id = (SELECT MAX(id) FROM refusals)", (count, when, len(raw)))
            return
        self._db.execute(
            "INSERT INTO refusals (t, channel, reason, digest, size, count) "
            "VALUES (?, ?, ?, ?, ?, ?)", (when, channel, reason, digest, len(raw), count))

    def refusals(self) -> list[dict[str, Any]]:
        """Every recorded refusal, oldest first: `{t, channel, reason, digest, size, count}`."""
        if not self._has_refusals:
            return []
        return [
            {"t": t, "channel": c, "reason": r, "digest": d, "size": n, "count": k}
            for t, c, r, d, n, k in self._db.execute(
                "SELECT t, channel, reason, digest, size, count FROM refusals ORDER BY id")
        ]

    # --- seal ----------------------------------------------------------------------------
    def put_seal(self, raw: bytes) -> None:
        """Store the seal (see `seal.py`), then compact everything and shrink the file."""
        self._commit_pending()
        has_live = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='live'").fetchone()
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO seal VALUES (1, ?)", (bytes(raw),))
                if has_live:  # the invite's secret is not part of the record
                    self._db.execute("DELETE FROM live")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            raise StoreError("this session is already sealed") from exc
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")
        self.compact(keep_hot=0)
        self._repack()
        # A sealed file is read, not written: small pages waste less (each table holds at
        # least one page); page_size changes only outside WAL, so leave it first (and keep
        # WAL if another connection holds the file: the file is then just a little larger).
        if self._db.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete":
            self._db.execute(f"PRAGMA page_size={SEALED_PAGE_SIZE}")
        self._db.execute("VACUUM")

    def _repack(self) -> None:
        """Join the segments into as few as possible (lzma compresses a long run of updates
        much better than many short ones; the rows stay exactly the same)."""
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            blobs = cur.execute("SELECT blob FROM segments ORDER BY first_seq").fetchall()
            if len(blobs) > 1:
                rows: list[UpdateRow] = []
                for (blob,) in blobs:
                    try:
                        rows += decode_segment(blob)
                    except ValueError as exc:
                        raise StoreError(f"{self.path}: {exc}") from exc
                cur.execute("DELETE FROM segments")
                for i in range(0, len(rows), SEALED_SEGMENT_ROWS):
                    part = rows[i : i + SEALED_SEGMENT_ROWS]
                    try:
                        blob = encode_segment(part)
                    except ValueError as exc:
                        raise StoreError(f"{self.path}: cannot compact: {exc}") from exc
                    cur.execute("INSERT INTO segments VALUES (?, ?, ?, ?, ?)", (
                        part[0].seq, part[-1].seq, part[0].t, part[-1].t, blob))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def seal_raw(self) -> bytes | None:
        row = self._db.execute("SELECT raw FROM seal WHERE id = 1").fetchone()
        return None if row is None else bytes(row[0])
