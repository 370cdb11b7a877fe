"""The call across links: one `MediaSession` per peer connection, and what outlives them.

aiortc has no ICE restart, so a reconnect is a new `RTCPeerConnection` and the media must be
attached again. What must not start over lives here, once per peer session:

- the proctor's `FrameTap`: every link's outgoing camera track feeds the same tap, so the
  proctor (reading `tap.frames()` in its worker thread) keeps going across a reconnect — it
  simply gets no frames while the link is down;
- the camera-off state: turning the camera off is a signed `camera.off` condition
  (phase start, then end with its duration); a camera lost or missing counts the same. The
  choice survives a reconnect (a camera the candidate turned off stays off on the new link);
- the newest call statistics.

The camera (a device or the synthetic source) is reopened for each link: `media.close()`
stops the old tracks, which releases the device before the new link opens it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

    from ..media import MediaConfig, MediaSession
    from ..media.tap import FrameTap

__all__ = ["CallState", "Emit"]

log = logging.getLogger(__name__)

MIN_SAMPLE_INTERVAL = 1.0  # seconds between two call-statistics samples of one link

# (kind, data, severity): queue an integrity event to be signed and sent, in order.
Emit = Callable[[str, dict[str, Any], str], None]


class CallState:
    """This side's call for the whole session. `attach(pc)` is the peer connection's media
    hook; `current` is the media of the live link (None between links)."""

    def __init__(self, config: MediaConfig, *, emit: Emit | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        from ..media.tap import FrameTap

        self.config = config
        self.emit = emit
        self.on_change = on_change  # told when a link's media has new device problems
        self.tap: FrameTap | None = FrameTap(config.tap_rate) if config.tap_rate else None
        self.current: MediaSession | None = None
        self.off_since: float | None = None  # when the camera went off (None: it is on)
        self.user_off = False  # the person turned it off (as opposed to lost or missing)
        self.last_stats: dict[str, Any] | None = None
        self._sampled_at = 0.0
        self.links = 0

    def attach(self, pc: RTCPeerConnection) -> MediaSession:
        """Add the tracks to a new peer connection (see `attach_media` for when)."""
        from ..media import attach_media

        self.current = None
        holder: list[MediaSession] = []

        def changed(off: bool) -> None:
            if holder and holder[0].closed:
                return  # an old link's tracks stopping is not the camera going off
            # during attaching (nothing in holder yet) only a device failure notifies
            self._camera_changed(off, holder[0] if holder else None)

        media = attach_media(pc, self.config, on_camera_off=changed, tap=self.tap)
        holder.append(media)
        self.current = media
        media.on_problem = self.on_change
        if media.problems and self.on_change is not None:  # (found while attaching)
            self.on_change()
        self.links += 1
        if media.has_camera:
            if self.user_off:
                media.set_camera(False)  # still off: no new event (already off)
            elif self.off_since is not None:
                self._camera_changed(False, media)  # the camera is back on the new link
        return media

    def set_camera(self, on: bool) -> None:
        """Turn the camera on or off now and on every later link."""
        self.user_off = not on
        if self.current is not None and self.current.has_camera:
            self.current.set_camera(on)

    def _camera_changed(self, off: bool, media: MediaSession | None) -> None:
        if media is not None and media.has_camera:
            self.user_off = off  # a toggle on a working camera (set_camera on the media)
        now = time.time()
        if off and self.off_since is None:
            self.off_since = now
            self._emit("camera.off", {"phase": "start", "start": now, "confidence": 1.0},
                       "warn")
        elif not off and self.off_since is not None:
            start, self.off_since = self.off_since, None
            self._emit("camera.off", {"phase": "end", "start": start, "end": now,
                                      "duration": round(now - start, 3), "confidence": 1.0},
                       "info")

    def _emit(self, kind: str, data: dict[str, Any], severity: str) -> None:
        log.info("call: %s %s", kind, data["phase"])
        if self.emit is not None:
            self.emit(kind, data, severity)

    async def stats(self) -> tuple[dict[str, Any] | None, bool]:
        """The live link's call statistics (None between links), also kept in `last_stats`,
        and whether they are a new sample. Bitrates are deltas between samples, so a sample
        taken less than `MIN_SAMPLE_INTERVAL` after the last one on the same link is not
        taken: the last one is returned instead."""
        media = self.current
        if media is None:
            return None, False
        now = time.monotonic()
        if (self.last_stats is not None and self.last_stats.get("link") == self.links
                and now - self._sampled_at < MIN_SAMPLE_INTERVAL):
            return self.last_stats, False
        stats = await media.stats()
        stats["link"] = self.links
        self.last_stats, self._sampled_at = stats, now
        return stats, True

    def close(self) -> None:
        """End the proctor's tap (its reader's `frames()` ends)."""
        if self.tap is not None:
            self.tap.close()
