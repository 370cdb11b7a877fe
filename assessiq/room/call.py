"""The call as the apps set it up and describe it: which camera, and what to tell the person.

Both apps ask for the machine's camera ("auto"). When this computer has none, the call goes on
without video: the page says so, and on the candidate's side the peer layer signs `camera.off`
so the interviewer sees it. A synthetic camera is used only when asked for (`--camera
synthetic`: the demo, the tests): the candidate's shows a photographed person (so the proctor
has a face to watch), optionally following a planted timeline; the interviewer's a test card.
A candidate on a synthetic camera says so in the signed log (`session.note`), so a generated
face can never pass for a real one unnoticed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..media import MediaConfig
    from ..proctor.synthetic import SyntheticCamera

__all__ = ["CallPlan", "describe_problem", "describe_problems", "plan_call"]

log = logging.getLogger(__name__)

VIDEO_FPS = 10  # enough for an interview; two calls, two browsers and a proctor fit 2 cores
TAP_RATE = 10.0
JPEG_WIDTH = 320  # the page's tiles are 230 px wide
STEADY: tuple[tuple[float, str], ...] = ((1e7, "present"),)

SYNTHETIC_NOTE = ("Synthetic camera (--camera synthetic): a generated picture is sent instead of "
                  "your video, and the interviewer is told so.")
SYNTHETIC_EVENT = "synthetic camera in use: the video is generated, not a camera"


@dataclass
class CallPlan:
    """The media settings for one side and what the page should say about them."""

    config: MediaConfig
    synthetic: bool  # a generated picture instead of a camera
    note: str = ""  # shown under the video tiles when not empty
    scenes: SyntheticCamera | None = None  # the candidate's synthetic camera, if any

    def restart_scenes(self) -> None:
        """Start a planted timeline now (e.g. when the candidate joins)."""
        if self.scenes is not None:
            self.scenes.start = time.time()


def plan_call(role: str, *, camera: str | None = "auto", microphone: str | None = "auto",
              speaker: str | None = "auto",
              scenes: Sequence[tuple[float, str]] | None = None) -> CallPlan:
    """Media for `role` ("host" or "candidate"). `camera` is "auto" (the first camera; none:
    no video), "synthetic", "none", or a device; `microphone` likewise ("synthetic": a tone;
    a missing or busy one leaves the call without sound from this side, never ends it);
    `scenes` is the candidate's planted timeline for the synthetic camera (default: a person
    sitting still)."""
    from ..media import MediaConfig

    synthetic = camera == "synthetic"
    if camera == "none":
        camera = None
    if microphone == "none":
        microphone = None
    tap = TAP_RATE if role == "candidate" else None
    common: dict[str, Any] = {"microphone": microphone, "speaker": speaker, "fps": VIDEO_FPS,
                              "tap_rate": tap, "jpeg_max_width": JPEG_WIDTH}
    if not synthetic:
        return CallPlan(MediaConfig(camera=camera, **common), synthetic=False)
    cam = None
    source = None
    if role == "candidate":
        from ..peer.scenes import wall_clock_scenes

        source, cam = wall_clock_scenes(list(scenes or STEADY), fps=VIDEO_FPS)
    config = MediaConfig(camera="synthetic", synthetic_source=source, stamp=False, **common)
    return CallPlan(config, synthetic=True, note=SYNTHETIC_NOTE, scenes=cam)


# By device: what its absence is called (the words docs/call.md quotes), what follows.
_DEVICES = {
    "camera": ("No camera found", "the interview continues without video"),
    "microphone": ("No microphone", "the interview continues without sound from this side"),
    "speaker": ("No speaker", "the other side's sound is not played here"),
}


def _device(low: str) -> str | None:
    """Which device a problem line is about (the media layer's messages name it)."""
    if "camera" in low or "video" in low:
        return "camera"
    if "microphone" in low:  # before "output": FFmpeg says "Input/output error"
        return "microphone"
    if "output" in low or "speaker" in low or "played" in low:
        return "speaker"
    return None


def _trouble(low: str) -> str:
    """What is wrong: "busy", "permission", "stopped", "missing" or "other". The busy and
    permission checks come first: a "not found, or it cannot be opened (Device or resource
    busy)" line is about a busy device, not a missing one."""
    if "busy" in low or "in use" in low or "unavailable" in low:
        return "busy"
    if "permission" in low or "not permitted" in low or "access denied" in low:
        return "permission"
    if "stopped" in low:
        return "stopped"
    if "no " in low and ("found" in low or "device" in low):
        return "missing"
    return "other"


def describe_problem(problem: str) -> str:
    """One plain sentence for one media problem line, saying what it is: no device, a busy
    one, no permission, a device that stopped, or another failure (the line itself follows
    in brackets)."""
    low = problem.lower()
    device = _device(low)
    if device is None:
        return problem
    missing, effect = _DEVICES[device]
    trouble = _trouble(low)
    if trouble == "missing":
        head = f"{missing} — {effect}."
    elif trouble == "busy":
        head = f"The {device} is busy (another app is using it) — {effect}."
    elif trouble == "permission":
        head = (f"No permission to use the {device} (allow it in the system settings) — "
                f"{effect}.")
    elif trouble == "stopped" and device == "camera":
        head = "The camera stopped — the other side sees a black picture."
    elif trouble == "stopped" and device == "microphone":
        head = "The microphone stopped — the other side hears silence from you."
    else:
        head = f"The {device} cannot be used — {effect}."
    return f"{head} ({problem})"


def describe_problems(problems: Sequence[str]) -> list[str]:
    """One plain sentence per media problem, the camera's first."""
    camera: list[str] = []
    rest: list[str] = []
    for problem in problems:
        (camera if _device(problem.lower()) == "camera" else rest).append(
            describe_problem(problem))
    return camera + rest
