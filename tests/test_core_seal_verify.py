"""Sealing and offline verification of a whole session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from core_factories import build_session

from assessiq.core.errors import AssessIQError, RecordError
from assessiq.core.identity import Identity
from assessiq.core.record import SessionRecord
from assessiq.core.seal import compute_manifest, open_seal, seal
from assessiq.core.store import SessionStore
from assessiq.core.verify import verify_record

JSON_KEYS = {"valid", "events", "errors", "warnings", "flags", "score", "explanation"}


def test_sealed_session_verifies_with_its_findings(tmp_path: Path) -> None:
    built = build_session(tmp_path / "s.aiq", seed=3)
    verdict = verify_record(built.record, expected_host=built.host.fingerprint)
    assert verdict.valid, verdict.errors
    assert verdict.events == len(built.envelopes) == 15
    assert verdict.host == built.host.fingerprint
    assert verdict.candidate == built.device.fingerprint
    out = verdict.to_json()
    assert set(out) >= JSON_KEYS and json.loads(json.dumps(out)) == out
    assert out["score"] == 93  # tab.hidden 10.5 s, one paste, gaze.away 8 s
    assert {e["kind"] for e in out["explanation"]} == {"tab.hidden", "paste", "gaze.away"}
    assert out["gaps"] == []
    # the manifest in the seal is what the record's content hashes to
    manifest, reason = open_seal(built.record.seal or b"", built.host.public_key)
    assert reason is None and manifest is not None
    assert {k: v for k, v in manifest.items() if k != "sealed_at"} == compute_manifest(
        built.record)
    # the file is fully compacted
    store = SessionStore.open(built.path)
    assert store.hot_count() == 0
    store.close()


def test_only_the_sessions_host_can_seal(tmp_path: Path) -> None:
    built = build_session(tmp_path / "u.aiq", seed=4, sealed=False)
    store = SessionStore.open(built.path)
    with pytest.raises(AssessIQError, match="host key"):
        seal(store, Identity.generate())
    store.close()


def test_unsealed_session_is_not_valid(tmp_path: Path) -> None:
    built = build_session(tmp_path / "u.aiq", seed=4, sealed=False)
    verdict = verify_record(built.record)
    assert not verdict.valid and any("not sealed" in e for e in verdict.errors)
    assert verdict.events == 15  # still checked and scored
    assert verdict.evaluation is not None


def test_truncation_is_named(tmp_path: Path) -> None:
    built = build_session(tmp_path / "t.aiq", seed=6)
    rec = built.record
    rec.envelopes = rec.envelopes[:-3]
    errors = verify_record(rec).errors
    assert any("truncated after sealing (15 sealed, 12 present)" in e for e in errors)
    assert any("host receipted event 14 but the log ends at 11" in e for e in errors)


def test_wrong_expected_host(tmp_path: Path) -> None:
    built = build_session(tmp_path / "w.aiq", seed=7)
    other = Identity.generate().fingerprint
    verdict = verify_record(built.record, expected_host=other)
    assert not verdict.valid and any(other in e for e in verdict.errors)


def test_missing_keys_and_session(tmp_path: Path) -> None:
    built = build_session(tmp_path / "k.aiq", seed=8)
    for key, words in (("device_key", "no pinned candidate device key"),
                       ("host_key", "no valid host key"), ("session", "no session id")):
        rec = SessionRecord.load(built.path)
        del rec.meta[key]
        errors = verify_record(rec).errors
        assert any(words in e for e in errors), (key, errors)


def test_bad_policy_in_the_record(tmp_path: Path) -> None:
    built = build_session(tmp_path / "p.aiq", seed=9)
    rec = built.record
    rec.meta["policy"] = "version = 7"
    verdict = verify_record(rec)
    assert not verdict.valid and any("policy is invalid" in e for e in verdict.errors)


def test_unreadable_files_raise_record_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.aiq"
    junk.write_bytes(b"\x00garbage" * 500)
    for path in (junk, tmp_path / "missing.aiq", tmp_path):
        with pytest.raises(RecordError) as exc:
            SessionRecord.load(path)
        assert "\n" not in str(exc.value)


def test_verifying_never_changes_the_file(tmp_path: Path) -> None:
    built = build_session(tmp_path / "r.aiq", seed=10)
    before = built.path.read_bytes()
    verify_record(SessionRecord.load(built.path))
    assert built.path.read_bytes() == before



def test_editing_the_schema_key_after_sealing_is_detected(tmp_path):
    built = build_session(tmp_path / "s.aiq", seed=9)
    record = SessionRecord.load(built.path)
    assert verify_record(record).valid
    record.meta["schema"] = 2
    verdict = verify_record(record)
    assert not verdict.valid
    assert any("metadata" in e for e in verdict.errors)
