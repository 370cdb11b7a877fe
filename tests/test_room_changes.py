"""The pages' change events (`assessiq.room.changes`) and the document's state observer that
drives them: coalesced bursts, topics, unsubscribing, throttling, other threads; no NiceGUI."""

from __future__ import annotations

import asyncio
import threading
import time

from assessiq.core.document import SharedDoc
from assessiq.room.changes import Changes
from tests.peer_helpers import eventually


async def _turn() -> None:
    """Let the loop run what `emit` scheduled (its next iteration, and one more)."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_burst_of_emits_is_one_call_per_listener() -> None:
    changes = Changes()
    calls: list[str] = []
    changes.on("code", lambda: calls.append("code"))
    changes.on(("runs", "phase"), lambda: calls.append("runs|phase"))
    changes.on("notes", lambda: calls.append("notes"))
    for _ in range(5000):  # a keystroke storm within one loop iteration
        changes.emit("code")
    changes.emit("runs")
    changes.emit("phase")
    assert calls == []  # nothing runs inside emit (it may be inside a pycrdt commit)
    await _turn()
    assert sorted(calls) == ["code", "runs|phase"]  # once each; "notes" did not change
    assert changes.emitted["code"] == 5000 and changes.delivered["code"] == 1
    changes.emit("notes")
    await _turn()
    assert calls[-1] == "notes" and len(calls) == 3


async def test_unsubscribe_and_a_failing_listener() -> None:
    changes = Changes()
    calls: list[int] = []

    def broken() -> None:
        raise RuntimeError("a view that fails")

    changes.on("runs", broken)
    off = changes.on("runs", lambda: calls.append(1))
    assert changes.listeners == 2
    changes.emit("runs")
    await _turn()
    assert calls == [1]  # the broken one did not stop the other
    off()
    off()  # twice is fine
    assert changes.listeners == 1
    changes.emit("runs")
    await _turn()
    assert calls == [1]


async def test_throttled_listener_gets_a_trailing_call() -> None:
    changes = Changes()
    calls: list[tuple[float, int]] = []  # (when, how many emits had been made by then)
    emitted = [0]
    changes.on("code", lambda: calls.append((time.monotonic(), emitted[0])),
               at_most_every=0.2)
    for _ in range(10):  # ten separate bursts, one loop turn apart
        changes.emit("code")
        emitted[0] += 1
        await _turn()
    await eventually(lambda: len(calls) >= 2, timeout=10)
    await asyncio.sleep(0.3)  # (nothing more is emitted: nothing more may come)
    assert len(calls) == 2  # the first at once, then one trailing call for the rest
    assert calls[0][1] == 1  # at once: before the second burst
    assert calls[1][0] - calls[0][0] >= 0.19 and calls[1][1] == 10


async def test_async_listener_and_emit_from_another_thread() -> None:
    changes = Changes()
    seen = asyncio.Event()

    async def listener() -> None:
        await asyncio.sleep(0)
        seen.set()

    changes.on("camera", listener)
    worker = threading.Thread(target=changes.emit, args=("camera",))
    worker.start()
    worker.join()
    await asyncio.wait_for(seen.wait(), 2)


def test_without_a_loop_nothing_runs_until_flush() -> None:
    changes = Changes()
    calls: list[int] = []
    changes.on("phase", lambda: calls.append(1))
    changes.emit("phase")
    changes.emit("phase")
    assert calls == []
    changes.flush()
    assert calls == [1]
    changes.flush()
    assert calls == [1]


async def test_document_state_changes_are_named_local_and_remote() -> None:
    host, cand = SharedDoc(), SharedDoc()
    named: list[frozenset[str]] = []
    off = cand.observe_state(named.append)
    changes = Changes()
    cand.observe_state(lambda names: changes.emit(*names))
    redraws: list[str] = []
    changes.on("runs", lambda: redraws.append("runs"))
    changes.on("phase", lambda: redraws.append(f"phase {cand.phase}"))  # reads after commit

    def sync() -> None:
        cand.apply_update(host.get_update(cand.get_state()))

    with host.transaction("host"):
        host.set_phase("interview", origin="host")
        host.start_timer(60, time.time(), origin="host")
    sync()
    assert named == [frozenset({"phase", "timer"})]  # one transaction, both keys
    host.request_run("r1", by="candidate", at=time.time(), language="python", source="x")
    host.set_run_result("r1", {"run": {"stdout": "1\n"}})
    sync()
    assert named[-1] == frozenset({"runs"})
    cand.set_language("go", origin="candidate")  # a local change too
    assert named[-1] == frozenset({"language"})
    host.insert_code(0, "print(1)", origin="host")
    sync()
    assert named[-1] == frozenset({"language"})  # code is not state
    await _turn()
    assert sorted(redraws) == ["phase interview", "runs"]
    off()
    off()
    host.set_phase("wrap-up", origin="host")
    sync()
    assert named[-1] == frozenset({"language"})
