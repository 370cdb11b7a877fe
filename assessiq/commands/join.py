"""`assessiq join INVITE`: the candidate's app (check the invite, consent, interview)."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_device_options

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "join",
        help="join an interview with the invite you were sent",
        description=(
            "Check the invite (signature, expiry) and show the interviewer's key fingerprint, "
            "then open the candidate's app on 127.0.0.1: what is monitored and what leaves "
            "this computer, consent, camera check, and the interview with a list of every "
            "event sent about you. Without INVITE the app asks for it."
        ),
    )
    p.add_argument("invite", nargs="?", help="the invite: aiq1.…, or a link to it "
                   "(https://<server>/join#aiq1.… or assessiq://join/aiq1.…)")
    p.add_argument("--name", help="your name, shown to the interviewer")
    p.add_argument("--port", type=int, default=8732, help="local port (default 8732)")
    p.add_argument("--signaling", metavar="URL", help="override the invite's signaling server")
    p.add_argument("--no-browser", action="store_true", help="print the URL, do not open it")
    add_device_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    from ..config import load_config
    from ..room.call import plan_call
    from ..room.candidate import CandidateController
    from ..ui.app import AppState, check_port, serve

    check_port(args.port)
    config = load_config()  # ConfigError: one line, exit 2
    state = AppState(invite_text=args.invite, name=args.name, signaling=args.signaling,
                     app_config=config)
    state.calls["candidate"] = plan_call("candidate", camera=args.camera,
                                           microphone=args.microphone)
    if args.invite:
        # InviteError (an AssessIQError) becomes a one-line message and exit 2.
        state.candidate = CandidateController(args.invite, name=args.name,
                                              signaling=args.signaling,
                                              config=state.peer_config(),
                                              call=state.calls["candidate"])
        print(f"Invite checked. Interviewer's key fingerprint: "
              f"{state.candidate.host_fingerprint} — compare it with what they tell you.")
    if state.calls["candidate"].synthetic:
        print("Synthetic camera: a generated picture is sent instead of your video, and the "
              "interviewer is told so.")
    serve(state, ("candidate",), port=args.port, start_path="join",
          open_browser=not args.no_browser, title="candidate")
    return 0
