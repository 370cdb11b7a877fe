"""Signaling server capacity on one core: idle joined connections held, RSS, relay latency.

The server runs as a subprocess pinned to CPU 0 (`os.sched_setaffinity`); this process is the
client side, pinned to CPU 1 when there is one. Both raise RLIMIT_NOFILE to the hard limit.
Everything is on 127.0.0.1. Every phase has a deadline, so the run ends by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from bench.common import Row, median, percentile

AREA = "signaling"
REPO = Path(__file__).resolve().parent.parent
CONNECT_CONCURRENCY = 64


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _server_preexec() -> None:
    os.sched_setaffinity(0, {0})
    raise_nofile()


def start_server(max_conns: int) -> tuple[subprocess.Popen[str], int]:
    big = str(max_conns + 100)
    proc = subprocess.Popen(
        [sys.executable, "-m", "signaling", "--host", "127.0.0.1", "--port", "0",
         "--log-level", "WARNING", "--max-connections", big, "--max-connections-per-ip", big,
         "--max-rooms", big, "--max-rooms-per-ip", big, "--join-timeout-seconds", "120",
         "--messages-per-second", "1000", "--message-burst", "1000"],
        cwd=REPO, stderr=subprocess.PIPE, text=True, preexec_fn=_server_preexec,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "listening on ws://" not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line.strip()}")
    return proc, int(line.rsplit(":", 1)[1].split("/")[0])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def open_joined(port: int, room: str, role: str) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{port}/ws", compression=None, ping_interval=None,
                       max_queue=4, open_timeout=60)
    await ws.send(json.dumps({"type": "join", "room": room, "role": role}))
    reply = json.loads(await ws.recv())
    if reply.get("type") != "joined":
        raise RuntimeError(f"join refused: {reply}")
    return ws


async def open_pairs(port: int, prefix: str, pairs: int, deadline: float) -> list[
        tuple[ClientConnection, ClientConnection]]:
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(i: int) -> tuple[ClientConnection, ClientConnection]:
        async with sem:
            room = f"{prefix}-{i:08d}-bench-room"
            host = await open_joined(port, room, "host")
            candidate = await open_joined(port, room, "candidate")
            await host.recv()  # peer-joined
            return host, candidate

    async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
        return list(await asyncio.gather(*(one(i) for i in range(pairs))))


async def relay_latencies(pairs: list[tuple[ClientConnection, ClientConnection]],
                          rounds: int) -> list[float]:
    """One-way host -> candidate relay time (ms), all given rooms sending at once."""
    samples: list[float] = []

    async def room(host: ClientConnection, candidate: ClientConnection) -> None:
        for _ in range(rounds):
            sent = time.perf_counter()
            await host.send(json.dumps({"type": "relay", "data": "x" * 200}))
            await candidate.recv()
            samples.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(0.01)

    async with asyncio.timeout(120):
        await asyncio.gather(*(room(h, c) for h, c in pairs))
    return samples


async def close_all(pairs: list[tuple[ClientConnection, ClientConnection]]) -> None:
    for h, c in pairs:
        h.transport.abort()
        c.transport.abort()
    await asyncio.sleep(0.1)


async def measure(quick: bool) -> list[Row]:
    connections = 1_000 if quick else 10_000
    active_rooms = 20 if quick else 50
    rounds = 10 if quick else 40
    nofile = raise_nofile()
    if nofile < connections + 200:
        raise RuntimeError(f"RLIMIT_NOFILE hard limit {nofile} is below {connections + 200}")
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {1})
    proc, port = start_server(connections)
    try:
        rss_idle = rss_mb(proc.pid)
        # Baseline: relay latency with only the active rooms connected.
        active = await open_pairs(port, "active", active_rooms, time.monotonic() + 60)
        await relay_latencies(active, 5)  # warm-up, discarded
        unloaded = await relay_latencies(active, rounds)
        single_unloaded = await relay_latencies(active[:1], rounds * 10)
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.monotonic()
        idle = await open_pairs(port, "idle", connections // 2, time.monotonic() + 300)
        connect_s = time.monotonic() - t0
        cpu_connect = cpu_seconds(proc.pid) - cpu0
        await asyncio.sleep(1.0)
        held = connections
        rss_loaded = rss_mb(proc.pid)
        loaded = await relay_latencies(active, rounds)
        single_loaded = await relay_latencies(active[:1], rounds * 10)
        alive = proc.poll() is None
        await close_all(idle + active)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    per_conn_kb = (rss_loaded - rss_idle) * 1024 / held
    note = f"server on 1 core; {held} joined ({held // 2} rooms); {connect_s:.1f} s to connect"
    return [
        Row(AREA, "idle joined connections held", held, "connections",
            goal=">= 10,000 (quick: 1,000)", note=note if alive else "SERVER DIED"),
        Row(AREA, "server RSS with them", rss_loaded, "MB", baseline=rss_idle,
            baseline_name="server idle", goal="< 300 MB at 10,000"),
        Row(AREA, "server RSS per connection", per_conn_kb, "KB"),
        Row(AREA, "server CPU per connect+join", cpu_connect * 1000 / held, "ms"),
        Row(AREA, "relay latency p50, one room, idle load", median(single_loaded), "ms",
            baseline=median(single_unloaded), baseline_name="no idle load",
            note=f"{len(single_loaded)} sequential relays, host -> candidate, 200 B"),
        Row(AREA, "relay latency p99, one room, idle load", percentile(single_loaded, 99), "ms",
            baseline=percentile(single_unloaded, 99), baseline_name="no idle load"),
        Row(AREA, "relay latency p50 under load", median(loaded), "ms",
            baseline=median(unloaded), baseline_name="no idle load",
            note=f"{active_rooms} rooms relaying at once, {len(loaded)} samples"),
        Row(AREA, "relay latency p99 under load", percentile(loaded, 99), "ms",
            baseline=percentile(unloaded, 99), baseline_name="no idle load"),
    ]


def run(quick: bool) -> list[Row]:
    return asyncio.run(measure(quick))
