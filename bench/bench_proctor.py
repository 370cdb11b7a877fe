"""Proctoring cost and delay.

- ms per 640×480 frame on one core (the process pinned with os.sched_setaffinity before the
  models start their threads): FaceMesh refined alone (baseline: FaceMesh without iris
  refinement) and the proctor's whole per-frame analysis (mesh + full-range detection every
  5th frame + pose, gaze, light, freeze; baseline: FaceMesh refined alone).
- CPU share of the live proctor at its default adaptive rate, fed a 30 fps camera stand-in
  in real time (process CPU time / wall time; baseline: the same at a fixed 15 fps).
- Delay from a condition starting to its event being emitted *locally* (not "verified at the
  host": that needs the peer): face.absent planted on the synthetic camera in real time;
  reported as the time beyond the hysteresis hold (T_on), and in total.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import cv2

from bench.common import Row, median

AREA = "proctor"


def _frames(n: int) -> list:
    from assessiq.proctor.synthetic import Scene, SyntheticCamera

    cam = SyntheticCamera([(n / 15, Scene.SMALL_MOVES)], fps=15)
    return [f for _, f in cam]


def _per_frame(quick: bool) -> list[Row]:
    import mediapipe as mp

    from assessiq.proctor.analyzer import FrameAnalyzer

    frames = _frames(60)
    reps = 150 if quick else 600

    def timed(call: Any) -> tuple[float, float]:
        """(wall, CPU) seconds of one call; CPU is the whole process's (MediaPipe's threads
        included), which a busy machine distorts far less than wall time."""
        w0, c0 = time.perf_counter(), time.process_time()
        call()
        return time.perf_counter() - w0, time.process_time() - c0

    def time_mesh(refine: bool) -> tuple[float, float]:
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                             refine_landmarks=refine) as mesh:
            rgbs = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]
            ts = [timed(lambda i=i: mesh.process(rgbs[i % len(rgbs)])) for i in range(reps)]
        return median([w for w, _ in ts[20:]]) * 1000, median([c for _, c in ts[20:]]) * 1000

    def time_analyse() -> tuple[float, float, float]:
        with FrameAnalyzer() as an:
            ts = [timed(lambda i=i: an.analyse(frames[i % len(frames)], i / 15))
                  for i in range(reps)]
        ts = ts[20:]
        cpu = [c for _, c in ts]
        return (median([w for w, _ in ts]) * 1000, median(cpu) * 1000,
                sum(cpu) / len(cpu) * 1000)

    load = os.getloadavg()[0]
    mesh_wall, mesh_cpu = time_mesh(True)
    _plain_wall, plain_cpu = time_mesh(False)
    an_wall, an_cpu, an_cpu_mean = time_analyse()
    return [
        Row(AREA, "FaceMesh refined, 640×480, 1 core, CPU", mesh_cpu, "ms/frame",
            plain_cpu, "FaceMesh without iris", "≤ 4 ms",
            f"median; wall {mesh_wall:.2f} ms; load avg {load:.1f}"),
        Row(AREA, "whole per-frame analysis, 1 core, CPU", an_cpu, "ms/frame",
            mesh_cpu, "FaceMesh refined alone", "",
            f"median; mean {an_cpu_mean:.2f} ms with detection every 5th frame; "
            f"wall {an_wall:.2f} ms"),
    ]


async def _camera(frames: list, fps: float, seconds: float) -> AsyncIterator[tuple[float, Any]]:
    t0 = time.time()
    for i in range(int(seconds * fps)):
        due = t0 + i / fps
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield due, frames[i % len(frames)]


def _cpu_share(seconds: float, frames: list, fixed_fps: float | None) -> tuple[float, float]:
    from assessiq.proctor.analyzer import FrameAnalyzer
    from assessiq.proctor.config import ProctorConfig
    from assessiq.proctor.runner import Proctor

    cfg = ProctorConfig()
    if fixed_fps is not None:
        cfg = cfg.replace(min_fps=fixed_fps, max_fps=fixed_fps)
    analyzer = FrameAnalyzer(cfg.analyzer)
    for i in range(10):  # warm up outside the measurement
        analyzer.analyse(frames[i], i / 30)
    proctor = Proctor(lambda k, d: None, cfg, analyzer=analyzer)

    async def go() -> tuple[float, float]:
        c0, w0 = time.process_time(), time.perf_counter()
        await proctor.run(_camera(frames, 30.0, seconds))
        return time.process_time() - c0, time.perf_counter() - w0

    cpu, wall = asyncio.run(go())
    analyzer.close()
    return cpu / wall, proctor.stats.analysed / wall


def _event_delay(plants: int) -> tuple[list[float], float]:
    from assessiq.proctor.config import ProctorConfig
    from assessiq.proctor.runner import Proctor
    from assessiq.proctor.synthetic import Scene, SyntheticCamera

    cfg = ProctorConfig()
    hold = cfg.hysteresis_for("face.absent").on
    timeline: list[tuple[float, Scene]] = [(3.0, Scene.PRESENT)]
    for _ in range(plants):
        timeline += [(hold + 1.5, Scene.ABSENT), (2.5, Scene.PRESENT)]
    cam = SyntheticCamera(timeline, fps=30)
    emitted: list[float] = []

    def sink(kind: str, data: dict[str, Any]) -> None:
        if kind == "face.absent" and data["phase"] == "start":
            emitted.append(time.time())

    proctor = Proctor(sink, cfg)
    asyncio.run(proctor.run(cam.stream()))
    starts = [p.start for p in cam.plants() if p.scene is Scene.ABSENT]
    return [e - s for e, s in zip(emitted, starts, strict=False)], hold


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        rows += _per_frame(quick)
    finally:
        os.sched_setaffinity(0, before)
    frames = _frames(60)
    seconds = 8.0 if quick else 20.0
    share, fps = _cpu_share(seconds, frames, None)
    base_share, base_fps = _cpu_share(seconds, frames, 15.0)
    rows.append(Row(AREA, "live proctor CPU share, default adaptive rate", share * 100,
                    "% of a core", base_share * 100, "fixed 15 fps", "≤ 10 %",
                    f"{fps:.1f} fps analysed (baseline {base_fps:.1f}); 30 fps input, "
                    f"{seconds:.0f} s, process CPU / wall; load avg {os.getloadavg()[0]:.1f}"))
    delays, hold = _event_delay(2 if quick else 5)
    if delays:
        beyond = [d - hold for d in delays]
        rows.append(Row(AREA, "condition start → event emitted locally, beyond T_on",
                        median(beyond) * 1000, "ms", None, "", "",
                        f"median of {len(delays)} face.absent plants; max "
                        f"{max(beyond) * 1000:.0f} ms; not yet verified at the host"))
        rows.append(Row(AREA, "condition start → event emitted locally, total",
                        median(delays), "s", None, "", "",
                        f"includes the {hold:.0f} s hold that keeps blinks and glances out"))
    return rows
