"""Core benchmark: a realistic editing trace through the project's document and session store,
side by side with raw pycrdt; the sealed file's size; the time to verify it.

The trace (deterministic, generated here; the public automerge-perf trace cannot be fetched on
these machines) is single-character operations: typing runs at a cursor, cursor jumps and
backspace bursts, with human-like timestamps. ASCII only, so code-point and UTF-8 indices agree
and raw pycrdt needs no index conversion (the project's document still does its own).

(a) `SharedDoc.insert_code/delete_code` (one transaction per keystroke) with a `SessionStore`
    attached, flushing on its own policy (without an event loop: a commit every 4,096 updates,
    synchronous=NORMAL, no fsync; compaction deferred to the seal), then
    sealed (which compacts everything into lzma segments and vacuums the file).
(b) raw pycrdt: the same `Text` operations, one transaction each, no store.
"""

from __future__ import annotations

import gc
import os
import random
import string
import tempfile
import time
from pathlib import Path
from typing import Any

from pycrdt import Doc, Text, create_update_message, handle_sync_message

from assessiq.core import identity as identity_module
from assessiq.core.document import SharedDoc
from assessiq.core.encoding import b64e
from assessiq.core.identity import Identity
from assessiq.core.integrity import EventSigner, make_receipt
from assessiq.core.policy import default_policy_text
from assessiq.core.record import SessionRecord
from assessiq.core.seal import seal
from assessiq.core.store import SessionStore
from assessiq.core.sync import SyncProtocol
from assessiq.core.verify import verify_record
from bench.common import Row, median

AREA = "core"
Op = tuple[float, int, str]  # (time, code-point index, char to insert or "" to delete one)

_TYPED = string.ascii_letters + string.digits + "    ()[]{}:.,=+-*/_'\"#\n" + "e" * 10 + " " * 12


def make_trace(n_ops: int, seed: int = 7) -> list[Op]:
    """A deterministic editing session of `n_ops` single-character operations."""
    rng = random.Random(seed)
    ops: list[Op] = []
    t = 0.0
    length = 0
    cursor = 0
    while len(ops) < n_ops:
        r = rng.random()
        if r < 0.12 and length > 0:  # jump somewhere (click, arrow keys, search)
            cursor = rng.randint(0, length)
            t += rng.uniform(0.8, 6.0)
        elif r < 0.27 and cursor > 0:  # a backspace burst
            for _ in range(min(cursor, rng.randint(1, 8))):
                t += rng.uniform(0.05, 0.12)
                cursor -= 1
                length -= 1
                ops.append((t, cursor, ""))
        else:  # a typing run at the cursor
            for _ in range(rng.randint(3, 40)):
                t += rng.lognormvariate(-2.0, 0.5)  # ~135 ms median between keys
                ops.append((t, cursor, rng.choice(_TYPED)))
                cursor += 1
                length += 1
            if rng.random() < 0.3:
                t += rng.uniform(2.0, 20.0)  # a pause to think
    return ops[:n_ops]


def run_raw(trace: list[Op]) -> tuple[float, bytes, str]:
    doc: Doc[Any] = Doc()
    text = doc.get("code", type=Text)
    t0 = time.perf_counter()
    for _t, index, ch in trace:
        with doc.transaction(origin="host"):
            if ch:
                text.insert(index, ch)
            else:
                del text[index : index + 1]
    elapsed = time.perf_counter() - t0
    return elapsed, doc.get_update(), str(text)


def run_pycrdt_store(trace: list[Op], path: Path) -> float:
    """Breakdown: raw pycrdt with the store attached (no SharedDoc)."""
    store = SessionStore.create(path, {"session": "bench"})
    doc: Doc[Any] = Doc()
    text = doc.get("code", type=Text)
    t0 = time.perf_counter()
    store.attach(doc, local_origin="host")
    for _t, index, ch in trace:
        with doc.transaction(origin="host"):
            if ch:
                text.insert(index, ch)
            else:
                del text[index : index + 1]
    store.flush()
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed


def run_shared_only(trace: list[Op]) -> float:
    """Breakdown: SharedDoc alone (no store)."""
    shared = SharedDoc()
    t0 = time.perf_counter()
    for _, index, ch in trace:
        if ch:
            shared.insert_code(index, ch, origin="host")
        else:
            shared.delete_code(index, 1, origin="host")
    return time.perf_counter() - t0


def candidate_updates(trace: list[Op]) -> list[bytes]:
    """The trace typed on the candidate's side: one update per keystroke, as sent."""
    cand = SharedDoc()
    updates: list[bytes] = []
    cand.observe_updates(lambda update, _origin: updates.append(update))
    for _, index, ch in trace:
        if ch:
            cand.insert_code(index, ch)
        else:
            cand.delete_code(index, 1)
    return updates


def receive_raw(updates: list[bytes]) -> tuple[float, str]:
    """Baseline: pycrdt's own receiving path, `handle_sync_message` (what its `Provider` runs
    for each message), on the same sync messages; no check of who wrote what."""
    doc: Doc[Any] = Doc()
    messages = [create_update_message(update) for update in updates]
    gc.collect()
    t0 = time.perf_counter()
    for message in messages:
        handle_sync_message(message[1:], doc)
    elapsed = time.perf_counter() - t0
    return elapsed, str(doc.get("code", type=Text))


def apply_raw(updates: list[bytes]) -> float:
    """Breakdown: the bare `Doc.apply_update` of each update (no message, no check)."""
    doc: Doc[Any] = Doc()
    gc.collect()
    t0 = time.perf_counter()
    for update in updates:
        doc.apply_update(update)
    return time.perf_counter() - t0


def receive_checked(updates: list[bytes]) -> tuple[float, str]:
    """The host's side: each keystroke's sync message through `SyncProtocol` as the state's
    owner (framing checks, reading the update, the authority check, the apply)."""
    host = SharedDoc()
    protocol = SyncProtocol(host, role="owner", peer_role="candidate")
    messages = [create_update_message(update) for update in updates]
    gc.collect()
    t0 = time.perf_counter()
    for message in messages:
        protocol.receive(message)
    elapsed = time.perf_counter() - t0
    if protocol.dropped:
        raise RuntimeError(f"the authority check refused {protocol.dropped} honest keystrokes")
    return elapsed, host.code_text


def run_project(trace: list[Op], path: Path, host: Identity, device: Identity,
                with_log: bool, trace_clock: bool = False) -> tuple[float, float, str]:
    """(seconds for the edits incl. every flush, seconds to seal, final code).

    `trace_clock`: each update is stamped with the trace's own (human) time instead of the
    wall clock — for the file size, since a benchmark types 100,000 keys in about a second
    and wall-clock times that close together compress to almost nothing."""
    store = SessionStore.create(path, {
        "session": "bench", "host_key": b64e(host.public_key),
        "device_key": b64e(device.public_key), "created": 0.0, "policy": default_policy_text(),
    })
    now = [0.0]
    if trace_clock:
        store.clock = lambda: now[0]
    shared = SharedDoc()
    t0 = time.perf_counter()
    store.attach(shared, local_origin="host")
    for t, index, ch in trace:
        now[0] = t
        if ch:
            shared.insert_code(index, ch, origin="host")
        else:
            shared.delete_code(index, 1, origin="host")
    store.flush()
    elapsed = time.perf_counter() - t0
    # a realistic integrity log for the verify figure: heartbeats every 5 s of the trace
    signer = EventSigner("bench", device)
    end = trace[-1][0]
    k = 0
    while with_log and k * 5.0 <= end:
        env = signer.sign("proctor.heartbeat", {"fps": 15.0}, now=k * 5.0)
        store.append_envelope(env.raw, received_at=k * 5.0)
        store.append_receipt(make_receipt(host, env, now=k * 5.0).raw)
        k += 1
    t1 = time.perf_counter()
    seal(store, host, now=end + 1.0)
    sealed = time.perf_counter() - t1
    code = shared.code_text
    store.close()
    return elapsed, sealed, code


def run(quick: bool) -> list[Row]:
    n_ops = 20_000 if quick else 100_000
    repeats = 1 if quick else 3
    trace = make_trace(n_ops)
    host, device = Identity.generate(), Identity.generate()
    raw_s: list[float] = []
    ours_s: list[float] = []
    seal_s: list[float] = []
    verify_ms: list[float] = []
    wall_sizes: list[float] = []
    raw_size = 0
    events = 0
    updates = candidate_updates(trace)
    recv_raw: list[float] = []
    recv_checked: list[float] = []
    recv_apply: list[float] = []
    for _ in range(max(repeats, 5)):  # interleaved: raw, ours, bare apply, raw, ours...
        elapsed, raw_text = receive_raw(updates)
        recv_raw.append(elapsed)
        elapsed, code = receive_checked(updates)
        recv_checked.append(elapsed)
        recv_apply.append(apply_raw(updates))
        if code != raw_text:
            raise RuntimeError("the checked receiver diverged from raw pycrdt")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            elapsed, update, raw_text = run_raw(trace)
            raw_s.append(elapsed)
            raw_size = len(update)
            path = Path(tmp) / f"s{i}.aiq"
            elapsed, sealed, code = run_project(trace, path, host, device, with_log=False)
            if code != raw_text:
                raise RuntimeError("the project's document diverged from raw pycrdt")
            ours_s.append(elapsed)
            seal_s.append(sealed)
            wall_sizes.append(os.path.getsize(path))
        path = Path(tmp) / "human_timing.aiq"
        run_project(trace, path, host, device, with_log=False, trace_clock=True)
        human_size = os.path.getsize(path)
        store_only = run_pycrdt_store(trace, Path(tmp) / "store_only.aiq")
        shared_only = run_shared_only(trace)
        path = Path(tmp) / "with_log.aiq"
        run_project(trace, path, host, device, with_log=True, trace_clock=True)
        log_size = os.path.getsize(path)
        for _ in range(3):
            identity_module._VERIFIED.clear()  # cold: every signature really verified
            t0 = time.perf_counter()
            verdict = verify_record(SessionRecord.load(path))
            verify_ms.append((time.perf_counter() - t0) * 1000)
            if not verdict.valid:
                raise RuntimeError(f"the sealed bench session did not verify: "
                                   f"{verdict.errors[:3]}")
            events = verdict.events
    n = f"{n_ops:,} ops"
    raw_med = median(raw_s)
    return [
        Row(AREA, f"editing trace ({n}): SharedDoc + SessionStore", median(ours_s), "s",
            baseline=raw_med, baseline_name="raw pycrdt", goal="<= 1.5x",
            note=f"median of {repeats}; one transaction per keystroke; a commit every "
                 f"4,096 updates (no fsync); compaction at the seal"),
        Row(AREA, f"editing trace received through the authority check ({n})",
            median(recv_checked), "s", baseline=median(recv_raw),
            baseline_name="pycrdt handle_sync_message", goal="<= 1.5x",
            note=f"median of {len(recv_raw)}, interleaved; the candidate's keystrokes as "
                 f"sync messages into the host's SyncProtocol (owner): message checks, "
                 f"update read, authority check, apply into the split SharedDoc"),
        Row(AREA, f"  the same against raw pycrdt typing the trace ({n})", median(recv_checked),
            "s", baseline=raw_med, baseline_name="raw pycrdt", goal="<= 1.5x",
            note="the editing trace's own baseline (the row above): one transaction per "
                 "keystroke on a bare Doc"),
        Row(AREA, f"  the same against the bare Doc.apply_update ({n})", median(recv_checked),
            "s", baseline=median(recv_apply), baseline_name="pycrdt apply_update",
            note="no message parsing, no observer: the floor of any receiver"),
        Row(AREA, f"  breakdown: pycrdt Doc + SessionStore ({n})", store_only, "s",
            baseline=raw_med, baseline_name="raw pycrdt", note="one run"),
        Row(AREA, f"  breakdown: SharedDoc alone ({n})", shared_only, "s",
            baseline=raw_med, baseline_name="raw pycrdt", note="one run"),
        Row(AREA, f"sealed session file, document only ({n})", human_size, "bytes",
            baseline=raw_size, baseline_name="raw get_update()", goal="<= 1.2x",
            note="every keystroke kept with its time (the trace's human timing, to 10 ms) "
                 "and origin"),
        Row(AREA, f"  the same, keys stamped with the benchmark's wall clock ({n})",
            median(wall_sizes), "bytes", baseline=raw_size, baseline_name="raw get_update()",
            note="times ~10 µs apart compress to nothing: not a real session's size"),
        Row(AREA, f"sealed session file with {events} heartbeats + receipts ({n})", log_size,
            "bytes", baseline=raw_size, baseline_name="raw get_update()",
            note="a heartbeat every 5 s of the trace's time"),
        Row(AREA, f"seal (compact + vacuum) ({n})", median(seal_s), "s"),
        Row(AREA, f"verify sealed file ({n}, {events} events)", median(verify_ms), "ms",
            note="load + verify_record, median of 3, signature cache cleared; replays every "
                 "update"),
    ]
