"""The browser demo: the host's and the candidate's apps on this machine, ready to type.

One process serves both apps (each under the run's secret): a session is created at startup
with the first problem of the built-in bank and a signaling server embedded on 127.0.0.1; the
candidate's invite is already checked. Two browser tabs open: the interviewer's lobby and the
candidate's consent screen. Once the candidate agrees and joins, the interview starts on both.

Both sides use the synthetic camera (and a synthetic tone for a microphone, played nowhere:
both apps on one machine would echo), so the video tiles and the candidate's proctor are live.
The candidate's camera plays a planted timeline from the moment they join: present (the
camera check calibrates on it), then out of view for 6 s and a second face for 5 s, so the
proctor's events show up in both panels within the first minute.
"""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["DEMO_TIMELINE", "run_ui_demo"]

log = logging.getLogger(__name__)

DEMO_TIMELINE: tuple[tuple[float, str], ...] = (
    (15.0, "present"), (6.0, "absent"), (8.0, "present"), (5.0, "two_faces"),
    (1e7, "present"))


def run_ui_demo(args: argparse.Namespace) -> int:
    from ..room.call import plan_call
    from ..room.candidate import CandidateController
    from ..room.host import HostController, HostSetup
    from ..room.problems import BANK
    from .app import AppState, check_port, serve

    port = int(getattr(args, "port", None) or 8730)
    check_port(port)
    state = AppState(name="Demo candidate")
    state.extra["auto_start"] = True
    camera = getattr(args, "camera", "synthetic")
    microphone = getattr(args, "microphone", "synthetic")
    state.calls["host"] = plan_call("host", camera=camera, microphone=microphone, speaker=None)
    state.calls["candidate"] = plan_call("candidate", camera=camera, microphone=microphone,
                                         speaker=None, scenes=DEMO_TIMELINE)
    for plan in state.calls.values():
        if plan.synthetic:
            plan.note = "Demo: a synthetic camera (a generated picture) stands in for a camera."

    async def prepare() -> None:
        setup = HostSetup(problem=next(iter(BANK.values())), label="demo")
        state.host = await HostController.start(setup, call=state.calls["host"])
        state.candidate = CandidateController(state.host.invite_text, name="Demo candidate",
                                              call=state.calls["candidate"])
        log.info("demo: session %s ready", state.host.host.invite.room[:8])

    serve(state, ("host", "candidate"), port=port, start_path="host/lobby",
          extra_paths=("join",), open_browser=not getattr(args, "no_browser", False),
          title="demo", prepare=prepare)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m assessiq.ui.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8730, help="local port (default 8730)")
    parser.add_argument("--no-browser", action="store_true", help="print the URLs only")
    from ..core.errors import AssessIQError

    try:
        return run_ui_demo(parser.parse_args())
    except AssessIQError as exc:
        print(f"assessiq: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
