"""The host resumes an unsealed session (issue 15, item 1), in one process: the file gives
back the document, the verified log, the receipts, the pinned device, the runs and the hidden
tests; the same room and invite stay valid; the candidate's app, still running, reconnects by
itself. Refusals of files that cannot be resumed are one line. (The same with real processes
and SIGKILL: test_resume_host_kill.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from assessiq.cli import main
from assessiq.core.errors import AssessIQError
from assessiq.core.identity import HOST_KEY_FILE, Identity, load_or_create_host_identity
from assessiq.core.record import SessionRecord
from assessiq.core.store import SessionStore
from assessiq.core.verify import verify_record
from assessiq.peer import Candidate, Host
from assessiq.peer.host import unsealed_sessions
from tests.peer_helpers import FAST, eventually, signaling_server


async def test_a_closed_host_resumes_and_the_candidate_comes_back_by_itself(tmp_path: Path):
    """With the app's own signaling server (the interviewer's app embeds one on 127.0.0.1):
    it dies with the app, and the resumed host listens on the same port again."""
    from signaling import ServerConfig, SignalingServer

    ident = Identity.generate()
    path = tmp_path / "s.aiq"
    server = SignalingServer(ServerConfig(host="127.0.0.1", port=0))
    await server.start()
    url = f"ws://127.0.0.1:{server.port}"
    host = await Host.start(signaling=url, config=FAST, identity=ident, session_path=path,
                            label="resume", runs=False,
                            embedded_signaling=("127.0.0.1", server.port))
    cand = await Candidate.join(host.invite.encode(), config=FAST, name="Ada")
    try:
        await host.connected(10)
        await cand.connected(10)
        host.doc.insert_code(0, "# host\n")
        await eventually(lambda: "# host" in cand.doc.code_text, 10, "the host's line")
        cand.doc.insert_code(len(cand.doc.code_text), "# candidate\n")
        await cand.send_event("tab.hidden", {"phase": "instant", "confidence": 1})
        await eventually(lambda: len(host.events) == 1, 10, "the first event")
        await eventually(lambda: "# candidate" in host.doc.code_text, 10, "typing")
        room, invite = host.invite.room, host.invite.encode()
        port = server.port
        await host.close()  # the app is gone, with its signaling server; unsealed file
        await server.stop()
        listed = unsealed_sessions(tmp_path)
        assert [(s.path, s.room, s.label, s.candidate) for s in listed] == [
            (path, room, "resume", "Ada")]
        # the candidate goes on alone: an edit and an event while the host is away
        cand.doc.insert_code(len(cand.doc.code_text), "x = 1\n")
        await cand.send_event("tab.hidden", {"phase": "instant", "confidence": 1})

        host = await Host.resume(path, identity=ident, config=FAST, runs=False)
        assert host.invite.room == room and host.invite.encode() == invite
        assert host.server is not None and host.server.port == port  # listening again
        with pytest.raises(AssessIQError, match="already open") as info:  # one app only
            await Host.resume(path, identity=ident, config=FAST, runs=False)
        assert "\n" not in str(info.value)
        assert [s.in_use for s in unsealed_sessions(tmp_path)] == [True]
        assert host.device_key == cand.device.public_key
        assert len(host.events) == 1 and set(host.receipts) == {0}
        assert "# host" in host.doc.code_text and "# candidate" in host.doc.code_text
        assert host.resumed is not None and host.resumed["away_s"] >= 0
        await host.connected(20)
        await eventually(lambda: host.doc.code_text == cand.doc.code_text
                         and "x = 1" in host.doc.code_text, 10, "convergence")
        await eventually(lambda: len(host.events) == 2 and not cand.outbox, 10,
                         "the event signed while the host was away")
        sealed = await host.end()
    finally:
        await cand.close()
        await host.close()
        await server.stop()
    verdict = verify_record(SessionRecord.load(sealed))
    assert verdict.valid, verdict.errors
    record = SessionRecord.load(sealed)
    assert [e["kind"] for e in record.private].count("session.resumed") == 1
    assert unsealed_sessions(tmp_path) == []  # sealed: nothing to resume
    # the invite's secret left with the seal
    with contextlib.closing(sqlite3.connect(sealed)) as db:
        assert db.execute("SELECT COUNT(*) FROM live").fetchone()[0] == 0


async def _unsealed(tmp_path: Path, ident: Identity) -> Path:
    """An unsealed session file of `ident`'s with a pinned candidate and one event."""
    async with signaling_server() as url:
        path = tmp_path / "u.aiq"
        host = await Host.start(signaling=url, config=FAST, identity=ident, session_path=path,
                                runs=False)
        cand = await Candidate.join(host.invite.encode(), config=FAST)
        try:
            await host.connected(10)
            await cand.send_event("tab.hidden", {"phase": "instant", "confidence": 1})
            await eventually(lambda: len(host.events) == 1, 10, "an event")
        finally:
            await cand.close()
            await host.close()
    return path


@pytest.fixture(scope="module")
def unsealed_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Identity]:
    """An unsealed session in a data dir of its own (`ASSESSIQ_DATA_DIR`), made by that data
    dir's host key."""
    data = tmp_path_factory.mktemp("data")
    ident = load_or_create_host_identity(data / HOST_KEY_FILE)
    (data / "sessions").mkdir()
    return asyncio.run(_unsealed(data / "sessions", ident)), ident


def _copy(src: Path, dst: Path) -> Path:
    with contextlib.closing(sqlite3.connect(src)) as a, \
            contextlib.closing(sqlite3.connect(dst)) as b:
        a.backup(b)
    return dst


def _edit(path: Path, sql: str, *params: object) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(sql, params)
        db.commit()


@pytest.mark.parametrize("damage, says", [
    ("meta_json", "metadata is damaged"),
    ("envelope", "does not verify"),
    ("receipt", "receipt #0"),
    ("invite", "invite is damaged"),
    ("other_host", "another host key"),
    ("sealed", "sealed"),
    ("not_a_file", "not an AssessIQ session file"),
    ("device", "device key is damaged"),
    ("update", "does not replay"),
    ("runs", "runs or host-only entries are damaged"),
])
async def test_a_file_that_cannot_be_resumed_is_refused_in_one_line(
        unsealed_file, tmp_path: Path, damage: str, says: str):
    src, ident = unsealed_file
    path = _copy(src, tmp_path / "x.aiq")
    if damage == "meta_json":
        _edit(path, "UPDATE meta SET value = '{not json' WHERE key = 'label'")
    elif damage == "envelope":
        with contextlib.closing(sqlite3.connect(path)) as db:
            raw = bytearray(db.execute("SELECT raw FROM envelopes").fetchone()[0])
        raw[len(raw) // 2] ^= 1
        _edit(path, "UPDATE envelopes SET raw = ?", bytes(raw))
    elif damage == "receipt":
        _edit(path, "UPDATE receipts SET raw = ?", b"junk")
    elif damage == "invite":
        _edit(path, "UPDATE live SET value = ? WHERE key = 'invite'", json.dumps("aiq1.x.y"))
    elif damage == "other_host":
        ident = Identity.generate()
    elif damage == "sealed":
        _edit(path, "INSERT INTO seal VALUES (1, ?)", b"x")
    elif damage == "not_a_file":
        path.write_bytes(b"not sqlite" * 100)
    elif damage == "device":
        _edit(path, "UPDATE meta SET value = ? WHERE key = 'device_key'", json.dumps("@@"))
    elif damage == "update":
        _edit(path, "UPDATE batches SET blob = ? WHERE first_seq = 0", b"\x01\x02junk")
    elif damage == "runs":
        _edit(path, "INSERT INTO runs VALUES ('r', 0, '{\"a\": 1', NULL)")
    with pytest.raises(AssessIQError) as info:
        await Host.resume(path, identity=ident, config=FAST, runs=False)
    message = str(info.value)
    assert says in message and "\n" not in message, message
    if damage not in ("not_a_file",):  # the refused file is left as it was: unsealed
        with SessionStore.open(path) as store:
            assert store.seal_raw() is None or damage == "sealed"


def test_the_command_line_lists_and_picks_unsealed_sessions(unsealed_file, monkeypatch,
                                                             capsys):
    path, _ = unsealed_file
    data = path.parent.parent
    monkeypatch.setenv("ASSESSIQ_DATA_DIR", str(data))
    assert main(["host", "--list-unsealed"]) == 0
    out = capsys.readouterr().out
    with SessionStore.open(path) as store:
        room = store.meta()["session"]
    assert "1 unsealed session in" in out and room[:10] in out, out
    for args, says in ((["--resume", "zzzzzz"], "no unsealed session has the room"),
                       (["--resume", "ab"], "no unsealed session has the room"),
                       (["--resume", str(data / "nope.aiq")], "not one of this host's"),
                       (["--list-unsealed", "--resume"], "not both")):
        assert main(["host", *args]) == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    # another host key's data dir lists nothing and resumes nothing
    other = data.parent / "other-data"
    other.mkdir(exist_ok=True)
    monkeypatch.setenv("ASSESSIQ_DATA_DIR", str(other))
    assert main(["host", "--list-unsealed"]) == 0
    assert "no unsealed sessions" in capsys.readouterr().out
    assert main(["host", "--resume"]) == 2
    assert "no unsealed session to resume" in capsys.readouterr().err


def test_resume_picks_by_path_label_or_room(tmp_path: Path):
    from assessiq.commands.host import choose
    from assessiq.peer.host import SessionSummary

    def summary(name: str, room: str, label: str, alive: float) -> SessionSummary:
        return SessionSummary(path=tmp_path / name, room=room, label=label, created=0.0,
                              candidate=None, last_alive=alive, joined=False, host_key="k")

    a, b = summary("a.aiq", "abcdef123", "Ada", 1000.0), summary("b.aiq", "abcxyz", "", 10.0)
    assert choose([a, b], "Ada") is a and choose([a, b], "abcx") is b
    assert choose([a, b], str(tmp_path / "b.aiq")) is b
    assert choose([a, b], "", now=4000.0) is a  # the only one alive in the last hour
    for choice, says in (("abc", "no unsealed session"), ("abcd", "2 unsealed sessions match"),
                         ("", "2 unsealed sessions")):
        with pytest.raises(AssessIQError, match=says):
            choose([a, b] if choice != "abcd" else [a, summary("c.aiq", "abcd9", "", 0)],
                   choice, now=99999.0)


def _stored_updates(path: Path) -> int:
    """How many document updates a second connection sees committed in `path`."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT TOTAL(last_seq - first_seq + 1) FROM batches"
                              ).fetchone()[0])


def test_a_state_change_is_committed_before_the_sync_can_send_it(tmp_path: Path):
    """The durability policy: the host's state document is never told to the candidate ahead
    of its own file (a kill would leave the candidate with state the resumed host lacks, and
    the two would disagree). Keystrokes stay group-committed."""
    from assessiq.core.document import SharedDoc

    # The sync queues its message from inside the transaction; aiortc transmits it from a
    # task, once control is back in the event loop: by then the file must hold it. (No loop
    # runs here, so nothing else commits.) pycrdt calls a document's observers in no fixed
    # order (it differs between documents): several documents.
    for n in range(8):
        path = tmp_path / f"d{n}.aiq"
        store = SessionStore.create(path, {"session": "d", "created": 0.0})
        doc = SharedDoc()
        store.attach(doc, local_origin="host")
        for i in range(3):
            doc.set_phase("interview" if i % 2 else "lobby", origin="host")
            assert _stored_updates(path) == 2 * i + 1
            doc.request_run(f"r{i}", by="candidate", at=1.0, language="python",
                            source="print(1)", origin="host")
            assert _stored_updates(path) == 2 * i + 2
        doc.insert_code(0, "x")  # keystrokes: buffered, committed within 50 ms
        doc.insert_code(0, "y")
        assert _stored_updates(path) == 6 and store.durable_seq == 5
        store.close()
        assert _stored_updates(path) == 8


class _CountingBackend:
    name = "counting"

    def __init__(self) -> None:
        self.runs = 0

    async def runtimes(self) -> list:
        from sandbox.models import Runtime

        return [Runtime(language="python", version="3", aliases=())]

    async def run(self, request):
        self.runs += 1
        raise AssertionError("a resumed host ran something")


async def test_restore_marks_runs_in_flight_interrupted_and_never_runs_one_again(
        tmp_path: Path):
    from assessiq.core.document import SharedDoc
    from assessiq.runs import RunService

    path = tmp_path / "r.aiq"
    store = SessionStore.create(path, {"session": "r", "created": 0.0})
    doc = SharedDoc()
    store.attach(doc, local_origin="host")
    doc.set_public_tests([{"name": "t", "stdin": "1", "expected": "1\n"}], origin="host")
    request = {"by": "candidate", "at": 5.0, "language": "python", "source": "print(1)"}
    done = {"verdict": "passed", "proof": 1, "hidden": [], "run": {"stdout": "1\n"},
            "tests": [{"name": "t", "passed": True, "actual": "1\n", "diff": ""}]}
    for run_id in ("finished", "in_flight", "recorded_only"):
        doc.request_run(run_id, origin="host", **request)
    doc.set_run_result("finished", {"verdict": "passed"}, origin="host")
    store.put_run("finished", request, done, t=5.0)
    store.put_run("recorded_only", request, done, t=5.0)  # killed before the document
    backend = _CountingBackend()
    runs = RunService(doc, store, backend=backend)
    assert runs.restore() == ["in_flight"]
    await runs.start()
    await asyncio.sleep(0.05)
    await runs.stop()
    results = {r["run_id"]: r["result"] for r in doc.runs()}
    assert results["finished"] == {"verdict": "passed"}  # untouched
    assert results["in_flight"]["interrupted"] is True
    assert results["in_flight"]["verdict"] == "error"
    assert results["recorded_only"]["verdict"] == "passed"
    assert results["recorded_only"]["tests"][0]["passed"] is True
    stored = {r["id"]: r["result"] for r in store.runs()}
    assert stored["in_flight"]["interrupted"] is True and stored["finished"] == done
    assert runs.public_tests == [{"name": "t", "stdin": "1", "expected": "1\n"}]
    assert backend.runs == 0
    store.close()


EVENT_WRITER = r"""
import sys
from assessiq.core.store import SessionStore
store = SessionStore.create(sys.argv[1], {"session": "k", "created": 0.0})
i = 0
while True:
    store.append_event(b"event %d" % i, b"receipt %d" % i, received_at=float(i))
    print(i, flush=True)  # acknowledged: the receipt could be sent now
    i += 1
"""


async def test_a_kill_never_leaves_an_event_without_its_receipt_or_loses_an_acked_one(
        tmp_path: Path):
    import signal
    import sys

    path = tmp_path / "events.aiq"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", EVENT_WRITER, str(path),
                                                stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    acked = -1
    while acked < 150:  # a few hundred fsyncs in: kill at whatever instant this is
        acked = int(await asyncio.wait_for(proc.stdout.readline(), 30))
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        events = [bytes(r) for (r,) in db.execute("SELECT raw FROM envelopes ORDER BY id")]
        receipts = [bytes(r) for (r,) in db.execute("SELECT raw FROM receipts ORDER BY id")]
    assert len(events) == len(receipts) > acked
    assert events[acked] == b"event %d" % acked and receipts[-1] == b"receipt %d" % (
        len(receipts) - 1)
