"""Two processes, one call, on 127.0.0.1: the media layer measured end to end.

    python -m assessiq.media.loopback offer  [options]   # prints {"port": N}, then waits
    python -m assessiq.media.loopback answer --port N [options]

Each side sends the stamped synthetic camera and a tone (its own pitch), receives the
other's, and prints one JSON object: received frame rate, capture-to-decoded latency from
the stamps (both processes read the same wall clock), the received tone's frequency (FFT),
its own CPU use, and the call statistics. The SDP goes over a plain TCP socket on
127.0.0.1 (the real, signed handshake is the peer layer's); ICE uses host candidates on
127.0.0.1 only, no STUN/TURN.

`--proctor` feeds the tap into the real proctor analysis (MediaPipe) in a worker thread;
`--photos` makes the synthetic camera show the proctor's photo scene instead of a test card.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from typing import Any

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from av import VideoFrame

from .config import SYNTHETIC, MediaConfig
from .lossy_link import LossyRelay
from .session import MediaSession, attach_media
from .sinks import dominant_frequency
from .stamp import read_stamp

__all__ = ["StampLog", "connect_pair", "main", "restrict_to_loopback", "run_side"]


def restrict_to_loopback() -> None:
    """Make aioice offer host candidates on 127.0.0.1 only (tests and benchmarks)."""
    import aioice.ice

    def loopback(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return ["127.0.0.1"]

    aioice.ice.get_host_addresses = loopback


async def connect_pair(
    offer_config: MediaConfig,
    answer_config: MediaConfig,
    *,
    on_camera_off: tuple[Any, Any] = (None, None),
    relay: LossyRelay | None = None,
) -> tuple[tuple[RTCPeerConnection, MediaSession], tuple[RTCPeerConnection, MediaSession]]:
    """Two peer connections in this process, connected on 127.0.0.1, each with its media
    attached: ((offer_pc, offer_media), (answer_pc, answer_media)). Close both pcs after.
    With `relay`, all their packets go through it (a lossy link; the offerer is side a)."""
    restrict_to_loopback()
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    media_a = attach_media(a, offer_config, on_camera_off=on_camera_off[0])
    await a.setLocalDescription(await a.createOffer())
    offer = a.localDescription
    if relay is not None:
        offer = RTCSessionDescription(await relay.rewrite(offer.sdp), offer.type)
    await b.setRemoteDescription(offer)
    media_b = attach_media(b, answer_config, on_camera_off=on_camera_off[1])
    await b.setLocalDescription(await b.createAnswer())
    answer = b.localDescription
    if relay is not None:
        answer = RTCSessionDescription(await relay.rewrite(answer.sdp), answer.type)
    await a.setRemoteDescription(answer)
    return (a, media_a), (b, media_b)


class StampLog:
    """Reads the stamp of every received frame: counters and capture-to-decoded latency."""

    def __init__(self) -> None:
        self.recording = False
        self.counters: list[int] = []
        self.latencies_ms: list[float] = []
        self.arrivals_ms: list[float] = []
        self.unreadable = 0
        self.first: float | None = None
        self.last: float | None = None

    def __call__(self, frame: VideoFrame) -> None:
        now_ms = time.time() * 1000
        if not self.recording:
            return
        luma = np.asarray(frame.to_ndarray(format="yuv420p")[: frame.height], dtype=np.uint8)
        stamp = read_stamp(luma)
        if stamp is None:
            self.unreadable += 1
            return
        self.counters.append(stamp.counter)
        self.latencies_ms.append(now_ms - stamp.t_ms)
        self.arrivals_ms.append(now_ms)
        self.first = self.first or now_ms / 1000
        self.last = now_ms / 1000

    def longest_gap_ms(self) -> float:
        """The longest time between two stamped frames read (a freeze), ms."""
        gaps = [b - a for a, b in zip(self.arrivals_ms, self.arrivals_ms[1:], strict=False)]
        return round(max(gaps), 1) if gaps else 0.0

    def summary(self) -> dict[str, Any]:
        import statistics

        lat = sorted(self.latencies_ms)
        span = (self.last or 0) - (self.first or 0)
        ordered = all(b > a for a, b in zip(self.counters, self.counters[1:], strict=False))
        span_frames = self.counters[-1] - self.counters[0] + 1 if self.counters else 0
        missing = span_frames - len(self.counters) if self.counters else 0
        gaps = sum(1 for a, b in zip(self.counters, self.counters[1:], strict=False)
                   if b != a + 1)
        return {
            "stamped_frames": len(self.counters),
            "unreadable_frames": self.unreadable,
            "counters_increasing": ordered,
            "counter_span": span_frames,  # frames the sender stamped from first to last
            "frames_missing": missing,
            "gaps": gaps,  # places where the counter jumps
            "fps": round((len(self.counters) - 1) / span, 2) if span > 0 else 0.0,
            "latency_ms_p50": round(statistics.median(lat), 1) if lat else None,
            "latency_ms_p95": round(lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))], 1)
            if lat else None,
            "latency_ms_min": round(lat[0], 1) if lat else None,
        }


class _ProctorFeed:
    """The real proctor analysis reading the tap in a worker thread."""

    def __init__(self, media: MediaSession) -> None:
        from ..proctor.analyzer import FrameAnalyzer

        assert media.tap is not None
        self.tap = media.tap
        self.analyser = FrameAnalyzer()
        self.analysed = 0
        self.with_face = 0
        self.cpu_ms: list[float] = []
        self.thread = threading.Thread(target=self._run, name="proctor", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for t, bgr in self.tap.frames():
            found = self.analyser.analyse(bgr, t)
            self.analysed += 1
            self.with_face += found.faces > 0
            self.cpu_ms.append(found.cpu_ms)
        self.analyser.close()


async def _lines(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await reader.readline()
    if not line:
        raise ConnectionError("the other process went away")
    value: dict[str, Any] = json.loads(line)
    return value


async def run_side(
    role: str, port: int, *, seconds: float, warmup: float, tone: float, tap_rate: float | None,
    proctor: bool, photos: bool, ready: asyncio.Future[int] | None = None,
) -> dict[str, Any]:
    """One side of the two-process call; returns what it measured."""
    restrict_to_loopback()
    source = None
    if photos:
        from ..proctor.synthetic import Scene, SyntheticCamera

        cam = SyntheticCamera([(3600.0, Scene.PRESENT)], fps=30)
        source = lambda i: cam.render(Scene.PRESENT, i)  # noqa: E731
    config = MediaConfig(camera=SYNTHETIC, microphone=SYNTHETIC, speaker=None, tone_hz=tone,
                         synthetic_source=source, tap_rate=tap_rate, keep_audio_seconds=1.0)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if role == "offer":
        accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.get_running_loop().create_future())

        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            if not accepted.done():
                accepted.set_result((r, w))

        server = await asyncio.start_server(on_conn, "127.0.0.1", port)
        bound = server.sockets[0].getsockname()[1]
        if ready is not None:
            ready.set_result(bound)
        else:
            print(json.dumps({"port": bound}), flush=True)
        reader, writer = await asyncio.wait_for(accepted, 30)
        server.close()
        media = attach_media(pc, config)
        await pc.setLocalDescription(await pc.createOffer())
        writer.write((json.dumps({"sdp": pc.localDescription.sdp}) + "\n").encode())
        answer = await _lines(reader)
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    else:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        offer = await _lines(reader)
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        media = attach_media(pc, config)
        await pc.setLocalDescription(await pc.createAnswer())
        writer.write((json.dumps({"sdp": pc.localDescription.sdp}) + "\n").encode())
    feed = _ProctorFeed(media) if proctor and media.tap is not None else None
    stamps = StampLog()
    media.remote_video.on_frame.append(stamps)
    deadline = time.monotonic() + 30
    while media.remote_video.received.count == 0:
        if time.monotonic() > deadline:
            raise TimeoutError("no video arrived within 30 s")
        await asyncio.sleep(0.05)
    await asyncio.sleep(warmup)
    await media.stats()  # the bitrate baseline
    stamps.recording = True
    wall0, cpu0 = time.monotonic(), time.process_time()
    sent0 = media.video_out.sent.count if media.video_out is not None else 0
    analysed0 = feed.analysed if feed is not None else 0
    await asyncio.sleep(seconds)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    stamps.recording = False
    sent = (media.video_out.sent.count if media.video_out is not None else 0) - sent0
    stats = await media.stats()
    result: dict[str, Any] = {
        "role": role, "seconds": round(wall, 2),
        "cpu_percent": round(100 * cpu / wall, 1),
        "video": stamps.summary(),
        "video_sent": {"frames": sent, "fps": round(sent / wall, 2)},
        "tone_hz_sent": tone,
        "tone_hz_received": round(dominant_frequency(media.remote_audio.recent()), 1),
        "jpeg_bytes": len(media.remote_jpeg() or b""),
        "stats": stats,
    }
    if feed is not None:
        result["proctor"] = {"analysed": feed.analysed, "with_face": feed.with_face,
                             "fps": round((feed.analysed - analysed0) / wall, 1),
                             "skipped_by_tap": media.tap.skipped if media.tap else 0}
    writer.write(b'{"done": true}\n')
    await writer.drain()
    await _lines(reader)  # both sides finish measuring before either hangs up
    await media.close()
    await pc.close()
    writer.close()
    if feed is not None:
        feed.thread.join(5)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m assessiq.media.loopback",
                                description="one side of a two-process media call on 127.0.0.1")
    p.add_argument("role", choices=["offer", "answer"])
    p.add_argument("--port", type=int, default=0, help="the offerer listens, the answerer dials")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to measure")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    p.add_argument("--tone", type=float, default=440.0, help="this side's tone in Hz")
    p.add_argument("--tap-rate", type=float, default=None, help="proctor tap frames/s")
    p.add_argument("--proctor", action="store_true", help="run the proctor on the tap")
    p.add_argument("--photos", action="store_true", help="show the proctor's photo scene")
    args = p.parse_args(argv)
    if args.role == "answer" and not args.port:
        print("loopback: the answerer needs --port", file=sys.stderr)
        return 2
    if args.proctor and not args.tap_rate:
        args.tap_rate = 15.0
    result = asyncio.run(run_side(
        args.role, args.port, seconds=args.seconds, warmup=args.warmup, tone=args.tone,
        tap_rate=args.tap_rate, proctor=args.proctor, photos=args.photos))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
