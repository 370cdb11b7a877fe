"""Builders of realistic sealed session records for the core's tests and benchmark.

A built session goes through the real pieces end to end: a pycrdt document with a session
store attached (host edits under the host's origin, candidate edits applied as remote
updates), candidate events signed by a device key and checked by the host's `LogVerifier`,
a receipt per event, a code run, host-only notes, and finally the host's seal.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map, Text

from assessiq.core.encoding import b64e
from assessiq.core.identity import Identity
from assessiq.core.integrity import Envelope, EventSigner, LogVerifier, make_receipt
from assessiq.core.invite import make_invite
from assessiq.core.policy import default_policy_text
from assessiq.core.record import SessionRecord
from assessiq.core.seal import seal
from assessiq.core.store import SessionStore

__all__ = ["BuiltSession", "build_session", "event_plan", "piston_result"]

HEARTBEAT_EVERY_S = 5.0


@dataclass
class BuiltSession:
    """A sealed session on disk and what made it."""

    path: Path
    record: SessionRecord
    host: Identity
    device: Identity
    session: str
    envelopes: list[Envelope]
    code: str
    alt_updates: list[bytes] = field(default_factory=list)  # other valid updates of this doc


def piston_result(stdout: str) -> dict[str, Any]:
    """A run result in Piston's v2 `execute` shape."""
    return {
        "language": "python", "version": "3.11.0",
        "run": {"stdout": stdout, "stderr": "", "output": stdout, "code": 0, "signal": None,
                "status": None, "wall_time": 41, "memory": 9_216_000},
    }


def event_plan(n_heartbeats: int) -> list[tuple[float, str, dict[str, Any]]]:
    """(offset seconds, kind, data): heartbeats every 5 s with a few findings between them.
    A condition's `start`/`end` are offsets too (the builder adds the session's start), and
    its end carries both, as the candidate's app sends them."""
    plan: list[tuple[float, str, dict[str, Any]]] = [
        (i * HEARTBEAT_EVERY_S, "proctor.heartbeat",
         {"fps": 15.0, "analysed": 75, "dropped": 0, "cpu": 0.09})
        for i in range(n_heartbeats)
    ]
    plan += [
        (11.0, "tab.hidden", {"phase": "start", "start": 9.0, "confidence": 1.0}),
        (19.5, "tab.hidden", {"phase": "end", "start": 9.0, "end": 19.5, "duration": 10.5,
                              "confidence": 1.0}),
        (23.0, "paste", {"phase": "instant", "chars": 42}),
    ]
    if n_heartbeats > 6:
        plan.append((31.0, "gaze.away", {"phase": "start", "start": 29.0, "direction": "left"}))
        plan.append((37.0, "gaze.away", {"phase": "end", "start": 29.0, "end": 37.0,
                                         "duration": 8.0, "direction": "left"}))
    plan.sort(key=lambda p: p[0])
    return plan


def _utf8(s: str, index: int) -> int:
    """pycrdt `Text` indices are UTF-8 byte offsets; `index` is a code point offset in `s`."""
    return len(s[:index].encode("utf-8"))


def _edit(rng: random.Random, text: Text, origin: str | None, doc: Doc[Any]) -> None:
    """One human-ish edit: type a short run at a cursor, or delete a few characters."""
    s = str(text)
    n = len(s)
    if n > 8 and rng.random() < 0.2:
        at = rng.randrange(n - 3)
        end = at + rng.randint(1, 3)
        with doc.transaction(origin=origin):
            del text[_utf8(s, at) : _utf8(s, end)]
        return
    at = n if rng.random() < 0.7 else rng.randrange(n + 1)
    chunk = rng.choice(["x", "def f", "(a)", ":\n", "    ", "return ", "é", "数", "🙂", "1"])
    with doc.transaction(origin=origin):
        text.insert(_utf8(s, at), chunk)


def build_session(
    path: Path, *, host: Identity | None = None, device: Identity | None = None,
    n_updates: int = 40, n_heartbeats: int = 10, seed: int = 0, sealed: bool = True,
) -> BuiltSession:
    """Create, fill and (by default) seal a session file at `path`; return it re-read."""
    rng = random.Random(seed)
    host = host or Identity.generate()
    device = device or Identity.generate()
    invite = make_invite(host, lan=True, label=f"candidate {seed}")
    created = time.time() - 300.0
    store = SessionStore.create(path, {
        "session": invite.room, "host_key": b64e(host.public_key),
        "device_key": b64e(device.public_key), "created": created,
        "policy": default_policy_text(), "invite": invite.id, "role": "host",
    })
    # The host's document, recorded by the store; the candidate's replica feeds it updates.
    doc: Doc[Any] = Doc()
    code = doc.get("code", type=Text)
    state = doc.get("state", type=Map)
    store.attach(doc, local_origin="host")
    peer: Doc[Any] = Doc()
    peer_code = peer.get("code", type=Text)

    # Each side's updates are queued and delivered after the transaction (as a channel would).
    to_host: list[bytes] = []
    to_peer: list[bytes] = []
    sub_peer = peer.observe(lambda e: to_host.append(e.update))
    with doc.transaction(origin="host"):
        state["language"] = "python"
        state["phase"] = "coding"
    peer.apply_update(doc.get_update())
    to_host.clear()
    sub_host = doc.observe(lambda e: to_peer.append(e.update))
    for i in range(n_updates - 1):
        if i % 3 == 2:
            _edit(rng, code, "host", doc)
        else:
            _edit(rng, peer_code, None, peer)
        while to_host or to_peer:
            if to_host:
                doc.apply_update(to_host.pop(0))
            if to_peer:
                peer.apply_update(to_peer.pop(0))
    peer.unobserve(sub_peer)
    doc.unobserve(sub_host)
    assert str(peer_code) == str(code)

    # Other valid updates of the same document, made on a fork (for "edit history" tamper).
    fork: Doc[Any] = Doc()
    fork.apply_update(doc.get_update())
    fork_code = fork.get("code", type=Text)
    alt_updates: list[bytes] = []
    sub_fork = fork.observe(lambda e: alt_updates.append(e.update))
    for _ in range(6):
        _edit(rng, fork_code, "host", fork)
    fork.unobserve(sub_fork)

    signer = EventSigner(invite.room, device)
    verifier = LogVerifier(invite.room, device.public_key)
    envelopes = []
    for offset, kind, data in event_plan(n_heartbeats):
        data = {k: created + v if k in ("start", "end") else v for k, v in data.items()}
        severity = "info" if kind.endswith("heartbeat") else "warn"
        env = signer.sign(kind, data, severity=severity, now=created + offset)
        accepted, new = verifier.accept(env.encode())
        assert new
        store.append_envelope(env.encode(), received_at=created + offset + 0.04)
        store.append_receipt(make_receipt(host, accepted, now=created + offset + 0.05).encode())
        envelopes.append(env)
    store.put_run("run-1", {"language": "python", "version": "3.11", "tests": "public"},
                  piston_result("ok 3/3\n"), t=created + 25.0)
    store.add_private("note", {"text": f"clear reasoning, seed {seed}"}, t=created + 30.0)
    store.add_private("hidden_tests", {"passed": 4, "total": 5}, t=created + 40.0)
    text = str(code)
    if sealed:
        end = envelopes[-1].t + 1.0
        seal(store, host, now=end)
    store.close()
    return BuiltSession(
        path=path, record=SessionRecord.load(path), host=host, device=device,
        session=invite.room, envelopes=envelopes, code=text, alt_updates=alt_updates,
    )


def capture_update(doc: Doc[Any], write: Any) -> bytes:
    """The update that `write()` makes in `doc` as one transaction (the empty update if it
    changes nothing) — what a modified app would put on the wire."""
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    with doc.transaction():
        write()
    doc.unobserve(sub)
    return updates[0] if updates else b"\x00\x00"
