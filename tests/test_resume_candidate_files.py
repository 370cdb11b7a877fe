"""The candidate's side of a resume without processes: the device key kept in its session file,
finding the unfinished session of an invite, one app at a time, `join` continuing it in
place, and the `assessiq join` command's one line."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from assessiq.cli import main
from assessiq.core.encoding import b64e
from assessiq.core.errors import AssessIQError, InviteError
from assessiq.core.handshake import open_device_key, seal_device_key
from assessiq.core.identity import Identity
from assessiq.core.invite import Invite, make_invite
from assessiq.core.resume import away_words
from assessiq.core.store import SessionStore
from assessiq.peer import Candidate, Host
from assessiq.peer.candidate import (
    Resumable,
    ResumeError,
    _create_store,
    decode_for_resume,
    find_resumable,
)
from assessiq.peer.config import PeerConfig
from tests.peer_helpers import FAST, eventually, signaling_server

HOST = Identity.generate()


def invite(**kw):
    return make_invite(HOST, signaling="ws://127.0.0.1:9", **kw)


def candidate_file(inv, folder: Path, *, hold: bool = False) -> tuple[Candidate, Path]:
    """A candidate session file of `inv` in `folder`, as `join` writes it (released unless
    `hold`)."""
    cand = Candidate(inv, Identity.generate(), PeerConfig(), "Ada")
    path = folder / f"{inv.room}.candidate{'' if not list(folder.glob('*.aiq')) else '-1'}.aiq"
    store = _create_store(cand, path, "ws://127.0.0.1:9")
    store.close()
    if not hold:
        cand.store = store
        cand._unlock()
    return cand, path


def test_the_device_key_is_kept_sealed_under_the_invite_in_a_private_file(tmp_path):
    inv = invite()
    cand, path = candidate_file(inv, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    meta = SessionStore.open(path).meta()
    sealed = meta["device_secret"]
    assert sealed.startswith("dk1.") and "PRIVATE KEY" not in sealed
    assert cand.device.to_pem() not in path.read_bytes()
    assert open_device_key(inv, sealed).public_key == cand.device.public_key
    other = invite()  # another invite's secret does not open it
    with pytest.raises(AssessIQError, match="does not open with this invite"):
        open_device_key(other, sealed)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(AssessIQError):
        open_device_key(inv, tampered)
    # the public half cannot be swapped for another device's
    swapped = ".".join(["dk1", b64e(Identity.generate().public_key), sealed.split(".")[2]])
    with pytest.raises(AssessIQError):
        open_device_key(inv, swapped)
    assert open_device_key(inv, seal_device_key(inv, cand.device)).fingerprint == \
        cand.device.fingerprint


def test_the_unfinished_session_of_this_invite_is_found_and_no_other(tmp_path):
    inv = invite()
    _, path = candidate_file(inv, tmp_path)
    found = find_resumable(inv, tmp_path)
    assert found is not None and found.path == path and not found.in_use
    assert found.meta["candidate_name"] == "Ada" and found.last_active > 0
    assert find_resumable(invite(), tmp_path) is None  # another invite
    # ended by the host, or left for a new session: never offered again
    with SessionStore.open(path) as store:
        store.set_meta("ended", 1.0)
    assert find_resumable(inv, tmp_path) is None
    with SessionStore.open(path) as store:
        store._db.execute("DELETE FROM meta WHERE key='ended'")
    found = find_resumable(inv, tmp_path)
    assert found is not None
    found.leave()
    assert find_resumable(inv, tmp_path) is None
    assert json.loads(sqlite3.connect(path).execute(
        "SELECT value FROM meta WHERE key='left'").fetchone()[0])["why"]
    # not a session file at all, or the host's file of the same room
    (tmp_path / f"{inv.room}.candidate-9.aiq").write_bytes(b"junk" * 100)
    assert find_resumable(inv, tmp_path) is None


def test_a_session_held_by_a_running_app_is_not_continued_twice(tmp_path):
    inv = invite()
    cand, path = candidate_file(inv, tmp_path, hold=True)
    found = Resumable.read(path)
    assert found is not None and found.in_use
    with pytest.raises(ResumeError, match="already open in another AssessIQ window"):
        found.check(inv)
    with pytest.raises(ResumeError, match="already open"):
        found.leave()
    cand.store = SessionStore.open(path)
    cand.store.close()
    cand._unlock()  # the app ends (or dies: the system releases its lock)
    assert not os.path.exists(f"{path}.lock")
    found = Resumable.read(path)
    assert found is not None and not found.in_use
    found.check(inv)
    with pytest.raises(ResumeError, match="not a session of this invite"):
        found.check(invite())


def test_an_expired_invite_still_names_the_session_it_began():
    old = make_invite(HOST, signaling="ws://127.0.0.1:9", ttl_s=1, now=1_000_000.0)
    with pytest.raises(InviteError, match="expired"):
        Invite.decode(old.encode())
    assert decode_for_resume(old.encode()).id == old.id
    with pytest.raises(InviteError, match="signature"):
        decode_for_resume(old.encode()[:-6] + "AAAAAA")


def test_away_words_are_short():
    assert [away_words(s) for s in (0.4, 12, 89, 300, 5400, 7500)] == [
        "0 s", "12 s", "89 s", "5 min", "1 h 30 min", "2 h 5 min"]


async def test_join_again_on_this_computer_continues_the_same_session(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSESSIQ_DATA_DIR", str(tmp_path / "data"))
    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "h.aiq", runs=False)
        try:
            first = await Candidate.join(host.invite.encode(), config=FAST, name="Ada")
            assert first.resumed_from is None
            first.doc.insert_code(0, "kept\n")
            await first.send_event("session.note", {"phase": "instant", "text": "before"})
            await eventually(lambda: len(host.events) == 1 and "kept" in host.doc.code_text)
            path = first.store.path if first.store else None
            await first.close()  # the app closed (no bye): the session is unfinished
            host.doc.insert_code(0, "while away\n")

            again = await Candidate.join(host.invite.encode(), config=FAST)
            try:
                assert again.resumed_from == path and again.name == "Ada"
                assert again.device.public_key == first.device.public_key
                assert again.away_s is not None and again.away_s >= 0
                assert [e.seq for e in again.log] == [0, 1] and again.log[1].kind == \
                    "session.resumed"
                await eventually(lambda: len(host.events) == 2, 10, "the resumed event")
                await eventually(lambda: "while away" in again.doc.code_text, 10)
                assert not host.integrity_errors
            finally:
                await again.close()
            # `resume=False` is a new device: the interviewer decides
            fresh = asyncio.create_task(Candidate.join(
                host.invite.encode(), config=FAST, resume=False, timeout=3))
            await eventually(lambda: host.pending_device is not None, 10)
            await asyncio.sleep(3.5)  # past its timeout: it waits for the decision
            assert not fresh.done()
            await host.admit_device(False)
            with pytest.raises(AssessIQError, match="did not admit this computer"):
                await fresh
        finally:
            await host.close()


def test_the_join_command_says_it_resumes_and_new_session_leaves_it(tmp_path, monkeypatch,
                                                                   capsys):
    import assessiq.ui.app as app

    monkeypatch.setenv("ASSESSIQ_DATA_DIR", str(tmp_path / "data"))
    served: list[object] = []
    monkeypatch.setattr(app, "serve", lambda state, *a, **k: served.append(state))
    monkeypatch.setattr(app, "check_port", lambda port: None)
    inv = invite()
    folder = tmp_path / "data" / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    _, path = candidate_file(inv, folder)
    assert main(["join", inv.encode(), "--no-browser", "--camera", "none",
                 "--microphone", "none"]) == 0
    out = capsys.readouterr().out
    assert f"Resuming your interview from {path.name} (last active" in out
    assert main(["join", inv.encode(), "--no-browser", "--new-session", "--camera", "none",
                 "--microphone", "none"]) == 0
    out = capsys.readouterr().out
    assert "Starting a new session" in out and "Resuming" not in out
    assert find_resumable(inv, folder) is None
    assert main(["join", inv.encode(), "--no-browser", "--camera", "none",
                 "--microphone", "none"]) == 0
    assert "Resuming" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["join", "--help"])
    assert "--new-session" in capsys.readouterr().out


def test_the_candidates_app_opens_an_expired_invite_only_to_continue(tmp_path, monkeypatch):
    """The candidate's app (its controller) refuses an expired invite in one line, unless
    this computer has the unfinished session it began: then it opens, to continue it."""
    from assessiq.room.candidate import CandidateController

    data = tmp_path / "data"
    monkeypatch.setenv("ASSESSIQ_DATA_DIR", str(data))
    old = make_invite(HOST, signaling="ws://127.0.0.1:9", ttl_s=1, now=time.time() - 60)
    with pytest.raises(InviteError, match="expired"):
        CandidateController(old.encode())
    folder = data / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    candidate_file(old, folder)
    assert CandidateController(old.encode()).invite.id == old.id
