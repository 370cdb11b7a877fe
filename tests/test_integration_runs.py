"""Code runs inside the real peer session: the candidate asks over `control`, the host runs the
current shared code in the real local sandbox, results land in both documents; refusals
(oversized, rate-limited) come back as `run.refused`; hidden results stay in the host store."""

from __future__ import annotations

import pytest

from assessiq.core.identity import Identity
from assessiq.core.policy import Policy, default_policy_text
from assessiq.peer import Candidate, Host
from assessiq.runs import RunLimits, RunRefused
from sandbox import LocalBackend
from sandbox.testcases import TestCase
from tests.peer_helpers import FAST, eventually, signaling_server

SUM = "a, b = map(int, input().split())\nprint(a + b)\n"

def result_of(session: Host | Candidate, run_id: str) -> dict | None:
    return next((r["result"] for r in session.doc.runs() if r["run_id"] == run_id), None)


async def test_candidate_runs_over_control(tmp_path):
    limits = RunLimits(max_source_bytes=2048, burst=1, per_minute=0.5, run_timeout_ms=3000)
    hidden = [TestCase("hidden-large", "1000000 2345678", "3345678\n", hidden=True)]
    policy = Policy.from_toml(default_policy_text() + "\n# this session's own policy\n")
    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "h.aiq", run_backend=LocalBackend(),
                                hidden_tests=hidden, run_limits=limits, policy=policy)
        assert host.store.meta()["policy"] == policy.text  # verify scores with exactly it
        cand = await Candidate.join(host.invite.encode(), config=FAST,
                                    session_path=tmp_path / "c.aiq")
        try:
            assert host.runs is not None
            host.runs.set_public_tests([{"name": "one", "stdin": "1 2", "expected": "3\n"}])
            host.doc.set_language("python", origin="host")
            # The candidate types the answer and asks at once: the host waits for the code.
            cand.doc.set_code(SUM, origin="candidate")
            ticket = await cand.request_run()
            await eventually(lambda: ticket.state == "accepted", what="run accepted")
            assert ticket.run_id is not None
            run_id = ticket.run_id
            await eventually(lambda: result_of(cand, run_id) is not None, timeout=30,
                             what="the result in the candidate's document")
            for side in (host, cand):
                result = result_of(side, run_id)
                assert result is not None
                assert [(t["name"], t["passed"]) for t in result["tests"]] == [("one", True)]
                [run] = [r for r in side.doc.runs() if r["run_id"] == run_id]
                assert run["by"] == "candidate" and run["source"] == SUM
                # Hidden tests never reach the shared document, on either side.
                assert "hidden-large" not in side.doc.snapshot_json()
            [hidden_row] = host.store.private("hidden_results")
            assert hidden_row["value"]["run_id"] == run_id
            assert [t["passed"] for t in hidden_row["value"]["tests"]] == [True]
            [sealed] = host.store.runs()
            assert sealed["result"]["verdict"] == "passed"
            assert sealed["request"]["files"][0]["content"] == SUM

            # Oversized source: refused with the reason, shown to the candidate.
            cand.doc.set_code("x = 1\n" * 500, origin="candidate")
            big = await cand.request_run()
            await eventually(lambda: big.state == "refused", what="oversized refused")
            assert "limited to 2 KiB" in big.reason

            # Too many runs: the second real run within the minute is rate-limited.
            cand.doc.set_code(SUM, origin="candidate")
            again = await cand.request_run()
            await eventually(lambda: again.state == "refused", what="rate limited")
            assert "too many runs" in again.reason
            assert cand.run_refusals == [big.reason, again.reason]

            # An unknown language is refused too, and the interviewer's own Run still works
            # (the same service, its own allowance).
            odd = await cand.request_run("cobol")
            await eventually(lambda: odd.state == "refused", what="language refused")
            assert "cobol" in odd.reason
            own = host.run_code()
            await eventually(lambda: result_of(cand, own) is not None, timeout=30,
                             what="the host's run in the candidate's document")
            assert [r["by"] for r in host.doc.runs()] == ["candidate", "host"]
            assert [r["id"] for r in host.store.runs()] == [run_id, own]
        finally:
            await cand.close()
            await host.close()


ECHO = "import sys\nprint(*sys.stdin.read().split(), sep='|')\n"


async def test_a_console_run_takes_the_persons_input_and_a_modified_app_cannot_abuse_it(
        tmp_path):
    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "h.aiq", run_backend=LocalBackend())
        cand = await Candidate.join(host.invite.encode(), config=FAST,
                                    session_path=tmp_path / "c.aiq")
        try:
            await host.connected(10)
            assert host.runs is not None
            host.doc.set_language("python", origin="host")
            cand.doc.set_code(ECHO, origin="candidate")
            ticket = await cand.request_run(stdin="héllo 世界")
            await eventually(lambda: ticket.state == "accepted", what="console run accepted")
            assert ticket.run_id is not None
            run_id = ticket.run_id
            await eventually(lambda: result_of(cand, run_id) is not None, timeout=30,
                             what="the console run's result")
            for side in (host, cand):
                [run] = [r for r in side.doc.runs() if r["run_id"] == run_id]
                assert run["stdin"] == "héllo 世界"
                assert run["result"]["run"]["stdout"] == "héllo|世界\n"
            [sealed] = host.store.runs()  # the record keeps what the program was given
            assert sealed["request"]["stdin"] == "héllo 世界"
            # the interviewer's console run: the same service, the same record
            own = host.run_code(stdin="x")
            await eventually(lambda: result_of(cand, own) is not None, timeout=30,
                             what="the host's console run")
            assert result_of(cand, own)["run"]["stdout"] == "x\n"

            # An honest app refuses a too-long input itself, before sending anything.
            long_input = "é" * 1500  # 3,000 bytes: over MAX_CONSOLE_STDIN, under 4 KiB
            local = await cand.request_run(stdin=long_input)
            assert local.state == "refused" and "limited to 2048 bytes" in local.reason
            # Quotes, backslashes and line breaks are escaped on the way: counted so, and an
            # honest app says so instead of failing to send; nor does it send broken text.
            quotes = await cand.request_run(stdin='"' * 1500)
            assert quotes.state == "refused" and "count two" in quotes.reason
            broken = await cand.request_run(stdin="ok \ud800")
            assert broken.state == "refused" and "not valid text" in broken.reason
            with pytest.raises(RunRefused, match="not valid text"):  # the interviewer's own
                host.run_code(stdin="\ud800")
            # A modified app sends it anyway (it fits in a control message): refused by the
            # host, with the reason, and recorded; the session goes on.
            before = host.refused_total
            await cand.send_control("run.stdin", id="forged1", language="python",
                                    sha="0" * 16, stdin=long_input)
            # (at the limit, any text fits a control message: 1024 two-byte characters)
            at_limit = await cand.request_run(stdin="é" * 1024)
            await eventually(lambda: at_limit.state == "accepted", what="input at the limit")
            await eventually(lambda: host.refused_total > before, what="the refusal")
            assert "console run's input is limited" in host.refused[-1]["reason"]
            # ... and a run.stdin without its input, or with a number for it: not a message
            await cand.send_control("run.request", id="plain1", language="python",
                                    sha="0" * 16)  # (honest, for contrast: accepted)
            raw = b'{"t":"run.stdin","id":"forged2","language":"python","sha":"00","stdin":5}'
            assert cand.link is not None
            await cand.link.conn.channels["control"].send(raw)
            await eventually(lambda: host.refused_total > before + 1, what="the bad type")
            lone = b'{"t":"run.stdin","id":"forged3","language":"python","sha":"00",' \
                   b'"stdin":"\\ud800"}'
            await cand.link.conn.channels["control"].send(lone)
            await eventually(lambda: host.refused_total > before + 2, what="the lone surrogate")
            assert "not valid text" in host.refused[-1]["reason"]
            cand.doc.set_code(ECHO + "# still syncing\n", origin="candidate")
            await eventually(lambda: host.doc.code_text == cand.doc.code_text,
                             what="the session goes on")
            # the two console runs, the one at the limit and the honest request
            await eventually(lambda: len(host.store.runs()) == 4, what="the runs recorded")
        finally:
            await cand.close()
            await host.close()
