"""The command line that wraps a program: prlimit, setpriv and bubblewrap.

Order: `setpriv` (root only: drop to the run's own unprivileged uid, no groups, no capabilities,
no new privileges) → `prlimit` (CPU, address space, file size, open files, no core)
→ `bwrap` (new user, pid, net, ipc, uts and cgroup namespaces; read-only system; a private size
limited tmpfs as workdir filled from memory files; only `lo`; dies with its parent)
→ `prlimit --nproc` → program.

The process limit is set inside bubblewrap's user namespace: RLIMIT_NPROC counts every task of
the real uid, and since Linux 5.14 it counts them per (user namespace, uid), so inside the
namespace only the sandbox's own tasks count. Set outside, it would count every process of a
desktop user (hundreds) and bubblewrap could not even start. The namespace's parent level is
still held to the limit its creator had, so nothing inside can exceed the user's own limit.

The program is pid 1 of its namespace (`--as-pid-1`), so bubblewrap's monitor reaps it and its
CPU time reaches us through `wait4`; when it exits the kernel kills everything it left behind.
The price: signals it sends itself with no handler installed are ignored (pid 1 rules), and the
CPU limit is enforced by the hard limit's SIGKILL (SIGXCPU is ignored by a namespace init).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox.errors import BackendUnavailableError
from sandbox.languages import SYSTEM_PATH

BOX = "/box"
BWRAP_INSTALL_HINT = (
    "bubblewrap (bwrap) is not installed; install it for a real sandbox: "
    "`sudo apt install bubblewrap` (Debian/Ubuntu), `sudo dnf install bubblewrap` (Fedora), "
    "`sudo pacman -S bubblewrap` (Arch)"
)
FALLBACK_WARNING = (
    "WEAK SANDBOX: no bubblewrap, so this ran with resource limits and a separate uid "
    "only (no namespaces: the network, the file system and other processes were reachable)"
)
FALLBACK_WARNING_NONROOT = (
    "WEAK SANDBOX: no bubblewrap and the host is not root, so this ran as the host user "
    "with resource limits only (network, files and processes of that user were reachable)"
)
# Parts of /etc a runtime needs (the `alternatives` links, the loader cache, JDK config);
# never /etc as a whole, which holds shadow and the host's secrets.
ETC_ALLOW = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/localtime", "/etc/java-*")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one stage."""

    wall_ms: int
    cpu_seconds: int
    address_space: int
    processes: int = 64
    file_size: int = 16 * 1024 * 1024
    open_files: int = 256
    workdir_size: int = 64 * 1024 * 1024
    tmp_size: int = 16 * 1024 * 1024


def tool(name: str) -> str | None:
    return shutil.which(name, path=SYSTEM_PATH)


def require_tool(name: str, package: str) -> str:
    path = tool(name)
    if path is None:
        raise BackendUnavailableError(f"`{name}` is missing; install the {package} package")
    return path


def drop_privileges(setpriv: str, uid: int) -> list[str]:
    # --pdeathsig is applied after the uid change (which would clear it) and survives the
    # execs down to GNU time, whose death then takes bubblewrap (--die-with-parent) along.
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--pdeathsig=KILL",
            "--"]


def die_with_parent(setpriv: str) -> list[str]:
    """For a host that is not root: only the parent-death signal (see `drop_privileges`)."""
    return [setpriv, "--pdeathsig=KILL", "--"]


GNU_TIME = "/usr/bin/time"
_PEAK = re.compile(rb"([0-9]{1,12})\n?")


@functools.lru_cache(maxsize=8)
def gnu_time(path: str = GNU_TIME) -> str | None:
    """`path` if it is GNU time (which has `-q`, `-f %M` and `-o`), else None."""
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return None
    try:
        done = subprocess.run([path, "--version"], capture_output=True, timeout=10,
                              env={"PATH": SYSTEM_PATH, "LANG": "C"}, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if b"GNU Time" in done.stdout + done.stderr else None


def peak_memory_report(time_path: str, report_fd: int) -> list[str]:
    """GNU time writing only the peak RSS (KiB) of the tree it waits for to `report_fd`.

    It is the parent of bubblewrap, so the figure is the larger of bubblewrap's monitor and the
    program (which the monitor reaps); not of the host-side chain, which a spawned child's
    inherited high-water mark inflates."""
    return [time_path, "-q", "-f", "%M", "-o", f"/dev/fd/{report_fd}", "--"]


def parse_peak(report: bytes, ceiling: int) -> int | None:
    """Bytes from GNU time's report; None for anything but one plausible number.

    The sandboxed program inherits the report's fd and can write to it, so the figure is
    informative only; this makes sure forged or broken reports never do more than vanish."""
    match = _PEAK.fullmatch(report)
    if match is None:
        return None
    peak = int(match.group(1)) * 1024
    return peak if 0 < peak <= ceiling else None


def resource_limits(prlimit: str, limits: Limits, *, processes: int | None = None) -> list[str]:
    """prlimit's argv: the per-process limits, and `--nproc` only when `processes` is given
    (under bubblewrap it goes inside the namespace instead: see `process_limit`)."""
    nproc = [] if processes is None else [f"--nproc={processes}"]
    return [prlimit, f"--cpu={limits.cpu_seconds}", f"--as={limits.address_space}", *nproc,
            f"--fsize={limits.file_size}", f"--nofile={limits.open_files}", "--core=0", "--"]


def process_limit(prlimit: str, limits: Limits) -> list[str]:
    """The process limit, run as the first command inside bubblewrap (it execs the program,
    which stays the namespace's pid 1). Counted per user namespace (Linux >= 5.14)."""
    return [prlimit, f"--nproc={limits.processes}", "--"]


def process_statuses() -> Iterator[tuple[int, dict[str, str]]]:
    """(pid, the fields of /proc/<pid>/status) for every process there is now; a process that
    ends while being read is skipped."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                yield int(entry), dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue


def user_tasks(uid: int) -> int:
    """How many tasks (threads included, as RLIMIT_NPROC counts them) `uid` has now."""
    count = 0
    for _pid, fields in process_statuses():
        try:
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (KeyError, ValueError, IndexError):
            continue
    return count


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for pattern in ETC_ALLOW:
        for path_str in sorted(glob.glob(pattern)):
            args += ["--ro-bind", path_str, path_str]
    return args


def bwrap_argv(bwrap: str, limits: Limits, files: dict[str, int], *, status_fd: int,
               executable: dict[str, int] | None = None) -> list[str]:
    """bubblewrap's argv up to and including `--`.

    `files` maps workdir-relative names to fds (as the child will see them) whose content
    bubblewrap copies into the tmpfs; `executable` likewise, with mode 0755.
    """
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
            "--die-with-parent", "--new-session", "--as-pid-1", "--hostname", "sandbox",
            *_system_binds(), "--proc", "/proc", "--dev", "/dev",
            "--size", str(limits.tmp_size), "--tmpfs", "/tmp",
            "--size", str(limits.workdir_size), "--tmpfs", BOX]
    made: set[str] = set()
    for name in files:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in made:
                made.add(sub)
                args += ["--dir", f"{BOX}/{sub}"]
    for name, fd in files.items():
        args += ["--perms", "0644", "--file", str(fd), f"{BOX}/{name}"]
    for name, fd in (executable or {}).items():
        args += ["--perms", "0755", "--file", str(fd), f"{BOX}/{name}"]
    args += ["--remount-ro", "/", "--chdir", BOX, "--clearenv", "--setenv", "PATH", SYSTEM_PATH,
             "--setenv", "HOME", BOX, "--setenv", "TMPDIR", "/tmp",
             "--setenv", "LANG", "C.UTF-8", "--json-status-fd", str(status_fd), "--"]
    return args
