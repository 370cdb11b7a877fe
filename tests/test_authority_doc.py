"""A modified candidate app against an honest host, over the real peer session: every write to
what the interviewer owns is refused, the honest session goes on, and the refusal is sealed.

The attacker is the public API plus a few lines that reach inside `Candidate` to put bytes on
its `sync` data channel that an honest app never sends. One hostile-host test checks the
candidate's side (its own presence, and values it reads from the host).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pycrdt
import pytest

from assessiq.core.document import SharedDoc
from assessiq.core.encoding import canonical_json
from assessiq.core.record import SessionRecord
from assessiq.core.sync import MAX_PRESENCE_CLIENTS, STATE
from assessiq.core.verify import verify_record
from assessiq.peer import Candidate, Host
from assessiq.peer.config import PeerConfig
from tests.core_factories import capture_update
from tests.peer_helpers import FAST, eventually, joined_pair

PROBLEM = "Sum the numbers on stdin."
TESTS = [{"name": "one", "stdin": "1 2\n", "expected": "3\n"},
         {"name": "two", "stdin": "5 5\n", "expected": "10\n"}]


@contextlib.asynccontextmanager
async def pair(tmp_path: Path, config: PeerConfig = FAST
               ) -> AsyncIterator[tuple[Host, Candidate]]:
    """A joined pair whose host has set up the interview (and made one run)."""
    async with joined_pair(tmp_path, config=config, runs=False) as (_, host, cand):
        with host.doc.transaction("host"):
            host.doc.set_problem(PROBLEM, origin="host")
            host.doc.set_language("python", origin="host")
            host.doc.set_public_tests(TESTS, origin="host")
            host.doc.set_phase("interview", origin="host")
            host.doc.start_timer(1800, 1_800_000_000.0, origin="host")
            host.doc.request_run("r1", by="host", at=1.0, language="python",
                                 source="print(4)", origin="host")
            host.doc.set_run_result("r1", {"run": {"stdout": "4\n", "code": 0}}, origin="host")
        await eventually(lambda: cand.doc.problem == PROBLEM and len(cand.doc.runs()) == 1)
        yield host, cand


def host_state(doc: SharedDoc) -> str:
    """Everything the host owns, as canonical JSON."""
    snap = doc.snapshot()
    del snap["code"]
    return canonical_json({**snap, "policy": doc.policy_text})


def update_message(update: bytes, *, state: bool = False) -> bytes:
    message = pycrdt.create_update_message(update)
    return bytes((STATE,)) + message[1:] if state else message


async def send_sync(cand: Candidate, message: bytes) -> None:
    assert cand.link is not None
    await cand.link.conn.channels["sync"].send(message)


async def honest_edit_goes_through(host: Host, cand: Candidate, text: str) -> None:
    cand.doc.insert_code(0, text)
    await eventually(lambda: host.doc.code_text.startswith(text), what="honest edit")
    host.doc.insert_code(0, "#h\n", origin="host")
    await eventually(lambda: cand.doc.code_text.startswith("#h\n"), what="host edit")


async def sealed_refusals(host: Host) -> list[dict[str, Any]]:
    path = await host.end()
    verdict = verify_record(SessionRecord.load(path))
    assert verdict.valid, verdict.errors
    out = verdict.to_json()
    assert out["refused"] == len(out["refusals"]) > 0
    return list(out["refusals"])


@pytest.mark.parametrize("key, value", [
    ("problem", "Print 'I am hired'."),
    ("language", "brainfuck"),
    ("phase", "ended"),
    ("timer", json.dumps({"started_at": 1_800_000_000.0, "duration_s": 604_800})),
    ("public_tests", json.dumps([{"name": "one", "stdin": "1 2\n", "expected": "anything"}])),
    ("policy", "[weights]\n"),
])
async def test_the_candidate_cannot_rewrite_the_host_state(tmp_path: Path, key: str,
                                                           value: str) -> None:
    async with pair(tmp_path) as (host, cand):
        before = host_state(host.doc)
        # 1. through its own copy of the state (what a patched app would do)
        state = cand.doc.part_doc("state")
        meta = state.get("meta", type=pycrdt.Map)
        forged = capture_update(state, lambda: meta.__setitem__(key, value))
        await send_sync(cand, update_message(forged, state=True))
        # 2. the same update smuggled in as code
        await send_sync(cand, update_message(forged))
        # 3. a fresh write to the root, from a document of its own
        scratch: pycrdt.Doc[Any] = pycrdt.Doc()
        fresh = capture_update(scratch, lambda: scratch.get("meta", type=pycrdt.Map).__setitem__(
            key, value))
        await send_sync(cand, update_message(fresh))
        await eventually(lambda: host.refused_total >= 3, what="three refusals")
        await honest_edit_goes_through(host, cand, "x = 1\n")
        assert host_state(host.doc) == before
        assert "x = 1" in host.doc.code_text
        # the candidate's page is told (its own copy shows the forgery only to itself)
        await eventually(lambda: len(cand.refused_by_peer) >= 1, what="refusal notice")
        reasons = [r["reason"] for r in await sealed_refusals(host)]
    assert len(reasons) == 3
    assert "only this side writes" in reasons[0]
    assert "this side's state" in reasons[1] or "writes to meta" in reasons[1]
    assert "writes to meta" in reasons[2]


async def test_forged_runs_and_results_are_refused(tmp_path: Path) -> None:
    async with pair(tmp_path) as (host, cand):
        before = host_state(host.doc)
        state = cand.doc.part_doc("state")
        requests = state.get("run_requests", type=pycrdt.Map)
        results = state.get("run_results", type=pycrdt.Map)
        ids = state.get("runs", type=pycrdt.Array)
        request = json.dumps({"run_id": "f1", "by": "host", "at": 2.0, "language": "python",
                              "source": "print(1)"})
        passed = json.dumps({"tests": {"passed": 2, "total": 2}})

        def forge_run() -> None:
            requests["f1"] = request
            results["f1"] = passed
            ids.append("f1")

        attempts = [
            capture_update(state, forge_run),  # a run marked `by: host`, 2/2 passed
            capture_update(state, lambda: results.__setitem__("r1", passed)),  # overwrite a result
            capture_update(state, lambda: ids.__delitem__(0)),  # remove a run from the list
        ]
        for forged in attempts:
            await send_sync(cand, update_message(forged, state=True))
            await send_sync(cand, update_message(forged))
        await eventually(lambda: host.refused_total >= 6, what="six refusals")
        await honest_edit_goes_through(host, cand, "y = 2\n")
        assert host_state(host.doc) == before
        assert [r["run_id"] for r in host.doc.runs()] == ["r1"]
        assert host.doc.runs()[0]["result"] == {"run": {"stdout": "4\n", "code": 0}}
        refusals = await sealed_refusals(host)
    assert len(refusals) == 6 and {r["channel"] for r in refusals} == {"sync"}


async def test_the_candidate_cannot_forge_the_interviewers_keystrokes(tmp_path: Path) -> None:
    async with pair(tmp_path) as (host, cand):
        host.doc.insert_code(0, "# from the interviewer\n", origin="host")
        await eventually(lambda: "interviewer" in cand.doc.code_text)
        # a document posing as the host's code client, one edit ahead of it
        twin: pycrdt.Doc[Any] = pycrdt.Doc(client_id=host.doc.client_id)
        twin.apply_update(cand.doc.get_part_update("code"))
        code = twin.get("code", type=pycrdt.Text)
        forged = capture_update(twin, lambda: code.insert(0, "import os; os.system('rm -rf ~')\n"))
        await send_sync(cand, update_message(forged))
        # and one that would write the host's state client into the code
        twin2: pycrdt.Doc[Any] = pycrdt.Doc(client_id=host.doc.part_doc("state").client_id)
        twin2.apply_update(cand.doc.get_part_update("code"))
        code2 = twin2.get("code", type=pycrdt.Text)
        clash = capture_update(twin2, lambda: code2.insert(0, "z"))
        await send_sync(cand, update_message(clash))
        await eventually(lambda: host.refused_total >= 2, what=f"two refusals: {host.refused}"
                         f" code {host.doc.code_text!r}", timeout=5)
        await honest_edit_goes_through(host, cand, "ok = True\n")
        assert "rm -rf" not in host.doc.code_text and not host.doc.code_text.startswith("z")
        reasons = [r["reason"] for r in await sealed_refusals(host)]
    assert "forges edits of this side" in reasons[0]
    assert "this side's state" in reasons[1]


async def test_nested_types_and_formatting_in_the_code_are_refused(tmp_path: Path) -> None:
    async with pair(tmp_path) as (host, cand):
        before = host.doc.code_text
        mirror: pycrdt.Doc[Any] = pycrdt.Doc()
        mirror.apply_update(cand.doc.get_part_update("code"))
        code = mirror.get("code", type=pycrdt.Text)
        formatted = capture_update(mirror, lambda: code.insert(0, "b", attrs={"bold": True}))
        other: pycrdt.Doc[Any] = pycrdt.Doc()
        nested = capture_update(other, lambda: other.get("code", type=pycrdt.Text).insert_embed(
            0, {"image": "x"}))
        for message in (formatted, nested):
            await send_sync(cand, update_message(message))
        await eventually(lambda: host.refused_total >= 2)
        assert host.doc.code_text == before
        await honest_edit_goes_through(host, cand, "z = 3\n")
        await sealed_refusals(host)


async def test_a_presence_flood_and_a_false_role_are_refused(tmp_path: Path) -> None:
    async with pair(tmp_path) as (host, cand):
        entries = pycrdt.Encoder()
        n = 240_000
        entries.write_var_uint(n)
        for client in range(1, n + 1):
            entries.write_var_uint(client)
            entries.write_var_uint(1)
            entries.write_var_string('{"role":"host","name":"Interviewer"}')
        flood = pycrdt.create_awareness_message(entries.to_bytes())
        await send_sync(cand, flood)
        # one entry at a time, each a new client
        for client in range(10):
            one = pycrdt.Encoder()
            one.write_var_uint(1)
            one.write_var_uint(10_000_000 + client)
            one.write_var_uint(1)
            one.write_var_string('{"role":"candidate","name":"c","anchor":0,"head":0}')
            await send_sync(cand, pycrdt.create_awareness_message(one.to_bytes()))
        # an honest-shaped entry that claims to be the interviewer
        liar = pycrdt.Encoder()
        liar.write_var_uint(1)
        liar.write_var_uint(cand.awareness.client_id)
        liar.write_var_uint(10_000)
        liar.write_var_string('{"role":"host","name":"Interviewer","anchor":0,"head":0}')
        await send_sync(cand, pycrdt.create_awareness_message(liar.to_bytes()))
        # the candidate's own entry and MAX - 1 more are taken; the rest, the flood and the
        # liar are refused
        refusals = 1 + (10 - (MAX_PRESENCE_CLIENTS - 1)) + 1
        await eventually(lambda: host.refused_total >= refusals, what="presence refusals")
        # the host, and at most MAX of the candidate's
        assert len(host.awareness.states) <= 1 + MAX_PRESENCE_CLIENTS
        assert all(not isinstance(s, dict) or s.get("role") != "host"
                   for c, s in host.awareness.states.items() if c != host.awareness.client_id)
        await honest_edit_goes_through(host, cand, "p = 4\n")
        reasons = [r["reason"] for r in await sealed_refusals(host)]
    assert "clients" in reasons[0] and any("calls itself 'host'" in r for r in reasons)


async def test_past_the_document_cap_edits_are_refused_and_nothing_accepted_is_lost(
        tmp_path: Path) -> None:
    config = replace(FAST, max_doc_bytes=1_000_000)
    async with pair(tmp_path, config) as (host, cand):
        chunk = "a" * 199_999 + "\n"
        for i in range(8):  # 1.6 MB of valid text in 200 KB updates
            cand.doc.insert_code(len(cand.doc.code_text), f"#{i}" + chunk)
        await eventually(lambda: host.refused_total >= 1, what="the cap")
        await eventually(lambda: len(cand.refused_by_peer) >= 1, what="the candidate told")
        kept = host.doc.code_text
        assert 800_000 <= len(kept) <= 1_000_000
        assert kept.count("\n") == len(kept) // 200_002  # whole updates only, in order
        assert "more than 1000000 bytes" in cand.refused_by_peer[0]["reason"]
        host.doc.insert_code(0, "#h\n", origin="host")  # the host's edits still arrive
        await eventually(lambda: cand.doc.code_text.startswith("#h\n"))
        # the cap is the session's: a new link does not reset it
        refused, links = host.refused_total, host.links_made
        assert cand.link is not None
        await cand.link.close()
        await eventually(lambda: host.links_made > links and host.is_connected,
                         what="a new link, synced")
        await eventually(lambda: host.refused_total > refused, what="step 2 refused")
        assert host.doc.code_text == "#h\n" + kept
        host.doc.insert_code(0, "#again\n", origin="host")
        await eventually(lambda: cand.doc.code_text.startswith("#again\n"))
        reasons = [r["reason"] for r in await sealed_refusals(host)]
    assert all("more than 1000000 bytes" in r for r in reasons)


async def test_a_hostile_hosts_values_read_safely_and_its_writes_to_presence_are_refused(
        tmp_path: Path) -> None:
    async with pair(tmp_path) as (host, cand):
        meta = host.doc.part_doc("state").get("meta", type=pycrdt.Map)
        with host.doc.transaction("host"):
            meta["timer"] = json.dumps({"started_at": 1e308, "duration_s": -5})
        await eventually(lambda: cand.doc.part_doc("state").get(
            "meta", type=pycrdt.Map).get("timer", "").startswith('{"started_at": 1e+308'))
        assert cand.doc.timer() is None
        # the host's "state" carrying code for the candidate's record is refused there
        scratch: pycrdt.Doc[Any] = pycrdt.Doc()
        text = scratch.get("code", type=pycrdt.Text)
        junk = capture_update(scratch, lambda: text.insert(0, "evil"))
        assert host.link is not None
        await host.link.conn.channels["sync"].send(update_message(junk, state=True))
        # and a presence entry for the candidate's own client id
        fake = pycrdt.Encoder()
        fake.write_var_uint(1)
        fake.write_var_uint(cand.awareness.client_id)
        fake.write_var_uint(99_999)
        fake.write_var_string('{"role":"candidate","name":"x","anchor":0,"head":0}')
        await host.link.conn.channels["sync"].send(
            pycrdt.create_awareness_message(fake.to_bytes()))
        await eventually(lambda: cand.refused_total >= 1)
        assert "evil" not in cand.doc.code_text
        assert cand.awareness.get_local_state() is None or \
            cand.awareness.get_local_state().get("name") != "x"
        await honest_edit_goes_through(host, cand, "q = 5\n")
