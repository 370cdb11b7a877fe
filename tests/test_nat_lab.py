"""The NAT lab leaves nothing behind (root only): a lab of a run that was killed hard is removed
by the next one, its processes with it, and the services started for a lab die with the
process that started them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests import natlab


@pytest.fixture
def root() -> None:
    reason = natlab.missing_prerequisite()
    if reason is not None:
        pytest.skip(reason)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by us) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_dead_runs_lab_is_removed_with_its_processes_and_a_live_ones_kept(root):
    stale = f"aiq-t-{dead_pid()}-abcd"
    ours = f"aiq-t-{os.getpid()}-abcd"
    made = []
    try:
        for ns in (stale, ours):
            natlab.sh("ip", "netns", "add", ns)
            made.append(ns)
        sleeper = subprocess.Popen(["ip", "netns", "exec", stale, "sleep", "60"])
        deadline = time.monotonic() + 10
        while str(sleeper.pid) not in subprocess.run(
                ["ip", "netns", "pids", stale], capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "the process never entered the namespace"
            time.sleep(0.02)
        removed = natlab.remove_stale_labs()
        assert stale in removed and ours not in removed
        names = os.listdir("/run/netns")
        assert stale not in names and ours in names
        sleeper.wait(10)  # killed, not left running in a deleted namespace
        assert sleeper.returncode == -9
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_a_service_dies_with_the_process_that_started_it(root, tmp_path):
    pid_file = tmp_path / "pid"
    parent = (
        "import os, subprocess, sys\n"
        "from tests.natlab import die_with_parent\n"
        "p = subprocess.Popen(die_with_parent(['sleep', '60']))\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        # Once setpriv has armed the signal and become `sleep` (as a service has long done
        # by the time it answers): a parent gone before that leaves nothing to notify.
        "while open(f'/proc/{p.pid}/comm').read().strip() != 'sleep': pass\n"
        "os._exit(0)\n"  # as if killed: no cleanup of any kind
    )
    subprocess.run([sys.executable, "-c", parent], check=True, timeout=30,
                   cwd=os.path.dirname(os.path.dirname(__file__)))
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, "the service outlived its parent"
        time.sleep(0.02)
