"""The local backend: run a request on this machine under bubblewrap (or the weak fallback)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import threading
import weakref
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Literal

from sandbox.errors import BackendUnavailableError, SandboxError, UnknownRuntimeError
from sandbox.hostfs import HostWorkdir
from sandbox.isolation import (
    BWRAP_INSTALL_HINT,
    FALLBACK_WARNING,
    FALLBACK_WARNING_NONROOT,
    GNU_TIME,
    Limits,
    bwrap_argv,
    die_with_parent,
    drop_privileges,
    gnu_time,
    parse_peak,
    peak_memory_report,
    process_limit,
    process_statuses,
    require_tool,
    resource_limits,
    tool,
    user_tasks,
)
from sandbox.languages import MB, SYSTEM_PATH, Language, installed
from sandbox.models import RunRequest, RunResult, Runtime, StageResult
from sandbox.process import ProcessOutcome, memfd_with, run_process

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_LIMIT = 256 * 1024  # bytes per stream and stage
COMPILE_MEMORY = 512 * MB
ARTIFACT_FD, STATUS_FD, EXECUTABLE_FD, REPORT_FD, FIRST_FILE_FD = 3, 4, 5, 6, 7
REPORT_MAX = 64  # bytes; GNU time writes one number of KiB and a newline
MAX_SLOTS = 64

Isolation = Literal["auto", "bwrap", "fallback"]

_slot_lock = threading.Lock()
_slots_in_use: set[int] = set()


def _uid_for(slot: int) -> int:
    """A uid no one else uses: unique per process (pid) and per concurrent run (slot)."""
    return 1_000_000_000 + (os.getpid() % 4_000_000) * MAX_SLOTS + slot


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


class LocalBackend:
    """Runs requests on this machine. `isolation="auto"` uses bubblewrap when present.

    `time_tool` is GNU time, which measures each stage's peak memory; when it is missing (or
    not GNU time) results carry `memory: null` and are otherwise the same."""

    name = "local"

    def __init__(self, *, isolation: Isolation = "auto", max_concurrency: int | None = None,
                 output_limit: int = DEFAULT_OUTPUT_LIMIT, workdir_parent: str | None = None,
                 time_tool: str | None = GNU_TIME) -> None:
        if isolation not in ("auto", "bwrap", "fallback"):
            raise ValueError(f"unknown isolation {isolation!r}")
        self._bwrap = tool("bwrap")
        if isolation == "bwrap" and self._bwrap is None:
            raise BackendUnavailableError(BWRAP_INSTALL_HINT)
        self.isolation: Literal["bwrap", "fallback"] = (
            "bwrap" if isolation != "fallback" and self._bwrap is not None else "fallback")
        if isolation == "auto" and self.isolation == "fallback":
            log.warning("%s", BWRAP_INSTALL_HINT)
        self._prlimit = require_tool("prlimit", "util-linux")
        self._root = os.geteuid() == 0
        self._setpriv = require_tool("setpriv", "util-linux") if self._root else None
        self._env_tool = require_tool("env", "coreutils")
        # GNU time sits between the host and bubblewrap, so it must die with the host as
        # bubblewrap would: setpriv --pdeathsig (util-linux) sees to that; without setpriv,
        # no memory figure rather than a sandbox that could outlive the host.
        self._setpriv_any = self._setpriv or tool("setpriv")
        self._time = gnu_time(time_tool) if time_tool and self._setpriv_any else None
        if time_tool and self._time is None:
            log.info("no GNU time at %s (Debian/Ubuntu package `time`): memory is not reported",
                     time_tool)
        self.output_limit = output_limit
        self.max_concurrency = max_concurrency or os.cpu_count() or 1
        self._workdir_parent = workdir_parent
        self._sems: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())
        self._checked = False

    @property
    def warning(self) -> str | None:
        """The warning every result of this backend carries, if it is the weak fallback."""
        if self.isolation == "bwrap":
            return None
        return FALLBACK_WARNING if self._root else FALLBACK_WARNING_NONROOT

    async def runtimes(self) -> list[Runtime]:
        """What this machine can run."""
        return [rt for _, rt in await asyncio.to_thread(installed)]

    async def _resolve(self, request: RunRequest) -> tuple[Language, Runtime]:
        for lang, rt in await asyncio.to_thread(installed):
            if rt.matches(request.language, request.version):
                return lang, rt
        raise UnknownRuntimeError(request.language, request.version)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[int | None]:
        loop = asyncio.get_running_loop()
        sem = self._sems.setdefault(loop, asyncio.Semaphore(self.max_concurrency))
        async with sem:
            with _slot_lock:
                free = [s for s in range(MAX_SLOTS) if s not in _slots_in_use]
                if not free:
                    raise SandboxError("too many runs at once in this process")
                slot = free[0]
                _slots_in_use.add(slot)
            try:
                yield _uid_for(slot) if self._root else None
            finally:
                with _slot_lock:
                    _slots_in_use.discard(slot)

    async def _check_bwrap(self) -> None:
        """Fail with a clear message if bubblewrap cannot make namespaces here."""
        if self._checked or self.isolation != "bwrap":
            return
        limits = Limits(wall_ms=10_000, cpu_seconds=5, address_space=512 * MB)
        async with self._slot() as uid:
            argv = self._prefix(uid, limits) + bwrap_argv(
                self._bwrap or "bwrap", limits, {}, status_fd=STATUS_FD) + process_limit(
                self._prlimit, limits) + ["true"]
            outcome = await run_process(argv, {"PATH": SYSTEM_PATH}, stdin=b"", pass_fds={},
                                        wall_ms=10_000, output_limit=4096,
                                        status_target=STATUS_FD)
        if outcome.exit_code != 0:
            lines = outcome.stderr.decode(errors="replace").strip().splitlines()
            detail = lines[-1].strip() if lines else f"status {outcome.wait_status}"
            if "Resource temporarily unavailable" in detail:
                raise BackendUnavailableError(
                    f"bubblewrap cannot create a sandbox here ({detail}); this user is at "
                    "its process limit (`ulimit -u`): close some programs or raise the limit")
            raise BackendUnavailableError(
                f"bubblewrap cannot create a sandbox here ({detail}); this user may not "
                "create user namespaces: allow them (sysctl "
                "user.max_user_namespaces > 0; kernel.unprivileged_userns_clone=1 on older "
                "Debian/Ubuntu kernels; an AppArmor profile for bwrap on Ubuntu 23.10+) or "
                "install bwrap setuid root")
        self._checked = True

    def _prefix(self, uid: int | None, limits: Limits, *, report: bool = False,
                processes: int | None = None) -> list[str]:
        """Everything before bubblewrap (or before the program, in the fallback); the process
        limit only when `processes` is given (the fallback: see `_fallback_processes`)."""
        if self._setpriv and uid is not None:
            prefix = drop_privileges(self._setpriv, uid)
        elif report and self._setpriv_any:
            prefix = die_with_parent(self._setpriv_any)
        else:
            prefix = []
        prefix += resource_limits(self._prlimit, limits, processes=processes)
        if report and self._time is not None:
            prefix += peak_memory_report(self._time, REPORT_FD)
        return prefix

    async def run(self, request: RunRequest) -> RunResult:
        """Compile (if the language needs it) and run the request; never raises for what the
        program does, only for a bad request or a backend that cannot run."""
        lang, rt = await self._resolve(request)
        await self._check_bwrap()
        names = request.file_names()
        files = {name: f.data() for name, f in zip(names, request.files, strict=True)}
        stdin = request.stdin if request.stdin.endswith("\n") else request.stdin + "\n"
        async with self._slot() as uid:
            workdir = (HostWorkdir(owner=uid, parent=self._workdir_parent)
                       if self.isolation == "fallback" else None)
            artifact = os.memfd_create("artifact", os.MFD_CLOEXEC) if lang.compiled else None
            try:
                if workdir is not None:
                    for name, data in files.items():
                        workdir.write(name, data)
                compiled = None
                if lang.compile is not None:
                    mem = request.limits[4]
                    limits = _limits(lang, request.limits[0], request.compile_cpu_time,
                                     mem if mem > 0 else COMPILE_MEMORY)
                    compiled = await self._stage(lang.compile(names), files, None, b"",
                                                 limits, uid, workdir, artifact)
                    if not compiled.ok:
                        return RunResult(rt.language, rt.version, run=compiled, compile=compiled)
                    assert artifact is not None
                    os.lseek(artifact, 0, os.SEEK_SET)
                mem = request.limits[5]
                mem = mem if mem > 0 else lang.default_memory
                limits = _limits(lang, request.limits[1], request.run_cpu_time, mem)
                argv = lang.run(names, list(request.args), mem)
                ran = await self._stage(argv, files, artifact, stdin.encode(), limits, uid,
                                        workdir, None)
                return RunResult(rt.language, rt.version, run=ran, compile=compiled)
            finally:
                if artifact is not None:
                    os.close(artifact)
                if workdir is not None:
                    await asyncio.to_thread(workdir.close)

    async def _stage(self, argv: list[str], files: dict[str, bytes], executable: int | None,
                     stdin: bytes, limits: Limits, uid: int | None,
                     workdir: HostWorkdir | None, artifact: int | None) -> StageResult:
        pass_fds: dict[int, int] = {}
        owned: list[int] = []
        report = self._time is not None
        memory: int | None = None
        try:
            if artifact is not None:
                pass_fds[ARTIFACT_FD] = artifact
            if report:
                # A memory file, not a pipe: GNU time reopens it by path (/dev/fd/N) as the
                # sandbox's uid, and a memory file's mode (0777) allows that.
                report_fd = os.memfd_create("report", os.MFD_CLOEXEC)
                owned.append(report_fd)
                pass_fds[REPORT_FD] = report_fd
            if workdir is None:
                file_fds: dict[str, int] = {}
                for i, (name, data) in enumerate(files.items()):
                    fd = memfd_with(name.replace("/", "_"), data)
                    owned.append(fd)
                    pass_fds[FIRST_FILE_FD + i] = fd
                    file_fds[name] = FIRST_FILE_FD + i
                exe = {}
                if executable is not None:
                    pass_fds[EXECUTABLE_FD] = executable
                    exe = {"a.out": EXECUTABLE_FD}
                full = self._prefix(uid, limits, report=report) + bwrap_argv(
                    self._bwrap or "bwrap", limits, file_fds, status_fd=STATUS_FD,
                    executable=exe) + process_limit(self._prlimit, limits) + argv
                env = {"PATH": SYSTEM_PATH}
            else:
                processes = await _fallback_processes(uid, limits)
                full = [*self._prefix(uid, limits, report=report, processes=processes),
                        self._env_tool, "-C", str(workdir.path), "--", *argv]
                env = {"PATH": SYSTEM_PATH, "HOME": str(workdir.path),
                       "TMPDIR": str(workdir.path), "LANG": "C.UTF-8"}
            outcome = await run_process(
                full, env, stdin=stdin, pass_fds=pass_fds, wall_ms=limits.wall_ms,
                output_limit=self.output_limit,
                status_target=STATUS_FD if workdir is None else None)
            if workdir is not None and uid is not None:
                await asyncio.to_thread(_kill_uid, uid)
            if report:
                memory = _read_peak(report_fd, limits.address_space)
        finally:
            for fd in owned:
                os.close(fd)
        result = self._result(outcome, limits, bwrapped=workdir is None, memory=memory,
                              timed=report)
        if self.warning:
            message = f"{result.message}; {self.warning}" if result.message else self.warning
            result = replace(result, message=message)
        return result

    def _result(self, out: ProcessOutcome, limits: Limits, *, bwrapped: bool,
                memory: int | None = None, timed: bool = False) -> StageResult:
        """The stage's result. `timed`: GNU time was the direct child, which reports a death
        by signal N as exit code 128 + N (as bubblewrap does)."""
        code, sig = out.exit_code, out.term_signal
        stdout = out.stdout.decode(errors="replace")
        stderr = out.stderr.decode(errors="replace")
        common = {"stdout": stdout, "stderr": stderr,
                  "output": out.output.decode(errors="replace"),
                  "wall_time": round(out.wall_ms, 1), "cpu_time": round(out.cpu_ms, 1),
                  "memory": memory}
        if bwrapped and not out.timed_out and out.overflow is None:
            status = out.extra.get("status", b"")
            if b'"child-pid"' not in status:
                line = stderr.strip().splitlines()[-1:] or ["no status from bubblewrap"]
                return StageResult(**common, status="XX",  # type: ignore[arg-type]
                                   message=f"sandbox setup failed: {line[0]}")
            if code is not None and 128 < code < 128 + 65:
                sig, code = code - 128, None  # bwrap reports a signal death as 128 + signal
        elif timed and code is not None and 128 < code < 128 + 65:
            sig, code = code - 128, None  # GNU time, likewise
        status_msg: tuple[str | None, str | None]
        if out.overflow is not None:
            stream = "stdout" if out.overflow == "OL" else "stderr"
            status_msg = (out.overflow, f"{stream} length exceeded")
            code, sig = None, signal.SIGKILL
        elif out.timed_out:
            status_msg = ("TO", "Time limit exceeded (wall clock)")
            code, sig = None, signal.SIGKILL
        elif sig in (signal.SIGXCPU, signal.SIGKILL) and \
                out.cpu_ms >= limits.cpu_seconds * 1000 * _cpu_kill_share(bwrapped):
            status_msg = ("TO", "Time limit exceeded")  # the RLIMIT_CPU kill
        elif sig is not None:
            status_msg = ("SG", f"Caught fatal signal {sig}")
        elif code:
            status_msg = ("RE", f"Exited with error status {code}")
        else:
            status_msg = (None, None)
        return StageResult(**common, code=code,  # type: ignore[arg-type]
                           signal=_signal_name(sig) if sig is not None else None,
                           status=status_msg[0], message=status_msg[1])


async def _fallback_processes(uid: int | None, limits: Limits) -> int:
    """The fallback's process limit. Under a uid of its own (root host) the limit itself; as
    the host user, whose every task counts against it, the tasks that user has now plus the
    limit (racy, but without a namespace there is nothing to count the run alone)."""
    if uid is not None:
        return limits.processes
    return await asyncio.to_thread(user_tasks, os.getuid()) + limits.processes


def _read_peak(fd: int, ceiling: int) -> int | None:
    """GNU time's report, read without trusting it (the program could write to it too)."""
    try:
        if os.fstat(fd).st_size > REPORT_MAX:
            return None
        return parse_peak(os.pread(fd, REPORT_MAX, 0), ceiling)
    except OSError:
        return None


def _cpu_kill_share(bwrapped: bool) -> float:
    """The share of the CPU limit a SIGKILLed program must have used to count as killed by
    RLIMIT_CPU. The CPU time `wait4` reports for a program the kernel killed at its limit was
    measured at 85-97 % of that limit on a loaded machine (load 9 on 2 cores). Under
    bubblewrap the program is its namespace's pid 1, which no process inside can SIGKILL, and
    we did not (no wall-clock or output kill), so the kernel did: half is margin enough. In the
    fallback the program may SIGKILL itself, so the bar stays high."""
    return 0.5 if bwrapped else 0.85


def _limits(lang: Language, timeout_ms: int, cpu_ms: int | None, memory: int) -> Limits:
    cpu_seconds = max(lang.min_cpu_seconds, math.ceil((cpu_ms or timeout_ms) / 1000))
    return Limits(wall_ms=timeout_ms, cpu_seconds=cpu_seconds,
                  address_space=memory + lang.address_space_extra)


def _kill_uid(uid: int, rounds: int = 50) -> None:
    """Kill every process of `uid` (the fallback has no pid namespace to do it for us)."""
    for _ in range(rounds):
        found = False
        for pid, fields in process_statuses():
            try:
                state, uids = fields["State"].strip(), fields["Uid"].split()
            except KeyError:
                continue
            if not state.startswith("Z") and int(uids[0]) == uid:
                found = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if not found:
            return

