"""The call inside the real peer session: synthetic audio+video both ways over real aiortc on
loopback, call statistics in the host's session file, `camera.off` events, and the proctor's
tap surviving a reconnect."""

from __future__ import annotations

import dataclasses

from assessiq.core.identity import Identity
from assessiq.core.integrity import check_log
from assessiq.core.record import SessionRecord
from assessiq.core.store import SessionStore
from assessiq.core.verify import verify_record
from assessiq.media import SYNTHETIC, MediaConfig
from assessiq.peer import Candidate, Host
from tests.peer_helpers import FAST, eventually, signaling_server

CONFIG = dataclasses.replace(FAST, call_stats_interval=1.0)


async def relink(cand: Candidate, n: int) -> None:
    """Kill the candidate's peer connection under it; wait for link number `n`."""
    assert cand.link is not None
    await cand.link.close()
    await eventually(lambda: cand.links_made >= n and cand.is_connected, timeout=30,
                     what=f"link {n}")


def media(tap_rate: float | None = None) -> MediaConfig:
    return MediaConfig(camera=SYNTHETIC, microphone=SYNTHETIC, speaker=None, fps=15,
                       tap_rate=tap_rate)


async def test_call_both_ways_with_stats_camera_off_and_reconnect(tmp_path):
    async with signaling_server() as url:
        host = await Host.start(identity=Identity.generate(), signaling=url, config=CONFIG,
                                session_path=tmp_path / "h.aiq", media=media(), runs=False)
        cand = await Candidate.join(host.invite.encode(), config=CONFIG, media=media(5),
                                    session_path=tmp_path / "c.aiq")
        try:
            await host.connected(10)
            assert host.media is not None and cand.media is not None
            # Frames and audio arrive on both sides.
            await eventually(lambda: host.media is not None and cand.media is not None
                             and host.media.remote_video.received.count > 10
                             and cand.media.remote_video.received.count > 10
                             and host.media.remote_audio.received.count > 10
                             and cand.media.remote_audio.received.count > 10,
                             timeout=30, what="media both ways")
            assert host.media.remote_jpeg() is not None and cand.media.self_jpeg() is not None
            # The candidate's proctor tap gets its own camera's frames.
            tap = cand.call.tap if cand.call else None
            assert tap is not None
            await eventually(lambda: tap.taken > 3, what="tap frames")
            # Call statistics land in the host's session file.
            await eventually(lambda: any(s["value"]["video"]["frames_received"] > 0
                                         for s in host.store.private("call_stats")),
                             timeout=20, what="call stats in the host's file")

            # Reconnect: a new peer connection, new media, the same tap keeps being fed.
            old_media = cand.media
            await relink(cand, 2)
            assert cand.media is not None and cand.media is not old_media
            assert cand.media.tap is tap and not tap.closed
            taken = tap.taken
            await eventually(lambda: tap.taken > taken + 3, timeout=20,
                             what="the tap fed by the new link")
            await eventually(lambda: host.media is not None
                             and host.media.remote_video.received.count > 5,
                             timeout=30, what="video on the new link")
            assert (await host.record_call_stats() or {}).get("link") == 2

            # Camera off: a signed camera.off condition; it stays off across a reconnect
            # (no second start), and turning it on ends it.
            cand.set_camera(False)
            assert cand.media is not None and not cand.media.camera_on
            await eventually(lambda: len(host.events) == 1, what="camera.off start")
            await relink(cand, 3)
            assert cand.media is not None and not cand.media.camera_on
            cand.set_camera(True)
            await eventually(lambda: len(host.events) == 2, what="camera.off end")
            start, end = host.events
            assert [start.kind, end.kind] == ["camera.off", "camera.off"]
            assert start.data["phase"] == "start" and end.data["phase"] == "end"
            assert start.severity == "warn" and end.severity == "info"
            assert end.data["start"] == start.data["start"]
            duration = end.data["duration"]
            assert duration > 0
            assert duration == round(end.data["end"] - end.data["start"], 3)
        finally:
            await cand.close()
        path = await host.end()

    with SessionStore.open(path) as store:
        verdict = verify_record(SessionRecord.from_store(store))
        stats = [s["value"] for s in store.private("call_stats")]
        policy = store.meta()["policy"]
    assert verdict.valid, verdict.errors
    assert "camera.off" in policy  # the session's own policy text is in its metadata
    last = stats[-1]
    for key in ("frames_sent", "frames_received", "fps_sent", "fps_received",
                "kbps_sent", "kbps_received"):
        assert key in last["video"] and key in last["audio"]
    assert max(s["video"]["frames_sent"] for s in stats) > 0
    assert max(s["link"] for s in stats) >= 2

    # The candidate's own file: its events, the host's receipts, the document; role marked.
    with SessionStore.open(tmp_path / "c.aiq") as store:
        meta = store.meta()
        envelopes, receipts = store.envelopes(), store.receipts()
        assert meta["role"] == "candidate"
        assert store.private("call_stats")
    assert len(envelopes) == 2 and len(receipts) == 2
    from assessiq.core.encoding import b64d

    log = check_log(meta["session"], b64d(meta["device_key"]), envelopes)
    assert not log.errors and [e.kind for e in log.events] == ["camera.off"] * 2

