"""A scripted participant: one side of a session that types and signs events by itself.

`assessiq demo --headless` runs the host and the candidate as two processes of this module;
the tests and benchmarks use it the same way:

    python -m assessiq.peer.scripted host --signaling ws://127.0.0.1:8765 --seconds 10 \\
        --invite-out invite.txt --out session.aiq --result host.json
    python -m assessiq.peer.scripted candidate --invite-file invite.txt --seconds 10 \\
        --result cand.json

Each side types for `--seconds` (bursts of 6-14 chars/s with pauses, at random places in its
own region of the code, so edits interleave), the candidate also switches tabs and pastes.
Then they agree that both documents hold the same code (hash exchange on `control`), the host
ends and seals the session, and each writes a JSON result. Progress goes to stderr.

Options (give the same ones to both sides):
  --proctor  the candidate's proctor watches a synthetic camera with planted conditions (the
             candidate out of view for 5 s, then a second face for 4 s): real MediaPipe
             analysis, signed events and heartbeats
  --runs     after typing, the candidate asks the host (over `control`) to run a correct
             answer and a wrong one, then types an infinite loop that the interviewer runs;
             the host runs them in the local sandbox with public and hidden tests
  --media    synthetic audio and video both ways; the proctor reads the candidate's own
             outgoing camera; the host records the call statistics in its session file
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

from ..core.errors import AssessIQError
from . import control
from .candidate import Candidate
from .config import IceServer, PeerConfig
from .connection import restrict_host_addresses
from .host import Host
from .runrequests import RunTicket
from .session import PeerSession

__all__ = ["main"]

log = logging.getLogger("assessiq.demo")

control.register("demo", {"step": str})

WORDS = (
    "def", "return", "for", "in", "range", "if", "else", "while", "total", "count",
    "result", "items", "append", "len", "print", "x", "i", "+=", "==", "(", ")", ":", "0", "1",
)


def say(role: str, message: str) -> None:
    print(f"[{role}] {message}", file=sys.stderr, flush=True)


async def report_links(role: str, session: PeerSession) -> None:
    """Print `link up #n at T` / `link down at T` lines (the network-cut test reads them)."""
    up = False
    while True:
        if session.is_connected != up:
            up = session.is_connected
            if up:
                say(role, f"link up #{session.links_made} at {time.time():.3f}")
            else:
                say(role, f"link down at {time.time():.3f}")
        await asyncio.sleep(0.05)


def code_hash(session: PeerSession) -> str:
    return hashlib.sha256(session.doc.code_text.encode("utf-8")).hexdigest()[:16]


async def type_for(session: PeerSession, seconds: float, rng: random.Random, tag: str) -> int:
    """Type like a person for `seconds`; returns how many characters were inserted."""
    typed = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    marker = f"# {tag}\n"
    session.doc.insert_code(len(session.doc.code_text), marker, origin=tag)
    while loop.time() < end:
        word = rng.choice(WORDS) + rng.choice((" ", " ", "\n"))
        for ch in word:
            text = session.doc.code_text
            anchor = text.find(marker)
            pos = len(text) if anchor < 0 else rng.randint(anchor + len(marker), len(text))
            if anchor >= 0:
                # stay inside our own region: before the next marker of the other side
                nxt = text.find("# ", anchor + len(marker))
                if nxt >= 0:
                    pos = min(pos, nxt)
            session.doc.insert_code(pos, ch, origin=tag)
            typed += 1
            await asyncio.sleep(rng.uniform(0.07, 0.17))
        if rng.random() < 0.1:
            await asyncio.sleep(rng.uniform(0.3, 0.8))  # thinking
    return typed


PROBLEM = "Read two integers on one line and print their sum."
PUBLIC_TESTS = [{"name": "small", "stdin": "1 2", "expected": "3\n"},
                {"name": "negative", "stdin": "-5 2", "expected": "-3\n"}]
CORRECT = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n"
WRONG = "import sys\nprint(sum(abs(int(x)) for x in sys.stdin.read().split()))\n"
HOSTILE = "while True:\n    pass\n"
# The planted proctoring timeline: (seconds, scene). 14 s, then the candidate stays in view.
PLANTED = [(3.0, "present"), (5.0, "absent"), (2.0, "present"), (4.0, "two_faces")]
AFTER_PLANTED = 2.5  # the last condition must clear (1.5 s) before the proctor stops


def _config(args: argparse.Namespace) -> PeerConfig:
    servers = tuple(
        IceServer(url, args.turn_user, args.turn_password) if url.startswith("turn")
        else IceServer(url)
        for url in args.ice
    )
    return PeerConfig(ice_servers=servers, relay_only=args.relay_only,
                      call_stats_interval=2.0)


def _media(args: argparse.Namespace, *, source: Any = None, tap: bool = False,
           tone: float = 440.0) -> Any:
    """Synthetic camera (a stamped test card, or `source`) and tone; no speaker."""
    if not args.media:
        return None
    from ..media import SYNTHETIC, MediaConfig

    return MediaConfig(camera=SYNTHETIC, microphone=SYNTHETIC, speaker=None, fps=args.fps,
                       tone_hz=tone, synthetic_source=source,
                       tap_rate=min(10.0, args.fps) if tap else None)


def _host_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"media": _media(args), "runs": args.runs}
    if args.runs:
        from sandbox.testcases import TestCase

        from ..runs import RunLimits

        options["run_limits"] = RunLimits(run_timeout_ms=1500)
        options["hidden_tests"] = [TestCase("large", "1000000 2345678", "3345678\n",
                                            hidden=True)]
    return options


def _summary_of_runs(session: PeerSession) -> list[dict[str, Any]]:
    out = []
    for run in session.doc.runs():
        result = run["result"] or {}
        stage = result.get("run") or {}
        tests = result.get("tests") or []
        out.append({"by": run["by"], "status": stage.get("status"), "code": stage.get("code"),
                    "passed": sum(bool(t.get("passed")) for t in tests), "tests": len(tests)})
    return out


async def run_host(args: argparse.Namespace) -> dict[str, Any]:
    host = await Host.start(
        signaling=args.signaling, config=_config(args), session_path=args.out, label="demo",
        **_host_options(args),
    )
    if args.runs:
        with host.doc.transaction("host"):
            host.doc.set_problem(PROBLEM, origin="host")
            host.doc.set_language("python", origin="host")
            if host.runs is not None:  # graded against the run service's own copy
                host.runs.set_public_tests(PUBLIC_TESTS)
            else:
                host.doc.set_public_tests(PUBLIC_TESTS, origin="host")
    Path(args.invite_out).write_text(host.invite.encode())
    say("host", f"session open; invite written to {args.invite_out}")
    await host.connected(args.connect_timeout)
    say("host", "candidate connected; typing")
    reporter = asyncio.create_task(report_links("host", host))
    typed = await type_for(host, args.seconds, random.Random(args.seed), "host")
    await host.send_control("demo", step="typed")
    say("host", f"typed {typed} characters; waiting for the candidate to finish")
    done = asyncio.Event()
    hashes: list[str] = []
    host_runs: list[str] = []

    def on_demo() -> None:
        for m in host.control_messages:
            step = str(m.get("step", ""))
            if step == "done":
                done.set()
            elif step.startswith("hash:"):
                hashes.append(step[5:])
            elif step == "run-please" and host.runs is not None:
                run_id = host.run_code()  # the interviewer presses Run
                host_runs.append(run_id)
                say("host", f"the interviewer runs the current code (run {run_id})")
        host.control_messages.clear()

    deadline = time.monotonic() + args.seconds + 90
    while not done.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        on_demo()
    converged = False
    while time.monotonic() < deadline:
        hashes.clear()
        await host.send_control("demo", step="check")
        await asyncio.sleep(0.3)
        on_demo()
        if hashes and hashes[-1] == code_hash(host):
            converged = True
            break
    if host.runs is not None:
        for run_id in host_runs:
            await asyncio.wait_for(host.runs.wait(run_id), 30)
    say("host", f"documents {'converged' if converged else 'DID NOT converge'}; sealing")
    events = len(host.events)
    kinds: dict[str, int] = {}
    for env in host.events:
        kinds[env.kind] = kinds.get(env.kind, 0) + 1
    reporter.cancel()
    runs = _summary_of_runs(host)
    path = await host.end()  # records the call's last statistics
    stats = host.call.last_stats if host.call is not None else None
    say("host", f"sealed session written to {path}")
    return {"role": "host", "typed": typed, "code": host.doc.code_text, "converged": converged,
            "events": events, "kinds": kinds, "runs": runs, "call_stats": stats,
            "links": host.links_made, "refusals": list(host.refusals), "path": str(path)}


async def run_candidate(args: argparse.Namespace) -> dict[str, Any]:
    invite = Path(args.invite_file).read_text().strip() if args.invite_file else args.invite
    cam: Any = None
    source = None
    if args.proctor and args.media:
        from .scenes import wall_clock_scenes

        source, cam = wall_clock_scenes([*PLANTED, (3600.0, "present")], fps=args.fps)
    cand = await Candidate.join(invite, config=_config(args), name="Demo Candidate",
                                timeout=args.connect_timeout,
                                media=_media(args, source=source, tap=args.proctor, tone=660.0))
    say("candidate", "connected; typing")
    reporter = asyncio.create_task(report_links("candidate", cand))
    if args.proctor:
        from ..proctor import SyntheticCamera

        if cam is None:  # headless: the proctor reads the synthetic camera directly
            cam = SyntheticCamera([*PLANTED, (3600.0, "present")], fps=10)
            cand.start_proctor(cam.stream())
        else:  # the proctor reads the call's camera through the tap
            cam.start = time.time()
            cand.start_proctor()
        say("candidate", "proctor started: out of view at +3 s for 5 s, a second face at "
            "+10 s for 4 s")
    rng = random.Random(args.seed + 1)
    typing = asyncio.create_task(type_for(cand, args.seconds, rng, "candidate"))
    await asyncio.sleep(args.seconds * 0.3)
    await cand.send_event("tab.hidden", {"phase": "start", "start": time.time(), "confidence": 1})
    await asyncio.sleep(args.seconds * 0.1)
    await cand.send_event("tab.hidden", {"phase": "end", "start": time.time() - 1,
                                         "end": time.time(), "duration": 1.0, "confidence": 1})
    await asyncio.sleep(args.seconds * 0.2)
    await cand.send_event("paste", {"phase": "instant", "chars": 42})
    typed = await typing
    if args.runs:
        await _candidate_runs(cand)
    if args.proctor and cam is not None:
        left = cam.start + sum(d for d, _ in PLANTED) + AFTER_PLANTED - time.time()
        if left > 0:
            say("candidate", f"waiting {left:.1f} s for the planted timeline to end")
            await asyncio.sleep(left)
        await cand.stop_proctor()
        await cand.events_sent()
    while cand.outbox and not cand.ended.is_set():
        await asyncio.sleep(0.05)
    say("candidate", f"typed {typed} characters, {len(cand.log)} events receipted; done")
    await cand.send_control("demo", step="done")
    while not cand.ended.is_set():
        for m in cand.control_messages:
            if m.get("t") == "demo" and m.get("step") == "check":
                await cand.send_control("demo", step="hash:" + code_hash(cand))
        cand.control_messages.clear()
        await asyncio.sleep(0.05)
    result = {"role": "candidate", "typed": typed, "code": cand.doc.code_text,
              "events": len(cand.log), "unreceipted": len(cand.outbox),
              "links": cand.links_made, "kinds": [e.kind for e in cand.log],
              "refusals": cand.run_refusals,
              "session_file": str(cand.store.path) if cand.store else None}
    reporter.cancel()
    await cand.close()
    return result


async def _wait_for(check: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssessIQError(f"the demo timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _candidate_runs(cand: Candidate) -> None:
    """A correct answer, a wrong one (asked over `control`), then an infinite loop that the
    interviewer runs."""
    got = asyncio.Event()

    def typed_by_host() -> bool:
        for m in cand.control_messages:
            if m.get("t") == "demo" and m.get("step") == "typed":
                got.set()
        return got.is_set()

    await _wait_for(typed_by_host, 120, "the host to finish typing")
    for label, code in (("a correct answer", CORRECT), ("a wrong answer", WRONG)):
        cand.doc.set_code(code, origin="candidate")
        ticket: RunTicket = await cand.request_run("python")
        await _wait_for(lambda t=ticket: t.state != "sent", 30, "the host's answer to a run")
        if ticket.state == "refused":
            say("candidate", f"run of {label} refused: {ticket.reason}")
            continue
        run_id = ticket.run_id
        await _wait_for(lambda i=run_id: any(r["run_id"] == i and r["result"] is not None
                                             for r in cand.doc.runs()), 60, "a run result")
        [summary] = [s for s, r in zip(_summary_of_runs(cand), cand.doc.runs(), strict=True)
                     if r["run_id"] == run_id]
        say("candidate", f"ran {label}: status {summary['status'] or 'ok'}, "
            f"{summary['passed']}/{summary['tests']} public tests passed")
    cand.doc.set_code(HOSTILE, origin="candidate")
    await cand.send_control("demo", step="run-please")
    await _wait_for(lambda: len(cand.doc.runs()) >= 3 and cand.doc.runs()[-1]["result"]
                    is not None, 60, "the interviewer's run")
    summary = _summary_of_runs(cand)[-1]
    say("candidate", f"the interviewer ran an infinite loop: status {summary['status']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m assessiq.peer.scripted", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=("host", "candidate"))
    parser.add_argument("--signaling", help="signaling server URL (host)")
    parser.add_argument("--invite-out", default="invite.txt", help="where the host writes it")
    parser.add_argument("--invite-file", help="read the invite from this file (candidate)")
    parser.add_argument("--invite", help="the invite text (candidate)")
    parser.add_argument("--out", help="the host's session file")
    parser.add_argument("--result", help="write a JSON result here")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connect-timeout", type=float, default=60.0)
    parser.add_argument("--ice", action="append", default=[], help="stun:/turn: URL")
    parser.add_argument("--turn-user")
    parser.add_argument("--turn-password")
    parser.add_argument("--relay-only", action="store_true")
    parser.add_argument("--loopback", action="store_true",
                        help="offer only 127.0.0.1 as ICE host candidate")
    parser.add_argument("--proctor", action="store_true",
                        help="the candidate's proctor watches a planted synthetic timeline")
    parser.add_argument("--runs", action="store_true",
                        help="runs over control: correct, wrong, and an infinite loop")
    parser.add_argument("--media", action="store_true",
                        help="synthetic audio and video both ways, call stats recorded")
    parser.add_argument("--fps", type=int, default=15, help="video frame rate with --media")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.loopback:
        restrict_host_addresses(["127.0.0.1"])
    runner = run_host if args.role == "host" else run_candidate
    try:
        result = asyncio.run(runner(args))
    except (AssessIQError, OSError) as exc:  # e.g. an invite file that is not there
        say(args.role, f"error: {exc}")
        return 2
    if args.result:
        Path(args.result).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
