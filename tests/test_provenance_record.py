"""Provenance from a sealed session file: `verify --json` reports it (the documented field),
the report and the replay show the same attribution as verify and as the live view computed
from the running session's own file, the starter is the editor's, and a policy may weigh it
(the default gives it weight 0)."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assessiq.core.document import SharedDoc
from assessiq.core.encoding import b64e
from assessiq.core.identity import Identity
from assessiq.core.integrity import EventSigner, LogVerifier, make_receipt
from assessiq.core.invite import make_invite
from assessiq.core.policy import default_policy_text
from assessiq.core.provenance import code_clock, generated_ranges, mark_generated
from assessiq.core.record import SessionRecord
from assessiq.core.seal import seal
from assessiq.core.store import SessionStore
from assessiq.core.verify import verify_record
from assessiq.room import provenance_report
from assessiq.room.provenance_report import LiveProvenance, live_provenance
from assessiq.room.replay import Replay
from assessiq.room.report import render_markdown, write_reports
from tests.provenance_traces import SOLUTION, Trace, lognormal, source_text, uniform


def _trace() -> Trace:
    """A session with every kind: the starter, honest typing with corrections, a paste
    with its event, a 400-character drop, an autotyper, and the interviewer's typing."""
    tr = Trace(seed=42)
    tr.starter("# Read the input, print the answer.\n")
    tr.move("candidate", len(tr.code))
    rng = random.Random(42)
    tr.type("candidate", "import sys\n\n", iki=lognormal(rng, 0.12, 0.45), typo=0.03)
    tr.wait(15)
    tr.paste("candidate", "def helper(a, b):\n    return a * b + 1\n")
    tr.wait(20)
    tr.paste("candidate", "".join(f"v{i} = {i} ** 2\n" for i in range(40))[:400], event=False)
    tr.wait(30)
    tr.type("candidate", source_text(SOLUTION), iki=uniform(rng, 0.025, 0.040))
    tr.move("interviewer", 0)
    tr.type("interviewer", "# interviewer: mind the empty input\n", iki=lognormal(rng, 0.2, 0.45))
    return tr


class Built:
    def __init__(self, path: Path, tr: Trace, live_json: dict[str, Any]) -> None:
        self.path, self.tr, self.live_json = path, tr, live_json
        self.record = SessionRecord.load(path)


def _write(path: Path, tr: Trace, policy: str) -> dict[str, Any]:
    """The trace through a real session store, with the candidate's paste events signed,
    verified and receipted as the host does, then sealed; returns the live view's
    provenance computed from the running store just before the seal."""
    host, device = Identity.generate(), Identity.generate()
    invite = make_invite(host, lan=True, label="provenance")
    store = SessionStore.create(path, {
        "session": invite.room, "host_key": b64e(host.public_key),
        "device_key": b64e(device.public_key), "created": tr.rows[0].t - 5,
        "policy": policy, "invite": invite.id, "role": "host",
        "generated_code": [{"what": "starter", "client": c, "from": a, "to": b}
                           for c, a, b in tr.generated]})
    signer, verifier = EventSigner(invite.room, device), LogVerifier(invite.room,
                                                                     device.public_key)
    events: list[Any] = []
    arrivals: list[float] = []
    pending = list(tr.pastes)
    view = LiveProvenance(store)  # the live page's, read every 25 updates as they come
    for n, row in enumerate(tr.rows):
        store.record_update(row.data, origin=row.origin, t=row.t)
        while pending and pending[0].t + 2 < row.t:  # each event lands after its text
            p = pending.pop(0)
            env = signer.sign("paste", {"phase": "instant", "chars": p.chars},
                              severity="warn", now=p.t - 0.02)
            accepted, _ = verifier.accept(env.encode())
            store.append_envelope(env.encode(), received_at=p.t)
            store.append_receipt(make_receipt(host, accepted, now=p.t).encode())
            events.append(accepted)
            arrivals.append(p.t)
        if n % 25 == 0:
            view.compute(events, arrivals)
    assert not pending
    live = view.compute(events, arrivals).to_json()
    assert live == live_provenance(store, events, arrivals).to_json()  # from the start
    threaded = LiveProvenance(store)  # all at once: analysed in a worker thread
    calls: list[Any] = []
    to_thread = asyncio.to_thread

    async def counted(fn: Any) -> Any:
        calls.append(fn)
        return await to_thread(fn)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(provenance_report, "OFF_LOOP_ROWS", len(tr.rows) // 2)
        mp.setattr(provenance_report.asyncio, "to_thread", counted)
        assert asyncio.run(threaded.compute_async(events, arrivals)).to_json() == live
    assert len(calls) == 1 and threaded._pending_rows == len(tr.rows)
    seal(store, host, now=tr.rows[-1].t + 1)
    store.close()
    return live


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tr = _trace()
    path = tmp_path_factory.mktemp("prov") / "s.aiq"
    return Built(path, tr, _write(path, tr, default_policy_text()))


def test_verify_json_reports_the_provenance_recomputed_from_the_sealed_record(
        built: Built) -> None:
    out = subprocess.run([sys.executable, "-m", "assessiq", "verify", "--json",
                          str(built.path)], capture_output=True, text=True, timeout=120)
    doc = json.loads(out.stdout)
    prov = doc["provenance"]
    assert doc["valid"], doc["errors"]
    assert prov["errors"] == [] and prov["chars"] == len(built.tr.code)
    assert set(prov) >= {"chars", "counts", "percent", "summary", "pastes", "bursts",
                         "transcriptions", "unmatched_pastes", "rhythm", "writers",
                         "conflicts", "errors", "segments"}
    assert [p["seq"] for p in prov["pastes"]] == [0]
    assert [b["chars"] for b in prov["bursts"]] == [400]
    assert len(prov["transcriptions"]) == 1
    assert prov["counts"]["editor"]["starter"] == len("# Read the input, print the answer.\n")
    assert prov["counts"]["interviewer"]["typed"] > 0
    # segments tile the final code
    segs = prov["segments"]
    assert segs[0][0] == 0 and segs[-1][1] == len(built.tr.code)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(segs))
    # the default policy gives it weight 0: nothing in the score's explanation
    assert all(e["kind"] != "provenance" for e in doc["explanation"])
    text = subprocess.run([sys.executable, "-m", "assessiq", "verify", str(built.path)],
                          capture_output=True, text=True, timeout=120).stdout
    assert "code      the candidate typed" in text and "one burst at" in text


def test_live_view_report_replay_and_verify_agree(built: Built, tmp_path: Path) -> None:
    verdict = verify_record(built.record)
    assert verdict.provenance is not None
    sealed = verdict.provenance.to_json()
    assert sealed == built.live_json  # the live page's view, from the running session file
    assert Replay(built.record).verdict.provenance.to_json() == sealed  # type: ignore[union-attr]
    assert verify_record(SessionRecord.load(built.path)).provenance.to_json() == sealed  # type: ignore[union-attr]
    md = render_markdown(built.record, verdict)
    assert "## Who wrote the code" in md and verdict.provenance.sentence()[1:] in md
    copy = tmp_path / "copy.aiq"
    built.record.write(copy)
    _, html_path = write_reports(built.record, verdict, copy)
    page = html_path.read_text(encoding="utf-8")
    assert 'data-prov="candidate-burst"' in page and 'data-prov="candidate-pasted"' in page
    assert 'data-prov="candidate-transcription"' in page
    assert 'data-prov="interviewer-typed"' in page and 'data-prov="editor-starter"' in page


def test_a_policy_may_weigh_provenance(tmp_path: Path) -> None:
    tr = _trace()
    policy = default_policy_text().replace("weight = 0\nmax_penalty = 20", "weight = 3\n"
                                           "max_penalty = 12")
    assert policy != default_policy_text()
    path = tmp_path / "w.aiq"
    _write(path, tr, policy)
    verdict = verify_record(SessionRecord.load(path))
    [item] = [e for e in verdict.to_json()["explanation"] if e["kind"] == "provenance"]
    assert item["penalty"] == 12  # burst + transcription are far over 40 %: capped
    assert verdict.evaluation is not None and verdict.evaluation.score <= 100 - 12


def test_the_hosts_starter_is_marked_as_the_editors(tmp_path: Path) -> None:
    store = SessionStore.create(tmp_path / "h.aiq", {"session": "s", "role": "host"})
    doc = SharedDoc()
    store.attach(doc, local_origin="host", remote_origin="candidate")
    before = code_clock(doc)
    doc.set_code("def solve():\n    pass\n", origin="host")
    mark_generated(store, doc, "starter", before)
    mark_generated(store, doc, "nothing new", code_clock(doc))  # writes nothing
    doc.insert_code(len(doc.code_text), "# typed by the interviewer\n", origin="host")
    assert generated_ranges(store.meta()) == [(doc.client_id, 0, len("def solve():\n    pass\n"))]
    prov = live_provenance(store, [])
    assert prov.counts["editor"] == {"starter": len("def solve():\n    pass\n")}
    assert "interviewer" in prov.counts
    store.close()
