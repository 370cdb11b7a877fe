"""`assessiq host`: the interviewer's app (create a session, invite, interview, seal)."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_device_options

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "host",
        help="open the interviewer's app in the browser",
        description=(
            "Start the interviewer's app on 127.0.0.1 and open it in the browser: create a "
            "session (problem, language, duration, policy), send the invite, run the "
            "interview, then seal the session file and export a report. The page address "
            "carries a per-run secret; only this run's URL opens it."
        ),
    )
    p.add_argument("--port", type=int, default=8731, help="local port (default 8731)")
    p.add_argument("--problem", metavar="FILE.md",
                   help="a problem in Markdown with public and hidden tests (see docs/ui.md)")
    p.add_argument("--signaling", metavar="URL",
                   help="a signaling server (ws:// or wss://); default: one embedded on "
                        "127.0.0.1, for a candidate on this machine")
    p.add_argument("--lan", metavar="ADDRESS",
                   help="LAN mode: serve signaling on ADDRESS and advertise it with zeroconf")
    p.add_argument("--no-browser", action="store_true", help="print the URL, do not open it")
    add_device_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    from ..config import load_config
    from ..room.call import plan_call
    from ..room.problems import load_problem
    from ..ui.app import AppState, check_port, serve

    check_port(args.port)
    config = load_config()  # ConfigError: one line, exit 2
    state = AppState(signaling=args.signaling or (None if args.lan else config.signaling_url),
                     app_config=config)
    state.calls["host"] = plan_call("host", camera=args.camera, microphone=args.microphone)
    if args.problem:
        state.problem_file = load_problem(args.problem)  # ProblemError: one line, exit 2
    if args.lan:
        state.lan, state.lan_address = True, args.lan
    serve(state, ("host",), port=args.port, start_path="host",
          open_browser=not args.no_browser, title="host")
    return 0
