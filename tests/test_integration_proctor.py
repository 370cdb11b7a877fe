"""The proctor on the candidate inside the real peer session: a synthetic camera with a planted
absence, real MediaPipe analysis, signed events verified at the host in order, heartbeats.
Once headless (frames straight from the synthetic camera) and once through the call (frames
from the candidate's own outgoing camera track, via the tap)."""

from __future__ import annotations

import time

from assessiq.core.identity import Identity
from assessiq.media import SYNTHETIC, MediaConfig
from assessiq.peer import Candidate, Host
from assessiq.peer.scenes import wall_clock_scenes
from assessiq.proctor import ProctorConfig, Scene, SyntheticCamera
from tests.peer_helpers import FAST, eventually, signaling_server

TIMELINE = [(3.5, Scene.PRESENT), (5.0, Scene.ABSENT), (2.5, Scene.PRESENT)]
PROCTOR = ProctorConfig(heartbeat_every=2.0)

def check_at_host(host: Host, cand: Candidate, absent_start: float, absent_end: float) -> None:
    kinds = [e.kind for e in host.events]
    # In order: the host verified exactly what the candidate signed, in the same order.
    assert [e.seq for e in host.events] == list(range(len(host.events)))
    assert [e.hash for e in host.events] == [e.hash for e in cand.log]
    assert "proctor.heartbeat" in kinds
    beat = next(e for e in host.events if e.kind == "proctor.heartbeat")
    assert beat.data["analysed"] > 0 and beat.data["fps"] > 0
    absent = [e for e in host.events if e.kind == "face.absent"]
    assert [e.data["phase"] for e in absent] == ["start", "end"]
    start, end = absent
    assert start.severity == "warn"
    # The condition's own start is the planted one (within the analysis period and a bit).
    assert abs(start.data["start"] - absent_start) < 1.0
    assert abs(end.data["end"] - absent_end) < 1.5
    # The start event is confirmed after the hysteresis (3 s), verified at the host after.
    assert host.received_at[start.seq] >= absent_start + 3.0
    assert not [e for e in host.events if e.kind == "face.multiple"]


async def test_headless_proctor_events_verified_at_host(tmp_path):
    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "h.aiq", runs=False)
        cand = await Candidate.join(host.invite.encode(), config=FAST,
                                    session_path=tmp_path / "c.aiq")
        try:
            cam = SyntheticCamera(TIMELINE, fps=10)
            cand.start_proctor(cam.stream(), config=PROCTOR)
            await eventually(lambda: cand.proctor is not None
                             and cand._proctor_task is not None
                             and cand._proctor_task.done(), timeout=40, what="timeline end")
            await cand.events_sent()
            await eventually(lambda: not cand.outbox, what="receipts")
            plant = cam.plants()[1]
            check_at_host(host, cand, plant.start, plant.end)
        finally:
            await cand.close()
            await host.close()


async def test_proctor_reads_the_call_camera_through_the_tap(tmp_path):
    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=FAST,
                                session_path=tmp_path / "h.aiq", runs=False,
                                media=MediaConfig(camera=None, microphone=None, speaker=None))
        source, cam = wall_clock_scenes([*TIMELINE, (60.0, Scene.PRESENT)], fps=15)
        cand = await Candidate.join(
            host.invite.encode(), config=FAST, session_path=tmp_path / "c.aiq",
            media=MediaConfig(camera=SYNTHETIC, microphone=None, speaker=None, fps=15,
                              synthetic_source=source, tap_rate=10))
        try:
            cam.start = time.time()  # the planted timeline starts once the candidate is in
            cand.start_proctor(config=PROCTOR)
            plant = cam.plants()[1]
            await eventually(lambda: sum(e.kind == "face.absent" for e in host.events) == 2,
                             timeout=40, what="face.absent start and end at the host")
            await eventually(lambda: not cand.outbox, what="receipts")
            check_at_host(host, cand, plant.start, plant.end)
            assert host.media is not None and host.media.remote_video.received.count > 0
        finally:
            await cand.close()
            await host.close()
