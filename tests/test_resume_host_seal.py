"""A kill during the seal (issue 15): the session file is then either unsealed and resumable,
or sealed and valid — never broken. A child process seals a copy of an unsealed host file and
is SIGKILLed at a chosen step (before the seal row, after it, after compaction, inside VACUUM)
or at a random moment of the seal."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from assessiq.core.document import SharedDoc
from assessiq.core.encoding import b64e
from assessiq.core.identity import HOST_KEY_FILE, load_or_create_host_identity
from assessiq.core.invite import make_invite
from assessiq.core.policy import Policy
from assessiq.core.record import SessionRecord
from assessiq.core.seal import seal
from assessiq.core.store import SessionStore
from assessiq.core.verify import verify_record
from assessiq.peer.host import check_resumable

KEYS = 12_000  # enough for three segments and a VACUUM that takes a few milliseconds

CHILD = r"""
import os, signal, sys, threading, time
from pathlib import Path
from assessiq.core import store as store_mod
from assessiq.core.identity import load_or_create_host_identity
from assessiq.core.seal import seal
from assessiq.core.store import SessionStore

path, key, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
identity = load_or_create_host_identity(key)

def die(*_a, **_k):
    os.kill(os.getpid(), signal.SIGKILL)

Store = store_mod.SessionStore
if point == "before_row":
    Store.put_seal = die
elif point == "after_row":
    Store.compact = die
elif point == "after_compact":
    Store._repack = die
elif point == "in_vacuum":
    real = Store._repack
    def repack(self):
        real(self)
        execute = self._db.execute
        class Db:
            def __getattr__(self, name):
                return getattr(db, name)
            def execute(self, sql, *args):
                if sql == "VACUUM":
                    threading.Timer(0.002, die).start()
                return execute(sql, *args)
        db = self._db
        self._db = Db()
    Store._repack = repack
else:  # a random moment: point is the delay in seconds
    threading.Timer(float(point), die).start()
store = SessionStore.open(path)
seal(store, identity)
store.close()
print("SEALED", flush=True)
time.sleep(5)  # a random kill may still come: the file is what it is
"""


def _make_unsealed(folder: Path) -> tuple[Path, Path]:
    key = folder / HOST_KEY_FILE
    identity = load_or_create_host_identity(key)
    invite = make_invite(identity, signaling="ws://127.0.0.1:9")
    path = folder / "base.aiq"
    store = SessionStore.create(path, {
        "session": invite.room, "host_key": b64e(identity.public_key), "invite": invite.id,
        "created": time.time(), "label": "seal", "role": "host",
        "policy": Policy.default().text})
    store.set_live("invite", invite.encode())
    doc = SharedDoc()
    store.attach(doc, local_origin="host")
    rng = random.Random(7)
    for i in range(KEYS):
        doc.insert_code(rng.randint(0, len(doc.code_text)), "abcdefgh"[i % 8])
        if i % 500 == 0:
            store.flush()
    doc.set_phase("interview", origin="host")
    store.add_private("note", {"text": "a note"})
    store.close()
    return path, key


@pytest.fixture(scope="module")
def unsealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _make_unsealed(tmp_path_factory.mktemp("seal"))


async def _kill_at(base: Path, key: Path, folder: Path, point: str) -> Path:
    path = folder / f"{point}.aiq"
    shutil.copy(base, path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), str(key), point,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == -9, (point, proc.returncode, await proc.stderr.read())
    return path


def _whole(path: Path, key: Path) -> str:
    """"sealed" or "unsealed"; fails unless the file is one or the other, whole."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    identity = load_or_create_host_identity(key)
    record = SessionRecord.load(path)
    assert len(record.updates) >= KEYS
    if record.seal is not None:
        verdict = verify_record(record)
        assert verdict.valid, verdict.errors
        return "sealed"
    with SessionStore.open(path) as store:
        check_resumable(store, identity)  # raises when it cannot be resumed
        assert store.live()["invite"]
        seal(store, identity)  # and it can still be sealed, validly
    verdict = verify_record(SessionRecord.load(path))
    assert verdict.valid, verdict.errors
    return "unsealed"


async def test_a_kill_during_the_seal_leaves_an_unsealed_or_a_sealed_file_never_a_broken_one(
        unsealed: tuple[Path, Path], tmp_path: Path):
    base, key = unsealed
    rng = random.Random()
    points = ["before_row", "after_row", "after_compact", "in_vacuum"] + [
        f"{rng.uniform(0.25, 0.7):.3f}" for _ in range(4)]
    paths = await asyncio.gather(*(_kill_at(base, key, tmp_path, p) for p in points))
    outcomes = {point: _whole(path, key) for point, path in zip(points, paths, strict=True)}
    assert outcomes["before_row"] == "unsealed"
    assert outcomes["after_row"] == outcomes["after_compact"] == "sealed"
    assert outcomes["in_vacuum"] == "sealed"
    # the invite's secret left with the seal row
    with contextlib.closing(sqlite3.connect(paths[1])) as db:
        assert db.execute("SELECT COUNT(*) FROM live").fetchone()[0] == 0
