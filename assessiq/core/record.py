"""A whole session file as plain data: what `verify` checks and what `replay` shows.

Reading never trusts the file: anything that cannot be parsed raises `RecordError` (the file is
unreadable) while content problems are left for `verify` to report (the file was tampered with).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RecordError, StoreError
from .store import SessionStore, UpdateRow

__all__ = ["SessionRecord"]

READONLY_ROLLBACK = 776  # SQLITE_READONLY_ROLLBACK: a hot journal a reader cannot play back


@dataclass
class SessionRecord:
    meta: dict[str, Any]
    updates: list[UpdateRow]
    envelopes: list[tuple[float, bytes]]  # (received_at, raw)
    receipts: list[bytes]
    runs: list[dict[str, Any]]
    private: list[dict[str, Any]]
    seal: bytes | None = None
    refusals: list[dict[str, Any]] = field(default_factory=list)
    """What the host refused from the peer (see `SessionStore.append_refusal`)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_store(cls, store: SessionStore) -> SessionRecord:
        store.flush()
        db = store._db
        return cls(
            meta=store.meta(),
            updates=list(store.updates()),
            envelopes=[(float(t), bytes(r)) for t, r in
                       db.execute("SELECT received_at, raw FROM envelopes ORDER BY id")],
            receipts=store.receipts(),
            runs=store.runs(),
            private=store.private(),
            seal=store.seal_raw(),
            refusals=store.refusals(),
        )

    @classmethod
    def load(cls, path: Path | str) -> SessionRecord:
        """Read a session file; `RecordError` with a one-line reason if it cannot be read."""
        path = Path(path)
        if not path.exists():
            raise RecordError(f"no such file: {path}")
        try:
            # Open read-only so verifying never changes the file under inspection.
            uri = f"file:{path.resolve()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            journal = path.with_name(path.name + "-journal")
            if getattr(exc, "sqlite_errorcode", None) == READONLY_ROLLBACK and journal.exists():
                return cls._load_rolled_back(path, journal)
            raise RecordError(f"{path} is not a readable session file ({exc})") from exc
        try:
            store = SessionStore(path, conn, read_only=True)
            return cls.from_store(store)
        except (sqlite3.DatabaseError, StoreError, ValueError, KeyError, TypeError,
                OverflowError, RecursionError) as exc:
            raise RecordError(f"{path} is not a readable session file ({exc})") from exc
        finally:
            conn.close()

    @classmethod
    def _load_rolled_back(cls, path: Path, journal: Path) -> SessionRecord:
        """A file whose writer died inside a rollback-journal transaction (the seal's
        VACUUM, killed): the journal must be played back before anything can read it, which
        a read-only connection cannot do. Played back on a copy, so that reading still never
        changes the file under inspection (the next app to open it plays it back in place)."""
        with tempfile.TemporaryDirectory(prefix="assessiq-record-") as folder:
            copy = Path(folder) / path.name
            shutil.copyfile(path, copy)
            shutil.copyfile(journal, Path(folder) / journal.name)
            try:
                with contextlib.closing(sqlite3.connect(copy)) as conn:
                    conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as exc:
                raise RecordError(f"{path} is not a readable session file ({exc})") from exc
            if (Path(folder) / journal.name).exists():
                raise RecordError(f"{path} is not a readable session file (its journal "
                                  "could not be played back)")
            try:
                return cls.load(copy)
            except RecordError as exc:  # (named by the file asked for, not the copy)
                raise RecordError(str(exc).replace(str(copy.resolve()), str(path))) from exc

    def write(self, path: Path | str) -> None:
        """Write this record as a new session file (used by tests and exports)."""
        store = SessionStore.create(path, {k: v for k, v in self.meta.items() if k != "schema"})
        try:
            db = store._db
            cur = db.cursor()
            cur.execute("BEGIN")
            # Plain rows, not a segment: a copy must keep every row exactly as it is, even
            # one a tamperer moved off the store's millisecond grid.
            cur.executemany("INSERT INTO updates VALUES (?, ?, ?, ?)",
                            [(u.seq, u.t, u.origin, u.data) for u in self.updates])
            cur.executemany("INSERT INTO envelopes (received_at, raw) VALUES (?, ?)",
                            self.envelopes)
            cur.executemany("INSERT INTO receipts (raw) VALUES (?)", [(r,) for r in self.receipts])
            for run in self.runs:
                cur.execute("INSERT INTO runs VALUES (?, ?, ?, ?)", (
                    run["id"], run["t"], json.dumps(run["request"]),
                    None if run["result"] is None else json.dumps(run["result"])))
            for p in self.private:
                cur.execute("INSERT INTO private (kind, t, value) VALUES (?, ?, ?)",
                            (p["kind"], p["t"], json.dumps(p["value"])))
            cur.executemany(
                "INSERT INTO refusals (t, channel, reason, digest, size, count) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(r["t"], r["channel"], r["reason"], r["digest"], r["size"], r["count"])
                 for r in self.refusals])
            if self.seal is not None:
                cur.execute("INSERT INTO seal VALUES (1, ?)", (self.seal,))
            cur.execute("COMMIT")
        finally:
            store._pending.clear()
            store.close()
