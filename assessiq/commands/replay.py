"""`assessiq replay SESSION`: scrub through a sealed session in the browser."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        help="replay a sealed session file in the browser",
        description=(
            "Open a session file in a local viewer: a timeline to scrub with the code as it "
            "was typed, runs and their output, integrity events and notes, and whether the "
            "file verifies."
        ),
    )
    p.add_argument("session", help="the session file (.aiq)")
    p.add_argument("--port", type=int, default=8733, help="local port (default 8733)")
    p.add_argument("--no-browser", action="store_true", help="print the URL, do not open it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core.record import SessionRecord
    from ..ui.app import AppState, check_port, serve

    check_port(args.port)
    path = Path(args.session)
    SessionRecord.load(path)  # RecordError: a one-line message and exit 2 before serving
    state = AppState(replay_path=path)
    serve(state, ("replay",), port=args.port, start_path="replay",
          open_browser=not args.no_browser, title="replay")
    return 0
