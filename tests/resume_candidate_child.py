"""The candidate's app as a child process for the resume tests (no tests here).

    python tests/resume_candidate_child.py MODE INVITE_FILE SESSION_PATH [FORGERY]

MODE:
- `join`: join with the invite (its session file at SESSION_PATH), print `READY`, then type
  one token `c0001 ` after another at the end of the code (one every 20 ms) and sign a
  `session.note` every 8 tokens, until killed. After each token it prints `TYPED n`.
- `resume`: `Candidate.resume` from SESSION_PATH, print `RESUMED <json>` (its code, how long it
  was away, its outbox), type 5 tokens `r0001 ` and sign one note, wait until the host has
  receipted every event, print `SYNCED <json>` (code, events, receipts), then stay until the
  host ends the session (prints `ENDED`) and exit 0.
- `forge`: a modified app: resume, but with the chain position forged (FORGERY: `skip` jumps a
  sequence number, `reuse` signs the last sequence number again with other content, `prev`
  gives a wrong previous hash) for its `session.resumed` and the two notes after it; print
  `FORGED`, then stay until killed.
- `other`: another machine: join with a NEW device key and the same invite, print the outcome
  (`JOINED` or `REFUSED <reason>`) and, when joined, type `o0001 ` and sign a note, print
  `SYNCED <json>`, and stay until the host ends (`ENDED`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from assessiq.core.errors import AssessIQError
from assessiq.core.integrity import genesis_hash
from assessiq.peer import Candidate
from assessiq.peer.config import PeerConfig
from assessiq.peer.connection import restrict_host_addresses

CONFIG = PeerConfig(heartbeat_interval=0.5, heartbeat_timeout=3.0, handshake_timeout=3.0,
                    connect_timeout=10.0, signaling_ping_interval=2.0,
                    signaling_ping_timeout=2.0)


def say(line: str) -> None:
    print(line, flush=True)


def state(cand: Candidate) -> dict[str, Any]:
    return {"code": cand.doc.code_text, "events": len(cand.log), "receipts": len(cand.receipts),
            "outbox": sorted(cand.outbox), "away_s": cand.away_s}


async def type_tokens(cand: Candidate, prefix: str, n: int | None, every: int = 8) -> None:
    i = 0
    while n is None or i < n:
        i += 1
        cand.doc.insert_code(len(cand.doc.code_text), f"{prefix}{i:04d} ")
        if i % every == 0:
            await cand.send_event("session.note", {"phase": "instant", "text": f"{prefix}{i}"})
        say(f"TYPED {i}")
        await asyncio.sleep(0.02)


async def synced(cand: Candidate) -> None:
    while cand.outbox or not cand.is_connected:
        await asyncio.sleep(0.05)
    say("SYNCED " + json.dumps(state(cand)))


async def until_ended(cand: Candidate) -> None:
    await cand.ended.wait()
    say("ENDED")
    await cand.close()


def forge(cand: Candidate, how: str) -> None:
    """Move the signer to a forged chain position (the modified app's doing)."""
    events = cand.log
    last = events[-1]
    if how == "skip":
        cand.signer.next_seq = last.seq + 2
    elif how == "reuse":
        cand.signer.next_seq = last.seq
        cand.signer.prev = events[-2].hash if len(events) > 1 else genesis_hash(last.session)
    elif how == "prev":
        cand.signer.prev = "0" * 64
    else:
        raise SystemExit(f"unknown forgery {how}")


async def main(mode: str, invite_file: str, session_path: str, extra: str = "") -> int:
    restrict_host_addresses(["127.0.0.1"])
    invite = Path(invite_file).read_text().strip()
    if mode == "join":
        cand = await Candidate.join(invite, config=CONFIG, session_path=session_path,
                                    name="Resumer")
        say("READY")
        await type_tokens(cand, "c", None)
        return 0
    if mode == "resume":
        cand = await Candidate.resume(invite, config=CONFIG, session_path=session_path)
        say("RESUMED " + json.dumps(state(cand)))
        await type_tokens(cand, "r", 5, every=5)
        await synced(cand)
        await until_ended(cand)
        return 0
    if mode == "forge":
        original = Candidate._restore

        def forged_restore(self: Candidate, store: Any) -> None:
            original(self, store)
            forge(self, extra)

        Candidate._restore = forged_restore  # type: ignore[method-assign]
        cand = await Candidate.resume(invite, config=CONFIG, session_path=session_path)
        for i in range(2):
            await cand.send_event("session.note", {"phase": "instant", "text": f"forged {i}"})
        say("FORGED " + json.dumps(state(cand)))
        await asyncio.Event().wait()
        return 0
    if mode == "other":
        try:
            cand = await Candidate.join(invite, config=CONFIG, session_path=session_path,
                                        name="Other machine", timeout=float(extra or 30))
        except AssessIQError as exc:
            say(f"REFUSED {exc}")
            return 3
        say("JOINED")
        await type_tokens(cand, "o", 1, every=1)
        await synced(cand)
        await until_ended(cand)
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:])))
