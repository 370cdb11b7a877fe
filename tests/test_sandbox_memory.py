"""The local backend's `memory`: GNU time's peak RSS of the program, parsed without trust."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox import LocalBackend, RunRequest
from sandbox.isolation import GNU_TIME, gnu_time, parse_peak, tool
from sandbox.local import REPORT_FD

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent

needs_time = pytest.mark.skipif(gnu_time(GNU_TIME) is None,
                                reason="GNU time is not installed (Debian package `time`)")
needs_bwrap = pytest.mark.skipif(tool("bwrap") is None, reason="bubblewrap is not installed")
ISOLATIONS = [pytest.param("bwrap", marks=needs_bwrap), "fallback"]

# Touches every page, so the allocation is resident and not just reserved.
ALLOC_64 = "x = bytearray(64 * 1024 * 1024)\nx[::4096] = b'1' * len(x[::4096])\nprint('ok')\n"


@pytest.fixture(scope="module", params=ISOLATIONS)
def backend(request: pytest.FixtureRequest) -> LocalBackend:
    return LocalBackend(isolation=request.param)


@needs_time
async def test_64_mb_allocation_is_reported_below_the_limit(backend: LocalBackend) -> None:
    limit = 160 * MiB
    result = await backend.run(RunRequest.single("python", ALLOC_64, run_memory_limit=limit))
    assert result.run.stdout == "ok\n" and result.run.code == 0, result.run.to_dict()
    memory = result.run.memory
    assert memory is not None and 64 * MiB <= memory < limit, memory


@needs_time
async def test_hello_world_reports_much_less(backend: LocalBackend) -> None:
    result = await backend.run(RunRequest.single("python", "print('hello')\n"))
    assert result.run.stdout == "hello\n" and result.run.status is None
    memory = result.run.memory
    assert memory is not None and 1 * MiB < memory < 32 * MiB, memory


@needs_time
async def test_a_memory_bomb_keeps_its_status_and_reports_a_bounded_peak(
        backend: LocalBackend) -> None:
    # Grows until the address-space limit refuses it: the same RE/MemoryError as without
    # GNU time, and a peak of at most that limit (memory limit + Python's 256 MiB allowance).
    bomb = "chunks = []\nwhile True:\n    chunks.append(b'x' * (16 * 1024 * 1024))\n"
    limit = 128 * MiB
    result = await backend.run(RunRequest.single("python", bomb, run_memory_limit=limit,
                                                 run_timeout=10_000))
    assert result.run.status == "RE" and "MemoryError" in result.run.stderr, \
        result.run.to_dict()
    memory = result.run.memory
    assert memory is not None and limit <= memory <= limit + 256 * MiB, memory


FORGERIES = {
    "garbage": "os.write(FD, b'not a number at all\\n')",
    "two numbers": "os.write(FD, b'99999999\\n99999999\\n99999999\\n')",
    "far offset": "os.pwrite(FD, b'1\\n', 4096)",
    "huge": "os.write(FD, b'9' * 200000)",
    # 12 digits outlast GNU time's own line, so what it writes over them leaves a tail.
    "long number": "os.write(FD, b'999999999999')",
}


@needs_time
@pytest.mark.parametrize("how", list(FORGERIES))
async def test_forged_report_gives_null_and_changes_nothing_else(
        backend: LocalBackend, how: str) -> None:
    source = (f"import os\nFD = {REPORT_FD}\n{FORGERIES[how]}\nprint('done')\n"
              "raise SystemExit(3)\n")
    result = await backend.run(RunRequest.single("python", source))
    assert result.run.stdout == "done\n", result.run.to_dict()
    assert (result.run.status, result.run.code) == ("RE", 3)
    assert result.run.memory is None, result.run.memory


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("path", ["/nonexistent/time", "/bin/true"])
async def test_missing_or_other_time_gives_null_with_the_rest_unchanged(
        isolation: str, path: str) -> None:
    backend = LocalBackend(isolation=isolation, time_tool=path)  # type: ignore[arg-type]
    ok = await backend.run(RunRequest.single("python", "print(input())\n", stdin="hi"))
    assert ok.run.stdout == "hi\n" and ok.run.status is None and ok.run.memory is None
    assert ok.run.cpu_time is not None
    bad = await backend.run(RunRequest.single("python", "raise SystemExit(137)\n"))
    # 137 is read as SIGKILL only under bubblewrap (its 128 + N convention), exactly as
    # before GNU time; in the fallback without GNU time it stays an exit code.
    expected = ("SG", "SIGKILL", None) if isolation == "bwrap" else ("RE", None, 137)
    assert (bad.run.status, bad.run.signal, bad.run.code) == expected, bad.run.to_dict()
    assert bad.run.memory is None


@pytest.mark.parametrize(("report", "ceiling", "expected"), [
    (b"1024\n", 1 << 40, 1024 * 1024),
    (b"1024", 1 << 40, 1024 * 1024),
    (b"", 1 << 40, None),
    (b"\n", 1 << 40, None),
    (b"0\n", 1 << 40, None),
    (b"-5\n", 1 << 40, None),
    (b"12 34\n", 1 << 40, None),
    (b"12\n\n", 1 << 40, None),
    (b"12\n34\n", 1 << 40, None),
    (b"12\x00", 1 << 40, None),
    (b"1e9\n", 1 << 40, None),
    (b"\xff\xfe", 1 << 40, None),
    (b"9" * 13, 1 << 60, None),
    (b"2048\n", 2047 * 1024, None),
    (b"2048\n", 2048 * 1024, 2048 * 1024),
    (b"Command terminated by signal 9\n1520\n", 1 << 40, None),
])
def test_parse_peak_accepts_one_plausible_number_only(report: bytes, ceiling: int,
                                                      expected: int | None) -> None:
    assert parse_peak(report, ceiling) == expected


def _pids_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline == b"sleep\0" + marker.encode() + b"\0":
                found.append(int(entry))
    return found


@needs_bwrap
@needs_time
def test_the_sandbox_still_dies_with_the_host() -> None:
    # GNU time now stands between the host and bubblewrap (so --die-with-parent watches
    # GNU time); setpriv --pdeathsig must kill GNU time when the host dies.
    marker = f"{secrets.randbelow(10**6)}.{secrets.randbelow(10**6)}"
    host_code = (
        "import asyncio\nfrom sandbox import LocalBackend, RunRequest\n"
        "src = \"import os\\nos.execvp('sleep', ['sleep', '" + marker + "'])\\n\"\n"
        "asyncio.run(LocalBackend(isolation='bwrap').run(RunRequest.single("
        "'python', src, run_timeout=60000)))\n")
    host = subprocess.Popen([sys.executable, "-c", host_code], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _pids_with(marker):
            assert host.poll() is None, "the host ended before the sandbox started"
            assert time.monotonic() < deadline, "the sandboxed sleep never started"
            time.sleep(0.05)
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _pids_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _pids_with(marker), "the sandboxed program outlived its host"
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        for pid in _pids_with(marker):
            os.kill(pid, signal.SIGKILL)
