"""The candidate's app dies and comes back (issue 15): real processes over real data channels.

The interviewer's app runs in this process (a real `Host` behind the real signaling server on
127.0.0.1); the candidate's app is a child process (`resume_candidate_child.py`) that is
SIGKILLed mid-typing and started again with the same invite and session file. Both documents
must converge with every acknowledged edit from both sides, the integrity chain must go on
with no gap (the host's verifier accepts the resumed events), and the sealed record must
verify and show the restart. A modified app that resumes with a forged chain position is
refused by the host's verifier, each forged event recorded as a refusal, and the honest
session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from assessiq.core.admission import admissions
from assessiq.core.document import SharedDoc
from assessiq.core.identity import Identity
from assessiq.core.record import SessionRecord
from assessiq.core.resume import restarts
from assessiq.core.verify import verify_record
from assessiq.peer import Host
from assessiq.peer.candidate import Resumable
from tests.peer_helpers import FAST, eventually, signaling_server

CHILD = Path(__file__).with_name("resume_candidate_child.py")
TOKEN = re.compile(r"\b([chro])(\d{4})\b")


class Child:
    """One candidate app process; its stdout lines are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, *args: str, data_dir: Path) -> Child:
        env = {**os.environ, "ASSESSIQ_DATA_DIR": str(data_dir),
               "PYTHONPATH": str(CHILD.parent.parent)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), *args, stdout=asyncio.subprocess.PIPE, env=env)
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode().rstrip("\n"))
            self._new.set()

    async def expect(self, prefix: str, timeout: float = 20.0) -> str:
        """The rest of the first line starting with `prefix`."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
            if self._reader.done() and not self._new.is_set():
                raise AssertionError(f"the child ended without {prefix!r}: {self.lines[-5:]}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {prefix!r} from the child: {self.lines[-5:]}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), min(remaining, 0.5))

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        await self._reader

    async def exit_code(self, timeout: float = 15.0) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return code


@contextlib.asynccontextmanager
async def hosted(tmp_path: Path) -> AsyncIterator[tuple[Host, Path]]:
    """A real signaling server and the interviewer's app; yields it and the invite file."""
    async with signaling_server() as url:
        host = await Host.start(signaling=url, config=FAST, identity=Identity.generate(),
                                session_path=tmp_path / "host.aiq", runs=False)
        invite = tmp_path / "invite.txt"
        invite.write_text(host.invite.encode())
        try:
            yield host, invite
        finally:
            await host.close()


def tokens(text: str, kind: str | None = None) -> list[str]:
    return [m.group(0) for m in TOKEN.finditer(text) if kind is None or m.group(1) == kind]


def stored_code(path: Path) -> str:
    """The code as a session file holds it (read-only)."""
    record = SessionRecord.load(path)
    doc = SharedDoc()
    for row in record.updates:
        doc.apply_update(row.data)
    return doc.code_text


async def host_types(host: Host, stop: asyncio.Event) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        host.doc.insert_code(0, f"h{i:04d} ")
        await asyncio.sleep(0.03)


def chain_is_whole(host: Host) -> None:
    seqs = [e.seq for e in host.events]
    assert seqs == list(range(len(seqs))), seqs
    for a, b in zip(host.events, host.events[1:], strict=False):
        assert b.prev == a.hash


async def kill_mid_typing(host: Host, invite: Path, session: Path, data_dir: Path,
                          stop_typing: asyncio.Event) -> tuple[set[str], set[str]]:
    """Join as a child process, type on both sides, SIGKILL the child mid-typing. Returns
    the candidate's tokens the host had at the kill, and those its own file holds."""
    first = await Child.start("join", str(invite), str(session), data_dir=data_dir)
    await first.expect("READY")
    await host.connected(10)
    typing = asyncio.create_task(host_types(host, stop_typing))
    await eventually(lambda: len(tokens(host.doc.code_text, "c")) >= 20
                     and len(host.events) >= 2, 20, "the candidate's typing and events")
    await first.kill()
    at_kill = set(tokens(host.doc.code_text, "c"))
    await asyncio.sleep(0.4)  # the interviewer goes on typing while the candidate is gone
    stop_typing.set()
    await typing
    return at_kill, set(tokens(stored_code(session), "c"))


async def test_a_killed_candidate_resumes_with_nothing_acknowledged_lost(tmp_path):
    data_dir = tmp_path / "data"
    session = tmp_path / "cand.aiq"
    async with hosted(tmp_path) as (host, invite):
        at_kill, durable = await kill_mid_typing(host, invite, session, data_dir,
                                                 asyncio.Event())
        assert durable, "the candidate's file kept none of its typing"
        found = Resumable.read(session)
        assert found is not None and found.matches(host.invite) and not found.in_use
        events_before = len(host.events)

        second = await Child.start("resume", str(invite), str(session), data_dir=data_dir)
        resumed = json.loads(await second.expect("RESUMED"))
        assert durable <= set(tokens(resumed["code"], "c")), "the file's edits were not loaded"
        assert resumed["away_s"] > 0.3
        synced = json.loads(await second.expect("SYNCED"))
        await eventually(lambda: "r0005" in host.doc.code_text, 10, "the resumed typing")
        final = host.doc.code_text
        assert synced["code"] == final, "the two documents differ"
        # every acknowledged edit of both sides is there, once
        assert at_kill | durable <= set(tokens(final, "c"))
        host_tokens = tokens(final, "h")
        assert host_tokens == [f"h{i:04d}" for i in range(len(host_tokens), 0, -1)]
        assert len(tokens(final)) == len(set(tokens(final)))
        # the chain went on where it stopped: no gap, nothing refused
        assert not host.integrity_errors and not host.refusals
        chain_is_whole(host)
        resumes = [e for e in host.events if e.kind == "session.resumed"]
        assert len(resumes) == 1 and resumes[0].seq >= events_before
        assert resumes[0].data["side"] == "candidate" and resumes[0].data["away_s"] > 0.3
        assert synced["receipts"] == synced["events"] == len(host.events)

        path = await host.end()
        assert await second.expect("ENDED") == ""
        assert await second.exit_code() == 0
    assert Resumable.read(session) is None, "an ended session is offered for resuming"
    verdict = verify_record(SessionRecord.load(path))
    assert verdict.valid, verdict.errors
    assert verdict.log is not None
    shown = restarts(SessionRecord.load(path), verdict.log.events, verdict.log.arrivals)
    assert [(r.side, r.problem) for r in shown] == [("candidate", None)]


async def test_a_forged_chain_position_is_refused_and_the_honest_session_goes_on(tmp_path):
    data_dir = tmp_path / "data"
    session = tmp_path / "cand.aiq"
    async with hosted(tmp_path) as (host, invite):
        await kill_mid_typing(host, invite, session, data_dir, asyncio.Event())
        head = len(host.events)
        # the modified app works on a copy of the file (so the honest one is untouched)
        for n, how in enumerate(("skip", "reuse", "prev")):
            copy = tmp_path / f"forged-{how}.aiq"
            for suffix in ("", "-wal"):  # (the killed app's last commits are in its WAL)
                if Path(f"{session}{suffix}").exists():
                    shutil.copy(f"{session}{suffix}", f"{copy}{suffix}")
            forger = await Child.start("forge", str(invite), str(copy), how,
                                       data_dir=data_dir)
            await forger.expect("FORGED")
            await eventually(lambda n=n: len(host.integrity_errors) >= 3 * (n + 1), 10,
                             f"the host refusing the {how} forgery")
            await forger.kill()
        errors = list(host.integrity_errors)
        assert "sequence gap" in errors[0]
        assert "duplicate or replayed" in errors[3]
        assert "hash chain broken" in errors[6]
        assert len(host.events) == head, "a forged event was accepted"
        refused = [r for r in host.store.refusals() if r["channel"] == "integrity"]
        assert len(refused) >= 9

        honest = await Child.start("resume", str(invite), str(session), data_dir=data_dir)
        await honest.expect("SYNCED")
        chain_is_whole(host)
        assert [e.kind for e in host.events[head:]].count("session.resumed") == 1
        path = await host.end()
        assert await honest.exit_code() == 0
    verdict = verify_record(SessionRecord.load(path))
    assert verdict.valid, verdict.errors
    assert sum(int(r["count"]) for r in verdict.refusals if r["channel"] == "integrity") >= 9


async def test_another_machine_is_refused_unless_the_interviewer_admits_it(tmp_path):
    session = tmp_path / "cand.aiq"
    async with hosted(tmp_path) as (host, invite):
        await kill_mid_typing(host, invite, session, tmp_path / "data", asyncio.Event())
        first_key = host.device_key
        head = len(host.events)
        # another machine (its own data dir, no session file): held until the interviewer
        # decides; refused, it is told why and the refusal is recorded
        other = await Child.start("other", str(invite), str(tmp_path / "other.aiq"),
                                  data_dir=tmp_path / "other-data")
        await eventually(lambda: host.pending_device is not None, 15, "the pending device")
        assert host.pending_device is not None
        assert host.pending_device.request.name == "Other machine"
        await host.admit_device(False)
        assert "did not admit this computer" in await other.expect("REFUSED")
        assert await other.exit_code() == 3
        assert host.device_key == first_key and host.pending_device is None
        assert [r["channel"] for r in host.store.refusals()] == ["device"]

        admitted = await Child.start("other", str(invite), str(tmp_path / "other2.aiq"),
                                     data_dir=tmp_path / "other-data")
        await eventually(lambda: host.pending_device is not None, 15, "the pending device")
        assert host.pending_device is not None
        new_key = host.pending_device.request.device_key
        await host.admit_device(True)
        await admitted.expect("JOINED")
        synced = json.loads(await admitted.expect("SYNCED"))
        assert host.device_key == new_key != first_key
        await eventually(lambda: "o0001" in host.doc.code_text, 10, "the new device's typing")
        assert set(tokens(host.doc.code_text, "c")) <= set(tokens(synced["code"], "c"))
        # the same chain goes on under the new key: no gap, nothing refused
        chain_is_whole(host)
        assert not host.integrity_errors
        assert host.events[head].kind == "session.resumed"
        assert all(e.signed_by(new_key) for e in host.events[head:])
        assert all(e.signed_by(first_key) for e in host.events[:head])
        # the interviewer's app restarts: it pins the admitted device, which comes back
        await host.close()
        again = await Host.resume(tmp_path / "host.aiq", identity=host.identity, config=FAST,
                                  runs=False)
        try:
            assert again.device_key == new_key and again.pending_device is None
            await again.connected(20)
            assert len(again.events) == len(host.events) and not again.integrity_errors
            path = await again.end()
        finally:
            await again.close()
        assert await admitted.exit_code() == 0
    record = SessionRecord.load(path)
    verdict = verify_record(record)
    assert verdict.valid, verdict.errors
    found = admissions(record.private, record.meta["session"], host.identity.public_key)
    assert [(a.from_seq, a.new_key, a.name, a.problem) for a in found] == [
        (head, new_key, "Other machine", None)]
    assert [r["channel"] for r in verdict.refusals] == ["device"]
