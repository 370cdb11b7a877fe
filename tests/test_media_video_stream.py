"""The video tiles' routes: the frame endpoint and the websocket that pushes new frames.

Both sit under the run's secret (404 without it). The websocket sends the newest frame only
after the page said "next", never a frame twice, and drops frames the page had no time for.
"""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient, WebSocketDenialResponse

from assessiq.ui.video_stream import NEXT, add_video_routes

TOKEN = "s3cret-token"


class Source:
    """A tile's frames, changed by the test."""

    def __init__(self) -> None:
        self.frame: bytes | None = None
        self.calls = 0

    def __call__(self) -> bytes | None:
        self.calls += 1
        return self.frame


@pytest.fixture
def client_and_source():
    source = Source()
    app = FastAPI()
    add_video_routes(app, lambda: TOKEN, {"remote": source})
    with TestClient(app) as client:
        yield client, source


def test_frame_endpoint_needs_the_secret(client_and_source):
    client, source = client_and_source
    assert client.get(f"/{TOKEN}/video/remote").status_code == 204  # no picture yet
    source.frame = b"\xff\xd8jpeg-1"
    ok = client.get(f"/{TOKEN}/video/remote")
    assert ok.status_code == 200 and ok.content == b"\xff\xd8jpeg-1"
    assert ok.headers["content-type"] == "image/jpeg"
    assert client.get(f"/{TOKEN}x/video/remote").status_code == 404
    assert client.get(f"/{TOKEN[:-1]}/video/remote").status_code == 404
    assert client.get(f"/{TOKEN}/video/nope").status_code == 404


@pytest.mark.parametrize("path", [f"/{TOKEN}x/video/remote/ws", "/wrong/video/remote/ws",
                                  f"/{TOKEN}/video/nope/ws"])
def test_websocket_without_the_secret_is_a_404(client_and_source, path):
    client, source = client_and_source
    source.frame = b"\xff\xd8jpeg-1"
    with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect(path):
        pass
    assert info.value.status_code == 404
    assert source.calls == 0  # nothing was read, let alone sent


def test_websocket_pushes_only_the_newest_frame_when_the_page_asks(client_and_source):
    client, source = client_and_source
    with client.websocket_connect(f"/{TOKEN}/video/remote/ws") as ws:
        source.frame = b"frame-1"
        assert ws.receive_bytes() == b"frame-1"  # the first comes without asking
        # two frames arrive while the page is still showing frame 1: only the newest is sent
        source.frame = b"frame-2"
        source.frame = b"frame-3"
        ws.send_text(NEXT)
        assert ws.receive_bytes() == b"frame-3"
        # the page asks again before there is a new frame: frame 3 is not sent twice,
        # the next one is sent as soon as it exists
        ws.send_text(NEXT)
        calls = source.calls
        while source.calls < calls + 3:  # the server looked (and found nothing new) a few times
            time.sleep(0.001)
        source.frame = b"frame-4"
        assert ws.receive_bytes() == b"frame-4"
        # not asked: frames are not pushed (nor queued) until the page says "next"
        source.frame = b"frame-5"
        source.frame = b"frame-6"
        ws.send_text(NEXT)
        assert ws.receive_bytes() == b"frame-6"
