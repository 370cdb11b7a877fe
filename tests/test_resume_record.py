"""Restarts in the record (`core.resume`): what each side's file says after a restart, and
the host's signed restart entries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from assessiq.core.encoding import b64e
from assessiq.core.errors import AssessIQError
from assessiq.core.identity import Identity
from assessiq.core.integrity import EventSigner
from assessiq.core.kinds import INSTANT, KINDS
from assessiq.core.record import SessionRecord
from assessiq.core.resume import (
    HOST_RESTARTS_KEY,
    RESUMED,
    data_problem,
    host_windows,
    last_alive,
    record_host_resume,
    restarts,
    resumed_data,
    windows_problem,
)
from assessiq.core.store import SessionStore

T0 = 1_800_000_000.0


def _store(path: Path, host: Identity) -> SessionStore:
    return SessionStore.create(path, {"session": "room-1", "host_key": b64e(host.public_key),
                                      "created": T0})


def test_the_kind_is_registered_as_an_instant() -> None:
    assert RESUMED == "session.resumed" and KINDS[RESUMED].shape == INSTANT
    data = resumed_data(side="candidate", away_s=61.5, last_seen=T0 + 10, why="newest row")
    assert data == {"phase": "instant", "side": "candidate", "away_s": 61.5,
                    "last_seen": T0 + 10, "why": "newest row"}
    with pytest.raises(ValueError, match="away_s"):
        resumed_data(side="candidate", away_s=-1, last_seen=T0, why="x")
    with pytest.raises(ValueError, match="side"):
        resumed_data(side="proctor", away_s=1, last_seen=T0, why="x")


@pytest.mark.parametrize(("data", "words"), [
    ({"side": "host", "away_s": 1, "last_seen": T0, "why": "x"}, "the candidate recorded"),
    ({"side": "candidate", "away_s": math.nan, "last_seen": T0, "why": "x"}, "away_s"),
    ({"side": "candidate", "away_s": 1e300, "last_seen": T0, "why": "x"}, "away_s"),
    ({"side": "candidate", "away_s": True, "last_seen": T0, "why": "x"}, "away_s"),
    ({"side": "candidate", "away_s": 1, "last_seen": T0 + 60, "why": "x"}, "after the restart"),
    ({"side": "candidate", "away_s": 1, "last_seen": "now", "why": "x"}, "last_seen"),
    ({"side": "candidate", "away_s": 1, "last_seen": T0, "why": "x" * 500}, "why"),
    ([1, 2], "table"),
])
def test_malformed_claims_are_named(data: object, words: str) -> None:
    problem = data_problem(data, side="candidate", t=T0)
    assert problem is not None and words in problem


def test_last_alive_is_the_newest_row_of_any_table(tmp_path: Path) -> None:
    host = Identity.generate()
    store = _store(tmp_path / "a.aiq", host)
    assert last_alive(store) == T0  # only its creation
    store.record_update(b"\x01\x00\x00\x00\x00\x00\x00\x00", origin="host", t=T0 + 5)
    assert last_alive(store) == pytest.approx(T0 + 5)  # still buffered: counts
    store.flush()
    assert last_alive(store) == pytest.approx(T0 + 5)  # a batch row
    store.append_envelope(b"e", received_at=T0 + 7)
    assert last_alive(store) == T0 + 7
    store.put_run("r", {"by": "host"}, None, t=T0 + 9)
    assert last_alive(store) == T0 + 9
    store.add_private("note", {"text": "n"}, t=T0 + 11)
    assert last_alive(store) == T0 + 11
    store.append_refusal("integrity", "bad", b"x", t=T0 + 12)
    assert last_alive(store) == T0 + 12
    store.set_meta("links_opened", [T0 + 3, T0 + 13])
    assert last_alive(store) == T0 + 13
    store.compact(keep_hot=0)  # a segment row keeps its newest time
    assert last_alive(store) == T0 + 13
    store.close()
    reopened = SessionStore.open(tmp_path / "a.aiq")  # as after a restart
    assert last_alive(reopened) == T0 + 13
    reopened.close()


def test_host_restart_is_signed_and_listed(tmp_path: Path) -> None:
    host = Identity.generate()
    store = _store(tmp_path / "h.aiq", host)
    with pytest.raises(AssessIQError, match="host key"):
        record_host_resume(store, Identity.generate(), away_s=5, last_seen=T0, why="x",
                           now=T0 + 5)
    entry = record_host_resume(store, host, away_s=40.0, last_seen=T0 + 20, why="newest row",
                               now=T0 + 60)
    assert entry["at"] == T0 + 60 and entry["side"] == "host"
    record_host_resume(store, host, away_s=10.0, last_seen=T0 + 100, why="newest row",
                       now=T0 + 110)
    assert store.meta()[HOST_RESTARTS_KEY] == [[T0 + 20, T0 + 60], [T0 + 100, T0 + 110]]
    assert host_windows(store.meta()) == [(T0 + 20, T0 + 60), (T0 + 100, T0 + 110)]
    # the candidate's own restart, signed into its chain
    signer = EventSigner("room-1", Identity.generate())
    env = signer.sign(RESUMED, resumed_data(side="candidate", away_s=30, last_seen=T0 + 65,
                                            why="newest row"), now=T0 + 95)
    store.close()
    record = SessionRecord.load(tmp_path / "h.aiq")
    found = restarts(record, [env], arrivals=[T0 + 96])
    assert [(r.side, r.at, r.away_s, r.signed, r.problem) for r in found] == [
        ("host", T0 + 60, 40.0, True, None), ("candidate", T0 + 96, 30.0, True, None),
        ("host", T0 + 110, 10.0, True, None)]
    assert found[1].seq == 0 and json.loads(json.dumps(found[0].to_json()))["why"]


def test_an_edited_host_restart_no_longer_checks(tmp_path: Path) -> None:
    host = Identity.generate()
    store = _store(tmp_path / "h.aiq", host)
    record_host_resume(store, host, away_s=40.0, last_seen=T0 + 20, why="newest row",
                       now=T0 + 60)
    store.close()
    record = SessionRecord.load(tmp_path / "h.aiq")
    signed = record.private[0]["value"]["signed"]
    edited = signed.replace('"away_s":40.0', '"away_s":4.0')
    assert edited != signed
    record.private[0]["value"]["signed"] = edited
    (found,) = restarts(record)
    assert not found.signed and found.problem and "signature" in found.problem
    record.private[0]["value"]["signed"] = signed
    record.private[0]["t"] = T0 + 30  # moved in the table, not in the signed body
    (found,) = restarts(record)
    assert found.signed and found.problem and "time" in found.problem
    record.private[0]["value"] = {"signed": "garbage"}
    (found,) = restarts(record)
    assert not found.signed and found.problem


def test_a_kill_between_the_two_writes_is_mended_by_the_next_restart(tmp_path: Path) -> None:
    """`record_host_resume` commits the metadata's window, then the signed entry: a kill in
    between leaves a window no entry signs. The next restart rebuilds the windows from the
    signed entries, so the record agrees with itself again (it was invalid for good)."""
    host = Identity.generate()
    store = _store(tmp_path / "h.aiq", host)
    record_host_resume(store, host, away_s=40.0, last_seen=T0 + 20, why="x", now=T0 + 60)
    store.set_meta(HOST_RESTARTS_KEY, [[T0 + 20, T0 + 60], [T0 + 100, T0 + 110]])  # killed
    record = SessionRecord.load(tmp_path / "h.aiq")
    assert windows_problem(record, restarts(record, [], None))  # (what the kill left)
    record_host_resume(store, host, away_s=30.0, last_seen=T0 + 150, why="x", now=T0 + 180)
    assert store.meta()[HOST_RESTARTS_KEY] == [[T0 + 20, T0 + 60], [T0 + 150, T0 + 180]]
    store.close()
    record = SessionRecord.load(tmp_path / "h.aiq")
    assert windows_problem(record, restarts(record, [], None)) is None
