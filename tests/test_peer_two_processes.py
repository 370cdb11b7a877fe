"""Host and candidate as two processes on loopback: concurrent typing converges, events are
verified, and the sealed session file passes `assessiq verify`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from tests.peer_helpers import signaling_server


async def test_two_processes_type_concurrently_and_converge(tmp_path):
    env = {**os.environ, "ASSESSIQ_DATA_DIR": str(tmp_path / "data")}
    invite = tmp_path / "invite.txt"
    session = tmp_path / "session.aiq"
    common = ["--seconds", "3", "--loopback", "--connect-timeout", "60"]
    async with signaling_server() as url:
        host = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "assessiq.peer.scripted", "host", "--signaling", url,
            "--invite-out", str(invite), "--out", str(session),
            "--result", str(tmp_path / "host.json"), *common, env=env)
        for _ in range(600):
            if invite.exists() and invite.stat().st_size:
                break
            await asyncio.sleep(0.05)
        cand = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "assessiq.peer.scripted", "candidate",
            "--invite-file", str(invite), "--result", str(tmp_path / "cand.json"), *common,
            env=env)
        codes = await asyncio.wait_for(asyncio.gather(host.wait(), cand.wait()), 120)
    assert codes == [0, 0]
    h = json.loads((tmp_path / "host.json").read_text())
    c = json.loads((tmp_path / "cand.json").read_text())
    assert h["converged"] and h["code"] == c["code"]
    assert "# host" in h["code"] and "# candidate" in h["code"]
    assert h["typed"] > 5 and c["typed"] > 5
    assert len(h["code"]) == h["typed"] + c["typed"] + len("# host\n# candidate\n")
    assert h["events"] == c["events"] == 3 and c["unreceipted"] == 0
    verify = subprocess.run([sys.executable, "-m", "assessiq", "verify", str(session)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "VALID" in verify.stdout


def test_browser_demo_bad_input_is_one_line(tmp_path):
    for args, msg in ((["--out", str(tmp_path / "x.aiq")], "go with --headless"),
                      (["--seconds", "5"], "go with --headless"),
                      (["--port", "70000", "--no-browser"], "--port must be 1..65535")):
        out = subprocess.run([sys.executable, "-m", "assessiq", "demo", *args],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and msg in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_demo_bad_input_is_one_line(tmp_path):
    existing = tmp_path / "exists.aiq"
    existing.write_text("x")
    for args, msg in ((["--seconds", "0"], "between 1 and 3600"),
                      (["--out", str(existing)], "already exists"),
                      (["--out", str(tmp_path / "no" / "dir.aiq")], "does not exist")):
        out = subprocess.run([sys.executable, "-m", "assessiq", "demo", "--headless", *args],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and msg in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_scripted_candidate_without_its_invite_file_is_one_line(tmp_path):
    missing = tmp_path / "no-invite.txt"
    out = subprocess.run([sys.executable, "-m", "assessiq.peer.scripted", "candidate",
                          "--invite-file", str(missing), "--seconds", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    text = out.stdout + out.stderr
    assert "no-invite.txt" in text and "Traceback" not in text
