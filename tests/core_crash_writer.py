"""Child process for the crash test: types into a session store until it is killed.

Usage: python core_crash_writer.py PATH [PER_FLUSH]. After every `flush()` it prints one line
`ACK <durable_seq> <utf8 length of the code> <sha256 of the code> <segments committed>` and
flushes stdout, so the
parent knows exactly what the store had acknowledged when it sends SIGKILL.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map, Text

from assessiq.core.store import SessionStore

STREAM = "def solve(xs):\n    return sorted(set(xs))  # é数🙂\n"


def main() -> None:
    path = Path(sys.argv[1])
    per_flush = int(sys.argv[2]) if len(sys.argv) > 2 else 17
    store = SessionStore.create(path, {"session": "crash", "created": 0.0})
    doc: Doc[Any] = Doc()
    code = doc.get("code", type=Text)
    state = doc.get("state", type=Map)
    store.attach(doc, local_origin="host")
    i = 0
    while True:  # until SIGKILL (or a hard stop so a lost parent never leaves it running)
        with doc.transaction(origin="host"):
            code += STREAM[i % len(STREAM)]
        if i % 50 == 0:
            with doc.transaction(origin="host"):
                state["typed"] = i
        i += 1
        if i % per_flush == 0:
            seq = store.flush()
            text = str(code).encode("utf-8")
            segments = store._db.execute("SELECT COUNT(*) FROM segments").fetchone()[0]
            print(f"ACK {seq} {len(text)} {hashlib.sha256(text).hexdigest()} {segments}",
                  flush=True)
        if i > 2_000_000:
            return


if __name__ == "__main__":
    main()
