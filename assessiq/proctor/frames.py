"""Frame sources: iterators of (timestamp seconds, BGR image).

A real camera (OpenCV), a video file, an image sequence; the synthetic camera lives in
`synthetic.py`. Sources are synchronous iterators; the proctor reads them in a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
import numpy.typing as npt

from .errors import FrameSourceError, NoCameraError

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "CameraSource",
    "Frame",
    "ImageSequenceSource",
    "VideoFileSource",
    "read_image",
]

Image = npt.NDArray[np.uint8]
Frame = tuple[float, Image]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg"})


def read_image(path: str | Path) -> Image:
    """Read an image file as BGR; FrameSourceError with the reason if that fails."""
    p = Path(path)
    if not p.exists():
        raise FrameSourceError(f"no such file: {p}")
    if p.is_dir():
        raise FrameSourceError(f"{p} is a directory, not an image")
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as exc:  # unreadable (permissions, I/O error)
        raise FrameSourceError(f"cannot read {p}: {exc.strerror or exc}") from exc
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise FrameSourceError(f"{p} is not an image OpenCV can read")
    return np.asarray(img, dtype=np.uint8)


class ImageSequenceSource:
    """Images played as a video at `fps`, timestamps from `start`."""

    def __init__(self, paths: Sequence[str | Path], fps: float = 10.0, start: float = 0.0) -> None:
        if fps <= 0:
            raise ValueError("fps must be > 0")
        self.paths = [Path(p) for p in paths]
        self.fps, self.start = fps, start

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.paths):
            yield self.start + i / self.fps, read_image(p)


class VideoFileSource:
    """Frames of a video file, timestamped from the file's frame rate (from `start`)."""

    def __init__(self, path: str | Path, start: float = 0.0) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FrameSourceError(f"no such file: {self.path}")
        self.start = start
        cap = cv2.VideoCapture(str(self.path))
        try:
            ok = cap.isOpened() and cap.read()[0]
            self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            cap.release()
        if not ok:
            raise FrameSourceError(f"{self.path} is not a video OpenCV can read")
        if not 0 < self.fps < 1000:
            self.fps = 30.0

    def __iter__(self) -> Iterator[Frame]:
        cap = cv2.VideoCapture(str(self.path))
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield self.start + i / self.fps, np.asarray(frame, dtype=np.uint8)
                i += 1
        finally:
            cap.release()


class CameraSource:
    """A real camera through OpenCV; timestamps are wall-clock time (time.time())."""

    def __init__(
        self, index: int = 0, width: int = 640, height: int = 480, fps: float = 30.0
    ) -> None:
        self.index = index
        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            self._cap.release()
            raise NoCameraError(
                f"no camera at index {index}: OpenCV could not open it "
                "(is one connected, and free of other apps?)"
            )
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap.set(cv2.CAP_PROP_FPS, fps)

    def __iter__(self) -> Iterator[Frame]:
        failures = 0
        while self._cap.isOpened():
            ok, frame = self._cap.read()
            if not ok:
                failures += 1
                if failures > 30:
                    raise FrameSourceError(f"camera {self.index} stopped sending frames")
                time.sleep(0.03)
                continue
            failures = 0
            yield time.time(), np.asarray(frame, dtype=np.uint8)

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
