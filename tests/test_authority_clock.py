"""The host's clock is the record's clock: a modified candidate app cannot choose it.

Each test is a host and a candidate in one process over the real signaling server and real
aiortc data channels. The adversary is the candidate's app with a few lines changed: it signs
envelopes with its own device key (`cand.device`, a copy of its signer's head) at times an
honest app never uses, and sends them on the integrity channel itself. Every attempt must be
refused (and the refusal sealed and reported by `verify --json`) or harmless, and the session
must go on. The last test is the honest side: a candidate whose clock is 40 s off is not
penalised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assessiq.cli import main as cli_main
from assessiq.core.integrity import Envelope, EventSigner
from assessiq.core.policy import Policy, default_policy_text
from assessiq.core.record import SessionRecord
from assessiq.core.score import evaluate
from assessiq.peer import Candidate, Host
from assessiq.peer.datachannel import DataChannelChannel
from tests.peer_helpers import FAST, eventually, joined_pair

MAX_GAP = 1.5
POLICY = Policy.from_toml(default_policy_text().replace("max_gap = 20.0", f"max_gap = {MAX_GAP}"))
SILENCE = 3.0  # seconds the candidate's app sends nothing: a gap under MAX_GAP on any clock


def clock_pair(tmp_path: Path, clock: Callable[[], float] = time.time
               ) -> contextlib.AbstractAsyncContextManager[tuple[str, Host, Candidate]]:
    return joined_pair(tmp_path, connect=False, policy=POLICY, runs=False,
                       session_path=tmp_path / "h.aiq",
                       candidate={"clock": clock, "session_path": tmp_path / "c.aiq"})


def channel(cand: Candidate) -> DataChannelChannel:
    assert cand.link is not None
    return cand.link.conn.channels["integrity"]


def fork(cand: Candidate, *, last_t: float | None = None) -> EventSigner:
    """A modified app's signer: the device key and the log's head, without moving the real
    signer (so the honest chain can go on after a refusal)."""
    s = cand.signer
    return EventSigner(s.session, cand.device, next_seq=s.next_seq, prev=s.prev,
                       last_t=s.last_t if last_t is None else last_t)


async def beats(host: Host, cand: Candidate, n: int) -> None:
    """`n` honest page heartbeats, sent and receipted."""
    for _ in range(n):
        await cand.send_event("browser.heartbeat")
    await eventually(lambda: not cand.outbox, what="receipts")


async def silence() -> tuple[float, float]:
    """The candidate's app sends nothing for `SILENCE` seconds; (from, to) on the host's clock."""
    quiet_from = time.time()
    await asyncio.sleep(SILENCE)
    return quiet_from, time.time()


async def refused(host: Host, n: int, words: str) -> str:
    await eventually(lambda: host.refused_total >= n, what=f"refusal {n}")
    reason = str(host.refused[-1]["reason"])
    assert words in reason, reason
    return reason


def sealed(path: Path, capsys: Any) -> dict[str, Any]:
    """`assessiq verify --json` on the sealed file."""
    capsys.readouterr()
    code = cli_main(["verify", str(path), "--json"])
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 0 and out["valid"], out["errors"]
    return out


def covered(gaps: list[dict[str, Any]], quiet: tuple[float, float], kind: str) -> bool:
    return any(g["kind"] == kind and g["start"] <= quiet[0] and g["end"] >= quiet[1]
               for g in gaps)


async def test_back_dated_heartbeats_after_a_silence_do_not_erase_the_gap(
        tmp_path: Path, capsys: Any) -> None:
    async with clock_pair(tmp_path) as (_, host, cand):
        await beats(host, cand, 3)
        quiet = await silence()
        # 25 heartbeats dated inside the silence, signed by the device key, sent at once
        last = cand.signer.last_t
        step = (quiet[1] - last) / 26
        forged: list[Envelope] = []
        for i in range(25):
            env = cand.signer.sign("browser.heartbeat", now=last + (i + 1) * step)
            cand.log.append(env)
            forged.append(env)
            await channel(cand).send(env.raw)
        await eventually(lambda: len(host.events) == 28, what="the back-dated heartbeats")
        await beats(host, cand, 2)  # the session goes on
        # on the signed times the silence is filled: this is the attack
        signed_view = evaluate(host.events, POLICY, start_t=host.events[0].t,
                               end_t=host.events[-1].t)
        assert not covered([{"kind": g.kind, "start": g.start, "end": g.end}
                            for g in signed_view.gaps], quiet, "browser.heartbeat")
        live = host.store.meta()
        path = await host.end()
    out = sealed(path, capsys)
    assert out["events"] == 30 and live["clock_bound"] == FAST.handshake_timeout + 20.0
    assert covered(out["gaps"], quiet, "browser.heartbeat"), out["gaps"]
    assert any(e["kind"] == "heartbeat.gap" for e in out["explanation"])


async def test_an_event_dated_a_day_ahead_is_refused_and_a_later_silence_still_shows(
        tmp_path: Path, capsys: Any) -> None:
    async with clock_pair(tmp_path) as (_, host, cand):
        await beats(host, cand, 2)
        hostile = fork(cand)
        ahead = hostile.sign("tab.hidden", {"phase": "start", "confidence": 1.0},
                             now=time.time() + 86_400)
        await channel(cand).send(ahead.raw)
        await refused(host, 1, "in the future of the host's clock")
        # a hostile app that goes on from the refused event is refused as a gap
        await channel(cand).send(hostile.sign("browser.heartbeat", now=ahead.t + 1).raw)
        await refused(host, 2, "sequence gap")
        await beats(host, cand, 2)  # the honest chain and the link go on
        quiet = await silence()
        await beats(host, cand, 2)
        assert host.link is not None and not host.ended.is_set()
        path = await host.end()
    out = sealed(path, capsys)
    assert out["events"] == 6 and out["refused"] == 2
    reasons = [r["reason"] for r in out["refusals"]]
    assert any("in the future" in r for r in reasons), reasons
    assert all(r["channel"] == "integrity" for r in out["refusals"])
    assert covered(out["gaps"], quiet, "browser.heartbeat"), out["gaps"]
    assert not any(w["kind"] == "tab.hidden" for w in out["warnings"])


async def test_an_event_dated_before_the_session_is_refused(tmp_path: Path,
                                                            capsys: Any) -> None:
    async with clock_pair(tmp_path) as (_, host, cand):
        created = host.store.meta()["created"]
        early = fork(cand, last_t=0.0).sign("paste", {"phase": "instant", "chars": 4000},
                                            now=created - 3600)
        await channel(cand).send(early.raw)
        await refused(host, 1, "before the session began")
        await beats(host, cand, 2)
        await cand.send_event("paste", {"phase": "instant", "chars": 10})
        await eventually(lambda: not cand.outbox, what="receipts")
        path = await host.end()
    out = sealed(path, capsys)
    record = SessionRecord.load(path)
    assert out["events"] == 3 and out["refused"] == 1
    assert "before the session began" in out["refusals"][0]["reason"]
    assert all(t >= created for t, _ in record.envelopes)
    paste = [e for e in out["explanation"] if e["kind"] == "paste"]
    assert paste and paste[0]["occurrences"] == 1  # the back-dated one is not scored


async def test_a_condition_lasts_from_its_signed_start_to_its_signed_end(
        tmp_path: Path, capsys: Any) -> None:
    """A `face.absent` whose signed start and end are 60 s apart but whose free
    `data.duration` says 0.1 s lasted 60 s."""
    async with clock_pair(tmp_path) as (_, host, cand):
        now = cand.clock()
        began = {"phase": "start", "start": now - 60, "confidence": 1.0}
        ended = {"phase": "end", "start": now - 60, "end": now, "duration": 0.1,
                 "confidence": 1.0}
        await cand.send_event("face.absent", began, severity="warn")
        await cand.send_event("face.absent", ended)
        await beats(host, cand, 1)
        path = await host.end()
    out = sealed(path, capsys)
    (absent,) = [e for e in out["explanation"] if e["kind"] == "face.absent"]
    assert absent["occurrences"] == 1 and absent["seconds"] == 60.0
    (flag,) = [f for f in out["flags"] if f["kind"] == "face.absent"]
    assert flag["duration"] == 60.0 and "lasted 60 s" in flag["reason"]


async def test_an_honest_candidate_whose_clock_is_40_s_ahead_is_not_penalised(
        tmp_path: Path, capsys: Any) -> None:
    async with clock_pair(tmp_path, clock=lambda: time.time() + 40.0) as (_, host, cand):
        offset = host.clock_offset
        assert 38.0 < offset <= 40.0  # measured at join: the hello's way costs a little
        await beats(host, cand, 2)
        hidden_at = time.time()
        await cand.send_event("tab.hidden", {"phase": "start", "start": cand.clock(),
                                             "confidence": 1.0}, severity="warn")
        for _ in range(8):  # heartbeats under the policy's gap while the tab is hidden
            await asyncio.sleep(0.5)
            await beats(host, cand, 1)
        assert host.refused_total == 0 and not cand.outbox
        path = await host.end()
        sealed_at = time.time()
    out = sealed(path, capsys)
    assert out["refused"] == 0 and out["events"] == 11
    # a condition still open at the end lasts until the host's end, on the host's clock
    # (read on the candidate's clock it would have lasted 40 s less: nothing); the hello's
    # way (40 - offset) is the only error
    (hidden,) = [e for e in out["explanation"] if e["kind"] == "tab.hidden"]
    assert hidden["occurrences"] == 1
    assert 4.0 - (40.0 - offset) - 0.06 <= hidden["seconds"] <= sealed_at - hidden_at + 0.06
    # the heartbeats, 40 s "in the future" on the signed times, are on time on the host's
    first = SessionRecord.load(path).envelopes[0][0]
    assert not [g for g in out["gaps"] if g["start"] >= first], out["gaps"]
