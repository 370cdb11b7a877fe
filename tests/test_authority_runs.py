"""Runs that prove themselves, tried as a modified candidate app would.

The candidate rewrites the public tests' expected outputs in the shared document so that wrong
code would pass, then asks the host to run the wrong code (and overwrites the result in its
document). The host grades against its own copy of the tests it set, so its sealed run, the
report and `verify` all say "failed" — whether or not the shared document's host-owned parts
are protected too. A verdict flipped in the session file afterwards is caught by the seal, and
(re-sealed with the host's own key) by `verify`'s recomputation alone.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycrdt
from hypothesis import given, settings
from hypothesis import strategies as st

from assessiq.core.identity import Identity
from assessiq.core.record import SessionRecord
from assessiq.core.runcheck import (
    case_passes,
    check_runs,
    hidden_test_record,
    normalize_output,
    output_digest,
    public_test_record,
    run_verdict,
    source_digest,
)
from assessiq.core.seal import seal
from assessiq.core.store import SessionStore
from assessiq.core.sync import STATE
from assessiq.core.verify import verify_record
from assessiq.peer import Candidate, Host
from assessiq.room.report import render_markdown
from sandbox import LocalBackend
from sandbox.testcases import TestCase, normalize
from tests.peer_helpers import FAST, eventually, signaling_server

PUBLIC = [{"name": "small", "stdin": "1 2", "expected": "3\n"},
          {"name": "negative", "stdin": "-5 2", "expected": "-3\n"}]
CORRECT = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"
WRONG = "import sys\nprint(sum(abs(int(x)) for x in sys.stdin.read().split()))\n"
# what WRONG prints: a modified app rewrites the expected outputs to match it
FORGED = [{"name": "small", "stdin": "1 2", "expected": "3\n"},
          {"name": "negative", "stdin": "-5 2", "expected": "7\n"}]
HIDDEN = [TestCase("hidden-big", "1000000 -2345678", "-1345678\n", hidden=True)]


def result_of(side: Host | Candidate, run_id: str) -> dict[str, Any] | None:
    return next((r["result"] for r in side.doc.runs() if r["run_id"] == run_id), None)


async def forge_state(cand: Candidate, write: Callable[[], None]) -> None:
    """The modified app: make `write` in its copy of the host-owned state and put the update
    on the `sync` channel itself (an honest app does not send it)."""
    state = cand.doc.part_doc("state")
    updates: list[bytes] = []
    sub = state.observe(lambda event: updates.append(event.update))
    try:
        write()
    finally:
        state.unobserve(sub)
    assert cand.link is not None and updates
    for update in updates:
        message = pycrdt.create_update_message(update)
        await cand.link.conn.channels["sync"].send(bytes((STATE,)) + message[1:])


@dataclass
class Sealed:
    path: Path
    host_key: Identity
    honest: str  # the run id of the correct code
    forged: str  # the run id of the wrong code run against forged tests
    shown_at: dict[str, float]  # each run's time as the live pages show it (the document)


async def _request(cand: Candidate, host: Host, code: str) -> str:
    cand.doc.set_code(code, origin="candidate")
    ticket = await cand.request_run("python")
    await eventually(lambda: ticket.state != "sent", what="the run answered")
    assert ticket.state == "accepted", ticket.reason
    assert ticket.run_id is not None and host.runs is not None
    await host.runs.wait(ticket.run_id)
    return ticket.run_id


async def _interview(tmp_path: Path) -> Sealed:
    """A session with one honest run and one run of wrong code against forged tests."""
    identity = Identity.generate()
    async with signaling_server() as url:
        host = await Host.start(identity=identity, signaling=url, config=FAST,
                                session_path=tmp_path / "h.aiq", run_backend=LocalBackend(),
                                hidden_tests=HIDDEN)
        cand = await Candidate.join(host.invite.encode(), config=FAST,
                                    session_path=tmp_path / "c.aiq")
        try:
            await host.connected(10)
            assert host.runs is not None
            host.runs.set_public_tests(PUBLIC)
            host.doc.set_language("python", origin="host")
            await eventually(lambda: cand.doc.public_tests() == PUBLIC,
                             what="the tests on the candidate's side")

            honest = await _request(cand, host, CORRECT)

            # The modified app rewrites the expected outputs in its copy of the shared
            # document (the update goes to the host like any edit), then asks for a run of
            # the wrong code. Whether the host takes the write into its document or refuses
            # it, the grading must not follow it.
            before = host.refused_total
            await forge_state(cand, lambda: cand.doc.set_public_tests(FORGED,
                                                                      origin="candidate"))
            await eventually(lambda: host.doc.public_tests() == FORGED or
                             host.refused_total > before, what="the forged tests reach the host")
            forged = await _request(cand, host, WRONG)
            await eventually(lambda: result_of(cand, forged) is not None,
                             what="the result on the candidate's side")

            # The host's result in its own document: graded by its own tests.
            result = result_of(host, forged)
            assert result is not None and result["verdict"] == "failed"
            assert [(t["name"], t["passed"]) for t in result["tests"]] == \
                [("small", True), ("negative", False)]
            # The modified app then overwrites the result in its document with a pass.
            before = host.refused_total
            await forge_state(cand, lambda: cand.doc.set_run_result(forged, {
                **result, "verdict": "passed",
                "tests": [{**t, "passed": True, "diff": ""} for t in result["tests"]]},
                origin="candidate"))
            await eventually(lambda: result_of(host, forged) != result or
                             host.refused_total > before, what="the forged result reaches "
                             "the host")
            # the honest session goes on: the code still syncs
            cand.doc.set_code(CORRECT + "# done\n", origin="candidate")
            await eventually(lambda: host.doc.code_text == cand.doc.code_text,
                             what="the code converges")
            shown_at = {r["run_id"]: r["at"] for r in host.doc.runs()}
            path = await host.end()
        finally:
            await cand.close()
            await host.close()
    return Sealed(path, identity, honest, forged, shown_at)


def _run_row(record: SessionRecord, run_id: str) -> dict[str, Any]:
    return next(r for r in record.runs if r["id"] == run_id)


async def test_forged_expected_outputs_never_pass_wrong_code(tmp_path):
    sealed = await _interview(tmp_path)
    record = SessionRecord.load(sealed.path)

    # The store: the sealed run of the wrong code failed, graded by the host's tests,
    # and records exactly what it was graded against.
    forged = _run_row(record, sealed.forged)
    assert forged["result"]["verdict"] == "failed"
    assert forged["request"]["files"][0]["content"] == WRONG
    assert forged["request"]["source_sha256"] == source_digest(WRONG)
    assert [(t["name"], t["stdin"], t["expected"], t["actual"], t["passed"])
            for t in forged["result"]["tests"]] == [
        ("small", "1 2", "3\n", "3\n", True), ("negative", "-5 2", "-3\n", "7\n", False)]
    assert [h["passed"] for h in forged["result"]["hidden"]] == [False]
    honest = _run_row(record, sealed.honest)
    assert honest["result"]["verdict"] == "passed"
    assert [h["passed"] for h in honest["result"]["hidden"]] == [True]
    # hidden tests are interviewer-only: the sealed runs keep their digests, not their text
    assert "1000000 -2345678" not in json.dumps(record.runs)
    assert "hidden-big" not in json.dumps(record.runs)

    # verify: valid, and every verdict follows from the record.
    verdict = verify_record(record, expected_host=sealed.host_key.fingerprint)
    assert verdict.valid, verdict.errors
    out = verdict.to_json()
    assert {r["id"]: (r["verdict"], r["ok"]) for r in out["runs"]} == {
        sealed.honest: ("passed", True), sealed.forged: ("failed", True)}
    assert out["refused"] >= 2  # the forged tests and the forged result, refused and sealed

    # The report says so too.
    report = render_markdown(record, verdict)
    assert "public tests 1/2 — **failed**" in report
    assert "public tests 2/2 — **passed**" in report
    assert "does not follow" not in report
    # ... naming each test, with the failed one's diff; the hidden results by test name and
    # by the run's time (not its opaque id); the run times the live pages showed; the date.
    failed = report.split("- **failed** `negative`\n", 1)[1]
    assert failed.startswith("```diff\n") and "-3" in failed.split("```\n", 1)[0]
    assert "- passed `small`" in report
    assert {r["id"]: r["t"] for r in record.runs} == sealed.shown_at
    stamp = {i: dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")
             for i, t in sealed.shown_at.items()}
    assert f"- run at {stamp[sealed.forged]} by candidate: 0/1 passed — `hidden-big` " \
           "**failed**" in report
    assert f"- run at {stamp[sealed.honest]} by candidate: 1/1 passed — `hidden-big` " \
           "passed" in report
    assert sealed.forged not in report and sealed.honest not in report
    day = dt.datetime.fromtimestamp(record.meta["created"], dt.UTC).strftime("%Y-%m-%d")
    assert f"- started: {day} " in report and "- sealed: " in report


async def test_a_flipped_verdict_is_caught_by_the_seal_and_by_the_recomputation(tmp_path):
    sealed = await _interview(tmp_path)

    # Flip the wrong code's verdict (and each test's) to a pass in the session file.
    db = sqlite3.connect(sealed.path)
    (raw,) = db.execute("SELECT result FROM runs WHERE id = ?", (sealed.forged,)).fetchone()
    result = json.loads(raw)
    result["verdict"] = "passed"
    for test in result["tests"]:
        test["passed"] = True
    db.execute("UPDATE runs SET result = ? WHERE id = ?", (json.dumps(result), sealed.forged))
    db.commit()
    db.close()
    verdict = verify_record(SessionRecord.load(sealed.path))
    assert not verdict.valid
    assert "the code runs was changed after sealing" in verdict.errors
    assert any("'negative' is recorded as passed but its recorded output does not pass" in e
               for e in verdict.errors), verdict.errors

    # Re-sealed with the host's own key, the seal matches: the recomputation alone catches it.
    db = sqlite3.connect(sealed.path)
    db.execute("DELETE FROM seal")
    db.commit()
    db.close()
    with SessionStore.open(sealed.path) as store:
        seal(store, sealed.host_key)
    verdict = verify_record(SessionRecord.load(sealed.path))
    assert not verdict.valid
    assert not any("sealing" in e for e in verdict.errors), verdict.errors
    assert any(f"run {sealed.forged}: its verdict is recorded as 'passed' but follows from its "
               f"tests as 'failed'" in e for e in verdict.errors), verdict.errors
    runs = {r["id"]: r for r in verdict.to_json()["runs"]}
    assert runs[sealed.forged]["ok"] is False and runs[sealed.honest]["ok"] is True
    assert "does not follow from what it recorded" in render_markdown(
        SessionRecord.load(sealed.path), verdict)


async def test_a_malformed_run_request_is_refused_and_recorded(tmp_path):
    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "h.aiq", run_backend=LocalBackend())
        cand = await Candidate.join(host.invite.encode(), config=FAST)
        try:
            await host.connected(10)
            assert await cand.send_control("run.request", id="../../etc passwd", sha="0" * 16,
                                           language="python")
            await eventually(lambda: host.refused_total > 0, what="the refusal")
            assert [(r["channel"], r["reason"]) for r in host.refused] == \
                [("control", "a run request with a malformed id")]
            honest = await _request(cand, host, CORRECT)  # the session goes on
            path = await host.end()
        finally:
            await cand.close()
            await host.close()
    verdict = verify_record(SessionRecord.load(path))
    assert verdict.valid, verdict.errors
    out = verdict.to_json()
    assert [r["reason"] for r in out["refusals"]] == ["a run request with a malformed id"]
    assert [(r["id"], r["ok"]) for r in out["runs"]] == [(honest, True)]


# --- the recomputation on its own (no peers) --------------------------------------------------
def _sealed_run(run_id: str = "r1", source: str = WRONG) -> dict[str, Any]:
    tests = [public_test_record(name=t["name"], stdin=t["stdin"], expected=t["expected"],
                                actual=actual, status=None, code=0)
             for t, actual in zip(PUBLIC, ["3\n", "7\n"], strict=True)]
    hidden = [hidden_test_record(stdin="1 1", expected="2\n", actual="2  \n\n", status=None,
                                 code=0),
              hidden_test_record(stdin="1 1", expected="2\n", actual="2\n", status="TO",
                                 code=None)]
    return {"id": run_id, "t": 1.0,
            "request": {"language": "python", "files": [{"content": source}],
                        "by": "candidate", "source_sha256": source_digest(source)},
            "result": {"language": "python", "version": "3", "run": {"stdout": ""},
                       "proof": 1, "verdict": run_verdict([t["passed"] for t in tests]),
                       "tests": tests, "hidden": hidden}}


def test_an_honest_record_checks_and_each_kind_of_inconsistency_is_named():
    run = _sealed_run()
    [check] = check_runs([run]).runs
    assert (check.verdict, check.ok, check.errors) == ("failed", True, [])
    assert [h["passed"] for h in run["result"]["hidden"]] == [True, False]

    def errors_after(edit) -> list[str]:
        broken = json.loads(json.dumps(run))
        edit(broken)
        return check_runs([broken]).errors

    def source(r):
        r["request"]["files"][0]["content"] = CORRECT

    def expected(r):
        r["result"]["tests"][1]["expected"] = "-4\n"  # still fails: the verdict follows
    assert any("does not match its digest" in e for e in errors_after(source))
    assert errors_after(expected) == []

    def actual(r):
        r["result"]["tests"][1]["actual"] = "-3\n"  # now it would pass
    assert any("'negative' is recorded as failed but its recorded output matches" in e
               for e in errors_after(actual))

    def hidden(r):
        r["result"]["hidden"][1]["passed"] = True  # timed out: cannot have passed
    assert any("hidden test #2 is recorded as passed" in e for e in errors_after(hidden))

    def no_digest(r):
        del r["request"]["source_sha256"]
    assert any("no source digest" in e for e in errors_after(no_digest))

    def exit_code(r):
        r["result"]["tests"][0]["code"] = 1  # the right output, but a crash
    assert any("'small' is recorded as passed" in e for e in errors_after(exit_code))


def test_runs_recorded_before_proofs_are_not_errors():
    old = {"id": "old", "t": 1.0, "request": {"language": "python"},
           "result": {"run": {"stdout": "ok"}, "tests": [{"name": "x", "passed": True}]}}
    checks = check_runs([old, {"id": "pending", "t": 2.0, "request": {}, "result": None}]).runs
    assert [(c.ok, c.errors) for c in checks] == [(None, []), (None, [])]
    assert check_runs([old]).errors == []


def test_the_comparison_is_the_sandboxs_judge_rule():
    """The host's verdicts and the sandbox's diffs use the same normalization."""
    for text in ["3\n", "3", "3  \n\n\n", "a\r\nb \r\n", "", "\n\n", " x\n y"]:
        assert normalize(text) == normalize_output(text)
    assert case_passes("3\n", "3   \n\n", status=None, code=0)
    assert not case_passes("3\n", "3\n", status="TO", code=None)
    assert not case_passes("3\n", "3\n", status=None, code=1)
    assert output_digest("3\n") == output_digest("3 \n\n")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "request", "result", "tests", "hidden", "proof", "verdict",
                         "passed", "name", "stdin", "expected", "actual", "status", "code",
                         "files", "content", "source_sha256", "case", "expected_digest",
                         "actual_digest", "error"]), inner, max_size=6),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(_json, max_size=3))
def test_any_tampered_runs_table_is_checked_without_raising(rows):
    result = check_runs(rows)
    assert all(isinstance(e, str) for e in result.errors)
    assert len(result.runs) == len(rows)
