"""Child process for the crash test: types into a session store until it is killed.

Usage: python core_crash_writer.py PATH [PER_FLUSH] [doc|shared] [HIGH_WATER]. `shared` types
through `SharedDoc` (the app's path: the store's recorder inlined in its observer) instead of a
plain pycrdt `Doc`; HIGH_WATER sets the store's compaction high-water mark (without an event
loop, the only thing that starts a compaction while typing). After every `flush()` it prints
one line `ACK <durable_seq> <utf8 length of the code> <sha256 of the code> <segments committed>`
and flushes stdout, so the parent knows exactly what the store had acknowledged when it sends
SIGKILL.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map, Text

from assessiq.core.document import SharedDoc
from assessiq.core.store import SessionStore

STREAM = "def solve(xs):\n    return sorted(set(xs))  # é数🙂\n"


def main() -> None:
    path = Path(sys.argv[1])
    per_flush = int(sys.argv[2]) if len(sys.argv) > 2 else 17
    shared = SharedDoc() if len(sys.argv) > 3 and sys.argv[3] == "shared" else None
    store = SessionStore.create(path, {"session": "crash", "created": 0.0})
    if len(sys.argv) > 4:
        store.compact_high_water = int(sys.argv[4])
    doc: Doc[Any] = shared.doc if shared is not None else Doc()
    code = doc.get("code", type=Text)
    state = doc.get("state", type=Map)
    store.attach(shared if shared is not None else doc, local_origin="host")
    i = 0
    while True:  # until SIGKILL (or a hard stop so a lost parent never leaves it running)
        if shared is not None:
            shared.insert_code(len(shared.code_text), STREAM[i % len(STREAM)])
        else:
            with doc.transaction(origin="host"):
                code += STREAM[i % len(STREAM)]
        if i % 50 == 0:
            if shared is not None:
                shared.language = "python" if i % 100 else "javascript"
            else:
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
