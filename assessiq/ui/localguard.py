"""The local apps answer only their own browser: an ASGI guard on Host and Origin.

The apps listen on 127.0.0.1 and keep every page under a secret path, but that alone does
not stop a web page in the same browser from talking to them:

- **DNS rebinding.** A site the user visits can make its own name resolve to 127.0.0.1 and
  then send requests to `http://evil.example:PORT/…`: they reach the app with
  `Host: evil.example:PORT`, and the browser treats the answers as that site's own (same
  origin), so it can read them. Refusing any `Host` that is not this app's own loopback
  name and port (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`) ends that.
- **Cross-site websocket hijacking.** Browsers apply no same-origin rule to websockets, and
  NiceGUI's socket.io accepts any `Origin` (`cors_allowed_origins='*'`, echoed back in
  `Access-Control-Allow-Origin`). Every request carrying an `Origin` that is not this app's
  own (`http://127.0.0.1:PORT`, `http://localhost:PORT`, `http://[::1]:PORT`) is refused,
  websocket or not; a request without `Origin` (a top-level navigation, a plain GET) is let
  through, since browsers omit it there, and the Host check still applies to it.

`LocalGuard` is pure ASGI (it sees `http` and `websocket` scopes alike, including NiceGUI's
socket.io under `/_nicegui_ws/`). A refused HTTP request gets 421 (wrong Host) or 403
(foreign Origin) with a one-line plain-text body; a refused websocket gets the same as its
handshake's HTTP answer. The port is the one the server really listens on, read from the
ASGI `server` of each request (so a server bound to port 0 is covered), unless one is given.
Each refusal is logged once per (host, origin).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LocalGuard", "allowed_hosts", "allowed_origins", "limit_socketio_origins"]

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# at most this many distinct (host, origin) pairs are remembered for "log once"; past it a
# refusal is logged at debug level only (a flood of made-up names must not grow memory)
LOGGED_LIMIT = 256


def allowed_hosts(port: int) -> frozenset[str]:
    """The `Host` values this app answers when it listens on `port` (lowercase)."""
    hosts = {f"{name}:{port}" for name in LOOPBACK_NAMES}
    if port == 80:  # a browser leaves out the scheme's default port
        hosts.update(LOOPBACK_NAMES)
    return frozenset(hosts)


def allowed_origins(port: int) -> frozenset[str]:
    """The `Origin` values of this app's own pages when it listens on `port`."""
    return frozenset(f"http://{host}" for host in allowed_hosts(port))


def limit_socketio_origins(origins: Iterable[str]) -> None:
    """Make NiceGUI's socket.io server accept (and echo in CORS headers) only `origins`
    instead of its default `'*'`: the same rule as `LocalGuard`, kept inside socket.io too
    in case a request ever reaches it another way."""
    from nicegui import core

    core.sio.eio.cors_allowed_origins = sorted(origins)


class LocalGuard:
    """ASGI middleware: refuse a request whose Host is not this app's own loopback
    host:port (421) or whose Origin is present and not this app's own origin (403)."""

    def __init__(self, app: ASGIApp, port: int | None = None) -> None:
        self.app = app
        self.port = port
        self._logged: set[tuple[str, str]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        reason = self._refusal(scope)
        if reason is None:
            await self.app(scope, receive, send)
            return
        status, text, host, origin = reason
        self._log(scope, text, host, origin)
        await _refuse(scope, receive, send, status, text)

    def _refusal(self, scope: Scope) -> tuple[int, str, str, str] | None:
        """(status, one-line reason, host, origin) when the request is refused, else None."""
        hosts: list[str] = []
        origins: list[str] = []
        for key, value in scope.get("headers", ()):
            if key == b"host":
                hosts.append(value.decode("latin-1"))
            elif key == b"origin":
                origins.append(value.decode("latin-1"))
        host = hosts[0] if len(hosts) == 1 else ",".join(hosts)
        origin = ",".join(origins)
        port = self.port if self.port is not None else _server_port(scope)
        if port is None:
            return 421, "this app cannot tell its own port", host, origin
        if len(hosts) != 1 or host.lower() not in allowed_hosts(port):
            return 421, "this app answers only 127.0.0.1 or localhost on its own port", \
                host, origin
        if origins and (len(origins) != 1 or origin.lower() not in allowed_origins(port)):
            return 403, "requests from other sites are refused", host, origin
        return None

    def _log(self, scope: Scope, text: str, host: str, origin: str) -> None:
        key = (host, origin)
        if key in self._logged:
            return
        if len(self._logged) >= LOGGED_LIMIT:
            log.debug("refused %s %s (Host %r, Origin %r): %s", scope["type"],
                      scope.get("path", ""), host, origin, text)
            return
        self._logged.add(key)
        log.warning("refused %s %s (Host %r, Origin %r): %s; further requests with this "
                    "Host and Origin are refused without a log line", scope["type"],
                    scope.get("path", ""), host, origin, text)


def _server_port(scope: Scope) -> int | None:
    """The port the server accepted this connection on (uvicorn's `server` in the scope:
    the listening socket's own address, not anything the client sent)."""
    server = scope.get("server")
    if not server or len(server) < 2 or not isinstance(server[1], int):
        return None
    port: int = server[1]
    return port


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"),
               (b"content-length", str(len(body)).encode())]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    # a websocket: answer its handshake with the same HTTP response where the server can
    # (the ASGI denial-response extension), else close before accepting (an HTTP 403)
    await receive()  # the handshake ("websocket.connect"), never accepted
    if "websocket.http.response" in scope.get("extensions", {}):
        start: Message = {"type": "websocket.http.response.start", "status": status,
                          "headers": headers}
        await send(start)
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})
