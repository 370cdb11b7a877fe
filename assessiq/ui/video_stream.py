"""Video frames from the app process to its page: a frame endpoint and a websocket per tile.

    GET /<token>/video/<name>       the newest JPEG (204 while there is none)
    WS  /<token>/video/<name>/ws    the newest JPEG pushed as soon as there is a new one

Both answer 404 without the run's secret or for an unknown tile. The websocket sends one
frame, then waits for the page's "next" (sent once that frame is on screen): one frame in
flight at most, so a slow page is sent fewer, newer frames and never a queue of old ones.
Frames that arrive meanwhile are dropped; only the newest is sent.

JPEG encoding happens here, on the event loop's thread (never in two threads at once: PyAV's
scaler on one frame is not thread-safe, and sharing it crashed the process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Mapping

from fastapi import FastAPI, HTTPException, Response, WebSocket, WebSocketDisconnect

from ..core.aio import first_completed

__all__ = ["NEXT", "add_video_routes", "push_frames"]

log = logging.getLogger(__name__)

FrameSource = Callable[[], bytes | None]
NEXT = "next"  # what the page sends once the last frame is shown
POLL_S = 0.004  # how often a new frame is looked for while the page waits for one
IDLE_S = 0.1  # the same, while the tile has no picture at all


def _token_ok(token: str, expected: str) -> bool:
    return secrets.compare_digest(token.encode(), expected.encode())


async def push_frames(websocket: WebSocket, source: FrameSource) -> None:
    """Send `source()`'s newest JPEG to an accepted websocket each time the page asks for the
    next one and a new one exists. Returns when the page goes away."""
    wanted = asyncio.Event()
    wanted.set()  # the first frame needs no "next"
    gone = asyncio.Event()

    async def listen() -> None:
        try:
            while True:
                if await websocket.receive_text() == NEXT:
                    wanted.set()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            gone.set()

    listener = asyncio.get_running_loop().create_task(listen())
    last: bytes | None = None
    try:
        while not gone.is_set():
            if not wanted.is_set():  # the page is still showing the last frame
                await first_completed(wanted.wait(), gone.wait())
                continue
            frame = source()
            if frame is None or frame is last or frame == last:
                await asyncio.sleep(POLL_S if frame is not None else IDLE_S)
                continue
            wanted.clear()
            last = frame
            await websocket.send_bytes(frame)
    except (WebSocketDisconnect, RuntimeError, ConnectionError) as exc:
        log.debug("video websocket closed: %s", exc)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


def add_video_routes(app: FastAPI, token: Callable[[], str],
                     videos: Mapping[str, FrameSource]) -> None:
    """The frame endpoint and the websocket for every tile in `videos` (looked up per
    request), under the secret `token()`."""

    @app.get("/{token_}/video/{name}")
    async def video_frame(token_: str, name: str) -> Response:
        """The newest frame of a video tile (404 without the run's secret; 204: no frame)."""
        source = videos.get(name) if _token_ok(token_, token()) else None
        if source is None:
            raise HTTPException(status_code=404, detail="Not Found")
        frame = source()
        headers = {"Cache-Control": "no-store"}
        if frame is None:
            return Response(status_code=204, headers=headers)
        return Response(content=frame, media_type="image/jpeg", headers=headers)

    @app.websocket("/{token_}/video/{name}/ws")
    async def video_stream(websocket: WebSocket, token_: str, name: str) -> None:
        """The newest frames of a video tile, pushed (404 without the run's secret)."""
        source = videos.get(name) if _token_ok(token_, token()) else None
        if source is None:
            await websocket.send_denial_response(Response(status_code=404))
            return
        await websocket.accept()
        await push_frames(websocket, source)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close()
