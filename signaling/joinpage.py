"""The join page: `GET /join` answers one small static HTML page for invite links.

An invite travels as `https://<signaling server>/join#aiq1…`, a link every mail client opens.
The invite is in the fragment, which browsers never send, so the server never receives it;
the page's own inline script reads it and shows the one command that installs and starts
AssessIQ with it, with a copy button. The page loads nothing from anywhere else: its
Content-Security-Policy allows only its own inline style and script, by hash.

Standard library and `websockets` only, like the rest of `signaling/`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib import resources

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

__all__ = ["JOIN_PATH", "join_page", "join_response"]

JOIN_PATH = "/join"


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.lru_cache(maxsize=1)
def join_page() -> tuple[bytes, str]:
    """The page's bytes and its Content-Security-Policy (hashes of its inline blocks)."""
    html = resources.files("signaling").joinpath("static/join.html").read_text("utf-8")
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
