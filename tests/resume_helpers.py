"""Real processes for the resume tests: a scripted host or candidate as a child process that a
test drives line by line, SIGKILLs and starts again (no tests here).

    python -m tests.resume_helpers host --signaling URL --path FILE [--resume] [--runs]
    python -m tests.resume_helpers candidate --invite TEXT [--resume FILE]

The child prints one JSON object per line on stdout (`{"ev": ...}`) and takes one JSON command
per line on stdin. Both roles:

- `{"ev": "ready", ...}` once started (the host adds `invite`, `events`, `code`, `resumed`);
- `{"ev": "link", "up": bool, "links": n}` whenever its link goes up or down;
- while typing, `{"ev": "acked", "n": i}`: token `i` and every token before it are durable in
  this side's own session file (`store.durable_seq`: acknowledged). A token is one update:
  the host inserts `H<gen>.<i>;` at the start of the code, the candidate `C<gen>.<i>;` at its
  end, so concurrent tokens never split each other;
- `{"cmd": "type", "gen": g, "every": s}` types one token every `s` seconds (the candidate
  also signs a `session.note` every 5 tokens); `{"cmd": "stop"}` stops and answers
  `{"ev": "stopped", "n": last}`;
- `{"cmd": "state"}` answers `{"ev": "state", "code", "events", "outbox", "connected", "runs"}`;
- `{"cmd": "paste", "tag": T, "size": n}` inserts `T:<n characters>;` in one update (where this
  side types) and answers `{"ev": "pasted", "tag": T}` once it is durable in this side's file
  (`paste_text(T, n)` is the text);
- host only: `{"cmd": "run", "source": S}` runs S as the interviewer (`{"ev": "run", "id"}`);
  `{"cmd": "seal"}` ends and seals (`{"ev": "sealed", "path"}`), then the child exits;
- candidate only: `{"cmd": "run", "source": S}` sets the code to S and asks the host to run it
  (`{"ev": "run", "state", "id", "reason"}` once the host answered); `--beats S` signs a
  `browser.heartbeat` every S seconds from ready on, as the page does (its `ready` says
  `resumed` and `away_s` when `join` continued its unfinished session).
- host only: `--policy FILE` starts the session with that policy's text.

`Child` is the parent's side: start, `expect` an event, `send` a command, `kill` (SIGKILL).
Children use a fast peer configuration (heartbeat timeout 3 s, handshake timeout 3 s; with
`--config default`, the app's own) and meet on 127.0.0.1 only. `Child.seen` keeps every event
with `at`, the parent's `time.monotonic()` when the line arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

CHILD_CONFIG = {"heartbeat_interval": 0.5, "heartbeat_timeout": 3.0, "handshake_timeout": 3.0,
                "connect_timeout": 10.0, "signaling_ping_interval": 2.0,
                "signaling_ping_timeout": 2.0}
LINE_LIMIT = 1 << 26
"""The longest line the parent reads from a child (its events carry the whole code)."""
HIDDEN = [{"name": "big", "stdin": "40 2", "expected": "42\n"}]
PUBLIC = [{"name": "small", "stdin": "1 2", "expected": "3\n"}]


# --- the parent's side ------------------------------------------------------------------------

class Child:
    """A child process of this module, driven over its stdin and stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, role: str) -> None:
        self.proc = proc
        self.role = role
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self.acked = -1  # the last token this side reported durable
        self.started = time.monotonic()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, role: str, *args: str, data_dir: Path) -> Child:
        env = {**os.environ, "ASSESSIQ_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1",
               "PYTHONFAULTHANDLER": "1"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.resume_helpers", role, *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            cwd=Path(__file__).resolve().parent.parent,
            limit=LINE_LIMIT)  # a line carries the whole code: past asyncio's 64 KiB default
        return cls(proc, role)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            try:
                line = await self.proc.stdout.readline()
            except ValueError as exc:  # a line past LINE_LIMIT: say so, not a silent hang
                await self.events.put({"ev": "exit", "error": str(exc)})
                return
            if not line:
                await self.events.put({"ev": "exit"})
                return
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("ev") == "acked":
                self.acked = max(self.acked, int(event["n"]))
                continue
            event["at"] = time.monotonic()
            self.seen.append(event)
            await self.events.put(event)

    async def expect(self, ev: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        """The next event `ev` (with the given fields), skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if self.proc.returncode is None:  # where it is stuck (PYTHONFAULTHANDLER)
                    with contextlib.suppress(ProcessLookupError):
                        self.proc.send_signal(signal.SIGABRT)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.proc.wait(), 2)
                raise AssertionError(f"{self.role}: no {ev} {match} within {timeout:g} s; "
                                     f"saw {self.seen[-5:]}")
            try:
                event = await asyncio.wait_for(self.events.get(), left)
            except TimeoutError:
                continue
            if event["ev"] == ev and all(event.get(k) == v for k, v in match.items()):
                return event
            if event["ev"] == "exit" and ev != "exit":
                raise AssertionError(f"{self.role} exited (code {self.proc.returncode}"
                                     f"{', ' + event['error'] if 'error' in event else ''}) "
                                     f"waiting for {ev}; saw {self.seen[-5:]}")

    async def send(self, cmd: str, **fields: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        await self.proc.stdin.drain()

    async def ask(self, cmd: str, ev: str, timeout: float = 30.0, **fields: Any
                  ) -> dict[str, Any]:
        await self.send(cmd, **fields)
        return await self.expect(ev, timeout)

    async def kill(self) -> None:
        """SIGKILL, at whatever instant this is."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self._reader.cancel()

    async def close(self) -> None:
        await self.kill()


async def converged(host: Child, cand: Child, timeout: float = 20.0
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both sides' state once their code is the same, the candidate's outbox is empty and
    the host holds every event the candidate signed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        h = await host.ask("state", "state")
        c = await cand.ask("state", "state")
        if h["code"] == c["code"] and not c["outbox"] and h["events"] == c["events"]:
            return h, c
        if loop.time() > deadline:
            raise AssertionError(f"no convergence: host {len(h['code'])} chars, {h['events']} "
                                 f"events; candidate {len(c['code'])} chars, {c['events']} "
                                 f"events, outbox {c['outbox'][:10]}")
        await asyncio.sleep(0.1)


def tokens(code: str, prefix: str) -> set[str]:
    """The tokens of one side in `code` (`H0.12`, `C1.3`...)."""
    return {t for t in code.split(";") if t.startswith(prefix)}


def paste_text(tag: str, size: int) -> str:
    """The token a `paste` command inserts: `tag:` and `size` characters, then `;`."""
    body = "".join(f"{i:07d}," for i in range(size // 8 + 1))[:size]
    return f"{tag}:{body};"


def missing(code: str, prefix: str, gen: int, acked: int) -> list[str]:
    """The acknowledged tokens `<prefix><gen>.0` .. `.acked` that `code` lacks."""
    have = tokens(code, prefix)
    return [f"{prefix}{gen}.{i}" for i in range(acked + 1) if f"{prefix}{gen}.{i}" not in have]


# --- the child's side -------------------------------------------------------------------------

def _out(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class _Typist:
    """Types tokens into a session's document and reports which are durable."""

    def __init__(self, session: Any, prefix: str, at_start: bool) -> None:
        self.session = session
        self.prefix = prefix
        self.at_start = at_start
        self.task: asyncio.Task[None] | None = None
        self.targets: list[int] = []  # token i is durable once durable_seq >= targets[i]
        self.reported = -1
        self.n = -1

    def start(self, gen: int, every: float) -> None:
        self.targets, self.reported, self.n = [], -1, -1
        self.task = asyncio.get_running_loop().create_task(self._type(gen, every))

    async def _type(self, gen: int, every: float) -> None:
        doc, store = self.session.doc, self.session.store
        i = 0
        while True:
            token = f"{self.prefix}{gen}.{i};"
            doc.insert_code(0 if self.at_start else len(doc.code_text), token)
            self.targets.append(store.durable_seq + len(store._pending))
            self.n = i
            if not self.at_start and i % 5 == 4:
                await self.session.send_event("session.note", {"phase": "instant",
                                                               "text": token})
            i += 1
            await asyncio.sleep(every)

    async def stop(self) -> int:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        self.session.store.flush()
        self.report()
        return self.n

    def report(self) -> None:
        durable = self.session.store.durable_seq
        n = self.reported
        while n + 1 < len(self.targets) and self.targets[n + 1] <= durable:
            n += 1
        if n > self.reported:
            self.reported = n
            _out(ev="acked", n=n)


async def _paste(session: Any, typist: _Typist, cmd: dict[str, Any]) -> None:
    doc, store = session.doc, session.store
    text = paste_text(cmd["tag"], int(cmd["size"]))
    doc.insert_code(0 if typist.at_start else len(doc.code_text), text)
    store.flush()
    _out(ev="pasted", tag=cmd["tag"])


async def _typing_command(cmd: dict[str, Any], session: Any, typist: _Typist) -> bool:
    """The commands both roles take — type, stop, paste; False for any other."""
    if cmd["cmd"] == "type":
        typist.start(cmd.get("gen", 0), cmd.get("every", 0.02))
    elif cmd["cmd"] == "stop":
        _out(ev="stopped", n=await typist.stop())
    elif cmd["cmd"] == "paste":
        await _paste(session, typist, cmd)
    else:
        return False
    return True


async def _beat(session: Any, every: float) -> None:
    while True:
        await session.send_event("browser.heartbeat", {"phase": "instant"})
        await asyncio.sleep(every)


async def _watch(session: Any, typist: _Typist) -> None:
    up = False
    while True:
        typist.report()
        if session.is_connected != up:
            up = session.is_connected
            _out(ev="link", up=up, links=session.links_made)
        await asyncio.sleep(0.01)


async def _commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _runs(session: Any) -> list[dict[str, Any]]:
    return [{"id": r["run_id"], "by": r["by"], "result": r["result"]} for r in session.doc.runs()]


async def _host(args: argparse.Namespace) -> int:
    from assessiq.peer import Host, PeerConfig
    from assessiq.runs import RunLimits

    config = PeerConfig(**CHILD_CONFIG) if args.config == "fast" else PeerConfig()
    options: dict[str, Any] = {"runs": args.runs}
    if args.runs:
        options["run_limits"] = RunLimits(run_timeout_ms=10_000, burst=10)
    if args.resume:
        host = await Host.resume(args.path, config=config, **options)
    else:
        if args.policy:
            from assessiq.core.policy import Policy

            options["policy"] = Policy.from_toml(Path(args.policy).read_text())
        if args.runs:
            from sandbox.testcases import TestCase

            options["hidden_tests"] = [TestCase(t["name"], t["stdin"], t["expected"],
                                                hidden=True) for t in HIDDEN]
        host = await Host.start(signaling=args.signaling, config=config,
                                session_path=args.path, label="kill test", **options)
        if host.runs is not None:
            host.runs.set_public_tests(PUBLIC)
    _ready()
    _out(ev="ready", invite=host.invite.encode(), events=len(host.events),
         code=host.doc.code_text, resumed=host.resumed, runs=_runs(host),
         started=time.time())
    typist = _Typist(host, "H", at_start=True)
    watch = asyncio.get_running_loop().create_task(_watch(host, typist))
    reader = await _commands()
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            if await _typing_command(cmd, host, typist):
                continue
            if cmd["cmd"] == "state":
                _out(ev="state", code=host.doc.code_text, events=len(host.events),
                     connected=host.is_connected, runs=_runs(host), outbox=[])
            elif cmd["cmd"] == "run":
                _out(ev="run", id=host.run_code(source=cmd["source"]))
            elif cmd["cmd"] == "seal":
                await typist.stop()
                path = await host.end()
                _out(ev="sealed", path=str(path))
                return 0
    finally:
        watch.cancel()
    await host.close()
    return 0


async def _candidate(args: argparse.Namespace) -> int:
    from assessiq.peer import Candidate, PeerConfig

    config = PeerConfig(**CHILD_CONFIG) if args.config == "fast" else PeerConfig()
    if args.resume:
        cand = await Candidate.resume(args.invite, session_path=args.resume, config=config)
    else:
        cand = await Candidate.join(args.invite, config=config, name="Kill Test")
    _ready()
    _out(ev="ready", code=cand.doc.code_text, events=len(cand.log), started=time.time(),
         resumed=cand.resumed_from is not None, away_s=cand.away_s)
    typist = _Typist(cand, "C", at_start=False)
    watch = asyncio.get_running_loop().create_task(_watch(cand, typist))
    beats = (asyncio.get_running_loop().create_task(_beat(cand, args.beats))
             if args.beats else None)
    reader = await _commands()
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            if await _typing_command(cmd, cand, typist):
                continue
            if cmd["cmd"] == "state":
                _out(ev="state", code=cand.doc.code_text, events=len(cand.log),
                     connected=cand.is_connected, runs=_runs(cand), outbox=sorted(cand.outbox),
                     ended=cand.ended.is_set())
            elif cmd["cmd"] == "run":
                cand.doc.set_code(cmd["source"])
                ticket = await cand.request_run("python")
                while ticket.state == "sent":
                    await asyncio.sleep(0.02)
                _out(ev="run", state=ticket.state, id=ticket.run_id, reason=ticket.reason)
    finally:
        watch.cancel()
        if beats is not None:
            beats.cancel()
    await cand.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.resume_helpers")
    parser.add_argument("role", choices=("host", "candidate"))
    parser.add_argument("--signaling")
    parser.add_argument("--path")
    parser.add_argument("--invite")
    parser.add_argument("--resume", nargs="?", const="yes", default=None)
    parser.add_argument("--runs", action="store_true")
    parser.add_argument("--beats", type=float, default=0.0)
    parser.add_argument("--policy")
    parser.add_argument("--config", choices=("fast", "default"), default="fast")
    args = parser.parse_args(argv)
    import faulthandler

    faulthandler.dump_traceback_later(20)  # a start that hangs shows where (until "ready")
    if os.environ.get("ASSESSIQ_CHILD_LOG"):
        import logging

        logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.role} %(name)s: "
                                                       "%(message)s")
    from assessiq.peer.connection import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])

    async def child() -> int:
        def dump() -> None:  # the tasks of a start that hangs
            for task in asyncio.all_tasks():
                task.print_stack(file=sys.stderr)

        waiting = asyncio.get_running_loop().call_later(20, dump)
        _STARTED.append(waiting)
        return await (_host(args) if args.role == "host" else _candidate(args))

    return asyncio.run(child())


_STARTED: list[asyncio.TimerHandle] = []


def _ready() -> None:
    import faulthandler

    faulthandler.cancel_dump_traceback_later()
    for handle in _STARTED:
        handle.cancel()


if __name__ == "__main__":
    sys.exit(main())
