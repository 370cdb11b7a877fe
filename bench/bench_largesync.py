"""A 10 MB paste's time to the other side over real aiortc (`--only largesync`).

Rows (medians over fresh runs, all in this one process, both peers on 127.0.0.1):
- 10 MB paste → applied on the other side: a `Host` (with its session file) and a joined
  `Candidate` over the real signaling server; from the host's `insert_code` of 10 MB of
  varied text to the moment the candidate's document applies it (an update observer). The
  one update crosses the sync channel in 64 KiB frames (`assessiq.core.fragments`) and is
  reassembled, checked and applied there; the host stores it too.
- the same in the other direction (candidate → host, where the host's checks run).
- reference, same run: the same update's bytes over a plain aiortc data channel (two
  `RTCPeerConnection`s, no framing of ours, sent in 64 KiB messages as fast as the buffer
  takes them) — what the transport alone costs.
- reference, same run: raw pycrdt applying the same update to a fresh `Doc` — what the CRDT
  alone costs.

Both peers share one process (one core at a time), as in the tests; two processes would
overlap the sender's and the receiver's work.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Row, median, varied_text

AREA = "largesync"
SIZE = 10 * 1000 * 1000
CHUNK = 64 * 1024


def _update_bytes(text: str) -> bytes:
    from pycrdt import Doc, Text

    doc: Doc[Any] = Doc()
    doc["code"] = code = Text()
    code += text
    return doc.get_update()


def _pycrdt_apply(update: bytes) -> float:
    from pycrdt import Doc, Text

    doc: Doc[Any] = Doc()
    doc["code"] = Text()
    t0 = time.perf_counter()
    doc.apply_update(update)
    return (time.perf_counter() - t0) * 1000


async def _paste_time(url: str, text: str, tmp: Path, run: int, to_candidate: bool) -> float:
    from assessiq.core.identity import Identity
    from assessiq.peer import Candidate, Host
    from assessiq.peer.config import PeerConfig

    config = PeerConfig(heartbeat_interval=0.5, heartbeat_timeout=5.0)
    host = await Host.start(identity=Identity.generate(), signaling=url, config=config,
                            session_path=tmp / f"paste{run}.aiq")
    cand = await Candidate.join(host.invite.encode(), config=config)
    try:
        await host.connected(10)
        await cand.connected(10)
        sender, receiver = (host, cand) if to_candidate else (cand, host)
        arrived: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        def on_update(update: bytes, origin: str | None) -> None:
            if len(update) > len(text) // 2 and not arrived.done():
                arrived.set_result(time.perf_counter())

        unsubscribe = receiver.doc.observe_updates(on_update)
        t0 = time.perf_counter()
        sender.doc.insert_code(0, text, origin=sender.role)
        t1 = await asyncio.wait_for(arrived, 120)
        unsubscribe()
        if len(receiver.doc.code_text) != len(text):
            raise RuntimeError("the paste did not arrive whole")
        return (t1 - t0) * 1000
    finally:
        await cand.close()
        await host.close()


async def _plain_channel_time(payload: bytes) -> float:
    """`payload` over a plain aiortc data channel in 64 KiB messages, honouring the buffer."""
    from aiortc import RTCPeerConnection

    a, b = RTCPeerConnection(), RTCPeerConnection()
    try:
        dc = a.createDataChannel("plain", ordered=True)
        opened = asyncio.Event()
        dc.on("open", opened.set)
        got = 0
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        def on_channel(channel: Any) -> None:
            def on_message(message: bytes) -> None:
                nonlocal got
                got += len(message)
                if got >= len(payload) and not done.done():
                    done.set_result(time.perf_counter())

            channel.on("message", on_message)

        b.on("datachannel", on_channel)
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        await asyncio.wait_for(opened.wait(), 10)
        low = asyncio.Event()
        dc.bufferedAmountLowThreshold = 1 << 18
        dc.on("bufferedamountlow", low.set)
        t0 = time.perf_counter()
        view = memoryview(payload)
        for pos in range(0, len(payload), CHUNK):
            while dc.bufferedAmount > 1 << 20:
                low.clear()
                await low.wait()
            dc.send(bytes(view[pos : pos + CHUNK]))
        t1 = await asyncio.wait_for(done, 120)
        return (t1 - t0) * 1000
    finally:
        await a.close()
        await b.close()


async def _run(quick: bool) -> list[Row]:
    from assessiq.peer.connection import restrict_host_addresses
    from signaling import ServerConfig, SignalingServer

    restrict_host_addresses(["127.0.0.1"])
    runs = 1 if quick else 5
    text = varied_text(SIZE)
    update = _update_bytes(text)
    to_cand: list[float] = []
    to_host: list[float] = []
    plain: list[float] = []
    raw: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        async with SignalingServer(ServerConfig(host="127.0.0.1", port=0)) as server:
            url = f"ws://127.0.0.1:{server.port}"
            for i in range(runs):  # interleaved, so a noisy moment hits every row alike
                to_cand.append(await _paste_time(url, text, tmp, 2 * i, True))
                to_host.append(await _paste_time(url, text, tmp, 2 * i + 1, False))
                plain.append(await _plain_channel_time(update))
                raw.append(_pycrdt_apply(update))
    note = f"{len(update) / 1e6:.1f} MB update, median of {runs}, one process"
    return [
        Row(AREA, "10 MB paste → applied on the other side, host → candidate",
            median(to_cand), "ms", median(plain), "same bytes, plain aiortc data channel",
            note=note),
        Row(AREA, "10 MB paste → applied on the other side, candidate → host",
            median(to_host), "ms", median(plain), "same bytes, plain aiortc data channel",
            note=note),
        Row(AREA, "raw pycrdt apply of the same update (reference)", median(raw), "ms",
            note=note),
    ]


def run(quick: bool) -> list[Row]:
    return asyncio.run(_run(quick))
