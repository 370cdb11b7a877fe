"""`verify` of a resumed record: it stays valid, lists each restart of either side, refuses an
edited host restart entry, and reports a candidate's malformed restart claim as a finding."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from assessiq.cli import main as cli_main
from assessiq.core.encoding import b64e
from assessiq.core.identity import Identity
from assessiq.core.integrity import EventSigner, LogVerifier, make_receipt
from assessiq.core.policy import Policy, default_policy_text
from assessiq.core.record import SessionRecord
from assessiq.core.resume import HOST_RESTARTS_KEY, RESUMED, record_host_resume, resumed_data
from assessiq.core.score import evaluate_session
from assessiq.core.seal import seal
from assessiq.core.store import SessionStore
from assessiq.core.verify import verify_record

T0 = 1_800_000_000.0
BEAT = 10.0


def _build(path: Path, claims: list[dict[str, Any]] | None = None) -> None:
    """A sealed session: the host down from 100 s to 300 s (the candidate's beats resent in
    a burst at 310 s), the candidate's app gone from ~500 s to 560 s, sealed at 800 s.
    `claims` replace the candidate's one honest restart claim (a modified app's)."""
    host, device = Identity.generate(), Identity.generate()
    store = SessionStore.create(path, {
        "session": "room-r", "host_key": b64e(host.public_key),
        "device_key": b64e(device.public_key), "created": T0, "joined": T0,
        "policy": default_policy_text()})
    signer = EventSigner("room-r", device)
    verifier = LogVerifier("room-r", device.public_key)
    plan: list[tuple[float, float, str, dict[str, Any]]] = []
    for t in range(0, 800, int(BEAT)):
        if 500 <= t < 560:
            continue  # the candidate's app is down
        arrive = 310.0 if 100 <= t < 310 else t + 0.05
        plan.append((float(t), arrive, "browser.heartbeat", {}))
    for i, data in enumerate(claims or [resumed_data(
            side="candidate", away_s=58.0, last_seen=T0 + 492.0,
            why="newest row in its session file")]):
        plan.append((555.0 + i * 0.01, 555.1 + i * 0.01, RESUMED, data))
    plan.sort(key=lambda p: p[0])
    envs = [(T0 + arrive, signer.sign(kind, data, now=T0 + t)) for t, arrive, kind, data in plan]
    envs.sort(key=lambda p: (p[0], p[1].seq))
    restarted = False
    for arrive, env in envs:
        if not restarted and arrive >= T0 + 300:
            record_host_resume(store, host, away_s=199.9, last_seen=T0 + 100.05,
                               why="newest row in its session file", now=T0 + 300)
            restarted = True
        accepted, _ = verifier.accept(env.raw, received_at=arrive)
        store.append_envelope(env.raw, received_at=arrive)
        store.append_receipt(make_receipt(host, accepted, now=arrive).raw)
    seal(store, host, now=T0 + 800)
    store.close()


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("resumed") / "s.aiq"
    _build(path)
    return path


def test_a_resumed_record_verifies_and_shows_each_restart(sealed: Path) -> None:
    verdict = verify_record(SessionRecord.load(sealed))
    assert verdict.valid, verdict.errors
    assert verdict.evaluation is not None and verdict.evaluation.gaps == []
    assert verdict.evaluation.score == 100  # the host's downtime, one short honest restart
    host, cand = verdict.restarts
    assert (host["side"], host["at"], host["signed"], host["problem"]) == (
        "host", T0 + 300, True, None)
    assert host["away_s"] == 199.9 and host["measured_s"] == pytest.approx(199.95)
    assert (cand["side"], cand["away_s"], cand["problem"], cand["penalty"]) == (
        "candidate", 58.0, None, 0.0)
    assert 60 <= cand["measured_s"] <= 70  # the silence on the host's clock
    assert json.loads(json.dumps(verdict.to_json()))["restarts"] == verdict.restarts


def test_the_live_score_is_the_sealed_score(sealed: Path) -> None:
    """The interviewer's page evaluates the store's metadata, its verified events and their
    arrivals with `evaluate_session`: what `verify` recomputes from the sealed file."""
    verdict = verify_record(SessionRecord.load(sealed))
    assert verdict.log is not None and verdict.evaluation is not None
    store = SessionStore.open(sealed)
    meta = store.meta()
    store.close()
    assert meta[HOST_RESTARTS_KEY] == [[T0 + 100.05, T0 + 300]]
    live = evaluate_session(meta, verdict.log.events, Policy.from_toml(meta["policy"]),
                            arrivals=verdict.log.arrivals, end_t=T0 + 800)
    assert live.to_json() == verdict.evaluation.to_json()


def test_the_command_lists_the_restarts(sealed: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    assert cli_main(["verify", str(sealed)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "RESTART" in line]
    assert len(lines) == 2 and "restarts  2" in out
    assert "interviewer down 200 s, signed by the host: ok" in lines[0]
    assert "candidate away" in lines[1] and "it says 58 s" in lines[1]
    assert cli_main(["verify", str(sealed), "--json"]) == 0
    out_json = json.loads(capsys.readouterr().out)
    assert [r["side"] for r in out_json["restarts"]] == ["host", "candidate"]


def _edit(src: Path, dst: Path, sql: str, *params: Any) -> None:
    shutil.copy(src, dst)
    db = sqlite3.connect(dst)
    db.execute(sql, params)
    db.commit()
    db.close()


def test_an_edited_host_restart_is_invalid(sealed: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # an attacker shortens the host's downtime in its entry (the one the signature covers)
    record = SessionRecord.load(sealed)
    (entry,) = [p for p in record.private if p["kind"] == RESUMED]
    forged = dict(entry["value"], signed=entry["value"]["signed"].replace(
        '"away_s":199.9', '"away_s":1.0'))
    path = tmp_path / "forged.aiq"
    _edit(sealed, path, "UPDATE private SET value = ? WHERE kind = ?", json.dumps(forged),
          RESUMED)
    assert cli_main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "restart entry" in out and "signature is not the host's" in out
    assert "signed by the host: NO" in out
    # or widens the host's window in the metadata, to excuse a silence of the candidate's
    widened = tmp_path / "widened.aiq"
    _edit(sealed, widened, "UPDATE meta SET value = ? WHERE key = ?",
          json.dumps([[T0 + 10, T0 + 300]]), HOST_RESTARTS_KEY)
    verdict = verify_record(SessionRecord.load(widened))
    assert not verdict.valid
    assert any("differ from its signed restart entries" in e for e in verdict.errors)
    # the entry is checked on its own too, sealed or not (an attacker without the seal)
    record.private = [dict(p, value=forged) if p["kind"] == RESUMED else p
                      for p in record.private]
    record.seal = None
    errors = verify_record(record).errors
    assert any("restart entry" in e and "signature" in e for e in errors)


@pytest.mark.parametrize("claims", [
    pytest.param([{"phase": "instant", "side": "host", "away_s": 0.0, "last_seen": T0 + 492,
                   "why": "x"}], id="claims-host"),
    pytest.param([{"phase": "instant", "side": "candidate", "away_s": -5, "last_seen": T0,
                   "why": "x"}], id="negative-away"),
    pytest.param([{"phase": "instant", "side": "candidate", "away_s": 1e308,
                   "last_seen": T0 + 9e9, "why": "x"}], id="huge-and-future"),
], )
def test_a_hostile_claim_is_a_finding_not_a_traceback(
        claims: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.aiq"
    _build(path, claims)
    verdict = verify_record(SessionRecord.load(path))
    assert verdict.valid, verdict.errors  # the log is whole; the claim is the app's
    (_, cand) = verdict.restarts
    assert cand["side"] == "candidate" and cand["problem"]
    assert cand["measured_s"] > 60  # measured on the host's clock all the same
    assert cli_main(["verify", str(path)]) == 0
    assert "[refused: " in capsys.readouterr().out
