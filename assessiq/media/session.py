"""One video and one audio track each way on a peer connection, and what the UI and the
proctor need from them.

    media = attach_media(pc, MediaConfig(tap_rate=15), on_camera_off=emit_event)
    # the offerer: before pc.createOffer(); the answerer: after
    # pc.setRemoteDescription(offer), before pc.createAnswer().
    media.remote_jpeg(), media.self_jpeg()      # for the page's <img>
    media.set_camera(False); media.set_muted(True)
    for t, bgr in media.tap.frames(): ...       # the proctor, in its worker thread
    await media.stats()                          # a plain dict
    await media.close()

A camera or microphone that is missing or busy is not an error here: it is listed in
`media.problems` (one line each, for the UI and the CLI), that direction simply carries no
media (the transceiver is receive-only), and everything else goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamTrack

from .adapt import QualityController, ladder
from .config import AUTO, SYNTHETIC, MediaConfig
from .devices import open_camera, open_microphone
from .errors import DeviceError, MediaError, PlaybackError
from .jitter import install as install_jitter
from .playback import AudioPlayer
from .render import JpegSlot
from .sinks import RemoteAudioSink, RemoteVideoSink
from .stats import StatsSampler
from .synthetic import SyntheticVideoTrack, ToneAudioTrack
from .tap import FrameTap
from .tracks import OutgoingAudioTrack, OutgoingVideoTrack

__all__ = ["MediaSession", "attach_media"]

log = logging.getLogger(__name__)

CameraOff = Callable[[bool], None]  # called with True when the camera stops reaching the peer


def attach_media(
    pc: RTCPeerConnection,
    config: MediaConfig | None = None,
    *,
    on_camera_off: CameraOff | None = None,
    tap: FrameTap | None = None,
) -> MediaSession:
    """Add this side's tracks (sendrecv) to `pc` and consume the other side's.

    Call it inside the running event loop, before the offer (offerer) or between the remote
    offer and the answer (answerer). Devices that cannot be opened end up in `problems`.
    `tap` is a proctor tap that outlives this session (the peer layer keeps one across
    reconnects); it is fed but not closed by `close()`. Without it, a tap is made when
    `config.tap_rate` is set, and closed with the session.
    """
    session = MediaSession(pc, config or MediaConfig(), on_camera_off, tap=tap)
    session._attach()
    return session


class MediaSession:
    """This side's media on one peer connection. Build it with `attach_media`."""

    def __init__(
        self, pc: RTCPeerConnection, config: MediaConfig, on_camera_off: CameraOff | None,
        *, tap: FrameTap | None = None,
    ) -> None:
        self.pc, self.config = pc, config
        self.problems: list[str] = []
        self.on_problem: Callable[[], None] | None = None  # told after each new problem
        self._own_tap = tap is None
        self.tap = tap if tap is not None else (
            FrameTap(config.tap_rate) if config.tap_rate else None)
        self.self_view = JpegSlot(config.jpeg_quality, config.jpeg_max_width)
        self.remote_video = RemoteVideoSink(config.jpeg_quality, config.jpeg_max_width)
        self.remote_audio: RemoteAudioSink = RemoteAudioSink(None, config.keep_audio_seconds)
        self.video_out: OutgoingVideoTrack | None = None
        self.audio_out: OutgoingAudioTrack | None = None
        self._on_camera_off = on_camera_off
        self._video_sender: RTCRtpSender | None = None
        self._sampler = StatsSampler()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.adapter: QualityController | None = None  # steps the picture with the link
        self._last_report: tuple[Any, ...] | None = None

    # -- setting up -------------------------------------------------------------------------

    def _attach(self) -> None:
        cfg = self.config
        video = self._open_video()
        if video is not None:
            self.video_out = OutgoingVideoTrack(
                video, tap=self.tap, fps=cfg.fps, self_view=self.self_view,
                on_lost=self._camera_lost,
            )
        audio = self._open_audio()
        if audio is not None:
            self.audio_out = OutgoingAudioTrack(audio, on_lost=self._microphone_lost)
        self.remote_audio.player = self._open_speaker()

        vt = _transceiver(self.pc, "video", self.video_out)
        _prefer_vp8(vt)
        self._video_sender = vt.sender
        _transceiver(self.pc, "audio", self.audio_out)

        if cfg.bounded_jitter is not None and not install_jitter(vt.receiver, cfg.bounded_jitter):
            log.info("aiortc's jitter buffer has moved: lost packets may freeze the video")
        self.pc.on("track", self._on_track)
        for t in self.pc.getTransceivers():  # the answerer's remote tracks exist already
            if t.receiver.track is not None:
                self._on_track(t.receiver.track)
        if self.video_out is not None and cfg.adapt:
            self.adapter = QualityController(
                ladder(cfg.width, cfg.height, cfg.fps, cfg.max_video_bitrate))
        self._task = asyncio.get_running_loop().create_task(self._watch_link())
        if cfg.camera is not None and self.video_out is None:
            self._notify_camera_off(True)

    def _open_video(self) -> MediaStreamTrack | None:
        cfg = self.config
        if cfg.camera is None:
            return None
        if cfg.camera == SYNTHETIC:
            return SyntheticVideoTrack(fps=cfg.fps, width=cfg.width, height=cfg.height,
                                       source=cfg.synthetic_source, stamp=cfg.stamp)
        try:
            return open_camera(None if cfg.camera == AUTO else cfg.camera,
                               width=cfg.width, height=cfg.height, fps=cfg.fps)
        except DeviceError as exc:
            self._problem(f"{exc}; the call goes on without video from this side")
            return None

    def _open_audio(self) -> MediaStreamTrack | None:
        cfg = self.config
        if cfg.microphone is None:
            return None
        if cfg.microphone == SYNTHETIC:
            return ToneAudioTrack(frequency=cfg.tone_hz)
        try:
            return open_microphone(None if cfg.microphone == AUTO else cfg.microphone)
        except DeviceError as exc:
            self._problem(f"{exc}; the call goes on without audio from this side")
            return None

    def _open_speaker(self) -> AudioPlayer | None:
        speaker = self.config.speaker
        if speaker is None:
            return None
        try:
            return AudioPlayer(None if speaker == AUTO else speaker)
        except PlaybackError as exc:
            self._problem(str(exc))
            return None

    def _problem(self, message: str) -> None:
        log.warning("%s", message)
        self.problems.append(message)
        if self.on_problem is not None:
            self.on_problem()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self.remote_video.start(track)
        elif track.kind == "audio":
            self.remote_audio.start(track)

    def _camera_lost(self, why: str) -> None:
        self._problem(f"{why}; sending black instead")
        self._notify_camera_off(True)

    def _microphone_lost(self, why: str) -> None:
        self._problem(f"{why}; sending silence instead")

    def _notify_camera_off(self, off: bool) -> None:
        if self._on_camera_off is not None:
            try:
                self._on_camera_off(off)
            except Exception:
                log.exception("on_camera_off callback failed")

    async def _watch_link(self) -> None:
        """Keep VP8's target bitrate under the cap (aiortc raises it on REMB up to 1.5 M),
        twice a second; once a second, step the sent picture down or up with the loss and
        round-trip time the other side reports (adapt.py)."""
        tick = 0
        while not self._closed:
            _clamp_bitrate(self._video_sender, self.max_video_bitrate)
            if self.adapter is not None and tick % 2 == 0:
                try:
                    await self._adapt()
                except Exception:  # the stats of a closing connection: try again later
                    log.debug("link quality sample failed", exc_info=True)
            tick += 1
            await asyncio.sleep(0.5)

    async def _adapt(self) -> None:
        assert self.adapter is not None and self.video_out is not None
        loss, rtt = await self._video_report()
        before = self.adapter.rung
        rung = self.adapter.update(loss, rtt, time.monotonic())
        if rung != before:
            q = self.adapter.quality
            log.info("link %s (loss %.0f%%, rtt %s): sending %sx%s at %s fps, %s kbit/s",
                     "poorer" if rung > before else "better", 100 * (loss or 0),
                     "?" if rtt is None else f"{rtt * 1000:.0f} ms", q.width, q.height, q.fps,
                     q.max_bitrate // 1000)
            self.video_out.set_quality(q if rung else None)
            _clamp_bitrate(self._video_sender, q.max_bitrate)

    @property
    def max_video_bitrate(self) -> int:
        """The bitrate cap now: the configured one, or the link's rung's when lower."""
        cap = self.config.max_video_bitrate
        return cap if self.adapter is None else min(cap, self.adapter.quality.max_bitrate)

    async def _video_report(self) -> tuple[float | None, float | None]:
        """(fraction lost, RTT s) from the other side's newest report on our video; (None,
        None) when no new report came since the last call."""
        if self._video_sender is None:
            return None, None
        report = await self._video_sender.getStats()
        for stat in report.values():
            if stat.type != "remote-inbound-rtp":
                continue
            stamp = (stat.timestamp, stat.packetsLost, stat.packetsReceived)
            if stamp == self._last_report:
                return None, None
            self._last_report = stamp
            lost = stat.fractionLost
            # RTCP carries it as n/256 (aiortc passes that on); the W3C stats as 0..1
            loss = lost / 256 if isinstance(lost, int) else float(lost)
            return min(1.0, max(0.0, loss)), stat.roundTripTime
        return None, None

    # -- the controls -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once `close()` has begun (its tracks are stopping)."""
        return self._closed

    @property
    def has_camera(self) -> bool:
        return self.video_out is not None and self.video_out.lost is None

    @property
    def has_microphone(self) -> bool:
        return self.audio_out is not None and self.audio_out.lost is None

    @property
    def camera_on(self) -> bool:
        return self.has_camera and self.video_out is not None and self.video_out.enabled

    @property
    def muted(self) -> bool:
        return self.audio_out is None or not self.audio_out.enabled

    def set_camera(self, on: bool) -> None:
        """Send the camera (True) or black (False); tells `on_camera_off` of each change.
        While off, the proctor's tap gets no frames either."""
        if self.video_out is None or self.video_out.lost is not None:
            raise MediaError("there is no camera to turn on or off")
        if self.video_out.enabled != on:
            self.video_out.enabled = on
            self._notify_camera_off(not on)

    def set_muted(self, muted: bool) -> None:
        """Send silence (True) or the microphone (False)."""
        if self.audio_out is None:
            raise MediaError("there is no microphone to mute or unmute")
        self.audio_out.enabled = not muted

    def remote_jpeg(self) -> bytes | None:
        """The other side's newest frame as JPEG, None before the first."""
        return self.remote_video.jpeg()

    def self_jpeg(self) -> bytes | None:
        """This side's newest sent frame (black while the camera is off) as JPEG."""
        return self.self_view.jpeg()

    async def stats(self) -> dict[str, Any]:
        """Frames sent/received, frame rates, bitrates, loss, RTT and state, as a plain dict."""
        rtp = await self._sampler.sample(self.pc)
        video, audio = rtp["video"], rtp["audio"]
        for row, out, sink in ((video, self.video_out, self.remote_video),
                               (audio, self.audio_out, self.remote_audio)):
            row["frames_sent"] = out.sent.count if out is not None else 0
            row["fps_sent"] = round(out.sent.rate(), 1) if out is not None else 0.0
            row["frames_received"] = sink.received.count
            row["fps_received"] = round(sink.received.rate(), 1)
        encoder = _encoder(self._video_sender)
        video["target_kbps"] = (encoder.target_bitrate // 1000
                                if encoder is not None and hasattr(encoder, "target_bitrate")
                                else None)
        adapter = self.adapter
        video["quality"] = None if adapter is None else {
            "rung": adapter.rung, "width": adapter.quality.width,
            "height": adapter.quality.height, "fps": adapter.quality.fps,
            "max_kbps": adapter.quality.max_bitrate // 1000,
            "steps_down": adapter.steps_down, "steps_up": adapter.steps_up}
        tap = None if self.tap is None else {
            "offered": self.tap.offered, "taken": self.tap.taken, "skipped": self.tap.skipped}
        return {"video": video, "audio": audio, "camera_on": self.camera_on,
                "muted": self.muted, "has_camera": self.has_camera,
                "has_microphone": self.has_microphone, "problems": list(self.problems),
                "tap": tap}

    async def close(self) -> None:
        """Stop the local tracks, the sinks and the tap (the peer connection is not ours)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for track in (self.video_out, self.audio_out):
            if track is not None:
                track.stop()
        await self.remote_video.stop()
        await self.remote_audio.stop()
        if self.tap is not None and self._own_tap:
            self.tap.close()


def _transceiver(
    pc: RTCPeerConnection, kind: str, track: MediaStreamTrack | None
) -> RTCRtpTransceiver:
    """The transceiver of `kind` carrying `track` (sendrecv), or receive-only without one."""
    for t in pc.getTransceivers():  # on the answerer, the offer made them already
        if t.kind == kind and t.sender.track is None and not getattr(t, "stopped", False):
            if track is not None:
                t.sender.replaceTrack(track)
            t.direction = "sendrecv" if track is not None else "recvonly"
            return t
    return pc.addTransceiver(track if track is not None else kind,
                             direction="sendrecv" if track is not None else "recvonly")


def _prefer_vp8(t: RTCRtpTransceiver) -> None:
    codecs = RTCRtpSender.getCapabilities("video").codecs
    preferred = [c for c in codecs if c.mimeType.lower() in ("video/vp8", "video/rtx")]
    if preferred:
        t.setCodecPreferences(preferred)


def _encoder(sender: RTCRtpSender | None) -> Any:
    # aiortc keeps its encoder private; absent (None) before the first frame, or if renamed
    return getattr(sender, "_RTCRtpSender__encoder", None) if sender is not None else None


def _clamp_bitrate(sender: RTCRtpSender | None, cap: int) -> None:
    encoder = _encoder(sender)
    if encoder is not None and getattr(encoder, "target_bitrate", 0) > cap:
        encoder.target_bitrate = cap
