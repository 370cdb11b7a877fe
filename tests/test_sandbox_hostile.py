"""Hostile programs against the local backend under bubblewrap: each contained, host unaffected.

Every case names the statuses it may end with and checks its own output; the `host_guard`
fixture then checks the host after every case: no process of a sandbox uid is left, the canary
files are intact, the planted key is unread. Programs only ever address 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox import LocalBackend, RunRequest, RunResult
from sandbox.isolation import tool
from sandbox.local import MAX_SLOTS, _uid_for

pytestmark = pytest.mark.skipif(tool("bwrap") is None, reason="bubblewrap is not installed")

SECRET = "assessiq-secret-7f3c9a"
KEY_MARKER = "FAKE-PRIVATE-KEY-91d2"
SLEEP_MARKER = "31.4159"
# The uids this test process's sandboxes run as (the sandbox derives them from our pid), so a
# concurrent test run elsewhere on the machine is never mistaken for a leak of ours.
OUR_UIDS = {_uid_for(slot) for slot in range(MAX_SLOTS)}


@dataclass
class Ctx:
    """What the test prepared on the host and a case's source may refer to."""

    home: Path
    canary: Path
    port: int
    udp_port: int
    sentinel_pid: int
    test_pid: int


@dataclass
class Case:
    name: str
    language: str
    source: Callable[[Ctx], str]
    statuses: set[str | None]
    check: Callable[[RunResult, Ctx], None] = lambda r, c: None
    # Wall ms. Programs that end by themselves once a limit bites get room to get there on a
    # loaded machine; the spinners keep 2 s so the wall-clock kill is exercised.
    timeout: int = 2000
    # CPU ms. The memory bombs get more: the kernel zeroing their pages counts as their CPU
    # time, and under memory pressure that alone passed 1 s (TO instead of the RE the
    # memory limit gives), failing CI once.
    cpu: int = 1000


def py(src: str) -> Callable[[Ctx], str]:
    return lambda ctx: src.format(ctx=ctx)


def expect_out(text: str) -> Callable[[RunResult, Ctx], None]:
    def check(result: RunResult, ctx: Ctx) -> None:
        assert text in result.run.stdout, result.run.to_dict()
    return check


def absent(*needles: str) -> Callable[[RunResult, Ctx], None]:
    def check(result: RunResult, ctx: Ctx) -> None:
        for needle in needles:
            assert needle not in result.run.output, result.run.to_dict()
    return check


def both(*checks: Callable[[RunResult, Ctx], None]) -> Callable[[RunResult, Ctx], None]:
    def check(result: RunResult, ctx: Ctx) -> None:
        for c in checks:
            c(result, ctx)
    return check


def _time_limit(result: RunResult, ctx: Ctx) -> None:
    assert result.run.signal == "SIGKILL"
    assert "Time limit" in (result.run.message or "")


def _output_capped(result: RunResult, ctx: Ctx) -> None:
    assert len(result.run.stdout.encode()) <= 64 * 1024
    assert result.run.message == "stdout length exceeded"


CASES = [
    Case("fork_bomb_python", "python", py(
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30); os._exit(0)\n"
        "        n += 1\n"
        "except OSError as e:\n"
        "    print('fork refused after', n, e.errno)\n"),
        {None}, expect_out("fork refused after"), timeout=6000),
    Case("fork_bomb_c", "c", py(
        "#include <unistd.h>\nint main(void){{ for(;;) fork(); }}\n"), {"TO"}, _time_limit),
    Case("infinite_loop", "python", py("while True:\n    pass\n"), {"TO"}, _time_limit),
    Case("sleep_forever", "python", py("import time\ntime.sleep(1000)\n"), {"TO"},
         both(_time_limit, lambda r, c: None)),
    Case("cpu_spin_threads", "c", py(
        "#include <pthread.h>\n"
        "static void *spin(void *a){{ volatile unsigned long x = 0; for(;;) x++; return a; }}\n"
        "int main(void){{ pthread_t t[4]; for(int i=0;i<4;i++) pthread_create(&t[i],0,spin,0);\n"
        "  pthread_join(t[0], 0); return 0; }}\n"), {"TO"}, _time_limit),
    Case("memory_bomb_bulk", "python", py("x = bytearray(3 * 1024 ** 3)\nprint('allocated')\n"),
         {"RE"}, lambda r, c: (None if "MemoryError" in r.run.stderr
                               else pytest.fail(r.run.stderr)), timeout=6000),
    Case("memory_bomb_gradual", "python", py(
        "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))\n"),
        {"RE"}, lambda r, c: (None if "MemoryError" in r.run.stderr
                              else pytest.fail(r.run.stderr)), timeout=6000, cpu=5000),
    Case("disk_fill_many_files", "python", py(
        "import os\nmb = 0\n"
        "try:\n"
        "    for i in range(10000):\n"
        "        with open(f'fill{{i}}', 'wb') as f:\n"
        "            for _ in range(8):\n"
        "                f.write(b'x' * 1024 * 1024); mb += 1\n"
        "except OSError as e:\n"
        "    print('stopped at', mb, 'MB', e.errno)\n"),
        {None}, lambda r, c: (None if int(r.run.stdout.split()[2]) <= 64
                              else pytest.fail(r.run.stdout)), timeout=6000),
    Case("disk_fill_one_file", "python", py(
        "with open('/tmp/big', 'wb') as f:\n"
        "    while True:\n"
        "        f.write(b'x' * 1024 * 1024)\n"), {"RE", "SG"}, timeout=6000),
    Case("output_100mb", "python", py(
        "import sys\nchunk = 'y' * (1024 * 1024)\n"
        "for _ in range(100):\n    sys.stdout.write(chunk)\n"), {"OL"}, _output_capped),
    Case("stderr_flood", "python", py(
        "import sys\nwhile True:\n    sys.stderr.write('e' * 65536)\n"), {"EL"},
        lambda r, c: None if r.run.message == "stderr length exceeded" else pytest.fail("")),
    Case("read_etc_shadow", "python", py(
        "import os\nfor p in ['/etc/shadow', '/etc/passwd', '/etc/sudoers']:\n"
        "    try:\n        print(open(p).read())\n"
        "    except OSError as e:\n        print('blocked', p, type(e).__name__)\n"),
        {None}, both(expect_out("blocked /etc/shadow"), absent("root:"))),
    Case("read_host_home_and_keys", "python", py(
        "import os, glob\n"
        "for p in ['{ctx.home}/.ssh/id_ed25519', '/root/.ssh/id_rsa']:\n"
        "    try:\n        print(open(p).read())\n"
        "    except OSError as e:\n        print('blocked', type(e).__name__)\n"
        "print(glob.glob('/home/*') + glob.glob('/root/*') + glob.glob('{ctx.home}/*'))\n"),
        {None}, both(expect_out("blocked"), absent(KEY_MARKER))),
    Case("write_outside_workdir", "python", py(
        "import os\nfor p in ['/usr/evil', '/etc/evil', '{ctx.canary}', '/evil', '/proc/evil']:\n"
        "    try:\n        open(p, 'w').write('pwned')\n        print('WROTE', p)\n"
        "    except OSError as e:\n        print('blocked', p, e.errno)\n"),
        {None}, absent("WROTE /usr", "WROTE /etc", "WROTE /evil", "WROTE /proc")),
    Case("connect_host_listener", "python", py(
        "import socket\ns = socket.socket()\ns.settimeout(1)\n"
        "try:\n    s.connect(('127.0.0.1', {ctx.port}))\n    print('CONNECTED')\n"
        "except OSError as e:\n    print('refused', e.errno)\n"),
        {None}, both(expect_out("refused"), absent("CONNECTED"))),
    Case("udp_to_host", "python", py(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n    s.sendto(b'leak', ('127.0.0.1', {ctx.udp_port}))\n    print('sent')\n"
        "except OSError as e:\n    print('blocked', e.errno)\n"), {None}),
    Case("only_loopback_interface", "python", py(
        "import socket\nprint(sorted(n for _, n in socket.if_nameindex()))\n"),
        {None}, expect_out("['lo']")),
    Case("raw_socket", "python", py(
        "import socket\ntry:\n    socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)\n"
        "    print('RAW OK')\nexcept OSError as e:\n    print('blocked', e.errno)\n"),
        {None}, both(expect_out("blocked"), absent("RAW OK"))),
    Case("symlink_tricks", "python", py(
        "import os\n"
        "for i, target in enumerate(['/etc/shadow', '{ctx.canary}', '/', '/proc/1/root',\n"
        "                            '..', '{ctx.home}']):\n"
        "    os.symlink(target, f'link{{i}}')\n"
        "os.symlink('/', 'a.out')\n"
        "os.makedirs('d/e'); os.symlink('{ctx.canary}', 'd/e/file0.code')\n"
        "try:\n    open('link1', 'w').write('pwned')\n"
        "except OSError as e:\n    print('blocked', e.errno)\n"
        "print('planted')\n"), {None}, expect_out("planted")),
    Case("hardlink_tricks", "python", py(
        "import os\n"
        "for i, target in enumerate(['/etc/passwd', '/usr/bin/python3', '{ctx.canary}']):\n"
        "    try:\n        os.link(target, f'hard{{i}}')\n        print('LINKED', target)\n"
        "    except OSError as e:\n        print('blocked', target, e.errno)\n"),
        {None}, absent("LINKED /etc", "LINKED /usr", "LINKED /")),
    Case("processes_left_running", "python", py(
        "import os, subprocess\n"
        "subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.execvp('sleep', ['sleep', '{marker}'])\n"
        "    os._exit(0)\n"
        "print('daemons started')\n".replace("{marker}", SLEEP_MARKER)),
        {None}, expect_out("daemons started")),
    Case("signals_at_parent", "python", py(
        "import os, signal\n"
        "print('ppid', os.getppid(), 'pid', os.getpid())\n"
        "for pid in [os.getppid(), {ctx.test_pid}, {ctx.sentinel_pid}, -1]:\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n        print('sent', pid)\n"
        "    except OSError as e:\n        print('blocked', pid, e.errno)\n"
        "print('done')\n"), {None}, expect_out("done")),
    Case("host_env_vars", "python", py(
        "import os\nprint(sorted(os.environ))\nprint(dict(os.environ))\n"),
        {None}, both(expect_out("PATH"), absent(SECRET, "ASSESSIQ_TEST_SECRET"))),
    Case("setuid_tricks", "python", py(
        "import os, subprocess\n"
        "print([l for l in open('/proc/self/status') if l.startswith(('NoNewPrivs', 'CapEff'))])\n"
        "try:\n    os.setuid(0)\n    print('ROOT')\nexcept OSError as e:\n"
        "    print('setuid blocked', e.errno)\n"
        "for b in ['/usr/bin/su', '/usr/bin/passwd', '/usr/bin/mount', '/usr/bin/newgrp']:\n"
        "    if os.path.exists(b):\n"
        "        r = subprocess.run([b, '--help'], capture_output=True)\n"
        "print('euid', os.geteuid())\n"
        "r = subprocess.run(['unshare', '-r', 'id', '-u'], capture_output=True, text=True)\n"
        "print('unshare', r.returncode, r.stdout.strip())\n"),
        {None}, both(expect_out("setuid blocked"), expect_out("NoNewPrivs:\\t1"),
                     expect_out("CapEff:\\t0000000000000000"), absent("ROOT", "unshare 0"))),
    Case("proc_snooping", "python", py(
        "import os\npids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "print('pids', len(pids))\n"
        "for p in pids:\n"
        "    try:\n        print(open(f'/proc/{{p}}/cmdline', 'rb').read())\n"
        "    except OSError:\n        pass\n"
        "try:\n    print(open('/proc/{ctx.test_pid}/environ', 'rb').read())\n"
        "except OSError as e:\n    print('blocked', e.errno)\n"),
        {None}, both(expect_out("pids 1\n"), absent(SLEEP_MARKER, SECRET))),
    Case("mount_and_devices", "python", py(
        "import os, subprocess\n"
        "r = subprocess.run(['mount', '-t', 'tmpfs', 'x', '/box'], capture_output=True)\n"
        "print('mount', r.returncode)\nprint(sorted(os.listdir('/dev')))\n"
        "for p in ['/dev/sda', '/dev/vda', '/dev/mem', '/dev/kmsg']:\n"
        "    try:\n        open(p, 'rb').read(1)\n        print('READ', p)\n"
        "    except OSError as e:\n        print('blocked', p, e.errno)\n"),
        {None}, both(absent("mount 0", "READ"))),
    Case("invalid_utf8_output", "python", py(
        "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 4)\n"), {None},
        lambda r, c: None if "\ufffd" in r.run.stdout else pytest.fail("no replacement")),
    Case("crash_segfault", "c", py(
        "int main(void){{ volatile int *p = 0; return *p; }}\n"), {"SG"},
        lambda r, c: None if r.run.signal == "SIGSEGV" else pytest.fail(str(r.run))),
    Case("compile_error_include_shadow", "c", py('#include "/etc/shadow"\nint main(){{}}\n'),
         {"RE"}, both(absent("root:"), lambda r, c: None if r.compile is not None
                      else pytest.fail("no compile stage"))),
]


@pytest.fixture(scope="module")
def backend() -> LocalBackend:
    return LocalBackend(isolation="bwrap", output_limit=64 * 1024)


def _sandbox_processes() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(ln.split(":", 1) for ln in status.splitlines() if ":" in ln)
        if fields["State"].strip().startswith("Z"):
            continue  # dead already; reaping orphans is the host init's job
        uid = int(fields["Uid"].split()[0])
        if uid in OUR_UIDS or SLEEP_MARKER.encode() in cmdline:
            found.append(f"{entry}: {cmdline!r}")
    return found


@pytest.fixture
def host(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(KEY_MARKER)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ASSESSIQ_TEST_SECRET", SECRET)
    canary = tmp_path / "canary.txt"
    canary.write_text("intact")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    sentinel = subprocess.Popen(["sleep", "300"])
    ctx = Ctx(home, canary, listener.getsockname()[1], udp.getsockname()[1], sentinel.pid,
              os.getpid())
    try:
        yield ctx
        # The host is unaffected:
        with pytest.raises(BlockingIOError):
            listener.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(100)
        assert sentinel.poll() is None, "the sentinel host process was killed"
        assert canary.read_text() == "intact"
        assert (home / ".ssh" / "id_ed25519").read_text() == KEY_MARKER
        assert _sandbox_processes() == []
    finally:
        sentinel.kill()
        sentinel.wait()
        listener.close()
        udp.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_hostile_program_is_contained(case: Case, backend: LocalBackend, host: Ctx):
    request = RunRequest.single(case.language, case.source(host), run_timeout=case.timeout,
                                run_cpu_time=case.cpu, run_memory_limit=256 * 1024 * 1024)
    result = await backend.run(request)
    assert result.run.status in case.statuses, result.run.to_dict()
    case.check(result, host)


async def test_hostile_suite_is_large_enough():
    assert len(CASES) >= 25


async def test_concurrent_hostile_runs_do_not_disturb_a_normal_one(backend: LocalBackend,
                                                                   host: Ctx):
    bomb = RunRequest.single("python", "while True: pass\n", run_timeout=2000,
                             run_cpu_time=1000)
    normal = RunRequest.single("python", "print(sum(range(10)))\n")
    results = await asyncio.gather(backend.run(bomb), backend.run(normal))
    assert results[0].run.status == "TO"
    assert results[1].run.stdout == "45\n" and results[1].run.ok
