"""Crash test: a child process types into a session store and is SIGKILLed mid-stream.

Reopening must give back every update the store had acknowledged (flush returned and the
child printed the ack) — the exact acknowledged text replays from the stored prefix, and the
whole document is at least that — and SQLite must find the file intact.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from assessiq.core.store import SEGMENT_SIZE, SessionStore

WRITER = Path(__file__).with_name("core_crash_writer.py")


def _run_and_kill(path: Path, acks_before_kill: int, per_flush: int, delay_s: float,
                  min_segments: int = 0, mode: str = "doc") -> tuple[int, int, str]:
    """Start the writer, read acks, SIGKILL it after `acks_before_kill` acks and once it
    reports `min_segments` compacted segments (+ `delay_s`).
    Returns the last ack read: (durable_seq, text length, text sha256)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # a low compaction high-water mark, so a segment is committed within a few thousand keys
    proc = subprocess.Popen([sys.executable, str(WRITER), str(path), str(per_flush), mode,
                             str(3 * SEGMENT_SIZE)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    last = (-1, 0, hashlib.sha256(b"").hexdigest())
    try:
        assert proc.stdout is not None
        acks, segments = 0, 0
        while acks < acks_before_kill or segments < min_segments:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"writer died early: {proc.stderr.read() if proc.stderr else ''}")
            tag, seq, length, digest, segs = line.split()
            assert tag == "ACK"
            last = (int(seq), int(length), digest)
            acks, segments = acks + 1, int(segs)
        if delay_s:
            time.sleep(delay_s)  # let it get into the middle of more writes
        assert proc.poll() is None, "the writer must still be running when killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # acks printed before the kill landed count too: the store had made them durable
        assert proc.stdout is not None
        for line in proc.stdout.read().splitlines():
            tag, seq, length, digest, _segs = line.split()
            last = (int(seq), int(length), digest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return last


@pytest.mark.parametrize("acks,per_flush,delay_s,min_segments,mode", [
    (1, 1, 0.0, 0, "doc"),        # right after the first commit
    (7, 13, 0.003, 0, "doc"),     # a few ms into further writes
    (40, 17, 0.0, 0, "doc"),      # killed while typing on
    (300, 29, 0.001, 1, "doc"),   # a segment committed, the next compaction may be running
    (25, 300, 0.0, 0, "doc"),     # big group commits
    (40, 17, 0.002, 0, "shared"),  # through SharedDoc, the app's path
    (60, 250, 0.001, 1, "shared"),  # the same with a segment committed
])
def test_sigkill_loses_nothing_acknowledged(tmp_path: Path, acks: int, per_flush: int,
                                           delay_s: float, min_segments: int,
                                           mode: str) -> None:
    path = tmp_path / "crash.aiq"
    acked_seq, acked_len, acked_sha = _run_and_kill(path, acks, per_flush, delay_s,
                                                    min_segments, mode)
    assert acked_seq >= 0

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0] >= min_segments
    conn.close()

    store = SessionStore.open(path)
    assert store.durable_seq >= acked_seq
    rows = list(store.updates())
    assert [r.seq for r in rows] == list(range(len(rows)))
    # replaying exactly the acknowledged updates gives exactly the acknowledged text
    acked_doc: Doc[Any] = Doc()
    for row in rows[: acked_seq + 1]:
        acked_doc.apply_update(row.data)
    acked_text = str(acked_doc.get("code", type=Text)).encode("utf-8")
    assert len(acked_text) == acked_len
    assert hashlib.sha256(acked_text).hexdigest() == acked_sha
    # the whole reopened document holds at least all of that
    full: Doc[Any] = Doc()
    store.load_into(full)
    text = str(full.get("code", type=Text)).encode("utf-8")
    assert len(text) >= acked_len and text.startswith(acked_text)
    # and the store takes new writes after the crash
    store.attach(full, local_origin="host")
    with full.transaction(origin="host"):
        full.get("code", type=Text).insert(0, "after crash\n")
    assert store.flush() == len(rows)
    store.close()
