"""`assessiq join INVITE`: the candidate's app (check the invite, consent, interview)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from .options import add_device_options

if TYPE_CHECKING:
    from ..peer.candidate import Resumable

__all__ = ["register", "resumable"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "join",
        help="join an interview with the invite you were sent",
        description=(
            "Check the invite (signature, expiry) and show the interviewer's key fingerprint, "
            "then open the candidate's app on 127.0.0.1: what is monitored and what leaves "
            "this computer, consent, camera check, and the interview with a list of every "
            "event sent about you. Without INVITE the app asks for it. Run again with the "
            "same invite on the same computer (after the app or the computer stopped), it "
            "continues the unfinished interview: same device key, nothing you typed or was "
            "sent lost, the restart recorded."
        ),
    )
    p.add_argument("invite", nargs="?", help="the invite: aiq1.…, or a link to it "
                   "(https://<server>/join#aiq1.… or assessiq://join/aiq1.…)")
    p.add_argument("--name", help="your name, shown to the interviewer")
    p.add_argument("--port", type=int, default=8732, help="local port (default 8732)")
    p.add_argument("--signaling", metavar="URL", help="override the invite's signaling server")
    p.add_argument("--no-browser", action="store_true", help="print the URL, do not open it")
    p.add_argument("--new-session", action="store_true",
                   help="do not continue the unfinished interview this computer has for this "
                        "invite: join as a new device (the interviewer must admit it)")
    add_device_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    from ..config import load_config
    from ..room.call import plan_call
    from ..room.candidate import CandidateController
    from ..ui.app import AppState, check_port, serve

    check_port(args.port)
    config = load_config()  # ConfigError: one line, exit 2
    # ResumeError (one line, exit 2) when another running app holds this interview
    resume = resumable(args.invite) if args.invite else None
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
        if resume is not None and args.new_session:
            resume.leave()
            print(f"Starting a new session: the unfinished one ({resume.path.name}) is kept "
                  "but not continued; the interviewer must admit this computer as a new "
                  "device.")
        elif resume is not None:  # `Candidate.join` continues it when you join
            from ..core.resume import away_words

            print(f"Resuming your interview from {resume.path.name} (last active "
                  f"{away_words(time.time() - resume.last_active)} ago).")
    if state.calls["candidate"].synthetic:
        print("Synthetic camera: a generated picture is sent instead of your video, and the "
              "interviewer is told so.")
    serve(state, ("candidate",), port=args.port, start_path="join",
          open_browser=not args.no_browser, title="candidate")
    return 0


def resumable(invite_text: str) -> Resumable | None:
    """The unfinished session this computer has for the invite (None: none, or the invite
    does not parse: the controller says why). `ResumeError` (exit 2, one line) when another
    running app holds it."""
    from ..core.errors import InviteError
    from ..peer.candidate import ResumeError, decode_for_resume, find_resumable

    try:
        invite = decode_for_resume(invite_text)
    except InviteError:
        return None
    found = find_resumable(invite)
    if found is not None and found.in_use:
        raise ResumeError("this interview is already open in another AssessIQ window on this "
                          "computer; use that one (or close it first)")
    return found

