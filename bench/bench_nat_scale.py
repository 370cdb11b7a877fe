"""What interviews in progress cost one signaling server core while the peers keep it alive.

`bench_signaling` holds idle joined connections that never ping. Real peers keep their
signaling connection for the whole interview (a reconnect needs it) and send a WebSocket ping
every `PeerConfig.signaling_ping_interval` (5 s), which the server answers. Here the server
(a subprocess pinned to one core, as in `bench_signaling`) holds N joined connections (N / 2
rooms) whose clients ping every 5 s, and its CPU time over a quiet window is read from /proc;
baseline, same server, right before: the same number of connections not pinging.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time

from websockets.asyncio.client import ClientConnection, connect

from bench.bench_signaling import cpu_seconds, raise_nofile, rss_mb, start_server
from bench.common import Row

AREA = "nat_scale"
PING_INTERVAL = 5.0  # PeerConfig.signaling_ping_interval
CONCURRENCY = 64


async def _open(port: int, prefix: str, pairs: int, ping: float | None) -> list[ClientConnection]:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def joined(room: str, role: str) -> ClientConnection:
        ws = await connect(f"ws://127.0.0.1:{port}/ws", compression=None, ping_interval=ping,
                           ping_timeout=ping, max_queue=4, open_timeout=60)
        await ws.send(json.dumps({"type": "join", "room": room, "role": role}))
        if json.loads(await ws.recv()).get("type") != "joined":
            raise RuntimeError("join refused")
        return ws

    async def pair(i: int) -> list[ClientConnection]:
        async with sem:
            room = f"{prefix}-{i:08d}-scale-room"
            return [await joined(room, "host"), await joined(room, "candidate")]

    async with asyncio.timeout(300):
        return [ws for two in await asyncio.gather(*(pair(i) for i in range(pairs)))
                for ws in two]


async def _window(pid: int, seconds: float) -> float:
    """Server CPU seconds per wall second over a window."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


async def measure(quick: bool) -> list[Row]:
    connections = 1_000 if quick else 4_000
    window = 10.0 if quick else 30.0
    raise_nofile()
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {1})
    proc, port = start_server(connections)
    try:
        quiet = await _open(port, "quiet", connections // 2, None)
        await asyncio.sleep(2.0)
        base = await _window(proc.pid, window)
        for ws in quiet:
            ws.transport.abort()
        await asyncio.sleep(2.0)
        pinging = await _open(port, "ping", connections // 2, PING_INTERVAL)
        await asyncio.sleep(PING_INTERVAL)  # every connection has started its ping cycle
        busy = await _window(proc.pid, window)
        rss = rss_mb(proc.pid)
        alive = proc.poll() is None
        for ws in pinging:
            ws.transport.abort()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    interviews = connections // 2
    per_interview_us = (busy - base) / interviews * 1e6
    return [
        Row(AREA, f"signaling server CPU, {connections:,} joined connections pinging every "
                  f"{PING_INTERVAL:g} s", busy * 100, "% of a core", baseline=base * 100,
            baseline_name="the same number not pinging",
            note=f"{interviews:,} interviews; {window:g} s window; RSS {rss:.0f} MB"
                 + ("" if alive else "; SERVER DIED")),
        Row(AREA, "keepalive CPU per interview in progress (both peers)", per_interview_us,
            "µs per second", note="(pinging − quiet) / interviews; 1,000,000 = one core"),
    ]


def run(quick: bool) -> list[Row]:
    return asyncio.run(measure(quick))
