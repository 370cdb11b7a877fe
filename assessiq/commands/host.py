"""`assessiq host`: the interviewer's app (create a session, invite, interview, seal).

Started again after the app died (a crash, a kill, a reboot), it names the unsealed sessions
it finds in the data dir; `--list-unsealed` lists them and `--resume` goes on with one (see
`assessiq.peer.Host.resume`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .options import add_device_options

if TYPE_CHECKING:
    from ..peer.host import SessionSummary

__all__ = ["choose", "describe", "register"]

RECENT_S = 3600.0
"""`--resume` alone takes the one session alive within this many seconds."""


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "host",
        help="open the interviewer's app in the browser",
        description=(
            "Start the interviewer's app on 127.0.0.1 and open it in the browser: create a "
            "session (problem, language, duration, policy), send the invite, run the "
            "interview, then seal the session file and export a report. The page address "
            "carries a per-run secret; only this run's URL opens it. A session whose app "
            "stopped before the seal (a crash, a kill, a reboot) stays unsealed in the data "
            "dir and can be resumed: the same room and invite, the document, runs, notes and "
            "the verified log come back, the restart is recorded, and the candidate's app "
            "reconnects by itself."
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
    p.add_argument("--list-unsealed", action="store_true",
                   help="list this host key's unsealed sessions in the data dir and exit")
    p.add_argument("--resume", nargs="?", const="", metavar="ROOM|PATH",
                   help="go on with an unsealed session: ROOM is the start of its room id "
                        "(4 characters or more) or its label, as --list-unsealed shows "
                        "them, or give the session file's path; alone: the only unsealed "
                        "session, or the only one alive in the last hour")
    add_device_options(p)
    p.set_defaults(func=run)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t > 0 else "?"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def describe(sessions: list[SessionSummary], folder: Path) -> str:
    """`--list-unsealed`'s text: one line per session, most recently alive first."""
    if not sessions:
        return f"no unsealed sessions in {folder}"
    lines = [f"{len(sessions)} unsealed session{'s' if len(sessions) > 1 else ''} in "
             f"{folder} (resume one with: assessiq host --resume ROOM):",
             f"  {'ROOM':10} {'LABEL':16} {'CANDIDATE':16} {'STARTED':16} LAST ALIVE"]
    for s in sessions:
        who = s.candidate or ("(joined)" if s.joined else "(nobody yet)")
        lines.append(f"  {s.room[:10]:10} {_cut(s.label or '-', 16):16} {_cut(who, 16):16} "
                     f"{_when(s.created):16} {_when(s.last_alive)}"
                     f"{'  (open in a running app)' if s.in_use else ''}")
    return "\n".join(lines)


def choose(sessions: list[SessionSummary], choice: str, *, now: float | None = None
           ) -> SessionSummary:
    """The session `--resume CHOICE` names: a path, a label, or the start of a room id (4
    characters or more); an empty choice is the only session, or the only one alive in the
    last hour. `AssessIQError` (one line) when none or several match."""
    from ..core.errors import AssessIQError

    if not sessions:
        raise AssessIQError("there is no unsealed session to resume (see --list-unsealed)")
    if not choice:
        if len(sessions) == 1:
            return sessions[0]
        now = time.time() if now is None else now
        recent = [s for s in sessions if now - s.last_alive < RECENT_S]
        if len(recent) == 1:
            return recent[0]
        raise AssessIQError(f"{len(sessions)} unsealed sessions: name one with --resume ROOM "
                            "(see --list-unsealed)")
    if choice.endswith(".aiq") or "/" in choice:
        resolved = Path(choice).expanduser().resolve()
        for s in sessions:
            if s.path.resolve() == resolved:
                return s
        raise AssessIQError(f"{choice} is not one of this host's unsealed sessions "
                            "(see --list-unsealed)")
    matches = [s for s in sessions if s.label == choice] or \
        ([s for s in sessions if s.room.startswith(choice)] if len(choice) >= 4 else [])
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise AssessIQError(f"no unsealed session has the room or label {choice!r} "
                            "(see --list-unsealed)")
    raise AssessIQError(f"{len(matches)} unsealed sessions match {choice!r}: give more of "
                        "the room id")


def _resume_choice(args: argparse.Namespace) -> Path | None:
    """`--list-unsealed` prints the list; `--resume` picks a session and checks it can be
    resumed (a one-line `AssessIQError` otherwise); without either, a note says how many
    unsealed sessions there are. Returns the file to resume, or None."""
    from ..core.errors import AssessIQError, StoreError
    from ..core.identity import load_or_create_host_identity
    from ..core.paths import sessions_dir
    from ..core.store import SessionStore
    from ..peer.host import check_resumable, unsealed_sessions

    identity = load_or_create_host_identity()
    folder = sessions_dir()
    sessions = unsealed_sessions(folder, identity=identity)
    if args.list_unsealed:
        print(describe(sessions, folder))
        return None
    if args.resume is None:
        if sessions:
            n = len(sessions)
            print(f"assessiq: {n} unsealed session{'s' if n > 1 else ''} can be resumed: "
                  "assessiq host --resume ROOM (--list-unsealed lists them)", file=sys.stderr)
        return None
    chosen = choose(sessions, args.resume).path
    try:
        store = SessionStore.open(chosen)
    except StoreError as exc:
        raise AssessIQError(f"cannot resume: {exc}") from None
    try:
        check_resumable(store, identity)
    finally:
        store.close()
    print(f"assessiq: resuming {chosen}", file=sys.stderr)
    return chosen


def run(args: argparse.Namespace) -> int:
    if args.list_unsealed and args.resume is not None:
        from ..core.errors import AssessIQError

        raise AssessIQError("give --list-unsealed or --resume, not both")
    resume = _resume_choice(args)
    if args.list_unsealed:
        return 0
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
    prepare = None
    if resume is not None:  # the host page opens this session where it stopped
        state.extra["resume"] = resume

        async def prepare() -> None:
            from ..core.errors import AssessIQError
            from ..room.host import HostController

            try:
                state.host = await HostController.resume(
                    resume, config=state.peer_config(), call=state.calls["host"],
                    run_backend=config.sandbox_backend_instance())
            except AssessIQError as exc:  # (the start page offers it again)
                print(f"assessiq: {exc}", file=sys.stderr, flush=True)

    serve(state, ("host",), port=args.port, start_path="host",
          open_browser=not args.no_browser, title="host", prepare=prepare)
    return 0
