"""The candidate's camera check: calibrate the proctor on the call's own camera frames.

After consent and joining, the frames the candidate's camera sends (the call's proctor tap,
before encoding) are analysed here with the proctor's own `FrameAnalyzer` and `Calibration`:
a few seconds of one frontal face fix the candidate's natural head pose and gaze. Then the
proctor starts for the interview with that baseline. Nothing is signed or sent during the
check itself; when it ends its result is signed once, as a `camera.check` event (the
interviewer's lobby shows it), and the proctor's events start with the interview.

Where no analysis can run (no camera, MediaPipe missing, no face in time) the check says so
in one plain sentence, and the proctor still starts if there is a camera (it then calibrates
on the first frontal seconds it sees, as it does headless).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..peer import Candidate
    from ..proctor.calibration import Baseline

__all__ = ["CameraCheck"]

log = logging.getLogger(__name__)


class CameraCheck:
    """Calibrates on `candidate`'s camera tap, then starts its proctor. `status` is a sentence
    for the page; `done` once the check has finished either way."""

    def __init__(self, candidate: Candidate, *, seconds: float | None = None,
                 timeout: float = 25.0) -> None:
        self.candidate = candidate
        self.seconds = seconds
        self.timeout = timeout
        self.changed: Callable[[], None] = lambda: None
        """Called when `status` or `done` changes (from the worker thread too): the
        candidate's controller makes it a "camera" change event."""
        self._status = "Waiting for your camera's picture…"
        self._done = False
        self.baseline: Baseline | None = None
        self.frames = 0
        self.available = True  # False: no camera analysis can run on this computer
        self.result = "unavailable"  # for the signed camera.check event (see `report`)
        self._stop = False
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> str:
        """Where the check is, as a sentence for the page."""
        return self._status

    @status.setter
    def status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.changed()

    @property
    def done(self) -> bool:
        """The check has finished, either way."""
        return self._done

    @done.setter
    def done(self, value: bool) -> None:
        if value != self._done:
            self._done = value
            self.changed()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="camera-check")

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    def cancel(self) -> None:
        self._stop = True

    async def _run(self) -> None:
        try:
            await self._check()
        except Exception as exc:  # any failure leaves the interview going, says why
            log.exception("camera check failed")
            self.available = False
            self.status = f"Camera analysis is not running on this computer ({exc})."
        finally:
            self.done = True
            self.report()

    def report(self) -> None:
        """Sign the check's result into the log once (not when cancelled or ended)."""
        cand = self.candidate
        if self._stop or cand.ended.is_set():
            return
        data: dict[str, object] = {"phase": "instant", "result": self.result,
                                   "text": self.status, "frames": self.frames}
        if self.baseline is not None:
            data.update(yaw=round(self.baseline.yaw, 1), pitch=round(self.baseline.pitch, 1))
        cand.emit("camera.check", data)

    async def _check(self) -> None:
        cand = self.candidate
        call = cand.call
        media = cand.media
        if call is None or call.tap is None or media is None or not media.has_camera:
            self.available = False
            self.result = "no camera"
            self.status = ("There is no camera to analyse, so camera analysis is not running "
                           "and no camera events will be sent; the interviewer sees that.")
            return
        from ..proctor import ProctorConfig

        config = ProctorConfig()
        seconds = config.calibration_seconds if self.seconds is None else self.seconds
        try:
            self.baseline = await asyncio.to_thread(self._calibrate, seconds)
        except ImportError as exc:
            self.available = False
            self.status = (f"Camera analysis cannot run on this computer ({exc}); no camera "
                           "events will be sent, and the interviewer sees that.")
            return
        if self._stop:
            return
        proctor = cand.start_proctor(config=config)
        if self.baseline is not None:
            proctor.bank.calibration.set(self.baseline)
            self.result = "calibrated"
            b = self.baseline
            self.status = (f"Calibrated on {b.frames} frames: your natural head pose is "
                           f"{b.yaw:+.0f}° sideways, {b.pitch:+.0f}° up/down. Camera analysis "
                           "is running on this computer.")
        else:
            self.result = "not calibrated"
            self.status = ("No face was seen steadily enough to calibrate; camera analysis "
                           "is running and will calibrate on the first seconds it sees you.")

    def _calibrate(self, seconds: float) -> Baseline | None:
        """In a worker thread: analyse tap frames until calibrated (or the time is up)."""
        from ..proctor.analyzer import FrameAnalyzer
        from ..proctor.calibration import Calibration

        call = self.candidate.call
        assert call is not None and call.tap is not None
        tap = call.tap
        calibration = Calibration(seconds)
        deadline = time.monotonic() + self.timeout
        with FrameAnalyzer() as analyzer:
            self.status = "Look at the screen as you normally would: calibrating…"
            while not self._stop and time.monotonic() < deadline and not tap.closed:
                got = tap.wait(0.5)
                if got is None:
                    continue
                t, image = got
                findings = analyzer.analyse(image, t)
                self.frames += 1
                if findings.faces != 1:
                    self.status = ("Please sit in front of the camera, alone, looking at the "
                                   "screen: calibrating…")
                baseline = calibration.add(findings)
                if baseline is not None:
                    return baseline
        return None
