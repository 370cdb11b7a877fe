"""The live proctor: analysis in a worker thread, events and heartbeats on the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("skimage", reason="the synthetic camera composes scikit-image photos")
pytest.importorskip("matplotlib", reason="grace_hopper.jpg comes from matplotlib")

from assessiq.core.kinds import KINDS
from assessiq.proctor.config import ProctorConfig
from assessiq.proctor.frames import Frame
from assessiq.proctor.runner import Proctor
from assessiq.proctor.synthetic import Scene, SyntheticCamera


async def paced(cam: SyntheticCamera, pause: float) -> AsyncIterator[Frame]:
    """The camera's frames on its simulated clock, handed over `pause` real seconds apart."""
    for t, frame in cam:
        yield t, frame
        await asyncio.sleep(pause)


async def test_proctor_runs_off_the_loop_and_reports():
    cam = SyntheticCamera([(4, Scene.PRESENT), (6, Scene.ABSENT), (3, Scene.PRESENT)], fps=10)
    events: list[tuple[str, dict[str, Any], str]] = []
    loop_thread = threading.current_thread().name
    cfg = ProctorConfig(heartbeat_every=2.0)
    proctor = Proctor(lambda k, d: events.append((k, d, threading.current_thread().name)), cfg)
    stats = await proctor.run(paced(cam, 0.03))
    assert stats.frames == len(cam) and stats.analysed + stats.dropped <= stats.frames
    # the rate adapts to the CPU budget but frames fall due at least min_fps times a second
    # (a due frame is dropped only if the analyser is still busy with the previous one)
    assert stats.analysed + stats.dropped >= 0.8 * cfg.min_fps * cam.duration
    assert stats.analysed >= 0.5 * cfg.min_fps * cam.duration
    assert cfg.min_fps <= proctor.rate <= cfg.max_fps
    kinds = [(k, d["phase"]) for k, d, _ in events if k != "proctor.heartbeat"]
    assert kinds == [("face.absent", "start"), ("face.absent", "end")]
    end = next(d for k, d, _ in events if k == "face.absent" and d["phase"] == "end")
    assert abs(end["start"] - 4.0) <= 0.5 and abs(end["end"] - 10.0) <= 0.5
    beats = [d for k, d, _ in events if k == "proctor.heartbeat"]
    assert len(beats) >= 4
    for b in beats:
        assert {"fps", "analysed", "dropped", "cpu"} <= set(b)
        assert b["fps"] > 0 and b["cpu"] > 0 and b["analysed"] > 0
    assert KINDS["proctor.heartbeat"].shape == "heartbeat"
    assert {name for _, _, name in events} == {loop_thread}  # the sink runs on the loop


async def test_busy_analyser_drops_frames_instead_of_queueing():
    cam = SyntheticCamera([(3, Scene.PRESENT)], fps=30)
    proctor = Proctor(lambda k, d: None, ProctorConfig(max_fps=30, min_fps=30))
    frames = list(cam)
    stats = await proctor.run(frames)  # a plain iterable, delivered as fast as it can be read
    assert stats.frames == len(frames)
    assert stats.analysed >= 1 and stats.analysed + stats.dropped <= stats.frames


async def test_stop_ends_the_run():
    cam = SyntheticCamera([(60, Scene.PRESENT)], fps=10)
    proctor = Proctor(lambda k, d: None)
    task = asyncio.create_task(proctor.run(paced(cam, 0.01)))
    await asyncio.sleep(0.5)
    proctor.stop()
    stats = await asyncio.wait_for(task, 10)
    assert 0 < stats.frames < len(cam)


async def test_a_bad_frame_is_dropped_not_fatal():
    cam = SyntheticCamera([(1, Scene.PRESENT)], fps=10)
    frames = list(cam)
    frames.insert(3, (0.35, np.zeros((4, 4), np.uint8)))  # grey, not BGR: analysis refuses it

    async def source() -> AsyncIterator[Frame]:
        for item in frames:
            yield item
            await asyncio.sleep(0.05)

    cfg = ProctorConfig(min_fps=30, max_fps=30)  # every frame is due for analysis
    stats = await Proctor(lambda k, d: None, cfg).run(source())
    # the bad frame is dropped (refused, or skipped while busy); the run goes on to the end
    assert stats.frames == len(frames) and stats.dropped >= 1 and stats.analysed >= 3
