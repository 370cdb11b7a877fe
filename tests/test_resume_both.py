"""Both apps die (issue 15), as real processes over real data channels: the host's and the
candidate's apps SIGKILLed one after the other — the host first, then the candidate while the
host is down, and the reverse — and both started again; and a kill during a big paste. Both
documents converge with every acknowledged edit of both sides; the sealed record verifies,
shows every restart, and its score counts the time away by the policy's [resume] rule.

The session's policy is the default one on a shorter time scale: `[heartbeats] max_gap` 3 s
(not 20) and `[resume] reconnect` 3 s (not 30), so that the seconds these tests are down
would each be a heartbeat gap if the [resume] rule did not cover them (the candidate's app
beats every 0.4 s, as its page does every few seconds). The rest of [resume] is the default:
the host's downtime never costs the candidate, the candidate's first restart back within
120 s is free, its second costs `weight` (2 points), and nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from assessiq.core.document import SharedDoc
from assessiq.core.policy import Policy, default_policy_text
from assessiq.core.record import SessionRecord
from assessiq.core.resume import RESUMED
from tests.peer_helpers import signaling_server
from tests.resume_helpers import Child, converged, missing, paste_text
from tests.test_resume_record_policy import T0, _beats, _evaluate, _resumed

MAX_GAP = 3.0
RECONNECT = 3.0
BEAT = 0.4


def short_gap_policy(folder: Path) -> Path:
    """The default policy with max_gap and reconnect 3 s, in a file for the host's child."""
    text = default_policy_text()
    short = text.replace("max_gap = 20.0", f"max_gap = {MAX_GAP}").replace(
        "reconnect = 30.0", f"reconnect = {RECONNECT}")
    policy = Policy.from_toml(short)
    assert policy.heartbeats.max_gap == MAX_GAP and policy.resume.reconnect == RECONNECT
    path = folder / "policy.toml"
    path.write_text(short)
    return path


def verify_json(sealed: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "assessiq", "verify", "--json", sealed],
                         capture_output=True, text=True, timeout=60)
    verdict: dict[str, Any] = json.loads(out.stdout)
    assert out.returncode == 0 and verdict["valid"], verdict["errors"]
    return verdict


def test_the_candidate_dead_first_then_the_host_counts_only_its_own_time_once() -> None:
    # (the policy's own numbers) the candidate's app dies at 100 s; the host's at 130 s and is
    # back at 200 s; the candidate's is back at 205 s: its own 35 s are its restart's time
    # away — free, the first within 120 s — and not also a heartbeat gap; the host's 70 s
    # down cost nothing. (It was a gap: the silence, cut where the host went down, ended
    # more than max_gap before the restart arrived, so the restart did not close it.)
    plan = [*_beats(0, 100), _resumed(205, 105, last_seen=100), *_beats(206, 700)]
    ev = _evaluate(plan, end=700, host_restarts=[[T0 + 130.0, T0 + 200.0]])
    assert ev.gaps == [] and ev.score == 100
    host, cand = ev.restarts
    assert (host.side, host.away, host.penalty) == ("host", 70.0, 0.0)
    assert cand.side == "candidate" and 34 < cand.away < 36 and cand.penalty == 0
    # the same without the host's restart: one silence, closed, free
    alone = _evaluate(plan, end=700)
    assert alone.gaps == [] and alone.score == 100 and alone.restarts[0].away > 100


async def _start_host(url: str | None, path: Path, data: Path, policy: Path) -> Child:
    args = ["--path", str(path)]
    args += ["--resume"] if url is None else ["--signaling", url, "--policy", str(policy)]
    return await Child.start("host", *args, data_dir=data)


async def _start_candidate(invite: str, data: Path) -> Child:
    return await Child.start("candidate", "--invite", invite, "--beats", str(BEAT),
                             data_dir=data)


async def test_both_killed_one_after_the_other_in_either_order_converge_and_score_by_policy(
        tmp_path: Path):
    host_data, cand_data = tmp_path / "host-data", tmp_path / "cand-data"
    host_data.mkdir()
    path = host_data / "both.aiq"
    policy = short_gap_policy(tmp_path)
    host_acked: dict[int, int] = {}
    cand_acked: dict[int, int] = {}
    async with signaling_server() as url:
        host = await _start_host(url, path, host_data, policy)
        cand: Child | None = None
        try:
            invite = (await host.expect("ready"))["invite"]
            cand = await _start_candidate(invite, cand_data)
            await cand.expect("ready")
            await host.expect("link", up=True)

            # A. the host dies mid-typing; the candidate types on alone (its notes and beats
            # wait in its outbox), then dies too while the host is down
            await host.send("type", gen=0, every=0.02)
            await cand.send("type", gen=0, every=0.02)
            await asyncio.sleep(0.6)
            host_acked[0] = host.acked
            await host.kill()
            await asyncio.sleep(1.5)
            cand_acked[0] = cand.acked
            await cand.kill()
            await asyncio.sleep(2.0)  # both down
            host = await _start_host(None, path, host_data, policy)
            assert not missing((await host.expect("ready"))["code"], "H", 0, host_acked[0])
            cand = await _start_candidate(invite, cand_data)
            again = await cand.expect("ready")
            assert again["resumed"] and again["away_s"] > 1.5
            assert not missing(again["code"], "C", 0, cand_acked[0])  # from its own file
            await host.expect("link", up=True)
            await host.send("type", gen=1, every=0.02)
            await cand.send("type", gen=1, every=0.02)
            await asyncio.sleep(RECONNECT + 0.5)  # (past the host's reconnect allowance)

            # B. the candidate dies mid-typing and stays down longer than max_gap; the host
            # types on alone, then dies too; the candidate's app is started again first (it
            # waits for the host), then the host's
            cand_acked[1] = cand.acked
            await cand.kill()
            await asyncio.sleep(MAX_GAP + 1.0)
            host_acked[1] = host.acked
            await host.kill()
            cand = await _start_candidate(invite, cand_data)
            await asyncio.sleep(MAX_GAP + 0.5)  # the host down longer than max_gap too
            host = await _start_host(None, path, host_data, policy)
            assert not missing((await host.expect("ready"))["code"], "H", 1, host_acked[1])
            again = await cand.expect("ready")
            assert again["resumed"] and again["away_s"] > MAX_GAP  # (its claim, at its start)
            assert not missing(again["code"], "C", 1, cand_acked[1])
            await host.send("type", gen=2, every=0.02)
            await cand.send("type", gen=2, every=0.02)
            await asyncio.sleep(0.5)
            await host.ask("stop", "stopped")
            await cand.ask("stop", "stopped")
            host_acked[2], cand_acked[2] = host.acked, cand.acked

            h, _ = await converged(host, cand, timeout=30.0)
            for gen in range(3):
                assert not missing(h["code"], "H", gen, host_acked[gen]), gen
                assert not missing(h["code"], "C", gen, cand_acked[gen]), gen
            assert min(host_acked.values()) > 5 and min(cand_acked.values()) > 5
            sealed = (await host.ask("seal", "sealed"))["path"]
        finally:
            await host.close()
            if cand is not None:
                await cand.close()

    verdict = verify_json(sealed)
    record = SessionRecord.load(Path(sealed))
    assert verdict["events"] == h["events"]
    restarts = verdict["restarts"]
    assert [r["side"] for r in restarts] == ["host", "candidate", "host", "candidate"], restarts
    assert all(r["signed"] for r in restarts if r["side"] == "host")
    assert all(r["problem"] is None for r in restarts)
    cand_restarts = [r for r in restarts if r["side"] == "candidate"]
    # A: the candidate was gone only while the host was down: nothing of its own to count;
    # B: its own MAX_GAP + 1 s before the host died, counted once, by the [resume] rule
    assert cand_restarts[0]["measured_s"] < MAX_GAP, cand_restarts
    assert MAX_GAP < cand_restarts[1]["measured_s"] < 3 * MAX_GAP, cand_restarts
    assert [r["penalty"] for r in cand_restarts] == [0, 2]  # the first within 120 s is free
    assert verdict["gaps"] == []  # neither the host's downtime nor the candidate's is a gap
    penalties = {e["kind"]: e["penalty"] for e in verdict["explanation"] if "kind" in e}
    assert penalties == {RESUMED: 2, "host.resumed": 0}, verdict["explanation"]
    assert verdict["score"] == 98
    assert len(record.meta["host_restarts"]) == 2



PASTE = 300_000


async def type_on(child: Child, gen: int) -> None:
    """Start typing generation `gen` (`child.acked` then counts this generation's tokens)."""
    child.acked = -1
    await child.send("type", gen=gen, every=0.02)


def sealed_code(path: str) -> str:
    """The code in a sealed record's document, from its stored updates."""
    doc = SharedDoc()
    for row in SessionRecord.load(Path(path)).updates:
        doc.apply_update(row.data)
    return doc.code_text


async def test_a_kill_during_a_big_paste_on_either_side_loses_nothing_acknowledged(
        tmp_path: Path):
    """300 KB pasted in one update while both type; the writer SIGKILLed as soon as it
    reports the paste durable, or the other side then, mid-receive; the one killed started
    again: both converge with the paste and every acknowledged token."""
    host_data, cand_data = tmp_path / "host-data", tmp_path / "cand-data"
    host_data.mkdir()
    path = host_data / "paste.aiq"
    pasted: list[str] = []
    acked: dict[tuple[str, int], int] = {}
    async with signaling_server() as url:
        host = await Child.start("host", "--signaling", url, "--path", str(path),
                                 data_dir=host_data)
        cand: Child | None = None
        try:
            invite = (await host.expect("ready"))["invite"]
            cand = await _start_candidate(invite, cand_data)
            await cand.expect("ready")
            await host.expect("link", up=True)
            # (who pastes, who is killed as soon as the paste is durable in the writer's file)
            plan = [("C", "C"), ("H", "C"), ("H", "H"), ("C", "H")]
            for gen, (writer, killed) in enumerate(plan):
                await type_on(host, gen)
                await type_on(cand, gen)
                await asyncio.sleep(0.3)
                tag = f"P{gen}{writer}"
                await (host if writer == "H" else cand).send("paste", tag=tag, size=PASTE)
                await (host if writer == "H" else cand).expect("pasted", tag=tag)
                victim = host if killed == "H" else cand
                await victim.kill()
                acked[killed, gen] = victim.acked
                pasted.append(tag)
                if killed == "H":
                    host = await _start_host(None, path, host_data, Path())
                    code = (await host.expect("ready"))["code"]
                    await host.expect("link", up=True)
                    await cand.ask("stop", "stopped")
                    acked["C", gen] = cand.acked
                else:
                    cand = await _start_candidate(invite, cand_data)
                    code = (await cand.expect("ready"))["code"]
                    await host.ask("stop", "stopped")
                    acked["H", gen] = host.acked
                if writer == killed:  # from the writer's own file
                    assert paste_text(tag, PASTE) in code, tag
                assert not missing(code, killed, gen, acked[killed, gen])
                h, _ = await converged(host, cand, timeout=30.0)
                for done in pasted:
                    assert paste_text(done, PASTE) in h["code"], done
                for (side, g), n in acked.items():
                    assert not missing(h["code"], side, g, n), (side, g, n)
            sealed = (await host.ask("seal", "sealed"))["path"]
        finally:
            await host.close()
            if cand is not None:
                await cand.close()
    assert min(acked.values()) > 3
    verdict = verify_json(sealed)
    assert [r["side"] for r in verdict["restarts"]] == ["candidate", "candidate", "host", "host"]
    assert sealed_code(sealed) == h["code"]
