"""The call's media on loopback: two processes, 640×480@30 VP8 + Opus each way.

The interviewer side (offerer) sends the stamped test card and a 440 Hz tone; the candidate
side (answerer) sends the proctor's photo scene, stamped, and a 660 Hz tone, while its tap
feeds the real proctor analysis (MediaPipe FaceMesh + face detection) at 15 frames/s in a
worker thread. The baseline, run alternately in the same session: the same call with test
cards and no proctor. Medians over the repetitions; each process measures its own CPU
(process time / wall time) over the measured window.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from bench.common import Row, median

AREA = "media"


def _pair(seconds: float, candidate_args: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    cmd = [sys.executable, "-m", "assessiq.media.loopback"]
    common = ["--seconds", str(seconds), "--warmup", "1.5"]
    offer = subprocess.Popen([*cmd, "offer", "--tone", "440", *common],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert offer.stdout is not None
        port = json.loads(offer.stdout.readline())["port"]
        answer = subprocess.run(
            [*cmd, "answer", "--port", str(port), "--tone", "660", *common, *candidate_args],
            capture_output=True, text=True, timeout=seconds + 90)
        if answer.returncode != 0:
            raise RuntimeError(f"candidate side failed: {answer.stderr.strip()[-300:]}")
        out, err = offer.communicate(timeout=60)
        if offer.returncode != 0:
            raise RuntimeError(f"interviewer side failed: {err.strip()[-300:]}")
    finally:
        if offer.poll() is None:
            offer.kill()
            offer.wait()
    return json.loads(out.strip().splitlines()[-1]), json.loads(answer.stdout.strip())


def _jpeg_ms(repeats: int) -> float:
    from av import VideoFrame

    from assessiq.media.render import frame_to_jpeg

    rng = np.random.default_rng(0)
    img = (rng.integers(0, 40, (480, 640, 3)) + np.linspace(0, 200, 640)[None, :, None])
    frame = VideoFrame.from_ndarray(img.astype(np.uint8), format="bgr24")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        frame_to_jpeg(frame, 70)
        times.append((time.perf_counter() - t0) * 1000)
    return median(times)


async def _lossy_call(loss: float, shipped: bool, warmup: float, seconds: float) -> dict[str, Any]:
    """One sender → receiver call in this process through a relay on 127.0.0.1 that drops
    `loss` of the sender's media packets. `shipped`: AssessIQ's defaults (bounded jitter
    buffer, step controller); else aiortc as it comes (neither)."""
    from assessiq.media import SYNTHETIC, MediaConfig
    from assessiq.media.loopback import StampLog, connect_pair
    from assessiq.media.lossy_link import LossyRelay

    extra: dict[str, Any] = {} if shipped else {"adapt": False, "bounded_jitter": None}
    relay = LossyRelay(loss_ab=loss, seed=11)
    sender = MediaConfig(camera=SYNTHETIC, microphone=None, speaker=None, fps=30, **extra)
    receiver = MediaConfig(camera=None, microphone=None, speaker=None, fps=30, **extra)
    (pa, a), (pb, b) = await connect_pair(sender, receiver, relay=relay)
    stamps = StampLog()
    b.remote_video.on_frame.append(stamps)
    try:
        deadline = time.monotonic() + 30
        while b.remote_video.received.count < 5:
            if time.monotonic() > deadline:
                raise RuntimeError("no video through the lossy relay")
            await asyncio.sleep(0.05)
        await asyncio.sleep(warmup)
        stamps.recording = True
        await asyncio.sleep(seconds)
        stamps.recording = False
        stats = await a.stats()
        out = stamps.summary()
        # the longest wait between two shown frames: a freeze
        out["freeze_ms"] = stamps.longest_gap_ms()
        out["rung"] = (stats["video"]["quality"] or {}).get("rung", 0)
        return out
    finally:
        for closing in (a.close(), b.close(), pa.close(), pb.close()):
            await closing
        relay.close()


def _lossy_rows(quick: bool) -> list[Row]:
    reps, warmup, seconds = (1, 4.0, 8.0) if quick else (3, 6.0, 15.0)
    rows: list[Row] = []
    for loss in (0.1, 0.3):
        shipped, aiortc = [], []
        for _ in range(reps):
            aiortc.append(asyncio.run(_lossy_call(loss, False, warmup, seconds)))
            shipped.append(asyncio.run(_lossy_call(loss, True, warmup, seconds)))

        def med(runs: list[dict[str, Any]], key: str) -> float:
            return statistics.median(float(r[key] or 0) for r in runs)

        pct = f"{loss:.0%}"
        note = (f"{reps} run(s) × {seconds:.0f} s, medians; 640×480@30 VP8, {pct} of the "
                f"sender's RTP/RTCP dropped by a relay on 127.0.0.1; rung reached "
                f"{med(shipped, 'rung'):.0f}")
        base = "aiortc as is (512-packet jitter buffer, no steps)"
        rows += [
            Row(AREA, f"{pct} loss: received fps", med(shipped, "fps"), "fps",
                med(aiortc, "fps"), base, "30", note),
            Row(AREA, f"{pct} loss: capture→decoded latency p50", med(shipped, "latency_ms_p50"),
                "ms", med(aiortc, "latency_ms_p50"), base, "", ""),
            Row(AREA, f"{pct} loss: capture→decoded latency p95", med(shipped, "latency_ms_p95"),
                "ms", med(aiortc, "latency_ms_p95"), base, "", ""),
            Row(AREA, f"{pct} loss: longest freeze", med(shipped, "freeze_ms"), "ms",
                med(aiortc, "freeze_ms"), base, "", "longest gap between decoded frames"),
        ]
    return rows


def run(quick: bool) -> list[Row]:
    reps, seconds = (1, 4.0) if quick else (3, 10.0)
    try:
        import assessiq.proctor.analyzer  # noqa: F401

        proctor_args = ["--proctor", "--photos", "--tap-rate", "15"]
        with_proctor = "candidate sends the proctor's photo scene; proctor on the tap at 15/s"
    except ImportError:
        proctor_args = ["--tap-rate", "15"]
        with_proctor = "proctor not importable: tap only, no analysis"
    runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    bases: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for _ in range(reps):
        bases.append(_pair(seconds, []))
        runs.append(_pair(seconds, proctor_args))

    def med(pairs: list[tuple[dict[str, Any], dict[str, Any]]], side: int, *path: str) -> float:
        vals = []
        for p in pairs:
            v: object = p[side]
            for k in path:
                v = v[k]  # type: ignore[index]
            vals.append(float(v))  # type: ignore[arg-type]
        return statistics.median(vals)

    note = f"{reps} run(s) × {seconds:.0f} s, medians; {with_proctor}"
    base = "plain call, no proctor"
    rows = [
        Row(AREA, "candidate → interviewer received fps", med(runs, 0, "video", "fps"), "fps",
            med(bases, 0, "video", "fps"), base, "30", note),
        Row(AREA, "interviewer → candidate received fps", med(runs, 1, "video", "fps"), "fps",
            med(bases, 1, "video", "fps"), base, "30", note),
        Row(AREA, "capture→decoded latency p50 (candidate's video)",
            med(runs, 0, "video", "latency_ms_p50"), "ms",
            med(bases, 0, "video", "latency_ms_p50"), base, "≤ 60", "stamped in the pixels"),
        Row(AREA, "capture→decoded latency p95 (candidate's video)",
            med(runs, 0, "video", "latency_ms_p95"), "ms",
            med(bases, 0, "video", "latency_ms_p95"), base, "", ""),
        Row(AREA, "capture→decoded latency p50 (interviewer's video)",
            med(runs, 1, "video", "latency_ms_p50"), "ms",
            med(bases, 1, "video", "latency_ms_p50"), base, "≤ 60", ""),
        Row(AREA, "capture→decoded latency p95 (interviewer's video)",
            med(runs, 1, "video", "latency_ms_p95"), "ms",
            med(bases, 1, "video", "latency_ms_p95"), base, "", ""),
        Row(AREA, "candidate process CPU (whole process)", med(runs, 1, "cpu_percent"),
            "% of a core", med(bases, 1, "cpu_percent"), base, "≤ 60", note),
        Row(AREA, "interviewer process CPU (whole process)", med(runs, 0, "cpu_percent"),
            "% of a core", med(bases, 0, "cpu_percent"), base, "", ""),
        Row(AREA, "video bitrate sent by the candidate",
            med(runs, 1, "stats", "video", "kbps_sent"), "kbit/s", None, "", "≤ 1000 (cap)", ""),
    ]
    if "--proctor" in proctor_args:
        rows.append(Row(AREA, "proctor frames analysed from the tap",
                        med(runs, 1, "proctor", "fps"), "frames/s", None, "", "15",
                        f"face found in {med(runs, 1, 'proctor', 'with_face'):.0f} of "
                        f"{med(runs, 1, 'proctor', 'analysed'):.0f}"))
    rows.append(Row(AREA, "remote frame → JPEG (cv2.imencode, q70, 640×480)",
                    _jpeg_ms(30 if quick else 200), "ms", None, "", "", "per UI refresh"))
    rows += _lossy_rows(quick)
    return rows
