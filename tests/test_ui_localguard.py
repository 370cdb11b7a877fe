"""The local apps answer only their own Host and Origin (assessiq/ui/localguard.py).

As a hostile web page in the user's browser would: a DNS-rebound name in `Host`, another
site's `Origin` on NiceGUI's socket.io (engine.io polling and the websocket upgrade) and on
the video websocket. First `LocalGuard` on a tiny Starlette app served by a real uvicorn on
port 0 (the port is read from the server, not configured), then the real `assessiq replay`
app in its own process, and a real Chromium showing that the app's own page still connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
import websockets
from browser_helpers import App, chromium, require_browser, wait_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from assessiq.ui.localguard import LocalGuard, allowed_hosts, allowed_origins

EVIL = "evil.example"

# ---------------------------------------------------------------- the middleware, in-process


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("welcome")
    await websocket.close()


@contextlib.asynccontextmanager
async def tiny_server(port: int | None = None) -> AsyncIterator[int]:
    """A Starlette app behind `LocalGuard`, served by uvicorn (wsproto, as NiceGUI runs it)
    on 127.0.0.1 port 0; yields the port the OS chose."""
    app = Starlette(routes=[Route("/", _hello), WebSocketRoute("/ws", _echo)])
    app.add_middleware(LocalGuard, port=port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, ws="wsproto",
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    real_port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield real_port
    finally:
        server.should_exit = True
        await task


def test_allowed_names_are_the_loopback_names_on_the_port() -> None:
    assert allowed_hosts(8731) == {"127.0.0.1:8731", "localhost:8731", "[::1]:8731"}
    assert allowed_origins(8731) == {"http://127.0.0.1:8731", "http://localhost:8731",
                                     "http://[::1]:8731"}
    assert "localhost" in allowed_hosts(80)  # a browser leaves out :80


async def test_the_guard_reads_the_real_port_and_refuses_other_hosts(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="assessiq.ui.localguard")
    async with tiny_server() as port, httpx.AsyncClient(timeout=10) as client:
        url = f"http://127.0.0.1:{port}/"
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}",
                     f"LOCALHOST:{port}"):
            answer = await client.get(url, headers={"Host": host})
            assert (answer.status_code, answer.text) == (200, "hello"), host
        for host in (f"{EVIL}:{port}", EVIL, "127.0.0.1", f"127.0.0.1:{port + 1}",
                     f"localhost.:{port}", f"127.0.0.2:{port}"):
            answer = await client.get(url, headers={"Host": host})
            assert answer.status_code == 421, host
            assert answer.text == ("this app answers only 127.0.0.1 or localhost on its own "
                                   "port\n")
            assert "hello" not in answer.text
        # a foreign Origin is refused even with the right Host; our own is served
        own = {"Host": f"127.0.0.1:{port}"}
        answer = await client.post(url, headers={**own, "Origin": f"http://{EVIL}"})
        assert (answer.status_code, answer.text) == (403, "requests from other sites are "
                                                          "refused\n")
        answer = await client.get(url, headers={**own, "Origin": f"http://localhost:{port}"})
        assert answer.status_code == 200
        answer = await client.get(url, headers={**own, "Origin": "null"})
        assert answer.status_code == 403
        # logged once per (host, origin), however often it is tried
        for _ in range(3):
            assert (await client.get(url, headers={"Host": f"{EVIL}:{port}"})
                    ).status_code == 421
    refusals = [r.getMessage() for r in caplog.records if r.name == "assessiq.ui.localguard"]
    assert sum(f"'{EVIL}:{port}'" in m and "Origin ''" in m for m in refusals) == 1
    assert sum(f"'http://{EVIL}'" in m for m in refusals) == 1


async def test_the_guard_refuses_a_foreign_websocket_before_it_is_accepted() -> None:
    async with tiny_server() as port:
        uri = f"ws://127.0.0.1:{port}/ws"
        async with websockets.connect(uri, origin=f"http://127.0.0.1:{port}") as ws:  # type: ignore[arg-type]
            assert await ws.recv() == "welcome"
        async with websockets.connect(uri) as ws:  # no Origin (not a browser): let through
            assert await ws.recv() == "welcome"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(uri, origin=f"http://{EVIL}:{port}")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        assert refused.value.response.body == b"requests from other sites are refused\n"
        with pytest.raises(websockets.InvalidStatus) as refused:
            # the URI names the rebound host (its Host header), the socket goes to 127.0.0.1
            await websockets.connect(f"ws://{EVIL}:{port}/ws", host="127.0.0.1", port=port)
        assert refused.value.response.status_code == 421


async def test_a_configured_port_wins_over_the_servers() -> None:
    async with tiny_server(port=1) as port, httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"http://127.0.0.1:{port}/")
        assert answer.status_code == 421  # the guard answers only 127.0.0.1:1 now
        answer = await client.get(f"http://127.0.0.1:{port}/", headers={"Host": "127.0.0.1:1"})
        assert answer.status_code == 200


async def test_socketio_itself_keeps_to_our_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    """NiceGUI's socket.io server alone (no guard in front), after `limit_socketio_origins`:
    a foreign Origin is refused and not echoed; ours is accepted and echoed."""
    from nicegui import core
    from nicegui.nicegui import sio_app

    from assessiq.ui.localguard import limit_socketio_origins

    monkeypatch.setattr(core.sio.eio, "cors_allowed_origins", "*")  # restored afterwards
    limit_socketio_origins(allowed_origins(8731))
    transport = httpx.ASGITransport(app=sio_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8731") as c:
        evil = await c.get("/socket.io/?EIO=4&transport=polling",
                           headers={"Origin": f"http://{EVIL}"})
        assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
        own = await c.get("/socket.io/?EIO=4&transport=polling",
                          headers={"Origin": "http://localhost:8731"})
        assert own.status_code == 200 and own.text.startswith('0{"sid":')
        assert own.headers["access-control-allow-origin"] == "http://localhost:8731"


# ---------------------------------------------------------------- the real app, its own process


@pytest.fixture(scope="module")
def replay_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """`assessiq replay` on a sealed session: the lightest of the apps, served by the same
    `serve()` as host, join and demo."""
    from core_factories import build_session

    tmp = tmp_path_factory.mktemp("localguard")
    built = build_session(tmp / "s.aiq", n_updates=5, n_heartbeats=2)
    app = App(["replay", str(built.path)], tmp)
    try:
        yield app
    finally:
        app.stop()


SIO = "/_nicegui_ws/socket.io/?EIO=4&transport=polling"


def test_the_app_answers_only_its_own_host(replay_app: App) -> None:
    port = replay_app.port
    with httpx.Client(timeout=30) as client:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            page = client.get(replay_app.url, headers={"Host": host})
            assert page.status_code == 200 and "AssessIQ" in page.text, host
        rebound = client.get(replay_app.url, headers={"Host": f"{EVIL}:{port}"})
        assert rebound.status_code == 421
        assert len(rebound.text.splitlines()) == 1 and "AssessIQ" not in rebound.text
        # the secret path's other routes too (the video frames), and NiceGUI's own
        token = replay_app.url.split("/")[3]
        for path in (f"/{token}/video/none", "/_nicegui_ws/socket.io/?EIO=4&transport=polling"):
            answer = client.get(f"http://127.0.0.1:{port}{path}",
                                headers={"Host": f"{EVIL}:{port}"})
            assert answer.status_code == 421, path
    # one log line for all those tries with this (host, origin)
    log = replay_app.log_path.read_text()
    assert log.count(f"(Host '{EVIL}:{port}', Origin '')") == 1, log[-2000:]


def test_socketio_accepts_only_its_own_origin(replay_app: App) -> None:
    port = replay_app.port
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=30) as client:
        evil = client.get(base + SIO, headers={"Origin": f"http://{EVIL}"})
        assert evil.status_code == 403
        assert "access-control-allow-origin" not in evil.headers
        assert EVIL not in evil.text
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
            own = client.get(base + SIO, headers={"Origin": origin})
            assert own.status_code == 200, origin
            assert own.text.startswith('0{"sid":')  # engine.io's open packet
            assert own.headers["access-control-allow-origin"] == origin
        assert client.get(base + SIO).text.startswith('0{"sid":')  # no Origin: fine


async def test_socketio_websocket_upgrade_only_from_its_own_origin(replay_app: App) -> None:
    port = replay_app.port
    uri = f"ws://127.0.0.1:{port}/_nicegui_ws/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(uri, origin=f"http://{EVIL}:{port}")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(uri.replace("127.0.0.1", EVIL), host="127.0.0.1", port=port,
                                 origin=f"http://{EVIL}:{port}")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 421
    async with websockets.connect(uri, origin=f"http://127.0.0.1:{port}") as ws:  # type: ignore[arg-type]
        opening = await ws.recv()
        assert isinstance(opening, str) and opening.startswith('0{"sid":')


def test_the_apps_own_page_still_connects_in_a_browser(replay_app: App) -> None:
    require_browser()
    with chromium() as driver:
        for url in (replay_app.url,
                    replay_app.url.replace("127.0.0.1", "localhost", 1)):
            driver.get(url)
            wait_for(lambda: driver.execute_script(
                "return !!(window.socket && window.socket.connected && window.did_handshake)"),
                timeout=60, what=f"socket.io connected at {url}")
    log = replay_app.log_path.read_text()
    assert "Origin 'http://127.0.0.1" not in log and "Origin 'http://localhost" not in log
