"""Per-frame analysis with MediaPipe's bundled models: faces, head pose, gaze, light, freezes.

FaceMesh (refined, 478 landmarks) follows the main face cheaply from frame to frame; the
full-range face detector counts faces, including small or distant ones the mesh does not
track, every few frames (and on every frame without a mesh face). Nothing is downloaded: both
models ship inside the mediapipe 0.10.21 wheel.
"""

from __future__ import annotations

import logging
import os
import time
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .config import AnalyzerConfig
from .findings import FaceBox, FrameFindings, Gaze, HeadPose
from .geometry import gaze_from_landmarks, head_pose

__all__ = ["FrameAnalyzer", "load_mediapipe"]

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
_THUMB = (160, 120)


def load_mediapipe() -> Any:
    """Import mediapipe's legacy solutions (slow the first time: ~1 s). Its C++ logging is
    quietened to errors unless GLOG_minloglevel / TF_CPP_MIN_LOG_LEVEL are already set."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import mediapipe as mp

    return mp.solutions


class FrameAnalyzer:
    """Analyses BGR frames one at a time. Not thread-safe: use it from one thread.

    `still_images=True` treats every frame as unrelated (photos); otherwise frames are a
    video and the mesh tracks the face between them.
    """

    def __init__(self, config: AnalyzerConfig | None = None, *, still_images: bool = False) -> None:
        self.config = config or AnalyzerConfig()
        self.still_images = still_images
        t0 = time.perf_counter()
        solutions = load_mediapipe()
        self._mesh = solutions.face_mesh.FaceMesh(
            static_image_mode=still_images,
            max_num_faces=4 if still_images else 1,
            refine_landmarks=True,
            min_detection_confidence=self.config.min_face_confidence,
            min_tracking_confidence=0.5,
        )
        self._detector = solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=self.config.min_face_confidence
        )
        log.info("face models loaded in %.2f s", time.perf_counter() - t0)
        self._prev_thumb: npt.NDArray[np.float32] | None = None
        self._count = 0
        self._detections: tuple[float, tuple[FaceBox, ...]] | None = None
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._mesh.close()
            self._detector.close()

    def __enter__(self) -> FrameAnalyzer:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def reset(self) -> None:
        """Forget the previous frame (call between unrelated inputs)."""
        self._prev_thumb = None
        self._detections = None

    def analyse(self, frame: Image, t: float = 0.0) -> FrameFindings:
        """Analyse one BGR frame taken at time `t` (seconds)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError("expected a BGR uint8 image of shape (h, w, 3)")
        cpu0 = time.process_time()
        cfg = self.config
        h, w = frame.shape[:2]
        if w > cfg.max_width:
            scale = cfg.max_width / w
            frame = np.asarray(cv2.resize(frame, (cfg.max_width, max(1, round(h * scale))),
                                          interpolation=cv2.INTER_AREA), dtype=np.uint8)
            h, w = frame.shape[:2]
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        thumb = cv2.resize(gray, _THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
        brightness = float(thumb.mean())
        texture = float(thumb.std())
        if self._prev_thumb is None:
            motion = float("inf")
        else:
            motion = float(np.abs(thumb - self._prev_thumb).mean())
        self._prev_thumb = thumb

        rgb = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        rgb.flags.writeable = False
        meshes = self._mesh.process(rgb).multi_face_landmarks or []
        faces_px = [
            np.array([(p.x * w, p.y * h) for p in m.landmark], dtype=np.float64) for m in meshes
        ]
        mesh_boxes = [self._box_of(p, w, h) for p in faces_px]
        order = sorted(range(len(faces_px)), key=lambda i: -mesh_boxes[i].w * mesh_boxes[i].h)
        self._count += 1
        detected = self._detect(rgb, t, run=self.still_images or not meshes
                                or self._count % cfg.detect_every == 1 or cfg.detect_every == 1)
        boxes = [mesh_boxes[i] for i in order]
        boxes += [d for d in detected if not any(_same_face(d, m) for m in mesh_boxes)]

        pose: HeadPose | None = None
        gaze: Gaze | None = None
        if faces_px:
            main = faces_px[order[0]]
            pose = head_pose(main, w, h)
            if main.shape[0] >= 478:
                gaze = gaze_from_landmarks(main, cfg.eyes_closed_ratio)
        dark = brightness < cfg.dark_level
        covered = not boxes and (
            (brightness < cfg.covered_level and texture < cfg.covered_texture)
            or texture < cfg.covered_texture / 3
        )
        return FrameFindings(
            t=t, faces=len(boxes), boxes=tuple(boxes), pose=pose, gaze=gaze,
            brightness=round(brightness, 2), texture=round(texture, 2), dark=dark,
            covered=covered, frozen=motion <= cfg.frozen_diff,
            motion=round(motion, 3) if motion != float("inf") else -1.0,
            cpu_ms=round((time.process_time() - cpu0) * 1000, 3),
        )

    def _detect(self, rgb: Image, t: float, run: bool) -> tuple[FaceBox, ...]:
        if not run:
            if self._detections and t - self._detections[0] <= self.config.detection_memory:
                return self._detections[1]
            return ()
        found = self._detector.process(rgb).detections or []
        boxes = []
        for d in found:
            score = float(d.score[0])
            if score < self.config.min_face_confidence:
                continue
            r = d.location_data.relative_bounding_box
            boxes.append(FaceBox(round(r.xmin, 4), round(r.ymin, 4), round(r.width, 4),
                                 round(r.height, 4), round(score, 3), "detection"))
        self._detections = (t, tuple(boxes))
        return self._detections[1]

    @staticmethod
    def _box_of(points: npt.NDArray[np.float64], w: int, h: int) -> FaceBox:
        x0, y0 = points[:, 0].min() / w, points[:, 1].min() / h
        x1, y1 = points[:, 0].max() / w, points[:, 1].max() / h
        return FaceBox(round(float(x0), 4), round(float(y0), 4), round(float(x1 - x0), 4),
                       round(float(y1 - y0), 4), 1.0, "mesh")

    def landmarks(self, frame: Image) -> list[npt.NDArray[np.float64]]:
        """FaceMesh landmarks (x, y in pixels, z in the same scale) of every face in `frame`."""
        h, w = frame.shape[:2]
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        meshes = self._mesh.process(rgb).multi_face_landmarks or []
        return [np.array([(p.x * w, p.y * h, p.z * w) for p in m.landmark]) for m in meshes]


def _same_face(a: FaceBox, b: FaceBox) -> bool:
    """Whether two boxes are one face: they overlap well, or one's centre lies in the other."""
    cx, cy = a.x + a.w / 2, a.y + a.h / 2
    return _iou(a, b) >= 0.2 or (b.x <= cx <= b.x + b.w and b.y <= cy <= b.y + b.h)


def _iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0
