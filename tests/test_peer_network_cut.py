"""A 40 s network cut between two network namespaces while both sides type.

The host (and the signaling server) run in one namespace, the candidate in another, joined by
a veth pair with 10.203.x.y addresses that exist only inside those namespaces. The link is cut
with iptables DROP rules inside the candidate's namespace for 40 s, then restored. The session
must reconnect by itself, and afterwards both documents must hold every keystroke and the host
must have verified every integrity event (three are signed during the cut).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CUT_SECONDS = 40.0
TYPING_SECONDS = 52.0


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


@pytest.fixture
def namespaces():
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces (ip netns)")
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs the `{tool}` tool")
    tag = secrets.token_hex(3)
    ns_h, ns_c = f"aiq-h-{tag}", f"aiq-c-{tag}"
    veth_h, veth_c = f"vh{tag}", f"vc{tag}"
    subnet = 1 + int(tag, 16) % 250
    addr_h, addr_c = f"10.203.{subnet}.1", f"10.203.{subnet}.2"
    try:
        sh("ip", "netns", "add", ns_h)
        sh("ip", "netns", "add", ns_c)
        # The veth pair is created directly inside the namespaces: never in the root one.
        sh("ip", "-n", ns_h, "link", "add", veth_h, "type", "veth", "peer", "name", veth_c,
           "netns", ns_c)
        sh("ip", "-n", ns_h, "addr", "add", f"{addr_h}/24", "dev", veth_h)
        sh("ip", "-n", ns_c, "addr", "add", f"{addr_c}/24", "dev", veth_c)
        for ns, dev in ((ns_h, veth_h), (ns_c, veth_c)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        probe = sh("ip", "netns", "exec", ns_c, "iptables", "-L", "-n", check=False)
        if probe.returncode != 0:
            pytest.skip(f"iptables does not work in a namespace here: {probe.stderr.strip()}")
        yield {"ns_h": ns_h, "ns_c": ns_c, "veth_c": veth_c, "addr_h": addr_h}
    finally:
        for ns in (ns_h, ns_c):
            sh("ip", "netns", "del", ns, check=False)


def cut(ns: dict[str, str], on: bool) -> None:
    op = "-A" if on else "-D"
    for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
        sh("ip", "netns", "exec", ns["ns_c"], "iptables", op, chain, flag, ns["veth_c"],
           "-j", "DROP")


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size):
        assert proc.poll() is None, "the process died early"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def test_forty_second_cut_reconnects_and_loses_nothing(namespaces, tmp_path):
    ns = namespaces
    env = {**os.environ, "ASSESSIQ_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    py = sys.executable
    port = "18765"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns["ns_h"], py, "-m", "signaling", "--host", ns["addr_h"],
             "--port", port, "--log-level", "WARNING"], env=env)
        procs.append(server)
        time.sleep(1.0)
        invite = tmp_path / "invite.txt"
        common = ["--seconds", str(TYPING_SECONDS), "--connect-timeout", "60"]
        host_err = open(tmp_path / "host.err", "wb")  # noqa: SIM115
        cand_err = open(tmp_path / "cand.err", "wb")  # noqa: SIM115
        host = subprocess.Popen(
            ["ip", "netns", "exec", ns["ns_h"], py, "-m", "assessiq.peer.scripted", "host",
             "--signaling", f"ws://{ns['addr_h']}:{port}", "--invite-out", str(invite),
             "--out", str(tmp_path / "s.aiq"), "--result", str(tmp_path / "host.json"),
             *common], env=env, stderr=host_err)
        procs.append(host)
        wait_for(invite, host, 30)
        cand = subprocess.Popen(
            ["ip", "netns", "exec", ns["ns_c"], py, "-m", "assessiq.peer.scripted", "candidate",
             "--invite-file", str(invite), "--result", str(tmp_path / "cand.json"), *common],
            env=env, stderr=cand_err)
        procs.append(cand)
        deadline = time.monotonic() + 60
        while b"link up #1" not in (tmp_path / "cand.err").read_bytes():
            assert time.monotonic() < deadline and cand.poll() is None, "never connected"
            time.sleep(0.1)
        time.sleep(3.0)  # type a little while connected
        cut(ns, True)
        cut_at = time.time()
        time.sleep(CUT_SECONDS)
        cut(ns, False)
        restored_at = time.time()
        assert host.wait(timeout=180) == 0, (tmp_path / "host.err").read_text()
        assert cand.wait(timeout=60) == 0, (tmp_path / "cand.err").read_text()
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()

    log = (tmp_path / "cand.err").read_text()
    downs = [float(t) for t in re.findall(r"link down at ([\d.]+)", log)]
    ups = [(int(n), float(t)) for n, t in re.findall(r"link up #(\d+) at ([\d.]+)", log)]
    assert any(cut_at < t < restored_at for t in downs), "the cut was never detected"
    after = [t for n, t in ups if n >= 2 and t > restored_at]
    assert after, f"no reconnection after the network came back:\n{log}"
    reconnect_s = after[0] - restored_at
    print(f"reconnected {reconnect_s:.2f} s after the network returned")
    assert reconnect_s < 10, f"reconnect took {reconnect_s:.1f} s"  # measured: 0.8 s

    h = json.loads((tmp_path / "host.json").read_text())
    c = json.loads((tmp_path / "cand.json").read_text())
    assert h["converged"] and h["code"] == c["code"]
    # every keystroke of both sides is in both documents
    assert len(h["code"]) == h["typed"] + c["typed"] + len("# host\n# candidate\n")
    assert h["events"] == c["events"] == 3 and c["unreceipted"] == 0
    verify = subprocess.run([sys.executable, "-m", "assessiq", "verify", str(tmp_path / "s.aiq")],
                            capture_output=True, text=True, env=env, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
