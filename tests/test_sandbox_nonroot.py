"""The local backend as a normal laptop user runs it: not root, so no setpriv, and bubblewrap
creating its user namespace unprivileged.

CI runs as root, so the hostile subset runs in a child process started with
`setpriv --reuid=nobody` (as the test user itself when the tests are not root), through
tests/sandbox_fixtures/nonroot_runner.py, which plants a private file, an environment secret and
a 127.0.0.1 listener as that user and reports each case and the host's state as JSON. Nobody
can read neither the venv's interpreter nor the checkout on every machine, so the child uses an
interpreter that user can run and a copy of `sandbox` (standard library only) in a temporary
directory it can read.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.isolation import tool

RUNNER = Path(__file__).parent / "sandbox_fixtures" / "nonroot_runner.py"
SANDBOX = Path(__file__).parent.parent / "sandbox"
ROOT = os.geteuid() == 0
SECRET = "nonroot-secret-5e1b"
MARKER = "27.1828"

pytestmark = pytest.mark.skipif(tool("bwrap") is None, reason="bubblewrap is not installed")


def _as_user() -> list[str]:
    """The prefix that runs a command as the unprivileged test user."""
    if not ROOT:
        return []
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no `nobody` user to run the non-root path as")
    setpriv = tool("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is missing")
    return [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]


@pytest.fixture(scope="module")
def place() -> Iterator[tuple[str, Path]]:
    """(an interpreter the test user can run, a directory it can read holding the runner and
    a copy of `sandbox`)."""
    base = Path(tempfile.mkdtemp(prefix="assessiq-nonroot-", dir="/tmp"))
    try:
        shutil.copytree(SANDBOX, base / "sandbox",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(RUNNER, base / "nonroot_runner.py")
        for path in [base, *base.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        probe = "import sys, sandbox; assert sys.version_info >= (3, 11)"
        for python in dict.fromkeys(["/usr/bin/python3", sys.executable]):
            done = subprocess.run([*_as_user(), python, "-c", probe], env=_env(base),
                                  capture_output=True, timeout=60, cwd=base)
            if done.returncode == 0:
                yield python, base
                return
        pytest.skip("no Python >= 3.11 the unprivileged user may run (the venv's may sit "
                    "under a private home)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _env(base: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "PYTHONPATH": str(base),
            "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}


def _run(place: tuple[str, Path], mode: str, prefix: list[str]) -> list[dict[str, Any]]:
    python, base = place
    done = subprocess.run([*prefix, python, str(base / "nonroot_runner.py"), mode],
                          env=_env(base), capture_output=True, text=True, timeout=240,
                          cwd=base)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _marker_processes() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if MARKER.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(entry)
            except OSError:
                pass
    return found


@pytest.mark.timeout(300)
def test_hostile_subset_is_contained_without_root(place: tuple[str, Path]) -> None:
    lines = _run(place, "containment", _as_user())
    header, cases = lines[0], {line["case"]: line for line in lines[1:]}
    # The non-root code path: not root, so no setpriv; bubblewrap all the same.
    assert header["euid"] != 0 and header["backend_root"] is False
    assert header["setpriv"] is None and header["isolation"] == "bwrap"
    assert len(cases) == 11, sorted(cases)
    for name, line in cases.items():
        assert not line["accepted"], f"{name}: the host's listener took a connection"
        assert line["secret_intact"], f"{name}: the user's private file changed"
        assert line["leftovers"] == [], f"{name}: processes left running"
        assert SECRET not in line["result"]["run"]["output"], name

    def run(name: str) -> dict[str, Any]:
        result: dict[str, Any] = cases[name]["result"]["run"]
        return result

    assert run("read_user_file")["stdout"].count("blocked") == 2, run("read_user_file")
    assert "blocked" in run("write_user_file")["stdout"], run("write_user_file")
    assert "WROTE" not in run("write_user_file")["stdout"]
    assert "refused" in run("connect_listener")["stdout"], run("connect_listener")
    assert run("only_loopback")["stdout"] == "['lo']\n", run("only_loopback")
    fork = run("fork_bomb")
    assert fork["status"] is None and "fork refused after" in fork["stdout"], fork
    for name in ("infinite_loop", "sleep_forever"):
        assert run(name)["status"] == "TO" and run(name)["signal"] == "SIGKILL", run(name)
    assert run("sleep_forever")["message"] == "Time limit exceeded (wall clock)"
    assert run("processes_left_running")["stdout"] == "daemons started\n"
    assert "NONROOT_TEST_SECRET" not in run("host_env")["stdout"], run("host_env")
    snoop = run("proc_and_signals")
    assert "pids 1\n" in snoop["stdout"] and "blocked" in snoop["stdout"], snoop
    privileges = run("privileges")["stdout"]
    assert "NoNewPrivs:\\t1" in privileges and "CapEff:\\t0000000000000000" in privileges
    assert _marker_processes() == []


@pytest.mark.skipif(not ROOT, reason="building the no-user-namespace machine needs root")
@pytest.mark.timeout(120)
def test_no_user_namespaces_gives_a_clear_message(place: tuple[str, Path]) -> None:
    [line] = _run(place, "no-userns", [])
    assert line["euid"] != 0
    message = line["refused"]
    assert message is not None, "bubblewrap ran although user namespaces were off"
    assert message.startswith("bubblewrap cannot create a sandbox here")
    assert "max_*_namespaces exceeded" in message  # bubblewrap's own reason, passed on
    assert "user.max_user_namespaces" in message and "\n" not in message


CROWD_MARKER = "31.4159"


def _kill_crowd() -> None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if CROWD_MARKER.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    os.kill(int(entry), 9)
            except OSError:
                pass


@pytest.mark.timeout(180)
def test_a_user_with_many_processes_can_still_run_and_is_still_protected(
        place: tuple[str, Path]) -> None:
    """A desktop user has hundreds of processes; the process limit must count only the
    sandbox's own (it is set inside bubblewrap's user namespace), so hello world runs and a
    fork bomb is still stopped at the limit, without touching the user's other processes."""
    try:
        [line] = _run(place, "crowded", _as_user())
    finally:
        _kill_crowd()
    assert line["euid"] != 0
    assert line["tasks_before"] > 100  # more than the sandbox's limit of 64, as on a desktop
    hello = line["hello"]
    assert "error" not in hello, hello.get("error", hello)
    assert hello["run"]["stdout"] == "hello\n" and hello["run"]["status"] is None, hello
    bomb = line["fork_bomb"]
    assert "error" not in bomb, bomb
    out = bomb["run"]["stdout"]
    assert bomb["run"]["status"] is None and "fork refused after" in out, bomb
    # Stopped by the sandbox's own limit (pid 1 plus 63 children), not by the user's.
    assert int(out.split()[3]) <= 64, out
    spawn = line["fallback_spawn"]["run"]  # the fallback: the user's count + 64
    assert spawn["stdout"] == "child\n\n" and spawn["status"] is None, spawn
    assert line["sleepers_alive"] == 100 and line["can_start"] is True, line
    # The bomb's 63 children are gone (the runner's own worker threads may add a few tasks).
    assert line["tasks_after"] <= line["tasks_before"] + 8, line
