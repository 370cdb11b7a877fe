"""App startup: the state of one run of the app, the per-run secret, and the server.

Every page lives under `/<token>/...`, where the token is a fresh random secret made at
startup and printed only in the URL the app opens: another local user who can reach
127.0.0.1 cannot open someone's session without it (a wrong token gets a 404). The server
answers only its own Host and Origin (`localguard.py`), so a web page cannot reach it through
DNS rebinding or a cross-site websocket.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from nicegui import app as nicegui_app
from nicegui import ui

from ..core.errors import AssessIQError
from .candidate_pages import register as register_candidate
from .editor import add_editor_route
from .host_pages import register as register_host
from .localguard import LocalGuard, allowed_origins, limit_socketio_origins
from .replay_page import register as register_replay
from .state import AppState, check_token
from .video_stream import add_video_routes

__all__ = ["AppState", "check_token", "register_pages", "serve"]

log = logging.getLogger(__name__)


def register_pages(state: AppState, roles: tuple[str, ...]) -> None:
    """Register the pages of the given roles ("host", "candidate", "replay")."""
    if "host" in roles:
        register_host(state)
    if "candidate" in roles:
        register_candidate(state)
    if "replay" in roles:
        register_replay(state)

    # the video tiles' frames: GET /<token>/video/<name> and WS /<token>/video/<name>/ws
    add_video_routes(nicegui_app, lambda: state.token, state.videos)
    # the shared editors' y-sync websockets: WS /<token>/yjs/<room>
    add_editor_route(nicegui_app, lambda: state.token)

    async def shutdown() -> None:
        if state.host is not None:
            await state.host.close()
        if state.candidate is not None:
            await state.candidate.close()

    nicegui_app.on_shutdown(shutdown)


def check_port(port: int) -> None:
    """Refuse a port out of range, or one another program already listens on at
    127.0.0.1, before any work starts (a user's mistake: one line). Binding and closing a
    socket is the check: it fails exactly when the app's own server would (it binds with
    SO_REUSEADDR too, so a port left in TIME_WAIT counts as free), instead of letting
    uvicorn log the error and exit."""
    if not 0 < port < 65536:
        raise AssessIQError("--port must be 1..65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name != "nt":  # on Windows SO_REUSEADDR would let it share a busy port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
                raise AssessIQError(f"port {port} on 127.0.0.1 is already in use (another "
                                    "AssessIQ app?); choose another with --port") from exc
            raise AssessIQError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; "
                                "choose another with --port") from exc


def serve(state: AppState, roles: tuple[str, ...], *, port: int, start_path: str,
          open_browser: bool, title: str, extra_paths: tuple[str, ...] = (),
          prepare: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run the app on 127.0.0.1:`port` until interrupted (blocking). `prepare` runs once the
    server's loop is up, before the browser is opened. A port out of range or in use is
    the user's mistake: `AssessIQError`, one line."""
    check_port(port)
    register_pages(state, roles)
    urls = (state.url(port, start_path), *(state.url(port, p) for p in extra_paths))

    async def startup() -> None:
        if prepare is not None:
            await prepare()
        for url in urls:
            print(f"AssessIQ {title}: open {url}", flush=True)
        if open_browser:
            import webbrowser

            for url in urls:
                webbrowser.open(url)

    nicegui_app.on_startup(startup)
    # only this app's own Host and Origin (DNS rebinding, cross-site websockets): localguard.py
    nicegui_app.add_middleware(LocalGuard)
    limit_socketio_origins(allowed_origins(port))
    # Quasar's brand colours, darkened where text in them on white fell below WCAG's 4.5:1
    # contrast (axe-core, tests/test_ui_a11y.py): white on NiceGUI's primary #5898d4 was 3.1:1,
    # the positive and warning text colours 2.6:1 and 1.7:1.
    nicegui_app.colors(primary="#1976d2", positive="#2e7d32", warning="#9a6700")
    ui.add_css(Path(__file__).parent / "static" / "a11y.css", shared=True)
    ui.run(host="127.0.0.1", port=port, title=f"AssessIQ {title}", reload=False,
           show=False, show_welcome_message=False, favicon="🧭", language="en-US",
           storage_secret=secrets.token_urlsafe(16), uvicorn_logging_level="warning")
