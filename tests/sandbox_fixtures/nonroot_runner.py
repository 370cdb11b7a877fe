"""Runs hostile programs through the local backend as an unprivileged user; prints JSON lines.

Started by tests/test_sandbox_nonroot.py under `setpriv --reuid=nobody` (or as the test user when
the tests do not run as root), with only the standard library and a copy of `sandbox` on the
path. It plants what a laptop user has (a private file outside any workdir, an environment
secret, a listener on 127.0.0.1), runs each case, checks the host after each one, and prints
one JSON object per case for the test to judge. Programs only ever address 127.0.0.1.

    python nonroot_runner.py containment     # the hostile subset
    python nonroot_runner.py crowded         # the same user already has ~100 processes
    python nonroot_runner.py no-userns       # expects bubblewrap to be refused (see below)

`crowded` is a desktop user's situation: far more processes than the sandbox's process limit
(RLIMIT_NPROC counts every task of the real uid). It starts CROWD `sleep`s, then runs hello
world and a fork bomb under bubblewrap, a program starting one child in the weak fallback, and
reports whether the sleepers survived and the user can still start a process afterwards.

`no-userns`, started as root: a machine where an unprivileged user may not create user
namespaces. The runner forks a child into a new user namespace mapping only root and nobody,
sets `user.max_user_namespaces = 0` there (it applies to that namespace and those below it),
drops to nobody and re-executes itself; bubblewrap, run as nobody, is then refused by the
kernel exactly as on such a machine, and the sandbox's message is printed.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

from sandbox import BackendUnavailableError, LocalBackend, RunRequest, SandboxError

SECRET = "nonroot-secret-5e1b"
MARKER = "27.1828"

CASES = {
    "read_user_file": (
        "import os\n"
        "for p in ['{secret}', '{home}']:\n"
        "    try:\n"
        "        print(open(p).read() if os.path.isfile(p) else os.listdir(p))\n"
        "    except OSError as e:\n"
        "        print('blocked', type(e).__name__)\n"),
    "write_user_file": (
        "try:\n    open('{secret}', 'w').write('pwned')\n    print('WROTE')\n"
        "except OSError as e:\n    print('blocked', e.errno)\n"),
    "connect_listener": (
        "import socket\ns = socket.socket()\ns.settimeout(1)\n"
        "try:\n    s.connect(('127.0.0.1', {port}))\n    print('CONNECTED')\n"
        "except OSError as e:\n    print('refused', e.errno)\n"),
    "only_loopback": "import socket\nprint(sorted(n for _, n in socket.if_nameindex()))\n",
    "fork_bomb": (
        "import os, time\nn = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30); os._exit(0)\n"
        "        n += 1\n"
        "except OSError as e:\n"
        "    print('fork refused after', n, e.errno)\n"),
    "infinite_loop": "while True:\n    pass\n",
    "sleep_forever": "import time\ntime.sleep(1000)\n",
    "processes_left_running": (
        "import os, subprocess\n"
        "subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    os.execvp('sleep', ['sleep', '{marker}'])\n"
        "print('daemons started')\n"),
    "host_env": "import os\nprint(dict(os.environ))\n",
    "proc_and_signals": (
        "import os, signal\n"
        "print('pids', len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
        "try:\n    os.kill({runner}, signal.SIGKILL)\n    print('SENT')\n"
        "except OSError as e:\n    print('blocked', e.errno)\n"),
    "privileges": (
        "print([l.strip() for l in open('/proc/self/status')\n"
        "       if l.startswith(('NoNewPrivs', 'CapEff', 'Uid'))])\n"),
}


def _marker_processes() -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if MARKER.encode() in fh.read():
                        found.append(entry)
            except OSError:
                pass
    return found


async def containment() -> None:
    home = tempfile.mkdtemp(prefix="nonroot-home-")
    try:
        await _containment(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def _containment(home: str) -> None:
    secret = os.path.join(home, "id_ed25519")
    with open(secret, "w") as fh:
        fh.write(SECRET)
    os.chmod(secret, 0o600)
    os.environ["NONROOT_TEST_SECRET"] = SECRET
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    backend = LocalBackend(isolation="bwrap", output_limit=64 * 1024)
    print(json.dumps({"header": True, "euid": os.geteuid(), "backend_root": backend._root,
                      "setpriv": backend._setpriv, "isolation": backend.isolation}), flush=True)
    fill = {"secret": secret, "home": home, "port": listener.getsockname()[1],
            "marker": MARKER, "runner": os.getpid()}
    for name, template in CASES.items():
        source = template
        for key, value in fill.items():
            source = source.replace("{" + key + "}", str(value))
        request = RunRequest.single("python", source, run_timeout=2000, run_cpu_time=1000,
                                    run_memory_limit=256 * 1024 * 1024)
        result = await backend.run(request)
        try:
            listener.accept()
            accepted = True
        except BlockingIOError:
            accepted = False
        with open(secret) as fh:
            intact = fh.read() == SECRET
        print(json.dumps({"case": name, "result": result.to_dict(), "accepted": accepted,
                          "secret_intact": intact, "leftovers": _marker_processes()}),
              flush=True)
    listener.close()


CROWD = 100
SPAWN_CHILD = ("import subprocess\n"
               "print(subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout)")
CROWD_MARKER = "31.4159"


def _alive(pids: list[int]) -> int:
    alive = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                alive += fh.read().split(") ", 1)[1][0] != "Z"
        except OSError:
            pass
    return alive


async def crowded() -> None:
    sleepers = [subprocess.Popen(["sleep", CROWD_MARKER]) for _ in range(CROWD)]
    try:
        line: dict[str, object] = {"euid": os.geteuid(), "tasks_before": _tasks()}
        backend = LocalBackend(isolation="bwrap", output_limit=64 * 1024)
        for name, source in (("hello", "print('hello')\n"), ("fork_bomb", CASES["fork_bomb"])):
            request = RunRequest.single("python", source, run_timeout=4000, run_cpu_time=2000,
                                        run_memory_limit=256 * 1024 * 1024)
            try:
                line[name] = (await backend.run(request)).to_dict()
            except SandboxError as exc:  # the pre-fix failure: report it, do not crash
                line[name] = {"error": f"{type(exc).__name__}: {exc}"}
        # The weak fallback counts the user's tasks too: a program starting one child works.
        fallback = LocalBackend(isolation="fallback", output_limit=64 * 1024)
        spawn = RunRequest.single("python", SPAWN_CHILD, run_timeout=4000)
        line["fallback_spawn"] = (await fallback.run(spawn)).to_dict()
        line["sleepers_alive"] = _alive([s.pid for s in sleepers])
        line["can_start"] = subprocess.run(["true"], check=False).returncode == 0
        line["tasks_after"] = _tasks()
        print(json.dumps(line), flush=True)
    finally:
        for s in sleepers:
            s.kill()
        for s in sleepers:
            s.wait()


def _tasks() -> int:
    """Tasks of this uid now (what RLIMIT_NPROC counts)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as fh:
                    fields = dict(line.split(":", 1) for line in fh if ":" in line)
                if int(fields["Uid"].split()[0]) == os.getuid():
                    count += int(fields["Threads"])
            except (OSError, KeyError, ValueError):
                pass
    return count


async def no_userns() -> None:
    try:
        await LocalBackend(isolation="bwrap").run(RunRequest.single("python", "print(1)"))
    except BackendUnavailableError as exc:
        print(json.dumps({"refused": str(exc), "euid": os.geteuid()}), flush=True)
        return
    print(json.dumps({"refused": None, "euid": os.geteuid()}), flush=True)


CLONE_NEWUSER = 0x10000000
NOBODY = 65534


def enter_userns_without_nesting() -> None:
    """As root: continue in a child inside a user namespace where nobody may not create
    another one, as nobody, by re-executing this script (see the module docstring)."""
    ready_r, ready_w = os.pipe()
    mapped_r, mapped_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWUSER) != 0:
            os.write(2, f"unshare failed: {os.strerror(ctypes.get_errno())}\n".encode())
            os._exit(3)
        os.write(ready_w, b"u")
        os.read(mapped_r, 1)
        with open("/proc/sys/user/max_user_namespaces", "w") as fh:
            fh.write("0")
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        os.execv(sys.executable, [sys.executable, __file__, "no-userns"])
    os.read(ready_r, 1)
    for kind in ("uid", "gid"):
        with open(f"/proc/{pid}/{kind}_map", "w") as fh:
            fh.write(f"0 0 1\n{NOBODY} {NOBODY} 1\n")
    os.write(mapped_w, b"m")
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    if sys.argv[1] == "no-userns" and os.geteuid() == 0:
        enter_userns_without_nesting()
    modes = {"containment": containment, "crowded": crowded, "no-userns": no_userns}
    asyncio.run(modes[sys.argv[1]]())
