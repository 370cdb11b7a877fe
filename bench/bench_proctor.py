"""Proctoring cost and delay.

- ms per 640×480 frame on one core (the process pinned with os.sched_setaffinity before the
  models start their threads, OpenCV's pool set to one thread to match): FaceMesh refined
  alone (baseline: FaceMesh without iris refinement) and the proctor's whole per-frame
  analysis, exactly what the proctor runs per frame (`FrameAnalyzer.analyse`: mesh,
  full-range detection when due, pose, gaze, light, freeze; baseline: FaceMesh refined
  alone), on the synthetic camera's small head movements; and the analysis' mesh step alone
  (`MeshTracker.follow` on the BGR frames: the same landmarks through a leaner graph, given
  only the face's region; a frame it must search is given in RGB, converted beforehand).
  Each runs after the other, in one process; the machine's speed drifts between runs, so
  compare figures of one run.
- CPU share of the live proctor at its default adaptive rate, fed a 30 fps camera stand-in
  in real time (process CPU time / wall time; baseline: the same at a fixed 15 fps).
- Delay from a condition starting to its event being verified at the host: the real host and
  candidate in one process over loopback (signaling server on 127.0.0.1), the synthetic
  camera in real time with planted 5 s absences, real MediaPipe; baseline: the same event
  signed on the candidate. Reported beyond the hysteresis hold (T_on) and in total.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import cv2

from bench.common import Row, median

AREA = "proctor"


def _frames(n: int) -> list[Any]:
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

    rgbs = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]  # what MediaPipe is given

    def time_mesh(refine: bool) -> tuple[float, float]:
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                             refine_landmarks=refine) as mesh:
            ts = [timed(lambda i=i: mesh.process(rgbs[i % len(rgbs)])) for i in range(reps)]
        return median([w for w, _ in ts[20:]]) * 1000, median([c for _, c in ts[20:]]) * 1000

    def time_tracker() -> float:
        from assessiq.proctor.meshtrack import MeshTracker

        tracker = MeshTracker()  # as the analysis runs it: BGR in, converting what it needs
        ts = [timed(lambda i=i: tracker.follow(frames[i % len(frames)],
                                               partial(rgbs.__getitem__, i % len(rgbs))))
              for i in range(reps)]
        tracker.close()
        return median([c for _, c in ts[20:]]) * 1000

    def time_analyse() -> tuple[float, float, float, float, float, float]:
        ours: list[float] = []  # each frame's analysis minus its own mesh step
        with FrameAnalyzer() as an:
            ts = []
            for i in range(reps):
                ts.append(timed(lambda i=i: an.analyse(frames[i % len(frames)], i / 15)))
                ours.append(ts[-1][1] - an.mesh_cpu)
            detected = an.detections / reps
            solved = an.pose_solves / reps
        ts = ts[20:]
        cpu = [c for _, c in ts]
        return (median([w for w, _ in ts]) * 1000, median(cpu) * 1000,
                sum(cpu) / len(cpu) * 1000, detected, solved, median(ours[20:]) * 1000)

    load = os.getloadavg()[0]
    mesh_wall, mesh_cpu = time_mesh(True)
    _plain_wall, plain_cpu = time_mesh(False)
    tracker_cpu = time_tracker()
    an_wall, an_cpu, an_cpu_mean, detected, solved, ours = time_analyse()
    return [
        Row(AREA, "FaceMesh refined, 640×480, 1 core, CPU", mesh_cpu, "ms/frame",
            plain_cpu, "FaceMesh without iris", "",
            f"median; wall {mesh_wall:.2f} ms; load avg {load:.1f}"),
        Row(AREA, "whole per-frame analysis, 640×480, 1 core, CPU", an_cpu, "ms/frame",
            mesh_cpu, "FaceMesh refined alone", "≤ 4 ms",
            f"median of {reps - 20} frames; mean {an_cpu_mean:.2f} ms with full-range "
            f"detection on {detected:.0%} of frames, pose solved on {solved:.0%}; "
            f"beyond its mesh step {ours:.2f} ms (median); wall {an_wall:.2f} ms"),
        Row(AREA, "its mesh step: FaceMesh refined through MeshTracker", tracker_cpu,
            "ms/frame", mesh_cpu, "FaceMesh refined alone", "",
            "the video graph's landmarks within 0.05 px a step (tested); the model is most of it"),
    ]


async def _camera(frames: list[Any], fps: float, seconds: float
                  ) -> AsyncIterator[tuple[float, Any]]:
    t0 = time.time()
    for i in range(int(seconds * fps)):
        due = t0 + i / fps
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield due, frames[i % len(frames)]


def _cpu_share(seconds: float, frames: list[Any], fixed_fps: float | None) -> tuple[float, float]:
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


async def _verified_delays(absences: int) -> tuple[list[float], list[float]]:
    """(planted start → verified at the host, → signed on the candidate), seconds."""
    from assessiq.peer.connection import restrict_host_addresses
    from bench.bench_peer import _proctor_delays
    from signaling import ServerConfig, SignalingServer

    restrict_host_addresses(["127.0.0.1"])  # loopback only
    async with SignalingServer(ServerConfig(host="127.0.0.1", port=0)) as server:
        verified, signed = await _proctor_delays(f"ws://127.0.0.1:{server.port}", absences)
    return [v / 1000 for v in verified], [s / 1000 for s in signed]


def run(quick: bool) -> list[Row]:
    from assessiq.proctor.config import ProctorConfig

    rows: list[Row] = []
    before, cv_threads = os.sched_getaffinity(0), cv2.getNumThreads()
    os.sched_setaffinity(0, {min(before)})
    cv2.setNumThreads(1)  # OpenCV sized its pool before the pinning: one core, one thread
    try:
        rows += _per_frame(quick)
    finally:
        os.sched_setaffinity(0, before)
        cv2.setNumThreads(cv_threads)
    frames = _frames(60)
    seconds = 8.0 if quick else 20.0
    share, fps = _cpu_share(seconds, frames, None)
    base_share, base_fps = _cpu_share(seconds, frames, 15.0)
    rows.append(Row(AREA, "live proctor CPU share, default adaptive rate", share * 100,
                    "% of a core", base_share * 100, "fixed 15 fps", "≤ 10 %",
                    f"{fps:.1f} fps analysed (baseline {base_fps:.1f}); 30 fps input, "
                    f"{seconds:.0f} s, process CPU / wall; load avg {os.getloadavg()[0]:.1f}"))
    hold = ProctorConfig().hysteresis_for("face.absent").on
    absences = 2 if quick else 5
    verified, signed = asyncio.run(_verified_delays(absences))
    beyond = [d - hold for d in verified]
    rows.append(Row(AREA, "condition start → event verified at the host, beyond T_on",
                    median(beyond) * 1000, "ms", median([d - hold for d in signed]) * 1000,
                    "signed on the candidate", "",
                    f"median of {absences} planted face.absent; max "
                    f"{max(beyond) * 1000:.0f} ms; host and candidate in one process, "
                    f"loopback"))
    rows.append(Row(AREA, "condition start → event verified at the host, total",
                    median(verified), "s", None, "", "",
                    f"includes the {hold:.0f} s hold that keeps blinks and glances out"))
    return rows
