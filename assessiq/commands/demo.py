"""`assessiq demo`: a whole interview on this machine.

Without --headless, both apps open in the browser from one process (the interviewer's lobby
and the candidate's consent page, on 127.0.0.1:--port under a per-run secret), with synthetic
cameras on both sides so the video and the candidate's proctor are live.

`assessiq demo --headless --seconds N --out FILE` starts a real signaling server on
127.0.0.1, then the host and the candidate as two processes (`python -m
assessiq.peer.scripted`) that connect over real aiortc on loopback, type at the same time,
and sign a few integrity events (a tab switch, a paste). Meanwhile the candidate's proctor
(real MediaPipe analysis) watches a synthetic camera with planted conditions — out of view
for 5 s, then a second face for 4 s — and signs its events and heartbeats. After typing, the
candidate asks the host to run a correct answer and a wrong one, and the interviewer runs an
infinite loop (killed: status TO); the host runs them in the local sandbox with public and
hidden tests. With --media (the default) synthetic audio and video go both ways, the proctor
reads the candidate's own outgoing camera, and the host records the call statistics. The
host ends and seals the session and writes its session file to FILE; `assessiq verify FILE`
checks it and shows the proctoring findings. Progress lines go to stderr. The planted
timeline takes 16 s, so the demo lasts at least that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["register"]

INVITE_WAIT_S = 60
"""How long the headless host may take to start and write its invite."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "demo",
        help="run a whole interview on this machine (host and candidate)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--headless", action="store_true",
                        help="no browser: two scripted processes type and send events")
    parser.add_argument("--seconds", type=float, default=None,
                        help="headless: how long both sides type (default 10)")
    parser.add_argument("--out", type=Path, default=None,
                        help="headless: where to write the host's sealed session file "
                             "(default demo-session.aiq)")
    parser.add_argument("--media", action=argparse.BooleanOptionalAction, default=True,
                        help="headless: synthetic audio and video both ways (default: on)")
    parser.add_argument("--port", type=int, default=8730,
                        help="browser demo: the local port of both apps (default 8730)")
    parser.add_argument("--no-browser", action="store_true",
                        help="browser demo: print the two URLs, do not open them")
    parser.add_argument("--camera", default="synthetic", metavar="DEVICE",
                        help="browser demo: both sides' camera — synthetic (default), auto, "
                             "none, or a device from `assessiq devices`")
    parser.add_argument("--microphone", default="synthetic", metavar="DEVICE",
                        help="browser demo: both sides' microphone — synthetic (a tone, the "
                             "default), auto, none, or a device from `assessiq devices`")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.headless:
        if args.out is not None or args.seconds is not None:
            print("assessiq: --out and --seconds go with --headless (the browser demo seals "
                  "from the interviewer's page)", file=sys.stderr)
            return 2
        from ..ui.demo import run_ui_demo

        return run_ui_demo(args)
    if (args.camera, args.microphone) != ("synthetic", "synthetic"):
        print("assessiq: --camera and --microphone go with the browser demo (the headless demo "
              "always sends synthetic video and a tone)", file=sys.stderr)
        return 2
    args.seconds = 10.0 if args.seconds is None else args.seconds
    args.out = Path("demo-session.aiq") if args.out is None else args.out
    if not 1 <= args.seconds <= 3600:
        print("assessiq: --seconds must be between 1 and 3600", file=sys.stderr)
        return 2
    out: Path = args.out
    if out.exists():
        print(f"assessiq: {out} already exists; choose another --out", file=sys.stderr)
        return 2
    if not out.parent.is_dir():
        print(f"assessiq: the folder {out.parent} does not exist", file=sys.stderr)
        return 2
    return asyncio.run(_demo(args.seconds, out, media=args.media))


def progress(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


async def _demo(seconds: float, out: Path, *, media: bool = True) -> int:
    from signaling import ServerConfig, SignalingServer

    async with SignalingServer(ServerConfig(host="127.0.0.1", port=0)) as server:
        url = f"ws://127.0.0.1:{server.port}"
        progress(f"signaling server on {url}")
        with tempfile.TemporaryDirectory(prefix="assessiq-demo-") as tmp:
            work = Path(tmp)
            invite = work / "invite.txt"
            common = ["--seconds", str(seconds), "--loopback", "--proctor", "--runs"]
            if media:
                common.append("--media")
            env = {**os.environ, "ASSESSIQ_DATA_DIR": str(work / "data")}
            host = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "assessiq.peer.scripted", "host", "--signaling", url,
                "--invite-out", str(invite), "--out", str(out.resolve()),
                "--result", str(work / "host.json"), *common, env=env,
            )
            progress(f"host process {host.pid} started")
            deadline = time.monotonic() + INVITE_WAIT_S  # a loaded laptop imports slowly
            while not (invite.exists() and invite.stat().st_size):
                if host.returncode is not None:
                    progress(f"the host exited (code {host.returncode}) before making an "
                             "invite; nothing to join")
                    return 1
                if time.monotonic() > deadline:
                    host.kill()
                    progress(f"the host did not produce an invite within {INVITE_WAIT_S} s")
                    return 1
                await asyncio.sleep(0.05)
            cand = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "assessiq.peer.scripted", "candidate",
                "--invite-file", str(invite), "--result", str(work / "cand.json"), *common,
                env=env,
            )
            progress(f"candidate process {cand.pid} started")
            limit = seconds + 120
            try:
                codes = await asyncio.wait_for(
                    asyncio.gather(host.wait(), cand.wait()), timeout=limit
                )
            except TimeoutError:
                for proc in (host, cand):
                    if proc.returncode is None:
                        proc.kill()
                progress(f"the demo did not finish within {limit:g} s")
                return 1
            if any(codes):
                progress(f"a participant failed (exit codes host={codes[0]}, cand={codes[1]})")
                return 1
            h = json.loads((work / "host.json").read_text())
            c = json.loads((work / "cand.json").read_text())
    same = h["code"] == c["code"]
    progress(f"host typed {h['typed']} chars, candidate {c['typed']}; documents "
             f"{'identical' if same else 'DIFFERENT'}; {h['events']} events verified by the host")
    kinds = h.get("kinds") or {}
    progress("proctoring events verified by the host: " + (", ".join(
        f"{k} ×{n}" for k, n in sorted(kinds.items())
        if k.startswith(("face.", "gaze.", "head.", "camera.", "proctor."))) or "none"))
    for run in h.get("runs") or []:
        progress(f"run by {run['by']}: status {run['status'] or 'ok'} (exit {run['code']}), "
                 f"{run['passed']}/{run['tests']} public tests passed")
    stats = h.get("call_stats")
    if stats:
        v, a = stats["video"], stats["audio"]
        progress(f"call: video sent {v['frames_sent']} frames ({v['fps_sent']} fps, "
                 f"{v['kbps_sent']} kbit/s), received {v['frames_received']} "
                 f"({v['fps_received']} fps, {v['kbps_received']} kbit/s); audio frames "
                 f"sent {a['frames_sent']}, received {a['frames_received']}")
    elif media:
        progress("call: no statistics were recorded")
    progress(f"sealed session file: {out}  (check it with `assessiq verify {out}`)")
    return 0 if same and h["converged"] else 1
