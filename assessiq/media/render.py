"""Frames as JPEG bytes for the UI's `<img>`: one cheap encode (Pillow's libjpeg-turbo), done
on demand and cached until the next frame arrives. Pillow, not OpenCV: the interviewer's
install carries no OpenCV (the candidate's comes with MediaPipe), and both encode the same
bytes here.

    slot = JpegSlot(quality=70)
    slot.put(frame)            # on every decoded/sent frame: keeps a reference only
    slot.jpeg() -> bytes|None  # encodes the newest frame once; later calls reuse the bytes
"""

from __future__ import annotations

import io
import threading

from av import VideoFrame
from av.video.reformatter import VideoReformatter
from PIL import Image

__all__ = ["JpegSlot", "frame_to_jpeg"]


def frame_to_jpeg(frame: VideoFrame, quality: int = 70, max_width: int | None = None,
                  reformatter: VideoReformatter | None = None) -> bytes:
    """Encode one video frame as JPEG (optionally scaled down to `max_width`).

    The conversion uses `reformatter` (a fresh one if None), never the frame's own: PyAV keeps
    one scaler per frame, and aiortc's encoder thread may be converting the same sent frame at
    that moment — two threads in one libswscale context crash the process.
    """
    if not 1 <= quality <= 100:
        raise ValueError("quality must be 1..100")
    width, height = frame.width, frame.height
    if max_width is not None and width > max_width:
        height = max(2, round(height * max_width / width) // 2 * 2)
        width = max_width
    # bgr24: libswscale converts to it about twice as fast as to rgb24; Pillow reads it as is.
    scaled = (reformatter or VideoReformatter()).reformat(
        frame, width=width, height=height, format="bgr24")
    plane = scaled.planes[0]
    image = Image.frombuffer("RGB", (width, height), bytes(plane), "raw", "BGR",
                             plane.line_size, 1)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


class JpegSlot:
    """The newest frame, with its JPEG encoded lazily once. Safe to read from any thread."""

    def __init__(self, quality: int = 70, max_width: int | None = None) -> None:
        self.quality, self.max_width = quality, max_width
        self._lock = threading.Lock()  # guards the fields; never held while encoding
        self._encode_lock = threading.Lock()  # one encode at a time, with our own scaler
        self._reformatter = VideoReformatter()
        self._frame: VideoFrame | None = None
        self._seq = 0
        self._cached: tuple[int, bytes] | None = None

    def put(self, frame: VideoFrame) -> None:
        with self._lock:
            self._frame = frame
            self._seq += 1

    @property
    def seq(self) -> int:
        """How many frames were put (the UI can poll this to skip unchanged frames)."""
        return self._seq

    def frame(self) -> VideoFrame | None:
        return self._frame

    def jpeg(self) -> bytes | None:
        """The newest frame as JPEG; None before the first frame."""
        with self._lock:
            frame, seq, cached = self._frame, self._seq, self._cached
        if frame is None:
            return None
        if cached is not None and cached[0] == seq:
            return cached[1]
        with self._encode_lock:
            with self._lock:
                cached = self._cached
            if cached is not None and cached[0] == seq:  # another thread just encoded it
                return cached[1]
            data = frame_to_jpeg(frame, self.quality, self.max_width, self._reformatter)
        with self._lock:
            if self._cached is None or self._cached[0] < seq:
                self._cached = (seq, data)
        return data
