"""Run one process tree with a wall-clock limit and output caps, without threads.

The child is started with `posix_spawn` in a new session (so its process group can be killed as a
whole); stdin comes from a sealed memory file; stdout and stderr are read as they arrive and the
tree is killed the moment either passes its cap. The exit is watched through a pidfd and reaped
with `wait4`, which gives the CPU time of the whole (reaped) tree. Not its peak memory: a child
spawned from this process starts with our RSS high-water mark (the kernel keeps it across
`exec`), so `ru_maxrss` here is mostly ours; the local backend measures memory with GNU time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_HIGH_FD = 100  # sources are moved above every target fd so dup2 actions never clobber


def memfd_with(name: str, data: bytes) -> int:
    """A close-on-exec memory file holding `data`, positioned at its start."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@dataclass
class ProcessOutcome:
    """What happened to the process tree."""

    stdout: bytes = b""
    stderr: bytes = b""
    output: bytes = b""
    wait_status: int = 0
    cpu_ms: float = 0.0
    wall_ms: float = 0.0
    timed_out: bool = False
    overflow: str | None = None  # "OL" (stdout) or "EL" (stderr)
    extra: dict[str, bytes] = field(default_factory=dict)

    @property
    def exit_code(self) -> int | None:
        return os.waitstatus_to_exitcode(self.wait_status) if os.WIFEXITED(self.wait_status) \
            else None

    @property
    def term_signal(self) -> int | None:
        return os.WTERMSIG(self.wait_status) if os.WIFSIGNALED(self.wait_status) else None


class _Reader:
    """Collects one pipe with a cap; calls `on_overflow` once when the cap is passed."""

    def __init__(self, fd: int, cap: int, combined: bytearray | None,
                 on_overflow: asyncio.Event) -> None:
        self.fd = fd
        self.cap = cap
        self.data = bytearray()
        self.combined = combined
        self.overflowed = False
        self.eof = asyncio.Event()
        self._on_overflow = on_overflow

    def readable(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.eof.set()
            asyncio.get_running_loop().remove_reader(self.fd)
            return
        room = self.cap - len(self.data)
        if len(chunk) > room:
            chunk = chunk[:max(room, 0)]
            if not self.overflowed:
                self.overflowed = True
                self._on_overflow.set()
        self.data += chunk
        if self.combined is not None:
            self.combined += chunk


class _StatusWatcher:
    """Reads bubblewrap's JSON status as it comes and holds a pidfd on the sandboxed child.

    The child is pid 1 of its namespace; once it is gone, the kernel has killed and waited for
    every process in that namespace, so waiting on it proves nothing was left behind.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = bytearray()
        self.child_pidfd: int | None = None

    def readable(self) -> None:
        try:
            chunk = os.read(self.fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.fd)
            return
        self.data += chunk
        if self.child_pidfd is None and b"\n" in self.data:
            first = bytes(self.data).split(b"\n", 1)[0]
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                child = int(json.loads(first)["child-pid"])
                with contextlib.suppress(ProcessLookupError):
                    self.child_pidfd = os.pidfd_open(child)

    def kill_child(self) -> None:
        if self.child_pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.child_pidfd, signal.SIGKILL)

    async def wait_child_gone(self, timeout: float) -> None:
        if self.child_pidfd is None:
            return
        self.kill_child()
        loop = asyncio.get_running_loop()
        gone = asyncio.Event()
        loop.add_reader(self.child_pidfd, gone.set)
        try:
            async with asyncio.timeout(timeout):
                await gone.wait()
        except TimeoutError:
            log.error("a sandboxed process did not die within %s s", timeout)
        finally:
            loop.remove_reader(self.child_pidfd)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        if self.child_pidfd is not None:
            os.close(self.child_pidfd)


def _move_high(fd: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FD)


def kill_group(pgid: int) -> None:
    """SIGKILL a whole process group; gone already is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def run_process(argv: list[str], env: dict[str, str], *, stdin: bytes,
                      pass_fds: dict[int, int], wall_ms: int, output_limit: int,
                      status_target: int | None = None) -> ProcessOutcome:
    """Run `argv` (argv[0] an absolute path) and collect it.

    `pass_fds` maps a target fd number in the child to an fd of ours (which stays ours to
    close). With `status_target`, a pipe is passed as that fd number and what the child wrote
    to it is returned in `extra["status"]` (bubblewrap's JSON status).
    """
    loop = asyncio.get_running_loop()
    owned: list[int] = []
    try:
        stdin_fd = memfd_with("stdin", stdin)
        owned.append(stdin_fd)
        out_r, out_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        err_r, err_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        owned += [out_r, out_w, err_r, err_w]
        # The child's ends must block: the pipes above are non-blocking for us only.
        for fd in (out_w, err_w):
            os.set_blocking(fd, True)
        moves = [(target, _move_high(src)) for target, src in pass_fds.items()]
        owned += [src for _, src in moves]
        status_r = -1
        if status_target is not None:
            status_r, status_w = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(status_r, False)
            owned.append(status_r)
            moved = _move_high(status_w)
            os.close(status_w)
            owned.append(moved)
            moves.append((status_target, moved))
        actions = [(os.POSIX_SPAWN_DUP2, _move_high(stdin_fd), 0),
                   (os.POSIX_SPAWN_DUP2, _move_high(out_w), 1),
                   (os.POSIX_SPAWN_DUP2, _move_high(err_w), 2)]
        owned += [a[1] for a in actions]
        actions += [(os.POSIX_SPAWN_DUP2, src, target) for target, src in moves]

        overflow = asyncio.Event()
        combined = bytearray()
        out = _Reader(out_r, output_limit, combined, overflow)
        err = _Reader(err_r, output_limit, combined, overflow)
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        # Close our copies of the child's ends at once, so EOF means the tree is gone.
        for fd in list(owned):
            if fd not in (out_r, err_r, status_r):
                os.close(fd)
                owned.remove(fd)
        pidfd = os.pidfd_open(pid)
        owned.append(pidfd)
        exited = asyncio.Event()
        loop.add_reader(pidfd, exited.set)
        loop.add_reader(out_r, out.readable)
        loop.add_reader(err_r, err.readable)
        watcher = _StatusWatcher(status_r) if status_target is not None else None
        if watcher is not None:
            loop.add_reader(status_r, watcher.readable)
        timed_out = False
        try:
            waiter = asyncio.ensure_future(exited.wait())
            capped = asyncio.ensure_future(overflow.wait())
            done, _ = await asyncio.wait({waiter, capped}, timeout=wall_ms / 1000,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                timed_out = True
            if not exited.is_set():
                # Kill the sandboxed child first so its monitor reaps it (keeping its CPU time
                # and leaving no zombie); the whole group if the monitor does not follow.
                if watcher is not None:
                    watcher.readable()
                    watcher.kill_child()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(2.0):
                            await exited.wait()
                kill_group(pid)
                await exited.wait()
            waiter.cancel()
            capped.cancel()
        finally:
            loop.remove_reader(pidfd)
        _, wait_status, usage = os.wait4(pid, 0)
        wall = (time.perf_counter() - start) * 1000
        kill_group(pid)  # anything still in the group (the fallback has no pid namespace)
        if watcher is not None:
            watcher.readable()
            await watcher.wait_child_gone(5.0)
            watcher.close()
        # Writers are gone unless something escaped the group; read what is there, briefly.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                await asyncio.gather(out.eof.wait(), err.eof.wait())
        for reader in (out, err):
            loop.remove_reader(reader.fd)
            if not reader.eof.is_set():
                reader.readable()
        outcome = ProcessOutcome(
            stdout=bytes(out.data), stderr=bytes(err.data), output=bytes(combined),
            wait_status=wait_status, wall_ms=wall, timed_out=timed_out,
            cpu_ms=(usage.ru_utime + usage.ru_stime) * 1000,
            overflow="OL" if out.overflowed else ("EL" if err.overflowed else None),
        )
        if watcher is not None:
            outcome.extra["status"] = bytes(watcher.data) + _drain(status_r)
        return outcome
    finally:
        for fd in owned:
            with contextlib.suppress(OSError):
                os.close(fd)


def _drain(fd: int) -> bytes:
    os.set_blocking(fd, False)
    data = bytearray()
    with contextlib.suppress(BlockingIOError, OSError):
        while chunk := os.read(fd, 65536):
            data += chunk
    return bytes(data)
