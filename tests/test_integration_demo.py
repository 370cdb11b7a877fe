"""`assessiq demo --headless` end to end: two processes, the real signaling server, real aiortc
with synthetic audio+video, the candidate's proctor on a planted timeline, runs in the local
sandbox; the sealed file verifies and holds proctor events, heartbeats, runs and call stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from assessiq.core.integrity import Envelope
from assessiq.core.record import SessionRecord
from assessiq.core.store import SessionStore


def test_headless_demo_with_proctor_runs_and_call(tmp_path):
    env = {**os.environ, "ASSESSIQ_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "demo.aiq"
    demo = subprocess.run([sys.executable, "-m", "assessiq", "demo", "--headless",
                           "--seconds", "4", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=180)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "Traceback" not in demo.stderr
    assert "[demo] proctoring events verified by the host: face.absent" in demo.stderr

    verify = subprocess.run([sys.executable, "-m", "assessiq", "verify", str(out), "--json"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    verdict = json.loads(verify.stdout)
    assert verdict["valid"] and not verdict["errors"]
    assert [f["kind"] for f in verdict["flags"]] == ["face.multiple"]
    assert {e["kind"] for e in verdict["explanation"]} >= {"face.absent", "face.multiple"}
    assert not verdict["gaps"]  # heartbeats all along
    # an honest session: nothing refused, every run's verdict follows from its record
    assert verdict["refusals"] == [] and verdict["refused"] == 0
    assert verdict["runs"] and all(run["ok"] for run in verdict["runs"])

    text = subprocess.run([sys.executable, "-m", "assessiq", "verify", str(out)],
                          capture_output=True, text=True, env=env, timeout=60).stdout
    assert "VALID" in text and "FLAG" in text and "face.multiple" in text

    record = SessionRecord.load(out)
    kinds = [Envelope.decode(raw).kind for _, raw in record.envelopes]
    assert kinds.count("face.absent") == 2 and kinds.count("face.multiple") == 2
    assert kinds.count("proctor.heartbeat") >= 2
    runs = sorted(record.runs, key=lambda r: r["t"])
    assert [r["request"]["by"] for r in runs] == ["candidate", "candidate", "host"]
    passed = [[t["passed"] for t in r["result"]["tests"]] for r in runs]
    assert passed[0] == [True, True]  # the correct answer
    assert passed[1].count(True) == 1  # the wrong one fails a public test
    assert runs[2]["result"]["run"]["status"] == "TO"  # the infinite loop is killed
    with SessionStore.open(out) as store:
        stats = [s["value"] for s in store.private("call_stats")]
        hidden = store.private("hidden_results")
    assert len(hidden) == 3
    assert max(s["video"]["frames_received"] for s in stats) > 30
    assert max(s["audio"]["frames_received"] for s in stats) > 50
    assert max(s["video"]["kbps_sent"] for s in stats) > 0
    assert max(s["video"]["fps_received"] for s in stats) > 5

    # the code's provenance: one function, the same answer in verify, the report, the replay
    # and the live view's computation from the session file's parts
    from assessiq.core.provenance import from_parts
    from assessiq.core.verify import verify_record
    from assessiq.room.replay import Replay
    from assessiq.room.report import render_markdown

    sealed = verify_record(record)
    assert sealed.provenance is not None and sealed.log is not None
    prov = sealed.provenance.to_json()
    assert prov == verdict["provenance"]
    assert prov["errors"] == [] and prov["conflicts"] == []
    # both typed; the candidate's last whole-code replacement (no paste event) is what is left
    assert set(prov["writers"].values()) == {"candidate", "interviewer"}
    assert prov["counts"] == {"candidate": {"burst": prov["chars"]}}
    assert Replay(record).verdict.provenance.to_json() == prov  # type: ignore[union-attr]
    live = from_parts(record.updates, record.meta, sealed.log.events, sealed.log.arrivals)
    assert live.to_json() == prov
    assert sealed.provenance.sentence()[1:] in render_markdown(record, sealed)
