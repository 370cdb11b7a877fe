"""The join page: `GET /join` answers one small static HTML page for invite links.

An invite travels as `https://<signaling server>/join#aiq1…`, a link every mail client opens.
The invite is in the fragment, which browsers never send, so the server never receives it;
the page's own inline script reads it and shows the one command that installs and starts
AssessIQ with it, with a copy button. The page loads nothing from anywhere else: its
Content-Security-Policy allows only its own inline style and script, by hash.

What the command installs is the operator's to say: `ASSESSIQ_JOIN_PACKAGE` (a requirement
uv and pipx accept: a pinned release, or a wheel's URL while AssessIQ is not on PyPI — a name
nobody has published yet is a name anyone could publish), default `assessiq[candidate]`.

Standard library and `websockets` only, like the rest of `signaling/`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import os
import re
from importlib import resources

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

__all__ = ["DEFAULT_PACKAGE", "JOIN_PATH", "join_package", "join_page", "join_response"]

log = logging.getLogger(__name__)

JOIN_PATH = "/join"
DEFAULT_PACKAGE = "assessiq[candidate]"
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],=<>!~ @:/+#%?&]{0,499}$")
"""A requirement the page may put in a shell command between double quotes: no quote,
backslash, dollar or backtick can end it or expand in it."""


def join_package(environ: dict[str, str] | None = None) -> str:
    """The requirement the page's command installs: `ASSESSIQ_JOIN_PACKAGE`, or the default
    when it is unset or not a plain requirement (logged)."""
    value = (os.environ if environ is None else environ).get("ASSESSIQ_JOIN_PACKAGE", "")
    value = value.strip()
    if not value:
        return DEFAULT_PACKAGE
    if not _PACKAGE.match(value):
        log.error("ASSESSIQ_JOIN_PACKAGE is not a plain requirement (quotes, backslashes, $ "
                  "and backticks are refused); the join page names %s", DEFAULT_PACKAGE)
        return DEFAULT_PACKAGE
    return value


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def join_page(package: str | None = None) -> tuple[bytes, str]:
    """The page's bytes and its Content-Security-Policy (hashes of its inline blocks), its
    command installing `package` (default: `join_package()`)."""
    return _page(package or join_package())


@functools.lru_cache(maxsize=4)
def _page(package: str) -> tuple[bytes, str]:
    html = resources.files("signaling").joinpath("static/join.html").read_text("utf-8")
    # (a JS string literal; `<` escaped so no text can close the script)
    html = html.replace('"__AIQ_PACKAGE__"', json.dumps(package).replace("<", "\\u003c"))
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    csp = "; ".join([
        "default-src 'none'",
        "script-src " + " ".join(map(_sha256, scripts)),
        "style-src " + " ".join(map(_sha256, styles)),
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])
    return html.encode("utf-8"), csp


def join_response(connection: ServerConnection, request: Request) -> Response | None:
    """The page for `GET /join` (any query or fragment ignored); None for any other path."""
    if request.path.split("?", 1)[0].split("#", 1)[0] != JOIN_PATH:
        return None
    body, csp = join_page()
    response = connection.respond(200, "")
    headers = Headers(response.headers)
    del headers["Content-Type"], headers["Content-Length"]
    headers["Content-Type"] = "text/html; charset=utf-8"
    headers["Content-Length"] = str(len(body))
    headers["Content-Security-Policy"] = csp
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Cache-Control"] = "no-store"
    response.headers = headers
    response.body = body
    return response
