"""A synthetic camera for the call that plays a proctoring timeline on the wall clock.

The call's synthetic video track asks for frame `i`; a reconnect makes a new track that
counts from 0 again. Choosing the scene by wall-clock time instead keeps the planted
timeline (face absent from 12:00:05 to 12:00:10, ...) where it was, whatever the links do:

    source, cam = wall_clock_scenes([(4, "present"), (6, "absent"), (30, "present")])
    media = MediaConfig(camera="synthetic", synthetic_source=source, tap_rate=10)
    cam.plants()      # when each scene runs (time.time() seconds): the ground truth
    cam.start = time.time()   # (re)start the timeline now; before its start: the first scene
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ..media.synthetic import FrameSource
    from ..proctor.synthetic import Scene, SyntheticCamera

__all__ = ["wall_clock_scenes"]


def wall_clock_scenes(
    timeline: Sequence[tuple[float, Scene | str]],
    *,
    start: float | None = None,
    fps: float = 30.0,
    face: str = "astronaut",
) -> tuple[FrameSource, SyntheticCamera]:
    """A frame source for `MediaConfig.synthetic_source` showing `timeline` from `start`
    (default: now); after its end the last scene stays."""
    from ..proctor.synthetic import SyntheticCamera

    cam = SyntheticCamera(timeline, fps=fps, start=time.time() if start is None else start,
                          face=face)

    def source(i: int) -> npt.NDArray[np.uint8]:
        return cam.render(cam.scene_at(time.time()), i)

    return source, cam
