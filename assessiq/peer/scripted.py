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


def _config(args: argparse.Namespace) -> PeerConfig:
    servers = tuple(
        IceServer(url, args.turn_user, args.turn_password) if url.startswith("turn")
        else IceServer(url)
        for url in args.ice
    )
    return PeerConfig(ice_servers=servers, relay_only=args.relay_only)


async def run_host(args: argparse.Namespace) -> dict[str, Any]:
    host = await Host.start(
        signaling=args.signaling, config=_config(args), session_path=args.out, label="demo"
    )
    Path(args.invite_out).write_text(host.invite.encode())
    say("host", f"session open; invite written to {args.invite_out}")
    await host.connected(args.connect_timeout)
    say("host", "candidate connected; typing")
    reporter = asyncio.create_task(report_links("host", host))
    typed = await type_for(host, args.seconds, random.Random(args.seed), "host")
    say("host", f"typed {typed} characters; waiting for the candidate to finish")
    done = asyncio.Event()
    hashes: list[str] = []

    def on_demo() -> None:
        for m in host.control_messages:
            step = str(m.get("step", ""))
            if step == "done":
                done.set()
            elif step.startswith("hash:"):
                hashes.append(step[5:])
        host.control_messages.clear()

    deadline = time.monotonic() + args.seconds + 60
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
    say("host", f"documents {'converged' if converged else 'DID NOT converge'}; sealing")
    events = len(host.events)
    reporter.cancel()
    path = await host.end()
    say("host", f"sealed session written to {path}")
    return {"role": "host", "typed": typed, "code": host.doc.code_text, "converged": converged,
            "events": events, "links": host.links_made, "refusals": host.refusals,
            "path": str(path)}


async def run_candidate(args: argparse.Namespace) -> dict[str, Any]:
    invite = Path(args.invite_file).read_text().strip() if args.invite_file else args.invite
    cand = await Candidate.join(invite, config=_config(args), name="Demo Candidate",
                                timeout=args.connect_timeout)
    say("candidate", "connected; typing")
    reporter = asyncio.create_task(report_links("candidate", cand))
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
              "links": cand.links_made}
    reporter.cancel()
    await cand.close()
    return result


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
    except AssessIQError as exc:
        say(args.role, f"error: {exc}")
        return 2
    if args.result:
        Path(args.result).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
